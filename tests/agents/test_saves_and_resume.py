"""Saves survive a crash mid-write, episodes are never stitched across an env reset, foreign files are named."""

import io
import pickle

import numpy as np
import pytest
import stable_baselines3.common.save_util as save_util
from stable_baselines3 import DQN, PPO
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


def _fail_midway(*args, **kwargs):
    raise KeyboardInterrupt("killed while saving")


def test_save_keeps_the_previous_model_when_interrupted(tmp_path, monkeypatch):
    model = _model().learn(24)
    model.save(tmp_path / "model")  # SB3 convention: ".zip" appended
    saved_steps = model.num_timesteps
    model.learn(8, reset_num_timesteps=False)
    with monkeypatch.context() as patch:
        patch.setattr(save_util.th, "save", _fail_midway)  # dies after the zip's first entry is written
        with pytest.raises(KeyboardInterrupt):
            model.save(tmp_path / "model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.zip"]  # no temporary file left
    assert MuZero.load(tmp_path / "model").num_timesteps == saved_steps


def test_save_replay_buffer_keeps_the_previous_replay_when_interrupted(tmp_path):
    model = _model().learn(24)
    model.save_replay_buffer(tmp_path / "replay")
    stored = len(model.replay_buffer)

    class DiesWhenPickled:
        def __reduce__(self):
            raise KeyboardInterrupt("killed while saving")

    model.learn(8, reset_num_timesteps=False)
    model.replay_buffer.bomb = DiesWhenPickled()  # pickled last, after the arrays were written
    with pytest.raises(KeyboardInterrupt):
        model.save_replay_buffer(tmp_path / "replay")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["replay.pkl"]
    model.load_replay_buffer(tmp_path / "replay")
    assert len(model.replay_buffer) == stored


def test_saves_follow_sb3_path_conventions(tmp_path):
    model = _model()
    model.save(tmp_path / "sub" / "model.v1")  # a suffix is kept, missing folders are created
    model.save(str(tmp_path / "plain"))
    model.save_replay_buffer(tmp_path / "replay.data")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["model.v1", "plain.zip", "replay.data"]
    MuZero.load(tmp_path / "sub" / "model.v1")
    model.load_replay_buffer(tmp_path / "replay.data")
    file = io.BytesIO()  # file-like objects are written directly
    model.save(file)
    file.seek(0)
    MuZero.load(file)
    file = io.BytesIO()
    model.save_replay_buffer(file)
    assert pickle.loads(file.getvalue()).n_envs == 2


@pytest.mark.parametrize(
    "algorithm, owner",
    [(PPO, "stable_baselines3.PPO.load"), (DQN, "stable_baselines3.DQN.load")],
)
def test_loading_another_algorithms_file_names_it(tmp_path, algorithm, owner):
    settings = {"n_steps": 16, "batch_size": 16} if algorithm is PPO else {}
    algorithm("MlpPolicy", make_corridor(), **settings).save(tmp_path / "other")
    with pytest.raises(TypeError, match=rf"policy stable_baselines3\..*Policy, not a MuZero model: load it with {owner}"):
        MuZero.load(tmp_path / "other")
    with open(tmp_path / "other.zip", "rb") as file, pytest.raises(TypeError, match="not a MuZero model"):
        MuZero.load(file)
