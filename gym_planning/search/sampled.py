"""Sampled MuZero (Hubert et al. 2021): search over K actions sampled at each node, for continuous (Box) actions.

The tree is the discrete one: every node has K children, child slot ``k`` standing for the ``k``-th action
sampled at that node. The model proposes the K candidate action vectors of each node it evaluates, with their
log-densities under its policy ``pi`` and under the distribution ``beta`` they were drawn from; this module keeps
the vectors (the tree keeps slots, as it keeps embeddings: :class:`_CandidateModel`) and turns the densities into
the corrected prior ``beta_hat / beta * pi`` (:func:`sampled_prior_logits`). Any :class:`SearchConfig` runs on
top: pUCT with root Dirichlet noise over the K samples, or Gumbel MuZero's Sequential Halving among them.

Shapes: ``B`` roots, ``K`` candidates per node, ``D`` action dimensions, ``E`` trees expanding in a simulation.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np

from gym_planning.search.base import Array, Embedding, RecurrentOutput, RootOutput
from gym_planning.search.checks import integer_setting, real_array, setting, unpack_recurrent_result
from gym_planning.search.config import SearchConfig, run_policy
from gym_planning.search.embeddings import EmbeddingStore
from gym_planning.search.tree import Tree

__all__ = [
    "SampledRecurrentFn",
    "SampledRecurrentOutput",
    "SampledRootOutput",
    "SampledSearchOutput",
    "gaussian_candidates",
    "sampled_prior_logits",
    "sampled_search",
]

# EfficientZero V2 (Wang et al. 2024) draws part of each node's samples from a wider Gaussian so that actions far
# from the policy's mean keep being tried; these are the defaults of :func:`gaussian_candidates`.
WIDENED_FRACTION = 0.25
WIDENED_SCALE = 2.0


class SampledRootOutput(NamedTuple):
    """What the model says about the B root states, with the K actions it sampled at each.

    :param candidates: ``[B, K, D]`` the sampled action vectors.
    :param log_pi: ``[B, K]`` log-density of each candidate under the model's policy ``pi``.
    :param log_beta: ``[B, K]`` log-density of each candidate under the distribution it was drawn from.
    :param value: ``[B]`` value estimate of each root.
    :param embedding: the B root embeddings (array or tensor ``[B, ...]``, or a sequence of B objects).
    """

    candidates: Array
    log_pi: Array
    log_beta: Array
    value: Array
    embedding: Embedding


class SampledRecurrentOutput(NamedTuple):
    """What the model says about one step from each of E parents, with the K actions it sampled at each child.

    :param reward: ``[E]`` reward of the step.
    :param discount: ``[E]`` discount of the step; 0 marks a terminal state.
    :param candidates: ``[E, K, D]`` actions sampled at the new states.
    :param log_pi: ``[E, K]`` their log-densities under the model's policy.
    :param log_beta: ``[E, K]`` their log-densities under the sampling distribution.
    :param value: ``[E]`` value of the new states.
    """

    reward: Array
    discount: Array
    candidates: Array
    log_pi: Array
    log_beta: Array
    value: Array


class SampledRecurrentFn(Protocol):
    """``recurrent_fn(embedding, action) -> (SampledRecurrentOutput, new_embedding)``.

    ``embedding`` holds the E parents' embeddings; ``action`` is ``[E, D]`` float64, the candidate vectors the
    search chose at those parents.
    """

    def __call__(self, embedding: Embedding, action: np.ndarray) -> tuple[SampledRecurrentOutput, Embedding]: ...


class SampledSearchOutput(NamedTuple):
    """Result of a sampled search.

    :param action: ``[B, D]`` the action vector to take (a root candidate).
    :param action_index: ``[B]`` int64, its slot among the root's candidates.
    :param candidates: ``[B, K, D]`` the root's candidates, the support of ``action_weights``.
    :param action_weights: ``[B, K]`` float32, the policy target over the candidates (visit distribution, or
        Gumbel MuZero's improved policy).
    :param root_value: ``[B]`` float32, the search value of each root.
    :param tree: the search trees over candidate slots.
    """

    action: np.ndarray
    action_index: np.ndarray
    candidates: np.ndarray
    action_weights: np.ndarray
    root_value: np.ndarray
    tree: Tree


def sampled_prior_logits(log_pi: Array, log_beta: Array) -> np.ndarray:
    """Logits ``[B, K]`` of the corrected prior ``beta_hat / beta * pi`` over K sampled actions.

    ``beta_hat`` is the empirical distribution of the samples, ``1/K`` per sample: the same action drawn twice
    occupies two slots whose priors add up to its ``count / K / beta * pi``, so no deduplication is needed. The
    constant ``1/K`` cancels in the softmax. When the samples come from ``pi`` itself the prior is uniform.

    :param log_pi: ``[B, K]`` log-densities under the policy.
    :param log_beta: ``[B, K]`` log-densities under the sampling distribution (finite: the samples came from it).
    :return: ``[B, K]`` float64 ``log_pi - log_beta``, shifted so that each row's maximum is 0.
    """
    pi = real_array(log_pi, "log_pi")
    beta = real_array(log_beta, "log_beta")
    if pi.ndim != 2 or pi.shape != beta.shape:
        raise ValueError(f"log_pi and log_beta must both be [B, K]; got shapes {pi.shape} and {beta.shape}")
    if not np.isfinite(beta).all():
        raise ValueError("log_beta must be finite: every candidate was drawn from beta, so its density is positive")
    if np.isnan(pi).any() or np.isposinf(pi).any():
        raise ValueError("log_pi has NaN or +inf entries: the policy's log-densities must be finite or -inf")
    logits = pi - beta
    top = logits.max(axis=1, keepdims=True)
    if not np.isfinite(top).all():
        raise ValueError("log_pi is -inf for every candidate of some node: the policy gives its samples no density")
    return logits - top


def gaussian_candidates(
    mean: Array,
    log_std: Array,
    num_samples: int,
    *,
    rng: np.random.Generator,
    widened_fraction: float = WIDENED_FRACTION,
    widened_scale: float = WIDENED_SCALE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K samples per row from a diagonal Gaussian policy, a share of them from a widened Gaussian.

    The first ``K - W`` samples come from ``N(mean, std^2)``, the last ``W = round(widened_fraction * K)`` from
    ``N(mean, (widened_scale * std)^2)``; ``beta`` is the matching mixture, so that the samples are a stratified
    draw from it. Densities are those of the unbounded Gaussian; a model that squashes actions (e.g. ``tanh``)
    applies the same map to ``pi`` and ``beta``, whose Jacobians cancel in :func:`sampled_prior_logits`.

    :param mean: ``[B, D]`` policy means.
    :param log_std: ``[B, D]`` policy log standard deviations.
    :param num_samples: ``K`` (>= 1).
    :param rng: numpy Generator.
    :param widened_fraction: share of the samples drawn from the widened Gaussian, in [0, 1).
    :param widened_scale: standard-deviation factor of the widened Gaussian (>= 1).
    :return: ``samples [B, K, D]``, ``log_pi [B, K]``, ``log_beta [B, K]`` (float64).
    """
    mu = real_array(mean, "mean")
    log_sigma = real_array(log_std, "log_std")
    if mu.ndim != 2 or mu.shape != log_sigma.shape:
        raise ValueError(f"mean and log_std must both be [B, D]; got shapes {mu.shape} and {log_sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(log_sigma).all()):
        raise ValueError("the policy returned a NaN or infinite mean or log_std: check the network's inputs and loss")
    num_samples = integer_setting("num_samples", num_samples, 1)
    if not 0.0 <= setting("widened_fraction", widened_fraction) < 1.0:
        raise ValueError(f"widened_fraction must be in [0, 1); got {widened_fraction!r}")
    widened_scale = setting("widened_scale", widened_scale, minimum=1.0)
    num_widened = int(round(widened_fraction * num_samples))
    scales = np.where(np.arange(num_samples) < num_samples - num_widened, 1.0, widened_scale)  # [K]
    sigma = np.exp(log_sigma)[:, None, :]  # [B, 1, D]
    noise = rng.standard_normal((mu.shape[0], num_samples, mu.shape[1]))
    samples = mu[:, None, :] + scales[None, :, None] * sigma * noise
    log_pi = _gaussian_log_density(samples, mu, log_sigma)
    if num_widened == 0:
        return samples, log_pi, log_pi.copy()
    log_wide = _gaussian_log_density(samples, mu, log_sigma + np.log(widened_scale))
    fraction = num_widened / num_samples
    log_beta = np.logaddexp(np.log1p(-fraction) + log_pi, np.log(fraction) + log_wide)
    return samples, log_pi, log_beta


def _gaussian_log_density(samples: np.ndarray, mean: np.ndarray, log_std: np.ndarray) -> np.ndarray:
    """``[B, K]`` log-density of ``samples [B, K, D]`` under the diagonal Gaussians ``mean, log_std [B, D]``."""
    z = (samples - mean[:, None, :]) * np.exp(-log_std)[:, None, :]
    per_dim = -0.5 * z**2 - log_std[:, None, :] - 0.5 * np.log(2.0 * np.pi)
    return per_dim.sum(axis=2)


class _CandidateModel:
    """The discrete model the tree search sees: its embeddings are integer ids of nodes, its actions slots.

    It keeps, per id, the caller's embedding and that node's ``[K, D]`` candidates; a call looks up the parents'
    embeddings and the chosen candidate vectors, calls the caller's model, and stores the children under new ids.
    """

    def __init__(self, root: SampledRootOutput, recurrent_fn: SampledRecurrentFn, capacity: int):
        candidates = _candidates(root.candidates, "root candidates")
        batch_size, self.num_samples, self.action_dim = candidates.shape
        self.recurrent_fn = recurrent_fn
        self.embeddings = EmbeddingStore(root.embedding, capacity)
        self.candidates = np.empty((capacity, self.num_samples, self.action_dim))
        ids = np.arange(batch_size)
        self.embeddings.scatter(ids, root.embedding)
        self.candidates[ids] = candidates
        self.next_id = batch_size

    def __call__(self, embedding: Embedding, action: np.ndarray) -> tuple[RecurrentOutput, Embedding]:
        """``embedding``: the E parents' ids (``[E]`` int64, the search's embeddings here); ``action``: ``[E]`` slots."""
        parents, slot = np.asarray(embedding, np.int64), action
        action = self.candidates[parents, slot]  # [E, D]
        output, embedding = unpack_sampled_result(self.recurrent_fn(self.embeddings.gather(parents), action))
        count = parents.shape[0]
        children = _candidates(output.candidates, "recurrent_fn's candidates")
        if children.shape != (count, self.num_samples, self.action_dim):
            raise ValueError(
                f"recurrent_fn returned candidates of shape {children.shape}; expected [E, K, D] = "
                f"{(count, self.num_samples, self.action_dim)} (the root's K and D at every node)"
            )
        ids = np.arange(self.next_id, self.next_id + count)
        self.next_id += count
        self.embeddings.scatter(ids, embedding)
        self.candidates[ids] = children
        logits = sampled_prior_logits(output.log_pi, output.log_beta)
        return RecurrentOutput(output.reward, output.discount, logits, output.value), ids


def unpack_sampled_result(result: Any) -> tuple[SampledRecurrentOutput, Any]:
    """``(SampledRecurrentOutput, new_embedding)`` from what a sampled ``recurrent_fn`` returned, or a ``TypeError``."""
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], SampledRecurrentOutput)):
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], RecurrentOutput):
            raise TypeError("a sampled search's recurrent_fn must return SampledRecurrentOutput, not RecurrentOutput")
        unpack_recurrent_result(result)  # the generic message for other shapes of result
        raise TypeError("recurrent_fn must return (SampledRecurrentOutput, new_embedding)")
    return result


