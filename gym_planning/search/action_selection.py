"""Action-selection rules: which child a simulation descends into. One node's row at a time.

All rules take ``legal`` (``[A]`` bool, True = legal) and never return an illegal action. Ties go to
the lowest action index, so searches are deterministic given their inputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Floor of Gumbel MuZero's root scores (mctx's ``score_considered``): a score, not a mask, so that -inf
# logits never meet +inf noise; illegal actions are masked with qtransforms.MASKED_LOGIT.
LOW_LOGIT = -1e9


@njit(cache=True, inline="always", error_model="numpy")
def puct_action(prior_probs, visits, node_visit, normalised_q, legal, pb_c_init, pb_c_base):
    """MuZero's pUCT rule (Schrittwieser et al. 2020, appendix B)::

        argmax_a  Q̄(a) + sqrt(N) * (c1 + log((N + c2 + 1) / c2)) * P(a) / (1 + n(a))

    ``N`` is the node's visit count (its expansion included), ``n(a)`` the child's, ``Q̄`` the
    min-max normalised Q. Shapes ``[A]``; returns the action index.
    """
    pb_c = pb_c_init + np.log((node_visit + pb_c_base + 1.0) / pb_c_base)
    explore = np.sqrt(node_visit) * pb_c
    best_action = -1
    best_score = -np.inf
    for a in range(prior_probs.shape[0]):
        if not legal[a]:
            continue
        score = normalised_q[a] + explore * prior_probs[a] / (visits[a] + 1)
        if best_action < 0 or score > best_score:
            best_action = a
            best_score = score
    return best_action


@njit(cache=True, inline="always", error_model="numpy")
def gumbel_interior_action(improved_probs, visits, legal):
    """Gumbel MuZero's deterministic interior rule: ``argmax_a pi'(a) - n(a) / (1 + sum_b n(b))``.

    ``improved_probs = softmax(logits + sigma(completed Q))``. Shapes ``[A]``.
    """
    total = 0
    for a in range(visits.shape[0]):
        total += visits[a]
    best_action = -1
    best_score = -np.inf
    for a in range(visits.shape[0]):
        if not legal[a]:
            continue
        score = improved_probs[a] - visits[a] / (1.0 + total)
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
