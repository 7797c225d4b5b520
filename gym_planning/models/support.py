"""Scalars as categorical distributions over an integer support (MuZero, Appendix F).

A scalar ``x`` (a value or a reward) is squashed with the invertible transform
``h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x`` (Pohlen et al. 2018), then written as a "two-hot"
distribution over the ``S = 2 * support_size + 1`` integers ``-support_size .. support_size``.
Networks predict logits over those bins; :func:`support_to_scalar` maps them back.

Letters: ``S`` support bins; ``...`` any leading batch shape.
"""

from __future__ import annotations

import numpy as np
import torch as th

# MuZero / muzero-general / LightZero all use eps = 0.001 for the transform.
TRANSFORM_EPS = 0.001


def scalar_transform(x: th.Tensor, eps: float = TRANSFORM_EPS) -> th.Tensor:
    """``h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x``, elementwise."""
    return th.sign(x) * (th.sqrt(th.abs(x) + 1.0) - 1.0) + eps * x


def inverse_scalar_transform(y: th.Tensor, eps: float = TRANSFORM_EPS) -> th.Tensor:
    """Exact inverse of :func:`scalar_transform`, elementwise (closed form of the quadratic in ``sqrt(|x|+1)``)."""
    root = (th.sqrt(1.0 + 4.0 * eps * (th.abs(y) + 1.0 + eps)) - 1.0) / (2.0 * eps)
    return th.sign(y) * (root**2 - 1.0)


def _check_support_size(support_size: int) -> None:
    if not isinstance(support_size, int) or support_size < 1:
        raise ValueError(f"support_size must be an integer >= 1; got {support_size!r}")


def scalar_to_support(x: th.Tensor, support_size: int, eps: float = TRANSFORM_EPS) -> th.Tensor:
    """Two-hot target distribution of ``h(x)`` over ``-support_size .. support_size``.

    :param x: ``[...]`` scalars (untransformed: returns, rewards).
    :param support_size: half-width of the support; ``h(x)`` outside it is clipped to the edge.
    :return: ``[..., S]`` probabilities; ``S = 2 * support_size + 1``; the expectation over the bins is ``h(x)``
        (before clipping).
    """
    _check_support_size(support_size)
    y = scalar_transform(x.float(), eps).clamp(-support_size, support_size)
    lower = th.floor(y)
    upper_weight = y - lower
    # Index of bin ``lower`` when bins start at -support_size.
    lower_index = (lower + support_size).long()
    probs = th.zeros(*x.shape, 2 * support_size + 1, dtype=th.float32, device=x.device)
    probs.scatter_(-1, lower_index.unsqueeze(-1), (1.0 - upper_weight).unsqueeze(-1))
    # At the top edge upper_weight is 0, so clamping the index there adds nothing.
    upper_index = (lower_index + 1).clamp(max=2 * support_size)
    probs.scatter_add_(-1, upper_index.unsqueeze(-1), upper_weight.unsqueeze(-1))
    return probs


def two_hot_numpy(y: np.ndarray, support_size: int) -> np.ndarray:
    """The two-hot half of :func:`scalar_to_support` in numpy, for targets built on the CPU before they meet
    torch: ``[...]`` already transformed values ``h(x)`` (float32) -> ``[..., S]`` float32 probabilities.

    ``two_hot_numpy(scalar_transform(x).numpy(), n)`` equals ``scalar_to_support(x, n)`` bit for bit (``h`` stays
    in torch: its float32 ``sqrt`` rounds differently from numpy's), at a fraction of the torch calls' dispatch.
    """
    _check_support_size(support_size)
    y = np.clip(np.asarray(y, np.float32), -support_size, support_size)
    lower = np.floor(y)
    upper_weight = y - lower
    lower_index = (lower + support_size).astype(np.int64)[..., None]
    probs = np.zeros((*y.shape, 2 * support_size + 1), np.float32)
    np.put_along_axis(probs, lower_index, (1.0 - upper_weight)[..., None], axis=-1)
    # At the top edge upper_weight is 0, so clamping the index there adds nothing (adding 0.0 elsewhere is exact).
    upper_index = np.minimum(lower_index + 1, 2 * support_size)
    probs += np.where(np.arange(2 * support_size + 1) == upper_index, upper_weight[..., None], np.float32(0.0))
    return probs


def support_to_scalar(logits: th.Tensor, support_size: int, eps: float = TRANSFORM_EPS) -> th.Tensor:
    """Expected scalar of a categorical prediction: ``h^-1(sum_i softmax(logits)_i * i)``.

    :param logits: ``[..., S]`` logits over ``-support_size .. support_size``.
    :return: ``[...]`` scalars in the original (untransformed) units.
    """
    _check_support_size(support_size)
    if logits.shape[-1] != 2 * support_size + 1:
        raise ValueError(f"logits have {logits.shape[-1]} bins; support_size={support_size} needs {2 * support_size + 1}")
    bins = th.arange(-support_size, support_size + 1, dtype=th.float32, device=logits.device)
    expected = (th.softmax(logits.float(), dim=-1) * bins).sum(dim=-1)
    # float64 for the inverse: in float32 it is off by ~3e-5 near 0 (catastrophic cancellation).
    return inverse_scalar_transform(expected.double(), eps).float()
