"""Q-value transforms: how a node's children's Q-values are turned into scores.

Each function works on one node's row of ``A`` children and writes into ``out`` (shape ``[A]``), so
the batch kernels in :mod:`gym_planning.search.search` can reuse one scratch buffer.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Logit given to illegal actions: softmax gives them exactly 0 probability, and it stays finite.
MASKED_LOGIT = -1e30
EPSILON = 1e-8
# Smallest positive float64: keeps the mixed value finite when visited actions have zero prior.
TINY = np.finfo(np.float64).tiny


@njit(cache=True, inline="always", error_model="numpy")
def softmax(logits, out):
    """``out = softmax(logits)`` along the only axis, numerically stable. Shapes ``[A]``."""
    top = logits[0]
    for a in range(1, logits.shape[0]):
        if logits[a] > top:
            top = logits[a]
    total = 0.0
    for a in range(logits.shape[0]):
        out[a] = np.exp(logits[a] - top)
        total += out[a]
    for a in range(logits.shape[0]):
        out[a] = out[a] / total


@njit(cache=True, error_model="numpy")
def softmax_rows(logits):
    """:func:`softmax` of each row of ``logits`` ``[B, A]``; returns a new ``[B, A]`` array."""
    out = np.empty(logits.shape)
    for b in range(logits.shape[0]):
        softmax(logits[b], out[b])
    return out


@njit(cache=True, inline="always", error_model="numpy")
def node_qvalues(rewards, discounts, values, out):
    """``out[a] = rewards[a] + discounts[a] * values[a]``: Q of each child edge. Shapes ``[A]``."""
    for a in range(rewards.shape[0]):
        out[a] = rewards[a] + discounts[a] * values[a]


@njit(cache=True, inline="always", error_model="numpy")
def min_max_normalised(qvalues, visits, low, high, out):
    """MuZero's normalisation: ``(q - low) / (high - low)`` for visited children, 0 for unvisited.

    ``low``/``high`` are the tree-wide bounds of Q seen so far (or known value bounds).
    """
    span = high - low
    if span < EPSILON:
        span = EPSILON
    for a in range(qvalues.shape[0]):
        if visits[a] > 0:
            out[a] = (qvalues[a] - low) / span
        else:
            out[a] = 0.0


@njit(cache=True, inline="always", error_model="numpy")
def mixed_value(raw_value, qvalues, visits, prior_probs):
    """Gumbel MuZero's value estimate for unvisited actions (``v_mix``, Danihelka et al. 2022, eq. 33).

    ``(raw_value + sum(N) * sum_visited(pi * q) / sum_visited(pi)) / (1 + sum(N))``.
    """
    sum_visits = 0
    sum_probs = 0.0
    for a in range(qvalues.shape[0]):
        sum_visits += visits[a]
        if visits[a] > 0:
            sum_probs += max(TINY, prior_probs[a])
    weighted_q = 0.0
    for a in range(qvalues.shape[0]):
        if visits[a] > 0:
            weighted_q += max(TINY, prior_probs[a]) * qvalues[a] / sum_probs
    return (raw_value + sum_visits * weighted_q) / (sum_visits + 1.0)


@njit(cache=True, inline="always", error_model="numpy")
def completed_by_mix_value(
    qvalues, visits, prior_probs, raw_value, value_scale, maxvisit_init, rescale_values, use_mixed_value, out
):
    """Gumbel MuZero's ``sigma(completed Q)`` (mctx's ``qtransform_completed_by_mix_value``): unvisited
    actions get the mixed value (or, without ``use_mixed_value``, the model's raw value of the node), then
    optional min-max rescaling to [0, 1] over the node's actions, then scaling by
    ``(maxvisit_init + max N) * value_scale``. ``prior_probs`` is ``softmax(prior logits)``. Shapes ``[A]``.
    """
    num_actions = qvalues.shape[0]
    if use_mixed_value:
        value = mixed_value(raw_value, qvalues, visits, prior_probs)
    else:
        value = raw_value
    max_visit = 0
    for a in range(num_actions):
        out[a] = qvalues[a] if visits[a] > 0 else value
        if visits[a] > max_visit:
            max_visit = visits[a]
    if rescale_values:
        low = out[0]
        high = out[0]
        for a in range(1, num_actions):
            low = min(low, out[a])
            high = max(high, out[a])
        span = max(high - low, EPSILON)
        for a in range(num_actions):
            out[a] = (out[a] - low) / span
    scale = (maxvisit_init + max_visit) * value_scale
    for a in range(num_actions):
        out[a] = scale * out[a]


@njit(cache=True, inline="always", error_model="numpy")
def all_finite(values):
    """True when no entry of ``values`` (``[A]``) is NaN or infinite (an overflow in the search's arithmetic)."""
    for a in range(values.shape[0]):
        if not np.isfinite(values[a]):
            return False
    return True
