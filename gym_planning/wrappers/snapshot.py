"""Snapshot and restore the full state of a Gymnasium environment, wrappers included.

A snapshot taken with :func:`get_env_state` and restored with :func:`set_env_state` (on the same env or
on another instance built the same way) makes the env replay identically: same observations, rewards and
random draws. The base env's state comes from a backend chosen by the env's type:

* envs with their own ``get_state()`` / ``set_state(state)`` methods (gym_planning's envs);
* ALE (``ale_py``): ``cloneState(include_rng=True)`` / ``restoreState`` (without the ALE's RNG,
  sticky actions make replays diverge at the first step);
* dm_control through shimmy: MuJoCo's full integration state (``mjSTATE_INTEGRATION``, then
  ``forward()``; ``physics.get_state()`` alone does not replay exactly), the step counter and the
  task's random state;
* Gymnasium's MuJoCo envs: the same MuJoCo integration state, plus plain attributes;
* Gymnasium's classic-control and toy-text envs: their plain-data attributes (numbers, arrays, lists);
* anything else: ``copy.deepcopy`` of the env's attributes, with a one-time warning about its cost.

The env's random generator (``env.unwrapped.np_random``) is always saved. Wrappers count too: the
plain-data attributes of every wrapper (``TimeLimit``'s elapsed steps, ``FrameStackObservation``'s
frames, ``AtariPreprocessing``'s frame buffer and lives) are saved and restored; bookkeeping wrappers
that only record what happened (SB3's ``Monitor``, ``RecordEpisodeStatistics``, ``RecordVideo``) are left out,
so that a copy of an env without them can replay the env's snapshots.
"""

from __future__ import annotations

import copy
import sys
import warnings
from collections import deque
from typing import Any, NamedTuple, Protocol, cast

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import RecordEpisodeStatistics, RecordVideo

__all__ = ["EnvState", "StateSnapshot", "SnapshotError", "bookkeeping_wrappers", "get_env_state", "set_env_state"]


def bookkeeping_wrappers() -> tuple[type[gym.Wrapper], ...]:
    """Wrappers that record what happened and do not change what happens next (left out of snapshots).

    SB3's ``Monitor`` is included when SB3 is loaded (an env cannot hold a Monitor otherwise), so that this
    module does not import SB3 and torch.
    """
    monitor = sys.modules.get("stable_baselines3.common.monitor")
    extra = (monitor.Monitor,) if monitor is not None else ()
    return (RecordEpisodeStatistics, RecordVideo, *extra)


# Attributes that describe how an object is built (spaces, specs, the wrapped env), not its state.
_STRUCTURAL_ATTRIBUTES = frozenset(
    {
        "env",
        "_action_space",
        "_observation_space",
        "_metadata",
        "_reward_range",
        "_cached_spec",
        "_saved_kwargs",
        "_ezpickle_args",
        "_ezpickle_kwargs",
        "action_space",
        "observation_space",
        "metadata",
        "spec",
        "render_mode",
        "_np_random",
        "np_random",
    }
)
_PLAIN_SCALARS = (bool, int, float, complex, str, bytes, type(None), np.generic)


class SnapshotError(TypeError):
    """The environment's state cannot be captured or restored."""


class EnvState(NamedTuple):
    """A snapshot of an env chain.

    :param backend: the backend class that captured ``base``.
    :param base: the base env's state, in the backend's format.
    :param rng: the state of ``env.unwrapped.np_random`` (a Generator, or the RandomState shimmy exposes).
    :param wrappers: ``(wrapper type, {attribute: value})`` for each stateful wrapper, outermost first.
    """

    backend: type[_Backend]
    base: Any
    rng: Any
    wrappers: tuple[tuple[type, dict[str, Any]], ...]


# ----------------------------------------------------------------------------------------------
# Plain data: what can be copied cheaply and restored by assignment.


def _is_plain(value: Any, *, allow_dict: bool, depth: int = 0) -> bool:
    if isinstance(value, _PLAIN_SCALARS):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype != object
    if depth > 3:
        return False
    if isinstance(value, (list, tuple, deque)):
        return all(_is_plain(item, allow_dict=allow_dict, depth=depth + 1) for item in value)
    if allow_dict and isinstance(value, dict):
        return all(
            _is_plain(k, allow_dict=True, depth=depth + 1) and _is_plain(v, allow_dict=True, depth=depth + 1)
            for k, v in value.items()
        )
    # A small record of plain data (e.g. NormalizeObservation's RunningMeanStd) is wrapper state too.
    if allow_dict and _is_record(value):
        return all(_is_plain(v, allow_dict=True, depth=depth + 1) for v in vars(value).values())
    return False


