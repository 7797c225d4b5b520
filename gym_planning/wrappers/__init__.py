"""Planning wrappers: any env as its own model, discrete action sets, learned models as envs, suite stacks.

* :class:`StateSnapshot` (and :func:`get_env_state` / :func:`set_env_state`): snapshot and restore any env.
* :class:`ActionSetDiscretize`, :class:`FactorisedDiscretizeAction`: small discrete action sets for
  many-dimensional continuous actions (next to ``gymnasium.wrappers.DiscretizeAction``'s full grid).
* :class:`ActionRepeat`, :class:`FramesToChannels`, :func:`make_dm_control`, :func:`make_atari`: standard stacks.
* :class:`LearnedModelEnv`: play inside a learned model (loaded lazily: models are torch networks).

ale-py, shimmy/dm_control and torch are imported only when the objects that need them are used.
"""

from typing import Any

from gym_planning.wrappers.discretize import ActionSetDiscretize, FactorisedDiscretizeAction, factorised_action_set
from gym_planning.wrappers.snapshot import EnvState, SnapshotError, StateSnapshot, get_env_state, set_env_state
from gym_planning.wrappers.suites import ActionRepeat, FramesToChannels, make_atari, make_dm_control

__all__ = [
    "ActionRepeat",
    "ActionSetDiscretize",
    "EnvState",
    "FactorisedDiscretizeAction",
    "FramesToChannels",
    "LearnedModelEnv",
    "SnapshotError",
    "StateSnapshot",
    "factorised_action_set",
    "get_env_state",
    "make_atari",
    "make_dm_control",
    "set_env_state",
]

_LAZY = {"LearnedModelEnv": "gym_planning.wrappers.learned_model_env"}


def __getattr__(name: str) -> Any:
    """Load wrappers with heavy dependencies on first use (as ``gymnasium.wrappers`` does)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
