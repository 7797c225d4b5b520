"""Binding a :class:`gym_planning.models.SimulatorModel` to the real envs, and building copies of them.

The real envs (a ``gymnasium.Env``, a list of them or an SB3 VecEnv) are only read: their states are
snapshotted and their legal-action masks asked for. The copies that the search steps are built from the
env's spec (``gym.make``, wrappers included) or by deep copy.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import OrderEnforcing
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper

from gym_planning.wrappers.snapshot import SnapshotError, bookkeeping_wrappers

__all__ = ["action_masks", "check_remote_sub_envs", "default_copy", "never_reset", "sub_envs"]


def sub_envs(env: Any) -> list[gym.Env] | None:
    """The real envs to snapshot; None for a VecEnv whose sub-envs live in other processes."""
    if isinstance(env, gym.Env):
        return [env]
    if isinstance(env, (list, tuple)) and env and all(isinstance(e, gym.Env) for e in env):
        return list(env)
    if isinstance(env, VecEnvWrapper):
        raise TypeError(
            f"SimulatorModel cannot plan through {type(env).__name__}: VecEnv wrappers keep state (stacked frames, "
            "running statistics) outside the sub-envs, so snapshots of the sub-envs would miss it. Put the equivalent "
            "gymnasium wrappers inside each sub-env instead."
        )
    if isinstance(env, DummyVecEnv):
        return list(env.envs)
    if isinstance(env, VecEnv):
        return None
    raise TypeError(f"SimulatorModel needs a gymnasium.Env, a list of envs or an SB3 VecEnv; got {type(env).__name__}")


_REMOTE_HINT = (
    "wrap each sub-env in gym_planning.wrappers.StateSnapshot so that it answers get_state()/set_state() "
    "(e.g. make_vec_env(env_id, n_envs, vec_env_cls=SubprocVecEnv, wrapper_class=StateSnapshot)), and pass "
    "make_copy=<function building one env like a sub-env> (e.g. lambda: StateSnapshot(gym.make(env_id)))"
)


def check_remote_sub_envs(env: Any, make_copy: Callable[[], gym.Env] | None) -> Callable[[], gym.Env]:
    """A VecEnv whose sub-envs run in other processes: the model snapshots them there and steps local copies
    that ``make_copy`` builds (returned once checked)."""
    name = type(env).__name__
    if make_copy is None:
        raise ValueError(f"SimulatorModel({name}) needs make_copy=...: its sub-envs run in other processes; {_REMOTE_HINT}")
    if not env.has_attr("get_state"):
        raise ValueError(f"SimulatorModel({name}): the sub-envs have no get_state() method to snapshot them; {_REMOTE_HINT}")
    return make_copy


def never_reset(env: gym.Env) -> bool:
    """True when an order-enforcing wrapper of ``env`` (``gym.make`` adds one) has not seen a reset yet."""
    for level in _wrapper_chain(env):
        if isinstance(level, OrderEnforcing) and not level.has_reset:
            return True
    return False


def default_copy(env: gym.Env) -> gym.Env:
    """A new env built like ``env``: ``gym.make`` of its spec (wrappers included), else ``copy.deepcopy``."""
    level = env
    while isinstance(level, bookkeeping_wrappers()):
        level = level.env
    spec = level.spec
    if spec is not None and all(w.kwargs is not None for w in spec.additional_wrappers):
        rebuilt = gym.make(spec, render_mode=None)
        # gym.make places TimeLimit right above the base env; a stack with it elsewhere does not rebuild.
        if [type(w) for w in _wrapper_chain(rebuilt)] == [type(w) for w in _wrapper_chain(level)]:
            return rebuilt
        rebuilt.close()
    try:
        return copy.deepcopy(level)
    except Exception as error:  # deepcopy raises many types
        raise SnapshotError(
            f"SimulatorModel cannot build a copy of {env}: it has no complete spec and copy.deepcopy failed "
            f"({type(error).__name__}: {error}). Pass make_copy=<function returning a new env built the same way>."
        ) from None


def _wrapper_chain(env: gym.Env) -> list[gym.Env]:
    chain: list[gym.Env] = []
    while isinstance(env, gym.Wrapper):
        chain.append(env)
        env = env.env
    return chain


def action_masks(env: gym.Env) -> np.ndarray | None:
    """``[A]`` bool legal mask from ``env``'s ``action_masks()`` (True = legal), or None when it has none."""
    try:
        method = env.get_wrapper_attr("action_masks")
    except AttributeError:
        return None
    return np.asarray(method(), dtype=np.bool_)