def _is_record(value: Any) -> bool:
    return hasattr(value, "__dict__") and not callable(value) and not isinstance(value, (gym.Env, gym.Space, type))


def _copy_plain(value: Any) -> Any:
    """Copy of plain data (arrays copied, containers rebuilt, scalars shared)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):
        return [_copy_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copy_plain(v) for v in value)
    if isinstance(value, deque):
        return deque((_copy_plain(v) for v in value), maxlen=value.maxlen)
    if isinstance(value, dict):
        return {k: _copy_plain(v) for k, v in value.items()}
    if _is_record(value):
        return copy.deepcopy(value)
    return value


def _plain_attributes(obj: Any, *, allow_dict: bool) -> dict[str, Any]:
    """Copies of ``obj``'s plain-data attributes; handles, spaces and callables are left out."""
    return {
        name: _copy_plain(value)
        for name, value in vars(obj).items()
        if name not in _STRUCTURAL_ATTRIBUTES and _is_plain(value, allow_dict=allow_dict)
    }


def _assign(obj: Any, attributes: dict[str, Any]) -> None:
    for name, value in attributes.items():
        setattr(obj, name, _copy_plain(value))


def _rng_state(rng: Any) -> Any:
    if isinstance(rng, np.random.Generator):
        return copy.deepcopy(rng.bit_generator.state)
    if isinstance(rng, np.random.RandomState):
        return rng.get_state()
    return None


def _set_rng_state(rng: Any, state: Any) -> None:
    if isinstance(rng, np.random.Generator):
        rng.bit_generator.state = copy.deepcopy(state)
    elif isinstance(rng, np.random.RandomState):
        rng.set_state(state)


# ----------------------------------------------------------------------------------------------
# Backends for the base env. Each has ``matches(env)``, ``get(env)`` and ``set(env, state)``; ``get`` and
# ``set`` run only on envs that ``matches`` accepted, which is why they may view the env through the
# Protocol of the attributes ``matches`` checked.


class _Backend(Protocol):
    """How one kind of base env is captured and restored (the classes below are used, not instances)."""

    @staticmethod
    def matches(env: gym.Env) -> bool:
        """Whether this backend can capture ``env`` (an unwrapped env)."""
        ...

    @staticmethod
    def get(env: gym.Env) -> Any:
        """The state of ``env``, in this backend's format."""
        ...

    @staticmethod
    def set(env: gym.Env, state: Any) -> None:
        """Restore a state returned by :meth:`get` into ``env``."""
        ...


class _OwnState(Protocol):
    """An env with its own snapshot methods (gym_planning's envs)."""

    def get_state(self) -> Any: ...

    def set_state(self, state: Any) -> None: ...


class _AleEnv(Protocol):
    """ale_py's ``AtariEnv``: ``ale`` is its ``ALEInterface``."""

    ale: Any


class _ShimmyDmControlEnv(Protocol):
    """shimmy's ``DmControlCompatibilityV0``: ``_env`` is the dm_control ``control.Environment``."""

    _env: Any


class _GymnasiumMujocoEnv(Protocol):
    """Gymnasium's ``MujocoEnv``: MuJoCo's ``MjModel`` and ``MjData``."""

    model: Any
    data: Any


def _module(env: gym.Env) -> str:
    return type(env).__module__


class _OwnMethodsBackend(_Backend):
    """Envs that implement ``get_state()`` / ``set_state(state)`` themselves (gym_planning's envs)."""

    @staticmethod
    def matches(env: gym.Env) -> bool:
        return callable(getattr(env, "get_state", None)) and callable(getattr(env, "set_state", None))

    @staticmethod
    def get(env: gym.Env) -> Any:
        return cast(_OwnState, env).get_state()  # matches() found both methods

    @staticmethod
    def set(env: gym.Env, state: Any) -> None:
        cast(_OwnState, env).set_state(state)


class _AleBackend(_Backend):
    """ALE: the emulator state with the ALE's own RNG (sticky actions draw from it)."""

    @staticmethod
    def matches(env: gym.Env) -> bool:
        return _module(env).startswith("ale_py") and hasattr(env, "ale")

    @staticmethod
    def get(env: gym.Env) -> Any:
        return cast(_AleEnv, env).ale.cloneState(include_rng=True)  # matches() found an ale_py env with ``ale``

    @staticmethod
    def set(env: gym.Env, state: Any) -> None:
        cast(_AleEnv, env).ale.restoreState(state)


