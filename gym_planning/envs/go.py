"""Go on OpenSpiel (9x9 by default): the Gymnasium environment, the rules' helpers and a random opponent.

The game as a search model (:class:`gym_planning.models.go.GoPerfectModel`, with random rollouts) and the
search-based player (:class:`gym_planning.agents.GoSearchOpponent`) live above the envs: this module knows
nothing of search. Any object with ``select_action(state, rng)``, or a function ``(state, rng) -> action``,
can be the env's opponent.

Rules are OpenSpiel's ``go`` game: area scoring in the Tromp-Taylor way (stones plus empty regions
that reach only one colour) minus ``komi`` for white; suicide is illegal; simple ko (the point of a
single-stone ko capture is forbidden for one move); the game ends after two consecutive passes or
after ``max_game_length`` moves (OpenSpiel's default ``2 * N * N`` = 162 on 9x9) and is scored then.
The outcome is +1 for the winner and -1 for the loser; a move that repeats an earlier position
(positional superko) ends the game as a draw, 0 for both (OpenSpiel's simplification; rare).

Conventions used throughout this module:

- players: ``0`` = black (moves first), ``1`` = white (OpenSpiel's player ids);
- ``N`` board size, ``A = N * N + 1`` actions: action ``row * N + col`` places a stone on the point of
  rank ``row + 1`` and file ``"abcdefghj..."[col]`` (``0`` = a1, bottom left); action ``N * N`` passes;

OpenSpiel is an optional dependency (``pip install gym-planning[go]``); it is imported on first use.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

BLACK, WHITE = 0, 1
_COLOUR_NAMES = ("black", "white")
_FILES = "abcdefghjklmnopqrst"  # Go coordinates skip the letter i.


def _pyspiel() -> Any:
    try:
        import pyspiel
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError("Go needs OpenSpiel: pip install gym-planning[go]  (or: pip install open-spiel)") from error
    return pyspiel


@functools.cache
def load_go_game(board_size: int = 9, komi: float = 7.5, max_game_length: int | None = None) -> Any:
    """The OpenSpiel ``go`` game (cached per parameter set).

    :param board_size: ``N``, points per side (2 to 19).
    :param komi: points added to white's area score.
    :param max_game_length: moves after which the game is scored; None: OpenSpiel's ``2 * N * N``.
    :return: a ``pyspiel.Game``.
    """
    if not isinstance(board_size, (int, np.integer)) or not 2 <= board_size <= 19:
        raise ValueError(f"board_size must be an integer in [2, 19]; got {board_size!r}")
    params: dict[str, Any] = {"board_size": int(board_size), "komi": float(komi)}
    if max_game_length is not None:
        if not isinstance(max_game_length, (int, np.integer)) or max_game_length < 1:
            raise ValueError(f"max_game_length must be None or an integer >= 1; got {max_game_length!r}")
        params["max_game_length"] = int(max_game_length)
    return _pyspiel().load_game("go", params)


def move_to_string(action: int, board_size: int = 9) -> str:
    """Go coordinate of an action: ``0`` -> ``"a1"``, ``N * N`` -> ``"pass"``."""
    if action == board_size * board_size:
        return "pass"
    row, col = divmod(int(action), board_size)
    return f"{_FILES[col]}{row + 1}"


def move_from_string(move: str, board_size: int = 9) -> int:
    """Action of a Go coordinate: ``"a1"`` -> ``0``, ``"pass"`` -> ``N * N`` (case-insensitive; no letter i)."""
    text = move.strip().lower()
    if text == "pass":
        return board_size * board_size
    col, row = _FILES.find(text[:1]), int(text[1:]) - 1 if text[1:].isdigit() else -1
    if not (0 <= col < board_size and 0 <= row < board_size):
        files = f"a-{_FILES[board_size - 1]}, no i"
        raise ValueError(f"{move!r} is not a point of a {board_size}x{board_size} board (files {files})")
    return row * board_size + col


_OBSERVERS: dict[str, Any] = {}


def spiel_observer(game: Any) -> Any:
    """OpenSpiel observer for ``game`` (one per rule set, shared: read ``.tensor`` right after ``set_from``).

    ``set_from(state, player)`` fills ``.tensor``, ``[4 * N * N]`` float32 planes: black stones, white
    stones, empty points, white to move (the same for both players: Go has no hidden information).
    """
    key = str(game)  # pyspiel games are not hashable; their string names the parameters
    if key not in _OBSERVERS:
        from open_spiel.python.observation import make_observation

        _OBSERVERS[key] = make_observation(game)
    return _OBSERVERS[key]


def colour_to_play(state: Any) -> int:
    """Colour whose turn it is (``BLACK`` or ``WHITE``); at a terminal state, the one who would move next."""
    return state.move_number() % 2  # black moves at even move numbers: the game has no handicap stones


def legal_mask(state: Any) -> np.ndarray:
    """``[A]`` bool, True = legal move in ``state`` (all False at a terminal state)."""
    return np.asarray(state.legal_actions_mask(), dtype=np.bool_)


@runtime_checkable
class GoOpponent(Protocol):
    """A player for :class:`GoEnv`'s ``opponent``: picks a legal move in a non-terminal state."""

    def select_action(self, state: Any, rng: np.random.Generator) -> int:
        """A legal action for the player to move in ``state``; randomness only from ``rng``."""
        ...


