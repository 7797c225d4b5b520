"""MuZero's per-move visit temperature (``num_sampling_moves``, AlphaZero's schedule): sampled first moves, then
the most visited action; the search's own temperature-0 choice, saved with the model, refused where ignored."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env

from gym_planning.agents.muzero import MuZero
from gym_planning.envs.tictactoe import TicTacToeEnv
from gym_planning.search import most_visited_action, run_policy

TINY = dict(
    num_simulations=16,
    dirichlet_alpha=0.5,
    temperature=1.0,
    discount=1.0,
    td_steps=9,
    value_support_size=3,
    reward_support_size=1,
    reanalyse_fraction=0.0,
    policy_kwargs=dict(network_kwargs=dict(latent_dim=8, hidden_sizes=(16,))),
)
# Collect without training: the acting distribution of a fixed (untrained) network.
NO_TRAINING = dict(learning_starts=2_000, buffer_size=2_000)


def _moves_in_episode(episode_end: np.ndarray) -> np.ndarray:
    """``[T, E]`` index of each stored step inside its episode (0 = the first move), from ``episode_end``."""
    moves = np.zeros(episode_end.shape, np.int64)
    for row in range(1, len(episode_end)):
        moves[row] = np.where(episode_end[row - 1], 0, moves[row - 1] + 1)
    return moves


def _collect(num_sampling_moves: int | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Self-play tic-tac-toe for 480 steps in 4 envs: ``(move index [T, E], acted action is most visited [T, E])``."""
    env = make_vec_env(TicTacToeEnv, n_envs=4, seed=seed)
    model = MuZero("MlpPolicy", env, seed=seed, num_sampling_moves=num_sampling_moves, **TINY, **NO_TRAINING)
    model.learn(480)
    buffer, rows = model.replay_buffer, model.replay_buffer.stored_rows
    targets = buffer.policy_targets[:rows]  # [T, E, A] the acting search's visit probabilities
    acted = np.take_along_axis(targets, buffer.actions[:rows, :, None], axis=2)[..., 0]
    return _moves_in_episode(buffer.episode_end[:rows]), acted == targets.max(axis=2)


def test_moves_after_num_sampling_moves_take_the_most_visited_action():
    moves, greedy = _collect(num_sampling_moves=2)
    assert (moves >= 2).sum() > 200 and (moves < 2).sum() > 100
    assert greedy[moves >= 2].all()
    # Before move 2 actions are sampled at temperature 1: with 16 simulations over 8-9 moves many are not the
    # most visited one.
    assert (~greedy[moves < 2]).mean() > 0.2


def test_without_num_sampling_moves_every_move_is_sampled():
    moves, greedy = _collect(num_sampling_moves=None)
    assert (~greedy[moves >= 2]).mean() > 0.2


def test_num_sampling_moves_zero_acts_greedily_from_the_first_move():
    _, greedy = _collect(num_sampling_moves=0)
    assert greedy.all()


@pytest.mark.parametrize("seed", range(4))
def test_most_visited_is_the_search_action_at_temperature_zero(seed):
    """Same noise, same tree: the greedy choice made after a temperature-1 search equals the search's own
    temperature-0 action (visit count, then Q, then index), with random legal masks."""
    model = MuZero("MlpPolicy", make_vec_env(TicTacToeEnv, n_envs=1, seed=seed), seed=seed, **TINY)
    rng = np.random.default_rng(seed)
    observations = rng.integers(0, 2, size=(32, *model.observation_space.shape)).astype(np.float32)
    legal = rng.random((32, 9)) < 0.6
    legal[np.arange(32), rng.integers(0, 9, 32)] = True
    root = model._root(observations)
    fn = model._recurrent_fn(root)
    sampled = run_policy(model.search_config, root, fn, legal_mask=legal, rng=seed, explore=True, temperature=1.0)
    greedy = run_policy(model.search_config, root, fn, legal_mask=legal, rng=seed, explore=True, temperature=0.0)
    np.testing.assert_array_equal(sampled.action_weights, greedy.action_weights)
    np.testing.assert_array_equal(most_visited_action(sampled.tree), greedy.action)
    assert legal[np.arange(32), most_visited_action(sampled.tree)].all()
    assert (sampled.action != greedy.action).any()  # the test can tell the two choices apart


def test_num_sampling_moves_is_saved_and_the_move_count_resumes(tmp_path):
    env = make_vec_env(TicTacToeEnv, n_envs=2, seed=0)
    model = MuZero("MlpPolicy", env, seed=0, num_sampling_moves=3, **TINY, **NO_TRAINING)
    model.learn(10)
    moves = model._episode_moves.copy()
    model.save(tmp_path / "model")
    loaded = MuZero.load(tmp_path / "model", env=env)
    assert loaded.num_sampling_moves == 3
    np.testing.assert_array_equal(loaded._episode_moves, moves)
    assert MuZero("MlpPolicy", env, **TINY).num_sampling_moves is None  # the default samples every move


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_sampling_moves=-1), "integer >= 0"),
        (dict(num_sampling_moves=2.5), "integer >= 0"),
        (dict(num_sampling_moves=2, search="gumbel"), "no effect with search='gumbel'"),
        (dict(num_sampling_moves=2, async_actors=1), "async_actors=0"),
    ],
)
def test_bad_num_sampling_moves_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MuZero("MlpPolicy", "CartPole-v1", **kwargs)


def test_num_sampling_moves_is_refused_for_box_actions():
    with pytest.raises(ValueError, match="Box actions"):
        MuZero("MlpPolicy", gym.make("Pendulum-v1"), num_sampling_moves=2)
