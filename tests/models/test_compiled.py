"""The Numba copy of the MLP MuZero network against the torch network it copies."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv

from gym_planning.agents.muzero import MuZero
from gym_planning.models.compiled import CompiledMlpModel, NotCompilableError, compiled_recurrent
from gym_planning.models.networks import ConvMuZeroNetwork, MlpMuZeroNetwork
from gym_planning.models.support import inverse_scalar_transform
from gym_planning.search import JitRecurrentFn, muzero_policy


def _random_network(observation_space, num_actions, hidden_sizes, latent_dim, seed, value_support=20, reward_support=5):
    th.manual_seed(seed)
    network = MlpMuZeroNetwork(
        observation_space, num_actions, value_support_size=value_support, reward_support_size=reward_support,
        discount=0.95, latent_dim=latent_dim, hidden_sizes=hidden_sizes,
    )  # fmt: skip
    # Random weights everywhere (the value and reward heads start at zero, which would hide errors there).
    with th.no_grad():
        for parameter in network.parameters():
            parameter.normal_(0.0, 0.4)
    return network


def _float64_reference(network, observation, embedding, action):
    """The torch network's own modules run in float64 (the support expectation through the library's
    inverse transform): what the compiled copy computes, without float32 rounding in between."""
    net = copy.deepcopy(network).double()

    def scalar(logits, support_size):
        bins = th.arange(-support_size, support_size + 1, dtype=th.float64)
        return inverse_scalar_transform((th.softmax(logits, dim=-1) * bins).sum(dim=-1))

    with th.no_grad():
        hidden = net.representation(net.preprocess(observation).double())
        policy_logits, value_logits = net.prediction(hidden)
        next_hidden, reward_logits = net.dynamics(th.as_tensor(embedding, dtype=th.float64), th.as_tensor(action))
        next_policy, next_value = net.prediction(next_hidden)
    return dict(
        root_logits=policy_logits, root_value=scalar(value_logits, net.value_support_size), root_embedding=hidden,
        new_embedding=next_hidden, reward=scalar(reward_logits, net.reward_support_size), prior_logits=next_policy,
        value=scalar(next_value, net.value_support_size),
    )  # fmt: skip


def _compiled_step(model, embedding, action):
    batch_size, latent = embedding.shape
    num_actions = model.network.num_actions
    out = dict(
        reward=np.zeros(batch_size), discount=np.zeros(batch_size), prior_logits=np.zeros((batch_size, num_actions)),
        value=np.zeros(batch_size), legal_mask=np.ones((batch_size, num_actions), np.bool_),
        new_embedding=np.zeros((batch_size, latent)),
    )  # fmt: skip
    compiled_recurrent(model.params, np.ascontiguousarray(embedding, np.float64), action, *out.values())
    return out


def _assert_close(compiled, torch_value, what, tolerance=1e-5):
    expected = torch_value.detach().double().numpy()
    np.testing.assert_allclose(compiled, expected, rtol=tolerance, atol=tolerance, err_msg=what)


@settings(max_examples=25, deadline=None)
@given(
    hidden_sizes=st.sampled_from([(), (8,), (32,), (64, 16), (128,)]),
    latent_dim=st.sampled_from([1, 4, 32]),
    num_actions=st.integers(1, 9),
    obs_dim=st.integers(1, 6),
    batch_size=st.integers(1, 12),
    seed=st.integers(0, 1000),
)
def test_compiled_root_and_step_agree_with_torch(hidden_sizes, latent_dim, num_actions, obs_dim, batch_size, seed):
    space = spaces.Box(-2.0, 2.0, (obs_dim,), np.float32)
    network = _random_network(space, num_actions, hidden_sizes, latent_dim, seed)
    model = CompiledMlpModel(network)
    rng = np.random.default_rng(seed)
    observation = rng.uniform(-2.0, 2.0, (batch_size, obs_dim)).astype(np.float32)

    root = model.root(observation)
    action = rng.integers(0, num_actions, batch_size)
    compiled = _compiled_step(model, root.embedding, action)
    reference = _float64_reference(network, observation, root.embedding, action)
    for name, value in (("root_logits", root.prior_logits), ("root_value", root.value), ("root_embedding", root.embedding)):
        _assert_close(value, reference[name], name)
    for name in ("new_embedding", "reward", "prior_logits", "value"):
        _assert_close(compiled[name], reference[name], name)

    # Against the float32 torch network itself: equal up to float32 rounding, which the value
    # transform's inverse amplifies (its slope grows with the value).
    torch_root = network.root(observation)
    output, next_hidden = network.recurrent(th.as_tensor(root.embedding, dtype=th.float32), action)
    _assert_close(root.prior_logits, torch_root.prior_logits, "float32 prior logits")
    _assert_close(root.value, torch_root.value, "float32 value", tolerance=1e-4)
    _assert_close(compiled["new_embedding"], next_hidden, "float32 next hidden state")
    _assert_close(compiled["reward"], output.reward, "float32 reward", tolerance=1e-4)
    np.testing.assert_array_equal(compiled["discount"], np.full(batch_size, 0.95))
    assert compiled["legal_mask"].all()


def test_discrete_observations_are_one_hot_as_in_torch():
    network = _random_network(spaces.Discrete(7), 3, (16,), 8, seed=3)
    observation = np.array([0, 6, 3, 3])
    root, torch_root = CompiledMlpModel(network).root(observation), network.root(observation)
    _assert_close(root.prior_logits, torch_root.prior_logits, "prior logits")
    _assert_close(root.value, torch_root.value, "value", tolerance=1e-4)


def test_refresh_copies_weights_changed_in_place_and_only_then():
    network = _random_network(spaces.Box(-1, 1, (3,), np.float32), 2, (16,), 8, seed=0)
    model = CompiledMlpModel(network)
    observation = np.ones((2, 3), np.float32)
    before = model.root(observation).value.copy()
    params_before = model.params.copy()
    model.refresh()
    np.testing.assert_array_equal(model.params, params_before)  # nothing changed: nothing copied

    optimizer = th.optim.SGD(network.parameters(), lr=0.5)
    network.root(observation)  # no grad; take a real gradient step instead:
    _, _, value_logits = network.initial_inference(observation)
    value_logits.sum().backward()
    optimizer.step()
    assert not np.allclose(model.root(observation).value, network.root(observation).value.numpy(), atol=1e-4)

    model.refresh()
    after = model.root(observation).value
    _assert_close(after, network.root(observation).value, "value after refresh", tolerance=1e-4)
    assert not np.allclose(after, before)


def test_search_with_the_compiled_copy_matches_search_with_torch():
    network = _random_network(spaces.Box(-1, 1, (4,), np.float32), 3, (32,), 16, seed=7)
    model = CompiledMlpModel(network)
    observation = np.random.default_rng(0).uniform(-1, 1, (6, 4)).astype(np.float32)
    compiled = muzero_policy(model.root(observation), model.recurrent_fn, 24, rng=0, dirichlet_fraction=0.0)
    torch_search = muzero_policy(network.root(observation), network.recurrent, 24, rng=0, dirichlet_fraction=0.0)
    np.testing.assert_allclose(compiled.root_value, torch_search.root_value, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(compiled.tree.children_visits, torch_search.tree.children_visits)
    assert isinstance(model.recurrent_fn, JitRecurrentFn)


class _BlankImages(gym.Env):
    """Image observations [3, 16, 16], two actions: enough to build a CnnPolicy."""

    observation_space = spaces.Box(0, 255, (3, 16, 16), np.uint8)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros((3, 16, 16), np.uint8), {}

    def step(self, action):
        return np.zeros((3, 16, 16), np.uint8), 0.0, True, False, {}


class _ScaledMlp(MlpMuZeroNetwork):
    """A subclass may compute differently: it must not be compiled as if it were the base class."""


def test_networks_it_cannot_copy_are_refused_by_name():
    box = spaces.Box(0, 255, (3, 16, 16), np.uint8)
    conv = ConvMuZeroNetwork(box, 4, value_support_size=5, reward_support_size=3, discount=0.9)
    with pytest.raises(NotCompilableError, match="only MlpMuZeroNetwork can run compiled; got ConvMuZeroNetwork"):
        CompiledMlpModel(conv)
    sub = _ScaledMlp(spaces.Box(-1, 1, (2,)), 2, value_support_size=5, reward_support_size=3, discount=0.9)
    with pytest.raises(NotCompilableError, match="got _ScaledMlp"):
        CompiledMlpModel(sub)
    custom = MlpMuZeroNetwork(spaces.Box(-1, 1, (2,)), 2, value_support_size=5, reward_support_size=3, discount=0.9)
    custom.policy_net = th.nn.Sequential(th.nn.Linear(64, 32), th.nn.Tanh(), th.nn.Linear(32, 2))
    with pytest.raises(NotCompilableError, match=r"policy_net\[1:3\] is not LayerNorm"):
        CompiledMlpModel(custom)


def test_muzero_inference_modes():
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    assert MuZero("MlpPolicy", env, seed=0)._compiled is not None  # auto: compiled where it can
    assert MuZero("MlpPolicy", env, seed=0, inference="torch")._compiled is None
    with pytest.raises(ValueError, match="inference must be 'auto', 'numba' or 'torch'; got 'jax'"):
        MuZero("MlpPolicy", env, inference="jax")

    image_env = DummyVecEnv([_BlankImages])
    assert MuZero("CnnPolicy", image_env, seed=0)._compiled is None  # auto: documented fallback to torch
    with pytest.raises(ValueError, match="inference='numba' cannot compile this policy's network: only MlpMuZeroNetwork"):
        MuZero("CnnPolicy", image_env, inference="numba")


def test_compiled_and_torch_agents_act_alike():
    """Same seed, same weights: the compiled search and the torch search pick the same actions."""
    env = make_vec_env("CartPole-v1", n_envs=4, seed=1)
    compiled = MuZero("MlpPolicy", env, seed=1, inference="numba")
    torch_model = MuZero("MlpPolicy", env, seed=1, inference="torch")
    torch_model.policy.load_state_dict(compiled.policy.state_dict())
    with th.no_grad():
        for parameter in compiled.policy.network.parameters():
            parameter.add_(th.randn_like(parameter) * 0.3)
    torch_model.policy.load_state_dict(compiled.policy.state_dict())
    observation = env.reset()
    actions_compiled, _ = compiled.predict(observation, deterministic=True)
    actions_torch, _ = torch_model.predict(observation, deterministic=True)
    np.testing.assert_array_equal(actions_compiled, actions_torch)


def test_fused_optimizer_steps_reach_the_copy_through_mark_stale():
    """A fused Adam step leaves torch's version counters alone: only mark_stale() makes refresh() copy."""
    network = _random_network(spaces.Box(-1, 1, (3,), np.float32), 2, (16,), 8, seed=1)
    model = CompiledMlpModel(network)
    optimizer = th.optim.Adam(network.parameters(), lr=0.1, fused=True)
    observation = np.ones((2, 3), np.float32)
    network.initial_inference(observation)[2].sum().backward()
    optimizer.step()
    model.refresh()
    assert not np.allclose(model.root(observation).value, network.root(observation).value.numpy(), atol=1e-4)
    model.mark_stale()
    model.refresh()
    _assert_close(model.root(observation).value, network.root(observation).value, "value after mark_stale", 1e-4)


def test_muzero_searches_with_the_trained_weights():
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = MuZero("MlpPolicy", env, seed=0, learning_starts=64, batch_size=16, num_simulations=4)
    model.learn(200)
    assert model._n_updates > 0
    observation = env.reset()
    root, torch_root = model._root(observation), model.policy.network.root(observation)
    _assert_close(root.value, torch_root.value, "value after training", tolerance=1e-4)
    _assert_close(root.prior_logits, torch_root.prior_logits, "prior logits after training")
