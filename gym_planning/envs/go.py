"""Go on OpenSpiel (9x9 by default): a Gymnasium environment, a perfect model for the search, and opponents.

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
- ``B`` batch of states in the search model.

OpenSpiel is an optional dependency (``pip install gym-planning[go]``); it is imported on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded
from numba import njit

from gym_planning.search import RecurrentOutput, RootOutput, gumbel_muzero_policy

BLACK, WHITE = 0, 1
_COLOUR_NAMES = ("black", "white")
_FILES = "abcdefghjklmnopqrst"  # Go coordinates skip the letter i.
ILLEGAL_LOGIT = -1e9  # prior logit of an illegal move: probability exp(-1e9) = 0, and still finite


def _pyspiel() -> Any:
    try:
        import pyspiel
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError("Go needs OpenSpiel: pip install gym-planning[go]  (or: pip install open-spiel)") from error
    return pyspiel


@functools.lru_cache(maxsize=None)
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


def _observer(game: Any) -> Any:
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


@njit(cache=True)
def fills_own_eye(planes: np.ndarray, point: int, colour: int, board_size: int) -> bool:
    """Whether ``colour`` playing on ``point`` would fill one of its own eyes.

    An eye here is an empty point whose orthogonal neighbours are all ``colour``'s stones (or the edge)
    and whose diagonals hold fewer than two opposing stones (none on the edge): the usual test that
    keeps random Go playouts from killing their own groups.

    :param planes: ``[4 * N * N]`` float32, OpenSpiel's observation planes (black, white, empty, to-play).
    :param point: action id ``row * N + col`` of an empty point.
    :param colour: ``BLACK`` (0) or ``WHITE`` (1).
    """
    area = board_size * board_size
    row, col = point // board_size, point % board_size
    for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        r, c = row + dr, col + dc
        if 0 <= r < board_size and 0 <= c < board_size and planes[colour * area + r * board_size + c] == 0.0:
            return False
    opposing = 0
    for dr, dc in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        r, c = row + dr, col + dc
        if 0 <= r < board_size and 0 <= c < board_size and planes[(1 - colour) * area + r * board_size + c] != 0.0:
            opposing += 1
    on_edge = row == 0 or row == board_size - 1 or col == 0 or col == board_size - 1
    return opposing < (1 if on_edge else 2)


def random_rollout(state: Any, rng: np.random.Generator) -> np.ndarray:
    """Play random moves from a copy of ``state`` to the end; return the ``[2]`` returns (black, white).

    Each move is uniformly random among the legal moves that do not fill the mover's own eye
    (:func:`fills_own_eye`); a player passes only when no such move is left, so playouts end with
    living groups on the board (or at ``max_game_length``), as in Monte-Carlo Go programs.
    """
    state = state.clone()
    game = state.get_game()
    board_size = game.get_parameters()["board_size"]
    observer = _observer(game)
    uniforms, used = rng.random(1024), 0
    while not state.is_terminal():
        candidates = state.legal_actions()  # sorted: the pass action (largest id) is last
        num_candidates = len(candidates) - 1
        observer.set_from(state, 0)
        colour = state.current_player()
        move = candidates[-1]
        while num_candidates > 0:
            if used == len(uniforms):
                uniforms, used = rng.random(1024), 0
            index = int(uniforms[used] * num_candidates)
            used += 1
            if not fills_own_eye(observer.tensor, candidates[index], colour, board_size):
                move = candidates[index]
                break
            candidates[index] = candidates[num_candidates - 1]  # drop the eye point and draw again
            num_candidates -= 1
        state.apply_action(move)
    return np.asarray(state.returns(), dtype=np.float64)


def _uniform_logits(legal: np.ndarray) -> np.ndarray:
    """``[B, A]`` float32 logits of the uniform distribution over the legal moves of ``legal`` ``[B, A]``."""
    return np.where(legal, 0.0, ILLEGAL_LOGIT).astype(np.float32)


class GoPerfectModel:
    """The Go rules as a search model: embeddings are OpenSpiel states, steps are exact.

    Use ``root(states)`` for the roots, ``legal_masks(states)`` for the root mask and
    ``recurrent`` as the search's ``recurrent_fn``; search with ``two_player=True``. Rewards and
    values are in [-1, 1]: the reward of a step is the game outcome for the player who moved (0 until
    the game ends), the value of a state is for the player to move there.

    :param num_rollouts: random rollouts averaged for each leaf value (see :func:`random_rollout`);
        0 gives value 0 everywhere (the search then sees only the outcomes of finished games).
    :param rng: numpy Generator or seed for the rollouts.
    """

    def __init__(self, *, num_rollouts: int = 0, rng: np.random.Generator | int | None = None):
        if not isinstance(num_rollouts, (int, np.integer)) or num_rollouts < 0:
            raise ValueError(f"num_rollouts must be an integer >= 0; got {num_rollouts!r}")
        self.num_rollouts = int(num_rollouts)
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def value(self, state: Any) -> float:
        """Estimated outcome for the player to move in a non-terminal ``state`` (mean of the rollouts)."""
        if self.num_rollouts == 0:
            return 0.0
        to_play = colour_to_play(state)
        return float(np.mean([random_rollout(state, self.rng)[to_play] for _ in range(self.num_rollouts)]))

    def legal_masks(self, states: Sequence[Any]) -> np.ndarray:
        """``[B, A]`` bool legal masks of ``states``, for the search's root ``legal_mask``."""
        return np.stack([legal_mask(state) for state in states])

    def root(self, states: Sequence[Any]) -> RootOutput:
        """Roots for B non-terminal states: uniform prior logits ``[B, A]``, values ``[B]``, cloned states."""
        if not isinstance(states, (list, tuple)) or not states:
            raise TypeError("states must be a non-empty list of OpenSpiel Go states (e.g. from GoEnv.get_state())")
        for index, state in enumerate(states):
            if not hasattr(state, "legal_actions_mask") or state.get_game().get_type().short_name != "go":
                raise TypeError(f"states[{index}] is not an OpenSpiel Go state; got {type(state).__name__}")
            if state.is_terminal():
                raise ValueError(f"states[{index}] is terminal: there is nothing to search")
        values = np.array([self.value(state) for state in states])
        return RootOutput(_uniform_logits(self.legal_masks(states)), values, [s.clone() for s in states])

    def recurrent(self, embedding: Sequence[Any], action: np.ndarray) -> tuple[RecurrentOutput, list[Any]]:
        """Apply ``action`` ``[B]`` to copies of the B states in ``embedding``.

        A terminal parent stays where it is with reward 0 and discount 0 (the search may walk past a
        finished game; nothing below it counts).
        """
        batch_size, num_actions = len(embedding), embedding[0].num_distinct_actions()
        reward, discount, value = np.zeros(batch_size), np.ones(batch_size), np.zeros(batch_size)
        legal = np.ones((batch_size, num_actions), np.bool_)
        children = []
        for b, state in enumerate(embedding):
            if state.is_terminal():
                discount[b] = 0.0
                children.append(state)
                continue
            mover = state.current_player()
            child = state.child(int(action[b]))
            children.append(child)
            if child.is_terminal():
                reward[b], discount[b] = child.returns()[mover], 0.0
            else:
                legal[b] = legal_mask(child)
                value[b] = self.value(child)
        return RecurrentOutput(reward, discount, _uniform_logits(legal), value, legal), children


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


