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

from gym_planning.search.action_selection import gumbel_interior_action, gumbel_root_action, puct_action
from gym_planning.search.qtransforms import all_finite, completed_by_mix_value, min_max_normalised, node_qvalues, softmax
from gym_planning.search.tree import CHILD, DISCOUNT, LOGIT, PROB, REWARD, ROOT_INDEX, UNVISITED, VALUE, VISITS

# Selection rules (the ``rule`` switch).
MUZERO = 0
GUMBEL = 1

# Layout of the float parameters passed to the kernels (one array keeps the calls short).
P_PB_C_INIT, P_PB_C_BASE, P_VALUE_SCALE, P_MAXVISIT_INIT, P_RESCALE, P_USE_MIXED = range(6)

# Error codes: which model output held a NaN or infinity, or OVERFLOW when finite outputs were so large
# that the search's own arithmetic (backed-up values, Q, sigma) left float64's range.
REWARD_ERROR, DISCOUNT_ERROR, VALUE_ERROR, LOGITS_ERROR, OVERFLOW = 1, 2, 3, 4, 5


@njit(cache=True, inline="always")
def gumbel_completed_q(arrays, b, node, params, q, out):
    """Gumbel MuZero's ``sigma(completed Q)`` of node ``node`` of tree ``b`` into ``out`` ``[A]`` (``q`` is
    scratch); False when it overflowed."""
    edges = arrays.edge_floats[b, node]
    node_qvalues(edges[REWARD], edges[DISCOUNT], edges[VALUE], q)
    completed_by_mix_value(
        q,
        arrays.edge_ints[b, node, VISITS],
        edges[PROB],
        arrays.raw_values[b, node],
        params[P_VALUE_SCALE],
        params[P_MAXVISIT_INIT],
        params[P_RESCALE] > 0,
        params[P_USE_MIXED] > 0,
        out,
    )
    return all_finite(out)


@njit(cache=True, inline="always")
def _puct_child(arrays, b, node, params, scratch):
    """pUCT's choice at one node, or -1 when its normalised Q overflowed."""
    edges = arrays.edge_floats[b, node]
    visits = arrays.edge_ints[b, node, VISITS]
    q, scores = scratch[0], scratch[1]
    node_qvalues(edges[REWARD], edges[DISCOUNT], edges[VALUE], q)
    min_max_normalised(q, visits, arrays.value_bounds[b, 0], arrays.value_bounds[b, 1], scores)
    if not all_finite(scores):
        return -1
    return puct_action(edges[PROB], visits, arrays.node_visits[b, node], scores, arrays.edge_legal[b, node],
                       params[P_PB_C_INIT], params[P_PB_C_BASE])  # fmt: skip


@njit(cache=True, inline="always")
def _gumbel_child(arrays, b, node, depth, params, considered_visit, scratch):
    """Gumbel MuZero's choice at one node (the root rule at depth 0), or -1 when sigma overflowed."""
    q, scores, probs = scratch[0], scratch[1], scratch[2]
    if not gumbel_completed_q(arrays, b, node, params, q, scores):
        return -1
    logits = arrays.edge_floats[b, node, LOGIT]
    visits = arrays.edge_ints[b, node, VISITS]
    legal = arrays.edge_legal[b, node]
    if depth == 0:
        return gumbel_root_action(arrays.root_gumbel[b], logits, scores, visits, legal, considered_visit)
    for a in range(logits.shape[0]):
        scores[a] = logits[a] + scores[a]
        if not scores[a] < np.inf:  # -inf (a ruled-out action) is fine; NaN and +inf are not
            return -1
    softmax(scores, probs)
    return gumbel_interior_action(probs, visits, legal)


@njit(cache=True, inline="always")
def select_child(arrays, b, node, depth, rule, params, considered_visit, scratch):
    """The action a simulation takes at ``node`` of tree ``b`` under ``rule``; -1 on overflow.

    ``considered_visit`` is the root's Sequential Halving visit count (Gumbel only); ``scratch`` ``[3, A]``.
    """
    if rule == MUZERO:
        return _puct_child(arrays, b, node, params, scratch)
    return _gumbel_child(arrays, b, node, depth, params, considered_visit, scratch)


@njit(cache=True)
def select(arrays, rule, params, considered_table, num_considered, max_depth, out_parent, out_action, out_expand,
           scratch):  # fmt: skip
    """Descend each of the B trees from its root to the edge the simulation ends on.

    Writes ``out_parent[b]``, ``out_action[b]`` (the edge) and ``out_expand[b]`` (True when the edge leads
    to a new node, so the model must be called; False when the walk stopped on an existing node at
    ``max_depth`` or after a terminal step (discount 0), whose own value is backed up instead).
    ``considered_table`` ``[m + 1, num_simulations]`` and ``num_considered`` ``[B]`` drive Gumbel's
    Sequential Halving. Returns 0, or ``OVERFLOW`` (then the outputs are incomplete).
    """
    batch_size = arrays.num_nodes.shape[0]
    for b in range(batch_size):
        # The simulation index is the number of root visits so far (the root's children's visits).
        simulation = arrays.node_visits[b, ROOT_INDEX] - 1
        considered_visit = considered_table[num_considered[b], simulation] if rule == GUMBEL else 0
        node = ROOT_INDEX
        depth = 0
        while True:
            action = select_child(arrays, b, node, depth, rule, params, considered_visit, scratch)
            if action < 0:
                return OVERFLOW
            child = arrays.edge_ints[b, node, CHILD, action]
            depth += 1
            # A discount of 0 ends the episode: nothing below the child can change the backed-up value,
            # so the walk stops there as at the depth cut-off instead of spending model calls on it.
            if child == UNVISITED or depth >= max_depth or arrays.edge_floats[b, node, DISCOUNT, action] == 0.0:
                out_parent[b] = node
                out_action[b] = action
                out_expand[b] = child == UNVISITED
                break
            node = child
    return 0


