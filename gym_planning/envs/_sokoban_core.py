"""Compiled Sokoban rules: one step, observations, level loading, and a batched step for the vector env.

One game is ``room [H, W]`` uint8 (``WALL``/``FLOOR``/``TARGET``), ``boxes [H, W]`` bool and
``scalars [5]`` int64 (player row, player column, steps taken, boxes on targets, boxes in the level). A batch stacks these
on a leading axis ``N``.

Levels come from a *bank* (``bank_room [L, H, W]``, ``bank_boxes [L, H, W]``, ``bank_player [L, 2]``,
``bank_ready [L]``) when the level set is finite (``num_levels`` or Boxoban files): a level is generated
on first use and copied afterwards. With no bank (``L = 0``) every level is generated from its seed.
``gen_config`` (int64) holds ``num_boxes, num_gen_steps, max_explored_states, max_depth, max_tries, salt``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gym_planning.envs._numba_rng import level_seed, randint
from gym_planning.envs._sokoban_levels import DCOL, DROW, FLOOR, TARGET, WALL, generate_level

PLAYER_ROW, PLAYER_COL, STEPS, ON_TARGET, BOXES = 0, 1, 2, 3, 4
NUM_SCALARS = 5
NUM_BOXES, NUM_GEN_STEPS, MAX_STATES, MAX_DEPTH, MAX_TRIES, SALT = 0, 1, 2, 3, 4, 5

STEP_REWARD, BOX_ON_REWARD, BOX_OFF_REWARD, SOLVED_REWARD = -0.1, 1.0, -1.0, 10.0

# Observation colours (RGB), indexed by cell kind; the one-hot planes use the same order.
EMPTY_WALL, EMPTY_FLOOR, EMPTY_TARGET, BOX_ON_TARGET, BOX, PLAYER, PLAYER_ON_TARGET = 0, 1, 2, 3, 4, 5, 6
NUM_PLANES = 7
COLOURS = np.array(
    [[40, 40, 40], [230, 230, 220], [230, 120, 120], [230, 180, 40], [150, 100, 50], [60, 160, 60], [120, 200, 90]],
    dtype=np.uint8,
)


@njit(cache=True)
def step_game(room: np.ndarray, boxes: np.ndarray, scalars: np.ndarray, action: int) -> tuple:
    """Applies ``action`` (0 no-op, 1-4 push up/down/left/right, 5-8 move) in place.

    A push with no box in front is a move; a box moves only onto free floor or a free target (no chain
    pushes). Returns ``(reward, solved)``: -0.1 per step, +1 / -1 when the count of boxes on targets
    rises / falls, +10 more on the step that puts the last box on a target.
    """
    scalars[STEPS] += 1
    reward = STEP_REWARD
    if action == 0:
        return reward, False
    d = (action - 1) % 4
    row, col = scalars[PLAYER_ROW], scalars[PLAYER_COL]
    row1, col1 = row + DROW[d], col + DCOL[d]
    height, width = room.shape
    if row1 < 0 or row1 >= height or col1 < 0 or col1 >= width:  # a room without a wall border: its edge blocks
        return reward, False
    if boxes[row1, col1]:
        if action > 4:
            return reward, False
        row2, col2 = row1 + DROW[d], col1 + DCOL[d]
        if row2 < 0 or row2 >= height or col2 < 0 or col2 >= width or room[row2, col2] == WALL or boxes[row2, col2]:
            return reward, False
        boxes[row1, col1] = False
        boxes[row2, col2] = True
        change = int(room[row2, col2] == TARGET) - int(room[row1, col1] == TARGET)
        scalars[ON_TARGET] += change
        if change > 0:
            reward += BOX_ON_REWARD
        elif change < 0:
            reward += BOX_OFF_REWARD
    elif room[row1, col1] == WALL:
        return reward, False
    scalars[PLAYER_ROW], scalars[PLAYER_COL] = row1, col1
    solved = scalars[ON_TARGET] == scalars[BOXES]
    if solved:
        reward += SOLVED_REWARD
    return reward, solved


@njit(cache=True)
def step_observe(room: np.ndarray, boxes: np.ndarray, scalars: np.ndarray, action: int, planes: bool,
                 obs: np.ndarray) -> tuple:  # fmt: skip
    """:func:`step_game`, then :func:`write_observation` into ``obs``: one compiled call per env step."""
    reward, solved = step_game(room, boxes, scalars, action)
    write_observation(room, boxes, scalars, planes, obs)
    return reward, solved


@njit(cache=True)
def cell_kind(cell: int, has_box: bool, has_player: bool) -> int:
    """What is drawn on a cell of code ``cell``: one of ``EMPTY_WALL`` ... ``PLAYER_ON_TARGET``.

    Takes scalars only: a compiled call with array arguments pays reference counting on every cell.
    """
    on_target = cell == TARGET
    if has_player:
        return PLAYER_ON_TARGET if on_target else PLAYER
    if has_box:
        return BOX_ON_TARGET if on_target else BOX
    return EMPTY_TARGET if on_target else (EMPTY_FLOOR if cell == FLOOR else EMPTY_WALL)


@njit(cache=True)
def write_observation(room: np.ndarray, boxes: np.ndarray, scalars: np.ndarray, planes: bool, out: np.ndarray) -> None:
    """Writes ``out [H, W, 3]`` (RGB, ``COLOURS``) or ``out [H, W, 7]`` (one-hot cell kind, 0/1)."""
    height, width = room.shape
    player_row, player_col = scalars[PLAYER_ROW], scalars[PLAYER_COL]
    if planes:
        out[:] = 0
    for row in range(height):
        for col in range(width):
            kind = cell_kind(room[row, col], boxes[row, col], row == player_row and col == player_col)
            if planes:
                out[row, col, kind] = 1
            else:
                out[row, col, 0] = COLOURS[kind, 0]
                out[row, col, 1] = COLOURS[kind, 1]
                out[row, col, 2] = COLOURS[kind, 2]


@njit(cache=True)
def load_level(level_index, split_id, gen_config, p_change_direction, bank_room, bank_boxes, bank_player, bank_ready,
               room, boxes, scalars) -> bool:  # fmt: skip
    """Puts level ``level_index`` of the split into ``room``, ``boxes``, ``scalars``; False if generation failed."""
    banked = bank_room.shape[0] > 0
    if banked and bank_ready[level_index]:
        room[:] = bank_room[level_index]
        boxes[:] = bank_boxes[level_index]
        player = bank_player[level_index].copy()
    else:
        rng = np.array([level_seed(level_index, split_id, gen_config[SALT])], dtype=np.uint64)
        player = np.empty(2, dtype=np.int64)
        ok = generate_level(rng, room, boxes, player, gen_config[NUM_BOXES], gen_config[NUM_GEN_STEPS],
                            p_change_direction, gen_config[MAX_STATES], gen_config[MAX_DEPTH], gen_config[MAX_TRIES])  # fmt: skip
        if not ok:
            return False
        if banked:
            bank_room[level_index] = room
            bank_boxes[level_index] = boxes
            bank_player[level_index] = player
            bank_ready[level_index] = True
    scalars[PLAYER_ROW], scalars[PLAYER_COL], scalars[STEPS] = player[0], player[1], 0
    on_target, num_boxes = 0, 0
    for row in range(room.shape[0]):
        for col in range(room.shape[1]):
            if boxes[row, col]:
                num_boxes += 1
                on_target += room[row, col] == TARGET
    scalars[ON_TARGET], scalars[BOXES] = on_target, num_boxes
    return True


@njit(cache=True)
def step_batch(rooms, boxes, scalars, rngs, needs_reset, actions, max_steps, num_levels, split_id, gen_config,
               p_change_direction, bank_room, bank_boxes, bank_player, bank_ready, planes,
               obs, rewards, terminated, truncated) -> bool:  # fmt: skip
    """Steps N games (next-step autoreset) and writes ``obs [N, H, W, C]`` and the ``[N]`` outputs.

    A game whose previous step ended is reset instead of stepped (its action is ignored, reward 0),
    on a level index drawn from its own ``rngs[i]`` (below ``num_levels``, or below 2**62 when 0).
    Returns False if a level could not be generated.
    """
    for i in range(rooms.shape[0]):
        if needs_reset[i]:
            level = (
                randint(rngs[i], num_levels)
                if num_levels > 0
                else (randint(rngs[i], 1 << 31) << 31) | randint(rngs[i], 1 << 31)
            )
            if not load_level(level, split_id, gen_config, p_change_direction, bank_room, bank_boxes, bank_player,
                              bank_ready, rooms[i], boxes[i], scalars[i]):  # fmt: skip
                return False
            rewards[i], terminated[i], truncated[i] = 0.0, False, False
        else:
            reward, solved = step_game(rooms[i], boxes[i], scalars[i], actions[i])
            rewards[i], terminated[i], truncated[i] = reward, solved, scalars[i, STEPS] >= max_steps
        needs_reset[i] = terminated[i] or truncated[i]
        write_observation(rooms[i], boxes[i], scalars[i], planes, obs[i])
    return True
