"""Issue 16: SearchAgent over SAC / TD3 / PPO with Box actions (Sampled MuZero on the true simulator)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN, PPO, SAC, TD3
from stable_baselines3.common.env_util import make_vec_env

from gym_planning.agents.search_agent import SearchAgent
from gym_planning.models.guides import NUM_SAMPLES, TD3_NOISE_STD, BoxGuideOutput, as_guide
from gym_planning.models.simulator import SimulatorModel
from gym_planning.search import SampledRootOutput
from gym_planning.search.sampled import WIDENED_FRACTION


def _agent(algo: type, env, seed: int = 0):
    """An untrained agent with tiny networks (a fresh policy_kwargs each time: SB3 writes into it)."""
    extra = dict(n_steps=16, batch_size=16) if algo is PPO else {}
    return algo("MlpPolicy", env, seed=seed, policy_kwargs=dict(net_arch=[16]), **extra)


def _normal_log_density(x: np.ndarray, mean: np.ndarray, log_std: np.ndarray) -> np.ndarray:
    """``[B, K]`` log-density of ``x [B, K, D]`` under ``N(mean, exp(log_std)^2)``, ``mean, log_std [B, D]``."""
    z = (x - mean[:, None]) / np.exp(log_std)[:, None]
    return (-0.5 * z**2 - log_std[:, None] - 0.5 * np.log(2 * np.pi)).sum(-1)


def test_sac_guide_samples_its_squashed_gaussian_and_values_with_the_min_critic():
    vec_env = make_vec_env("Pendulum-v1", n_envs=3, seed=0)
    obs = vec_env.reset()
    sac = _agent(SAC, vec_env)
    out = as_guide(sac)(obs, 8, np.random.default_rng(0))
    assert isinstance(out, BoxGuideOutput)
    assert out.candidates.shape == (3, 8, 1) and out.log_pi.shape == out.log_beta.shape == (3, 8)
    assert (np.abs(out.candidates) <= 2.0).all()  # Pendulum's torque bound
    with th.no_grad():
        tensor = sac.policy.obs_to_tensor(obs)[0]
        mean, log_std, _ = sac.actor.get_action_dist_params(tensor)
        greedy = sac.actor(tensor, deterministic=True)
        q = th.cat(sac.critic(tensor, greedy), dim=1).min(1).values.numpy()
    mean, log_std = mean.numpy().astype(np.float64), log_std.numpy().astype(np.float64)
    # Back through SB3's rescaling and tanh: log_pi is the Gaussian's density in pre-tanh space.
    pre_tanh = np.arctanh(np.clip(out.candidates / 2.0, -1 + 1e-12, 1 - 1e-12))
    np.testing.assert_allclose(out.log_pi, _normal_log_density(pre_tanh, mean, log_std), rtol=1e-5, atol=1e-4)
    widened = int(round(WIDENED_FRACTION * 8))
    assert (out.log_beta[:, -widened:] > out.log_pi[:, -widened:]).any()  # the widened draws: beta != pi
    np.testing.assert_allclose(out.value, q, rtol=1e-5)


def test_ppo_guide_clips_its_gaussian_to_the_box_and_uses_the_value_head():
    env = gym.make("MountainCarContinuous-v0")
    obs, _ = env.reset(seed=0)
    ppo = _agent(PPO, env)
    with th.no_grad():
        ppo.policy.log_std.fill_(1.0)  # std e: most samples fall outside [-1, 1] and must be clipped
    out = as_guide(ppo)(obs[None], 64, np.random.default_rng(0))
    assert out.candidates.min() == -1.0 and out.candidates.max() == 1.0
    with th.no_grad():
        expected = ppo.policy.predict_values(ppo.policy.obs_to_tensor(obs[None])[0]).numpy().ravel()
    np.testing.assert_allclose(out.value, expected, rtol=1e-5)


def test_td3_guide_draws_around_the_actor_with_the_documented_noise():
    vec_env = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    obs = vec_env.reset()
    td3 = _agent(TD3, vec_env)
    out = as_guide(td3)(obs, 400, np.random.default_rng(0))
    with th.no_grad():
        tensor = td3.policy.obs_to_tensor(obs)[0]
        actor = td3.actor(tensor).numpy()
    scaled = out.candidates / 2.0  # back to the actor's [-1, 1]
    narrow = scaled[:, : 400 - int(round(WIDENED_FRACTION * 400))]  # drawn from pi = N(actor, 0.1^2)
    np.testing.assert_allclose(narrow.mean(1), actor, atol=0.03)
    np.testing.assert_allclose(narrow.std(1), np.full_like(actor, TD3_NOISE_STD), rtol=0.15)
    # pi is the same Gaussian for every candidate: log_pi is its density at the (unclipped) candidate.
    inside = np.abs(scaled[..., 0]) < 1
    np.testing.assert_allclose(
        out.log_pi[inside], _normal_log_density(scaled, actor, np.full_like(actor, np.log(TD3_NOISE_STD)))[inside], atol=1e-6
    )


@pytest.mark.parametrize("env_id, search", [("Pendulum-v1", "gumbel"), ("MountainCarContinuous-v0", "muzero")])
def test_predict_returns_box_actions_reproducibly_under_a_seed(env_id, search):
    def actions(seed: int, deterministic: bool) -> np.ndarray:
        vec_env = make_vec_env(env_id, n_envs=2, seed=0)
        sac = _agent(SAC, vec_env)
        agent = SearchAgent(sac, SimulatorModel(vec_env, discount=0.9, seed=seed), num_simulations=4, search=search, seed=seed)
        obs, chosen = vec_env.reset(), []
        for _ in range(4):
            action, state = agent.predict(obs, deterministic=deterministic)
            assert state is None and action.shape == (2, 1) and action.dtype == np.float32
            assert vec_env.action_space.contains(action[0]) and vec_env.action_space.contains(action[1])
            chosen.append(action)
            obs, *_ = vec_env.step(action)
        return np.stack(chosen)

    first = actions(seed=1, deterministic=False)
    np.testing.assert_array_equal(first, actions(seed=1, deterministic=False))
    assert not np.array_equal(first, actions(seed=2, deterministic=False))
    np.testing.assert_array_equal(actions(seed=1, deterministic=True), actions(seed=1, deterministic=True))


def test_unbatched_observation_gives_one_action_vector():
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=0)
    agent = SearchAgent(_agent(SAC, env), SimulatorModel(env), num_simulations=2, search="gumbel", num_samples=4, seed=0)
    action, _ = agent.predict(obs, deterministic=True)
    assert action.shape == (1,) and env.action_space.contains(action)
    assert agent.last_search.candidates.shape == (1, 4, 1)
    np.testing.assert_allclose(agent.last_search.action[0], action, rtol=1e-6)  # float64 search, float32 Box


def test_one_step_search_picks_the_cheapest_candidate():
    """Discount 0: a candidate is worth its immediate reward, which on Pendulum is ``-(theta^2 + 0.1 theta_dot^2
    + 0.001 u^2)`` with the state fixed, so the best candidate is the one of least torque ``|u|``. (Gumbel search:
    pUCT's min-max normalisation over the tree squeezes these 0.001 u^2 differences below its prior term.)"""
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=3)

    def uniform_guide(observation, num_samples, rng):  # equal priors: only the values decide
        candidates = rng.uniform(-2.0, 2.0, (len(observation), num_samples, 1))
        zeros = np.zeros((len(observation), num_samples))
        return BoxGuideOutput(candidates, zeros, zeros, np.zeros(len(observation)))

    agent = SearchAgent(
        uniform_guide, SimulatorModel(env, discount=0.0, seed=0), num_simulations=16, search="gumbel", num_samples=4, seed=0
    )
    for _ in range(3):
        action, _ = agent.predict(obs, deterministic=True)
        candidates = agent.last_search.candidates[0, :, 0]
        assert np.abs(action[0]) == pytest.approx(np.abs(candidates).min(), abs=1e-6)
        obs, *_ = env.step(action)


