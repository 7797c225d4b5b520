"""Sokoban level generation by reverse play, compiled with Numba.

The recipe is gym-sokoban's (``room_utils.py``, see REFERENCES §3.1), rewritten for speed:

1. *Topology*: a random walk from a random interior cell, changing direction with probability
   ``p_change_direction``, stamps one of five 3x3 floor masks at each step; the border becomes wall.
2. *Placement*: the player and ``num_boxes`` targets go on distinct random floor cells; every box
   starts on its own target (the solved state).
3. *Reverse play*: a depth-first search over reverse moves (step, or step and **pull** the box behind)
   explores at most ``max_explored_states`` distinct states, at most ``max_depth`` moves deep. Each state
   scores ``box_swaps * sum_i |box_i - target_i|_1`` (0 while any box or the player is on a target); the
   best state becomes the level. Every level is solvable: pushing replays the pulls backwards.

Differences from gym-sokoban, all for speed or by intent: states are hashed with Zobrist keys in an
open-addressing table (gym-sokoban keys a dict on the whole room); the state budget is smaller (its
300,000 states take seconds in Python); ``box_swaps`` counts changes of the pulled box, as its name
says (gym-sokoban's recursion passes the root's ``last_pull`` down, so it counts every pull); a plain
move is tried only where it differs from the pull in the same direction.

Cell codes of ``room [H, W]`` (uint8): ``WALL``, ``FLOOR``, ``TARGET``. Boxes are ``boxes [H, W]`` (bool).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gym_planning.envs._numba_rng import next_u64, randint, uniform

WALL, FLOOR, TARGET = 0, 1, 2
# Directions up, down, left, right (gym-sokoban's order).
DROW = np.array([-1, 1, 0, 0], dtype=np.int64)
DCOL = np.array([0, 0, -1, 1], dtype=np.int64)
# The five 3x3 floor stamps of the topology walk: row, column, elbow, block, mirrored elbow.
_STAMPS = np.array(
    [
        [[0, 0, 0], [1, 1, 1], [0, 0, 0]],
        [[0, 1, 0], [0, 1, 0], [0, 1, 0]],
        [[0, 0, 0], [1, 1, 0], [0, 1, 0]],
        [[0, 0, 0], [1, 1, 0], [1, 1, 0]],
        [[0, 0, 0], [0, 1, 1], [0, 1, 0]],
    ],
    dtype=np.uint8,
)


@njit(cache=True)
def carve_topology(room: np.ndarray, rng: np.ndarray, num_steps: int, p_change_direction: float) -> None:
    """Writes walls and floor into ``room [H, W]`` by the stamped random walk (step 1)."""
    height, width = room.shape
    room[:, :] = WALL
    direction = randint(rng, 4)
    row = 1 + randint(rng, height - 1)
    col = 1 + randint(rng, width - 1)
    for _ in range(num_steps):
        if uniform(rng) < p_change_direction:
            direction = randint(rng, 4)
        row = min(max(row + DROW[direction], 1), height - 2)
        col = min(max(col + DCOL[direction], 1), width - 2)
        stamp = randint(rng, 5)
        for i in range(3):
            for j in range(3):
                if _STAMPS[stamp, i, j]:
                    room[row - 1 + i, col - 1 + j] = FLOOR
    room[0, :] = WALL
    room[height - 1, :] = WALL
    room[:, 0] = WALL
    room[:, width - 1] = WALL


@njit(cache=True)
def _place(room: np.ndarray, rng: np.ndarray, num_boxes: int, player: np.ndarray, targets: np.ndarray) -> bool:
    """Puts the player and the targets on distinct random floor cells (step 2); False if too few."""
    height, width = room.shape
    free = np.empty(height * width, dtype=np.int64)
    n_free = 0
    for cell in range(height * width):
        if room[cell // width, cell % width] == FLOOR:
            free[n_free] = cell
            n_free += 1
    if n_free <= num_boxes + 1:
        return False
    for k in range(num_boxes + 1):  # partial Fisher-Yates: k = 0 is the player
        j = k + randint(rng, n_free - k)
        free[k], free[j] = free[j], free[k]
    player[0], player[1] = free[0] // width, free[0] % width
    for b in range(num_boxes):
        targets[b, 0], targets[b, 1] = free[b + 1] // width, free[b + 1] % width
        room[targets[b, 0], targets[b, 1]] = TARGET
    return True


@njit(cache=True)
def _table_insert(table: np.ndarray, key: np.uint64) -> bool:
    """Adds ``key`` to the open-addressing set ``table``; False if it was already there."""
    mask = np.uint64(table.shape[0] - 1)
    slot = key & mask
    while table[slot] != 0:
        if table[slot] == key:
            return False
        slot = (slot + np.uint64(1)) & mask
    table[slot] = key
    return True


@njit(cache=True)
def _score(room, box_row, box_col, targets, player, swaps) -> int:
    """``swaps * total box displacement``, or 0 while a box or the player stands on a target."""
    if room[player[0], player[1]] == TARGET:
        return 0
    total = 0
    for b in range(targets.shape[0]):
        if room[box_row[b], box_col[b]] == TARGET:
            return 0
        total += abs(box_row[b] - targets[b, 0]) + abs(box_col[b] - targets[b, 1])
    return swaps * total


@njit(cache=True)
def _zobrist_keys(num_cells: int) -> np.ndarray:
    """Random 64-bit keys ``[2, cells]`` (player, box) whose XOR over a state's pieces hashes the state."""
    keys = np.empty((2, num_cells), dtype=np.uint64)
    seed = np.array([np.uint64(0x5EED)], dtype=np.uint64)
    for k in range(2):
        for cell in range(num_cells):
            keys[k, cell] = next_u64(seed)
    return keys


