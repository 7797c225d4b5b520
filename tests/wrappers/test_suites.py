"""make_dm_control / make_atari stacks: shapes, check_env, VecEnvs, snapshots through the whole stack."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence

from gym_planning.wrappers.snapshot import get_env_state, set_env_state
from gym_planning.wrappers.suites import ActionRepeat, make_atari, make_dm_control


def _replay_twice_equal(env, actions):
    state = get_env_state(env)
    runs = []
    for _ in range(2):
        set_env_state(env, state)
        runs.append([env.step(a)[:4] for a in actions])
    return data_equivalence(runs[0], runs[1])


def test_action_repeat_sums_rewards_and_stops_at_the_episode_end():
    env = ActionRepeat(gym.make("CartPole-v1", max_episode_steps=10), repeat=4)
    env.reset(seed=0)
    assert env.step(0)[1] == 4.0
    assert env.step(0)[1] == 4.0
    _, reward, _, truncated, _ = env.step(0)  # only 2 steps left before the time limit
    assert (reward, truncated) == (2.0, True)
    with pytest.raises(ValueError, match="repeat"):
        ActionRepeat(gym.make("CartPole-v1"), repeat=0)


def test_dm_control_cheetah_stack():
    pytest.importorskip("shimmy")
    env = make_dm_control("cheetah-run", action_repeat=2, max_episode_steps=20)
    assert env.action_space == gym.spaces.Discrete(13)  # no-op + 2 * 6 dims
    assert env.observation_space.shape == (17,)  # position (8) + velocity (9), flattened
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    assert _replay_twice_equal(env, [1, 5, 0, 12, 7, 3])
    grid = make_dm_control("cheetah-run", discretize="grid", bins=2)
    assert grid.action_space == gym.spaces.Discrete(2**6)
    assert isinstance(make_dm_control("cheetah-run", discretize=None).action_space, gym.spaces.Box)
    listed = make_dm_control("cheetah-run", actions=np.zeros((2, 6)))
    assert listed.action_space == gym.spaces.Discrete(2)
    with pytest.raises(ValueError, match="unknown dm_control task"):
        make_dm_control("cheetah-fly")


def test_dm_control_vec_env():
    pytest.importorskip("shimmy")
    vec_env = make_dm_control("acrobot-swingup_sparse", n_envs=2, seed=0)
    obs = vec_env.reset()
    assert obs.shape == (2, 6)
    obs, reward, done, _ = vec_env.step(np.array([0, 1]))
    assert obs.shape == (2, 6) and reward.shape == (2,)


def test_atari_stack_defaults_follow_muzero():
    pytest.importorskip("ale_py")
    env = make_atari("MsPacman")
    assert env.observation_space.shape == (32 * 3, 96, 96)  # 32 RGB frames, channel-first
    assert env.observation_space.dtype == np.uint8
    assert env.action_space == gym.spaces.Discrete(9)
    small = make_atari("MsPacman", grayscale=True, frame_stack=4, screen_size=84, repeat_action_probability=0.25)
    assert small.observation_space.shape == (4, 84, 84)
    check_env(small, skip_render_check=True)
    small.reset(seed=0)
    for _ in range(3):
        small.step(0)
    assert _replay_twice_equal(small, [1, 2, 3, 4, 1, 2, 3, 4] * 3)  # sticky actions, frame stack, max-pool buffer
    vec_env = make_atari("MsPacman", grayscale=True, frame_stack=2, n_envs=2, seed=0)
    assert vec_env.reset().shape == (2, 2, 96, 96)
    with pytest.raises(ValueError, match="unknown Atari game"):
        make_atari("NotAGame")
