"""The batched search loop: select in Numba, call the model once for all B trees, expand and back up
in Numba. One simulation per iteration; ``num_simulations`` iterations.

The selection rule is chosen by ``policy`` (``MUZERO`` pUCT or ``GUMBEL``); both share the tree, the
expansion and the backup. Root preparation (noise, masks) and the final action live in
:mod:`gym_planning.search.policies`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gym_planning.search.action_selection import gumbel_interior_action, gumbel_root_action, puct_action
from gym_planning.search.base import JitRecurrentFn, RecurrentFn
from gym_planning.search.checks import check_child_mask, check_recurrent_output, to_numpy, unpack_recurrent_result
from gym_planning.search.embeddings import EmbeddingStore
from gym_planning.search.qtransforms import all_finite, completed_by_mix_value, min_max_normalised, node_qvalues, softmax
from gym_planning.search.tree import ROOT_INDEX, UNVISITED, Tree

MUZERO = 0
GUMBEL = 1

# Layout of the float parameters passed to the kernels (one array keeps the call short).
P_PB_C_INIT, P_PB_C_BASE, P_VALUE_SCALE, P_MAXVISIT_INIT, P_RESCALE, P_USE_MIXED = range(6)

# Error codes of the kernels: which model output held a NaN or infinity, or OVERFLOW when finite outputs
# were so large that the search's own arithmetic (backed-up values, Q, sigma) left float64's range.
_OUTPUT_FIELDS = {1: "reward", 2: "discount", 3: "value", 4: "prior_logits"}
# Advice appended to an error code's message; only the prior logits have one.
_HINTS = {4: " (logits must be finite or -inf, with a finite one in every row)"}
OVERFLOW = 5


def overflow_message(simulation: int) -> str:
    """The error for :data:`OVERFLOW`: what overflowed and what to do."""
    return (
        f"the search's values overflowed float64 at simulation {simulation}: the model's rewards, values, discounts "
        "or the search settings are too large in magnitude (backed-up values, Q or sigma reached NaN/inf); "
        "scale rewards and values down (e.g. to [-1e6, 1e6]) and keep discounts in [0, 1]"
    )


@njit(cache=True, inline="always")
def _gumbel_completed_q(tree_rewards, tree_discounts, tree_values, visits, logits, raw_value, params, q, out):
    """``sigma(completed Q)`` of one node into ``out`` ``[A]``; False when it overflowed."""
    node_qvalues(tree_rewards, tree_discounts, tree_values, q)
    completed_by_mix_value(
        q,
        visits,
        logits,
        raw_value,
        params[P_VALUE_SCALE],
        params[P_MAXVISIT_INIT],
        params[P_RESCALE] > 0,
        params[P_USE_MIXED] > 0,
        out,
    )
    return all_finite(out)


@njit(cache=True)
def select_batch(
    children_index,
    children_visits,
    children_prior_logits,
    children_legal,
    children_rewards,
    children_discounts,
    children_values,
    node_visits,
    raw_values,
    node_values,
    value_bounds,
    root_gumbel,
    policy,
    params,
    considered_table,
    num_considered,
    max_depth,
    out_parent,
    out_action,
    out_expand,
    scratch,
):
    """Descend each of the B trees from its root to the edge the simulation ends on.

    Returns 0, or ``OVERFLOW`` when a node's scores are not finite (then the outputs are incomplete).
    Writes ``out_parent[b]``, ``out_action[b]`` (the edge) and ``out_expand[b]`` (True when the edge
    leads to a new node, so the model must be called; False when the walk stopped on an existing node at
    ``max_depth`` or after a terminal step (discount 0), whose own value is backed up instead). ``scratch`` is a ``[3, A]`` float64 work buffer.
    """
    batch_size, _, num_actions = children_index.shape
    q, scores, probs = scratch[0], scratch[1], scratch[2]
    for b in range(batch_size):
        node = ROOT_INDEX
        depth = 0
        while True:
            visits = children_visits[b, node]
            logits = children_prior_logits[b, node]
            legal = children_legal[b, node]
            if policy == MUZERO:
                node_qvalues(children_rewards[b, node], children_discounts[b, node], children_values[b, node], q)
                min_max_normalised(q, visits, value_bounds[b, 0], value_bounds[b, 1], scores)
                if not all_finite(scores):
                    return OVERFLOW
                softmax(logits, probs)
                action = puct_action(probs, visits, node_visits[b, node], scores, legal, params[P_PB_C_INIT], params[P_PB_C_BASE])
            else:
                if not _gumbel_completed_q(
                    children_rewards[b, node],
                    children_discounts[b, node],
                    children_values[b, node],
                    visits,
                    logits,
                    raw_values[b, node],
                    params,
                    q,
                    scores,
                ):
                    return OVERFLOW
                if depth == 0:
                    simulation_index = 0
                    for a in range(num_actions):
                        simulation_index += visits[a]
                    considered = considered_table[num_considered[b], simulation_index]
                    action = gumbel_root_action(root_gumbel[b], logits, scores, visits, legal, considered)
                else:
                    for a in range(num_actions):
                        scores[a] = logits[a] + scores[a]
                        if not scores[a] < np.inf:  # -inf (a ruled-out action) is fine; NaN and +inf are not
                            return OVERFLOW
                    softmax(scores, probs)
                    action = gumbel_interior_action(probs, visits, legal)
            child = children_index[b, node, action]
            depth += 1
            # A discount of 0 ends the episode: nothing below the child can change the backed-up value,
            # so the walk stops there as at the depth cut-off instead of spending model calls on it.
            if child == UNVISITED or depth >= max_depth or children_discounts[b, node, action] == 0.0:
                out_parent[b] = node
                out_action[b] = action
                out_expand[b] = child == UNVISITED
                break
            node = child
    return 0


@njit(cache=True)
def expand_and_backup_batch(
    children_index,
    children_visits,
    children_prior_logits,
    children_legal,
    children_rewards,
    children_discounts,
    children_values,
    node_visits,
    raw_values,
    node_values,
    parents,
    action_from_parent,
    node_depth,
    embedding_slots,
    num_nodes,
    value_bounds,
    update_bounds,
    parent,
    action,
    expand,
    reward,
    discount,
    prior_logits,
    value,
    legal_mask,
    discount_sign,
    out_slots,
):
    """Add the new nodes the model just evaluated and back their values up to the roots.

    Returns 0, or a code naming the first model output with a NaN/inf among the expanded trees (the
    tree is then left unchanged), or ``OVERFLOW`` when finite outputs made a backed-up value or the
    tree's Q bounds leave float64's range (checked at the root, where every overflow arrives).
    """
    batch_size, max_nodes, num_actions = children_index.shape
    for b in range(batch_size):
        if expand[b]:
            if not np.isfinite(reward[b]):
                return 1
            if not np.isfinite(discount[b]):
                return 2
            if not np.isfinite(value[b]):
                return 3
            any_finite = False
            for a in range(num_actions):
                if np.isnan(prior_logits[b, a]) or prior_logits[b, a] == np.inf:
                    return 4
                any_finite = any_finite or prior_logits[b, a] > -np.inf
            if not any_finite:  # -inf rules an action out, but a row needs one finite logit to be a prior
                return 4
    for b in range(batch_size):
        p = parent[b]
        a = action[b]
        if expand[b]:
            leaf = num_nodes[b]
            num_nodes[b] = leaf + 1
            parents[b, leaf] = p
            action_from_parent[b, leaf] = a
            node_depth[b, leaf] = node_depth[b, p] + 1
            embedding_slots[b, leaf] = b * max_nodes + leaf
            out_slots[b] = b * max_nodes + leaf
            raw_values[b, leaf] = value[b]
            node_values[b, leaf] = value[b]
            node_visits[b, leaf] = 1
            for c in range(num_actions):
                children_prior_logits[b, leaf, c] = prior_logits[b, c]
                children_legal[b, leaf, c] = legal_mask[b, c]
            children_index[b, p, a] = leaf
            children_rewards[b, p, a] = reward[b]
            children_discounts[b, p, a] = discount_sign * discount[b]
            leaf_value = value[b]
        else:
            # Depth cut-off: the walk ended on an existing node; its model value stands in for the subtree.
            leaf = children_index[b, p, a]
            out_slots[b] = -1
            leaf_value = raw_values[b, leaf]
            count = node_visits[b, leaf]
            node_values[b, leaf] = (node_values[b, leaf] * count + leaf_value) / (count + 1.0)
            node_visits[b, leaf] = count + 1
        index = leaf
        while index != ROOT_INDEX:
            p = parents[b, index]
            a = action_from_parent[b, index]
            count = node_visits[b, p]
            leaf_value = children_rewards[b, p, a] + children_discounts[b, p, a] * leaf_value
            node_values[b, p] = (node_values[b, p] * count + leaf_value) / (count + 1.0)
            node_visits[b, p] = count + 1
            children_values[b, p, a] = node_values[b, index]
            children_visits[b, p, a] += 1
            if update_bounds:
                q = children_rewards[b, p, a] + children_discounts[b, p, a] * children_values[b, p, a]
                value_bounds[b, 0] = min(value_bounds[b, 0], q)
                value_bounds[b, 1] = max(value_bounds[b, 1], q)
            index = p
        if not np.isfinite(node_values[b, ROOT_INDEX]):
            return OVERFLOW
        if update_bounds and not np.isfinite(value_bounds[b, 1] - value_bounds[b, 0]):
            return OVERFLOW
    return 0


def run_search(
    tree: Tree,
    store: EmbeddingStore,
    recurrent_fn: RecurrentFn,
    num_simulations: int,
    *,
    policy: int,
    params: np.ndarray,
    considered_table: np.ndarray,
    num_considered: np.ndarray,
    max_depth: int,
    discount_sign: float,
    update_bounds: bool,
) -> Tree:
    """Run ``num_simulations`` batched simulations on a tree whose roots are already set up."""
    if isinstance(recurrent_fn, JitRecurrentFn):
        from gym_planning.search.jit_search import run_jit  # imports this module's kernels

        run_jit(tree, store, recurrent_fn, num_simulations, policy, params, considered_table, num_considered, max_depth,
                discount_sign, update_bounds)  # fmt: skip
        return tree
    batch_size, _, num_actions = tree.children_index.shape
    parent = np.zeros(batch_size, np.int32)
    action = np.zeros(batch_size, np.int64)
    expand = np.zeros(batch_size, np.bool_)
    slots = np.zeros(batch_size, np.int64)
    all_legal = np.ones((batch_size, num_actions), np.bool_)
    rows = np.arange(batch_size)
    scratch = np.empty((3, num_actions))
    for simulation in range(num_simulations):
        if select_batch(
            tree.children_index, tree.children_visits, tree.children_prior_logits, tree.children_legal,
            tree.children_rewards, tree.children_discounts, tree.children_values, tree.node_visits, tree.raw_values,
            tree.node_values, tree.value_bounds, tree.root_gumbel, policy, params, considered_table, num_considered,
            max_depth, parent, action, expand, scratch,
        ):  # fmt: skip
            raise ValueError(overflow_message(simulation))
        # Only the trees that expand a new node ask the model: a perfect model then steps no env copy
        # for the others (walks that stopped at max_depth or a terminal step).
        expanding = rows if expand.all() else np.flatnonzero(expand)
        if expanding.size:
            reward, discount, logits, value, legal, new_embedding = _call_model(
                recurrent_fn, store.gather(tree.embedding_slots[expanding, parent[expanding]]), action[expanding],
                expanding, all_legal,
            )  # fmt: skip
        else:
            reward = discount = value = np.zeros(batch_size)
            logits = np.zeros((batch_size, num_actions))
            legal = all_legal
        code = expand_and_backup_batch(
            tree.children_index, tree.children_visits, tree.children_prior_logits, tree.children_legal,
            tree.children_rewards, tree.children_discounts, tree.children_values, tree.node_visits, tree.raw_values,
            tree.node_values, tree.parents, tree.action_from_parent, tree.node_depth, tree.embedding_slots,
            tree.num_nodes, tree.value_bounds, update_bounds, parent, action, expand, reward, discount, logits, value,
            legal, discount_sign, slots,
        )  # fmt: skip
        if code == OVERFLOW:
            raise ValueError(overflow_message(simulation))
        if code:
            hint = _HINTS.get(code, "")
            raise ValueError(f"recurrent_fn returned a NaN or infinite {_OUTPUT_FIELDS[code]} at simulation {simulation}{hint}")
        if expanding.size:
            store.scatter(slots[expanding], new_embedding)
    return tree


def _call_model(recurrent_fn, embedding, action, expanding, all_legal):
    """Call the model on the ``K`` expanding rows and spread its outputs over the ``B`` trees."""
    batch_size, num_actions = all_legal.shape
    num_rows = expanding.shape[0]
    output, new_embedding = unpack_recurrent_result(recurrent_fn(embedding, action))
    reward, discount, logits, value = check_recurrent_output(output, num_rows, num_actions)
    if len(new_embedding) != num_rows:
        raise ValueError(f"recurrent_fn returned {len(new_embedding)} new embeddings; expected one per action, {num_rows}")
    legal = None if output.legal_mask is None else check_child_mask(to_numpy(output.legal_mask), num_rows, num_actions)
    if num_rows < batch_size:
        full = np.zeros(batch_size), np.zeros(batch_size), np.zeros((batch_size, num_actions)), np.zeros(batch_size)
        for target, part in zip(full, (reward, discount, logits, value)):
            target[expanding] = part
        reward, discount, logits, value = full
        if legal is not None:
            full_legal = np.ones((batch_size, num_actions), np.bool_)
            full_legal[expanding] = legal
            legal = full_legal
    if legal is None:
        legal = all_legal
    return reward, discount, logits, value, legal, new_embedding
