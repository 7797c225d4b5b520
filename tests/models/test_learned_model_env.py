"""LearnedModelEnv: an env inside a learned model (latent observations, model rewards and terminations)."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium.utils.env_checker import check_env

from gym_planning.models.learned_model_env import LearnedModelEnv
from gym_planning.search import RecurrentOutput, RootOutput


class TinyMlpModel(th.nn.Module):
    """A SearchModel with torch embeddings: latent [B, 3]; reward = latent[0]; discount = sigmoid(latent[1] * 10)."""

    def __init__(self, obs_dim: int = 4, num_actions: int = 2, latent: int = 3):
        super().__init__()
        th.manual_seed(0)
        self.encode = th.nn.Linear(obs_dim, latent)
        self.dynamics = th.nn.Linear(latent + num_actions, latent)
        self.policy = th.nn.Linear(latent, num_actions)
        self.num_actions = num_actions

    def _heads(self, hidden):
        return self.policy(hidden), hidden.sum(dim=1)

    def root(self, observation):
        hidden = th.tanh(self.encode(th.as_tensor(np.asarray(observation), dtype=th.float32)))
        logits, value = self._heads(hidden)
        return RootOutput(logits, value, hidden)

    def recurrent(self, embedding, action):
        one_hot = th.nn.functional.one_hot(th.as_tensor(action), self.num_actions).float()
        hidden = th.tanh(self.dynamics(th.cat([embedding, one_hot], dim=1)))
        logits, value = self._heads(hidden)
        discount = th.sigmoid(hidden[:, 1] * 10)
        return RecurrentOutput(hidden[:, 0], discount, logits, value), hidden


def test_env_follows_the_model_and_passes_check_env():
    model = TinyMlpModel()
    observations = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    env = LearnedModelEnv(model, observations, horizon=5)
    assert env.action_space == gym.spaces.Discrete(2)
    assert env.observation_space.shape == (3,)
    check_env(env, skip_render_check=True)
    latent, info = env.reset(seed=0)
    with th.no_grad():  # the episode starts at the embedding of one of the real observations
        assert any(np.allclose(latent, model.root(o[None]).embedding[0].numpy()) for o in observations)
        output, hidden = model.recurrent(th.as_tensor(latent)[None], np.array([1]))
    obs, reward, terminated, truncated, info = env.step(1)
    np.testing.assert_allclose(obs, hidden[0].numpy(), rtol=1e-6)
    assert reward == pytest.approx(float(output.reward[0]))
    assert terminated == (float(output.discount[0]) < 0.5)
    assert info["discount"] == pytest.approx(float(output.discount[0]))


def test_episodes_terminate_on_the_models_discount_or_truncate_at_the_horizon():
    model = TinyMlpModel()
    env = LearnedModelEnv(model, gym.make("CartPole-v1"), horizon=4, termination_threshold=1.1)
    env.reset(seed=0)
    assert env.step(0)[2] is True  # discount < 1.1 always: terminates at once
    env = LearnedModelEnv(model, gym.make("CartPole-v1"), horizon=4, termination_threshold=-1.0)
    env.reset(seed=0)
    flags = [env.step(0)[2:4] for _ in range(4)]
    assert flags == [(False, False), (False, False), (False, False), (False, True)]
    np.testing.assert_array_equal(env.action_masks(), [True, True])


def test_learned_model_env_with_a_muzero_agent():
    from stable_baselines3.common.env_util import make_vec_env

    from gym_planning.agents.muzero import MuZero

    vec_env = make_vec_env("CartPole-v1", n_envs=1)
    muzero = MuZero("MlpPolicy", vec_env, seed=0, policy_kwargs=dict(network_kwargs=dict(latent_dim=8)))
    env = LearnedModelEnv(muzero, gym.make("CartPole-v1"), horizon=10)
    assert env.observation_space.shape == (8,)
    check_env(env, skip_render_check=True)


def test_bad_inputs_get_clear_errors():
    with pytest.raises(TypeError, match="SearchModel"):
        LearnedModelEnv(object(), np.zeros((2, 4)))
    with pytest.raises(TypeError, match="observation_source"):
        LearnedModelEnv(TinyMlpModel(), "observations.npy")
    with pytest.raises(ValueError, match="horizon"):
        LearnedModelEnv(TinyMlpModel(), np.zeros((2, 4)), horizon=0)
    env = LearnedModelEnv(TinyMlpModel(), np.zeros((2, 4), np.float32))
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not in"):
        env.step(5)
