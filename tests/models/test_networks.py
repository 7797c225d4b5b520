import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from gym_planning.models import SearchModel
from gym_planning.models.networks import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    ConvMuZeroNetwork,
    GaussianMlpMuZeroNetwork,
    MlpMuZeroNetwork,
    gaussian_log_prob,
    gaussian_parameters,
    normalize_hidden_state,
    scale_gradient,
)
from gym_planning.search import gumbel_muzero_policy, muzero_policy

SUPPORT = dict(value_support_size=5, reward_support_size=3, discount=0.9)


def test_normalized_hidden_state_spans_unit_interval():
    hidden = normalize_hidden_state(th.randn(4, 7) * 10)
    assert th.allclose(hidden.min(dim=1).values, th.zeros(4))
    assert th.allclose(hidden.max(dim=1).values, th.ones(4), atol=1e-4)


def test_scale_gradient_halves_gradient_only():
    x = th.ones(3, requires_grad=True)
    y = scale_gradient(x * 2, 0.5)
    assert th.equal(y, th.full((3,), 2.0))
    y.sum().backward()
    assert th.allclose(x.grad, th.ones(3))


def test_mlp_network_is_a_search_model_with_zero_initial_values():
    net = MlpMuZeroNetwork(spaces.Box(-1, 1, (4,), np.float32), 3, latent_dim=8, hidden_sizes=(16,), **SUPPORT)
    assert isinstance(net, SearchModel)
    root = net.root(np.zeros((5, 4), np.float32))
    assert root.prior_logits.shape == (5, 3) and root.embedding.shape == (5, 8)
    # Zero-initialised value / reward heads: every prediction starts at exactly 0.
    assert th.allclose(root.value, th.zeros(5), atol=1e-6)
    out, nxt = net.recurrent(root.embedding, np.array([0, 1, 2, 0, 1]))
    assert th.allclose(out.reward, th.zeros(5), atol=1e-6) and th.allclose(out.discount, th.full((5,), 0.9))
    assert nxt.shape == (5, 8) and isinstance(nxt, th.Tensor)


def test_discrete_observations_are_one_hot():
    net = MlpMuZeroNetwork(spaces.Discrete(6), 2, latent_dim=4, hidden_sizes=(8,), **SUPPORT)
    assert net.preprocess(np.array([0, 5])).tolist() == [[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1]]


@pytest.mark.parametrize("downsample, shape, latent", [(True, (3, 64, 64), (16, 4, 4)), (False, (2, 7, 7), (16, 7, 7))])
def test_conv_network_shapes(downsample, shape, latent):
    space = spaces.Box(0, 255, shape, np.uint8)
    net = ConvMuZeroNetwork(space, 4, channels=16, num_blocks=1, downsample=downsample, **SUPPORT)
    assert net.latent_shape == latent
    root = net.root(np.zeros((2, *shape), np.uint8))
    out, nxt = net.recurrent(root.embedding, np.array([3, 0]))
    assert nxt.shape == (2, *latent) and out.prior_logits.shape == (2, 4)


@pytest.mark.parametrize(
    "shape, latent, halvings",
    [
        ((3, 10, 10), (8, 10, 10), 0),  # Sokoban: one pixel per cell, kept whole
        ((3, 15, 19), (8, 8, 10), 1),  # Minipacman
        ((4, 64, 64), (8, 8, 8), 3),
        ((12, 84, 84), (8, 6, 6), 4),  # DQN's Atari frames
        ((96, 96, 96), (8, 6, 6), 4),  # make_atari's default: 32 RGB frames, MuZero's 6 x 6 latent
    ],
)
def test_conv_network_chooses_downsampling_from_the_observation_size(shape, latent, halvings):
    net = ConvMuZeroNetwork(spaces.Box(0, 255, shape, np.uint8), 5, channels=8, **SUPPORT)
    assert (net.halvings, net.latent_shape) == (halvings, latent)
    root = net.root(np.zeros((2, *shape), np.uint8))
    assert net.recurrent(root.embedding, np.array([4, 0]))[1].shape == (2, *latent)


def test_conv_network_refuses_a_downsampling_that_leaves_no_layout():
    sokoban = spaces.Box(0, 255, (3, 10, 10), np.uint8)
    with pytest.raises(ValueError, match=r"downsample=True shrinks 10x10 observations to a 1x1 latent.*'auto' \(0 halvings"):
        ConvMuZeroNetwork(sokoban, 9, downsample=True, **SUPPORT)
    with pytest.raises(ValueError, match="integer 0..4"):
        ConvMuZeroNetwork(sokoban, 9, downsample=5, **SUPPORT)
    assert ConvMuZeroNetwork(sokoban, 9, channels=4, downsample=1, **SUPPORT).latent_shape == (4, 5, 5)


