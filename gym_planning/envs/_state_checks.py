"""Checks of a whole game state before ``set_state`` hands it to compiled code.

The compiled rules index arrays with the positions and counts a state holds, without bounds checks (they
run millions of times per second). A state from ``get_state()`` is always consistent; one built or edited
by hand may not be, and would read and write outside the arrays. So ``set_state`` first checks every
field: Python checks the types, dtypes and shapes (cheap attribute reads), then one compiled pass checks
the values (ranges, counts, positions on free cells) and returns a code that names the first bad field.
Every failure is one ``ValueError``/``TypeError`` naming the field and what it must hold.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
from numba import njit

from gym_planning.envs import _minipacman_core as pac
from gym_planning.envs import _sokoban_core as sok
from gym_planning.envs._sokoban_levels import TARGET, WALL

_MAX_COUNTER = 2**62  # step and frame counters: far from int64 overflow
_MAX_LEVEL = 2**31


def checked_array(name: str, value: Any, shape: tuple[int, ...], dtype: type, kinds: str = "iu") -> np.ndarray:
    """``value`` as a ``dtype`` array of ``shape``; integers of another width must fit ``dtype``."""
    array = np.asarray(value) if not isinstance(value, np.ndarray) else value
    if array.dtype.kind not in kinds:
        raise TypeError(f"state.{name} must be an array of {'booleans or ' if 'b' in kinds else ''}integers; "
                        f"got dtype {array.dtype}")  # fmt: skip
    if array.shape != shape:
        raise ValueError(f"state.{name} must have shape {shape}; got {array.shape}")
    if array.dtype != dtype and np.dtype(dtype) == np.bool_:
        if not np.isin(array, (0, 1)).all():
            raise ValueError(f"state.{name} must hold only True/False (or 0/1)")
    elif array.dtype != dtype:
        info = np.iinfo(dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise ValueError(f"state.{name} holds values outside [{info.min}, {info.max}]")
    if array.dtype != dtype:
        array = array.astype(dtype)
    return array


def action_index(action: Any) -> int:
    """The index of a discrete action (ints, numpy ints, 0-d int arrays); -1 for anything else, bools included."""
    if isinstance(action, (bool, np.bool_)) or (isinstance(action, np.ndarray) and action.dtype == np.bool_):
        return -1
    try:
        return operator.index(action)
    except TypeError:
        return -1


def set_generator_state(np_random: np.random.Generator, state: Any) -> None:
    """``np_random.bit_generator.state = state``, with an error naming ``state.np_random_state``."""
    try:
        np_random.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(
            f"state.np_random_state must be a {type(np_random.bit_generator).__name__} state dict from get_state(); "
            f"setting it failed ({type(error).__name__}: {error})"
        ) from None


# ---------------------------------------------------------------- Sokoban

_SOKOBAN_ERRORS = {
    1: "state.room must hold only 0 (wall), 1 (floor) and 2 (target)",
    2: "state.boxes must not put a box on a wall",
    3: "state.scalars[0:2] (player row, column) must lie inside the room",
    4: "state.scalars[0:2] (player row, column) must be a floor or target cell with no box",
    5: f"state.scalars[2] (steps taken) must lie in [0, {_MAX_COUNTER})",
    6: "state.scalars[3] (boxes on targets) must equal the number of boxes standing on targets",
    7: "state.scalars[4] (boxes in the level) must equal the number of boxes",
}


@njit(cache=True)
def _sokoban_error(room, boxes, scalars) -> int:
    height, width = room.shape
    on_target, num_boxes = 0, 0
    for row in range(height):
        for col in range(width):
            if room[row, col] > TARGET:
                return 1
            if boxes[row, col]:
                if room[row, col] == WALL:
                    return 2
                num_boxes += 1
                on_target += room[row, col] == TARGET
    row, col = scalars[sok.PLAYER_ROW], scalars[sok.PLAYER_COL]
    if not (0 <= row < height and 0 <= col < width):
        return 3
    if room[row, col] == WALL or boxes[row, col]:
        return 4
    if not 0 <= scalars[sok.STEPS] < _MAX_COUNTER:
        return 5
    if scalars[sok.ON_TARGET] != on_target:
        return 6
    if scalars[sok.BOXES] != num_boxes:
        return 7
    return 0


def check_sokoban_state(state: Any, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``room`` uint8, ``boxes`` bool and ``scalars`` int64 of a checked :class:`SokobanState`."""
    room = checked_array("room", state.room, shape, np.uint8)
    boxes = checked_array("boxes", state.boxes, shape, np.bool_, kinds="biu")
    scalars = checked_array("scalars", state.scalars, (sok.NUM_SCALARS,), np.int64)
    code = _sokoban_error(room, boxes, scalars)
    if code:
        raise ValueError(f"{_SOKOBAN_ERRORS[code]}; got scalars {scalars.tolist()}")
    return room, boxes, scalars


