"""Tic-tac-toe: a small two-player zero-sum game with a known solution (a draw under perfect play).

It has the same two-player interface as :class:`gym_planning.envs.go.GoEnv` (``info["to_play"]``,
``info["legal_mask"]``, :meth:`TicTacToeEnv.action_masks`, ``num_players``, an optional built-in
``opponent``), so self-play learners can be tested on it in seconds, against a perfect player.

Conventions: players ``0`` = X (moves first), ``1`` = O; action ``row * 3 + col`` marks that cell
(row 0 at the top); the board is ``[9]`` int8 with ``-1`` empty, else the player who marked the cell.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

X, O = 0, 1  # noqa: E741  (the game's own names for the players)
EMPTY = -1
_PLAYER_NAMES = ("x", "o")
_LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))


def winner(board: tuple[int, ...] | np.ndarray) -> int:
    """The player (0 or 1) with three in a row on ``board`` ``[9]``, or ``EMPTY`` (-1) if none."""
    for a, b, c in _LINES:
        if board[a] != EMPTY and board[a] == board[b] == board[c]:
            return int(board[a])
    return EMPTY


def player_to_move(board: tuple[int, ...] | np.ndarray) -> int:
    """X when both have marked as many cells, O after X's extra mark."""
    marks = sum(1 for cell in board if cell != EMPTY)
    return X if marks % 2 == 0 else O