def _mujoco_get(model: Any, data: Any) -> np.ndarray:
    import mujoco

    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(model, spec), np.float64)
    mujoco.mj_getState(model, data, state, spec)
    return state


def _mujoco_set(model: Any, data: Any, state: np.ndarray) -> None:
    import mujoco

    mujoco.mj_setState(model, data, state, mujoco.mjtState.mjSTATE_INTEGRATION)


class _DmControlBackend(_Backend):
    """dm_control through shimmy: MuJoCo integration state, step counter and the task's random state."""

    @staticmethod
    def matches(env: gym.Env) -> bool:
        return _module(env).startswith("shimmy.dm_control") and hasattr(getattr(env, "_env", None), "physics")

    @staticmethod
    def get(env: gym.Env) -> Any:
        dm_env = cast(_ShimmyDmControlEnv, env)._env  # matches() found a shimmy env whose ``_env`` has physics
        physics = dm_env.physics
        return (
            _mujoco_get(physics.model.ptr, physics.data.ptr),
            dm_env._step_count,
            dm_env._reset_next_step,
            _rng_state(dm_env.task.random),
        )

    @staticmethod
    def set(env: gym.Env, state: Any) -> None:
        dm_env = cast(_ShimmyDmControlEnv, env)._env
        physics = dm_env.physics
        mj_state, dm_env._step_count, dm_env._reset_next_step, task_rng = state
        _mujoco_set(physics.model.ptr, physics.data.ptr, mj_state)
        physics.forward()  # recompute positions, contacts and sensors from the restored state
        _set_rng_state(dm_env.task.random, task_rng)


class _GymnasiumMujocoBackend(_Backend):
    """Gymnasium's MuJoCo envs: MuJoCo integration state plus plain attributes."""

    @staticmethod
    def matches(env: gym.Env) -> bool:
        return _module(env).startswith("gymnasium.envs.mujoco") and hasattr(env, "data")

    @staticmethod
    def get(env: gym.Env) -> Any:
        mujoco_env = cast(_GymnasiumMujocoEnv, env)  # matches() found a gymnasium.envs.mujoco env with ``data``
        return _mujoco_get(mujoco_env.model, mujoco_env.data), _plain_attributes(env, allow_dict=False)

    @staticmethod
    def set(env: gym.Env, state: Any) -> None:
        import mujoco

        mujoco_env = cast(_GymnasiumMujocoEnv, env)
        mj_state, attributes = state
        _mujoco_set(mujoco_env.model, mujoco_env.data, mj_state)
        mujoco.mj_forward(mujoco_env.model, mujoco_env.data)
        _assign(env, attributes)


class _PlainAttributesBackend(_Backend):
    """Gymnasium's classic-control and toy-text envs keep their state in plain attributes
    (``state``, ``s``, ``lastaction``, ...); constant tables held in dicts (FrozenLake's ``P``) are skipped."""

    @staticmethod
    def matches(env: gym.Env) -> bool:
        module = _module(env)
        return module.startswith("gymnasium.envs.classic_control") or module.startswith("gymnasium.envs.toy_text")

    @staticmethod
    def get(env: gym.Env) -> Any:
        return _plain_attributes(env, allow_dict=False)

    @staticmethod
    def set(env: gym.Env, state: Any) -> None:
        _assign(env, state)


_warned_deepcopy: set[type] = set()


class _DeepCopyBackend(_Backend):
    """Any other env: ``copy.deepcopy`` of its attributes (slow; warns once per env type)."""

    @staticmethod
    def matches(env: gym.Env) -> bool:
        return True

    @staticmethod
    def get(env: gym.Env) -> Any:
        if type(env) not in _warned_deepcopy:
            _warned_deepcopy.add(type(env))
            warnings.warn(
                f"{type(env).__name__} has no snapshot backend; StateSnapshot falls back to copy.deepcopy of its "
                "attributes, which can be slow. Give the env get_state()/set_state(state) methods to make it fast.",
                stacklevel=4,
            )
        attributes = {k: v for k, v in vars(env).items() if k not in _STRUCTURAL_ATTRIBUTES}
        try:
            return copy.deepcopy(attributes)
        except Exception as error:  # deepcopy raises many types (TypeError, pickling errors, C extensions)
            raise SnapshotError(
                f"Cannot snapshot {type(env).__name__} ({_module(env)}): copy.deepcopy of its attributes failed "
                f"({type(error).__name__}: {error}). Add get_state() and set_state(state) methods to the env class "
                "that capture and restore everything step() depends on, including random generators."
            ) from None

    @staticmethod
    def set(env: gym.Env, state: Any) -> None:
        vars(env).update(copy.deepcopy(state))


