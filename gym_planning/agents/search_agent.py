"""Search on top of any trained agent: ``SearchAgent(guide, model)`` acts by batched MuZero / Gumbel search.

The *guide* says which actions look good and what states are worth (prior logits and value): a trained SB3
PPO/A2C (policy logits, value head), DQN or sb3-contrib QR-DQN (softmax of Q as prior, max Q as value), a
MuZero agent, anything with a SearchModel-like ``root``, or a plain function. The *model* gives the dynamics the
search unrolls: a :class:`gym_planning.models.simulator.SimulatorModel` (the true env) or a learned MuZero model.

``SearchAgent.predict`` has SB3's signature, so ``evaluate_policy(agent, vec_env)`` and the rest of SB3's
tooling accept it; all observations of a VecEnv batch are searched in one batched search.

Box actions (Sampled MuZero): when the model's roots are :class:`~gym_planning.search.SampledRootOutput` (a
``SimulatorModel`` of a Box-action env, guided by an SB3 SAC/TD3/PPO), the agent runs
:func:`~gym_planning.search.sampled_search` over K candidate actions per node and returns action vectors.

Shapes: ``B`` batch (number of envs), ``A`` actions, ``K`` candidates per node, ``D`` action dimensions.
"""

from __future__ import annotations

from typing import Any, Callable, Literal

import numpy as np
import torch as th

from gym_planning.models.base import SearchModel
from gym_planning.models.guides import as_guide, sample_count, search_model_of
from gym_planning.models.simulator import SimulatorModel
from gym_planning.search import (
    SampledRootOutput,
    SampledSearchOutput,
    SearchConfig,
    SearchOutput,
    run_policy,
    sampled_search,
)

# as_guide and search_model_of live in gym_planning.models.guides; re-exported here for older imports.
__all__ = ["SearchAgent", "as_guide", "search_model_of"]


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
    :param num_samples: K, candidate actions sampled per node for a Box action space (sets the
        :class:`SimulatorModel`'s ``num_samples``); None: the model's own (``guides.NUM_SAMPLES``). A Discrete space
        is searched over all its actions and refuses it. ``search="gumbel"`` is recommended over samples (Sequential
        Halving among the root's candidates).
    :param seed: seed of the search's random draws.

    The search settings (every keyword argument but ``num_samples`` and ``seed``; defaults and references in
    :class:`gym_planning.search.SearchConfig`) are kept as :attr:`search_config`.
    """

    def __init__(
        self,
        guide: Any = None,
        model: SearchModel | None = None,
        *,
        num_simulations: int = SearchConfig.num_simulations,
        search: Literal["muzero", "gumbel"] = SearchConfig.policy,
        max_depth: int | None = None,
        dirichlet_alpha: float = SearchConfig.dirichlet_alpha,
        dirichlet_fraction: float = SearchConfig.dirichlet_fraction,
        pb_c_init: float = SearchConfig.pb_c_init,
        pb_c_base: float = SearchConfig.pb_c_base,
        temperature: float = SearchConfig.temperature,
        max_num_considered_actions: int = SearchConfig.max_num_considered_actions,
        gumbel_scale: float = SearchConfig.gumbel_scale,
        two_player: bool = False,
        value_bounds: tuple[float, float] | None = None,
        num_samples: int | None = None,
        seed: int | None = None,
    ):
        if search not in ("muzero", "gumbel"):
            raise ValueError(f"search must be 'muzero' or 'gumbel'; got {search!r}")
        self.search_config = SearchConfig(
            policy=search,
            num_simulations=num_simulations,
            max_depth=max_depth,
            dirichlet_alpha=dirichlet_alpha,
            dirichlet_fraction=dirichlet_fraction,
            pb_c_init=pb_c_init,
            pb_c_base=pb_c_base,
            temperature=temperature,
            max_num_considered_actions=max_num_considered_actions,
            gumbel_scale=gumbel_scale,
            two_player=two_player,
            value_bounds=value_bounds,
        )
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
        if num_samples is not None:
            _set_num_samples(model, guide, num_samples)
        self.guide = guide
        self.model = model
        self.rng = np.random.default_rng(seed)
        self.observation_space = getattr(model, "observation_space", None) or getattr(guide, "observation_space", None)
        self.last_search: SearchOutput | SampledSearchOutput | None = None

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
        :return: ``(action [B] int64, state)``, or for Box actions ``(action [B, D], state)``, action vectors in the
            Box (the chosen root candidates); the search itself is kept in :attr:`last_search`.
        """
        observation, unbatched = self._batched(observation)
        with th.no_grad():
            root = self.model.root(observation)
        if isinstance(root, SampledRootOutput):
            if action_masks is not None:
                raise ValueError("action_masks apply to Discrete actions; a Box action space has no mask")
            self.last_search = self._run_sampled(root, deterministic)
            action = self._box_actions(self.last_search.action)
            return (action[0] if unbatched else action), state
        legal_mask: np.ndarray | None
        if action_masks is not None:  # one [A] mask for one unbatched observation, as sb3-contrib accepts
            legal_mask = np.asarray(action_masks).reshape(len(observation), -1)
        else:
            legal_mask = getattr(self.model, "root_legal_mask", None)
        self.last_search = self._run(root, legal_mask, deterministic)
        action = self.last_search.action
        return (action[0] if unbatched else action), state

    def _run(self, root: Any, legal_mask: Any, deterministic: bool) -> SearchOutput:
        """One batched search; ``deterministic``: no root noise, and the most visited action (temperature 0)."""
        return run_policy(
            self.search_config,
            root,
            _no_grad(self.model.recurrent),
            legal_mask=legal_mask,
            rng=self.rng,
            explore=not deterministic,
            temperature=0.0 if deterministic else None,
        )

    def _run_sampled(self, root: SampledRootOutput, deterministic: bool) -> SampledSearchOutput:
        """One batched sampled search over the K candidates of each node; ``deterministic`` as in :meth:`_run`."""
        return sampled_search(
            self.search_config,
            root,
            _no_grad(self.model.recurrent),
            rng=self.rng,
            explore=not deterministic,
            temperature=0.0 if deterministic else None,
        )

    def _box_actions(self, action: np.ndarray) -> np.ndarray:
        """``[B, D]`` search actions -> ``[B, *shape]`` in the Box's dtype (the env's space when the model has one)."""
        space = getattr(self.model, "action_space", None)
        if space is None or space.shape is None:
            return action
        return action.reshape(len(action), *space.shape).astype(space.dtype)

    def _batched(self, observation: Any) -> tuple[Any, bool]:
        if isinstance(observation, dict):
            return observation, False
        observation = np.asarray(observation)
        space = self.observation_space
        if space is not None and space.shape is not None and observation.shape == space.shape:
            return observation[None], True
        return observation, False


def _set_num_samples(model: Any, guide: Any, num_samples: int) -> None:
    """Give the model K (checked against the action space: a Discrete space refuses it with a clear error)."""
    space = getattr(model, "action_space", None) or getattr(guide, "action_space", None)
    if space is not None:
        num_samples = sample_count(space, num_samples)  # type: ignore[assignment]
    if not hasattr(model, "num_samples"):
        raise ValueError(
            f"num_samples sets how many actions a SimulatorModel samples per node; {type(model).__name__} has no "
            "such setting (a learned model samples its own candidates): leave num_samples unset"
        )
    model.num_samples = num_samples


def _no_grad(fn: Callable) -> Callable:
    def wrapped(*args: Any) -> Any:
        with th.no_grad():
            return fn(*args)

    return wrapped
