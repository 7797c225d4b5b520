"""SearchAgent: batched search over any SearchModel, guided by SB3 agents; works with evaluate_policy."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from gym_planning.agents.search_agent import SearchAgent, as_guide
from gym_planning.models.simulator import SimulatorModel
from gym_planning.search import RecurrentOutput, RootOutput


class DelayedRewardModel:
    """A hand-written SearchModel: two steps, then the episode ends.

    Embedding ``[B, 2]`` = (step, bonus pending). Action 0 pays 1 now; action 1 pays 0 now but makes the next
    step pay 3 more. Best play: 1 then 0 (return 4) against 0 then 0 (return 2). The prior prefers action 0;
    the value head is exact (the best return from each state).
    """

    prior = np.array([1.0, 0.0])

    def _value(self, embedding):
        step, pending = embedding[:, 0], embedding[:, 1]
        return np.where(step >= 2, 0.0, np.where(step == 1, 1.0 + 3.0 * pending, 4.0))

    def root(self, observation):
        batch = len(observation)
        embedding = np.zeros((batch, 2))
        return RootOutput(np.tile(self.prior, (batch, 1)), self._value(embedding), embedding)

    def recurrent(self, embedding, action):
        step, pending = embedding[:, 0], embedding[:, 1]
        reward = (action == 0) + 3.0 * pending
        child = np.stack([step + 1, (action == 1).astype(float)], axis=1)
        discount = np.where(step + 1 >= 2, 0.0, 1.0)
        batch = len(action)
        return RecurrentOutput(reward, discount, np.tile(self.prior, (batch, 1)), self._value(child)), child


@pytest.mark.parametrize("search", ["muzero", "gumbel"])
def test_search_overrules_a_misleading_prior_with_any_search_model(search):
    observations = np.zeros((3, 1))
    # pUCT needs more simulations than Gumbel search to leave the prior's action (visits 12/20 at 32, 8/0 at 8).
    simulations = 32 if search == "muzero" else 4
    planner = SearchAgent(None, DelayedRewardModel(), num_simulations=simulations, search=search, seed=0)
    action, state = planner.predict(observations, deterministic=True)
    np.testing.assert_array_equal(action, [1, 1, 1])
    assert state is None
    q = planner.last_search.tree.qvalues()
    assert (q[:, 1] > q[:, 0] + 1.5).all()  # about 0 + (1 + 3) against 1 + 1
    # One simulation cannot see the delayed bonus: the prior's action wins.
    shallow = SearchAgent(None, DelayedRewardModel(), num_simulations=1, search=search, seed=0)
    np.testing.assert_array_equal(shallow.predict(observations, deterministic=True)[0], [0, 0, 0])


def test_uniform_guide_with_rollouts_reaches_long_cartpole_episodes():
    vec_env = make_vec_env("CartPole-v1", n_envs=2, seed=0, env_kwargs=dict(max_episode_steps=200))

    def uniform(obs):
        return np.zeros((len(obs), 2)), np.zeros(len(obs))

    blind = SearchAgent(uniform, SimulatorModel(vec_env), num_simulations=1, seed=0)
    blind_return, _ = evaluate_policy(blind, vec_env, n_eval_episodes=2)
    planner = SearchAgent(uniform, SimulatorModel(vec_env, rollout_steps=20, seed=0), num_simulations=8, seed=0)
    planned_return, _ = evaluate_policy(planner, vec_env, n_eval_episodes=2)
    assert blind_return < 30
    assert planned_return >= 180


def test_search_improves_an_untrained_dqn_guide():
    vec_env = make_vec_env("CartPole-v1", n_envs=2, seed=1, env_kwargs=dict(max_episode_steps=100))
    dqn = DQN("MlpPolicy", vec_env, policy_kwargs=dict(net_arch=[16]), seed=1)
    alone, _ = evaluate_policy(dqn, vec_env, n_eval_episodes=2)
    simulator = SimulatorModel(vec_env, rollout_steps=10, discount=dqn.gamma, seed=1)
    assert simulator.guide is None
    agent = SearchAgent(dqn, simulator, num_simulations=8)
    assert agent.model is simulator and simulator.guide is dqn  # the simulator took the agent's guide
    searched, _ = evaluate_policy(agent, vec_env, n_eval_episodes=2)
    assert alone < 50
    assert searched >= 80


def test_sb3_guides_give_logits_and_values_from_their_heads():
    vec_env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    obs = vec_env.reset()
    ppo = PPO("MlpPolicy", vec_env, n_steps=16, batch_size=16, seed=0)
    logits, value = as_guide(ppo)(obs)
    with th.no_grad():
        tensor = ppo.policy.obs_to_tensor(obs)[0]
        probs = ppo.policy.get_distribution(tensor).distribution.probs.numpy()
        expected_value = ppo.policy.predict_values(tensor).numpy().ravel()
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), probs, rtol=1e-5)
    np.testing.assert_allclose(value, expected_value, rtol=1e-5)
    dqn = DQN("MlpPolicy", vec_env, seed=0)
    logits, value = as_guide(dqn, q_temperature=2.0)(obs)
    with th.no_grad():
        q = dqn.q_net(dqn.policy.obs_to_tensor(obs)[0]).numpy()
    np.testing.assert_allclose(logits, q / 2.0, rtol=1e-5)
    np.testing.assert_allclose(value, q.max(1), rtol=1e-5)


def test_qrdqn_guide_uses_the_mean_quantile():
    sb3_contrib = pytest.importorskip("sb3_contrib")
    vec_env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    obs = vec_env.reset()
    qrdqn = sb3_contrib.QRDQN("MlpPolicy", vec_env, seed=0)
    logits, value = as_guide(qrdqn)(obs)
    with th.no_grad():
        q = qrdqn.policy.quantile_net(qrdqn.policy.obs_to_tensor(obs)[0]).mean(1).numpy()
    np.testing.assert_allclose(logits, q, rtol=1e-5)
    np.testing.assert_allclose(value, q.max(1), rtol=1e-5)


def test_search_with_a_muzero_agent_and_its_learned_model():
    from gym_planning.agents.muzero import MuZero

    vec_env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    muzero = MuZero("MlpPolicy", vec_env, seed=0, num_simulations=4, policy_kwargs=dict(network_kwargs=dict(latent_dim=8)))
    # Untrained, every value is about 0 and the priors tie (the search would take action 0); a policy head biased
    # towards action 1 must steer a search that uses the agent's own network.
    with th.no_grad():
        muzero.policy.network.policy_net[-1].bias.copy_(th.tensor([0.0, 3.0]))
    agent = SearchAgent(muzero, num_simulations=4, seed=0)  # no model: the agent's learned model
    assert agent.model is muzero.policy.network
    obs = vec_env.reset()
    action, _ = agent.predict(obs, deterministic=True)
    np.testing.assert_array_equal(action, [1, 1])
    np.testing.assert_array_equal(agent.last_search.tree.summary().visit_counts, [[0, 4], [0, 4]])
    np.testing.assert_array_equal(action, muzero.predict(obs, deterministic=True)[0])  # MuZero's own search agrees
    # The same agent as a guide for the true simulator.
    simulator_agent = SearchAgent(muzero, SimulatorModel(vec_env), num_simulations=4, seed=0)
    assert simulator_agent.predict(vec_env.reset(), deterministic=True)[0].shape == (2,)


def test_unbatched_observation_and_explicit_masks():
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    agent = SearchAgent(lambda o: (np.zeros((len(o), 2)), np.zeros(len(o))), SimulatorModel(env), num_simulations=4)
    action, _ = agent.predict(obs, deterministic=True)
    assert np.ndim(action) == 0
    masked, _ = agent.predict(obs, deterministic=True, action_masks=np.array([[False, True]]))
    assert masked == 1


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="needs a model"):
        SearchAgent(lambda o: o)
    with pytest.raises(TypeError, match="SearchModel"):
        SearchAgent(None, object())
    with pytest.raises(ValueError, match="search must be"):
        SearchAgent(None, DelayedRewardModel(), search="alphazero")
    with pytest.raises(ValueError, match="num_simulations"):
        SearchAgent(None, DelayedRewardModel(), num_simulations=0)
    with pytest.raises(TypeError, match="cannot use"):
        as_guide(object())