class GoSearchOpponent:
    """A fixed-strength player: Gumbel MuZero search with :class:`GoPerfectModel` (uniform prior, rollout values).

    Gumbel MuZero (Sequential Halving over ``max_num_considered_actions`` sampled moves) rather than
    pUCT: with a uniform prior over ~80 moves and fewer simulations than moves, pUCT tries moves in
    index order and keeps the first one whose single rollout was won. The strength is set by the
    budget alone and all randomness comes from the ``rng`` passed in, so it is a stable yardstick
    for single-agent evaluation.

    :param num_simulations: search simulations per move.
    :param num_rollouts: random rollouts per leaf value (0: value 0, outcomes of finished games only).
    :param max_num_considered_actions: root moves sampled for Sequential Halving. The default 8 with 32
        simulations beat a uniformly random player in 38 of 40 games as black and 20 of 20 as white
        (fewer candidates, each judged on more rollouts; 16 candidates: 36 of 40).
    :param max_depth: maximum tree depth in moves (None: unbounded).
    """

    def __init__(
        self,
        num_simulations: int = 32,
        *,
        num_rollouts: int = 1,
        max_num_considered_actions: int = 8,
        max_depth: int | None = None,
    ):
        if not isinstance(num_simulations, (int, np.integer)) or num_simulations < 1:
            raise ValueError(f"num_simulations must be an integer >= 1; got {num_simulations!r}")
        if not isinstance(max_num_considered_actions, (int, np.integer)) or max_num_considered_actions < 1:
            raise ValueError(f"max_num_considered_actions must be an integer >= 1; got {max_num_considered_actions!r}")
        GoPerfectModel(num_rollouts=num_rollouts)  # validates num_rollouts
        self.num_simulations = int(num_simulations)
        self.num_rollouts = int(num_rollouts)
        self.max_num_considered_actions = int(max_num_considered_actions)
        self.max_depth = max_depth

    def select_action(self, state: Any, rng: np.random.Generator) -> int:
        """The move a search from ``state`` picks (Gumbel noise and rollouts drawn from ``rng``)."""
        model = GoPerfectModel(num_rollouts=self.num_rollouts, rng=rng)
        output = gumbel_muzero_policy(
            model.root([state]),
            model.recurrent,
            self.num_simulations,
            legal_mask=model.legal_masks([state]),
            max_depth=self.max_depth,
            rng=rng,
            max_num_considered_actions=self.max_num_considered_actions,
            two_player=True,
        )
        return int(output.action[0])

    def __repr__(self) -> str:
        return (
            f"GoSearchOpponent(num_simulations={self.num_simulations}, num_rollouts={self.num_rollouts}, "
            f"max_num_considered_actions={self.max_num_considered_actions}, max_depth={self.max_depth})"
        )


