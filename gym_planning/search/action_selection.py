"""Action-selection rules: which child a simulation descends into. One node's row at a time.

All rules take ``legal`` (``[A]`` bool, True = legal) and never return an illegal action. Ties go to
the lowest action index, so searches are deterministic given their inputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gym_planning.search.qtransforms import EPSILON

# Floor of Gumbel MuZero's root scores (mctx's ``score_considered``): a score, not a mask, so that -inf
# logits never meet +inf noise; illegal actions are masked with qtransforms.MASKED_LOGIT.
LOW_LOGIT = -1e9


@njit(cache=True, inline="always", error_model="numpy")
def puct_action(qvalues, prior_probs, visits, node_visit, low, high, legal, pb_c_init, pb_c_base):
    """MuZero's pUCT rule (Schrittwieser et al. 2020, appendix B)::

        argmax_a  Q̄(a) + sqrt(N) * (c1 + log((N + c2 + 1) / c2)) * P(a) / (1 + n(a))

    ``N`` is the node's visit count (its expansion included), ``n(a)`` the child's, ``Q̄`` the min-max
    normalised Q: ``(q - low) / (high - low)`` for visited children (the span at least ``EPSILON``), 0 for
    unvisited ones, with ``low``/``high`` the tree-wide bounds of Q (or known value bounds). Shapes ``[A]``;
    returns the action index, or -1 when a normalised Q overflowed. One pass over the actions: this runs at
    every node of every simulation.
    """
    span = high - low
    if span < EPSILON:
        span = EPSILON
    explore = np.sqrt(node_visit) * (pb_c_init + np.log((node_visit + pb_c_base + 1.0) / pb_c_base))
    best_action = -1
    best_score = -np.inf
    for a in range(prior_probs.shape[0]):
        normalised_q = 0.0
        if visits[a] > 0:
            normalised_q = (qvalues[a] - low) / span
            if not np.isfinite(normalised_q):
                return -1
        if not legal[a]:
            continue
        score = normalised_q + explore * prior_probs[a] / (visits[a] + 1)
        if best_action < 0 or score > best_score:
            best_action = a
            best_score = score
    return best_action


@njit(cache=True, inline="always", error_model="numpy")
def gumbel_interior_action(prior_logits, sigma, visits, legal, scores, exps):
    """Gumbel MuZero's deterministic interior rule: ``argmax_a pi'(a) - n(a) / (1 + sum_b n(b))`` with
    ``pi' = softmax(logits + sigma(completed Q))`` (``sigma`` from
    :func:`~gym_planning.search.qtransforms.completed_by_mix_value`). Shapes ``[A]``; ``scores`` and ``exps`` are
    scratch.
    Returns the action, or -1 when a score is NaN or +inf (-inf, a ruled-out action, is fine).
    """
    num_actions = visits.shape[0]
    top = -np.inf
    total_visits = 0
    for a in range(num_actions):
        scores[a] = prior_logits[a] + sigma[a]
        if not scores[a] < np.inf:
            return -1
        top = max(top, scores[a])
        total_visits += visits[a]
    total = 0.0
    for a in range(num_actions):
        exps[a] = np.exp(scores[a] - top)
        total += exps[a]
    best_action = -1
    best_score = -np.inf
    for a in range(num_actions):
        if not legal[a]:
            continue
        score = exps[a] / total - visits[a] / (1.0 + total_visits)
        if best_action < 0 or score > best_score:
            best_action = a
            best_score = score
    return best_action


@njit(cache=True, inline="always", error_model="numpy")
def gumbel_root_action(gumbel, prior_logits, completed_q, visits, legal, considered_visit):
    """Gumbel MuZero's root rule: among legal actions with exactly ``considered_visit`` visits
    (Sequential Halving), ``argmax_a g(a) + logits(a) + sigma(q̂(a))``. Falls back to all legal
    actions when none has that count. Shapes ``[A]``.
    """
    top = -np.inf
    for a in range(prior_logits.shape[0]):
        if legal[a] and prior_logits[a] > top:
            top = prior_logits[a]
    best_action = -1
    best_score = -np.inf
    fallback_action = -1
    fallback_score = -np.inf
    for a in range(prior_logits.shape[0]):
        if not legal[a]:
            continue
        score = max(LOW_LOGIT, gumbel[a] + (prior_logits[a] - top) + completed_q[a])
        if fallback_action < 0 or score > fallback_score:
            fallback_action = a
            fallback_score = score
        if visits[a] == considered_visit and (best_action < 0 or score > best_score):
            best_action = a
            best_score = score
    return best_action if best_action >= 0 else fallback_action
