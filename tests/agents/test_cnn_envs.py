"""MuZero's CnnPolicy on the envs it is meant for: Sokoban, Minipacman and Atari frames (real envs, tiny budgets)."""

import gymnasium as gym
import numpy as np
import pytest

import gym_planning  # noqa: F401  (registers the envs)
from gym_planning.agents.muzero import MuZero
from gym_planning.wrappers.suites import make_atari

TINY = dict(
    num_simulations=4,
    learning_starts=16,
    batch_size=8,
    buffer_size=256,
    num_unroll_steps=3,
    td_steps=3,
    value_support_size=3,
    reward_support_size=1,
    policy_kwargs=dict(network_kwargs=dict(channels=8, head_hidden_sizes=(16,))),
)


@pytest.mark.parametrize(
    "env_id, latent", [("gym_planning/Sokoban-v0", (8, 10, 10)), ("gym_planning/Minipacman-v0", (8, 8, 10))]
)
def test_cnn_policy_keeps_a_spatial_latent_and_trains(env_id, latent):
    model = MuZero("CnnPolicy", gym.make(env_id), seed=0, **TINY).learn(24)
    assert model.policy.network.latent_shape == latent
    assert model._n_updates == 2  # replay_ratio 0.25 over the 8 steps after learning_starts
    assert model.replay_buffer.frame_stack is None  # single images: stored whole


def test_atari_with_default_settings_stores_each_frame_once():
    model = MuZero("CnnPolicy", make_atari("ALE/Pong-v5"), seed=0)
    buffer = model.replay_buffer
    assert buffer.frame_stack == 32 and model.policy.network.latent_shape == (32, 6, 6)
    # 100,000 steps of one 96 x 96 RGB frame (2.6 GiB) instead of 32 (82.4 GiB).
    assert buffer.frames.frames.nbytes == 100_000 * 96 * 96 * 3
    model.learn(4)
    newest = buffer.observations_at(np.array([3]), np.array([0]))[0]
    # The stack rebuilt from single frames is the observation the env gave: the next one shifted by a frame.
    np.testing.assert_array_equal(newest[3:], model._last_obs[0, :-3])
    assert len(buffer.frames.keyframes) == 1  # only the episode's first step keeps its older frames


def test_atari_cpu_sized_run_trains():
    env = make_atari("MsPacman", grayscale=True, frame_stack=4, screen_size=64, n_envs=1, seed=0)
    model = MuZero("CnnPolicy", env, seed=0, **TINY).learn(40)
    assert model.replay_buffer.frame_stack == 4 and model.policy.network.latent_shape == (8, 8, 8)
    assert model._n_updates == 6
    assert np.isfinite(model.logger.name_to_value["train/loss"])
