"""The true simulator as a search model: plan with the env itself (the seed's and AlphaZero's "perfect model").

:class:`SimulatorModel` implements :class:`gym_planning.models.SearchModel`. It is bound to the env (or SB3
VecEnv) being played: ``root()`` snapshots the current state of each real (sub-)env, and ``recurrent()``
answers each simulation's batch of (state, action) queries with a pool of env copies (restore the parent's
snapshot, step, snapshot the child). Leaf priors and values come from a guide (a value function / policy),
from rollouts of configurable length, or both (rollout return plus the guide's discounted value where the
rollout stops).

With a Box action space the model serves Sampled MuZero (:func:`gym_planning.search.sampled_search`): at every
node it proposes K candidate actions from the guide (an SB3 SAC/TD3/PPO's policy, see
:func:`gym_planning.models.guides.as_guide`), or uniformly from the Box without a guide, and ``root``/``recurrent``
return :class:`~gym_planning.search.SampledRootOutput` / :class:`~gym_planning.search.SampledRecurrentOutput`.

Shapes: ``B`` batch (one row per real sub-env), ``A`` actions, ``K`` candidates per node, ``D`` action dimensions.

Episode ends: a terminated step has discount 0 and value 0, and everything below it is worth 0. A truncated
step (time limit) keeps its discount and bootstraps: its value is the guide's estimate (0 without a guide),
and steps below it repeat that value without stepping the env further.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Sequence

import gymnasium as gym
import numpy as np

from gym_planning.models import env_copies
from gym_planning.models.guides import BoxGuide, BoxGuideOutput, Guide, as_guide, check_bounded_box, sample_count
from gym_planning.search import RecurrentOutput, RootOutput, SampledRecurrentOutput, SampledRootOutput
from gym_planning.wrappers.snapshot import EnvState, get_env_state, set_env_state

__all__ = ["SimulatorModel", "SimulatorNode", "Guide"]

RolloutPolicy = Callable[[np.ndarray], np.ndarray]
"""``policy(observation [B, ...]) -> action [B]`` (``[B, D]`` for Box actions)."""


class SimulatorNode(NamedTuple):
    """One search node of the simulator: a snapshot and whether the episode has ended there.

    :param state: the env snapshot (:class:`gym_planning.wrappers.snapshot.EnvState`).
    :param ended: the step into this node terminated or truncated the episode.
    :param end_value: what every step below an ended node is worth: 0 after termination, the bootstrap
        value after truncation.
    """

    state: EnvState
    ended: bool = False
    end_value: float = 0.0


class _StepResult(NamedTuple):
    observation: np.ndarray  # [B, ...] observations of the children
    reward: np.ndarray  # [B]
    terminated: np.ndarray  # [B] bool
    truncated: np.ndarray  # [B] bool
    rollout_return: np.ndarray  # [B] discounted rollout reward (0 without rollouts)
    bootstrap_observation: np.ndarray  # [B, ...] where the rollout stopped
    bootstrap_weight: np.ndarray  # [B] discount**k on the guide's value there (0 when it terminated)
    legal_mask: np.ndarray | None  # [B, A] bool at the children
    child_states: list  # B snapshots (None where the parent had already ended)


class SimulatorModel:
    """A perfect model: search plans with copies of the real env.

    :param env: the env being played: a ``gymnasium.Env``, a list of envs, or an SB3 ``VecEnv``
        (``DummyVecEnv``; another VecEnv works when its sub-envs are wrapped in
        :class:`gym_planning.wrappers.StateSnapshot` and ``make_copy`` is given). ``root()`` snapshots their
        current states, so an agent searching with this model can be passed to ``evaluate_policy(agent, env)``.
    :param guide: leaf prior and value, ``guide(observation [B, ...]) -> (prior_logits [B, A], value [B])``, or a
        trained SB3 model (see :func:`gym_planning.models.guides.as_guide`). None: uniform prior, and
        values from rollouts only (0 without rollouts). For a Box action space, a
        :data:`~gym_planning.models.guides.BoxGuide` ``guide(observation, num_samples, rng) -> BoxGuideOutput``
        or an SB3 SAC/TD3/DDPG/PPO/A2C; None: K candidates uniform in the Box.
    :param rollout_steps: length of the rollout from each new leaf (0: none). Its discounted reward plus the
        guide's discounted value where it stops is the leaf's value.
    :param rollout_policy: ``policy(observation [B, ...]) -> action [B]`` for rollouts; None: uniformly random
        (legal) actions.
    :param discount: per-step discount of the search (match the guide's ``gamma``).
    :param num_copies: env copies answering queries; batch rows are served in waves of ``num_copies``
        (rollouts of a wave run in lockstep so the rollout policy sees a batch). None: one copy per row.
    :param make_copy: builds one copy; None: ``gym.make(env.spec)`` (wrappers included), else deep copy.
    :param num_samples: K, candidate actions per node for a Box action space (None: ``guides.NUM_SAMPLES``);
        must stay None for a Discrete space, which is searched over all its actions.
    :param seed: seed of the random rollout actions and of the candidates' sampling.
    """

    def __init__(
        self,
        env: Any,
        *,
        guide: Any = None,
        rollout_steps: int = 0,
        rollout_policy: RolloutPolicy | None = None,
        discount: float = 0.99,
        num_copies: int | None = None,
        make_copy: Callable[[], gym.Env] | None = None,
        num_samples: int | None = None,
        seed: int | None = None,
    ):
        real = env_copies.sub_envs(env)
        if real is None:
            make_copy = env_copies.check_remote_sub_envs(env, make_copy)
        elif make_copy is None:
            make_copy = functools.partial(env_copies.default_copy, real[0])
        action_space = env.action_space if not isinstance(env, (list, tuple)) else env[0].action_space
        if isinstance(action_space, gym.spaces.Box):
            check_bounded_box(action_space, "the env of SimulatorModel")
        elif not isinstance(action_space, gym.spaces.Discrete):
            raise TypeError(
                f"SimulatorModel plans over a Discrete or a bounded Box action space; got {action_space}. Map it to one "
                "first (e.g. gym_planning.wrappers.ActionSetDiscretize with a list of actions)."
            )
        if not isinstance(rollout_steps, (int, np.integer)) or rollout_steps < 0:
            raise ValueError(f"rollout_steps must be an integer >= 0; got {rollout_steps!r}")
        if not 0.0 <= discount <= 1.0:
            raise ValueError(f"discount must be in [0, 1]; got {discount}")
        if num_copies is not None and (not isinstance(num_copies, (int, np.integer)) or num_copies < 1):
            raise ValueError(f"num_copies must be None or >= 1; got {num_copies}")
        self.env = env
        self.continuous = isinstance(action_space, gym.spaces.Box)
        self.num_samples = sample_count(action_space, num_samples) or 0  # K; 0 for a Discrete space
        self.num_actions = 0 if self.continuous else int(action_space.n)  # A; 0 for a Box
        self.action_space = action_space
        self.observation_space = env.observation_space if not isinstance(env, (list, tuple)) else env[0].observation_space
        self.guide = guide
        self.rollout_steps = int(rollout_steps)
        self.rollout_policy = rollout_policy
        self.discount = float(discount)
        self.num_copies = num_copies
        self._make_copy = make_copy
        self._real = real
        self._copies: list[gym.Env] = []
        self._rng = np.random.default_rng(seed)
        self._guide_fn: Guide | BoxGuide | None = None
        self._guide_source: Any = None
        self.root_legal_mask: np.ndarray | None = None

    # ------------------------------------------------------------------------------------------
    # SearchModel protocol

    def root(self, observation: np.ndarray) -> RootOutput | SampledRootOutput:
        """Snapshots of the real envs as roots, with the guide's (or rollouts') prior and value.

        :param observation: ``[B, ...]`` the real envs' current observations (B = number of real envs).
        :return: ``RootOutput(prior_logits [B, A], value [B], embedding: list of B SimulatorNode)``; the legal
            actions at the roots are left in :attr:`root_legal_mask` (``[B, A]`` or None). Box actions:
            ``SampledRootOutput(candidates [B, K, D], log_pi [B, K], log_beta [B, K], value [B], embedding)``.
        """
        observation = self._check_observation(observation)
        num_envs = len(self._real) if self._real is not None else self.env.num_envs
        if num_envs != len(observation):
            raise ValueError(
                f"SimulatorModel is bound to {num_envs} env(s) but got a batch of {len(observation)} observations; "
                "bind it to the env or VecEnv being played"
            )
        states = self._real_states()
        self.root_legal_mask = self._real_legal_masks()
        nodes = [SimulatorNode(state) for state in states]
        batch_size = len(nodes)
        if self.rollout_steps:
            copies = self._copies_for(batch_size)
            returns = np.zeros(batch_size)
            boot_obs = observation.copy()
            boot_weight = np.ones(batch_size)
            for wave in self._waves(batch_size):
                wave_copies = copies[: len(wave)]
                for env_copy, row in zip(wave_copies, wave):
                    set_env_state(env_copy, nodes[row].state)
                returns[wave], boot_obs[wave], boot_weight[wave] = self._rollout(
                    wave_copies, observation[wave], np.ones(len(wave), np.bool_)
                )
            policy, value = self._estimate(observation, returns, boot_obs, boot_weight)
        else:
            policy, value = self._estimate(observation, np.zeros(batch_size), observation, np.ones(batch_size))
        if self.continuous:
            return SampledRootOutput(policy.candidates, policy.log_pi, policy.log_beta, value, nodes)
        return RootOutput(prior_logits=policy, value=value, embedding=nodes)

    def recurrent(
        self, embedding: Sequence[SimulatorNode], action: np.ndarray
    ) -> tuple[RecurrentOutput | SampledRecurrentOutput, list]:
        """One true env step from each of the B nodes.

        :param embedding: B :class:`SimulatorNode` (from ``root`` or earlier ``recurrent`` calls).
        :param action: ``[B]`` int64 actions (``[B, D]`` action vectors for a Box action space).
        :return: ``(RecurrentOutput(reward [B], discount [B], prior_logits [B, A], value [B], legal_mask [B, A] or
            None), children: list of B SimulatorNode)``; Box actions: ``SampledRecurrentOutput(reward, discount,
            candidates [B, K, D], log_pi [B, K], log_beta [B, K], value)`` in its place.
        """
        batch_size = len(embedding)
        action = np.asarray(action, dtype=np.float64 if self.continuous else np.int64)
        expected = (batch_size, *self.action_space.shape)
        if action.shape != expected:
            raise ValueError(
                f"action must have shape {'[B, D]' if self.continuous else '[B]'} = {expected}; got {action.shape}"
            )
        step = self._step_all(embedding, action)
        policy, value = self._estimate(
            step.observation, step.rollout_return, step.bootstrap_observation, step.bootstrap_weight
        )
        ended_before = np.array([node.ended for node in embedding])
        end_values = np.array([node.end_value for node in embedding])
        reward = np.where(ended_before, end_values, step.reward)
        discount = np.where(ended_before | step.terminated, 0.0, self.discount)
        # Terminated: worth 0 from here on. Truncated: the bootstrap value (the guide's value at the child).
        value = np.where(ended_before | step.terminated, 0.0, value)
        legal = step.legal_mask
        children = [
            node
            if ended_before[i]
            else SimulatorNode(step.child_states[i], bool(step.terminated[i] or step.truncated[i]), float(value[i]))
            for i, node in enumerate(embedding)
        ]
        if self.continuous:
            return SampledRecurrentOutput(reward, discount, policy.candidates, policy.log_pi, policy.log_beta, value), children
        output = RecurrentOutput(reward=reward, discount=discount, prior_logits=policy, value=value, legal_mask=legal)
        return output, children

    # ------------------------------------------------------------------------------------------
    # Stepping the copies

    def _step_all(self, nodes: Sequence[SimulatorNode], action: np.ndarray) -> _StepResult:
        batch_size = len(nodes)
        copies = self._copies_for(batch_size)
        observations: list[Any] = [None] * batch_size
        reward = np.zeros(batch_size)
        terminated = np.zeros(batch_size, np.bool_)
        truncated = np.zeros(batch_size, np.bool_)
        masks: list[np.ndarray | None] = [None] * batch_size
        returns = np.zeros(batch_size)
        boot_weight = np.ones(batch_size)
        boot_obs: list[Any] = [None] * batch_size
        child_states: list[EnvState | None] = [None] * batch_size
        for wave in self._waves(batch_size):
            wave_copies = copies[: len(wave)]
            for env_copy, row in zip(wave_copies, wave):
                node = nodes[row]
                if node.ended:  # nothing happens below an episode end; its value is fixed, so any observation will do
                    observations[row] = np.zeros(self.observation_space.shape, self.observation_space.dtype)
                    terminated[row] = True
                    continue
                set_env_state(env_copy, node.state)
                obs, r, term, trunc, _ = env_copy.step(self._env_action(action[row]))
                observations[row], reward[row], terminated[row], truncated[row] = obs, float(r), term, trunc
                child_states[row] = get_env_state(env_copy)
                masks[row] = env_copies.action_masks(env_copy)
            wave_obs = np.stack([observations[row] for row in wave])
            alive = ~(terminated[wave] | truncated[wave])
            if self.rollout_steps:
                returns[wave], wave_boot, boot_weight[wave] = self._rollout(wave_copies, wave_obs, alive)
            else:
                wave_boot = wave_obs
            for j, row in enumerate(wave):
                boot_obs[row] = wave_boot[j]
        boot_weight = np.where(terminated, 0.0, boot_weight)
        legal = None
        if not self.continuous and any(m is not None for m in masks):
            legal = np.stack([np.ones(self.num_actions, np.bool_) if m is None else m for m in masks])
        return _StepResult(
            np.stack(observations),
            reward,
            terminated,
            truncated,
            returns,
            np.stack(boot_obs),
            boot_weight,
            legal,
            child_states,
        )

    def _rollout(
        self, copies: list[gym.Env], observation: np.ndarray, alive: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Roll the copies (already at the leaves) forward in lockstep.

        :param copies: ``n`` env copies at the leaf states.
        :param observation: ``[n, ...]`` leaf observations.
        :param alive: ``[n]`` bool; False rows have already ended and are not stepped.
        :return: ``(discounted return [n], observation where each rollout stopped [n, ...],
            weight of the guide's value there [n]: discount**k, or 0 after termination)``.
        """
        n = len(copies)
        returns = np.zeros(n)
        weight = np.ones(n)
        observation = observation.copy()
        running = alive.copy()
        for _ in range(self.rollout_steps):
            rows = np.flatnonzero(running)
            if rows.size == 0:
                break
            actions = self._rollout_actions(copies, observation, rows)
            for row, act in zip(rows, actions):
                obs, r, term, trunc, _ = copies[row].step(self._env_action(act))
                returns[row] += weight[row] * float(r)
                weight[row] *= self.discount
                observation[row] = obs
                if term:
                    weight[row] = 0.0
                if term or trunc:
                    running[row] = False
        return returns, observation, weight

    def _env_action(self, action: np.ndarray) -> Any:
        """One row of the search's actions as the env takes it: an int, or a vector of the Box's dtype."""
        if self.continuous:
            return np.asarray(action, dtype=self.action_space.dtype).reshape(self.action_space.shape)
        return int(action)

    def _rollout_actions(self, copies: list[gym.Env], observation: np.ndarray, rows: np.ndarray) -> np.ndarray:
        if self.rollout_policy is not None:
            return np.asarray(self.rollout_policy(observation[rows])).reshape(len(rows), *self.action_space.shape)
        if self.continuous:  # uniform in the Box
            space = self.action_space
            return self._rng.uniform(space.low, space.high, (len(rows), *space.shape))
        actions = np.empty(len(rows), np.int64)
        for i, row in enumerate(rows):
            mask = env_copies.action_masks(copies[row])
            legal = np.arange(self.num_actions) if mask is None or not mask.any() else np.flatnonzero(mask)
            actions[i] = legal[self._rng.integers(len(legal))]
        return actions

    # ------------------------------------------------------------------------------------------
    # Leaf estimates

    def _estimate(
        self, observation: np.ndarray, returns: np.ndarray, boot_obs: np.ndarray, boot_weight: np.ndarray
    ) -> tuple[Any, np.ndarray]:
        """The policy at ``observation`` and values ``[B]`` = rollout return + weight * guide value there.

        The policy is the prior logits ``[B, A]``, or for Box actions a :class:`BoxGuideOutput` whose candidates,
        ``log_pi`` and ``log_beta`` describe the K sampled actions (its value field is not used).
        """
        batch_size = len(observation)
        guide = self._guide()
        if guide is None:
            return self._uniform_policy(batch_size), returns.astype(np.float64)
        needs_boot = self.rollout_steps > 0
        batch = np.concatenate([observation, boot_obs]) if needs_boot else observation
        if self.continuous:
            box = self._box_guide_output(guide, batch)
            policy: Any = BoxGuideOutput(*(field[:batch_size] for field in box))
            value = box.value
        else:
            logits, value = self._discrete_guide_output(guide, batch)
            policy = logits[:batch_size]
        boot_value = value[batch_size:] if needs_boot else value
        return policy, returns + boot_weight * boot_value

    def _uniform_policy(self, batch_size: int) -> Any:
        if not self.continuous:
            return np.zeros((batch_size, self.num_actions))
        space, shape = self.action_space, (batch_size, self.num_samples)
        candidates = self._rng.uniform(space.low, space.high, (*shape, *space.shape)).reshape(*shape, -1)
        return BoxGuideOutput(candidates, np.zeros(shape), np.zeros(shape), np.zeros(batch_size))

    def _discrete_guide_output(self, guide: Any, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(prior_logits [n, A], value [n])`` of the guide at the ``n`` observations of ``batch``."""
        logits, value = guide(batch)
        logits, value = np.asarray(logits, dtype=np.float64), np.asarray(value, dtype=np.float64)
        if logits.size != len(batch) * self.num_actions or value.size != len(batch):
            raise ValueError(
                f"the guide returned prior_logits of shape {logits.shape} and value of shape {value.shape} for "
                f"{len(batch)} observations; expected [B, A] = ({len(batch)}, {self.num_actions}) and [B]"
            )
        logits, value = logits.reshape(len(batch), self.num_actions), value.reshape(len(batch))
        return logits, value

    def _box_guide_output(self, guide: Any, batch: np.ndarray) -> BoxGuideOutput:
        """The Box guide's output at the ``n`` observations of ``batch``, checked and as float64."""
        n, k, d = len(batch), self.num_samples, int(np.prod(self.action_space.shape))
        out = BoxGuideOutput(*guide(batch, k, self._rng))
        candidates = np.asarray(out.candidates, dtype=np.float64)
        log_pi, log_beta = np.asarray(out.log_pi, np.float64), np.asarray(out.log_beta, np.float64)
        value = np.asarray(out.value, dtype=np.float64)
        if candidates.shape != (n, k, d) or log_pi.shape != (n, k) or log_beta.shape != (n, k) or value.shape != (n,):
            raise ValueError(
                f"the Box guide returned candidates {candidates.shape}, log_pi {log_pi.shape}, log_beta {log_beta.shape}"
                f" and value {value.shape} for {n} observations; expected [B, K, D] = {(n, k, d)}, [B, K] and [B]"
            )
        if not np.isfinite(candidates).all():
            raise ValueError(
                f"the guide {getattr(self.guide, '__name__', type(self.guide).__name__)} returned NaN or infinite "
                "candidate actions: its policy must give finite actions inside the Box"
            )
        return BoxGuideOutput(candidates, log_pi, log_beta, value)

    def _guide(self) -> Guide | BoxGuide | None:
        if self.guide is None:
            return None
        if self._guide_source is not self.guide:  # converted on first use: SearchAgent may set the guide later
            self._guide_fn, self._guide_source = as_guide(self.guide), self.guide
        return self._guide_fn

    # ------------------------------------------------------------------------------------------
    # Real envs and copies

    def _real_states(self) -> list[EnvState]:
        if self._real is not None:
            for env in self._real:
                if env_copies.never_reset(env):
                    raise ValueError(
                        f"SimulatorModel is bound to an env that was never reset ({env}): bind it to the env being "
                        "played (the one you reset() and step(), e.g. the env passed to evaluate_policy), not to a "
                        "second gym.make(...) of the same id; or reset the bound env first"
                    )
            return [get_env_state(env) for env in self._real]
        return list(self.env.env_method("get_state"))

    def _real_legal_masks(self) -> np.ndarray | None:
        if self._real is not None:
            masks = [env_copies.action_masks(env) for env in self._real]
            if all(m is None for m in masks):
                return None
            return np.stack([np.ones(self.num_actions, np.bool_) if m is None else m for m in masks])
        # Ask first: a missing method raises inside a subprocess worker and kills it.
        if not self.env.has_attr("action_masks"):
            return None
        return np.stack(self.env.env_method("action_masks")).astype(np.bool_)

    def _copies_for(self, batch_size: int) -> list[gym.Env]:
        wanted = batch_size if self.num_copies is None else min(self.num_copies, batch_size)
        while len(self._copies) < wanted:
            env_copy = self._make_copy()
            env_copy.reset(seed=len(self._copies))  # every env needs one reset before it can step
            self._copies.append(env_copy)
        return self._copies

    def _waves(self, batch_size: int) -> list[np.ndarray]:
        size = batch_size if self.num_copies is None else min(self.num_copies, batch_size)
        return [np.arange(start, min(start + size, batch_size)) for start in range(0, batch_size, size)]

    def _check_observation(self, observation: Any) -> np.ndarray:
        if isinstance(observation, dict):
            raise TypeError(
                "SimulatorModel needs array observations; flatten dict observations first "
                "(gymnasium.wrappers.FlattenObservation, or make_dm_control which does it)"
            )
        observation = np.asarray(observation)
        if observation.shape[1:] != self.observation_space.shape:
            raise ValueError(f"observation must have shape [B, *{self.observation_space.shape}]; got {observation.shape}")
        return observation

    def close(self) -> None:
        """Close the env copies (the real envs belong to the caller)."""
        for env_copy in self._copies:
            env_copy.close()
        self._copies = []
