"""Search on top of any trained agent: ``SearchAgent(guide, model)`` acts by batched MuZero / Gumbel search.

The *guide* says which actions look good and what states are worth (prior logits and value): a trained SB3
PPO/A2C (policy logits, value head), DQN or sb3-contrib QR-DQN (softmax of Q as prior, max Q as value), a
MuZero agent, anything with a SearchModel-like ``root``, or a plain function. The *model* gives the dynamics the
search unrolls: a :class:`gym_planning.models.simulator.SimulatorModel` (the true env) or a learned MuZero model.

``SearchAgent.predict`` has SB3's signature, so ``evaluate_policy(agent, vec_env)`` and the rest of SB3's
tooling accept it; all observations of a VecEnv batch are searched in one batched search.

Shapes: ``B`` batch (number of envs), ``A`` actions.
"""

from __future__ import annotations

from typing import Any, Callable, Literal

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm

from gym_planning.models.base import SearchModel
from gym_planning.models.simulator import Guide, SimulatorModel
from gym_planning.search import SearchOutput, gumbel_muzero_policy, muzero_policy
from gym_planning.search.search import to_numpy

__all__ = ["SearchAgent", "as_guide", "search_model_of"]


def search_model_of(obj: Any) -> SearchModel | None:
    """The :class:`SearchModel` an object carries: itself, or a MuZero agent's ``policy.network``; else None."""
    for candidate in (obj, getattr(getattr(obj, "policy", None), "network", None)):
        if candidate is not None and callable(getattr(candidate, "root", None)) and callable(getattr(candidate, "recurrent", None)):
            return candidate
    return None


def _sb3_guide(algorithm: BaseAlgorithm, q_temperature: float) -> Guide | None:
    policy = algorithm.policy
    if not isinstance(algorithm.action_space, spaces.Discrete):
        raise TypeError(f"a search guide needs a Discrete action space; {type(algorithm).__name__} has {algorithm.action_space}")

    def q_values(obs: th.Tensor) -> th.Tensor | None:
        if hasattr(policy, "quantile_net"):  # sb3-contrib QR-DQN: [B, n_quantiles, A] -> mean over quantiles
            return policy.quantile_net(obs).mean(1)
        if hasattr(policy, "q_net"):  # DQN
            return policy.q_net(obs)
        return None

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


