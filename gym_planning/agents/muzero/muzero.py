"""MuZero (Schrittwieser et al. 2020) as a Stable-Baselines3 algorithm.

The loop, in order: act with a batched search over all ``n_envs`` roots → store the step in the
game-segment replay → sample unrolls (prioritised) → build targets (n-step values bootstrapped with the
latest network, stored or reanalysed policy targets) → K-step unroll loss → update.

Letters: ``E`` envs, ``A`` actions, ``B`` batch, ``K`` unroll steps, ``S`` support bins.
"""

from __future__ import annotations

import io
import os
import pathlib
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from time import perf_counter, time_ns
from typing import Any, ClassVar, Literal, TypeVar, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm, maybe_make_env
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.save_util import load_from_pkl, save_to_pkl
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import safe_mean
from torch.nn import functional as F

from gym_planning.agents.muzero.box import (
    SampledGameSegmentBuffer,
    SampledPolicyTarget,
    check_box_action_space,
    policy_target_of,
    sampled_policy_loss,
    search_box,
    unscale_action,
)
from gym_planning.agents.muzero.buffer import INSIDE, UNKNOWN, GameSegmentBuffer, UnrollTargets
from gym_planning.agents.muzero.distributed import check_ray_settings, learn_with_ray_actors
from gym_planning.agents.muzero.frames import resolve_frame_stack
from gym_planning.agents.muzero.learner import learn_with_actor_process
from gym_planning.agents.muzero.policies import CnnPolicy, MlpPolicy, MuZeroPolicy
from gym_planning.agents.muzero.saving import atomic_open, check_saved_algorithm
from gym_planning.models.compiled import CompiledMlpModel, NotCompilableError
from gym_planning.models.networks import MlpMuZeroNetwork, MuZeroNetwork, scale_gradient
from gym_planning.models.support import scalar_transform, two_hot_numpy
from gym_planning.search import (
    JitRecurrentFn,
    RecurrentFn,
    RootOutput,
    SearchConfig,
    SearchOutput,
    most_visited_action,
    run_policy,
)

SelfMuZero = TypeVar("SelfMuZero", bound="MuZero")

# With inference="auto", searches over more roots than this (reanalyse of a whole batch) call the torch
# network: there its float32 matrix products outweigh the per-call overhead that the compiled float64
# copy saves on small batches (measured on CartPole's network: 9x faster at 4 roots, 1.2x slower at 190).
AUTO_COMPILED_MAX_ROOTS = 128

# Settings that reach CartPole-v1's threshold in the least wall time on a small CPU (docs/muzero.md,
# "Speed"): no reanalyse, smaller batches, 3 unroll steps. Pass them as MuZero(..., **FAST_CPU_SETTINGS).
FAST_CPU_SETTINGS: dict[str, Any] = dict(reanalyse_fraction=0.0, batch_size=64, num_unroll_steps=3)

# Bootstrap observations go through the target network this many at a time, so that a batch of frame
# stacks (768 Atari stacks: 2.5 GiB as float32) never sits in memory at once.
VALUE_TARGET_CHUNK = 128

# Phases of learn() timed in ``MuZero.phase_seconds`` (and logged as ``time/<phase>_s``).
PHASES = ("search", "env", "targets", "gradient")


def visit_temperature_schedule(progress_remaining: float) -> float:
    """MuZero's visit-count temperature: 1.0 for the first half of training, 0.5 until 75 %, then 0.25."""
    if progress_remaining > 0.5:
        return 1.0
    return 0.5 if progress_remaining > 0.25 else 0.25


def _check_num_sampling_moves(
    num_sampling_moves: int | None, async_actors: int, search: str, search_at_train_time: bool
) -> None:
    """Refuse a per-move sampling schedule that would be ignored, naming the fix."""
    if num_sampling_moves is None:
        return
    if isinstance(num_sampling_moves, bool) or not isinstance(num_sampling_moves, (int, np.integer)) or num_sampling_moves < 0:
        raise ValueError(f"num_sampling_moves must be None (sample every move) or an integer >= 0; got {num_sampling_moves!r}")
    if async_actors:
        raise ValueError(
            "num_sampling_moves is applied by the in-process actor only (the actor processes sample every move at "
            "the temperature): use async_actors=0, or num_sampling_moves=None"
        )
    if search == "gumbel" and search_at_train_time:
        raise ValueError(
            "num_sampling_moves has no effect with search='gumbel' (Gumbel MuZero acts by the winner of Sequential "
            "Halving, not by visit counts): use search='muzero', or num_sampling_moves=None"
        )


def _check_action_space(action_space: spaces.Space) -> None:
    if isinstance(action_space, spaces.Discrete):
        return
    if isinstance(action_space, spaces.Box):
        check_box_action_space(action_space)  # Sampled MuZero: flat Boxes with finite bounds
        return
    if isinstance(action_space, (spaces.MultiDiscrete, spaces.MultiBinary)):
        hint = "map it to Discrete(prod(nvec)) with a gymnasium.ActionWrapper"
    elif isinstance(action_space, (spaces.Dict, spaces.Tuple)):
        hint = "flatten it into a single Discrete space with a gymnasium.ActionWrapper"
    else:
        hint = "wrap the env so that its action space is gymnasium.spaces.Discrete"
    raise ValueError(f"MuZero needs a Discrete or bounded Box action space; got {action_space}: {hint}")


def _check_box_settings(
    num_samples: int, search_at_train_time: bool, search_for_targets: bool, async_actors: int, two_player: bool
) -> None:
    """Refuse settings that Sampled MuZero (Box actions) does not serve yet, naming the fix."""
    if not isinstance(num_samples, (int, np.integer)) or num_samples < 2:
        raise ValueError(f"num_samples must be an integer >= 2 (candidate actions per search node); got {num_samples!r}")
    if not (search_at_train_time and search_for_targets):
        raise ValueError(
            "Box actions are acted and trained by sampled search: search_at_train_time=False and "
            "search_for_targets=False take Discrete actions only (or discretise with gymnasium.wrappers.DiscretizeAction)"
        )
    if async_actors:
        raise ValueError(
            "async_actors (the actor process and Ray) acts with the compiled discrete network, which has no Box "
            "actions yet: use async_actors=0 for Box action spaces"
        )
    if two_player:
        raise ValueError("two-player self-play takes Discrete actions (legal moves); a Box action space has none")


def _check_observation_space(observation_space: spaces.Space, policy_class: type[BasePolicy]) -> None:
    if isinstance(observation_space, (spaces.Dict, spaces.Tuple)):
        raise ValueError(
            f"MuZero cannot embed a {type(observation_space).__name__} observation space; "
            "wrap the env in gymnasium.wrappers.FlattenObservation"
        )
    if not isinstance(observation_space, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)):
        raise ValueError(f"MuZero cannot embed observation space {observation_space}; use a Box or Discrete space")
    if issubclass(policy_class, CnnPolicy) and not (
        isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 3
    ):
        raise ValueError(f"CnnPolicy needs image observations [C, H, W]; got {observation_space}: use MlpPolicy")
    if (
        issubclass(policy_class, CnnPolicy)
        and isinstance(observation_space, spaces.Box)  # (guaranteed above; spelled out for the type checker)
        and not is_image_space(observation_space)
        and np.argmin(observation_space.shape) != 0
    ):
        # SB3 moves the channels first only for uint8 0-255 images; other channel-last boxes (binary planes) would
        # reach the conv network with their rows taken for channels.
        raise ValueError(
            f"CnnPolicy needs channel-first observations [C, H, W]; got {observation_space}, which looks channel-last "
            "(its smallest axis is not the first): move the channels first with an ObservationWrapper, or use "
            "uint8 0-255 images (e.g. Minipacman's observation_type='rgb'), which SB3 transposes itself"
        )


def unroll_function(compile_unroll: bool, device: th.device) -> Callable[..., tuple[th.Tensor, th.Tensor, th.Tensor]]:
    """:func:`unroll`, under ``torch.compile`` when asked for on a CUDA device; eager elsewhere (the fallback)."""
    if compile_unroll and device.type == "cuda":
        return th.compile(unroll, dynamic=False)
    return unroll


