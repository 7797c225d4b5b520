"""A tiny deterministic corridor for MuZero tests.

The agent starts in cell 0 of a corridor of ``length`` cells; action 1 moves right, action 0 moves left
(bounded by the wall). Reaching the last cell gives reward +1 and terminates; every other step gives 0.
A ``TimeLimit`` of ``2 * length`` steps truncates wandering episodes. Observation: one-hot position.
The optimal return is 1 in ``length - 1`` steps; a uniformly random policy rarely reaches the end.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Corridor(gym.Env):
    """Deterministic corridor; see the module docstring."""

    metadata = {"render_modes": []}

    def __init__(self, length: int = 6):
        self.length = length
        self.observation_space = spaces.Box(0.0, 1.0, shape=(length,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.position = 0

    def _observation(self) -> np.ndarray:
        obs = np.zeros(self.length, np.float32)
        obs[self.position] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position = 0
        return self._observation(), {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}")
        self.position = min(self.length - 1, max(0, self.position + (1 if int(action) == 1 else -1)))
        terminated = self.position == self.length - 1
        return self._observation(), float(terminated), terminated, False, {}


def make_corridor(length: int = 6) -> gym.Env:
    """The corridor with its ``TimeLimit`` (truncation after ``2 * length`` steps)."""
    return gym.wrappers.TimeLimit(Corridor(length), max_episode_steps=2 * length)