def observation(board: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """``[3, 3, 3]`` float32 planes of ``board`` ``[9]`` from the view of the player to move (see
    :class:`TicTacToeEnv`): their marks, the other player's marks, all ones when X is to move."""
    board = np.asarray(board).reshape(3, 3)
    to_play = player_to_move(board.reshape(-1))
    return np.stack([board == to_play, board == 1 - to_play, np.full((3, 3), to_play == X)]).astype(np.float32)


@functools.cache
def solve(board: tuple[int, ...]) -> int:
    """Game value for the player to move under perfect play: +1 win, 0 draw, -1 loss (negamax, memoised).

    :param board: ``[9]`` tuple of cells (-1 empty, 0 X, 1 O).
    """
    if winner(board) != EMPTY:
        return -1  # the previous move won
    moves = [cell for cell in range(9) if board[cell] == EMPTY]
    if not moves:
        return 0
    player = player_to_move(board)
    return max(-solve(board[:cell] + (player,) + board[cell + 1 :]) for cell in moves)


def optimal_moves(board: tuple[int, ...] | np.ndarray) -> list[int]:
    """The moves that keep the best game value (:func:`solve`) for the player to move."""
    board = tuple(int(cell) for cell in board)
    player = player_to_move(board)
    values = {cell: -solve(board[:cell] + (player,) + board[cell + 1 :]) for cell in range(9) if board[cell] == EMPTY}
    best = max(values.values())
    return [cell for cell, value in values.items() if value == best]


@runtime_checkable
class TicTacToeOpponent(Protocol):
    """A player for :class:`TicTacToeEnv`'s ``opponent``: picks an empty cell of a non-terminal board."""

    def select_action(self, board: np.ndarray, rng: np.random.Generator) -> int:
        """An empty cell of ``board`` ``[9]`` for the player to move; randomness only from ``rng``."""
        ...


class RandomTicTacToeOpponent:
    """Marks a uniformly random empty cell."""

    def select_action(self, board: np.ndarray, rng: np.random.Generator) -> int:
        """A uniformly random empty cell."""
        empty = np.flatnonzero(board == EMPTY)
        return int(empty[rng.integers(len(empty))])


class PerfectTicTacToeOpponent:
    """Plays perfectly (never loses): a uniformly random move among those of best game value."""

    def select_action(self, board: np.ndarray, rng: np.random.Generator) -> int:
        """A random optimal move (:func:`optimal_moves`)."""
        moves = optimal_moves(board)
        return int(moves[rng.integers(len(moves))])


def _as_opponent(opponent: TicTacToeOpponent | str | None) -> TicTacToeOpponent | None:
    if opponent is None or isinstance(opponent, TicTacToeOpponent):
        return opponent
    if opponent == "random":
        return RandomTicTacToeOpponent()
    if opponent == "perfect":
        return PerfectTicTacToeOpponent()
    raise TypeError(
        "opponent must be None (two-player), 'random', 'perfect', or an object with select_action(board, rng); "
        f"got {opponent!r}"
    )


def _board_image(board: np.ndarray) -> np.ndarray:
    """``[96, 96, 3]`` uint8 picture of ``board`` ``[9]`` (see :meth:`TicTacToeEnv.render`)."""
    image = np.full((96, 96, 3), 255, np.uint8)
    colours = {X: (200, 30, 30), O: (30, 60, 200)}
    for cell, mark in enumerate(board):
        if mark != EMPTY:
            row, col = divmod(cell, 3)
            image[row * 32 + 6 : row * 32 + 26, col * 32 + 6 : col * 32 + 26] = colours[int(mark)]
    image[[31, 32, 63, 64], :] = image[:, [31, 32, 63, 64]] = 128
    return image


class TicTacToeEnv(gym.Env):
    """Tic-tac-toe, two-player (self-play) or against a built-in opponent.

    ## Description
    Two players mark the cells of a 3x3 board in turn, X first; three marks in a row, column or
    diagonal win; a full board without a line is a draw. Perfect play by both sides draws.

    ## Action Space
    ``Discrete(9)``: cell ``row * 3 + col``. Marking an occupied cell raises ``ValueError``;
    ``info["legal_mask"]`` and :meth:`action_masks` give the empty cells (True = legal).

    ## Observation Space
    ``Box(0, 1, (3, 3, 3), float32)``, channels first, from the view of the player to move:
    0 = their marks, 1 = the other player's marks, 2 = all ones when X is to move, zeros when O is.

    ## Rewards
    ``opponent=None``: +1 for the player whose move completes a line, on that move; 0 otherwise (draws
    included); ``info["to_play"]`` is who moves next (0 X, 1 O). With an opponent, the agent plays
    ``agent_player`` and the opponent's replies happen inside ``step()`` (and ``reset()`` when the agent
    is O): +1 when the agent wins, -1 when the opponent does, 0 otherwise.

    ## Starting State
    An empty board, X to move (after the opponent's first mark when the agent plays O).

    ## Episode End
    ``terminated`` on a line or a full board (``info["winner"]``: 0 X, 1 O, -1 draw); never truncated.

    ## Arguments
    :param opponent: None (the caller plays both sides), ``"random"``, ``"perfect"`` (random among the
        optimal moves, never loses) or any :class:`TicTacToeOpponent`; it draws from ``self.np_random``.
    :param agent_player: ``"x"`` or ``"o"``, the agent's side when there is an opponent.
    :param render_mode: None, ``"ansi"`` (text board) or ``"rgb_array"`` (``[96, 96, 3]`` uint8: X red, O blue).

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 1}

    def __init__(
        self,
        *,
        opponent: TicTacToeOpponent | str | None = None,
        agent_player: str = "x",
        render_mode: str | None = None,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None, 'ansi' or 'rgb_array'; got {render_mode!r}")
        if agent_player not in _PLAYER_NAMES:
            raise ValueError(f"agent_player must be 'x' or 'o'; got {agent_player!r}")
        self.opponent = _as_opponent(opponent)
        self.agent_player = _PLAYER_NAMES.index(agent_player)
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(9)
        self.observation_space = spaces.Box(0.0, 1.0, (3, 3, 3), np.float32)
        self._board = np.full(9, EMPTY, np.int8)
        self._needs_reset = True

    @property
    def num_players(self) -> int:
        """2 when the caller plays both sides (``opponent=None``: self-play), 1 against a built-in opponent."""
        return 2 if self.opponent is None else 1

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new game (the opponent opens it when the agent plays O)."""
        super().reset(seed=seed)
        self._board = np.full(9, EMPTY, np.int8)
        self._needs_reset = False
        if self.opponent is not None and self.agent_player == O:
            self._opponent_move(self.opponent)
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Mark ``action`` for the player to move (then the opponent's reply, if any)."""
        if self._needs_reset:
            raise ResetNeeded("Call reset() before step() (the game is over or has not started)")
        cell = self._checked_move(action)
        mover = player_to_move(self._board)
        self._board[cell] = mover
        if self.opponent is not None and not self._is_over():
            self._opponent_move(self.opponent)
        terminated = self._is_over()
        self._needs_reset = terminated
        line = winner(self._board)
        perspective = mover if self.opponent is None else self.agent_player
        reward = 0.0 if line == EMPTY else (1.0 if line == perspective else -1.0)
        return self._observation(), reward, terminated, False, self._info()

    def render(self) -> str | np.ndarray | None:
        """``"ansi"``: text board (X, O and ``.`` for empty cells, row 0 at the top); ``"rgb_array"``: ``[96, 96, 3]``
        uint8, 32 pixels per cell, X red and O blue squares on white, grey grid lines."""
        if self.render_mode == "rgb_array":
            return _board_image(self._board)
        if self.render_mode != "ansi":
            return None
        rows = ["".join("XO"[c] if c != EMPTY else "." for c in self._board[r * 3 : r * 3 + 3]) for r in range(3)]
        return "\n".join(rows) + f"\n{_PLAYER_NAMES[player_to_move(self._board)].upper()} to play\n"

    def action_masks(self) -> np.ndarray:
        """``[9]`` bool, True = legal (empty cell; all False once the game is over)."""
        return (self._board == EMPTY) & (not self._is_over())

    def get_state(self) -> np.ndarray:
        """A copy of the board ``[9]`` int8 (-1 empty, 0 X, 1 O), for :meth:`set_state`."""
        return self._board.copy()

    def set_state(self, board: np.ndarray) -> None:
        """Continue from a board ``[9]`` of a reachable position (X has as many marks as O, or one more)."""
        board = np.asarray(board)
        if board.shape != (9,) or not np.isin(board, (EMPTY, X, O)).all():
            raise ValueError(f"board must be [9] with cells -1 (empty), 0 (X) or 1 (O); got {board!r}")
        if not 0 <= int((board == X).sum()) - int((board == O).sum()) <= 1:
            raise ValueError(f"board {board.tolist()} is unreachable: X must have as many marks as O, or one more")
        self._board = board.astype(np.int8)
        self._needs_reset = self._is_over()

    def _is_over(self) -> bool:
        return winner(self._board) != EMPTY or not (self._board == EMPTY).any()

    def _checked_move(self, action: Any) -> int:
        if isinstance(action, np.ndarray) and action.shape == ():
            action = action.item()
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)) or not 0 <= action < 9:
            raise ValueError(f"action must be an integer in [0, 9); got {action!r}")
        if self._board[action] != EMPTY:
            raise ValueError(f"illegal move {int(action)}: the cell is taken (see info['legal_mask'])")
        return int(action)

    def _opponent_move(self, opponent: TicTacToeOpponent) -> None:
        cell = opponent.select_action(self._board.copy(), self.np_random)
        if not 0 <= cell < 9 or self._board[cell] != EMPTY:
            raise ValueError(f"opponent {opponent!r} chose illegal move {cell!r} on {self._board.tolist()}")
        self._board[cell] = player_to_move(self._board)

    def _observation(self) -> np.ndarray:
        return observation(self._board)

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"legal_mask": self.action_masks(), "to_play": player_to_move(self._board)}
        if self._is_over():
            info["winner"] = winner(self._board)
        return info