@njit(cache=True)
def _reverse_move_kind(room, box_at, pos, action: int) -> int:
    """What reverse action ``action`` does from ``pos``: -2 nothing new, -1 a plain step, ``b >= 0`` pulls box b.

    Actions 0-3 step up/down/left/right and pull the box behind, if any; 4-7 step away from a box
    without pulling it (without a box behind they would repeat 0-3).
    """
    d = action % 4
    row, col = pos[0] + DROW[d], pos[1] + DCOL[d]
    if room[row, col] == WALL or box_at[row, col] >= 0:
        return -2
    behind = box_at[pos[0] - DROW[d], pos[1] - DCOL[d]]
    if action >= 4:
        return -1 if behind >= 0 else -2
    return behind


@njit(cache=True)
def _shift(pos, d: int, sign: int, b: int, box_row, box_col, box_at, zobrist, width: int, key: np.uint64) -> np.uint64:
    """Moves the player, and box ``b`` if ``b >= 0``, by ``sign`` cells in direction ``d``; returns the new hash.

    ``sign = 1`` plays a reverse move (the box follows the player onto its old cell), ``sign = -1`` undoes it.
    """
    key ^= zobrist[0, pos[0] * width + pos[1]]
    pos[0] += sign * DROW[d]
    pos[1] += sign * DCOL[d]
    key ^= zobrist[0, pos[0] * width + pos[1]]
    if b >= 0:
        key ^= zobrist[1, box_row[b] * width + box_col[b]]
        box_at[box_row[b], box_col[b]] = -1
        box_row[b] += sign * DROW[d]
        box_col[b] += sign * DCOL[d]
        box_at[box_row[b], box_col[b]] = b
        key ^= zobrist[1, box_row[b] * width + box_col[b]]
    return key


