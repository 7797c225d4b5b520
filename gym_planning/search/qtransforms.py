"""Q-value transforms: how a node's children's Q-values are turned into scores.

Each function works on one node's ``A`` children and writes into ``out`` (shape ``[A]``), so the batch kernels
in :mod:`gym_planning.search.search` can reuse one scratch buffer.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gym_planning.search.tree import DISCOUNT, LOGIT, PROB, REWARD, VALUE, VISITS

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


@njit(cache=True, inline="always", error_model="numpy")
def set_prior_probabilities(edge_floats, b, node):
    """``edge_floats[b, node, PROB] = softmax(edge_floats[b, node, LOGIT])`` in place (the arithmetic of
    :func:`softmax`, without row views: see :mod:`~gym_planning.search.action_selection`)."""
    num_actions = edge_floats.shape[3]
    top = edge_floats[b, node, LOGIT, 0]
    for a in range(1, num_actions):
        if edge_floats[b, node, LOGIT, a] > top:
            top = edge_floats[b, node, LOGIT, a]
    total = 0.0
    for a in range(num_actions):
        edge_floats[b, node, PROB, a] = np.exp(edge_floats[b, node, LOGIT, a] - top)
        total += edge_floats[b, node, PROB, a]
    for a in range(num_actions):
        edge_floats[b, node, PROB, a] = edge_floats[b, node, PROB, a] / total


@njit(cache=True, error_model="numpy")
def softmax_rows(logits):
    """:func:`softmax` of each row of ``logits`` ``[B, A]``; returns a new ``[B, A]`` array."""
    out = np.empty(logits.shape)
    for b in range(logits.shape[0]):
        softmax(logits[b], out[b])
    return out


@njit(cache=True, inline="always", error_model="numpy")
def completed_by_mix_value(edge_floats, edge_ints, b, node, raw_value, value_scale, maxvisit_init, rescale_values,
                           use_mixed_value, out):  # fmt: skip
    """Gumbel MuZero's ``sigma(completed Q)`` at node ``node`` of tree ``b`` into ``out`` ``[A]`` (mctx's
    ``qtransform_completed_by_mix_value``). The node's edges are read in place from ``edge_floats`` and
    ``edge_ints`` (:class:`~gym_planning.search.tree.TreeArrays`; see :mod:`~gym_planning.search.action_selection`
    for why not through views): ``Q = reward + discount * value`` for visited children; unvisited ones get the
    mixed value ``v_mix`` (Danihelka et al. 2022, eq. 33: ``(raw_value + sum(N) * sum_visited(pi * Q) /
    sum_visited(pi)) / (1 + sum(N))``, each prior ``pi`` at least the smallest positive float so that it stays
    finite), or without ``use_mixed_value`` the node's raw model value; then optional min-max rescaling to
    [0, 1] over the node's actions; then scaling by ``(maxvisit_init + max N) * value_scale``.

    Returns False when a result is NaN or infinite (an overflow). Two passes over the actions (three with the
    mixed value): this runs at every Gumbel node of every simulation. The bounds of the completed Q are those of
    the visited children's Q and, when a child is unvisited, of the stand-in value: min and max are exact, so
    these are the bounds of the completed row without a pass over it.
    """
    num_actions = out.shape[0]
    sum_visits, max_visit, num_visited, sum_probs = 0, 0, 0, 0.0
    low, high = np.inf, -np.inf
    for a in range(num_actions):
        visits = edge_ints[b, node, VISITS, a]
        sum_visits += visits
        max_visit = max(max_visit, visits)
        out[a] = edge_floats[b, node, REWARD, a] + edge_floats[b, node, DISCOUNT, a] * edge_floats[b, node, VALUE, a]
        if visits > 0:
            num_visited += 1
            sum_probs += max(TINY, edge_floats[b, node, PROB, a])
            low, high = min(low, out[a]), max(high, out[a])
    value = raw_value
    if use_mixed_value:
        weighted_q = 0.0
        for a in range(num_actions):
            if edge_ints[b, node, VISITS, a] > 0:
                weighted_q += max(TINY, edge_floats[b, node, PROB, a]) * out[a] / sum_probs
        value = (raw_value + sum_visits * weighted_q) / (sum_visits + 1.0)
    if num_visited < num_actions:
        low, high = min(low, value), max(high, value)
    span = max(high - low, EPSILON)
    scale = (maxvisit_init + max_visit) * value_scale
    finite = True
    for a in range(num_actions):
        q = out[a] if edge_ints[b, node, VISITS, a] > 0 else value
        out[a] = scale * ((q - low) / span if rescale_values else q)
        finite = finite and np.isfinite(out[a])
    return finite
