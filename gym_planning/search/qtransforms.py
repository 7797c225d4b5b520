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
def completed_by_mix_value(
    qvalues, visits, prior_probs, raw_value, value_scale, maxvisit_init, rescale_values, use_mixed_value, out
):
    """Gumbel MuZero's ``sigma(completed Q)`` (mctx's ``qtransform_completed_by_mix_value``) into ``out``:
    unvisited actions get the mixed value ``v_mix`` (Danihelka et al. 2022, eq. 33:
    ``(raw_value + sum(N) * sum_visited(pi * q) / sum_visited(pi)) / (1 + sum(N))``, each prior at least the
    smallest positive float so that it stays finite), or without ``use_mixed_value`` the model's raw value of
    the node; then optional min-max rescaling to [0, 1] over the node's actions; then scaling by
    ``(maxvisit_init + max N) * value_scale``. ``prior_probs`` is ``softmax(prior logits)``. Shapes ``[A]``.

    Returns False when a result is NaN or infinite (an overflow). This runs at every Gumbel node of every
    simulation: four passes over the actions.
    """
    num_actions = qvalues.shape[0]
    sum_visits, max_visit, sum_probs = 0, 0, 0.0
    for a in range(num_actions):
        sum_visits += visits[a]
        max_visit = max(max_visit, visits[a])
        if visits[a] > 0:
            sum_probs += max(TINY, prior_probs[a])
    value = raw_value
    if use_mixed_value:
        weighted_q = 0.0
        for a in range(num_actions):
            if visits[a] > 0:
                weighted_q += max(TINY, prior_probs[a]) * qvalues[a] / sum_probs
        value = (raw_value + sum_visits * weighted_q) / (sum_visits + 1.0)
    low, high = np.inf, -np.inf
    for a in range(num_actions):
        out[a] = qvalues[a] if visits[a] > 0 else value
        low, high = min(low, out[a]), max(high, out[a])
    span = max(high - low, EPSILON)
    scale = (maxvisit_init + max_visit) * value_scale
    finite = True
    for a in range(num_actions):
        out[a] = scale * ((out[a] - low) / span if rescale_values else out[a])
        finite = finite and np.isfinite(out[a])
    return finite
