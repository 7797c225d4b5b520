"""Go's rules as a search model: :class:`GoPerfectModel` (exact steps on OpenSpiel states) and random rollouts.

The env is :class:`gym_planning.envs.go.GoEnv`; the search-based player built on this model is
:class:`gym_planning.agents.GoSearchOpponent`.

Conventions as in :mod:`gym_planning.envs.go`: players ``0`` = black, ``1`` = white; ``N`` board size,
``A = N * N + 1`` actions (``N * N`` passes); ``B`` batch of states.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numba import njit

from gym_planning.envs.go import colour_to_play, legal_mask, spiel_observer
from gym_planning.search import RecurrentOutput, RootOutput

__all__ = ["GoPerfectModel", "fills_own_eye", "random_rollout"]

ILLEGAL_LOGIT = -1e9  # prior logit of an illegal move: probability exp(-1e9) = 0, and still finite


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
    observer = spiel_observer(game)
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
