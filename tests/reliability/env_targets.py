"""Fuzz targets for the envs: ``set_state`` with edited states, then ``step`` with odd actions.

Each input starts from a real state (a few per env, made at start-up), applies a list of edits (one entry
set to an extreme integer, a field of the wrong dtype or shape, a broken generator state, not a state at
all), restores it and steps. Promise: a bad state or action is refused with one ``ValueError``/``TypeError``
naming it; an accepted state steps without error and stays valid (``get_state()`` passes the checks again).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
from hypothesis import strategies as st

from tests.reliability.harness import InvariantBroken, Target

EXTREME_INTS = st.one_of(
    st.integers(-3, 40),
    st.sampled_from([-(2**63), -(10**9), 10**9, 2**31, 2**62, 2**63 - 1]),
)
ODD_ACTIONS = st.one_of(
    st.integers(-2, 10),
    st.sampled_from([True, False, np.bool_(True), 1.5, "1", None, np.int8(3), np.array(2), np.array([1]), 2**70]),
)


def _edit(draw, fields: dict[str, tuple[int, ...]]):
    """One edit: ``(field, kind, payload)``; applied by :func:`_apply`."""
    field = draw(st.sampled_from([*fields, "np_random_state", "whole"]))
    if field == "whole":
        return field, "replace", draw(st.sampled_from([None, 3, "state", (1, 2), {}]))
    if field == "np_random_state":
        return field, "replace", draw(st.sampled_from([None, {}, {"bit_generator": "PCG64"}, 7, "x"]))
    kind = draw(st.sampled_from(["entry", "entry", "entry", "entry", "dtype", "shape"]))
    if kind == "entry":
        shape = fields[field]
        index = tuple(draw(st.integers(0, n - 1)) for n in shape)
        return field, kind, (index, draw(EXTREME_INTS))
    if kind == "dtype":
        return field, kind, draw(st.sampled_from(["float64", "int8", "int32", "uint64", "bool", "object", "complex128", "U3"]))
    return field, kind, draw(st.sampled_from([(0,), (1,), (3, 3), (40,), (40, 3)]))


def _apply(state, edit) -> Any:
    """``state`` with ``edit`` applied; unchanged when numpy cannot build the edited field (a skipped edit)."""
    try:
        return _edited(state, edit)
    except (ValueError, OverflowError, TypeError):
        return state


def _edited(state, edit) -> Any:
    field, kind, payload = edit
    if field == "whole" or not hasattr(state, "_replace"):  # once the state is not a state, it stays so
        return payload if field == "whole" else state
    if kind == "replace":
        return state._replace(**{field: payload})
    value = np.array(getattr(state, field))
    if kind == "entry":
        index, number = payload
        if value.ndim != len(index) or value.size == 0:  # an earlier edit changed the shape: nothing to set
            return state
        index = tuple(i % n for i, n in zip(index, value.shape))
        if not np.can_cast(np.min_scalar_type(number), value.dtype):  # widen, as a hand-built state might
            value = value.astype(np.float64 if abs(number) > 2**63 - 1 else np.int64)
        value[index] = number
    elif kind == "dtype":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # complex128 casts of the edited copy warn; the cast is the point
            value = value.astype(payload)
    else:
        value = np.zeros(payload, value.dtype)
    return state._replace(**{field: value})


def _game_target(make_env: Callable[[int], Any], fields: dict[str, tuple[int, ...]], check: Callable[[Any], None],
                 num_actions: int) -> Target:  # fmt: skip
    envs = [make_env(seed) for seed in range(3)]
    for env in envs:
        for action in np.random.default_rng(0).integers(0, num_actions, 5):
            env.step(int(action))
    states = [env.get_state() for env in envs]

    edit = st.composite(lambda draw: _edit(draw, fields))()
    cases = st.tuples(st.integers(0, len(envs) - 1), st.lists(edit, max_size=3), st.lists(ODD_ACTIONS, max_size=6))

    def run(case) -> None:
        which, edits, actions = case
        env, state = envs[which], states[which]
        env.set_state(state)
        edited = state
        for edit in edits:
            edited = _apply(edited, edit)
        env.set_state(edited)
        for action in actions:
            if isinstance(action, np.ndarray) and action.shape == () and action.dtype.kind in "iu":
                action = action.item()  # a 0-d integer array is an action
            is_action = isinstance(action, (int, np.integer)) and not isinstance(action, (bool, np.bool_))
            if not (is_action and 0 <= action < num_actions):
                try:
                    env.step(action)
                except ValueError as error:
                    if "action" not in str(error):
                        raise
                    continue
                raise InvariantBroken(f"step({action!r}) was accepted")
            obs, reward, terminated, truncated, _ = env.step(action)
            if obs.dtype != np.uint8 or obs.shape != env.observation_space.shape or not np.isfinite(reward):
                raise InvariantBroken(f"step({action}) gave obs {obs.dtype}{obs.shape}, reward {reward}")
            check(env.get_state())

    return Target(cases, run, (ValueError, TypeError), ("state", "action"))


def sokoban() -> Target:
    from gym_planning.envs._state_checks import check_sokoban_state
    from gym_planning.envs.sokoban import SokobanEnv

    def make(seed: int) -> Any:
        env = SokobanEnv(dim_room=(7, 7), num_boxes=2, max_steps=10**6)
        env.reset(seed=seed)
        return env

    fields = {"room": (7, 7), "boxes": (7, 7), "scalars": (5,)}
    return _game_target(make, fields, lambda state: check_sokoban_state(state, (7, 7)), 9)


def minipacman() -> Target:
    from gym_planning.envs._state_checks import check_minipacman_state
    from gym_planning.envs.minipacman import MinipacmanEnv

    def make(seed: int) -> Any:
        env = MinipacmanEnv(maze_shape=(9, 11), max_steps=10**6, mode=("regular", "hunt", "rush")[seed % 3])
        env.reset(seed=seed)
        return env

    fields = {"walls": (9, 11), "food": (9, 11), "pills": (2, 2), "ghosts": (32, 3), "scalars": (10,), "rng": (1,)}
    return _game_target(make, fields, lambda state: check_minipacman_state(state, (9, 11)), 5)


def go() -> Target:
    from gymnasium.error import ResetNeeded

    from gym_planning.envs.go import GoEnv

    env = GoEnv(board_size=5)
    other = GoEnv(board_size=7)
    other.reset(seed=0)
    foreign = [other.get_state(), None, 3, "state", object()]

    def run(case) -> None:
        seed, moves, swap = case
        env.reset(seed=seed)
        for move in moves:
            if swap is not None and move == 0:
                env.set_state(foreign[swap])
            env.step(move)
            obs = env._observation()
            if obs.shape != (4, 5, 5) or not np.isin(obs, (0.0, 1.0)).all():
                raise InvariantBroken(f"observation {obs.shape} holds values other than 0/1")

    cases = st.tuples(st.integers(0, 100), st.lists(ODD_ACTIONS | st.integers(0, 25), max_size=30),
                      st.none() | st.integers(0, len(foreign) - 1))  # fmt: skip
    return Target(cases, run, (ValueError, TypeError, ResetNeeded), ("action", "move", "state", "reset"))


TARGETS = {"sokoban": sokoban, "minipacman": minipacman, "go": go}
