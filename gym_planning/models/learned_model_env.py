"""Play inside a learned model ("imagination"): a Gymnasium env whose dynamics are a SearchModel.

The observation is the model's latent embedding (there is no decoder back to real observations). Each
episode starts from a real observation, embedded by ``model.root``; ``step`` runs ``model.recurrent``; the
reward is the model's; the episode terminates when the model's predicted discount falls below a threshold
(MuZero-style models predict 0 at terminal states) and is truncated after ``horizon`` steps. Useful for
debugging a model by playing in it, or for training a model-free agent in imagination.
"""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box, Discrete

from gym_planning.models.base import SearchModel
from gym_planning.models.guides import search_model_of
from gym_planning.search.checks import to_numpy

__all__ = ["LearnedModelEnv"]

ObservationSource = Callable[[np.random.Generator], np.ndarray]
"""``source(np_random) -> one real observation``."""


def _no_grad() -> Any:
    """``torch.no_grad()`` (models may be torch networks; nothing here needs gradients)."""
    import torch

    return torch.no_grad()


def _search_model(model: Any) -> SearchModel:
    found = search_model_of(model)
    if found is not None:
        return found
    raise TypeError(
        f"LearnedModelEnv needs a SearchModel (root() and recurrent()) or a MuZero agent; got {type(model).__name__}"
    )


def _observation_source(source: Any) -> ObservationSource:
    """Turn an env, an array of observations ``[N, ...]`` or a function into ``source(np_random) -> obs``."""
    if isinstance(source, gym.Env):

        def from_env(np_random: np.random.Generator) -> np.ndarray:
            obs, _ = source.reset(seed=int(np_random.integers(2**31)))
            return np.asarray(obs)

        return from_env
    if isinstance(source, np.ndarray):
        if source.ndim < 1 or len(source) == 0:
            raise ValueError(f"an observation array must have shape [N, ...] with N >= 1; got {source.shape}")
        return lambda np_random: source[np_random.integers(len(source))]
    if callable(source):
        return source
    raise TypeError(
        f"observation_source must be a gymnasium.Env, an array of observations [N, ...] or a function "
        f"np_random -> observation; got {type(source).__name__}"
    )


class LearnedModelEnv(gym.Env):
    """A Gymnasium env that runs inside a learned model.

    :param model: any :class:`gym_planning.models.SearchModel` with array (numpy or torch) embeddings, or a MuZero
        agent (its ``policy.network`` is used).
    :param observation_source: where episodes start: a real env (reset with a seed drawn from this env's
        ``np_random``), an array of real observations ``[N, ...]`` (one drawn uniformly), or
        ``source(np_random) -> observation``.
    :param horizon: steps per episode before truncation.
    :param termination_threshold: the episode terminates when the model's discount is below this.
    :param num_actions: size of the action space; None: read from the model's prior at the first root.

    ``info`` carries the model's ``value`` and ``prior_logits`` at the new state and the step's ``discount``.
    """

    metadata = {"render_modes": []}
    action_space: Discrete

    def __init__(
        self,
        model: Any,
        observation_source: Any,
        *,
        horizon: int = 100,
        termination_threshold: float = 0.5,
        num_actions: int | None = None,
    ):
        if not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise ValueError(f"horizon must be an integer >= 1; got {horizon!r}")
        self.model = _search_model(model)
        self._sample_observation = _observation_source(observation_source)
        self.horizon = int(horizon)
        self.termination_threshold = float(termination_threshold)
        probe = self._root(self._sample_observation(np.random.default_rng(0)))
        latent = to_numpy(probe.embedding)
        if latent.ndim < 2 or latent.dtype == object:
            raise TypeError(
                "LearnedModelEnv needs array embeddings (a latent state); this model's embeddings are Python objects "
                "(a simulator?). Play the real env instead."
            )
        logits = to_numpy(probe.prior_logits)
        self.action_space = Discrete(int(num_actions if num_actions is not None else logits.shape[-1]))
        self.observation_space = Box(-np.inf, np.inf, latent.shape[1:], np.float32)
        self._embedding: Any = None
        self._legal: np.ndarray | None = None
        self._steps = 0

    def _root(self, observation: np.ndarray) -> Any:
        with _no_grad():
            return self.model.root(np.asarray(observation)[None])

    def _latent(self, embedding: Any) -> np.ndarray:
        return to_numpy(embedding)[0].astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        root = self._root(self._sample_observation(self.np_random))
        self._embedding, self._legal, self._steps = root.embedding, None, 0
        info = {"value": float(to_numpy(root.value)[0]), "prior_logits": to_numpy(root.prior_logits)[0]}
        return self._latent(root.embedding), info

    def step(self, action: Any):
        if self._embedding is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        with _no_grad():
            output, self._embedding = self.model.recurrent(self._embedding, np.array([int(action)], np.int64))
        self._steps += 1
        discount = float(to_numpy(output.discount)[0])
        self._legal = None if output.legal_mask is None else to_numpy(output.legal_mask)[0].astype(bool)
        info = {
            "value": float(to_numpy(output.value)[0]),
            "prior_logits": to_numpy(output.prior_logits)[0],
            "discount": discount,
        }
        terminated = discount < self.termination_threshold
        truncated = self._steps >= self.horizon
        return self._latent(self._embedding), float(to_numpy(output.reward)[0]), terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """``[A]`` bool, True = legal: the model's legal mask when it gives one, else all True."""
        if self._legal is None:
            return np.ones(self.action_space.n, np.bool_)
        return self._legal.copy()