def test_full_downsampling_keeps_muzero_atari_layers():
    # Four halvings build MuZero's Atari tower with the parameter names models saved before "auto" had.
    net = ConvMuZeroNetwork(spaces.Box(0, 255, (3, 96, 96), np.uint8), 4, channels=4, downsample=True, **SUPPORT)
    kinds = [type(layer).__name__ for layer in net.representation_net]
    assert kinds == ["Conv2d", "ReLU", "Sequential", "Conv2d", "ReLU", "Sequential", "AvgPool2d", "Sequential", "AvgPool2d"]


@pytest.mark.parametrize("policy", [muzero_policy, gumbel_muzero_policy])
def test_search_runs_on_the_network(policy):
    net = MlpMuZeroNetwork(spaces.Box(-1, 1, (4,), np.float32), 2, latent_dim=8, hidden_sizes=(16,), **SUPPORT)
    out = policy(net.root(np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)), net.recurrent, 6, rng=0)
    assert out.action.shape == (3,)
    assert np.allclose(out.action_weights.sum(axis=1), 1.0)


def _gaussian_network(action_dim=2):
    return GaussianMlpMuZeroNetwork(
        spaces.Box(-1, 1, (3,), np.float32), action_dim, latent_dim=8, hidden_sizes=(16,), **SUPPORT
    )


def test_gaussian_network_shapes_and_action_conditioned_dynamics():
    net = _gaussian_network(action_dim=2)
    hidden = net.representation(net.preprocess(np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)))
    policy_output, value_logits = net.prediction(hidden)
    assert policy_output.shape == (5, 4) and value_logits.shape == (5, 11)
    low, high = net.transition(hidden, -th.ones(5, 2)), net.transition(hidden, th.ones(5, 2))
    assert low.shape == (5, 8) and not th.allclose(low, high)  # the action vector reaches the dynamics
    with pytest.raises(TypeError, match="sampled_search"):
        net.recurrent(hidden, np.zeros(5, np.int64))


def test_gaussian_log_prob_matches_torch_distributions():
    generator = th.Generator().manual_seed(0)
    policy_output = th.randn(4, 3, 2 * 5, generator=generator) * 3  # [B, K+1, 2D], raw log-std well outside the range
    samples = th.randn(4, 3, 6, 5, generator=generator)  # [B, K+1, C, D]
    mean, log_std = gaussian_parameters(policy_output)
    assert (log_std >= LOG_STD_MIN).all() and (log_std <= LOG_STD_MAX).all()
    assert log_std.min() < LOG_STD_MIN + 0.5 and log_std.max() > LOG_STD_MAX - 0.5  # the range is used, not a point
    expected = th.distributions.Normal(mean.unsqueeze(-2), log_std.exp().unsqueeze(-2)).log_prob(samples).sum(-1)
    assert th.allclose(gaussian_log_prob(policy_output, samples), expected, atol=1e-5)


def test_sampled_root_densities_agree_with_the_torch_head():
    net = _gaussian_network(action_dim=2)
    observation = np.random.default_rng(1).normal(size=(3, 3)).astype(np.float32)
    root = net.sampled_root(observation, 6, rng=np.random.default_rng(2))
    assert root.candidates.shape == (3, 6, 2) and root.log_pi.shape == (3, 6) and root.value.shape == (3,)
    _, policy_output, _ = net.initial_inference(observation)
    torch_log_pi = gaussian_log_prob(policy_output, th.as_tensor(root.candidates, dtype=th.float32))
    np.testing.assert_allclose(root.log_pi, torch_log_pi.detach().numpy(), rtol=1e-4, atol=1e-4)
    # The widened quarter of the samples (EfficientZero V2) is drawn from a wider beta than pi.
    assert not np.allclose(root.log_beta, root.log_pi)
    step, next_hidden = net.sampled_recurrent_fn(6, rng=np.random.default_rng(3))(root.embedding, root.candidates[:, 0])
    assert step.candidates.shape == (3, 6, 2) and next_hidden.shape == (3, 8)
    np.testing.assert_allclose(step.discount, 0.9)
