"""MuZero on ``Box`` actions: Sampled MuZero (Hubert et al. 2021) pieces that the algorithm plugs in.

- :func:`check_box_action_space` refuses the Box spaces MuZero cannot act in (unbounded, not flat).
- :func:`search_box` runs :func:`~gym_planning.search.sampled_search` on a
  :class:`~gym_planning.models.networks.GaussianMlpMuZeroNetwork`: K pre-squash candidates per node drawn from
  the Gaussian policy head (plus a widened share), the configured search (pUCT or Gumbel) over them.
- :class:`SampledGameSegmentBuffer` stores, per step, the normalised action taken (``tanh`` of the chosen
  candidate, ``[D]``, what the dynamics unrolls with), the root's K pre-squash candidates ``[K, D]`` and the
  search's weights over them ``[K]`` (the policy target).
- :func:`sampled_policy_loss` is the policy term ``-sum_k w_k log pi(u_k | s)`` at each unroll step.

Actions in the env are ``low + (a + 1) / 2 * (high - low)`` for a normalised ``a`` (SB3's ``unscale_action``).

Letters: ``E`` envs, ``B`` batch, ``K`` unroll steps, ``C`` candidates per node (``num_samples``), ``D`` action
dimensions, ``R`` rows.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces

from gym_planning.agents.muzero.buffer import GameSegmentBuffer
from gym_planning.models.networks import GaussianMlpMuZeroNetwork, gaussian_log_prob
from gym_planning.search import SearchConfig
from gym_planning.search.sampled import SampledSearchOutput, sampled_search


class SampledPolicyTarget(NamedTuple):
    """The policy target of a sampled search: weights over the candidates it searched.

    :param candidates: ``[..., C, D]`` float32 pre-squash candidate actions.
    :param weights: ``[..., C]`` float32 the search's ``action_weights`` over them (sum 1).
    """

    candidates: np.ndarray
    weights: np.ndarray


def check_box_action_space(action_space: spaces.Box) -> None:
    """Raise one clear error for a Box that MuZero cannot act in: not flat, or with an infinite bound."""
    if len(action_space.shape) != 1:
        raise ValueError(
            f"MuZero needs a flat Box action space (D,); got shape {action_space.shape}: "
            "reshape its actions to one flat vector with a gymnasium.ActionWrapper"
        )
    if not (np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()):
        raise ValueError(
            f"MuZero squashes Box actions into [low, high] and needs finite bounds; got {action_space}: "
            "wrap the env in a gymnasium.ActionWrapper whose action_space is a Box with the finite range the env accepts"
        )


def search_box(
    network: GaussianMlpMuZeroNetwork,
    config: SearchConfig,
    observation: np.ndarray | th.Tensor,
    num_samples: int,
    *,
    rng: np.random.Generator,
    explore: bool,
    temperature: float,
) -> SampledSearchOutput:
    """One batched sampled search from observations ``[B, *obs]`` with the torch network.

    :return: the search's output; ``action`` ``[B, D]`` and ``candidates`` ``[B, C, D]`` are pre-squash.
    """
    root = network.sampled_root(observation, num_samples, rng=rng)
    recurrent_fn = network.sampled_recurrent_fn(num_samples, rng=rng)
    return sampled_search(config, root, recurrent_fn, rng=rng, explore=explore, temperature=temperature)


def policy_target_of(output: SampledSearchOutput) -> SampledPolicyTarget:
    """The stored policy target of a search: its root candidates and weights, as float32."""
    return SampledPolicyTarget(output.candidates.astype(np.float32), output.action_weights.astype(np.float32))


def unscale_action(action_space: spaces.Box, normalised: np.ndarray) -> np.ndarray:
    """Normalised actions ``[..., D]`` in ``[-1, 1]`` -> env actions in ``[low, high]`` (SB3's ``unscale_action``)."""
    low, high = action_space.low, action_space.high
    action = low + 0.5 * (np.asarray(normalised, np.float64) + 1.0) * (high - low)
    return np.clip(action, low, high).astype(action_space.dtype)


def sampled_policy_loss(policy_output: th.Tensor, candidates: th.Tensor, weights: th.Tensor) -> th.Tensor:
    """``[B, K+1]`` Sampled MuZero's policy loss ``-sum_c w_c log pi(u_c | s)`` at each unroll step.

    :param policy_output: ``[B, K+1, 2D]`` the Gaussian head's outputs along the unroll.
    :param candidates: ``[B, K+1, C, D]`` the stored (or reanalysed) pre-squash candidates of each position.
    :param weights: ``[B, K+1, C]`` the search's weights over them.
    """
    if candidates.shape[:-1] != weights.shape or policy_output.shape[:2] != weights.shape[:2]:
        raise ValueError(
            f"policy outputs {tuple(policy_output.shape)}, candidates {tuple(candidates.shape)} and weights "
            f"{tuple(weights.shape)} disagree: expected [B, K+1, 2D], [B, K+1, C, D] and [B, K+1, C]"
        )
    if policy_output.shape[-1] != 2 * candidates.shape[-1]:
        raise ValueError(f"policy outputs have {policy_output.shape[-1]} entries; expected 2 D = {2 * candidates.shape[-1]}")
    return -(weights * gaussian_log_prob(policy_output, candidates)).sum(dim=-1)


class SampledGameSegmentBuffer(GameSegmentBuffer):
    """:class:`GameSegmentBuffer` for Box actions: normalised actions ``[R, E, D]``, the root candidates
    ``[R, E, C, D]`` (pre-squash) and the search weights ``[R, E, C]`` (in ``policy_targets``).

    :param action_dim: ``D``.
    :param num_samples: ``C``, candidates per search node.
    (Other parameters: see :class:`GameSegmentBuffer`; ``legal_masks`` are all True, one per candidate.)
    """

    def __init__(
        self,
        capacity_steps: int,
        observation_shape: tuple[int, ...],
        observation_dtype: np.dtype,
        action_dim: int,
        num_samples: int,
        n_envs: int,
        **kwargs: Any,
    ):
        # The base's memory check counts 5 bytes per "action"; C * (D + 1) of them cover the candidates too.
        super().__init__(
            capacity_steps, observation_shape, observation_dtype, num_samples * (action_dim + 1), n_envs, **kwargs
        )
        shape = (self.capacity, n_envs)
        self.num_actions = num_samples
        self.action_dim = action_dim
        self.actions = np.zeros((*shape, action_dim), np.float32)
        self.candidates = np.zeros((*shape, num_samples, action_dim), np.float32)
        self.policy_targets = np.zeros((*shape, num_samples), np.float32)
        self.legal_masks = np.ones((*shape, num_samples), np.bool_)

    def add(  # type: ignore[override]
        self,
        observation: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        policy_target: SampledPolicyTarget,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """:meth:`GameSegmentBuffer.add` with normalised actions ``[E, D]`` and a :class:`SampledPolicyTarget`."""
        if not isinstance(policy_target, SampledPolicyTarget):
            raise TypeError(f"a Box replay stores SampledPolicyTarget policy targets; got {type(policy_target).__name__}")
        row = self.pos
        super().add(observation, action, reward, terminated, truncated, policy_target.weights, *args, **kwargs)
        self.candidates[row] = policy_target.candidates

    def _unroll_actions(self, rows: np.ndarray, envs: np.ndarray, inside: np.ndarray) -> np.ndarray:
        """``[B, K, D]`` normalised actions taken, uniform in ``[-1, 1]^D`` where not ``inside``."""
        random_actions = self.rng.uniform(-1.0, 1.0, size=(*rows.shape, self.action_dim)).astype(np.float32)
        return np.where(inside[..., None], self.actions[rows, envs[:, None]], random_actions)

    def policy_targets_at(self, rows: np.ndarray, envs: np.ndarray) -> SampledPolicyTarget:
        """Stored targets at ``rows [B, K+1]`` of columns ``envs [B]``: ``[B, K+1, C, D]`` and ``[B, K+1, C]``."""
        return SampledPolicyTarget(self.candidates[rows, envs[:, None]], self.policy_targets[rows, envs[:, None]])