def _as_opponent(opponent: GoOpponent | str | None) -> GoOpponent | None:
    if opponent is None or isinstance(opponent, GoOpponent):
        return opponent
    if isinstance(opponent, str) and opponent == "random":
        return RandomGoOpponent()
    raise TypeError(
        "opponent must be None (two-player), 'random', or an object with select_action(state, rng) such as "
        f"GoSearchOpponent(num_simulations=...); got {opponent!r}"
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
    With an opponent (``"random"``, :class:`GoSearchOpponent` or any :class:`GoOpponent`) the agent plays
    ``agent_colour``; the opponent's replies happen inside ``step()`` (and inside ``reset()`` when the agent
    is white), and the reward is the outcome for the agent. The opponent draws randomness from
    ``self.np_random``, so ``reset(seed=...)`` makes whole episodes reproducible.

    **Episode end.** ``terminated`` after two consecutive passes or ``max_game_length`` moves (the game is
    scored at that cap, so it is a real end, not a truncation), or on a repeated position (a draw);
    ``info["winner"]`` is then 0 (black), 1 (white) or -1 (draw).
    ``truncated`` is always False (add ``TimeLimit`` for a shorter cap).

    **Planning.** :meth:`get_state` / :meth:`set_state` copy the OpenSpiel state (about 2 µs);
    :class:`GoPerfectModel` searches from such states.

    :param board_size: ``N`` (the registered id ``gym_planning/Go9x9-v0`` uses 9).
    :param komi: points given to white.
    :param max_game_length: moves after which the game is scored (None: ``2 * N * N``).
    :param opponent: None, ``"random"`` or a :class:`GoOpponent`.
    :param agent_colour: ``"black"`` or ``"white"``, the agent's colour when there is an opponent.
    :param render_mode: None, ``"ansi"`` (text board) or ``"rgb_array"`` (``[32 N, 32 N, 3]`` uint8).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 2}

    def __init__(
        self,
        *,
        board_size: int = 9,
        komi: float = 7.5,
        max_game_length: int | None = None,
        opponent: GoOpponent | str | None = None,
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
            self._opponent_move()
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
            self._opponent_move()
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
        """A copy of the game state (an OpenSpiel ``GoState``), for :meth:`set_state` or :class:`GoPerfectModel`."""
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
        return _observer(self.game)

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
                f"illegal move {int(action)} ({move_to_string(action, self.board_size)}) for {colour}: the point is "
                "occupied, or the move is suicide or retakes a ko (see info['legal_mask'])"
            )
        return int(action)

    def _opponent_move(self) -> None:
        move = self.opponent.select_action(self._state.clone(), self.np_random)
        if not 0 <= move < self.action_space.n or not self._state.legal_actions_mask()[move]:
            raise ValueError(f"opponent {self.opponent!r} chose illegal move {move!r} in\n{self._state}")
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
