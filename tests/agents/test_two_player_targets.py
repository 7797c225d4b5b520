"""Two-player value targets in the replay: n-step returns from the view of the player to move."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gym_planning.agents.muzero.buffer import GameSegmentBuffer


def _fill(buffer: GameSegmentBuffer, steps: list[tuple[float, bool, bool, int]]) -> None:
    """Add one env stream of ``(reward, terminated, truncated, to_play)`` steps; observation = step index."""
    for t, (reward, term, trunc, to_play) in enumerate(steps):
        final = {0: np.array([100.0 + t], np.float32)} if trunc else {}
        buffer.add(
            np.array([[t]], np.float32),
            np.array([0]),
            np.array([reward], np.float32),
            np.array([term]),
            np.array([trunc]),
            np.full((1, 2), 0.5, np.float32),
            np.ones((1, 2), bool),
            final,
            to_play=np.array([to_play]) if buffer.two_players else None,
        )


class _Sweep:
    """Stands in for the replay's Generator: draws every stored start once, in order."""

    def __init__(self, rows: int):
        self.rows, self.rng = rows, np.random.default_rng(0)

    def choice(self, *args, **kwargs) -> np.ndarray:
        return np.arange(self.rows)

    def integers(self, *args, **kwargs) -> np.ndarray:
        return self.rng.integers(*args, **kwargs)


def _sample_all(buffer: GameSegmentBuffer, num_unroll_steps: int, td_steps: int, discount: float):
    """Unrolls from every stored start position (one env), row ``i`` of the batch starting at row ``i``."""
    buffer.rng = _Sweep(buffer.stored_rows)  # type: ignore[assignment]
    return buffer.sample(buffer.stored_rows, num_unroll_steps, td_steps, discount)


def test_a_won_game_gives_plus_one_to_the_winner_and_minus_one_to_the_loser():
    # X (0) and O (1) alternate; X's fifth move (step 4) wins: reward +1 for the mover.
    steps = [(0.0, False, False, 0), (0.0, False, False, 1), (0.0, False, False, 0), (0.0, False, False, 1),
             (1.0, True, False, 0), (0.0, False, False, 0)]  # fmt: skip
    # (The last step opens the next game: the newest stored step's own reward is not used yet.)
    buffer = GameSegmentBuffer(16, (1,), np.float32, 2, 1, priority_alpha=0.0, seed=0, two_players=True)
    _fill(buffer, steps)
    batch = _sample_all(buffer, num_unroll_steps=1, td_steps=10, discount=1.0)
    assert batch.partial_returns[:5, 0].tolist() == [1.0, -1.0, 1.0, -1.0, 1.0]
    assert (batch.bootstrap_rows[:5, 0] == -1).all()  # a finished game: nothing to bootstrap
    # Reward targets stay the mover's: the step into position 1 from step 4 is X's winning move.
    assert batch.rewards[4, 1] == 1.0 and batch.rewards[3, 1] == 0.0


def test_bootstrapped_value_is_negated_when_the_other_player_moves_there():
    steps = [(0.0, False, False, p % 2) for p in range(6)]
    buffer = GameSegmentBuffer(16, (1,), np.float32, 2, 1, priority_alpha=0.0, seed=0, two_players=True)
    _fill(buffer, steps)
    batch = _sample_all(buffer, num_unroll_steps=0, td_steps=3, discount=0.5)
    # From step 0 (player 0), bootstrap at step 3 (player 1): -(0.5 ** 3).
    assert batch.bootstrap_rows[0, 0] == 3
    assert batch.bootstrap_discounts[0, 0] == pytest.approx(-0.125)
    assert batch.bootstrap_discounts[1, 0] == pytest.approx(-0.125)


def test_to_play_decides_the_sign_not_the_parity():
    # The same player moves twice in a row (steps 1 and 2): its reward at step 2 counts for it at step 1.
    steps = [(0.0, False, False, 0), (0.0, False, False, 1), (1.0, True, False, 1), (0.0, False, False, 0)]
    buffer = GameSegmentBuffer(16, (1,), np.float32, 2, 1, priority_alpha=0.0, seed=0, two_players=True)
    _fill(buffer, steps)
    batch = _sample_all(buffer, num_unroll_steps=0, td_steps=5, discount=1.0)
    assert batch.partial_returns[:3, 0].tolist() == [-1.0, 1.0, 1.0]


def test_one_player_replay_is_unchanged_by_to_play():
    steps = [(1.0, False, False, 0), (2.0, False, False, 0), (4.0, True, False, 0), (8.0, False, False, 0)]
    buffer = GameSegmentBuffer(16, (1,), np.float32, 2, 1, priority_alpha=0.0, seed=0)
    _fill(buffer, steps)
    batch = _sample_all(buffer, num_unroll_steps=0, td_steps=5, discount=0.5)
    assert batch.partial_returns[:3, 0].tolist() == [3.0, 4.0, 4.0]


