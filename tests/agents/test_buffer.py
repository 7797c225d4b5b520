import numpy as np
import pytest

from gym_planning.agents.muzero.buffer import ABSORBING, INSIDE, UNKNOWN, GameSegmentBuffer


def _buffer(rewards, terminated, truncated, capacity=32):
    """One env stream with the given per-step rewards and episode ends; observation = step index."""
    buffer = GameSegmentBuffer(capacity, (1,), np.float32, 2, 1, priority_alpha=0.0, seed=0)
    for t, (r, term, trunc) in enumerate(zip(rewards, terminated, truncated)):
        final = {0: np.array([100.0 + t], np.float32)} if trunc else {}
        buffer.add(
            np.array([[t]], np.float32),
            np.array([t % 2]),
            np.array([r], np.float32),
            np.array([term]),
            np.array([trunc]),
            np.full((1, 2), 0.5, np.float32),
            np.ones((1, 2), bool),
            final,
        )
    return buffer


def _sample_at(buffer, row, num_unroll_steps, td_steps, discount):
    buffer.priority_alpha = 1.0
    buffer.priorities[:] = 0
    buffer.priorities[row, 0] = 1.0  # sample exactly this start
    return buffer.sample(1, num_unroll_steps, td_steps, discount)


def test_n_step_target_stops_at_termination():
    # Steps 0..2 of an episode that terminates at step 2, then a new episode.
    buffer = _buffer([1.0, 2.0, 4.0, 8.0, 16.0, 32.0], [False, False, True, False, False, False], [False] * 6)
    batch = _sample_at(buffer, 0, num_unroll_steps=4, td_steps=5, discount=0.5)
    assert batch.status[0].tolist() == [INSIDE, INSIDE, INSIDE, ABSORBING, ABSORBING]
    # No bootstrap past a termination: 1 + 0.5*2 + 0.25*4 = 3.
    assert batch.partial_returns[0, 0] == pytest.approx(3.0)
    assert batch.bootstrap_rows[0, 0] == -1 and batch.bootstrap_rows[0, 2] == -1
    assert batch.partial_returns[0, 2] == pytest.approx(4.0)
    # Rewards into positions 1..3 are the stored ones; past the end they are absorbing zeros (still trained).
    assert batch.rewards[0].tolist() == [0.0, 1.0, 2.0, 4.0, 0.0]
    assert batch.reward_mask[0].tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert batch.actions[0, :3].tolist() == [0, 1, 0]


def test_n_step_target_bootstraps_on_truncation_from_final_observation():
    buffer = _buffer([1.0, 1.0, 1.0, 5.0], [False] * 4, [False, True, False, False])
    batch = _sample_at(buffer, 0, num_unroll_steps=3, td_steps=4, discount=0.5)
    assert batch.status[0].tolist() == [INSIDE, INSIDE, UNKNOWN, UNKNOWN]
    assert batch.partial_returns[0, 0] == pytest.approx(1.5)
    assert batch.bootstrap_rows[0, 0] == 1 and batch.bootstrap_final[0, 0]
    assert batch.bootstrap_discounts[0, 0] == pytest.approx(0.25)
    observations, positions = buffer.bootstrap_observations(batch)
    assert positions.tolist() == [[0, 0], [0, 1]]
    assert observations[:, 0].tolist() == [101.0, 101.0]  # the truncated step's final observation
    # After a truncation nothing is known: rewards beyond the first are masked.
    assert batch.reward_mask[0].tolist() == [0.0, 1.0, 1.0, 0.0]


def test_n_step_target_bootstraps_inside_episode_and_at_data_end():
    buffer = _buffer([1.0] * 5, [False] * 5, [False] * 5)
    batch = _sample_at(buffer, 0, num_unroll_steps=2, td_steps=2, discount=0.5)
    # 1 + 0.5 * 1 + 0.25 * v(obs 2)
    assert batch.partial_returns[0, 0] == pytest.approx(1.5)
    assert batch.bootstrap_rows[0].tolist() == [2, 3, 4]
    batch = _sample_at(buffer, 3, num_unroll_steps=2, td_steps=3, discount=0.5)
    # Only row 4 follows: the window shrinks to what is stored and bootstraps from the newest observation.
    assert batch.status[0].tolist() == [INSIDE, INSIDE, UNKNOWN]
    assert batch.partial_returns[0, 0] == pytest.approx(1.0) and batch.bootstrap_rows[0, 0] == 4
    assert batch.bootstrap_discounts[0, 0] == pytest.approx(0.5)


def test_ring_buffer_wraps_and_forgets_final_observations():
    buffer = _buffer([1.0] * 10, [False] * 10, [t == 1 for t in range(10)], capacity=4)
    assert len(buffer) == 4 and buffer.full
    assert buffer.final_observations == {}
    assert buffer.observations[:, 0, 0].tolist() == [8.0, 9.0, 6.0, 7.0]


