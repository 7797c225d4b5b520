"""Procedural Minipacman mazes, compiled with Numba.

A maze ``walls [H, W]`` (uint8, 1 = wall; H and W odd) has the shape of DeepMind's fixed map: a lattice of
*nodes* at odd rows and odd columns joined by one-cell corridors, walls at every (even, even) cell, so
corridors are one cell wide and every free cell is a node or a link between two nodes. Generation:

1. a random spanning tree over the nodes of the left half, up to the middle column (recursive
   backtracker: long winding corridors), mirrored onto the right half, like the original's left-right
   symmetry; when the middle column holds links rather than nodes, one random link crosses it;
2. braiding: every node left with a single exit gets a second one (no dead ends, as in the original),
   and ``_EXTRA_LINK_PROB`` of the remaining walls between nodes open to add loops.

The tree makes every free cell reachable from every other; braiding only opens walls.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gym_planning.envs._numba_rng import randint, uniform

# Directions right, up, left, down: the order of the game's actions 1-4 (action 0 stays).
DROW = np.array([0, -1, 0, 1], dtype=np.int64)
DCOL = np.array([1, 0, -1, 0], dtype=np.int64)
_EXTRA_LINK_PROB = 0.1


@njit(cache=True)
def _open_link(walls: np.ndarray, row: int, col: int, d: int) -> None:
    """Opens the link from node ``(row, col)`` in direction ``d`` and its mirror image."""
    width = walls.shape[1]
    link_row, link_col = row + DROW[d], col + DCOL[d]
    walls[link_row, link_col] = 0
    walls[link_row, width - 1 - link_col] = 0


@njit(cache=True)
def _is_node(walls: np.ndarray, row: int, col: int, max_col: int) -> bool:
    """Whether ``(row, col)`` is a node of the left half (odd row and column, inside, ``col <= max_col``)."""
    return 0 < row < walls.shape[0] - 1 and 0 < col <= max_col and row % 2 == 1 and col % 2 == 1


@njit(cache=True)
def _carve_tree(walls: np.ndarray, rng: np.ndarray, max_col: int) -> None:
    """Recursive-backtracker spanning tree over the left-half nodes (step 1), mirrored as it goes."""
    height, width = walls.shape
    visited = np.zeros((height, width), dtype=np.bool_)
    stack = np.empty((height * width, 2), dtype=np.int64)
    options = np.empty(4, dtype=np.int64)
    start_row = 1 + 2 * randint(rng, (height - 1) // 2)
    start_col = 1 + 2 * randint(rng, (max_col + 1) // 2)
    stack[0, 0], stack[0, 1] = start_row, start_col
    visited[start_row, start_col] = True
    top = 1
    while top > 0:
        row, col = stack[top - 1, 0], stack[top - 1, 1]
        n = 0
        for d in range(4):
            r2, c2 = row + 2 * DROW[d], col + 2 * DCOL[d]
            if _is_node(walls, r2, c2, max_col) and not visited[r2, c2]:
                options[n] = d
                n += 1
        if n == 0:
            top -= 1
            continue
        d = options[randint(rng, n)]
        _open_link(walls, row, col, d)
        r2, c2 = row + 2 * DROW[d], col + 2 * DCOL[d]
        visited[r2, c2] = True
        stack[top, 0], stack[top, 1] = r2, c2
        top += 1


@njit(cache=True)
def _exits(walls: np.ndarray, row: int, col: int) -> int:
    """Number of free neighbours of cell ``(row, col)``."""
    n = 0
    for d in range(4):
        n += walls[row + DROW[d], col + DCOL[d]] == 0
    return n


@njit(cache=True)
def _braid(walls: np.ndarray, rng: np.ndarray, max_col: int) -> None:
    """Gives every dead end a second exit and opens a few extra links (step 2)."""
    height = walls.shape[0]
    options = np.empty(4, dtype=np.int64)
    for row in range(1, height - 1, 2):
        for col in range(1, max_col + 1, 2):
            n = 0
            for d in range(4):
                link_row, link_col = row + DROW[d], col + DCOL[d]
                if walls[link_row, link_col] and _is_node(walls, row + 2 * DROW[d], col + 2 * DCOL[d], walls.shape[1]):
                    options[n] = d
                    n += 1
            if n == 0:
                continue
            if _exits(walls, row, col) <= 1 or uniform(rng) < _EXTRA_LINK_PROB:
                _open_link(walls, row, col, options[randint(rng, n)])


@njit(cache=True)
def generate_maze(walls: np.ndarray, rng: np.ndarray) -> None:
    """Writes a maze into ``walls [H, W]`` (H, W odd, >= 5) from the generator ``rng``."""
    height, width = walls.shape
    walls[:, :] = 1
    for row in range(1, height - 1, 2):
        for col in range(1, width - 1, 2):
            walls[row, col] = 0
    middle = (width - 1) // 2
    max_col = middle if middle % 2 == 1 else middle - 1
    _carve_tree(walls, rng, max_col)
    if middle % 2 == 0:  # the middle column holds links: one joins the two halves
        walls[1 + 2 * randint(rng, (height - 1) // 2), middle] = 0
    _braid(walls, rng, max_col)