# ---------------------------------------------------------------- Minipacman

_MINIPACMAN_ERRORS = {
    1: "state.walls must hold only 0 (free) and 1 (wall), with walls all around the border",
    2: "state.food must hold only 0 and 1, and only on free cells",
    3: "state.scalars[0:2] (Pacman row, column) must be a free cell inside the maze",
    4: f"state.scalars[2] (level) must lie in [1, {_MAX_LEVEL})",
    5: f"state.scalars[3] (power steps left) must lie in [0, {pac.PILL_DURATION}]",
    6: f"state.scalars[4:6] (level timer, frame) must lie in [0, {_MAX_COUNTER})",
    7: "state.scalars[6] (food left) must equal the number of food cells",
    8: f"state.scalars[7] (pills left) must lie in [0, {pac.PILLS_PER_LEVEL}]",
    9: f"state.scalars[8] (ghosts) must lie in [0, {pac.MAX_GHOSTS}]",
    10: "state.scalars[9] (dead) must be 0 or 1",
    11: "state.pills: each live pill (the first scalars[7] rows) must be a free cell inside the maze",
    12: "state.ghosts: each live ghost (the first scalars[8] rows) must be a free cell inside the maze "
        "with a direction in [0, 4)",
}  # fmt: skip


@njit(cache=True)
def _free(walls, row, col) -> bool:
    return 0 <= row < walls.shape[0] and 0 <= col < walls.shape[1] and walls[row, col] == 0


@njit(cache=True)
def _minipacman_error(walls, food, pills, ghosts, scalars) -> int:
    height, width = walls.shape
    num_food = 0
    for row in range(height):
        for col in range(width):
            border = row == 0 or col == 0 or row == height - 1 or col == width - 1
            if walls[row, col] > 1 or (border and walls[row, col] != 1):
                return 1
            if food[row, col] > 1 or (food[row, col] == 1 and walls[row, col] == 1):
                return 2
            num_food += food[row, col]
    if not _free(walls, scalars[pac.PAC_ROW], scalars[pac.PAC_COL]):
        return 3
    checks = (
        1 <= scalars[pac.LEVEL] < _MAX_LEVEL,
        0 <= scalars[pac.POWER] <= pac.PILL_DURATION,
        0 <= scalars[pac.TIMER] < _MAX_COUNTER and 0 <= scalars[pac.FRAME] < _MAX_COUNTER,
        scalars[pac.NUM_FOOD] == num_food,
        0 <= scalars[pac.NUM_PILLS] <= pac.PILLS_PER_LEVEL,
        0 <= scalars[pac.NUM_GHOSTS] <= pac.MAX_GHOSTS,
        scalars[pac.DEAD] == 0 or scalars[pac.DEAD] == 1,
    )
    for k in range(len(checks)):
        if not checks[k]:
            return 4 + k
    for p in range(scalars[pac.NUM_PILLS]):
        if not _free(walls, pills[p, 0], pills[p, 1]):
            return 11
    for g in range(scalars[pac.NUM_GHOSTS]):
        if not _free(walls, ghosts[g, 0], ghosts[g, 1]) or not 0 <= ghosts[g, 2] < 4:
            return 12
    return 0


def check_minipacman_state(state: Any, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """``walls, food, pills, ghosts, scalars, rng`` of a checked :class:`MinipacmanState`, in the env's dtypes."""
    walls = checked_array("walls", state.walls, shape, np.uint8)
    food = checked_array("food", state.food, shape, np.uint8)
    pills = checked_array("pills", state.pills, (pac.PILLS_PER_LEVEL, 2), np.int64)
    ghosts = checked_array("ghosts", state.ghosts, (pac.MAX_GHOSTS, 3), np.int64)
    scalars = checked_array("scalars", state.scalars, (pac.NUM_SCALARS,), np.int64)
    rng = checked_array("rng", state.rng, (1,), np.uint64)
    code = _minipacman_error(walls, food, pills, ghosts, scalars)
    if code:
        raise ValueError(f"{_MINIPACMAN_ERRORS[code]}; got scalars {scalars.tolist()}")
    return walls, food, pills, ghosts, scalars, rng