def _flag_only_modules(policy: BasePolicy) -> list[th.nn.Module] | None:
    """Every module of ``policy`` when switching its mode only sets their ``training`` flags (torch's
    ``Module.train`` and SB3's ``set_training_mode``, not overridden); None when some class does more."""
    modules = list(policy.modules())
    if type(policy).set_training_mode is not BasePolicy.set_training_mode:
        return None
    if any(type(module).train is not th.nn.Module.train for module in modules):
        return None
    return modules


def _check_async_settings(
    async_actors: int,
    chunk_steps: int,
    inference: str,
    search_at_train_time: bool,
    search_for_targets: bool,
    actor_backend: str,
    reanalyse_workers: int,
) -> None:
    """Refuse actor settings the actor process cannot serve, naming the fix."""
    if not isinstance(async_actors, (int, np.integer)) or async_actors < 0:
        raise ValueError(f"async_actors must be 0 (act and learn in turn) or a number of actors >= 1; got {async_actors!r}")
    if async_actors > 1 and actor_backend != "ray":
        raise ValueError(
            f"async_actors must be 0 (act and learn in turn) or 1 (one actor process); got {async_actors!r}: "
            "several actors share one replay only in the distributed version: add actor_backend='ray'"
        )
    check_ray_settings(actor_backend, async_actors, reanalyse_workers, search_for_targets)
    if not isinstance(chunk_steps, (int, np.integer)) or chunk_steps < 1:
        raise ValueError(f"async_chunk_steps must be an integer >= 1; got {chunk_steps!r}")
    if async_actors and inference == "torch":
        raise ValueError("async_actors acts with the compiled network copy: use inference='auto' or 'numba'")
    if async_actors and not (search_at_train_time and search_for_targets):
        raise ValueError(
            "async_actors acts by search: it needs search_at_train_time=True and search_for_targets=True "
            "(or use async_actors=0)"
        )


def _num_players(env: Any) -> int | None:
    """The envs' ``num_players`` attribute (1, or 2 for a two-player game played from both sides), or None."""
    if env is None or not env.has_attr("num_players"):
        return None
    counts = {int(count) for count in env.get_attr("num_players")}
    if len(counts) != 1 or not counts <= {1, 2}:
        raise ValueError(f"the envs report num_players {sorted(counts)}; MuZero needs all of them 1, or all 2")
    return counts.pop()


def _resolve_two_player(two_player: bool | None, env: Any) -> bool:
    """Whether MuZero trains by self-play: ``two_player`` checked against the env's ``num_players``."""
    players = _num_players(env)
    if two_player is None:
        return players == 2
    if two_player and players == 1:
        raise ValueError(
            "two_player=True, but the env has num_players=1 (an opponent moves inside it, e.g. Go9x9-v0 with "
            "opponent='random'): make the env without an opponent (opponent=None) for self-play, or drop two_player"
        )
    if not two_player and players == 2:
        raise ValueError(
            "two_player=False, but the env has num_players=2 (both sides are played through step(), e.g. Go9x9-v0 "
            "with opponent=None): its rewards go to whichever player moved, so one value would mix both points of "
            "view; use two_player=True (self-play) or give the env an opponent"
        )
    if two_player and env is not None and not env.has_attr("action_masks"):
        raise ValueError(
            "two_player=True needs the legal moves of each position: the env must have action_masks() "
            "returning an [A] bool array, True = legal (as GoEnv and TicTacToeEnv do)"
        )
    return bool(two_player)


def check_legal_mask(mask: Any, num_envs: int, num_actions: int, source: str) -> np.ndarray:
    """``mask`` as a ``[E, A]`` bool array, or a ``ValueError`` naming how it disagrees with the action space.

    :param source: where the mask came from, for the message (e.g. ``"the envs' action_masks()"``).
    """
    array = np.asarray(mask)
    if array.shape != (num_envs, num_actions):
        raise ValueError(
            f"{source} gave a legal mask of shape {array.shape}; the action space Discrete({num_actions}) with "
            f"{num_envs} env(s) needs [{num_envs}, {num_actions}] (one bool per action, True = legal)"
        )
    if array.dtype != np.bool_ and not np.isin(array, (0, 1)).all():
        raise ValueError(f"{source} gave a legal mask with values other than 0/1 (True = legal): {array.tolist()!r:.120}")
    array = array.astype(bool)
    empty = np.flatnonzero(~array.any(axis=1))
    if len(empty):
        raise ValueError(f"{source} gave a legal mask with no legal action for env(s) {empty.tolist()}: nothing to play")
    return array


def _check_finite(values: np.ndarray, what: str, num_timesteps: int, envs: list[int] | None = None) -> None:
    """Raise if a float batch ``[E, ...]`` from the envs holds NaN or inf, naming the env and the step.

    :param envs: env index of each row of ``values`` (default: row ``i`` is env ``i``).
    """
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.floating) or np.isfinite(values).all():
        return
    bad = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))
    bad = bad if envs is None else np.asarray(envs)[bad]
    raise ValueError(
        f"env {bad[0]} returned a non-finite {what} (NaN or inf) at num_timesteps={num_timesteps} "
        f"(bad envs: {bad.tolist()}); MuZero cannot learn from it: fix the env, or wrap it to replace such values"
    )