@njit(cache=True)
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


@njit(cache=True, inline="always")
def expand_node(arrays, b, parent, action, reward, discount, prior_logits, value, legal):
    """_Unbatched_: add the child reached by ``action`` from ``parent`` with the model's outputs (``reward``
    and ``discount`` of the step, ``prior_logits`` and ``legal`` ``[A]`` and ``value`` of the new state);
    returns its node index. A state with no legal action is terminal for a perfect model: it stays
    searchable (every action legal) and its discount 0 ends the value."""
    leaf = arrays.num_nodes[b]
    arrays.num_nodes[b] = leaf + 1
    arrays.parents[b, leaf] = parent
    arrays.action_from_parent[b, leaf] = action
    arrays.node_depth[b, leaf] = arrays.node_depth[b, parent] + 1
    arrays.embedding_slots[b, leaf] = b * arrays.node_visits.shape[1] + leaf
    arrays.raw_values[b, leaf] = value
    arrays.node_values[b, leaf] = value
    arrays.node_visits[b, leaf] = 1
    edges = arrays.edge_floats[b, leaf]
    any_legal = False
    for a in range(prior_logits.shape[0]):
        edges[LOGIT, a] = prior_logits[a]
        any_legal = any_legal or legal[a]
    for a in range(prior_logits.shape[0]):
        arrays.edge_legal[b, leaf, a] = legal[a] or not any_legal
    # The prior probabilities are read at every visit of the node: compute them once, here.
    softmax(edges[LOGIT], edges[PROB])
    arrays.edge_ints[b, parent, CHILD, action] = leaf
    arrays.edge_floats[b, parent, REWARD, action] = reward
    arrays.edge_floats[b, parent, DISCOUNT, action] = discount
    return leaf


@njit(cache=True, inline="always")
def backup_path(arrays, b, leaf, leaf_value, update_bounds):
    """_Unbatched_: back ``leaf_value`` up from ``leaf`` to the root of tree ``b``, updating visits, mean
    values, the edges' values and (when ``update_bounds``) the tree's Q bounds. False on overflow."""
    index = leaf
    while index != ROOT_INDEX:
        p = arrays.parents[b, index]
        a = arrays.action_from_parent[b, index]
        edges = arrays.edge_floats[b, p]
        count = arrays.node_visits[b, p]
        leaf_value = edges[REWARD, a] + edges[DISCOUNT, a] * leaf_value
        arrays.node_values[b, p] = (arrays.node_values[b, p] * count + leaf_value) / (count + 1.0)
        arrays.node_visits[b, p] = count + 1
        edges[VALUE, a] = arrays.node_values[b, index]
        arrays.edge_ints[b, p, VISITS, a] += 1
        if update_bounds:
            q = edges[REWARD, a] + edges[DISCOUNT, a] * edges[VALUE, a]
            arrays.value_bounds[b, 0] = min(arrays.value_bounds[b, 0], q)
            arrays.value_bounds[b, 1] = max(arrays.value_bounds[b, 1], q)
        index = p
    if not np.isfinite(arrays.node_values[b, ROOT_INDEX]):
        return False
    return not update_bounds or np.isfinite(arrays.value_bounds[b, 1] - arrays.value_bounds[b, 0])


@njit(cache=True)
def expand(arrays, parent, action, expand_mask, reward, discount, prior_logits, value, legal, discount_sign, out_slots):
    """Add the new nodes of the trees where ``expand_mask`` is True; ``out_slots[b]`` gets the new node's
    embedding slot (-1 for trees that expand nothing). Model outputs are ``[B]`` / ``[B, A]``."""
    for b in range(parent.shape[0]):
        if expand_mask[b]:
            leaf = expand_node(arrays, b, parent[b], action[b], reward[b], discount_sign * discount[b], prior_logits[b],
                               value[b], legal[b])  # fmt: skip
            out_slots[b] = arrays.embedding_slots[b, leaf]
        else:
            out_slots[b] = -1


@njit(cache=True)
def backup(arrays, parent, action, expand_mask, update_bounds):
    """Back each tree's new value up to its root: the new node's model value, or, where the walk ended
    on an existing node (depth cut-off, terminal step), that node's model value, which also counts as a
    visit of it. Returns 0 or ``OVERFLOW``."""
    for b in range(parent.shape[0]):
        leaf = arrays.edge_ints[b, parent[b], CHILD, action[b]]
        leaf_value = arrays.raw_values[b, leaf]
        if not expand_mask[b]:
            count = arrays.node_visits[b, leaf]
            arrays.node_values[b, leaf] = (arrays.node_values[b, leaf] * count + leaf_value) / (count + 1.0)
            arrays.node_visits[b, leaf] = count + 1
        if not backup_path(arrays, b, leaf, leaf_value, update_bounds):
            return OVERFLOW
    return 0


@njit(cache=True)
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