def test_uniform_candidates_without_a_guide_and_rollouts():
    vec_env = make_vec_env("MountainCarContinuous-v0", n_envs=2, seed=0)
    model = SimulatorModel(vec_env, rollout_steps=3, seed=0)
    assert model.num_samples == NUM_SAMPLES
    root = model.root(vec_env.reset())
    assert isinstance(root, SampledRootOutput) and root.candidates.shape == (2, NUM_SAMPLES, 1)
    assert (np.abs(root.candidates) <= 1.0).all()
    # Every rollout step costs -0.1 u^2 with |u| <= 1, nothing else (no goal within 3 steps of the start).
    assert ((root.value <= 0) & (root.value >= -0.3)).all() and (root.value < 0).all()
    action, _ = SearchAgent(None, model, num_simulations=4, search="gumbel", seed=0).predict(vec_env.reset())
    assert action.shape == (2, 1) and (np.abs(action) <= 1.0).all()


class _UnboundedPendulum(gym.ActionWrapper):
    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)

    def action(self, action):
        return np.clip(action, -2.0, 2.0)


def test_unbounded_box_actions_are_refused():
    # (SB3's algorithms refuse such a space themselves; the simulator is where a guide-less search would meet it.)
    env = _UnboundedPendulum(gym.make("Pendulum-v1"))
    with pytest.raises(ValueError, match=r"unbounded Box action space .* needs finite bounds"):
        SimulatorModel(env)


