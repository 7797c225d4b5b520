"""Episodes are never stitched across an env reset."""

import numpy as np
from stable_baselines3.common.env_util import make_vec_env

from gym_planning.agents.muzero import MuZero
from tests.agents.corridor import make_corridor

SMALL = dict(
    num_simulations=4,
    learning_starts=16,
    batch_size=8,
    replay_ratio=0.25,
    discount=0.9,
    td_steps=3,
    value_support_size=3,
    reward_support_size=1,
    policy_kwargs=dict(network_kwargs=dict(latent_dim=8, hidden_sizes=(16,))),
)


def _model(n_envs=2, seed=0, **settings):
    env = make_vec_env(make_corridor, n_envs=n_envs, seed=seed)
    return MuZero("MlpPolicy", env, seed=seed, **dict(SMALL, **settings))


def _open_envs(model):
    buffer = model.replay_buffer
    row = (buffer.pos - 1) % buffer.capacity
    return row, np.flatnonzero(~buffer.episode_end[row])


def test_second_learn_closes_open_episodes_with_their_next_observation():
    model = _model().learn(20)  # 10 vector steps: both episodes still run (time limit 12)
    row, open_envs = _open_envs(model)
    assert open_envs.tolist() == [0, 1]
    last_obs = model._last_obs.copy()
    model.learn(8)  # reset_num_timesteps=True resets the envs
    buffer = model.replay_buffer
    assert buffer.episode_end[row].all() and not buffer.terminated[row].any() and not buffer.final_unknown.any()
    for env in (0, 1):  # truncated, bootstrapping from the observation that really followed
        assert np.array_equal(buffer.final_observations[(row, env)], last_obs[env])
    # The new episodes start from the corridor's first cell.
    assert buffer.observations[(row + 1) % buffer.capacity, :, 0].tolist() == [1.0, 1.0]


def test_continued_learn_does_not_cut_episodes():
    model = _model().learn(20)
    row, open_envs = _open_envs(model)
    model.learn(8, reset_num_timesteps=False)
    assert open_envs.size and not model.replay_buffer.episode_end[row, open_envs].any()


def test_resume_in_a_fresh_env_closes_the_cut_episodes_as_unknown(tmp_path):
    model = _model().learn(20)
    row, open_envs = _open_envs(model)
    model.save(tmp_path / "model")
    model.save_replay_buffer(tmp_path / "replay")
    resumed = MuZero.load(tmp_path / "model", env=make_vec_env(make_corridor, n_envs=2, seed=1))
    resumed.load_replay_buffer(tmp_path / "replay")
    resumed.learn(8, reset_num_timesteps=False)
    buffer = resumed.replay_buffer
    assert buffer.episode_end[row, open_envs].all() and buffer.final_unknown[row, open_envs].all()
    assert buffer.final_unknown.sum() == open_envs.size
