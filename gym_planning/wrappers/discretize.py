"""Discrete action sets for many-dimensional continuous actions, alongside ``gymnasium.wrappers.DiscretizeAction``.

``gymnasium.wrappers.DiscretizeAction`` builds the full grid of bin centres, ``prod(bins)`` actions: fine for
one or two dimensions, but cheetah has 6 (3**6 = 729 actions with 3 bins) and humanoid 21. The wrappers here
give the search a small set instead, with the same interface (``Discrete`` space, ``action()``,
``revert_action()`` to the nearest set member):

* :class:`ActionSetDiscretize` -- a user-given list of ``K`` action vectors;
* :class:`FactorisedDiscretizeAction` -- the no-op plus ``+/-level`` on one dimension at a time
  (``1 + 2 * D * len(levels)`` actions; 13 for cheetah with one level).
"""

from __future__ import annotations

from typing import Sequence

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box, Discrete

__all__ = ["ActionSetDiscretize", "FactorisedDiscretizeAction", "factorised_action_set"]


def _check_box(env: gym.Env, wrapper: str) -> Box:
    space = env.action_space
    if not isinstance(space, Box):
        raise TypeError(f"{wrapper} needs a Box action space; got {space}")
    if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
        raise ValueError(f"{wrapper} needs finite action bounds; got low={space.low}, high={space.high}")
    return space


class ActionSetDiscretize(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """``Discrete(K)`` over a user-given list of ``K`` continuous action vectors.

    Example::

        >>> import gymnasium as gym
        >>> env = ActionSetDiscretize(gym.make("Pendulum-v1"), actions=[[-2.0], [0.0], [2.0]])
        >>> env.action_space
        Discrete(3)
        >>> env.action(2)
        array([2.], dtype=float32)

    :param env: an env with a finite ``Box`` action space.
    :param actions: ``[K, *action_shape]`` action vectors, each inside the env's action space.
    """

    def __init__(self, env: gym.Env, actions: Sequence[Sequence[float]] | np.ndarray):
        space = _check_box(env, type(self).__name__)
        table = np.asarray(actions, dtype=space.dtype)
        if table.ndim < 1 or table.shape[1:] != space.shape or len(table) == 0:
            raise ValueError(f"actions must have shape [K, *{space.shape}] with K >= 1; got {table.shape}")
        outside = [i for i, a in enumerate(table) if not space.contains(a)]
        if outside:
            raise ValueError(f"actions {outside} lie outside the action space {space}")
        gym.utils.RecordConstructorArgs.__init__(self, actions=table.tolist())
        gym.ActionWrapper.__init__(self, env)
        self.actions = table
        self.action_space = Discrete(len(table))

    def action(self, action: int) -> np.ndarray:
        """The action vector of index ``action``."""
        return self.actions[int(action)].copy()

    def revert_action(self, action: np.ndarray) -> int:
        """Index of the set member nearest (Euclidean) to a continuous action."""
        distance = np.linalg.norm((self.actions - np.asarray(action)).reshape(len(self.actions), -1), axis=1)
        return int(np.argmin(distance))


def factorised_action_set(low: np.ndarray, high: np.ndarray, levels: Sequence[float] = (1.0,)) -> np.ndarray:
    """The no-op (box centre) plus ``centre +/- level * half_range`` on one dimension at a time.

    :param low: ``[D]`` lower bounds.
    :param high: ``[D]`` upper bounds.
    :param levels: fractions of the half range in ``(0, 1]``.
    :return: ``[1 + 2 * D * len(levels), D]``: row 0 the no-op, then for each dimension and level ``+``, ``-``.
    """
    low, high = np.ravel(low).astype(np.float64), np.ravel(high).astype(np.float64)
    fractions = np.asarray(levels, dtype=np.float64)
    if fractions.ndim != 1 or len(fractions) == 0 or (fractions <= 0).any() or (fractions > 1).any():
        raise ValueError(f"levels must be a non-empty list of fractions in (0, 1]; got {fractions.tolist()}")
    centre, half = (low + high) / 2, (high - low) / 2
    rows = [centre]
    for dim in range(len(low)):
        for level in fractions:
            for sign in (1.0, -1.0):
                row = centre.copy()
                row[dim] += sign * level * half[dim]
                rows.append(row)
    return np.stack(rows)


class FactorisedDiscretizeAction(ActionSetDiscretize):
    """Discretise a ``D``-dimensional action into the no-op plus ``+/-level`` on one dimension at a time.

    The set grows linearly with ``D`` (``1 + 2 * D * len(levels)``), where the full grid of
    ``gymnasium.wrappers.DiscretizeAction`` grows exponentially.

    :param env: an env with a finite ``Box`` action space.
    :param levels: fractions of each dimension's half range, in ``(0, 1]``.
    """

    def __init__(self, env: gym.Env, levels: Sequence[float] = (1.0,)):
        space = _check_box(env, type(self).__name__)
        table = factorised_action_set(space.low, space.high, levels).reshape(-1, *space.shape)
        super().__init__(env, table)
        self._saved_kwargs = {"levels": tuple(float(x) for x in levels)}  # rebuilt from levels, not the table
