"""Compiled Minipacman rules, as coded in DeepMind's ``PillEater`` (REFERENCES §2.2-2.3).

One game is ``walls [H, W]`` and ``food [H, W]`` (uint8), ``pills [P, 2]`` and ``ghosts [G, 3]`` (int64 row,
column, direction; only the first ``NUM_PILLS`` / ``NUM_GHOSTS`` entries are live, in the reference's list
order), ``scalars [10]`` int64 and ``rng [1]`` uint64. ``task [9]`` float64 holds the reward table and
level-end rule (indices below). Directions 0-3 are right, up, left, down; action ``a`` moves in
direction ``a - 1`` and action 0 stays.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gym_planning.envs._minipacman_maze import DCOL, DROW, generate_maze
from gym_planning.envs._numba_rng import level_seed, randint, uniform

PAC_ROW, PAC_COL, LEVEL, POWER, TIMER, FRAME, NUM_FOOD, NUM_PILLS, NUM_GHOSTS, DEAD = range(10)
NUM_SCALARS = 10
(STEP_REWARD, FOOD_REWARD, PILL_REWARD, GHOST_REWARD, DEATH_REWARD,
 END_ON_FOOD, END_ON_PILLS, END_ON_GHOSTS, LEVEL_STEPS) = range(9)  # fmt: skip

PILLS_PER_LEVEL = 2
PILL_DURATION = 20  # steps of power after a pill
SAFE_DISTANCE = 5  # ghosts start outside this half-width square around Pacman
GHOST_SPEED_INIT, GHOST_SPEED_INCREASE = 0.5, 0.1  # chance to move per step at level 1, added per level
STOCHASTICITY = 0.05  # chance that a chasing ghost takes a random exit at a junction
MAX_GHOSTS = 32  # cap on 1 + (level - 1) // 2, reached at level 63

WALLS_PLANE, FOOD_PLANE, PACMAN_PLANE, GHOST_PLANE, EDIBLE_GHOST_PLANE, PILL_PLANE = range(6)
NUM_PLANES = 6


@njit(cache=True)
def _random_free_cell(walls: np.ndarray, rng: np.ndarray, row0: int, row1: int, col0: int, col1: int) -> tuple:
    """A uniformly random free cell outside rows ``[row0, row1)`` x columns ``[col0, col1)`` (rejection sampling).

    Falls back to any free cell when that region leaves none (only tiny custom mazes).
    """
    height, width = walls.shape
    candidates = 0
    for row in range(height):
        for col in range(width):
            if walls[row, col] == 0 and not (row0 <= row < row1 and col0 <= col < col1):
                candidates += 1
    if candidates == 0:
        row0 = row1 = col0 = col1 = 0
    while True:
        row, col = randint(rng, height), randint(rng, width)
        if walls[row, col] == 0 and not (row0 <= row < row1 and col0 <= col < col1):
            return row, col


@njit(cache=True)
def init_level(level: int, walls, food, pills, ghosts, scalars, rng) -> None:
    """Starts level ``level`` on the same maze: food everywhere, new pills, Pacman and more, faster ghosts."""
    height, width = walls.shape
    num_food = 0
    for row in range(height):
        for col in range(width):
            food[row, col] = 1 - walls[row, col]
            num_food += food[row, col]
    for p in range(PILLS_PER_LEVEL):
        pills[p, 0], pills[p, 1] = _random_free_cell(walls, rng, 0, 0, 0, 0)
    pac_row, pac_col = _random_free_cell(walls, rng, 0, 0, 0, 0)
    # The reference blocks the half-open square [pos - d, pos + d), clipped to [1, size).
    row0, row1 = max(pac_row - SAFE_DISTANCE, 1), min(pac_row + SAFE_DISTANCE, height)
    col0, col1 = max(pac_col - SAFE_DISTANCE, 1), min(pac_col + SAFE_DISTANCE, width)
    num_ghosts = min(1 + (level - 1) // 2, MAX_GHOSTS)
    for g in range(num_ghosts):
        ghosts[g, 0], ghosts[g, 1] = _random_free_cell(walls, rng, row0, row1, col0, col1)
        ghosts[g, 2] = randint(rng, 4)
    scalars[PAC_ROW], scalars[PAC_COL], scalars[LEVEL] = pac_row, pac_col, level
    scalars[POWER], scalars[TIMER], scalars[NUM_FOOD] = 0, 0, num_food
    scalars[NUM_PILLS], scalars[NUM_GHOSTS] = PILLS_PER_LEVEL, num_ghosts


@njit(cache=True)
def move_ghost(walls, ghost: np.ndarray, pac_row: int, pac_col: int, powered: bool, stochasticity: float, rng) -> None:
    """Moves one ghost ``[row, col, direction]`` one cell, in place.

    Exits are the non-wall neighbours. One exit: take it. Two: keep going if possible, else take the one
    that is not the reverse. Three or more: drop the reverse, then take the exit whose direction has the
    largest dot product with the vector to Pacman (first in right, up, left, down order on ties), or with
    probability ``stochasticity`` a random one; while Pacman is powered, the smallest (flee). A ghost on
    Pacman's cell keeps its direction at a junction.
    """
    row, col, direction = ghost[0], ghost[1], ghost[2]
    exits = np.empty(4, dtype=np.int64)
    n = 0
    for d in range(4):
        if walls[row + DROW[d], col + DCOL[d]] == 0:
            exits[n] = d
            n += 1
    reverse = (direction + 2) % 4
    if n == 0:
        return
    if n == 1:
        direction = exits[0]
    elif n == 2:
        if direction != exits[0] and direction != exits[1]:
            direction = exits[1] if exits[0] == reverse else exits[0]
    else:
        m = 0
        for k in range(n):
            if exits[k] != reverse:
                exits[m] = exits[k]
                m += 1
        d_row, d_col = pac_row - row, pac_col - col
        if d_row != 0 or d_col != 0:
            best = 0
            for k in range(1, m):
                dot, best_dot = (
                    d_row * DROW[exits[k]] + d_col * DCOL[exits[k]],
                    d_row * DROW[exits[best]] + d_col * DCOL[exits[best]],
                )
                if (dot < best_dot) if powered else (dot > best_dot):
                    best = k
            if not powered and uniform(rng) < stochasticity:
                best = randint(rng, m)
            direction = exits[best]
    ghost[2] = direction
    if walls[row + DROW[direction], col + DCOL[direction]] == 0:
        ghost[0], ghost[1] = row + DROW[direction], col + DCOL[direction]


@njit(cache=True)
def _remove(items: np.ndarray, index: int, count: int) -> None:
    """Deletes entry ``index`` of the first ``count`` rows, keeping the order (a list pop)."""
    for k in range(index, count - 1):
        items[k] = items[k + 1]


@njit(cache=True)
def _collide(walls, food, pills, ghosts, scalars, task, rng, g: int) -> tuple:
    """Pacman and ghost ``g`` share a cell: returns ``(reward, ghost eaten)`` and applies the outcome."""
    if scalars[POWER] == 0:
        scalars[DEAD] = 1
        return task[DEATH_REWARD], False
    _remove(ghosts, g, scalars[NUM_GHOSTS])
    scalars[NUM_GHOSTS] -= 1
    if scalars[NUM_GHOSTS] == 0 and task[END_ON_GHOSTS]:
        init_level(scalars[LEVEL] + 1, walls, food, pills, ghosts, scalars, rng)
    return task[GHOST_REWARD], True


@njit(cache=True)
def _move_pacman(walls, food, pills, ghosts, scalars, task, rng, action: int) -> float:
    """Moves Pacman (walls block), eats food and at most one pill; may start the next level."""
    reward = 0.0
    if action > 0:
        row, col = scalars[PAC_ROW] + DROW[action - 1], scalars[PAC_COL] + DCOL[action - 1]
        if walls[row, col] == 0:
            scalars[PAC_ROW], scalars[PAC_COL] = row, col
    row, col = scalars[PAC_ROW], scalars[PAC_COL]
    if food[row, col]:
        reward += task[FOOD_REWARD]
        food[row, col] = 0
        scalars[NUM_FOOD] -= 1
        if scalars[NUM_FOOD] == 0 and task[END_ON_FOOD]:
            init_level(scalars[LEVEL] + 1, walls, food, pills, ghosts, scalars, rng)
    row, col = scalars[PAC_ROW], scalars[PAC_COL]
    for p in range(scalars[NUM_PILLS]):
        if pills[p, 0] == row and pills[p, 1] == col:
            _remove(pills, p, scalars[NUM_PILLS])
            scalars[NUM_PILLS] -= 1
            reward += task[PILL_REWARD]
            scalars[POWER] = PILL_DURATION
            if scalars[NUM_PILLS] == 0 and task[END_ON_PILLS]:
                init_level(scalars[LEVEL] + 1, walls, food, pills, ghosts, scalars, rng)
            break
    return reward


@njit(cache=True)
def step_game(walls, food, pills, ghosts, scalars, task, rng, action: int) -> tuple:
    """One step of ``PillEater.step``: returns ``(reward, killed)``; ``scalars[FRAME]`` counts steps.

    Order: power ticks down; Pacman moves and eats; then for each ghost in list order: if on Pacman,
    collide; move with probability ``speed`` (halved while powered) and collide again. Eating a ghost ends
    the ghost loop for this step; a death does not (several ghosts can each charge the death reward, as in
    the reference). Finally the level restarts, one higher, once ``LEVEL_STEPS`` steps were spent on it.
    Once Pacman is dead, steps change nothing and return ``(0.0, True)``.
    """
    if scalars[DEAD]:  # the episode ended: nothing moves and nothing is scored until the next reset
        return 0.0, True
    scalars[FRAME] += 1
    scalars[TIMER] += 1
    scalars[POWER] = max(0, scalars[POWER] - 1)
    reward = task[STEP_REWARD] + _move_pacman(walls, food, pills, ghosts, scalars, task, rng, action)
    pac_row, pac_col = scalars[PAC_ROW], scalars[PAC_COL]
    g = 0
    while g < scalars[NUM_GHOSTS]:
        if ghosts[g, 0] == pac_row and ghosts[g, 1] == pac_col:
            r, eaten = _collide(walls, food, pills, ghosts, scalars, task, rng, g)
            reward += r
            if eaten:
                break
        speed = GHOST_SPEED_INIT + GHOST_SPEED_INCREASE * (scalars[LEVEL] - 1)
        if scalars[POWER] != 0:
            speed *= 0.5
        if uniform(rng) < speed:
            move_ghost(walls, ghosts[g], pac_row, pac_col, scalars[POWER] != 0, STOCHASTICITY, rng)
            if ghosts[g, 0] == pac_row and ghosts[g, 1] == pac_col:
                r, eaten = _collide(walls, food, pills, ghosts, scalars, task, rng, g)
                reward += r
                if eaten:
                    break
        g += 1
    if scalars[TIMER] == task[LEVEL_STEPS]:
        init_level(scalars[LEVEL] + 1, walls, food, pills, ghosts, scalars, rng)
    return reward, scalars[DEAD] == 1


@njit(cache=True)
def write_observation(walls, food, pills, ghosts, scalars, planes: bool, out: np.ndarray) -> None:
    """Writes ``out [H, W, 3]`` RGB or ``out [H, W, 6]`` 0/1 planes (walls, food, Pacman, ghost, edible ghost, pill).

    RGB, by priority: Pacman green (0, 255, 0); ghost (255, 255 * e, 0) with edibility ``e = power / 20``;
    pill cyan (0, 255, 255); food blue (0, 0, 255); wall white; else black.
    """
    height, width = walls.shape
    edibility = scalars[POWER] / PILL_DURATION
    if planes:
        out[:] = 0
        for row in range(height):
            for col in range(width):
                out[row, col, WALLS_PLANE], out[row, col, FOOD_PLANE] = walls[row, col], food[row, col]
        for p in range(scalars[NUM_PILLS]):
            out[pills[p, 0], pills[p, 1], PILL_PLANE] = 1
        for g in range(scalars[NUM_GHOSTS]):
            out[ghosts[g, 0], ghosts[g, 1], EDIBLE_GHOST_PLANE if edibility > 0 else GHOST_PLANE] = 1
        out[scalars[PAC_ROW], scalars[PAC_COL], PACMAN_PLANE] = 1
        return
    for row in range(height):
        for col in range(width):
            blue = 255 if walls[row, col] or food[row, col] else 0
            out[row, col, 0], out[row, col, 1], out[row, col, 2] = 255 * walls[row, col], 255 * walls[row, col], blue
    for p in range(scalars[NUM_PILLS]):
        out[pills[p, 0], pills[p, 1], 0], out[pills[p, 0], pills[p, 1], 1], out[pills[p, 0], pills[p, 1], 2] = 0, 255, 255
    green = int(round(255 * edibility))
    for g in range(scalars[NUM_GHOSTS]):
        out[ghosts[g, 0], ghosts[g, 1], 0], out[ghosts[g, 0], ghosts[g, 1], 1], out[ghosts[g, 0], ghosts[g, 1], 2] = (
            255,
            green,
            0,
        )
    out[scalars[PAC_ROW], scalars[PAC_COL], 0], out[scalars[PAC_ROW], scalars[PAC_COL], 1] = 0, 255
    out[scalars[PAC_ROW], scalars[PAC_COL], 2] = 0


@njit(cache=True)
def new_episode(maze_index: int, split_id: int, salt: int, fixed_maze, walls, food, pills, ghosts, scalars, rng) -> None:
    """Starts an episode at level 1 on maze ``maze_index`` of the split (or on ``fixed_maze`` if it is not empty)."""
    if fixed_maze.size > 0:
        walls[:] = fixed_maze
    else:
        generate_maze(walls, np.array([level_seed(maze_index, split_id, salt)], dtype=np.uint64))
    scalars[:] = 0
    init_level(1, walls, food, pills, ghosts, scalars, rng)


@njit(cache=True)
def step_observe(walls, food, pills, ghosts, scalars, task, rng, action: int, planes: bool, obs) -> tuple:
    """:func:`step_game`, then :func:`write_observation` into ``obs``: one compiled call per env step."""
    reward, killed = step_game(walls, food, pills, ghosts, scalars, task, rng, action)
    write_observation(walls, food, pills, ghosts, scalars, planes, obs)
    return reward, killed


@njit(cache=True)
def step_batch(walls, food, pills, ghosts, scalars, rngs, needs_reset, actions, task, max_steps, num_mazes, split_id,
               salt, fixed_maze, planes, obs, rewards, terminated, truncated) -> None:  # fmt: skip
    """Steps N games (next-step autoreset), writing ``obs [N, H, W, C]`` and the ``[N]`` outputs.

    A game whose previous step ended starts a new episode instead (action ignored, reward 0), on a maze
    index drawn from its own ``rngs[i]`` (below ``num_mazes``, or below 2**62 when 0).
    """
    for i in range(walls.shape[0]):
        if needs_reset[i]:
            maze = (
                randint(rngs[i], num_mazes) if num_mazes > 0 else (randint(rngs[i], 1 << 31) << 31) | randint(rngs[i], 1 << 31)
            )
            new_episode(maze, split_id, salt, fixed_maze, walls[i], food[i], pills[i], ghosts[i], scalars[i], rngs[i])
            rewards[i], terminated[i], truncated[i] = 0.0, False, False
        else:
            reward, killed = step_game(walls[i], food[i], pills[i], ghosts[i], scalars[i], task, rngs[i], actions[i])
            rewards[i], terminated[i], truncated[i] = reward, killed, scalars[i, FRAME] >= max_steps
        needs_reset[i] = terminated[i] or truncated[i]
        write_observation(walls[i], food[i], pills[i], ghosts[i], scalars[i], planes, obs[i])
