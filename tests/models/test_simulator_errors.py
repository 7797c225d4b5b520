"""Issue 12: ``SimulatorModel`` errors name the cause and the fix (an env never reset, remote sub-envs)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import SubprocVecEnv

from gym_planning.models import SimulatorModel
from gym_planning.search import muzero_policy


def test_a_model_bound_to_an_env_that_was_never_reset_says_so() -> None:
    played = gym.make("CartPole-v1")
    observation, _ = played.reset(seed=0)
    model = SimulatorModel(gym.make("CartPole-v1"))  # a second gym.make, not the env being played
    with pytest.raises(ValueError, match=r"bound to an env that was never reset .* not to a\s+second gym.make"):
        root = model.root(observation[None])
        muzero_policy(root, model.recurrent, 4, legal_mask=model.root_legal_mask)


def test_a_model_bound_to_the_played_env_searches() -> None:
    played = gym.make("CartPole-v1")
    observation, _ = played.reset(seed=0)
    model = SimulatorModel(played)
    out = muzero_policy(model.root(observation[None]), model.recurrent, 4, rng=0)
    assert out.action.shape == (1,) and np.isfinite(out.root_value).all()


@pytest.fixture(scope="module")
def subproc_env():
    env = make_vec_env("CartPole-v1", n_envs=1, vec_env_cls=SubprocVecEnv, vec_env_kwargs=dict(start_method="fork"))
    yield env
    env.close()


def test_subproc_vec_env_without_make_copy_names_state_snapshot(subproc_env) -> None:
    with pytest.raises(ValueError, match=r"SimulatorModel\(SubprocVecEnv\) needs make_copy=.*StateSnapshot"):
        SimulatorModel(subproc_env)


def test_subproc_sub_envs_without_get_state_name_state_snapshot(subproc_env) -> None:
    with pytest.raises(ValueError, match=r"sub-envs have no get_state\(\) .*StateSnapshot"):
        SimulatorModel(subproc_env, make_copy=lambda: gym.make("CartPole-v1"))