def test_nan_actions_from_the_policy_name_the_agent():
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=0)
    sac = _agent(SAC, env)
    with th.no_grad():
        sac.actor.mu.weight.fill_(float("nan"))
    agent = SearchAgent(sac, SimulatorModel(env), num_simulations=2, search="gumbel")
    with pytest.raises(ValueError, match=r"SAC's policy gave NaN or infinite actions .* for 1 of 1 observations"):
        agent.predict(obs)
    ppo = _agent(PPO, env)
    with th.no_grad():
        ppo.policy.action_net.bias.fill_(float("nan"))
    with pytest.raises(ValueError, match=r"PPO's policy gave NaN"):
        as_guide(ppo)(obs[None], 4, np.random.default_rng(0))
    assert th.distributions.Distribution._validate_args  # torch's own checks are back on

    def nan_guide(observation, num_samples, rng):
        nan = np.full((len(observation), num_samples), np.nan)
        return BoxGuideOutput(nan[..., None], np.zeros_like(nan), np.zeros_like(nan), np.zeros(len(observation)))

    with pytest.raises(ValueError, match=r"the guide nan_guide returned NaN or infinite candidate actions"):
        SearchAgent(nan_guide, SimulatorModel(env), num_simulations=2).predict(obs)


def test_num_samples_on_a_discrete_space_is_refused():
    vec_env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    dqn = DQN("MlpPolicy", vec_env, policy_kwargs=dict(net_arch=[16]))
    with pytest.raises(ValueError, match=r"num_samples=5 is larger than the 2 actions of Discrete\(2\)"):
        SearchAgent(dqn, SimulatorModel(vec_env), num_samples=5)
    with pytest.raises(ValueError, match=r"num_samples=2 applies to Box action spaces"):
        SimulatorModel(vec_env, num_samples=2)
    with pytest.raises(ValueError, match=r"num_samples must be an integer >= 1"):
        SimulatorModel(make_vec_env("Pendulum-v1", n_envs=1), num_samples=0)
    with pytest.raises(ValueError, match=r"action_masks apply to Discrete actions"):
        env = gym.make("Pendulum-v1")
        obs, _ = env.reset(seed=0)
        SearchAgent(None, SimulatorModel(env), num_simulations=2).predict(obs, action_masks=np.ones((1, 2), bool))
