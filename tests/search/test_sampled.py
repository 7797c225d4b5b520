"""Sampled MuZero search (gym_planning.search.sampled): the corrected prior, Gaussian candidates, and the search
over sampled slots checked against the discrete search on an equivalent discrete model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gym_planning.search import (
    RecurrentOutput,
    RootOutput,
    SampledRecurrentOutput,
    SampledRootOutput,
    SearchConfig,
    gaussian_candidates,
    run_policy,
    sampled_prior_logits,
    sampled_search,
)


def test_sampling_from_pi_gives_a_uniform_corrected_prior():
    rng = np.random.default_rng(0)
    mean, log_std = rng.normal(size=(5, 3)), rng.normal(size=(5, 3)) * 0.5
    samples, log_pi, log_beta = gaussian_candidates(mean, log_std, 7, rng=rng, widened_fraction=0.0)
    assert samples.shape == (5, 7, 3)
    np.testing.assert_allclose(sampled_prior_logits(log_pi, log_beta), 0.0)


def test_widened_samples_get_a_prior_that_undoes_the_widening():
    """The corrected prior pi / beta weights samples so that averages under it estimate averages under pi."""
    rng = np.random.default_rng(1)
    mean, log_std = np.array([[0.3]]), np.array([[np.log(0.5)]])
    samples, log_pi, log_beta = gaussian_candidates(mean, log_std, 20_000, rng=rng, widened_fraction=0.5)
    logits = sampled_prior_logits(log_pi, log_beta)
    weights = np.exp(logits[0]) / np.exp(logits[0]).sum()
    x = samples[0, :, 0]
    assert np.mean(x**2) > 0.3**2 + 0.25 * 1.5  # the raw samples are wider than pi (variance 0.25)
    np.testing.assert_allclose(np.sum(weights * x), 0.3, atol=0.02)
    np.testing.assert_allclose(np.sum(weights * (x - 0.3) ** 2), 0.25, rtol=0.05)


def test_mixture_density_matches_its_formula():
    rng = np.random.default_rng(2)
    mean, log_std = np.array([[1.0, -1.0]]), np.array([[0.0, np.log(2.0)]])
    samples, log_pi, log_beta = gaussian_candidates(mean, log_std, 8, rng=rng, widened_fraction=0.25, widened_scale=3.0)

    def normal(x, m, s):
        return np.exp(-0.5 * ((x - m) / s) ** 2) / (s * np.sqrt(2 * np.pi))

    std = np.exp(log_std[0])
    pi = np.prod(normal(samples[0], mean[0], std), axis=1)
    wide = np.prod(normal(samples[0], mean[0], 3.0 * std), axis=1)
    np.testing.assert_allclose(np.exp(log_pi[0]), pi, rtol=1e-10)
    np.testing.assert_allclose(np.exp(log_beta[0]), 0.75 * pi + 0.25 * wide, rtol=1e-10)


# A deterministic model over hashed integer states. The sampled version proposes the actions 0..K-1 (as vectors of
# D equal floats) with log-densities log_pi = its logits, log_beta = 0; the discrete version takes action ints.
# The corrected prior is then log_pi up to a shift, so both searches must build the same trees.
def _hash(state: np.ndarray, salt: int) -> np.ndarray:
    x = (state * 2654435761 + salt * 97531) % 1_000_003
    return x.astype(np.float64) / 1_000_003


def _outputs(state: np.ndarray, num_actions: int):
    value = 2 * _hash(state, 1) - 1
    logits = np.stack([3 * _hash(state, 10 + a) for a in range(num_actions)], axis=1)
    return value, logits


def _step(state: np.ndarray, action: np.ndarray):
    child = (state * 31 + action + 1) % 100_003
    reward = _hash(child, 2) - 0.5
    discount = np.where(_hash(child, 3) < 0.1, 0.0, 0.9)
    return child, reward, discount


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 4),
    num_actions=st.integers(1, 5),
    action_dim=st.integers(1, 3),
    simulations=st.integers(1, 24),
    policy=st.sampled_from(["muzero", "gumbel"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_sampled_search_equals_the_discrete_search_on_the_same_model(
    batch, num_actions, action_dim, simulations, policy, seed
):
    config = SearchConfig(policy=policy, num_simulations=simulations, max_num_considered_actions=4)
    states = np.arange(batch, dtype=np.int64) * 7 + seed % 1000
    value, logits = _outputs(states, num_actions)
    vectors = np.broadcast_to(np.arange(num_actions, dtype=np.float64)[:, None], (num_actions, action_dim))

    def discrete_fn(embedding, action):
        child, reward, discount = _step(embedding, action)
        child_value, child_logits = _outputs(child, num_actions)
        return RecurrentOutput(reward, discount, child_logits, child_value), child

    def sampled_fn(embedding, action):
        assert action.shape == (embedding.shape[0], action_dim)
        child, reward, discount = _step(embedding, action[:, 0].astype(np.int64))
        child_value, child_logits = _outputs(child, num_actions)
        candidates = np.broadcast_to(vectors, (child.shape[0], num_actions, action_dim))
        return SampledRecurrentOutput(
            reward, discount, candidates, child_logits, np.zeros_like(child_logits), child_value
        ), child

    discrete = run_policy(config, RootOutput(logits, value, states), discrete_fn, rng=seed)
    root = SampledRootOutput(
        np.broadcast_to(vectors, (batch, num_actions, action_dim)), logits, np.zeros_like(logits), value, states
    )
    sampled = sampled_search(config, root, sampled_fn, rng=seed)

    np.testing.assert_array_equal(sampled.action_index, discrete.action)
    np.testing.assert_array_equal(sampled.action, vectors[discrete.action])
    np.testing.assert_allclose(sampled.action_weights, discrete.action_weights, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(sampled.root_value, discrete.root_value, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(sampled.tree.children_visits, discrete.tree.children_visits)


def _bandit_search(policy: str, seed: int):
    """A one-step continuous bandit, reward -(a - 0.7)^2: the search must pick the best of its samples."""
    rng = np.random.default_rng(seed)
    mean, log_std = np.zeros((3, 1)), np.zeros((3, 1))
    samples, log_pi, log_beta = gaussian_candidates(mean, log_std, 8, rng=rng)

    def recurrent_fn(embedding, action):
        reward = -((action[:, 0] - 0.7) ** 2)
        count = action.shape[0]
        child_samples, child_pi, child_beta = gaussian_candidates(np.zeros((count, 1)), np.zeros((count, 1)), 8, rng=rng)
        zeros = np.zeros(count)
        return SampledRecurrentOutput(reward, zeros, child_samples, child_pi, child_beta, zeros), np.zeros((count, 1))

    config = SearchConfig(policy=policy, num_simulations=64, temperature=0.0, max_num_considered_actions=8)
    root = SampledRootOutput(samples, log_pi, log_beta, np.zeros(3), np.zeros((3, 1)))
    return samples, sampled_search(config, root, recurrent_fn, rng=seed, explore=False)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_gumbel_search_picks_the_best_sampled_action_of_a_continuous_bandit(seed):
    # Gumbel MuZero without noise acts by argmax(logits + sigma(q)) over the halved candidates; the corrected prior is
    # uniform here (widened samples aside), so the best reward wins. (pUCT's min-max-normalised Q over rewards of very
    # different sizes gives no such guarantee at 64 simulations.)
    samples, out = _bandit_search("gumbel", seed=seed)
    best = np.argmin((samples[:, :, 0] - 0.7) ** 2, axis=1)
    np.testing.assert_array_equal(out.action_index, best)
    np.testing.assert_array_equal(out.action, samples[np.arange(3), best])
    np.testing.assert_allclose(out.action_weights.sum(axis=1), 1.0, rtol=1e-6)


def test_nan_actions_from_the_policy_are_refused():
    root = SampledRootOutput(np.full((1, 2, 1), np.nan), np.zeros((1, 2)), np.zeros((1, 2)), np.zeros(1), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="NaN or infinite actions"):
        sampled_search(SearchConfig(num_simulations=2), root, lambda e, a: None)
    with pytest.raises(ValueError, match="NaN or infinite mean or log_std"):
        gaussian_candidates(np.array([[np.nan]]), np.zeros((1, 1)), 4, rng=np.random.default_rng(0))


def test_a_model_that_changes_k_or_returns_the_discrete_record_is_refused():
    root = SampledRootOutput(np.zeros((1, 2, 1)), np.zeros((1, 2)), np.zeros((1, 2)), np.zeros(1), np.zeros((1, 1)))

    def wrong_k(embedding, action):
        count = action.shape[0]
        z = np.zeros(count)
        return SampledRecurrentOutput(z, z, np.zeros((count, 3, 1)), np.zeros((count, 3)), np.zeros((count, 3)), z), embedding

    def discrete_record(embedding, action):
        z = np.zeros(action.shape[0])
        return RecurrentOutput(z, z, np.zeros((action.shape[0], 2)), z), embedding

    with pytest.raises(ValueError, match=r"candidates of shape \(1, 3, 1\)"):
        sampled_search(SearchConfig(num_simulations=2), root, wrong_k)
    with pytest.raises(TypeError, match="SampledRecurrentOutput, not RecurrentOutput"):
        sampled_search(SearchConfig(num_simulations=2), root, discrete_record)


def test_bad_densities_are_refused():
    with pytest.raises(ValueError, match="log_beta must be finite"):
        sampled_prior_logits(np.zeros((1, 2)), np.array([[0.0, -np.inf]]))
    with pytest.raises(ValueError, match="-inf for every candidate"):
        sampled_prior_logits(np.full((1, 2), -np.inf), np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"both be \[B, K\]"):
        sampled_prior_logits(np.zeros((1, 2)), np.zeros((1, 3)))