class RandomGoOpponent:
    """Plays a uniformly random legal move (pass included)."""

    def select_action(self, state: Any, rng: np.random.Generator) -> int:
        """A uniformly random legal action of ``state``."""
        legal = state.legal_actions()
        return int(legal[rng.integers(len(legal))])


OpponentFn = Callable[[Any, np.random.Generator], int]
"""``opponent(state, rng) -> action``: a function playing as :class:`GoOpponent`."""


class _FunctionOpponent:
    """A :class:`GoOpponent` from a function ``(state, rng) -> action``."""

    def __init__(self, function: OpponentFn):
        self.function = function

    def select_action(self, state: Any, rng: np.random.Generator) -> int:
        """The function's move in ``state``."""
        return int(self.function(state, rng))

    def __repr__(self) -> str:
        return repr(self.function)


def _as_opponent(opponent: GoOpponent | OpponentFn | str | None) -> GoOpponent | None:
    if opponent is None or isinstance(opponent, GoOpponent):
        return opponent
    if isinstance(opponent, str) and opponent == "random":
        return RandomGoOpponent()
    if callable(opponent) and not isinstance(opponent, str):
        return _FunctionOpponent(opponent)
    raise TypeError(
        "opponent must be None (two-player), 'random', an object with select_action(state, rng) such as "
        "gym_planning.agents.GoSearchOpponent(num_simulations=...), or a function (state, rng) -> action; "
        f"got {opponent!r}"
    )


def _draw_board(black: np.ndarray, white: np.ndarray, cell: int = 32) -> np.ndarray:
    """``[N*cell, N*cell, 3]`` uint8 picture of a board.

    ``black``/``white`` are ``[N, N]`` bool stone maps, row 0 = rank 1 (drawn at the bottom).
    """
    size = black.shape[0]
    image = np.empty((size * cell, size * cell, 3), np.uint8)
    image[:] = (220, 179, 92)  # wood
    centres = np.arange(size) * cell + cell // 2
    first, last = centres[0], centres[-1]
    image[centres, first : last + 1] = 0
    image[first : last + 1, centres] = 0
    offsets = np.arange(cell) - cell // 2
    disc = offsets[:, None] ** 2 + offsets[None, :] ** 2 <= (0.45 * cell) ** 2
    rim = disc & (offsets[:, None] ** 2 + offsets[None, :] ** 2 > (0.45 * cell - 1.5) ** 2)
    for stones, colour in ((black, (20, 20, 20)), (white, (245, 245, 245))):
        for row, col in zip(*np.nonzero(stones)):
            top, left = (size - 1 - row) * cell, col * cell
            block = image[top : top + cell, left : left + cell]
            block[disc] = colour
            block[rim] = (0, 0, 0)
    return image


