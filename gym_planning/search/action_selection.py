"""Action-selection rules: which child a simulation descends into, at node ``node`` of tree ``b``.

The rules read the node's edges in place, ``edge_floats[b, node, PLANE, a]``, ``edge_ints[b, node, PLANE, a]``
and ``edge_legal[b, node, a]`` (the fields of :class:`~gym_planning.search.tree.TreeArrays`), not through row
views: every array view made in compiled code is an atomic reference-count update, and the views of a node's
rows cost a quarter of a search's time at batch 256 (``perf``, issue 17). ``A`` actions. No rule returns an
illegal action; ties go to the lowest action index, so searches are deterministic given their inputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gym_planning.search.qtransforms import EPSILON
from gym_planning.search.tree import DISCOUNT, LOGIT, PROB, REWARD, VALUE, VISITS

# Floor of Gumbel MuZero's root scores (mctx's ``score_considered``): a score, not a mask, so that -inf
# logits never meet +inf noise; illegal actions are masked with qtransforms.MASKED_LOGIT.
LOW_LOGIT = -1e9


@njit(cache=True, inline="always", error_model="numpy")
def puct_action(edge_floats, edge_ints, edge_legal, b, node, node_visit, low, high, pb_c_init, pb_c_base):
    """MuZero's pUCT rule (Schrittwieser et al. 2020, appendix B)::

        argmax_a  Q̄(a) + sqrt(N) * (c1 + log((N + c2 + 1) / c2)) * P(a) / (1 + n(a))

    ``N`` is the node's visit count ``node_visit`` (its expansion included), ``n(a)`` the child's, ``P`` the
    prior probabilities, ``Q̄`` the min-max normalised Q: ``(Q - low) / (high - low)`` for visited children
    (the span at least ``EPSILON``), 0 for unvisited ones, with ``low``/``high`` the tree's bounds of Q (or
    known value bounds). Returns the action, or -1 when a normalised Q overflowed.
    """
    span = high - low
    if span < EPSILON:
        span = EPSILON
    explore = np.sqrt(node_visit) * (pb_c_init + np.log((node_visit + pb_c_base + 1.0) / pb_c_base))
    best_action = -1
    best_score = -np.inf
    for a in range(edge_floats.shape[3]):
        visits = edge_ints[b, node, VISITS, a]
        normalised_q = 0.0
        if visits > 0:
            q = edge_floats[b, node, REWARD, a] + edge_floats[b, node, DISCOUNT, a] * edge_floats[b, node, VALUE, a]
            normalised_q = (q - low) / span
            if not np.isfinite(normalised_q):
                return -1
        if not edge_legal[b, node, a]:
            continue
        score = normalised_q + explore * edge_floats[b, node, PROB, a] / (visits + 1)
        if best_action < 0 or score > best_score:
            best_action = a
            best_score = score
    return best_action


@njit(cache=True, inline="always", error_model="numpy")
def gumbel_interior_action(edge_floats, edge_ints, edge_legal, b, node, sigma, scratch):
    """Gumbel MuZero's deterministic interior rule: ``argmax_a pi'(a) - n(a) / (1 + sum_b n(b))`` with
    ``pi' = softmax(logits + sigma(completed Q))``; ``sigma`` ``[A]`` from
    :func:`~gym_planning.search.qtransforms.completed_by_mix_value`, ``scratch`` ``[A]``. Returns the action,
    or -1 when a score is NaN or +inf (-inf, a ruled-out action, is fine).
    """
    num_actions = edge_floats.shape[3]
    top = -np.inf
    total_visits = 0
    for a in range(num_actions):
        scratch[a] = edge_floats[b, node, LOGIT, a] + sigma[a]
        if not scratch[a] < np.inf:
            return -1
        top = max(top, scratch[a])
        total_visits += edge_ints[b, node, VISITS, a]
    total = 0.0
    for a in range(num_actions):
        scratch[a] = np.exp(scratch[a] - top)
        total += scratch[a]
    best_action = -1
    best_score = -np.inf
    for a in range(num_actions):
        if not edge_legal[b, node, a]:
            continue
        score = scratch[a] / total - edge_ints[b, node, VISITS, a] / (1.0 + total_visits)
        if best_action < 0 or score > best_score:
            best_action = a
            best_score = score
    return best_action


@njit(cache=True, inline="always", error_model="numpy")
def prior_action(edge_floats, edge_legal, b, node):
    """``argmax_a P(a)`` over legal actions at node ``node`` of tree ``b`` (the prior probabilities), ties to the
    lowest index: :func:`gumbel_interior_action` at a node none of whose children has been visited, where
    ``sigma`` is 0 when Q is rescaled (every completed Q is the same stand-in value), so that
    ``pi' = softmax(logits + 0)`` is the stored prior, bit for bit (the same exps, sum and divisions), and no
    visit term differs. One pass instead of the six of the completed Q and the interior rule; the last node of
    nearly every walk is such a node.
    """
    best_action = -1
    best_score = -np.inf
    for a in range(edge_floats.shape[3]):
        if edge_legal[b, node, a] and (best_action < 0 or edge_floats[b, node, PROB, a] > best_score):
            best_action = a
            best_score = edge_floats[b, node, PROB, a]
    return best_action


@njit(cache=True, inline="always", error_model="numpy")
def gumbel_root_action(edge_floats, edge_ints, edge_legal, root_gumbel, b, sigma, considered_visit):
    """Gumbel MuZero's root rule at the root (node 0) of tree ``b``: among legal actions with exactly
    ``considered_visit`` visits (Sequential Halving), ``argmax_a g(a) + logits(a) + sigma(q̂(a))`` with the
    logits shifted so that the best legal one is 0, ``g`` the tree's row of ``root_gumbel`` ``[B, A]`` and
    ``sigma`` ``[A]``. Falls back to all legal actions when none has that count.
    """
    num_actions = edge_floats.shape[3]
    top = -np.inf
    for a in range(num_actions):
        if edge_legal[b, 0, a] and edge_floats[b, 0, LOGIT, a] > top:
            top = edge_floats[b, 0, LOGIT, a]
    best_action = -1
    best_score = -np.inf
    fallback_action = -1
    fallback_score = -np.inf
    for a in range(num_actions):
        if not edge_legal[b, 0, a]:
            continue
        score = max(LOW_LOGIT, root_gumbel[b, a] + (edge_floats[b, 0, LOGIT, a] - top) + sigma[a])
        if fallback_action < 0 or score > fallback_score:
            fallback_action = a
            fallback_score = score
        if edge_ints[b, 0, VISITS, a] == considered_visit and (best_action < 0 or score > best_score):
            best_action = a
            best_score = score
    return best_action if best_action >= 0 else fallback_action
