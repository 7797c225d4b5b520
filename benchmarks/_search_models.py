"""Trivial models for the search benchmark: every step pays 0, keeps discount 0.99, uniform prior, value 0."""

from __future__ import annotations

import numpy as np
from numba import njit

from gym_planning.search import JitRecurrentFn, RecurrentOutput

DISCOUNT = 0.99


def numpy_recurrent_fn(num_actions: int):
    """A Python callback that builds its outputs with numpy, as a network wrapper would."""

    def recurrent_fn(embedding: np.ndarray, action: np.ndarray):
        batch_size = action.shape[0]
        output = RecurrentOutput(
            reward=np.zeros(batch_size),
            discount=np.full(batch_size, DISCOUNT),
            prior_logits=np.zeros((batch_size, num_actions)),
            value=np.zeros(batch_size),
        )
        return output, embedding + 1.0

    return recurrent_fn


@njit(cache=True)
def _trivial_step(params, embedding, action, reward, discount, prior_logits, value, legal_mask, new_embedding):
    for b in range(embedding.shape[0]):
        reward[b] = 0.0
        discount[b] = params[0]
        value[b] = 0.0
        for a in range(prior_logits.shape[1]):
            prior_logits[b, a] = 0.0
        for e in range(embedding.shape[1]):
            new_embedding[b, e] = embedding[b, e] + 1.0


def jit_recurrent_fn() -> JitRecurrentFn:
    """The same model compiled with Numba, so the search loop never returns to Python."""
    return JitRecurrentFn(_trivial_step, np.array([DISCOUNT]))