_BACKENDS: tuple[type[_Backend], ...] = (
    _OwnMethodsBackend,
    _AleBackend,
    _DmControlBackend,
    _GymnasiumMujocoBackend,
    _PlainAttributesBackend,
    _DeepCopyBackend,
)


def _backend_for(env: gym.Env) -> type[_Backend]:
    return next(backend for backend in _BACKENDS if backend.matches(env))


# ----------------------------------------------------------------------------------------------
# The env chain.


def _wrappers(env: gym.Env) -> list[gym.Wrapper]:
    """The wrappers of ``env``, outermost first."""
    chain = []
    while isinstance(env, gym.Wrapper):
        chain.append(env)
        env = env.env
    return chain


def _stateful_wrappers(env: gym.Env) -> list[gym.Wrapper]:
    skipped: tuple[type[gym.Wrapper], ...] = (StateSnapshot, *bookkeeping_wrappers())
    return [w for w in _wrappers(env) if not isinstance(w, skipped)]


def _describe(types: Any) -> str:
    return " -> ".join(t.__name__ for t in types) or "(no wrappers)"


def get_env_state(env: gym.Env) -> EnvState:
    """Snapshot of ``env``: its base env (by backend), random generator and wrappers.

    :param env: a Gymnasium env, wrapped or not; it must have been reset.
    :return: an :class:`EnvState` that :func:`set_env_state` restores, on ``env`` or on another env built the
        same way (same id and non-bookkeeping wrappers).
    """
    if not isinstance(env, gym.Env):
        raise TypeError(f"get_env_state needs a gymnasium.Env; got {type(env).__name__}")
    base = env.unwrapped
    backend = _backend_for(base)
    return EnvState(
        backend=backend,
        base=backend.get(base),
        rng=_rng_state(base.np_random),
        wrappers=tuple((type(w), _plain_attributes(w, allow_dict=True)) for w in _stateful_wrappers(env)),
    )


def set_env_state(env: gym.Env, state: EnvState) -> None:
    """Restore a snapshot taken by :func:`get_env_state` into ``env``; the snapshot stays valid for reuse."""
    if not isinstance(state, EnvState):
        raise TypeError(f"set_env_state needs an EnvState from get_env_state; got {type(state).__name__}")
    base = env.unwrapped
    backend = _backend_for(base)
    if backend is not state.backend:
        raise ValueError(
            f"snapshot was taken by {state.backend.__name__} but {type(base).__name__} uses {backend.__name__}; "
            "restore snapshots only into envs built the same way"
        )
    wrappers = _stateful_wrappers(env)
    saved_types = tuple(t for t, _ in state.wrappers)
    if tuple(type(w) for w in wrappers) != saved_types:
        raise ValueError(
            f"snapshot has wrappers {_describe(saved_types)} but the env has {_describe(type(w) for w in wrappers)}; "
            "restore snapshots only into envs built the same way"
        )
    backend.set(base, state.base)
    if state.rng is not None:
        _set_rng_state(base.np_random, state.rng)
    for wrapper, (_, attributes) in zip(wrappers, state.wrappers):
        _assign(wrapper, attributes)


class StateSnapshot(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Adds ``get_state()`` and ``set_state(state)`` to any env: snapshot and restore, random generator and
    wrapper state included, so that a restored env replays identically.

    Example::

        >>> import gymnasium as gym
        >>> from gym_planning.wrappers import StateSnapshot
        >>> env = StateSnapshot(gym.make("CartPole-v1"))
        >>> _ = env.reset(seed=0)
        >>> state = env.get_state()
        >>> first = env.step(0)[0]
        >>> env.set_state(state)
        >>> bool((env.step(0)[0] == first).all())
        True

    :param env: the env to snapshot. Envs that no backend knows are deep-copied (with a warning);
        envs that cannot be deep-copied raise :class:`SnapshotError` at the first ``get_state()``.
    """

    def __init__(self, env: gym.Env):
        if not isinstance(env, gym.Env):
            raise TypeError(f"StateSnapshot wraps a gymnasium.Env; got {type(env).__name__}")
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def get_state(self) -> EnvState:
        """Snapshot of the wrapped env (see :func:`get_env_state`)."""
        return get_env_state(self.env)

    def set_state(self, state: EnvState) -> None:
        """Restore a snapshot from :meth:`get_state` (see :func:`set_env_state`)."""
        set_env_state(self.env, state)
