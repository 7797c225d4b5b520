"""One simulation of the batched search, as compiled kernels: :func:`select` walks each tree down to the
edge where it ends, the model evaluates the new nodes, :func:`expand` writes them and :func:`backup` walks
back up (mctx's ``simulate``, ``expand`` and ``backward``). :func:`finish_simulation` is everything after
the model call; the Python-callback loop and the compiled loop of :mod:`gym_planning.search.search` both
run ``select`` -> model -> ``finish_simulation``, so the body of a simulation is written once, here.

Each step has an ``_unbatched_`` kernel for one tree (``b``) and a loop over the batch. Kernels take the
tree as one :class:`~gym_planning.search.tree.TreeArrays` record. Shapes: ``B`` trees, ``N`` nodes,
``A`` actions.

The selection rule is a switch, ``rule``: :data:`MUZERO` (pUCT on min-max normalised Q, at every node)
or :data:`GUMBEL` (Gumbel MuZero: Sequential Halving over the Gumbel-top-k at the root, the deterministic
``argmax pi' - n / (1 + N)`` below it). Both share the tree, the expansion and the backup.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gym_planning.search.action_selection import gumbel_interior_action, gumbel_root_action, prior_action, puct_action
from gym_planning.search.qtransforms import completed_by_mix_value, set_prior_probabilities
from gym_planning.search.tree import CHILD, DISCOUNT, LOGIT, REWARD, ROOT_INDEX, UNVISITED, VALUE, VISITS

# Selection rules (the ``rule`` switch).
MUZERO = 0
GUMBEL = 1

# Layout of the float parameters passed to the kernels (one array keeps the calls short).
P_PB_C_INIT, P_PB_C_BASE, P_VALUE_SCALE, P_MAXVISIT_INIT, P_RESCALE, P_USE_MIXED = range(6)

# Error codes: which model output held a NaN or infinity, or OVERFLOW when finite outputs were so large
# that the search's own arithmetic (backed-up values, Q, sigma) left float64's range.
REWARD_ERROR, DISCOUNT_ERROR, VALUE_ERROR, LOGITS_ERROR, OVERFLOW = 1, 2, 3, 4, 5


@njit(cache=True, inline="always", error_model="numpy")
def gumbel_completed_q(edge_floats, edge_ints, b, node, raw_value, params, out):
    """Gumbel MuZero's ``sigma(completed Q)`` at node ``node`` of tree ``b`` into ``out`` ``[A]``
    (:func:`~gym_planning.search.qtransforms.completed_by_mix_value` with the kernels' ``params``); False when
    it overflowed. ``raw_value`` is the node's model value."""
    return completed_by_mix_value(edge_floats, edge_ints, b, node, raw_value, params[P_VALUE_SCALE],
                                  params[P_MAXVISIT_INIT], params[P_RESCALE] > 0, params[P_USE_MIXED] > 0, out)  # fmt: skip


@njit(cache=True, error_model="numpy")
def select(arrays, rule, params, considered_table, num_considered, max_depth, out_parent, out_action, out_expand,
           scratch):  # fmt: skip
    """Descend each of the B trees from its root to the edge the simulation ends on.

    Writes ``out_parent[b]``, ``out_action[b]`` (the edge) and ``out_expand[b]`` (True when the edge leads
    to a new node, so the model must be called; False when the walk stopped on an existing node at
    ``max_depth`` or after a terminal step (discount 0), whose own value is backed up instead).
    ``considered_table`` ``[m + 1, num_simulations]`` and ``num_considered`` ``[B]`` drive Gumbel's
    Sequential Halving. ``scratch`` is ``[2, A]`` or larger. Returns 0, or ``OVERFLOW`` (then the outputs are
    incomplete).
    """
    # Fields and scratch rows are read once per call, not per node: in Numba each is a reference-count update.
    edge_floats, edge_ints, edge_legal = arrays.edge_floats, arrays.edge_ints, arrays.edge_legal
    node_visits, raw_values, bounds, gumbel = arrays.node_visits, arrays.raw_values, arrays.value_bounds, arrays.root_gumbel
    sigma, rule_scratch = scratch[0], scratch[1]
    # At a node whose only visit is its expansion, Gumbel's sigma is 0 for every action when Q is rescaled (all
    # completed Q are the node's value: scale * 0 / EPSILON), unless the scale itself overflows.
    fresh_sigma_is_zero = params[P_RESCALE] > 0 and np.isfinite(params[P_MAXVISIT_INIT] * params[P_VALUE_SCALE])
    for b in range(node_visits.shape[0]):
        # The simulation index is the number of root visits so far (the root's expansion not counted).
        considered_visit = considered_table[num_considered[b], node_visits[b, ROOT_INDEX] - 1] if rule == GUMBEL else 0
        node = ROOT_INDEX
        depth = 0
        while True:
            if rule == MUZERO:
                action = puct_action(edge_floats, edge_ints, edge_legal, b, node, node_visits[b, node], bounds[b, 0],
                                     bounds[b, 1], params[P_PB_C_INIT], params[P_PB_C_BASE])  # fmt: skip
            elif depth > 0 and node_visits[b, node] == 1 and fresh_sigma_is_zero:  # no child visited yet
                action = prior_action(edge_floats, edge_legal, b, node)
            elif not gumbel_completed_q(edge_floats, edge_ints, b, node, raw_values[b, node], params, sigma):
                action = -1
            elif depth == 0:
                action = gumbel_root_action(edge_floats, edge_ints, edge_legal, gumbel, b, sigma, considered_visit)
            else:
                action = gumbel_interior_action(edge_floats, edge_ints, edge_legal, b, node, sigma, rule_scratch)
            if action < 0:
                return OVERFLOW
            child = edge_ints[b, node, CHILD, action]
            depth += 1
            # A discount of 0 ends the episode: nothing below the child can change the backed-up value,
            # so the walk stops there as at the depth cut-off instead of spending model calls on it.
            if child == UNVISITED or depth >= max_depth or edge_floats[b, node, DISCOUNT, action] == 0.0:
                out_parent[b] = node
                out_action[b] = action
                out_expand[b] = child == UNVISITED
                break
            node = child
    return 0


@njit(cache=True, error_model="numpy")
def check_model_outputs(expand, reward, discount, prior_logits, value):
    """0, or the error code of the first model output with a NaN/inf among the expanding trees.

    -inf logits rule actions out, but each row needs one finite logit to be a prior.
    """
    for b in range(expand.shape[0]):
        if expand[b]:
            if not np.isfinite(reward[b]):
                return REWARD_ERROR
            if not np.isfinite(discount[b]):
                return DISCOUNT_ERROR
            if not np.isfinite(value[b]):
                return VALUE_ERROR
            any_finite = False
            for a in range(prior_logits.shape[1]):
                if np.isnan(prior_logits[b, a]) or prior_logits[b, a] == np.inf:
                    return LOGITS_ERROR
                any_finite = any_finite or prior_logits[b, a] > -np.inf
            if not any_finite:
                return LOGITS_ERROR
    return 0


@njit(cache=True, inline="always", error_model="numpy")
def backup_path(parents, action_from_parent, edge_floats, edge_ints, node_visits, node_values, bounds, b, leaf, leaf_value,
                update_bounds):  # fmt: skip
    """_Unbatched_: back ``leaf_value`` up from ``leaf`` to the root of tree ``b`` (arrays as in
    :class:`~gym_planning.search.tree.TreeArrays`), widening its Q ``bounds`` when ``update_bounds``.
    False on overflow."""
    index = leaf
    while index != ROOT_INDEX:
        p = parents[b, index]
        a = action_from_parent[b, index]
        count = node_visits[b, p]
        reward, discount = edge_floats[b, p, REWARD, a], edge_floats[b, p, DISCOUNT, a]
        leaf_value = reward + discount * leaf_value
        node_values[b, p] = (node_values[b, p] * count + leaf_value) / (count + 1.0)
        node_visits[b, p] = count + 1
        edge_floats[b, p, VALUE, a] = node_values[b, index]
        edge_ints[b, p, VISITS, a] += 1
        if update_bounds:
            q = reward + discount * node_values[b, index]
            bounds[b, 0] = min(bounds[b, 0], q)
            bounds[b, 1] = max(bounds[b, 1], q)
        index = p
    if not np.isfinite(node_values[b, ROOT_INDEX]):
        return False
    return not update_bounds or np.isfinite(bounds[b, 1] - bounds[b, 0])


@njit(cache=True, error_model="numpy")
def expand(arrays, parent, action, expand_mask, reward, discount, prior_logits, value, legal, discount_sign, out_slots):
    """Add the child reached by ``action[b]`` from ``parent[b]`` in each tree where ``expand_mask`` is True,
    with the model's outputs (``reward``, ``discount``, ``value`` ``[B]`` of the step and the new state,
    ``prior_logits`` and ``legal`` ``[B, A]``). ``out_slots[b]`` gets the new node's embedding slot (-1 where
    nothing expands). A state with no legal action is terminal for a perfect model: it stays searchable
    (every action legal) and its discount 0 ends the value."""
    edge_floats, edge_ints, edge_legal, num_nodes = arrays.edge_floats, arrays.edge_ints, arrays.edge_legal, arrays.num_nodes
    parents, action_from_parent, node_depth = arrays.parents, arrays.action_from_parent, arrays.node_depth
    raw_values, node_values, node_visits, slots = (
        arrays.raw_values,
        arrays.node_values,
        arrays.node_visits,
        arrays.embedding_slots,
    )
    num_actions = prior_logits.shape[1]
    for b in range(parent.shape[0]):
        out_slots[b] = -1
        if not expand_mask[b]:
            continue
        p, a, leaf = parent[b], action[b], num_nodes[b]
        num_nodes[b] = leaf + 1
        parents[b, leaf], action_from_parent[b, leaf], node_depth[b, leaf] = p, a, node_depth[b, p] + 1
        raw_values[b, leaf], node_values[b, leaf], node_visits[b, leaf] = value[b], value[b], 1
        # Node n's slot is its root's plus n (the roots' are b * N): a function of the row's own root, so that
        # a kernel given a slice of the batch's rows writes the same slots as one given the whole batch.
        slots[b, leaf] = out_slots[b] = slots[b, ROOT_INDEX] + leaf
        any_legal = False
        for c in range(num_actions):
            edge_floats[b, leaf, LOGIT, c] = prior_logits[b, c]
            any_legal = any_legal or legal[b, c]
        for c in range(num_actions):
            edge_legal[b, leaf, c] = legal[b, c] or not any_legal
        # The prior probabilities are read at every visit of the node: compute them once, here.
        set_prior_probabilities(edge_floats, b, leaf)
        edge_ints[b, p, CHILD, a] = leaf
        edge_floats[b, p, REWARD, a] = reward[b]
        edge_floats[b, p, DISCOUNT, a] = discount_sign * discount[b]


@njit(cache=True, error_model="numpy")
def backup(arrays, parent, action, expand_mask, update_bounds):
    """Back each tree's new value up to its root: the new node's model value, or, where the walk ended
    on an existing node (depth cut-off, terminal step), that node's model value, which also counts as a
    visit of it. Returns 0 or ``OVERFLOW``."""
    edge_floats, edge_ints, parents, action_from_parent = (
        arrays.edge_floats,
        arrays.edge_ints,
        arrays.parents,
        arrays.action_from_parent,
    )
    node_visits, node_values, raw_values, bounds = (
        arrays.node_visits,
        arrays.node_values,
        arrays.raw_values,
        arrays.value_bounds,
    )
    for b in range(parent.shape[0]):
        leaf = edge_ints[b, parent[b], CHILD, action[b]]
        leaf_value = raw_values[b, leaf]
        if not expand_mask[b]:
            count = node_visits[b, leaf]
            node_values[b, leaf] = (node_values[b, leaf] * count + leaf_value) / (count + 1.0)
            node_visits[b, leaf] = count + 1
        if not backup_path(parents, action_from_parent, edge_floats, edge_ints, node_visits, node_values, bounds, b, leaf,
                           leaf_value, update_bounds):  # fmt: skip
            return OVERFLOW
    return 0


@njit(cache=True, error_model="numpy")
def finish_simulation(arrays, parent, action, expand_mask, reward, discount, prior_logits, value, legal, discount_sign,
                      update_bounds, out_slots):  # fmt: skip
    """Everything after the model call: check its outputs, :func:`expand`, :func:`backup`.

    Returns 0 or an error code; on a model-output error the tree is left unchanged.
    """
    code = check_model_outputs(expand_mask, reward, discount, prior_logits, value)
    if code:
        return code
    expand(arrays, parent, action, expand_mask, reward, discount, prior_logits, value, legal, discount_sign, out_slots)
    return backup(arrays, parent, action, expand_mask, update_bounds)