def test_prioritised_sampling_and_weights():
    buffer = _buffer([0.0] * 4, [False] * 4, [False] * 4)
    buffer.priority_alpha, buffer.priority_beta = 1.0, 1.0
    buffer.update_priorities(np.arange(4), np.array([1.0, 1.0, 1.0, 7.0]))
    batch = buffer.sample(4000, 1, 1, 0.9)
    assert np.mean(batch.flat_index == 3) == pytest.approx(0.7, abs=0.03)
    # weight ∝ 1 / (N p): the frequent row gets weight 1/7 of the rare ones.
    assert batch.weights[batch.flat_index == 3][0] == pytest.approx(1.0 / 7.0)
    assert batch.weights[batch.flat_index == 0][0] == pytest.approx(1.0)


def test_buffer_too_small_raises():
    with pytest.raises(ValueError, match="buffer_size"):
        GameSegmentBuffer(3, (1,), np.float32, 2, 2)


def _cut_after_three_steps(next_observations):
    """Three steps of an open episode, closed by an env reset, then a new episode of three steps."""
    buffer = _buffer([1.0, 2.0, 4.0], [False] * 3, [False] * 3)
    closed = buffer.close_open_episodes(next_observations)
    for t in range(3, 6):
        buffer.add(
            np.array([[t]], np.float32),
            np.array([0]),
            np.array([8.0], np.float32),
            np.array([False]),
            np.array([False]),
            np.full((1, 2), 0.5, np.float32),
            np.ones((1, 2), bool),
            {},
        )
    return buffer, closed


def test_closing_an_episode_with_its_next_observation_is_a_truncation():
    buffer, closed = _cut_after_three_steps(np.array([[50.0]], np.float32))
    assert closed.tolist() == [0] and buffer.episode_end[2, 0] and not buffer.terminated[2, 0]
    batch = _sample_at(buffer, 0, num_unroll_steps=4, td_steps=5, discount=0.5)
    # The unroll stops at the cut instead of running into the next episode (rewards 8 of rows 3.. unused).
    assert batch.status[0].tolist() == [INSIDE, INSIDE, INSIDE, UNKNOWN, UNKNOWN]
    assert batch.reward_mask[0].tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    # 1 + 0.5*2 + 0.25*4 + 0.125 * v(next observation 50)
    assert batch.partial_returns[0, 0] == pytest.approx(3.0)
    observations, positions = buffer.bootstrap_observations(batch)
    assert positions.tolist() == [[0, 0], [0, 1], [0, 2]] and observations[:, 0].tolist() == [50.0] * 3
    assert batch.bootstrap_discounts[0, 0] == pytest.approx(0.125)


def test_closing_an_episode_without_its_next_observation_masks_the_cut_step():
    buffer, _ = _cut_after_three_steps(None)
    batch = _sample_at(buffer, 0, num_unroll_steps=4, td_steps=5, discount=0.5)
    # The cut step (row 2) has no known successor: it and everything after are unknown; its reward is masked.
    assert batch.status[0].tolist() == [INSIDE, INSIDE, UNKNOWN, UNKNOWN, UNKNOWN]
    assert batch.reward_mask[0].tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]
    # Earlier targets bootstrap from the cut step's own observation (2), before its reward: 1 + 0.5*2 + 0.25*v(2).
    assert batch.partial_returns[0, 0] == pytest.approx(2.0)
    assert batch.bootstrap_rows[0, :2].tolist() == [2, 2] and not batch.bootstrap_final[0].any()
    assert batch.bootstrap_discounts[0, :2].tolist() == pytest.approx([0.25, 0.5])
    observations, _ = buffer.bootstrap_observations(batch)
    assert observations[:, 0].tolist() == [2.0, 2.0]
    # The next episode is untouched and the mark is cleared when the row is overwritten.
    assert _sample_at(buffer, 3, num_unroll_steps=1, td_steps=1, discount=0.5).status[0].tolist() == [INSIDE, INSIDE]
    assert buffer.final_unknown[2, 0] and buffer.final_unknown.sum() == 1


def test_closing_leaves_ended_episodes_and_survives_pickling():
    import pickle

    buffer = GameSegmentBuffer(8, (1,), np.float32, 2, 2, seed=0)
    assert buffer.close_open_episodes(None).tolist() == []  # empty replay: nothing to close
    buffer.add(
        np.zeros((2, 1), np.float32),
        np.zeros(2, np.int64),
        np.zeros(2, np.float32),
        np.array([True, False]),
        np.array([False, False]),
        np.full((2, 2), 0.5, np.float32),
        np.ones((2, 2), bool),
        {},
    )
    assert buffer.close_open_episodes(None).tolist() == [1]
    assert buffer.terminated[0].tolist() == [True, False] and buffer.final_unknown[0].tolist() == [False, True]
    state = pickle.loads(pickle.dumps(buffer)).__dict__
    assert state["final_unknown"][0].tolist() == [False, True]
    del state["final_unknown"]  # a replay pickled before the field existed
    old = GameSegmentBuffer.__new__(GameSegmentBuffer)
    old.__setstate__(state)
    assert old.final_unknown.shape == (4, 2) and not old.final_unknown.any()
