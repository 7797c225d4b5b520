"""Bad input from the env or the user gets one clear error naming the problem and the fix."""

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from gym_planning.agents.muzero import MuZero
from tests.agents.corridor import make_corridor

SMALL = dict(
    num_simulations=4,
    learning_starts=4,
    batch_size=4,
    replay_ratio=1.0,
    value_support_size=3,
    reward_support_size=1,
    policy_kwargs=dict(network_kwargs=dict(latent_dim=8, hidden_sizes=(16,))),
)


class _BreaksAtStep(gym.Wrapper):
    """Returns a NaN reward (or observation) from its ``step``-th step on."""

    def __init__(self, env: gym.Env, step: int, what: str):
        super().__init__(env)
        self.step_count, self.break_at, self.what = 0, step, what

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.step_count += 1
        if self.step_count >= self.break_at:
            if self.what == "reward":
                reward = float("nan")
            else:
                obs = np.full_like(obs, np.nan)
        return obs, reward, terminated, truncated, info


def _two_envs(what):
    # env 1 breaks at its 6th step, i.e. at num_timesteps 12 (two envs step together); training runs from 4.
    return DummyVecEnv([lambda: gym.make("CartPole-v1"), lambda: _BreaksAtStep(gym.make("CartPole-v1"), 6, what)])


def test_nan_reward_names_the_env_and_step():
    model = MuZero("MlpPolicy", _two_envs("reward"), seed=0, **SMALL)
    with pytest.raises(ValueError, match=r"env 1 returned a non-finite reward \(NaN or inf\) at num_timesteps=12"):
        model.learn(40)
    assert len(model.replay_buffer) == 10  # the bad step never entered the replay


def test_nan_observation_is_blamed_on_the_env_not_the_network():
    model = MuZero("MlpPolicy", _two_envs("observation"), seed=0, **SMALL)
    with pytest.raises(ValueError, match=r"env 1 returned a non-finite observation \(NaN or inf\) at num_timesteps=12"):
        model.learn(40)
    with pytest.raises(ValueError, match="predict got a non-finite observation"):
        model.predict(np.array([0.0, np.nan, 0.0, 0.0], np.float32))


def test_buffer_smaller_than_learning_starts_raises():
    with pytest.raises(ValueError, match=r"buffer_size \(100\) < learning_starts \(500\).*raise buffer_size"):
        MuZero("MlpPolicy", make_corridor(), buffer_size=100)
    MuZero("MlpPolicy", make_corridor(), buffer_size=100, learning_starts=100)  # equal is fine


def test_progress_bar_dependencies_are_core():
    # The README's first snippet uses learn(..., progress_bar=True), which SB3 runs on tqdm and rich.
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    with open(Path(__file__).parents[2] / "pyproject.toml", "rb") as file:
        project = tomllib.load(file)["project"]
    core = {dep.split(">")[0].split("=")[0].split("<")[0].strip() for dep in project["dependencies"]}
    assert {"tqdm", "rich"} <= core


def test_a_visit_temperature_with_gumbel_search_warns_that_it_is_ignored():
    env = DummyVecEnv([make_corridor])
    with pytest.warns(UserWarning, match="temperature=0.5 has no effect with search='gumbel'"):
        MuZero("MlpPolicy", env, search="gumbel", temperature=0.5, **SMALL)
    with warnings.catch_warnings():  # the default schedule, pUCT, or prior-policy acting (temperature used) stay quiet
        warnings.simplefilter("error")
        MuZero("MlpPolicy", env, search="gumbel", **SMALL)
        MuZero("MlpPolicy", env, search="muzero", temperature=0.5, **SMALL)
        MuZero("MlpPolicy", env, search="gumbel", temperature=0.5, search_at_train_time=False, **SMALL)