# A stream of steps: reward in {-1, 0, 1}, and an episode end (none, termination, truncation).
_steps = st.lists(st.tuples(st.sampled_from([-1.0, 0.0, 1.0]), st.sampled_from(["", "term", "trunc"])), min_size=1,
                  max_size=30)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(steps=_steps, td_steps=st.integers(1, 6), num_unroll_steps=st.integers(0, 4),
       discount=st.sampled_from([1.0, 0.9, 0.5]), capacity=st.integers(8, 40))  # fmt: skip
def test_alternating_turns_equal_one_player_targets_with_a_negated_discount(
    steps, td_steps, num_unroll_steps, discount, capacity
):
    """With turns alternating from player 0 after every episode end, the sign of step ``i`` of a window is
    ``(-1)^i``, so two-player targets must equal one-player targets computed with discount ``-gamma``."""
    stream, player = [], 0
    for reward, end in steps:
        stream.append((reward, end == "term", end == "trunc", player))
        player = 0 if end else 1 - player
    two = GameSegmentBuffer(capacity, (1,), np.float32, 2, 1, priority_alpha=0.0, seed=0, two_players=True)
    one = GameSegmentBuffer(capacity, (1,), np.float32, 2, 1, priority_alpha=0.0, seed=0)
    _fill(two, stream)
    _fill(one, stream)
    a = _sample_all(two, num_unroll_steps, td_steps, discount)
    b = _sample_all(one, num_unroll_steps, td_steps, -discount)
    for field in ("rows", "status", "rewards", "reward_mask", "bootstrap_rows", "bootstrap_final"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    np.testing.assert_allclose(a.partial_returns, b.partial_returns, atol=1e-6)
    np.testing.assert_allclose(a.bootstrap_discounts, b.bootstrap_discounts, atol=1e-6)


# -- the search's two-player backup on known tic-tac-toe positions, with the exact rules as the model --------


def _exact_tictactoe(boards: np.ndarray, action: np.ndarray):
    """The rules as a search model: embeddings are boards ``[B, 9]`` (-1 empty, 0 X, 1 O); reward +1 for the
    mover who completes a line, discount 0 at the end of the game, uniform priors and value 0 everywhere."""
    from gym_planning.envs.tictactoe import EMPTY, player_to_move, winner
    from gym_planning.search import RecurrentOutput

    boards = np.array(boards, copy=True)
    reward, discount, legal = np.zeros(len(boards)), np.ones(len(boards)), np.ones((len(boards), 9), bool)
    for b, (board, a) in enumerate(zip(boards, action)):
        ended = winner(board) != EMPTY or EMPTY not in board  # searched past the end: an absorbing state
        if not ended and board[a] == EMPTY:
            board[a] = player_to_move(board)
            reward[b] = 1.0 if winner(board) != EMPTY else 0.0
        discount[b] = 0.0 if ended or winner(board) != EMPTY or EMPTY not in board else 1.0
        legal[b] = (board == EMPTY) if discount[b] else True
    zeros = np.zeros(len(boards))
    return RecurrentOutput(reward, discount, np.zeros((len(boards), 9)), zeros, legal), boards


def _search_exact(board: list[int], search: str, two_player: bool, num_simulations: int) -> int:
    from gym_planning.search import RootOutput, SearchConfig, run_policy

    boards = np.array([board], np.int8)
    root = RootOutput(np.zeros((1, 9)), np.zeros(1), boards)
    config = SearchConfig(policy=search, num_simulations=num_simulations, max_num_considered_actions=9,
                          two_player=two_player)  # fmt: skip
    output = run_policy(config, root, _exact_tictactoe, legal_mask=boards == -1, rng=0, explore=False, temperature=0.0)
    return int(output.action[0])


# X (0) has 0 and 1, O (1) has 3 and 4, X to move: 2 wins at once (5 would be O's win next).
WIN_IN_ONE = [0, 0, -1, 1, 1, -1, -1, -1, -1]
# X has 0 and 1, O has 4, O to move: only 2 stops X's line; nothing wins for O yet.
MUST_BLOCK = [0, 0, -1, -1, 1, -1, -1, -1, -1]


@pytest.mark.parametrize("search", ["muzero", "gumbel"])
def test_two_player_search_takes_a_win_in_one_and_blocks_a_win_in_one(search):
    assert _search_exact(WIN_IN_ONE, search, two_player=True, num_simulations=64) == 2
    assert _search_exact(MUST_BLOCK, search, two_player=True, num_simulations=200) == 2


def test_one_player_backup_does_not_see_the_threat():
    """Without the sign flip the opponent's win counts as the searcher's own reward, so blocking it looks
    no better (here: worse) than any other move: the two-player test above can fail."""
    assert _search_exact(MUST_BLOCK, "muzero", two_player=False, num_simulations=200) != 2
