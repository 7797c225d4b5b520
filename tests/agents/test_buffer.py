import numpy as np
import pytest

from gym_planning.agents.muzero.buffer import ABSORBING, INSIDE, UNKNOWN, GameSegmentBuffer


def _buffer(rewards, terminated, truncated, capacity=32):
    """One env stream with the given per-step rewards and episode ends; observation = step index."""
    buffer = GameSegmentBuffer(capacity, (1,), np.float32, 2, 1, priority_alpha=0.0, seed=0)
    for t, (r, term, trunc) in enumerate(zip(rewards, terminated, truncated)):
        final = {0: np.array([100.0 + t], np.float32)} if trunc else {}
        buffer.add(
            np.array([[t]], np.float32), np.array([t % 2]), np.array([r], np.float32), np.array([term]), np.array([trunc]),
            np.full((1, 2), 0.5, np.float32), np.ones((1, 2), bool), final,
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
