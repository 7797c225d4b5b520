"""``greedy_policy``: the NumPy copy of an SB3 agent's network acts as ``predict(obs, deterministic=True)`` does."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.env_util import make_vec_env

from gym_planning.agents import SearchAgent
from gym_planning.models import SimulatorModel
from gym_planning.models.rollout_policy import greedy_policy, numpy_mlp

# CartPole's termination box (x, theta) and a wide range of velocities: states on both sides of every policy's
# decision boundary, including many it would never visit.
_HIGH = np.array([2.4, 3.0, 0.21, 3.0], np.float32)


def _states(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-_HIGH, _HIGH, (n, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def ppo() -> PPO:
    th.manual_seed(0)
    return PPO("MlpPolicy", "CartPole-v1", n_steps=128, batch_size=64, n_epochs=2, seed=0, device="cpu").learn(512)


@pytest.fixture(scope="module")
def dqn() -> DQN:
    # Untrained: a few hundred steps of DQN push every Q toward one action; this random net (seed 1) splits the states.
    return DQN(
        "MlpPolicy", "CartPole-v1", seed=1, device="cpu", policy_kwargs=dict(net_arch=[32, 32], activation_fn=th.nn.ReLU)
    )


@pytest.mark.parametrize("agent_name", ["ppo", "dqn"])
def test_greedy_policy_chooses_the_actions_of_predict(agent_name: str, request: pytest.FixtureRequest) -> None:
    agent = request.getfixturevalue(agent_name)
    policy = greedy_policy(agent)
    assert policy.__name__ == "greedy"  # the NumPy copy, not the predict fallback
    for seed in range(4):  # batches of 8 as the simulator asks, and one large batch
        states = _states(8, seed)
        np.testing.assert_array_equal(policy(states), agent.predict(states, deterministic=True)[0])
    states = _states(5000, 10)
    fast, expected = policy(states), agent.predict(states, deterministic=True)[0]
    assert 0.05 < expected.mean() < 0.95, "the states should cover both actions"
    np.testing.assert_array_equal(fast, expected)


def test_an_unsupported_layer_falls_back_to_predict() -> None:
    agent = PPO("MlpPolicy", "CartPole-v1", policy_kwargs=dict(activation_fn=th.nn.ELU), seed=0, device="cpu")
    assert numpy_mlp(agent.policy.mlp_extractor.policy_net) is None
    policy = greedy_policy(agent)
    assert policy.__name__ == "predicted"
    states = _states(64, 0)
    np.testing.assert_array_equal(policy(states), agent.predict(states, deterministic=True)[0])
    with pytest.raises(TypeError, match="needs an agent with SB3's predict"):
        greedy_policy(object())


def test_numpy_mlp_matches_torch() -> None:
    th.manual_seed(0)
    net = th.nn.Sequential(th.nn.Flatten(), th.nn.Linear(6, 16), th.nn.ReLU(), th.nn.Linear(16, 3), th.nn.Tanh())
    x = np.random.default_rng(0).normal(size=(32, 2, 3)).astype(np.float32)
    with th.no_grad():
        expected = net(th.as_tensor(x)).numpy()
    np.testing.assert_allclose(numpy_mlp(net)(x), expected, rtol=1e-5, atol=1e-6)


def test_the_search_with_the_fast_rollouts_is_the_search_with_predict(ppo: PPO) -> None:
    """Same rollout actions, so the same leaf values, trees and chosen actions at every step of an episode."""

    def slow(observation: np.ndarray) -> np.ndarray:
        return ppo.predict(observation, deterministic=True)[0]

    vec_env = make_vec_env("CartPole-v1", n_envs=2, seed=3)
    observation = vec_env.reset()
    agents = [
        SearchAgent(
            ppo,
            SimulatorModel(vec_env, discount=ppo.gamma, rollout_steps=10, rollout_policy=policy),
            num_simulations=8,
            seed=0,
        )  # fmt: skip
        for policy in (greedy_policy(ppo), slow)
    ]
    for _ in range(8):
        actions = [agent.predict(observation, deterministic=True)[0] for agent in agents]
        np.testing.assert_array_equal(actions[0], actions[1])
        np.testing.assert_array_equal(agents[0].last_search.root_value, agents[1].last_search.root_value)
        observation, *_ = vec_env.step(actions[0])
