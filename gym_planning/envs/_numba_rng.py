"""A tiny random number generator that compiled game code can carry in its state.

The generator is SplitMix64 (Steele, Lea and Flood 2014): its whole state is one ``uint64``, kept in a
``[1]`` array so that kernels advance it in place and ``get_state()`` copies it with the rest of a game.
Environments seed it from their ``np_random``, so every random choice still traces back to
``reset(seed=...)``. Numba's own ``np.random`` is process-global and cannot be snapshotted, hence this.

Level seeds come from :func:`level_seed`, a bijection of ``(level index, split)``: distinct inputs give
distinct seeds, which is what makes the train and test splits disjoint by construction.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S32 = np.uint64(32)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53

SPLITS = ("train", "test")
"""Named level splits; the index of a split is mixed into every level seed."""


@njit(cache=True, inline="always")
def mix64(x: np.uint64) -> np.uint64:
    """SplitMix64's finaliser: a bijection of ``uint64`` that scrambles all bits."""
    z = x
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def next_u64(rng: np.ndarray) -> np.uint64:
    """Advances ``rng`` (``uint64 [1]``) in place and returns 64 random bits."""
    rng[0] = rng[0] + _GOLDEN
    return mix64(rng[0])


@njit(cache=True, inline="always")
def uniform(rng: np.ndarray) -> float:
    """A float drawn uniformly from ``[0, 1)``."""
    return float(next_u64(rng) >> _S11) * _TO_UNIT


@njit(cache=True, inline="always")
def randint(rng: np.ndarray, n: int) -> int:
    """An int drawn uniformly from ``[0, n)`` (``0 < n < 2**32``), by multiply-shift of the top 32 bits."""
    top = next_u64(rng) >> _S32
    return np.int64((top * np.uint64(n)) >> _S32)


@njit(cache=True)
def level_seed(level_index: int, split_id: int, salt: int) -> np.uint64:
    """The generator seed of level ``level_index`` (``0 <= level_index < 2**62``) of split ``split_id``.

    ``2 * level_index + split_id`` is injective and ``mix64`` is a bijection, so two different
    ``(index, split)`` pairs never share a seed; ``salt`` separates the games.
    """
    return mix64(np.uint64(2 * level_index + split_id) ^ np.uint64(salt))


def split_id(split: str) -> int:
    """The index of a named split, with one clear error for anything else."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return SPLITS.index(split)


def new_rng(seed: int) -> np.ndarray:
    """A generator state (``uint64 [1]``) seeded with ``seed`` (any int; taken modulo ``2**64``)."""
    return np.array([seed % (1 << 64)], dtype=np.uint64)
