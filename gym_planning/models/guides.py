"""Guides: what a search's leaves are worth and which actions look good, from a trained agent or a function.

A guide is ``guide(observation [B, ...]) -> (prior_logits [B, A], value [B])``, numpy in and out.
:func:`as_guide` turns a trained SB3 PPO/A2C, DQN, sb3-contrib QR-DQN, a MuZero agent or any
:class:`gym_planning.models.SearchModel` into one; :func:`search_model_of` finds the model an object carries.
:class:`gym_planning.models.SimulatorModel` and :class:`gym_planning.agents.SearchAgent` both use them, so this
module sits below both (models never import agents).

Shapes: ``B`` batch, ``A`` actions.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm

from gym_planning.models.base import SearchModel
from gym_planning.search.checks import to_numpy

__all__ = ["Guide", "as_guide", "search_model_of"]

Guide = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray]"]
"""``guide(observation [B, ...]) -> (prior_logits [B, A], value [B])``, numpy in and out."""


def search_model_of(obj: Any) -> SearchModel | None:
    """The :class:`SearchModel` an object carries: itself, or a MuZero agent's ``policy.network``; else None."""
    for candidate in (obj, getattr(getattr(obj, "policy", None), "network", None)):
        if (
            candidate is not None
            and callable(getattr(candidate, "root", None))
            and callable(getattr(candidate, "recurrent", None))
        ):
            return candidate
    return None


def _sb3_guide(algorithm: BaseAlgorithm, q_temperature: float) -> Guide | None:
    """The guide of an SB3 actor-critic (logits, value head) or Q-learner (``Q / T``, max Q); None for others."""
    policy: Any = algorithm.policy  # duck-typed below: actor-critic, DQN or QR-DQN policies
    if not isinstance(algorithm.action_space, spaces.Discrete):
        raise TypeError(
            f"a search guide needs a Discrete action space; {type(algorithm).__name__} has {algorithm.action_space}"
        )

    def q_values(obs: th.Tensor) -> th.Tensor:
        if hasattr(policy, "quantile_net"):  # sb3-contrib QR-DQN: [B, n_quantiles, A] -> mean over quantiles
            return policy.quantile_net(obs).mean(1)
        return policy.q_net(obs)  # DQN

    evaluate: Callable[[th.Tensor], tuple[th.Tensor, th.Tensor]]
    if hasattr(policy, "get_distribution") and hasattr(policy, "predict_values"):  # PPO, A2C

        def evaluate(obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
            return policy.get_distribution(obs).distribution.logits, policy.predict_values(obs).reshape(-1)

    elif hasattr(policy, "quantile_net") or hasattr(policy, "q_net"):

        def evaluate(obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
            q = q_values(obs)
            return q / q_temperature, q.amax(1)

    else:
        return None

    def guide(observation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        policy.set_training_mode(False)
        obs, _ = policy.obs_to_tensor(observation)
        with th.no_grad():
            logits, value = evaluate(obs)
        return logits.cpu().numpy().astype(np.float64), value.cpu().numpy().astype(np.float64)

    return guide


def as_guide(obj: Any, *, q_temperature: float = 1.0) -> Guide:
    """Turn a trained agent into ``guide(observation [B, ...]) -> (prior_logits [B, A], value [B])``.

    :param obj: an SB3 PPO/A2C (policy logits, value head), DQN or QR-DQN (``Q / q_temperature`` as logits, max Q
        as value), a MuZero agent or any object with a SearchModel-like ``root(observation) -> RootOutput``, or a
        function that already has the guide's signature.
    :param q_temperature: temperature of the softmax over Q values (DQN, QR-DQN); in the units of Q.
    """
    if q_temperature <= 0:
        raise ValueError(f"q_temperature must be > 0; got {q_temperature}")
    if isinstance(obj, BaseAlgorithm):
        guide = _sb3_guide(obj, q_temperature)
        if guide is not None:
            return guide
    model = search_model_of(obj)
    if model is not None:

        def root_guide(observation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            with th.no_grad():
                root = model.root(observation)
            return to_numpy(root.prior_logits).astype(np.float64), to_numpy(root.value).astype(np.float64)

        return root_guide
    if callable(obj) and not isinstance(obj, BaseAlgorithm):
        return obj
    raise TypeError(
        f"cannot use {type(obj).__name__} as a search guide: expected an SB3 PPO/A2C/DQN/QR-DQN, a MuZero agent, an "
        "object with root(observation) -> RootOutput, or a function observation -> (prior_logits [B, A], value [B])"
    )