def _candidates(candidates: Array, what: str) -> np.ndarray:
    """``[N, K, D]`` float64 candidate actions; NaN or infinite actions are refused."""
    array = real_array(candidates, what)
    if array.ndim != 3:
        raise ValueError(f"{what} must be [B, K, D] action vectors; got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} contain NaN or infinite actions: the policy's samples must be finite")
    return array


def sampled_search(
    config: SearchConfig,
    root: SampledRootOutput,
    recurrent_fn: SampledRecurrentFn,
    *,
    rng: np.random.Generator | int | None = None,
    explore: bool = True,
    temperature: float | None = None,
) -> SampledSearchOutput:
    """Run the search ``config`` describes over the K actions sampled at each node (Sampled MuZero).

    :param config: the settings (``policy="gumbel"`` runs Sequential Halving over the root's samples; its
        ``max_num_considered_actions`` counts samples).
    :param root: the model's samples, densities, values and embeddings at the B roots.
    :param recurrent_fn: ``(embedding, action [E, D]) -> (SampledRecurrentOutput, new_embedding)``.
    :param rng: numpy Generator or seed for the root noise and the acted sample.
    :param explore: add the root noise (see :func:`~gym_planning.search.run_policy`).
    :param temperature: visit-count temperature for this call; None: ``config.temperature``.
    :return: :class:`SampledSearchOutput`.
    """
    model = _CandidateModel(root, recurrent_fn, capacity=_batch(root) * (config.num_simulations + 1))
    batch_size = model.next_id
    ids_root = RootOutput(sampled_prior_logits(root.log_pi, root.log_beta), root.value, np.arange(batch_size))
    output = run_policy(config, ids_root, model, rng=rng, explore=explore, temperature=temperature)
    candidates = model.candidates[:batch_size].copy()
    action = candidates[np.arange(batch_size), output.action]
    return SampledSearchOutput(action, output.action, candidates, output.action_weights, output.root_value, output.tree)


def _batch(root: SampledRootOutput) -> int:
    shape = getattr(root.candidates, "shape", None) or np.shape(root.candidates)
    if len(shape) != 3:
        raise ValueError(f"root candidates must be [B, K, D] action vectors; got shape {tuple(shape)}")
    return int(shape[0])