class SearchAgent:
    """Act by searching with ``model``, guided by a trained agent's prior and value.

    Example::

        >>> from stable_baselines3 import PPO
        >>> from stable_baselines3.common.env_util import make_vec_env
        >>> from stable_baselines3.common.evaluation import evaluate_policy
        >>> vec_env = make_vec_env("CartPole-v1", n_envs=2)
        >>> ppo = PPO("MlpPolicy", vec_env).learn(5_000)
        >>> agent = SearchAgent(ppo, SimulatorModel(vec_env, discount=ppo.gamma), num_simulations=16)
        >>> mean_return, std_return = evaluate_policy(agent, vec_env, n_eval_episodes=4)

    :param guide: the trained agent (see :func:`as_guide`), or None when ``model`` brings its own prior and value.
        A :class:`SimulatorModel` built without a guide of its own is given this one (its ``guide`` is set).
    :param model: the dynamics to search with: any :class:`gym_planning.models.SearchModel` (a
        :class:`SimulatorModel` bound to the env being played, a learned MuZero network). None: the guide's own
        model (a MuZero agent's ``policy.network``).
    :param num_simulations: simulations per decision.
    :param search: ``"muzero"`` (pUCT, visit counts) or ``"gumbel"`` (Gumbel MuZero, sequential halving).
    :param max_depth: maximum tree depth in edges from the root (None: unbounded).
    :param dirichlet_alpha: root noise concentration (MuZero search, ``deterministic=False`` only).
    :param dirichlet_fraction: root noise weight (MuZero search, ``deterministic=False`` only).
    :param pb_c_init: pUCT ``c1``.
    :param pb_c_base: pUCT ``c2``.
    :param temperature: visit-count temperature when ``deterministic=False`` (MuZero search).
    :param max_num_considered_actions: root actions considered by Gumbel search.
    :param gumbel_scale: Gumbel noise scale when ``deterministic=False`` (Gumbel search).
    :param two_player: zero-sum alternating play (see :func:`gym_planning.search.muzero_policy`).
    :param value_bounds: known ``(min, max)`` of Q for MuZero search (None: tracked over the tree).
    :param seed: seed of the search's random draws.
    """

    def __init__(
        self,
        guide: Any = None,
        model: SearchModel | None = None,
        *,
        num_simulations: int = 16,
        search: Literal["muzero", "gumbel"] = "muzero",
        max_depth: int | None = None,
        dirichlet_alpha: float = 0.3,
        dirichlet_fraction: float = 0.25,
        pb_c_init: float = 1.25,
        pb_c_base: float = 19652.0,
        temperature: float = 1.0,
        max_num_considered_actions: int = 16,
        gumbel_scale: float = 1.0,
        two_player: bool = False,
        value_bounds: tuple[float, float] | None = None,
        seed: int | None = None,
    ):
        if search not in ("muzero", "gumbel"):
            raise ValueError(f"search must be 'muzero' or 'gumbel'; got {search!r}")
        if not isinstance(num_simulations, (int, np.integer)) or num_simulations < 1:
            raise ValueError(f"num_simulations must be an integer >= 1; got {num_simulations!r}")
        if model is None:
            model = search_model_of(guide)
            if model is None:
                raise ValueError(
                    "SearchAgent needs a model to search with: pass model=SimulatorModel(env) to plan with the env itself, "
                    "or a guide that carries a SearchModel (a MuZero agent)"
                )
        elif not isinstance(model, SearchModel):
            raise TypeError(f"model must implement SearchModel (root() and recurrent()); got {type(model).__name__}")
        if isinstance(model, SimulatorModel) and model.guide is None and guide is not None:
            model.guide = guide
        self.guide = guide
        self.model = model
        self.num_simulations = int(num_simulations)
        self.search = search
        self.max_depth = max_depth
        self.dirichlet_alpha = dirichlet_alpha
        self.dirichlet_fraction = dirichlet_fraction
        self.pb_c_init = pb_c_init
        self.pb_c_base = pb_c_base
        self.temperature = temperature
        self.max_num_considered_actions = max_num_considered_actions
        self.gumbel_scale = gumbel_scale
        self.two_player = two_player
        self.value_bounds = value_bounds
        self.rng = np.random.default_rng(seed)
        self.observation_space = getattr(model, "observation_space", None) or getattr(guide, "observation_space", None)
        self.last_search: SearchOutput | None = None

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        *,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Search from every observation of the batch at once and return the chosen actions (SB3 signature).

        :param observation: ``[B, ...]`` (or one unbatched observation).
        :param state: unused (no recurrent state); returned as given.
        :param episode_start: unused.
        :param deterministic: greedy search (no root noise, most visited / best action) instead of sampling.
        :param action_masks: ``[B, A]`` bool, True = legal (sb3-contrib style); None: the model's root legal mask
            if it has one (``SimulatorModel`` reads the envs' ``action_masks()``), else all legal.
        :return: ``(action [B] int64, state)``; the search itself is kept in :attr:`last_search`.
        """
        observation, unbatched = self._batched(observation)
        with th.no_grad():
            root = self.model.root(observation)
        if action_masks is not None:  # one [A] mask for one unbatched observation, as sb3-contrib accepts
            legal_mask = np.asarray(action_masks).reshape(len(observation), -1)
        else:
            legal_mask = getattr(self.model, "root_legal_mask", None)
        self.last_search = self._run(root, legal_mask, deterministic)
        action = self.last_search.action
        return (action[0] if unbatched else action), state

    def _run(self, root: Any, legal_mask: Any, deterministic: bool) -> SearchOutput:
        recurrent: Callable = self.model.recurrent
        if self.search == "gumbel":
            return gumbel_muzero_policy(
                root,
                _no_grad(recurrent),
                self.num_simulations,
                legal_mask=legal_mask,
                max_depth=self.max_depth,
                rng=self.rng,
                max_num_considered_actions=self.max_num_considered_actions,
                gumbel_scale=0.0 if deterministic else self.gumbel_scale,
                two_player=self.two_player,
            )
        return muzero_policy(
            root,
            _no_grad(recurrent),
            self.num_simulations,
            legal_mask=legal_mask,
            max_depth=self.max_depth,
            rng=self.rng,
            dirichlet_alpha=self.dirichlet_alpha,
            dirichlet_fraction=0.0 if deterministic else self.dirichlet_fraction,
            pb_c_init=self.pb_c_init,
            pb_c_base=self.pb_c_base,
            temperature=0.0 if deterministic else self.temperature,
            two_player=self.two_player,
            value_bounds=self.value_bounds,
        )

    def _batched(self, observation: Any) -> tuple[Any, bool]:
        if isinstance(observation, dict):
            return observation, False
        observation = np.asarray(observation)
        space = self.observation_space
        if space is not None and space.shape is not None and observation.shape == space.shape:
            return observation[None], True
        return observation, False


def _no_grad(fn: Callable) -> Callable:
    def wrapped(*args: Any) -> Any:
        with th.no_grad():
            return fn(*args)

    return wrapped
