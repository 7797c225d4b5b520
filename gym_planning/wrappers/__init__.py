"""Planning wrappers: any env as its own model, discrete action sets, suite stacks.

* :class:`StateSnapshot` (and :func:`get_env_state` / :func:`set_env_state`): snapshot and restore any env.
* :class:`ActionSetDiscretize`, :class:`FactorisedDiscretizeAction`: small discrete action sets for
  many-dimensional continuous actions (next to ``gymnasium.wrappers.DiscretizeAction``'s full grid).
* :class:`ActionRepeat`, :class:`FramesToChannels`, :func:`make_dm_control`, :func:`make_atari`: standard stacks.

ale-py and shimmy/dm_control are imported only when the objects that need them are used. (Playing inside a
learned model is :class:`gym_planning.models.LearnedModelEnv`: wrappers know nothing of models.)
"""

from gym_planning.wrappers.discretize import ActionSetDiscretize, FactorisedDiscretizeAction, factorised_action_set
from gym_planning.wrappers.snapshot import EnvState, SnapshotError, StateSnapshot, get_env_state, set_env_state
from gym_planning.wrappers.suites import ActionRepeat, FramesToChannels, make_atari, make_dm_control

__all__ = [
    "ActionRepeat",
    "ActionSetDiscretize",
    "EnvState",
    "FactorisedDiscretizeAction",
    "FramesToChannels",
    "SnapshotError",
    "StateSnapshot",
    "factorised_action_set",
    "get_env_state",
    "make_atari",
    "make_dm_control",
    "set_env_state",
]
