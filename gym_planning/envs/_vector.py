"""Shared plumbing of the batched environments: N games stepped by one compiled call.

Subclasses own the game arrays and implement :meth:`NumbaVectorEnv._run`, which steps (or resets)
every game and writes ``_obs``, ``_rewards``, ``_terminated`` and ``_truncated`` in place. The base class
holds the Gymnasium ``VectorEnv`` contract: batched spaces, next-step autoreset, seeding from
``np_random`` and input checks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space


class NumbaVectorEnv(VectorEnv):
    """Base of the compiled vector envs (``N = num_envs`` games, next-step autoreset).

    A game whose step ended (terminated or truncated) is reset by the *next* ``step()`` call: that call
    ignores its action and returns the first observation of a new episode with reward 0 and both flags
    False (``AutoresetMode.NEXT_STEP``, Gymnasium's default). Each game draws its randomness from its own
    ``uint64 [1]`` generator in ``_rngs [N, 1]``, seeded from ``np_random`` at ``reset(seed=...)``.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}
    single_observation_space: spaces.Box
    single_action_space: spaces.Discrete

    def __init__(self, num_envs: int, single_observation_space: spaces.Box, single_action_space: spaces.Discrete) -> None:
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        self.num_envs = int(num_envs)
        self.single_observation_space = single_observation_space
        self.single_action_space = single_action_space
        self.observation_space = batch_space(single_observation_space, self.num_envs)
        self.action_space = batch_space(single_action_space, self.num_envs)
        self.render_mode = None
        n = self.num_envs
        self._rngs = np.zeros((n, 1), dtype=np.uint64)
        self._needs_reset = np.ones(n, dtype=np.bool_)
        self._obs = np.zeros((n, *single_observation_space.shape), dtype=single_observation_space.dtype)
        self._rewards = np.zeros(n, dtype=np.float64)
        self._terminated = np.zeros(n, dtype=np.bool_)
        self._truncated = np.zeros(n, dtype=np.bool_)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Starts a new episode in every game; ``seed`` seeds ``np_random``, which seeds the N game generators."""
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        super().reset(seed=seed)
        self._rngs[:, 0] = self.np_random.integers(0, 2**63, size=self.num_envs, dtype=np.int64).astype(np.uint64)
        self._needs_reset[:] = True
        self._run(np.zeros(self.num_envs, dtype=np.int64))
        return self._obs.copy(), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Steps the N games with ``actions [N]`` (ints in ``[0, A)``); returns copies of the batched outputs."""
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"actions must be an int array of shape ({self.num_envs},), got {actions.dtype} {actions.shape}")
        num_actions = int(self.single_action_space.n)
        if actions.min() < 0 or actions.max() >= num_actions:
            raise ValueError(f"actions must lie in [0, {num_actions}), got min {actions.min()} max {actions.max()}")
        self._run(actions.astype(np.int64, copy=False))
        return self._obs.copy(), self._rewards.copy(), self._terminated.copy(), self._truncated.copy(), {}

    def _run(self, actions: np.ndarray) -> None:
        """Steps or resets every game (compiled); writes the batched outputs in place."""
        raise NotImplementedError