class MuZero(BaseAlgorithm):
    """MuZero: a learned model (representation, dynamics, prediction) planned with batched tree search.

    :param policy: ``"MlpPolicy"``, ``"CnnPolicy"`` or a :class:`MuZeroPolicy` subclass.
    :param env: env id, Gymnasium env or VecEnv with a ``Discrete`` action space.
    :param learning_rate: Adam learning rate, or a schedule of the remaining progress (1 → 0).
    :param num_simulations: simulations per search (acting, reanalyse, ``predict``).
    :param num_samples: Box actions only (Sampled MuZero): ``K``, candidate actions drawn from the Gaussian
        policy head (a quarter from a widened one) at each search node; the search runs over them.
    :param search: ``"muzero"`` (pUCT with Dirichlet noise) or ``"gumbel"`` (Gumbel MuZero).
    :param max_depth: maximum tree depth in edges from the root (Hamrick et al.'s ``D_tree``); None = unbounded.
    :param two_player: self-play on a two-player zero-sum game with alternating turns, both sides played by the
        agent through ``step()``: the env reports ``info["to_play"]`` (0 or 1, the player to move) at reset and
        at each step, rewards are for the player who moved, and ``action_masks()`` gives the legal moves.
        Values and value targets are then for the player to move (n-step returns flip sign each ply) and the
        search negates values at each level (mctx's ``discount=-1``). None (default): self-play when the env
        has ``num_players == 2`` (``gym_planning/Go9x9-v0`` and ``TicTacToe-v0`` without an opponent).
    :param search_at_train_time: act with search during training; False acts by sampling the policy head.
    :param search_for_targets: policy targets from search; False uses a one-step look-ahead with the learned
        model (one-hot on ``argmax_a r(s, a) + discount * v(s')``), i.e. no tree search in the targets.
    :param num_unroll_steps: ``K``, model steps unrolled per training sample.
    :param td_steps: ``n`` of the n-step value targets.
    :param discount: per-step discount ``gamma``.
    :param reanalyse_fraction: fraction of each batch whose policy targets are recomputed by a fresh search
        with the latest network (MuZero Reanalyse). Value targets bootstrap with the target network (below).
    :param target_update_interval: gradient steps between copies of the network into the target network
        whose values bootstrap the n-step targets; 0 bootstraps with the latest network.
    :param temperature: visit-count temperature for acting (``search="muzero"``), a float or a schedule of
        the remaining progress; also the softmax temperature of the policy head when not searching.
    :param num_sampling_moves: AlphaZero's per-move schedule: the first ``num_sampling_moves`` moves of each
        episode (per env) are sampled at ``temperature``, later ones take the most visited action (the policy
        head's argmax when not searching), as at temperature 0. None (default): ``temperature`` for every move.
        Discrete actions, in-process acting (``async_actors=0``) and ``search="muzero"`` (or no search) only.
    :param replay_ratio: gradient steps per env step (summed over envs).
    :param learning_starts: env steps collected before training starts.
    :param batch_size: unroll samples per gradient step.
    :param buffer_size: transitions kept in the replay.
    :param frame_stack: observations are stacks of this many frames along axis 0, stored one frame per step in
        the replay and rebuilt on sampling; ``"auto"`` reads it from a ``FrameStackObservation`` (as in
        :func:`~gym_planning.wrappers.make_atari`) or ``VecFrameStack`` in the env; None stores observations whole.
    :param priority_alpha: prioritised-replay exponent (0 = uniform).
    :param priority_beta: importance-sampling correction exponent.
    :param value_support_size: value bins ``-n .. n`` over ``h(value)``.
    :param reward_support_size: reward bins ``-n .. n`` over ``h(reward)``.
    :param value_loss_weight: weight of the value loss (MuZero Reanalyse: 0.25).
    :param weight_decay: L2 penalty passed to the optimizer.
    :param max_grad_norm: gradient-norm clip.
    :param dirichlet_alpha: root Dirichlet noise concentration (``search="muzero"``, training only).
    :param dirichlet_fraction: weight of the root noise (training only).
    :param max_num_considered_actions: Gumbel MuZero's ``m``.
    :param inference: how searches (acting, reanalyse, ``predict``) evaluate the network: ``"numba"`` runs a
        compiled float64 copy of an ``MlpPolicy`` network inside the search's compiled loop on the CPU
        (refreshed from the torch weights before any search that follows an update); ``"torch"`` calls
        the torch network once per simulation (any network, any device); ``"auto"``: the compiled copy where
        the network can be compiled (``MlpPolicy`` without a custom network) for searches over at most 128
        roots (acting, ``predict``), the torch network for larger ones (reanalyse) and other networks.
    :param async_actors: 0 acts and learns in turn in this process (deterministic, exact resume); 1 acts in
        a separate actor process (:mod:`gym_planning.agents.muzero.actor`) with a compiled CPU copy of the
        network, overlapping acting with the gradient steps on a machine with at least 2 cores. The envs
        move to the actor for the duration of ``learn`` (they must pickle) and come back after it. Needs a
        compilable ``MlpPolicy`` network and search at train time. With ``actor_backend="ray"``: the number
        (>= 1) of Ray self-play actors that split the envs.
    :param async_chunk_steps: steps of every env per chunk the actor sends; acting weights are one chunk
        old (``replay_ratio * n_envs * async_chunk_steps`` gradient steps).
    :param actor_backend: ``"process"``: ``async_actors=1`` runs in a ``multiprocessing`` child; ``"ray"``:
        ``async_actors >= 1`` Ray actors split the envs between them (:mod:`gym_planning.agents.muzero.distributed`,
        the ``ray`` extra; a local Ray, or the cluster at ``RAY_ADDRESS``).
    :param reanalyse_workers: with ``actor_backend="ray"``, Ray actors that compute the reanalysed policy
        targets of each batch (``reanalyse_fraction``) in parallel with compiled searches; 0: the learner does.
    :param compile_unroll: on CUDA, run the training unroll (:func:`unroll`) under ``torch.compile``; on
        other devices it runs eagerly (inductor's compile time on the CPU exceeds a classic-control run).
    :param policy_kwargs: extra arguments of the policy (e.g. ``network_kwargs=dict(latent_dim=32)``).
    :param stats_window_size: episodes averaged in ``rollout/`` logs.
    :param tensorboard_log: tensorboard log folder (None: off).
    :param verbose: 0 silent, 1 training logs.
    :param seed: seed of torch, the search's and the replay's numpy Generators and the env.
    :param device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``...
    :param _init_setup_model: build the networks at construction (False when loading).
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy, "CnnPolicy": CnnPolicy}
    # What the constructor's checks guarantee (SB3 declares the general types): a MuZeroPolicy, Discrete or Box
    # actions (_check_action_space), and array observations (_check_observation_space refuses Dict and Tuple).
    policy: MuZeroPolicy
    policy_class: type[MuZeroPolicy]
    action_space: spaces.Discrete | spaces.Box
    observation_space: spaces.Box | spaces.Discrete | spaces.MultiDiscrete | spaces.MultiBinary
    _last_obs: np.ndarray | None
    replay_buffer: GameSegmentBuffer

    def __init__(
        self,
        policy: str | type[MuZeroPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-3,
        *,
        num_simulations: int = 16,
        num_samples: int = 16,
        search: Literal["muzero", "gumbel"] = "muzero",
        max_depth: int | None = None,
        two_player: bool | None = None,
        search_at_train_time: bool = True,
        search_for_targets: bool = True,
        num_unroll_steps: int = 5,
        td_steps: int = 10,
        discount: float = 0.997,
        reanalyse_fraction: float = 0.25,
        target_update_interval: int = 100,
        temperature: float | Schedule = visit_temperature_schedule,
        num_sampling_moves: int | None = None,
        replay_ratio: float = 0.25,
        learning_starts: int = 500,
        batch_size: int = 128,
        buffer_size: int = 100_000,
        frame_stack: int | Literal["auto"] | None = "auto",
        priority_alpha: float = 0.6,
        priority_beta: float = 0.4,
        value_support_size: int = 20,
        reward_support_size: int = 5,
        value_loss_weight: float = 0.25,
        weight_decay: float = 1e-4,
        max_grad_norm: float = 10.0,
        dirichlet_alpha: float = SearchConfig.dirichlet_alpha,
        dirichlet_fraction: float = SearchConfig.dirichlet_fraction,
        max_num_considered_actions: int = SearchConfig.max_num_considered_actions,
        inference: Literal["auto", "numba", "torch"] = "auto",
        async_actors: int = 0,
        async_chunk_steps: int = 8,
        actor_backend: Literal["process", "ray"] = "process",
        reanalyse_workers: int = 0,
        compile_unroll: bool = False,
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        if search not in ("muzero", "gumbel"):
            raise ValueError(f"search must be 'muzero' or 'gumbel'; got {search!r}")
        if inference not in ("auto", "numba", "torch"):
            raise ValueError(f"inference must be 'auto', 'numba' or 'torch'; got {inference!r}")
        for name, value, low in (
            ("num_simulations", num_simulations, 1),
            ("num_unroll_steps", num_unroll_steps, 1),
            ("td_steps", td_steps, 1),
            ("batch_size", batch_size, 1),
        ):
            if not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
        _check_async_settings(
            async_actors,
            async_chunk_steps,
            inference,
            search_at_train_time,
            search_for_targets,
            actor_backend,
            reanalyse_workers,
        )
        _check_num_sampling_moves(num_sampling_moves, async_actors, search, search_at_train_time)
        if max_depth is not None and (not isinstance(max_depth, (int, np.integer)) or max_depth < 1):
            raise ValueError(f"max_depth must be None or an integer >= 1; got {max_depth!r}")
        if priority_alpha < 0 or priority_beta < 0:
            raise ValueError(f"priority_alpha and priority_beta must be >= 0; got {priority_alpha}, {priority_beta}")
        if not 0.0 <= reanalyse_fraction <= 1.0:
            raise ValueError(f"reanalyse_fraction must be in [0, 1]; got {reanalyse_fraction}")
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1]; got {discount}")
        if target_update_interval < 0:
            raise ValueError(f"target_update_interval must be >= 0; got {target_update_interval}")
        if not replay_ratio > 0:
            raise ValueError(
                f"replay_ratio must be > 0 (gradient steps per env step); got {replay_ratio}: "
                "to collect without training, set learning_starts above total_timesteps"
            )
        if buffer_size < learning_starts:
            raise ValueError(
                f"buffer_size ({buffer_size}) < learning_starts ({learning_starts}): the replay would drop steps "
                "before training starts; raise buffer_size or lower learning_starts"
            )
        # Check the spaces before SB3 does, so that the error names the wrapper to use.
        env = maybe_make_env(env, verbose)
        if env is not None:
            _check_action_space(env.action_space)
            policy_class = self.policy_aliases.get(policy, MuZeroPolicy) if isinstance(policy, str) else policy
            _check_observation_space(env.observation_space, policy_class)
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            support_multi_env=True,
            seed=seed,
        )
        self.num_simulations = num_simulations
        self.num_samples = num_samples
        self.two_player = _resolve_two_player(two_player, self.env)
        if self.env is not None and self.is_box:  # (a load without an env sets the spaces later)
            _check_box_settings(num_samples, search_at_train_time, search_for_targets, async_actors, self.two_player)
            if num_sampling_moves is not None:
                raise ValueError(
                    "num_sampling_moves picks the most visited of Discrete actions; Sampled MuZero's Box actions have "
                    "no such choice: use num_sampling_moves=None (and a temperature schedule) for Box actions"
                )
        if async_actors and self.two_player:
            raise ValueError(
                "async_actors does not play two-player self-play yet (the actor process tracks no to_play): "
                "use async_actors=0 for two_player games"
            )
        # Player to move at each env's last observation ([E] int8; two-player self-play only).
        self._last_to_play: np.ndarray | None = None
        self.search = search
        self.max_depth = max_depth
        self.search_at_train_time = search_at_train_time
        self.search_for_targets = search_for_targets
        self.num_unroll_steps = num_unroll_steps
        self.td_steps = td_steps
        self.discount = discount
        self.reanalyse_fraction = reanalyse_fraction
        self.target_update_interval = target_update_interval
        if search == "gumbel" and search_at_train_time and temperature is not visit_temperature_schedule:
            # Gumbel MuZero acts by its Sequential Halving winner: a visit temperature would be silently ignored.
            warnings.warn(
                f"temperature={temperature!r} has no effect with search='gumbel' (Gumbel MuZero acts by the winner of "
                "Sequential Halving; its exploration comes from the root Gumbel noise): drop it, or use search='muzero'",
                UserWarning,
                stacklevel=2,
            )
        self.temperature = temperature
        self.num_sampling_moves = num_sampling_moves
        # Moves played in each env's current episode ([E] int64; counts for num_sampling_moves).
        self._episode_moves: np.ndarray | None = None
        self.replay_ratio = replay_ratio
        self.learning_starts = learning_starts
        self.batch_size = batch_size
        self.buffer_size = buffer_size
        self.frame_stack = frame_stack
        self.priority_alpha = priority_alpha
        self.priority_beta = priority_beta
        self.value_support_size = value_support_size
        self.reward_support_size = reward_support_size
        self.value_loss_weight = value_loss_weight
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm
        self.dirichlet_alpha = dirichlet_alpha
        self.dirichlet_fraction = dirichlet_fraction
        self.max_num_considered_actions = max_num_considered_actions
        self.inference = inference
        self.async_actors = async_actors
        self.async_chunk_steps = async_chunk_steps
        self.actor_backend = actor_backend
        self.reanalyse_workers = reanalyse_workers
        # During a learn() with reanalyse_workers: ``(observations [M, *obs], legal_mask [M, A] | None) -> [M, A]``.
        self._reanalyser: Callable[[np.ndarray, np.ndarray | None], np.ndarray] | None = None
        self.compile_unroll = compile_unroll
        # CPU seconds of the actor process (async_actors=1), as reported with its chunks.
        self.actor_cpu_seconds = 0.0
        # Wall seconds spent in each phase of learn() (acting search, env steps, targets, gradient steps).
        self.phase_seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        # Numpy Generator of every search (noise, sampled actions); saved with the model so that a
        # resumed run draws the same numbers as an uninterrupted one.
        self.search_rng = np.random.default_rng(seed)
        self._pending_gradient_steps = 0.0
        self._n_updates = 0
        if _init_setup_model:
            self._setup_model()

    # -- setup / persistence ------------------------------------------------------------------------
    def _setup_model(self) -> None:
        self._search_config_cache = (self._search_settings(), self._make_search_config())
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        policy_kwargs = dict(self.policy_kwargs)
        optimizer_kwargs = dict(policy_kwargs.get("optimizer_kwargs") or {})
        if optimizer_kwargs.setdefault("weight_decay", self.weight_decay) != self.weight_decay:
            raise ValueError(
                f"weight_decay is set twice: {self.weight_decay} (MuZero's weight_decay) and "
                f"{optimizer_kwargs['weight_decay']} (policy_kwargs['optimizer_kwargs']); set it once, as MuZero(weight_decay=...)"
            )
        policy_kwargs["optimizer_kwargs"] = optimizer_kwargs
        self.policy = self.policy_class(
            self.observation_space,
            self.action_space,
            self.lr_schedule,
            value_support_size=self.value_support_size,
            reward_support_size=self.reward_support_size,
            discount=self.discount,
            **policy_kwargs,
        ).to(self.device)
        self._compiled = self._compile_network()
        if self.device.type == "cuda" and isinstance(self.policy, MlpPolicy):
            # As SB3 does for PPO with an MLP: launch latency dominates a network this small on a GPU.
            warnings.warn(
                "MuZero with MlpPolicy on CUDA: an MLP this small trains faster on the CPU (CartPole-v1 with the "
                "default settings: 6x more env steps per second on one CPU core than on an H200; docs/muzero.md, "
                "'On a GPU'). Pass device='cpu' unless the network is large.",
                UserWarning,
                stacklevel=2,
            )
        self._unroll = unroll_function(self.compile_unroll, self.device)
        # Walked once here instead of at every env step (SB3 loads weights into these same tensors in place).
        self._trained_parameters = list(self.policy.network.parameters())
        self._mode_modules = _flag_only_modules(self.policy)
        if self.async_actors and self._compiled is None:
            raise ValueError(
                "async_actors acts with a compiled copy of the network, and this policy's network cannot be "
                "compiled (only MlpPolicy's MlpMuZeroNetwork can): use async_actors=0"
            )
        # Every observation space _check_observation_space admits (Box, Discrete, MultiDiscrete, MultiBinary)
        # has a shape and a dtype; only gymnasium's base Space leaves them None.
        observation_shape, observation_dtype = self.observation_space.shape, self.observation_space.dtype
        assert observation_shape is not None and observation_dtype is not None
        self.replay_buffer = self._make_replay_buffer(
            self.buffer_size,
            observation_shape,
            observation_dtype,
            self.n_envs,
            priority_alpha=self.priority_alpha,
            priority_beta=self.priority_beta,
            seed=None if self.seed is None else self.seed + 1,
            frame_stack=resolve_frame_stack(self.frame_stack, self.env, observation_shape),
            two_players=self.two_player,
        )

    @property
    def is_box(self) -> bool:
        """Whether the actions are a Box (Sampled MuZero) rather than Discrete."""
        return isinstance(self.action_space, spaces.Box)

    @property
    def _num_actions(self) -> int:
        """``A``, the number of Discrete actions (for the code paths that Box actions never take)."""
        assert isinstance(self.action_space, spaces.Discrete), "Box actions have no action count"
        return int(self.action_space.n)

    def _make_replay_buffer(
        self, capacity: int, observation_shape: tuple[int, ...], dtype: np.dtype, n_envs: int, **kwargs: Any
    ) -> GameSegmentBuffer:
        """The replay for the action space: one action and ``A`` target probabilities per step, or for a Box
        the normalised action vector, the ``num_samples`` candidates and their target weights."""
        if isinstance(self.action_space, spaces.Box):  # (is_box, spelled out for the type checker)
            action_dim = int(self.action_space.shape[0])
            return SampledGameSegmentBuffer(capacity, observation_shape, dtype, action_dim, self.num_samples, n_envs, **kwargs)
        return GameSegmentBuffer(capacity, observation_shape, dtype, int(self.action_space.n), n_envs, **kwargs)

    def _compile_network(self) -> CompiledMlpModel | None:
        """The compiled copy of the network that searches use, or None to search with torch."""
        if self.inference == "torch":
            return None
        try:
            # CompiledMlpModel checks the network's exact class itself (NotCompilableError, handled below).
            return CompiledMlpModel(cast(MlpMuZeroNetwork, self.policy.network))
        except NotCompilableError as error:
            if self.inference == "numba":
                raise ValueError(f"inference='numba' cannot compile this policy's network: {error}") from None
            return None

    def _excluded_save_params(self) -> list[str]:
        return [
            *super()._excluded_save_params(),
            "_compiled",
            "_search_config_cache",
            "_unroll",
            "_reanalyser",
            "_trained_parameters",
            "_mode_modules",
        ]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []

    def _set_training_mode(self, mode: bool) -> None:
        # Acting and training alternate at every env step: switch only when the mode changes, and by writing
        # the modules' flags directly where that is all ``train(mode)`` does (torch's walk: ~0.2 ms a switch).
        if self.policy.training == mode:
            return
        if self._mode_modules is None:
            self.policy.set_training_mode(mode)
            return
        for module in self._mode_modules:
            module.__dict__["training"] = mode

    @contextmanager
    def _timed(self, phase: str) -> Iterator[None]:
        """Add the wall time of the block to ``phase_seconds[phase]``."""
        start = perf_counter()
        try:
            yield
        finally:
            self.phase_seconds[phase] = self.phase_seconds.get(phase, 0.0) + perf_counter() - start

    def save(
        self,
        path: str | pathlib.Path | io.BufferedIOBase,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        """SB3's ``save`` (``.zip`` appended when ``path`` has no suffix), written atomically: the zip goes
        to a temporary file in the same folder that replaces ``path`` once complete, so a process killed
        while saving keeps the previous file. File-like objects are written directly."""
        if not isinstance(path, (str, os.PathLike)) or pathlib.Path(path).is_dir():
            return super().save(path, exclude, include)
        with atomic_open(path, "zip") as file:
            # open(..., "xb") made a BufferedWriter, a BufferedIOBase; typeshed's open() returns BinaryIO.
            super().save(cast(io.BufferedIOBase, file), exclude, include)

    @classmethod
    def load(
        cls: type[SelfMuZero],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfMuZero:
        """SB3's ``load``, with a clear ``TypeError`` when the file holds another algorithm's model."""
        if not (custom_objects and "policy_class" in custom_objects):
            check_saved_algorithm(path, MuZeroPolicy, cls.__name__)
        return super().load(path, env, device, custom_objects, print_system_info, force_reset, **kwargs)

    def save_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """Pickle the replay (with its sampling Generator) to ``path`` (``.pkl`` appended when it has no
        suffix), atomically like :meth:`save`."""
        if not isinstance(path, (str, os.PathLike)) or pathlib.Path(path).is_dir():
            return save_to_pkl(path, self.replay_buffer, self.verbose)
        with atomic_open(path, "pkl") as file:
            save_to_pkl(cast(io.BufferedIOBase, file), self.replay_buffer, self.verbose)  # (as in save)

    def load_replay_buffer(self, path: str) -> None:
        """Load a replay saved by :meth:`save_replay_buffer`."""
        buffer = load_from_pkl(path, self.verbose)
        if not isinstance(buffer, GameSegmentBuffer):
            raise TypeError(f"{path} holds a {type(buffer).__name__}, not a GameSegmentBuffer")
        if buffer.n_envs != self.n_envs:
            raise ValueError(f"the replay was recorded with {buffer.n_envs} envs; this model has {self.n_envs}")
        if isinstance(buffer, SampledGameSegmentBuffer) != self.is_box:
            kinds = ("Discrete", "Box") if self.is_box else ("Box", "Discrete")
            raise ValueError(f"{path} holds a replay of {kinds[0]} actions; this model has {kinds[1]} actions")
        self.replay_buffer = buffer

    def _current_temperature(self) -> float:
        """Visit-count temperature at the current training progress."""
        return float(self.temperature(self._current_progress_remaining) if callable(self.temperature) else self.temperature)

    # -- search -------------------------------------------------------------------------------------
    def _legal_masks(self) -> np.ndarray | None:
        """``[E, A]`` legal masks from the envs' ``action_masks()`` (sb3-contrib style), or None."""
        if self.env is None or not self.env.has_attr("action_masks"):
            return None
        masks = self.env.env_method("action_masks")
        return check_legal_mask(masks, self.env.num_envs, self._num_actions, "the envs' action_masks()")

    def _root(self, observation: np.ndarray | th.Tensor) -> RootOutput:
        """Search roots for raw observations ``[B, *obs]``, from the compiled copy or the torch network
        (``inference="auto"``: the copy up to ``AUTO_COMPILED_MAX_ROOTS`` roots)."""
        if self._compiled is not None and (self.inference == "numba" or len(observation) <= AUTO_COMPILED_MAX_ROOTS):
            self._compiled.refresh()
            return self._compiled.root(observation)
        return self.policy.network.root(observation)

    def _recurrent_fn(self, root: RootOutput) -> RecurrentFn | JitRecurrentFn:
        """The model that steps the search from ``root``: the compiled copy for its numpy embeddings, else torch."""
        if self._compiled is not None and isinstance(root.embedding, np.ndarray):
            return self._compiled.recurrent_fn
        # The torch root's embeddings are tensors, and the search passes back what the root made.
        return cast(RecurrentFn, self.policy.network.recurrent)

    def _search_settings(self) -> tuple[Any, ...]:
        return (
            self.search,
            self.num_simulations,
            self.max_depth,
            self.dirichlet_alpha,
            self.dirichlet_fraction,
            self.max_num_considered_actions,
            self.two_player,
        )

    @property
    def search_config(self) -> SearchConfig:
        """The search settings, built from the attributes ``search``, ``num_simulations``, ``max_depth``,
        ``dirichlet_alpha``, ``dirichlet_fraction``, ``max_num_considered_actions`` and ``two_player``, and rebuilt
        (and checked) when one of them was assigned: ``model.num_simulations = 64`` changes the next search."""
        settings = self._search_settings()
        if self._search_config_cache[0] != settings:
            self._search_config_cache = (settings, self._make_search_config())
        return self._search_config_cache[1]

    def _make_search_config(self) -> SearchConfig:
        """The search settings (the constructor's keywords; the visit temperature is passed per search)."""
        return SearchConfig(
            policy=self.search,
            num_simulations=self.num_simulations,
            max_depth=self.max_depth,
            dirichlet_alpha=self.dirichlet_alpha,
            dirichlet_fraction=self.dirichlet_fraction,
            max_num_considered_actions=self.max_num_considered_actions,
            two_player=self.two_player,
        )

    def _run_search(
        self, root: RootOutput, legal_mask: np.ndarray | None, *, explore: bool, temperature: float
    ) -> SearchOutput:
        """One batched search from roots made by :meth:`_root`."""
        return run_policy(
            self.search_config,
            root,
            self._recurrent_fn(root),
            legal_mask=legal_mask,
            rng=self.search_rng,
            explore=explore,
            temperature=temperature,
        )

    def _one_step_targets(self, root: RootOutput, legal_mask: np.ndarray | None) -> np.ndarray:
        """``[B, A]`` one-hot on ``argmax_a r(s, a) + discount * v(s')`` under the learned model
        (``r - discount * v(s')`` in two-player games: ``v(s')`` is the opponent's)."""
        hidden = th.as_tensor(root.embedding, dtype=th.float32, device=self.device)
        batch_size, num_actions = hidden.shape[0], self._num_actions
        actions = np.tile(np.arange(num_actions), batch_size)
        output, _ = self.policy.network.recurrent(hidden.repeat_interleave(num_actions, dim=0), actions)
        reward, value = cast(th.Tensor, output.reward), cast(th.Tensor, output.value)  # the torch network's outputs
        sign = -1.0 if self.two_player else 1.0
        q = (reward + sign * self.discount * value).view(batch_size, num_actions).cpu().numpy()
        if legal_mask is not None:
            q = np.where(legal_mask, q, -np.inf)
        return np.eye(num_actions, dtype=np.float32)[q.argmax(axis=1)]

    def _policy_targets(self, root: RootOutput, legal_mask: np.ndarray | None) -> np.ndarray:
        """``[B, A]`` policy targets for roots, by search or one-step look-ahead (``search_for_targets``)."""
        if self.search_for_targets:
            return self._run_search(root, legal_mask, explore=False, temperature=1.0).action_weights
        return self._one_step_targets(root, legal_mask)

    def _prior_actions(self, root: RootOutput, legal_mask: np.ndarray | None, temperature: float) -> np.ndarray:
        """Actions sampled from the policy head's softmax at ``temperature`` (0 = argmax); no search."""
        logits = th.as_tensor(root.prior_logits).cpu().numpy().astype(np.float64)
        if legal_mask is not None:
            logits = np.where(legal_mask, logits, -np.inf)
        if temperature == 0:
            return logits.argmax(axis=1)
        z = (logits - logits.max(axis=1, keepdims=True)) / temperature
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        draws = self.search_rng.random((len(probs), 1))
        return np.minimum((probs.cumsum(axis=1) < draws).sum(axis=1), probs.shape[1] - 1)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Actions for a batch of observations ``[E, *obs]`` (or one observation) by one batched search.

        :param deterministic: most-visited action (Gumbel: no noise); otherwise sampled from the visit
            counts at temperature 1. No root noise either way.
        :param action_masks: ``[E, A]`` (or ``[A]``) bool, True = legal (sb3-contrib's ``MaskablePPO`` convention);
            None searches every action.
        :return: ``(actions, state)``; ``state`` is passed through (MuZero keeps no recurrent state).
        """
        self._set_training_mode(False)
        if isinstance(observation, np.ndarray) and np.issubdtype(observation.dtype, np.floating):
            if not np.isfinite(observation).all():
                raise ValueError("predict got a non-finite observation (NaN or inf); the network cannot embed it")
        obs_tensor, vectorized = self.policy.obs_to_tensor(observation)
        obs_tensor = cast(th.Tensor, obs_tensor)  # a dict only for Dict observation spaces, which MuZero refuses
        if isinstance(self.action_space, spaces.Box):  # (is_box, spelled out for the type checker)
            if action_masks is not None:
                raise ValueError("action_masks mark legal Discrete actions; a Box action space has none: pass None")
            output = self._search_box(obs_tensor, explore=False, temperature=0.0 if deterministic else 1.0)
            actions = unscale_action(self.action_space, np.tanh(output.action))
            return (actions if vectorized else actions[0]), state
        root = self._root(obs_tensor)
        legal_mask = None
        if action_masks is not None:  # one [A] mask for one unbatched observation, as sb3-contrib accepts
            masks = np.asarray(action_masks)
            masks = masks[None] if masks.ndim == 1 else masks
            legal_mask = check_legal_mask(masks, len(obs_tensor), int(self.action_space.n), "predict(action_masks=...)")
        output = self._run_search(root, legal_mask, explore=False, temperature=0.0 if deterministic else 1.0)
        actions = output.action
        return (actions if vectorized else actions[0]), state

    # -- self-play ----------------------------------------------------------------------------------
    def _search_box(self, observation: np.ndarray | th.Tensor, *, explore: bool, temperature: float) -> Any:
        """A sampled search (Box actions) from observations ``[B, *obs]``: see :func:`box.search_box`."""
        return search_box(
            self.policy.network,  # type: ignore[arg-type]
            self.search_config,
            observation,
            self.num_samples,
            rng=self.search_rng,
            explore=explore,
            temperature=temperature,
        )

    def _act_box(self, observation: np.ndarray) -> tuple[np.ndarray, SampledPolicyTarget, np.ndarray]:
        """Box acting: ``(normalised actions [E, D], the search's candidates and weights, legal masks [E, C])``."""
        output = self._search_box(observation, explore=True, temperature=self._current_temperature())
        legal_mask = np.ones((len(observation), self.num_samples), np.bool_)
        return np.tanh(output.action).astype(np.float32), policy_target_of(output), legal_mask

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        """The actions to step the envs with: as chosen, or normalised Box actions rescaled to ``[low, high]``."""
        return unscale_action(self.action_space, actions) if isinstance(self.action_space, spaces.Box) else actions

    def _act(self, observation: np.ndarray) -> tuple[np.ndarray, Any, np.ndarray]:
        """One batched acting step: ``(actions [E], policy targets [E, A], legal masks [E, A])`` (Box actions:
        see :meth:`_act_box`)."""
        if isinstance(self.action_space, spaces.Box):  # (is_box, spelled out for the type checker)
            return self._act_box(observation)
        legal_mask = self._legal_masks()
        root = self._root(observation)
        temperature = self._current_temperature()
        greedy = self._past_sampling_moves()
        if self.search_at_train_time:
            output = self._run_search(root, legal_mask, explore=True, temperature=temperature)
            targets = output.action_weights if self.search_for_targets else self._one_step_targets(root, legal_mask)
            actions = output.action if greedy is None else np.where(greedy, most_visited_action(output.tree), output.action)
        else:
            targets = self._policy_targets(root, legal_mask)
            actions = self._prior_actions(root, legal_mask, temperature)
            if greedy is not None:
                actions = np.where(greedy, self._prior_actions(root, legal_mask, 0.0), actions)
        if legal_mask is None:
            legal_mask = np.ones((len(actions), int(self.action_space.n)), np.bool_)
        return actions, targets, legal_mask

    def _past_sampling_moves(self) -> np.ndarray | None:
        """``[E]`` bool, True where the env's episode has played ``num_sampling_moves`` moves (act greedily there),
        or None when every move is sampled at ``temperature``."""
        if self.num_sampling_moves is None or self._episode_moves is None:
            return None
        return self._episode_moves >= self.num_sampling_moves

    def _collect_step(self, callback: BaseCallback, log_interval: int | None) -> bool:
        """Act in all envs once, store the step, update episode stats; False when a callback stops training."""
        assert self.env is not None and self._last_obs is not None
        self._set_training_mode(False)
        callback.on_rollout_start()
        _check_finite(self._last_obs, "observation", self.num_timesteps)  # before the search blames the network
        with self._timed("search"):
            actions, targets, legal_mask = self._act(self._last_obs)
        with self._timed("env"):
            new_obs, rewards, dones, infos = self.env.step(self._env_actions(actions))
        new_obs = cast(np.ndarray, new_obs)  # one array: MuZero refuses Dict and Tuple observation spaces
        return self._store_step(actions, targets, legal_mask, new_obs, rewards, dones, infos, callback, log_interval)

    def _store_step(
        self,
        actions: np.ndarray,
        targets: np.ndarray,
        legal_mask: np.ndarray,
        new_obs: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
        callback: BaseCallback | None,
        log_interval: int | None,
    ) -> bool:
        """Store one step of all envs taken from ``self._last_obs``, update episode stats and call the callback
        (None: no callback, for steps the actor took after a callback stopped training)."""
        assert self.env is not None and self._last_obs is not None
        self.num_timesteps += len(actions)
        _check_finite(rewards, "reward", self.num_timesteps)
        truncated = np.array([done and info.get("TimeLimit.truncated", False) for done, info in zip(dones, infos)])
        terminated = dones & ~truncated
        final_obs = {int(i): infos[i]["terminal_observation"] for i in np.flatnonzero(truncated)}
        if final_obs:
            _check_finite(np.stack(list(final_obs.values())), "final observation", self.num_timesteps, list(final_obs))
        self.replay_buffer.add(
            self._last_obs,
            actions,
            rewards,
            terminated,
            truncated,
            targets,
            legal_mask,
            final_obs,
            to_play=self._last_to_play,
        )
        if self.two_player:
            self._last_to_play = self._next_to_play(infos, dones)
        if self._episode_moves is not None:
            self._episode_moves = np.where(dones, 0, self._episode_moves + 1)
        self._update_info_buffer(infos, dones)
        self._last_obs = new_obs
        self._last_episode_starts = dones
        if callback is None:
            return False
        callback.update_locals(locals())
        if not callback.on_step():
            return False
        callback.on_rollout_end()
        for _ in range(int(dones.sum())):
            self._episode_num += 1
            if log_interval is not None and self._episode_num % log_interval == 0:
                self.dump_logs()
        return True

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        """SB3's setup; when it is about to reset the envs (``reset_num_timesteps`` or no last observation),
        first close the episodes the replay holds open, so that none is stitched onto the next one."""
        resets = reset_num_timesteps or self._last_obs is None
        if resets:
            self.replay_buffer.close_open_episodes(self._last_obs)
        result = super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)
        if resets or self._episode_moves is None:
            self._episode_moves = np.zeros(self.n_envs, np.int64)
        if resets:
            self._start_players(self.env.unwrapped.reset_infos)  # type: ignore[union-attr]
        return result

    # -- two players --------------------------------------------------------------------------------
    def _read_to_play(self, infos: Iterable[dict[str, Any]], when: str) -> np.ndarray:
        """``[E]`` int8 player to move (0 or 1) from the envs' ``info["to_play"]``, or a clear error."""
        players = []
        for index, info in enumerate(infos):
            if "to_play" not in info:
                raise ValueError(
                    f"two_player=True, but env {index}'s info at {when} has no 'to_play': a two-player env must report "
                    "info['to_play'] (0 or 1, the player to move) at reset and at every step; use two_player=False "
                    "for a one-player env (or wrap the env so that it reports whose turn it is)"
                )
            if info["to_play"] not in (0, 1):
                raise ValueError(f"env {index}'s info['to_play'] at {when} is {info['to_play']!r}; it must be 0 or 1")
            players.append(int(info["to_play"]))
        return np.array(players, np.int8)

    def _start_players(self, reset_infos: list[dict[str, Any]]) -> None:
        """Read who moves first after the envs' reset; refuse an env that is ambiguous about its players."""
        if self.two_player:
            self._last_to_play = self._read_to_play(reset_infos, "reset")
        elif any("to_play" in info for info in reset_infos) and _num_players(self.env) is None:
            raise ValueError(
                "the env reports info['to_play'] but has no num_players attribute, so MuZero cannot tell self-play "
                "from a one-player env: pass two_player=True (both sides played by the agent) or two_player=False"
            )

    def _next_to_play(self, infos: list[dict[str, Any]], dones: np.ndarray) -> np.ndarray:
        """``[E]`` player to move at the new observations (the reset's info where an episode ended); the turns
        must alternate inside an episode (the search and the value targets assume it)."""
        reset_infos = self.env.unwrapped.reset_infos  # type: ignore[union-attr]
        merged = [reset_infos[i] if done else info for i, (info, done) in enumerate(zip(infos, dones))]
        to_play = self._read_to_play(merged, f"num_timesteps={self.num_timesteps}")
        repeated = np.flatnonzero(~dones & (to_play == self._last_to_play))
        if len(repeated):
            raise ValueError(
                f"env {repeated[0]} gave the move to the same player twice (info['to_play'] = {to_play[repeated[0]]}): "
                "two-player self-play needs alternating turns (a pass is a move; an opponent inside the env is not self-play)"
            )
        return to_play

    def learn(
        self: SelfMuZero,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int | None = 4,
        tb_log_name: str = "MuZero",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfMuZero:
        """Self-play and train for (at least) ``total_timesteps`` env steps.

        :param log_interval: dump logs every this many episodes (None: never).
        (Other parameters as in SB3's ``learn``.)
        """
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        callback.on_training_start(locals(), globals())
        assert self.env is not None
        if self.async_actors and self.actor_backend == "ray":
            learn_with_ray_actors(self, total_timesteps, callback, log_interval)
        elif self.async_actors:
            learn_with_actor_process(self, total_timesteps, callback, log_interval)
        else:
            while self.num_timesteps < total_timesteps:
                self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
                if not self._collect_step(callback, log_interval):
                    break
                self._train_after_step()
        callback.on_training_end()
        return self

    def _train_after_step(self) -> None:
        """The gradient steps that ``replay_ratio`` owes after one step of all envs (from ``learning_starts``)."""
        assert self.env is not None
        if self.num_timesteps >= self.learning_starts:
            self._pending_gradient_steps += self.replay_ratio * self.env.num_envs
            gradient_steps = int(self._pending_gradient_steps)
            if gradient_steps > 0:
                self._pending_gradient_steps -= gradient_steps
                self.train(gradient_steps)

    def dump_logs(self) -> None:
        """Write the SB3 ``time/`` and ``rollout/`` keys (and the pending ``train/`` ones)."""
        elapsed = max((time_ns() - self.start_time) / 1e9, 1e-9)
        self.logger.record("time/episodes", self._episode_num, exclude="tensorboard")
        assert self.ep_info_buffer is not None  # (made by _setup_learn, as SB3's own dump_logs asserts)
        if len(self.ep_info_buffer) > 0:
            self.logger.record("rollout/ep_rew_mean", safe_mean([info["r"] for info in self.ep_info_buffer]))
            self.logger.record("rollout/ep_len_mean", safe_mean([info["l"] for info in self.ep_info_buffer]))
        self.logger.record("time/fps", int((self.num_timesteps - self._num_timesteps_at_start) / elapsed))
        self.logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        for phase, seconds in self.phase_seconds.items():
            self.logger.record(f"time/{phase}_s", round(seconds, 2), exclude="tensorboard")
        self.logger.dump(step=self.num_timesteps)

    # -- training -----------------------------------------------------------------------------------
    def _value_targets(self, batch: UnrollTargets) -> np.ndarray:
        """``[B, K+1]`` n-step value targets, bootstrapping with the target (or latest) network's value.

        Each distinct bootstrap observation is evaluated once, ``VALUE_TARGET_CHUNK`` at a time."""
        targets = batch.partial_returns.copy()
        positions = self.replay_buffer.bootstrap_positions(batch)
        if len(positions) == 0:
            return targets
        b, k = positions[:, 0], positions[:, 1]
        # Positions that read the same observation: same row and env, both final or both not.
        keys = (batch.bootstrap_rows[b, k] * self.n_envs + batch.envs[b]) * 2 + batch.bootstrap_final[b, k]
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        network = self.policy.target_network if self.target_update_interval else self.policy.network
        values = np.empty(len(first), np.float32)
        for start in range(0, len(first), VALUE_TARGET_CHUNK):
            chunk = positions[first[start : start + VALUE_TARGET_CHUNK]]
            observations, _ = self.replay_buffer.bootstrap_observations(batch, chunk)
            values[start : start + len(chunk)] = cast(th.Tensor, network.root(observations).value).cpu().numpy()
        targets[b, k] += batch.bootstrap_discounts[b, k] * values[inverse.reshape(-1)]
        return targets

    def _stored_box_targets(self, batch: UnrollTargets) -> SampledPolicyTarget:
        """Box actions: candidates ``[B, K+1, C, D]`` and weights ``[B, K+1, C]``, stored, or for the first
        ``reanalyse_fraction`` of the batch from a fresh search (new candidates) with the latest network."""
        buffer = self.replay_buffer
        targets = buffer.policy_targets_at(batch.rows, batch.envs)  # type: ignore[attr-defined]
        num_reanalysed = int(round(self.reanalyse_fraction * len(batch.envs)))
        b, k = np.nonzero(batch.status[:num_reanalysed] == INSIDE)
        if len(b):
            observations = buffer.observations_at(batch.rows[b, k], batch.envs[b])
            fresh = policy_target_of(self._search_box(observations, explore=False, temperature=1.0))
            targets.candidates[b, k], targets.weights[b, k] = fresh
        return targets

    def _stored_policy_targets(self, batch: UnrollTargets) -> Any:
        """``[B, K+1, A]`` policy targets: stored, or reanalysed for the first ``reanalyse_fraction`` of the batch
        (Box actions: see :meth:`_stored_box_targets`)."""
        if self.is_box:
            return self._stored_box_targets(batch)
        buffer = self.replay_buffer
        targets = buffer.policy_targets[batch.rows, batch.envs[:, None]]
        num_reanalysed = int(round(self.reanalyse_fraction * len(batch.envs)))
        if num_reanalysed == 0:
            return targets
        b, k = np.nonzero(batch.status[:num_reanalysed] == INSIDE)
        rows, envs = batch.rows[b, k], batch.envs[b]
        observations, legal = buffer.observations_at(rows, envs), buffer.legal_masks[rows, envs]
        legal_mask = None if legal.all() else legal
        if self._reanalyser is not None:
            targets[b, k] = self._reanalyser(observations, legal_mask)
        else:
            targets[b, k] = self._policy_targets(self._root(observations), legal_mask)
        return targets

    def _loss_targets(self, batch: UnrollTargets, value_targets: np.ndarray) -> dict[str, th.Tensor]:
        """The loss's targets and per-step weights, built in numpy and moved to the device once each.

        ``value_probs [B, K+1, S_v]``, ``reward_probs [B, K, S_r]``; ``value_weight``, ``policy_weight``
        ``[B, K+1]`` and ``reward_weight [B, K]``: each term's mask times the step scale (1 at step 0, ``1/K``
        after it, so that the total gradient does not grow with K).
        """
        step_scale = np.full(batch.status.shape[1], 1.0 / self.num_unroll_steps, np.float32)
        step_scale[0] = 1.0
        # h(x) in torch (as scalar_to_support computes it, so that targets are the same to the bit), the rest in numpy.
        value_h = scalar_transform(th.as_tensor(value_targets)).numpy()
        reward_h = scalar_transform(th.as_tensor(batch.rewards)).numpy()[:, 1:]
        arrays = dict(
            value_probs=two_hot_numpy(value_h, self.value_support_size),
            reward_probs=two_hot_numpy(reward_h, self.reward_support_size),
            value_weight=(batch.status != UNKNOWN) * step_scale,
            policy_weight=(batch.status == INSIDE) * step_scale,
            reward_weight=batch.reward_mask[:, 1:] * step_scale[1:],
        )
        return {name: th.as_tensor(array, dtype=th.float32, device=self.device) for name, array in arrays.items()}

    def _unroll_loss(
        self, batch: UnrollTargets, value_targets: np.ndarray, policy_targets: np.ndarray
    ) -> tuple[th.Tensor, dict[str, float], np.ndarray]:
        """The K-step MuZero loss; returns ``(loss, per-term means, new priorities [B])``."""
        network, device = self.policy.network, self.device
        observation = self.replay_buffer.observations_at(batch.rows[:, 0], batch.envs)
        targets = self._loss_targets(batch, value_targets)
        actions = th.as_tensor(batch.actions, device=device)

        policy_logits, value_logits, reward_logits = self._unroll(network, network.preprocess(observation), actions)
        value_loss = (_cross_entropy(value_logits, targets["value_probs"]) * targets["value_weight"]).sum(dim=1)
        policy_loss = (self._policy_loss_terms(policy_logits, policy_targets) * targets["policy_weight"]).sum(dim=1)
        reward_loss = (_cross_entropy(reward_logits, targets["reward_probs"]) * targets["reward_weight"]).sum(dim=1)
        first_value = network.value_scalar(value_logits[:, 0].detach()).cpu().numpy()
        weights = th.as_tensor(batch.weights, device=device)
        loss = (weights * (self.value_loss_weight * value_loss + reward_loss + policy_loss)).mean()
        priorities = np.abs(first_value - value_targets[:, 0]) + 1e-6
        terms = {"value": value_loss.mean().item(), "reward": reward_loss.mean().item(), "policy": policy_loss.mean().item()}
        return loss, terms, priorities

    def _policy_loss_terms(self, policy_logits: th.Tensor, policy_targets: Any) -> th.Tensor:
        """``[B, K+1]`` policy loss per position: cross-entropy against ``[B, K+1, A]`` targets, or for Box
        actions Sampled MuZero's ``-sum_c w_c log pi(u_c)`` over the :class:`SampledPolicyTarget`'s candidates."""
        if isinstance(policy_targets, SampledPolicyTarget):
            candidates = th.as_tensor(policy_targets.candidates, device=self.device)
            return sampled_policy_loss(policy_logits, candidates, th.as_tensor(policy_targets.weights, device=self.device))
        return _cross_entropy(policy_logits, th.as_tensor(policy_targets, device=self.device))

    def train(self, gradient_steps: int) -> None:
        """``gradient_steps`` updates on unrolls sampled from the replay."""
        self._set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        history: dict[str, list[float]] = {"loss": [], "value": [], "reward": [], "policy": []}
        for _ in range(gradient_steps):
            with self._timed("targets"):
                batch = self.replay_buffer.sample(self.batch_size, self.num_unroll_steps, self.td_steps, self.discount)
                value_targets = self._value_targets(batch)
                policy_targets = self._stored_policy_targets(batch)
            with self._timed("gradient"):
                loss, terms, priorities = self._unroll_loss(batch, value_targets, policy_targets)
                self.policy.optimizer.zero_grad()
                loss.backward()
                th.nn.utils.clip_grad_norm_(self._trained_parameters, self.max_grad_norm, foreach=True)
                self.policy.optimizer.step()
                self.replay_buffer.update_priorities(batch.flat_index, priorities)
            if self._compiled is not None:
                self._compiled.mark_stale()
            self._n_updates += 1
            if self.target_update_interval and self._n_updates % self.target_update_interval == 0:
                self.policy.target_network.load_state_dict(self.policy.network.state_dict())
            history["loss"].append(loss.item())
            for name, value in terms.items():
                history[name].append(value)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", float(np.mean(history["loss"])))
        for name in ("value", "reward", "policy"):
            self.logger.record(f"train/loss_{name}", float(np.mean(history[name])))
        self.logger.record("train/temperature", self._current_temperature())


def unroll(network: MuZeroNetwork, observation: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """The K-step unroll of the training loss: ``(policy [B, K+1, A], value [B, K+1, S_v], reward [B, K, S_r])``
    logits from preprocessed observations ``[B, *obs]`` and actions ``[B, K]``.

    A pure tensor function, so that ``compile_unroll`` can hand it to ``torch.compile`` whole.
    """
    hiddens = [network.representation(observation)]
    for k in range(actions.shape[1]):
        # Halve the gradient that later steps send into the dynamics (MuZero, Appendix G).
        source = hiddens[-1] if k == 0 else scale_gradient(hiddens[-1], 0.5)
        hiddens.append(network.transition(source, actions[:, k]))
    # The heads take all K+1 unrolled states in one call ([B * (K+1), ...]) instead of K+1 small ones.
    states = th.stack(hiddens, dim=1)
    batch_size, steps = states.shape[:2]
    policy_logits, value_logits = network.prediction(states.flatten(0, 1))
    policy_logits, value_logits = policy_logits.view(batch_size, steps, -1), value_logits.view(batch_size, steps, -1)
    reward_logits = network.reward(states[:, 1:].flatten(0, 1)).view(batch_size, steps - 1, -1)
    return policy_logits, value_logits, reward_logits


def _cross_entropy(logits: th.Tensor, target_probs: th.Tensor) -> th.Tensor:
    """``[B]`` cross-entropy of ``logits [B, S]`` against target probabilities ``[B, S]``."""
    if logits.shape != target_probs.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(target_probs.shape)} differ in shape")
    return -(target_probs * F.log_softmax(logits, dim=-1)).sum(dim=-1)
