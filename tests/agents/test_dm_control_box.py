"""dm_control with Box actions (issue 16): the Sampled MuZero rows (``*Box-v0`` in muzero.yml) and SAC's rows
(sac.yml) build the same env without a discretisation, and Sampled MuZero trains and acts on 21-dim humanoid."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from gym_planning.agents.muzero.box import SampledGameSegmentBuffer
from gym_planning.hyperparams import load_hyperparams, make_agent, make_env

pytest.importorskip("shimmy")
pytest.importorskip("dm_control")

# (MuZero's Box row, the dm_control id of SAC's row and of the factorised MuZero row, action dimensions D, observation size)
TASKS = [
    ("CheetahRunBox-v0", "dm_control/cheetah-run-v0", 6, 17),
    ("WalkerWalkBox-v0", "dm_control/walker-walk-v0", 6, 24),
    ("HumanoidStandBox-v0", "dm_control/humanoid-stand-v0", 21, 67),
]


@pytest.mark.parametrize(("box_row", "env_id", "action_dim", "obs_size"), TASKS)
def test_sampled_muzero_and_sac_rows_see_the_same_box_env(box_row, env_id, action_dim, obs_size):
    muzero = make_env(load_hyperparams("muzero", box_row), n_envs=1, seed=0)
    sac = make_env(load_hyperparams("sac", env_id), n_envs=1, seed=0)
    expected = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float64)
    assert muzero.action_space == sac.action_space == expected  # no discretisation
    assert muzero.observation_space.shape == sac.observation_space.shape == (obs_size,)
    # 4 control steps per agent step: 1000 control steps are 250 agent steps, and the same seed, the same start.
    np.testing.assert_array_equal(muzero.reset(), sac.reset())


def test_factorised_walker_row_discretises():
    env = make_env(load_hyperparams("muzero", "dm_control/walker-walk-v0"), n_envs=1, seed=0)
    assert env.action_space == gym.spaces.Discrete(13)  # no-op plus +/-1 on each of 6 dimensions


def test_sampled_muzero_trains_and_acts_on_humanoid_21_dims():
    th.set_num_threads(1)
    tiny = dict(n_envs=2, learning_starts=8, batch_size=8, num_simulations=2, num_samples=4)
    model = make_agent("muzero", "HumanoidStandBox-v0", seed=0, device="cpu", overrides=tiny)
    model.learn(24)
    assert isinstance(model.replay_buffer, SampledGameSegmentBuffer) and model._n_updates > 0
    assert model.replay_buffer.candidates.shape[2:] == (4, 21)
    actions = model.replay_buffer.actions[: model.replay_buffer.pos]  # [R, E, D] rows written
    assert np.abs(actions).max() <= 1.0 and np.unique(actions[:, 0, 0]).size > 1  # varied, inside the Box
    action, _ = model.predict(model.get_env().reset(), deterministic=True)
    assert action.shape == (2, 21) and np.abs(action).max() <= 1.0