class GoEnv(gym.Env):
    """Go (9x9 by default) on OpenSpiel, two-player or against a built-in opponent.

    **Actions** ``Discrete(N * N + 1)``: ``row * N + col`` places a stone (row 0 = rank 1, col 0 = file a),
    ``N * N`` passes. An illegal move (occupied point, suicide, ko) raises ``ValueError`` naming it;
    ``info["legal_mask"]`` and :meth:`action_masks` give the legal moves (True = legal).

    **Observation** ``Box(0, 1, (4, N, N), float32)``, channels first, row 0 = rank 1, from the view of
    the player to move: 0 = their stones, 1 = the other player's stones, 2 = empty points,
    3 = all ones when black is to move, zeros when white is.

    **Players and rewards.** ``opponent=None``: the caller plays both colours (black first) and the
    reward of a step is the final outcome for the player who made that move (+1 win, -1 loss) on the
    move that ends the game, 0 before; ``info["to_play"]`` says who moves next (0 black, 1 white).
    With an opponent (``"random"``, :class:`gym_planning.agents.GoSearchOpponent`, any :class:`GoOpponent` or a
    function ``(state, rng) -> action``) the agent plays
    ``agent_colour``; the opponent's replies happen inside ``step()`` (and inside ``reset()`` when the agent
    is white), and the reward is the outcome for the agent. The opponent draws randomness from
    ``self.np_random``, so ``reset(seed=...)`` makes whole episodes reproducible.

    **Episode end.** ``terminated`` after two consecutive passes or ``max_game_length`` moves (the game is
    scored at that cap, so it is a real end, not a truncation), or on a repeated position (a draw);
    ``info["winner"]`` is then 0 (black), 1 (white) or -1 (draw).
    ``truncated`` is always False (add ``TimeLimit`` for a shorter cap).

    **Planning.** :meth:`get_state` / :meth:`set_state` copy the OpenSpiel state (about 2 µs);
    :class:`gym_planning.models.go.GoPerfectModel` searches from such states.

    :param board_size: ``N`` (the registered id ``gym_planning/Go9x9-v0`` uses 9).
    :param komi: points given to white.
    :param max_game_length: moves after which the game is scored (None: ``2 * N * N``).
    :param opponent: None, ``"random"``, a :class:`GoOpponent` or a function ``(state, rng) -> action``.
    :param agent_colour: ``"black"`` or ``"white"``, the agent's colour when there is an opponent.
    :param render_mode: None, ``"ansi"`` (text board) or ``"rgb_array"`` (``[32 N, 32 N, 3]`` uint8).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 2}
    action_space: spaces.Discrete

    def __init__(
        self,
        *,
        board_size: int = 9,
        komi: float = 7.5,
        max_game_length: int | None = None,
        opponent: GoOpponent | OpponentFn | str | None = None,
        agent_colour: str = "black",
        render_mode: str | None = None,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None, 'ansi' or 'rgb_array'; got {render_mode!r}")
        if agent_colour not in _COLOUR_NAMES:
            raise ValueError(f"agent_colour must be 'black' or 'white'; got {agent_colour!r}")
        self.game = load_go_game(board_size, komi, max_game_length)
        self.board_size = int(board_size)
        self.opponent = _as_opponent(opponent)
        self.agent_colour = _COLOUR_NAMES.index(agent_colour)
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(self.board_size**2 + 1)
        self.observation_space = spaces.Box(0.0, 1.0, (4, self.board_size, self.board_size), np.float32)
        area = self.board_size**2
        planes = [np.arange(plane * area, (plane + 1) * area) for plane in range(4)]
        # Gather order of OpenSpiel's planes into the observation's, for black and for white to move.
        self._plane_order = [
            np.concatenate([planes[0], planes[1], *planes[2:]]),
            np.concatenate([planes[1], planes[0], *planes[2:]]),
        ]
        self._state = self.game.new_initial_state()
        self._legal = legal_mask(self._state)
        self._needs_reset = True

    # -- Gymnasium API -------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start a new game (the opponent opens it when the agent is white)."""
        super().reset(seed=seed)
        self._state = self.game.new_initial_state()
        self._needs_reset = False
        if self.opponent is not None and self.agent_colour == WHITE:
            self._opponent_move(self.opponent)
        self._legal = legal_mask(self._state)
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Play ``action`` for the player to move (then the opponent's reply, if any)."""
        if self._needs_reset:
            raise ResetNeeded("Call reset() before step() (the game is over or has not started)")
        move = self._checked_move(action)
        perspective = colour_to_play(self._state) if self.opponent is None else self.agent_colour
        self._state.apply_action(move)
        if self.opponent is not None and not self._state.is_terminal():
            self._opponent_move(self.opponent)
        self._legal = legal_mask(self._state)
        terminated = self._state.is_terminal()
        self._needs_reset = terminated
        reward = float(self._state.returns()[perspective]) if terminated else 0.0
        return self._observation(), reward, terminated, False, self._info()

    def render(self) -> str | np.ndarray | None:
        """Text board (``"ansi"``: X black, O white, rank 9 at the top) or a ``[32 N, 32 N, 3]`` uint8 image."""
        if self.render_mode == "ansi":
            return f"{self._state}\n{_COLOUR_NAMES[colour_to_play(self._state)]} to play\n"
        if self.render_mode == "rgb_array":
            planes = self._board_planes()
            return _draw_board(planes[BLACK] > 0, planes[WHITE] > 0)
        return None

    def action_masks(self) -> np.ndarray:
        """``[A]`` bool, True = legal (the sb3-contrib ``MaskablePPO`` convention)."""
        return self._legal.copy()

    @property
    def num_players(self) -> int:
        """2 when the caller plays both colours (``opponent=None``: self-play), 1 against a built-in opponent."""
        return 2 if self.opponent is None else 1

    # -- perfect model ---------------------------------------------------------------------------

    def get_state(self) -> Any:
        """A copy of the game state (an OpenSpiel ``GoState``), for :meth:`set_state` or a search model."""
        return self._state.clone()

    def set_state(self, state: Any) -> None:
        """Continue from a copy of ``state`` (from :meth:`get_state` of an env with the same rules)."""
        if not hasattr(state, "get_game") or (state.get_game() is not self.game and state.get_game() != self.game):
            raise ValueError(f"state must be an OpenSpiel Go state of this env's game ({self.game}); got {state!r:.80}")
        if self.opponent is not None and not state.is_terminal() and colour_to_play(state) != self.agent_colour:
            to_move, agent = _COLOUR_NAMES[colour_to_play(state)], _COLOUR_NAMES[self.agent_colour]
            raise ValueError(f"state has {to_move} to move, but the agent plays {agent}")
        self._state = state.clone()
        self._legal = legal_mask(self._state)
        self._needs_reset = self._state.is_terminal()

    # -- helpers ---------------------------------------------------------------------------------

    @property
    def _spiel_observer(self) -> Any:
        # Looked up, not stored: OpenSpiel's observer cannot be pickled, and the env stays deep-copyable.
        return spiel_observer(self.game)

    def _checked_move(self, action: Any) -> int:
        if isinstance(action, np.ndarray) and action.shape == ():
            action = action.item()
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
            raise ValueError(f"action must be an integer in [0, {self.action_space.n}); got {action!r}")
        if not 0 <= action < self.action_space.n:
            raise ValueError(f"action must be an integer in [0, {self.action_space.n}); got {action}")
        if not self._legal[action]:
            colour = _COLOUR_NAMES[colour_to_play(self._state)]
            raise ValueError(
                f"illegal move {int(action)} ({move_to_string(int(action), self.board_size)}) for {colour}: the point is "
                "occupied, or the move is suicide or retakes a ko (see info['legal_mask'])"
            )
        return int(action)

    def _opponent_move(self, opponent: GoOpponent) -> None:
        move = opponent.select_action(self._state.clone(), self.np_random)
        if not 0 <= move < self.action_space.n or not self._state.legal_actions_mask()[move]:
            raise ValueError(f"opponent {opponent!r} chose illegal move {move!r} in\n{self._state}")
        self._state.apply_action(int(move))

    def _board_planes(self) -> np.ndarray:
        """``[4, N, N]`` float32 view of OpenSpiel's planes: black stones, white stones, empty, (unused)."""
        self._spiel_observer.set_from(self._state, 0)
        return self._spiel_observer.tensor.reshape(4, self.board_size, self.board_size)

    def _observation(self) -> np.ndarray:
        self._spiel_observer.set_from(self._state, 0)
        to_play = colour_to_play(self._state)
        observation = self._spiel_observer.tensor.take(self._plane_order[to_play])  # own, other, empty, (filled below)
        observation[3 * self.board_size**2 :] = 1.0 if to_play == BLACK else 0.0
        return observation.reshape(self.observation_space.shape)

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"legal_mask": self._legal.copy(), "to_play": colour_to_play(self._state)}
        if self._state.is_terminal():
            black_return = self._state.returns()[BLACK]
            info["winner"] = BLACK if black_return > 0 else WHITE if black_return < 0 else -1
        return info
