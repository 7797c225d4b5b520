"""Issue 12 (envs): ``set_state`` checks every field before compiled code sees it, bools are not actions,
a dead Pacman scores nothing, and ``GoEnv`` can be deep-copied (so the generic snapshot fallback works)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from gym_planning.envs import _minipacman_core as pac
from gym_planning.envs import _sokoban_core as sok
from gym_planning.envs.minipacman import MinipacmanEnv, MinipacmanState
from gym_planning.envs.sokoban import SokobanEnv, SokobanState


def sokoban() -> tuple[SokobanEnv, SokobanState]:
    env = SokobanEnv(dim_room=(7, 7), num_boxes=2)
    env.reset(seed=3)
    return env, env.get_state()


def minipacman() -> tuple[MinipacmanEnv, MinipacmanState]:
    env = MinipacmanEnv(maze_shape=(9, 9))
    env.reset(seed=3)
    return env, env.get_state()


def edited(state, field: str, index, value):
    """A copy of ``state`` whose ``field[index]`` is ``value`` (``index=None``: the whole field)."""
    if index is None:
        return state._replace(**{field: value})
    array = getattr(state, field).copy()
    array[index] = value
    return state._replace(**{field: array})


SOKOBAN_BAD = {
    "player far away": (
        lambda s: edited(s, "scalars", sok.PLAYER_ROW, 10**9),
        ValueError,
        r"scalars\[0:2\] .* inside the room",
    ),
    "player negative": (lambda s: edited(s, "scalars", sok.PLAYER_COL, -1), ValueError, r"scalars\[0:2\] .* inside the room"),
    "player on a wall": (
        lambda s: edited(edited(s, "scalars", sok.PLAYER_ROW, 0), "scalars", sok.PLAYER_COL, 0),
        ValueError,
        r"floor or target cell with no box",
    ),
    "player on a box": (
        lambda s: edited(s, "boxes", (s.scalars[0], s.scalars[1]), True),
        ValueError,
        "no box|boxes in the level",
    ),
    "room code 7": (lambda s: edited(s, "room", (0, 0), 7), ValueError, r"state.room must hold only 0 \(wall\)"),
    "room negative int64": (
        lambda s: edited(s, "room", None, s.room.astype(np.int64) - 5),
        ValueError,
        "state.room holds values",
    ),
    "room float": (
        lambda s: edited(s, "room", None, s.room.astype(float)),
        TypeError,
        "state.room must be an array of integers",
    ),
    "room wrong shape": (
        lambda s: edited(s, "room", None, np.ones((8, 8), np.uint8)),
        ValueError,
        r"state.room must have shape \(7, 7\)",
    ),
    "box on a wall": (lambda s: edited(s, "boxes", (0, 0), True), ValueError, "box on a wall"),
    "boxes of 2": (lambda s: edited(s, "boxes", None, s.boxes.astype(np.int64) * 2), ValueError, "state.boxes must hold only"),
    "scalars short": (
        lambda s: edited(s, "scalars", None, s.scalars[:3]),
        ValueError,
        r"state.scalars must have shape \(5,\)",
    ),
    "scalars strings": (
        lambda s: edited(s, "scalars", None, np.array(list("abcde"))),
        TypeError,
        "state.scalars must be an array",
    ),
    "steps negative": (lambda s: edited(s, "scalars", sok.STEPS, -1), ValueError, r"scalars\[2\] \(steps taken\)"),
    "on-target count": (lambda s: edited(s, "scalars", sok.ON_TARGET, 99), ValueError, r"scalars\[3\] \(boxes on targets\)"),
    "box count": (lambda s: edited(s, "scalars", sok.BOXES, 1000), ValueError, r"scalars\[4\] \(boxes in the level\)"),
    "rng state": (
        lambda s: edited(s, "np_random_state", None, {"bit_generator": "nope"}),
        ValueError,
        "state.np_random_state",
    ),
}


@pytest.mark.parametrize(("make", "error", "message"), SOKOBAN_BAD.values(), ids=list(SOKOBAN_BAD))
def test_sokoban_set_state_names_the_bad_field_and_changes_nothing(make, error, message) -> None:
    env, state = sokoban()
    with pytest.raises(error, match=message):
        env.set_state(make(state))
    after = env.get_state()
    for field in ("room", "boxes", "scalars"):
        np.testing.assert_array_equal(getattr(after, field), getattr(state, field))
    assert after.np_random_state == state.np_random_state


def test_sokoban_room_without_a_wall_border_keeps_the_player_inside() -> None:
    env, state = sokoban()
    room = np.full((7, 7), 1, np.uint8)  # all floor, no walls: the room's edge must block like a wall
    boxes = np.zeros((7, 7), bool)
    boxes[3, 3] = True
    room[3, 4] = 2
    env.set_state(SokobanState(room, boxes, np.array([0, 0, 0, 0, 1]), state.np_random_state))
    for action in (5, 7, 1, 3) * 3:  # up and left, moves and pushes, from the corner
        env.step(action)
    assert env.get_state().scalars[:2].tolist() == [0, 0]


MINIPACMAN_BAD = {
    "pacman at (40, 40)": (
        lambda s: edited(edited(s, "scalars", pac.PAC_ROW, 40), "scalars", pac.PAC_COL, 40),
        r"scalars\[0:2\] \(Pacman row, column\)",
    ),
    "pacman on a wall": (lambda s: edited(edited(s, "scalars", pac.PAC_ROW, 0), "scalars", pac.PAC_COL, 0), r"Pacman row"),
    "1000 ghosts": (lambda s: edited(s, "scalars", pac.NUM_GHOSTS, 1000), r"scalars\[8\] \(ghosts\)"),
    "ghost outside": (lambda s: edited(s, "ghosts", (0, 0), -3), "state.ghosts: each live ghost"),
    "ghost direction": (lambda s: edited(s, "ghosts", (0, 2), 7), "state.ghosts: each live ghost"),
    "pill count": (lambda s: edited(s, "scalars", pac.NUM_PILLS, 5), r"scalars\[7\] \(pills left\)"),
    "pill outside": (lambda s: edited(s, "pills", (1, 1), 10**6), "state.pills: each live pill"),
    "level 0": (lambda s: edited(s, "scalars", pac.LEVEL, 0), r"scalars\[2\] \(level\)"),
    "power 99": (lambda s: edited(s, "scalars", pac.POWER, 99), r"scalars\[3\] \(power steps left\)"),
    "frame negative": (lambda s: edited(s, "scalars", pac.FRAME, -1), r"scalars\[4:6\]"),
    "food count": (lambda s: edited(s, "scalars", pac.NUM_FOOD, 3), r"scalars\[6\] \(food left\)"),
    "dead 2": (lambda s: edited(s, "scalars", pac.DEAD, 2), r"scalars\[9\] \(dead\)"),
    "open border": (lambda s: edited(s, "walls", (0, 3), 0), "walls all around the border"),
    "food on a wall": (lambda s: edited(s, "food", (0, 0), 1), "only on free cells"),
    "walls wrong shape": (lambda s: edited(s, "walls", None, np.ones((5, 5), np.uint8)), r"state.walls must have shape"),
    "ghost table of 40 rows": (
        lambda s: edited(s, "ghosts", None, np.zeros((40, 3), np.int64)),
        r"state.ghosts must have shape",
    ),
    "rng negative": (lambda s: edited(s, "rng", None, np.array([-1])), "state.rng holds values"),
    "rng state": (lambda s: edited(s, "np_random_state", None, 5), "state.np_random_state"),
}


@pytest.mark.parametrize(("make", "message"), MINIPACMAN_BAD.values(), ids=list(MINIPACMAN_BAD))
def test_minipacman_set_state_names_the_bad_field_and_changes_nothing(make, message) -> None:
    env, state = minipacman()
    with pytest.raises(ValueError, match=message):
        env.set_state(make(state))
    after = env.get_state()
    for field in ("walls", "food", "pills", "ghosts", "scalars", "rng"):
        np.testing.assert_array_equal(getattr(after, field), getattr(state, field))


def test_minipacman_state_of_other_integer_dtypes_is_accepted() -> None:
    env, state = minipacman()
    env.set_state(state._replace(walls=state.walls.astype(np.int64), scalars=state.scalars.astype(np.int32)))
    assert env.get_state().scalars.dtype == np.int64
    np.testing.assert_array_equal(env.get_state().scalars, state.scalars)


def test_a_dead_pacman_scores_nothing_more() -> None:
    env, state = minipacman()
    row, col = state.scalars[pac.PAC_ROW], state.scalars[pac.PAC_COL]
    env.set_state(edited(edited(state, "scalars", pac.DEAD, 1), "food", (row, col + 1), state.food[row, col + 1]))
    for action in (1, 2, 3, 4, 0):
        _, reward, terminated, _, _ = env.step(action)
        assert (reward, terminated) == (0.0, True)
    np.testing.assert_array_equal(env.get_state().food, state.food)


@pytest.mark.parametrize("make", [sokoban, minipacman], ids=["sokoban", "minipacman"])
@pytest.mark.parametrize("action", [True, False, np.bool_(True), np.array(True), 1.0, "1"])
def test_bools_and_non_integers_are_not_actions(make, action) -> None:
    env, _ = make()
    with pytest.raises(ValueError, match="action must be an int"):
        env.step(action)


def test_go_env_deep_copies_and_snapshots_through_the_generic_fallback() -> None:
    pytest.importorskip("pyspiel")
    from gym_planning.envs.go import GoEnv
    from gym_planning.wrappers.snapshot import _DeepCopyBackend

    env = GoEnv(board_size=5, opponent="random")
    env.reset(seed=0)
    env.step(0)
    twin = copy.deepcopy(env)
    np.testing.assert_array_equal(twin.step(6)[0], env.step(6)[0])
    with pytest.warns(UserWarning, match="falls back to copy.deepcopy"):
        saved = _DeepCopyBackend.get(env)
    board = env._observation()
    env.step(int(np.flatnonzero(env.action_masks())[0]))
    _DeepCopyBackend.set(env, saved)
    np.testing.assert_array_equal(env._observation(), board)