@njit(cache=True)
def reverse_play(room, player, targets, max_explored_states, max_depth, best_player, best_boxes) -> int:
    """Depth-first reverse play from the solved state (step 3); writes the best state and returns its score.

    :param room: ``[H, W]`` uint8 walls, floor and targets.
    :param player: ``[2]`` the player's start cell. :param targets: ``[n, 2]`` target cells (box i starts on i).
    :param best_player: out ``[2]``. :param best_boxes: out ``[n, 2]`` box cells of the best state.
    """
    height, width = room.shape
    zobrist = _zobrist_keys(height * width)
    size = 1
    while size < 2 * max_explored_states:
        size *= 2
    table = np.zeros(size, dtype=np.uint64)
    box_at = np.full((height, width), -1, dtype=np.int64)
    box_row, box_col = targets[:, 0].copy(), targets[:, 1].copy()
    pos = player.copy()
    key = zobrist[0, pos[0] * width + pos[1]]
    for b in range(targets.shape[0]):
        box_at[box_row[b], box_col[b]] = b
        key ^= zobrist[1, box_row[b] * width + box_col[b]]
    _table_insert(table, key | np.uint64(1))
    explored, best_score = 1, 0
    best_player[:] = pos
    best_boxes[:, 0] = box_row
    best_boxes[:, 1] = box_col
    # Per depth: the next action to try, and the move (direction, pulled box) that left this depth.
    next_action = np.zeros(max_depth + 1, dtype=np.int64)
    moved_dir = np.zeros(max_depth + 1, dtype=np.int64)
    pulled = np.full(max_depth + 1, -1, dtype=np.int64)
    last_pulled = np.full(max_depth + 2, -1, dtype=np.int64)
    swaps = np.zeros(max_depth + 2, dtype=np.int64)
    depth = 0
    while depth >= 0:
        action = next_action[depth]
        if action == 8 or explored >= max_explored_states:
            depth -= 1
            if depth >= 0:
                key = _shift(pos, moved_dir[depth], -1, pulled[depth], box_row, box_col, box_at, zobrist, width, key)
            continue
        next_action[depth] = action + 1
        b = _reverse_move_kind(room, box_at, pos, action)
        if b == -2 or depth + 1 >= max_depth:
            continue
        d = action % 4
        key = _shift(pos, d, 1, b, box_row, box_col, box_at, zobrist, width, key)
        if not _table_insert(table, key | np.uint64(1)):
            key = _shift(pos, d, -1, b, box_row, box_col, box_at, zobrist, width, key)
            continue
        explored += 1
        moved_dir[depth], pulled[depth] = d, b
        last_pulled[depth + 1] = b if b >= 0 else last_pulled[depth]
        swaps[depth + 1] = swaps[depth] + (1 if b >= 0 and b != last_pulled[depth] else 0)
        depth += 1
        next_action[depth] = 0
        score = _score(room, box_row, box_col, targets, pos, swaps[depth])
        if score > best_score:
            best_score = score
            best_player[:] = pos
            best_boxes[:, 0] = box_row
            best_boxes[:, 1] = box_col
    return best_score


@njit(cache=True)
def generate_level(
    rng, room, boxes, player, num_boxes, num_gen_steps, p_change_direction, max_explored_states, max_depth, max_tries
) -> bool:
    """Generates one level into ``room [H, W]``, ``boxes [H, W]`` and ``player [2]``; False after ``max_tries`` failures.

    A try fails when the walk leaves too few floor cells or no reverse play moves a box off its target.
    """
    targets = np.empty((num_boxes, 2), dtype=np.int64)
    best_boxes = np.empty((num_boxes, 2), dtype=np.int64)
    for _ in range(max_tries):
        carve_topology(room, rng, num_gen_steps, p_change_direction)
        if not _place(room, rng, num_boxes, player, targets):
            continue
        if reverse_play(room, player.copy(), targets, max_explored_states, max_depth, player, best_boxes) > 0:
            boxes[:, :] = False
            for b in range(num_boxes):
                boxes[best_boxes[b, 0], best_boxes[b, 1]] = True
            return True
    return False
