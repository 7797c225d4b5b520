"""MuZero networks in torch: representation ``h``, dynamics ``g`` and prediction ``f``.

Two families share one interface (:class:`MuZeroNetwork`: ``representation``, ``transition`` and
``reward`` (together the dynamics), ``prediction``):

- :class:`MlpMuZeroNetwork` for vector (or one-hot-able discrete) observations;
- :class:`GaussianMlpMuZeroNetwork`, its variant for ``Box`` actions (Sampled MuZero, Hubert et al. 2021): a
  Gaussian policy head over pre-squash actions and a dynamics network fed the ``tanh``-squashed action vector;
- :class:`ConvMuZeroNetwork` for images, with MuZero's Atari down-sampling (stride-2 convolutions,
  residual blocks, average pooling: 1/16 of the resolution) applied as far as the image size allows
  (:func:`choose_downsampling`: 96 x 96 Atari frames to 6 x 6, Minipacman 15 x 19 to 8 x 10, Sokoban's 10 x 10
  kept whole) and action planes into the dynamics.
  Frame stacking is left to a wrapper (``gymnasium.wrappers.FrameStackObservation`` / ``VecFrameStack``).

Both keep hidden states min-max normalised to [0, 1] per sample (MuZero, Appendix G) and predict
values and rewards as categorical logits over a support (:mod:`gym_planning.models.support`).
A network is a :class:`gym_planning.models.SearchModel`: ``root(observation)`` and
``recurrent(embedding, action)`` answer the search with embeddings that stay torch tensors on the
network's device.

Letters: ``B`` batch, ``A`` actions, ``L`` latent size (or ``C x H' x W'`` latent planes),
``S_v`` / ``S_r`` value / reward support bins.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, preprocess_obs
from torch import nn

from gym_planning.models.support import support_to_scalar
from gym_planning.search import RecurrentOutput, RootOutput
from gym_planning.search.sampled import SampledRecurrentFn, SampledRecurrentOutput, SampledRootOutput, gaussian_candidates

# MuZero's Atari network halves each side 4 times (96 x 96 frames -> 6 x 6 latent planes).
MAX_HALVINGS = 4
# downsample="auto" halves while the smaller latent side stays at least this (MuZero's Atari latent side).
MIN_AUTO_LATENT_SIDE = 6
# An explicit down-sampling that leaves a smaller latent side is refused: 1 x 1 or 2 x 2 planes keep no layout.
MIN_LATENT_SIDE = 3

# Added to the range in normalize_hidden_state (the compiled copy in models/compiled.py uses it too).
HIDDEN_STATE_EPS = 1e-5

# Range of the Gaussian policy head's log standard deviation (GaussianMlpMuZeroNetwork): the head's raw output
# is clamped into it (as SB3's SAC clamps to [-20, 2]), so that the sampled-policy loss can neither collapse the
# Gaussian to a point (log-densities growing without bound) nor spread it past the squashing tanh's useful
# range; -5 keeps std >= 0.007 in pre-squash units, finer than Box control needs. A fresh head outputs about 0:
# std 1, exploring the whole Box (a smooth map of the raw output into the range would start at std 0.2).
LOG_STD_MIN = -5.0
LOG_STD_MAX = 2.0


def normalize_hidden_state(hidden: th.Tensor, eps: float = HIDDEN_STATE_EPS) -> th.Tensor:
    """Min-max normalise each sample's hidden state to [0, 1] (over all its features)."""
    flat = hidden.flatten(1)
    low = flat.min(dim=1, keepdim=True).values
    high = flat.max(dim=1, keepdim=True).values
    return ((flat - low) / (high - low + eps)).view_as(hidden)


def scale_gradient(x: th.Tensor, scale: float) -> th.Tensor:
    """Identity forward; multiplies the gradient flowing back through ``x`` by ``scale``."""
    return x * scale + x.detach() * (1.0 - scale)


def _mlp(in_dim: int, hidden_sizes: tuple[int, ...], out_dim: int, zero_last: bool = False) -> nn.Sequential:
    """Linear -> LayerNorm -> ReLU blocks, then a linear output (zero-initialised for value/reward heads,
    so every prediction starts at 0)."""
    layers: list[nn.Module] = []
    for size in hidden_sizes:
        layers += [nn.Linear(in_dim, size), nn.LayerNorm(size), nn.ReLU()]
        in_dim = size
    last = nn.Linear(in_dim, out_dim)
    if zero_last:
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    layers.append(last)
    return nn.Sequential(*layers)


class MuZeroNetwork(nn.Module):
    """Shared logic of the MuZero network families; subclasses define ``representation``,
    ``transition``, ``reward`` and ``prediction`` on logits.

    :param observation_space: the (VecEnv) observation space; preprocessed as SB3 does
        (images scaled to [0, 1], discrete observations one-hot).
    :param num_actions: ``A``, size of the ``Discrete`` action space.
    :param value_support_size: value bins are ``-value_support_size .. value_support_size``.
    :param reward_support_size: reward bins are ``-reward_support_size .. reward_support_size``.
    :param discount: per-step discount the search applies to the model's steps.
    :param normalize_images: divide image observations by 255.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        num_actions: int,
        *,
        value_support_size: int,
        reward_support_size: int,
        discount: float,
        normalize_images: bool = True,
    ):
        super().__init__()
        self.observation_space = observation_space
        self.num_actions = num_actions
        self.value_support_size = value_support_size
        self.reward_support_size = reward_support_size
        self.discount = discount
        self.normalize_images = normalize_images

    # -- the three functions, on logits (subclasses) ---------------------------------------------
    def representation(self, observation: th.Tensor) -> th.Tensor:
        """``h``: preprocessed observations ``[B, *obs]`` -> normalised hidden states ``[B, L]``."""
        raise NotImplementedError

    def transition(self, hidden: th.Tensor, action: th.Tensor) -> th.Tensor:
        """The state part of ``g``: hidden ``[B, L]`` and actions ``[B]`` (int64) -> next normalised hidden ``[B, L]``."""
        raise NotImplementedError

    def reward(self, next_hidden: th.Tensor) -> th.Tensor:
        """The reward part of ``g``: next hidden ``[B, L]`` -> reward logits ``[B, S_r]`` of the step into it."""
        raise NotImplementedError

    def dynamics(self, hidden: th.Tensor, action: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """``g``: hidden ``[B, L]`` and actions ``[B]`` (int64) -> next normalised hidden ``[B, L]`` and
        reward logits ``[B, S_r]``."""
        next_hidden = self.transition(hidden, action)
        return next_hidden, self.reward(next_hidden)

    def prediction(self, hidden: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """``f``: hidden ``[B, L]`` -> policy logits ``[B, A]`` and value logits ``[B, S_v]``."""
        raise NotImplementedError

    # -- composed inference (with gradients; used by training) ------------------------------------
    @property
    def device(self) -> th.device:
        return next(self.parameters()).device

    def preprocess(self, observation: np.ndarray | th.Tensor) -> th.Tensor:
        """Observations ``[B, *obs_shape]`` (numpy or torch) -> float tensor on the network's device."""
        obs = th.as_tensor(observation, device=self.device)
        # SB3 returns a dict only for a Dict space, which takes dict observations: a tensor comes back here.
        processed = cast(th.Tensor, preprocess_obs(obs, self.observation_space, normalize_images=self.normalize_images))
        return processed.float()

    def initial_inference(self, observation: np.ndarray | th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Raw observations -> ``(hidden [B, L], policy_logits [B, A], value_logits [B, S_v])``."""
        hidden = self.representation(self.preprocess(observation))
        policy_logits, value_logits = self.prediction(hidden)
        return hidden, policy_logits, value_logits

    def recurrent_inference(self, hidden: th.Tensor, action: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
        """One model step -> ``(next_hidden, reward_logits [B, S_r], policy_logits [B, A], value_logits [B, S_v])``."""
        next_hidden, reward_logits = self.dynamics(hidden, action)
        policy_logits, value_logits = self.prediction(next_hidden)
        return next_hidden, reward_logits, policy_logits, value_logits

    def value_scalar(self, value_logits: th.Tensor) -> th.Tensor:
        return support_to_scalar(value_logits, self.value_support_size)

    def reward_scalar(self, reward_logits: th.Tensor) -> th.Tensor:
        return support_to_scalar(reward_logits, self.reward_support_size)

    # -- SearchModel protocol (no gradients) -----------------------------------------------------
    @th.no_grad()
    def root(self, observation: np.ndarray | th.Tensor) -> RootOutput:
        """Search roots for raw observations ``[B, *obs_shape]``; embeddings stay on the network's device."""
        hidden, policy_logits, value_logits = self.initial_inference(observation)
        return RootOutput(prior_logits=policy_logits, value=self.value_scalar(value_logits), embedding=hidden)

    @th.no_grad()
    def recurrent(self, embedding: th.Tensor, action: Any) -> tuple[RecurrentOutput, th.Tensor]:
        """The search's ``recurrent_fn``: one learned step from each of the B hidden states.

        The learned model never predicts termination: ``discount`` is the constant ``self.discount``
        and every action stays legal.
        """
        action_t = th.as_tensor(np.asarray(action), dtype=th.long, device=embedding.device)
        next_hidden, reward_logits, policy_logits, value_logits = self.recurrent_inference(embedding, action_t)
        discount = th.full((embedding.shape[0],), self.discount, device=embedding.device)
        output = RecurrentOutput(
            reward=self.reward_scalar(reward_logits),
            discount=discount,
            prior_logits=policy_logits,
            value=self.value_scalar(value_logits),
        )
        return output, next_hidden


class MlpMuZeroNetwork(MuZeroNetwork):
    """Fully connected MuZero network for flat observations.

    :param latent_dim: ``L``, size of the hidden state.
    :param hidden_sizes: hidden layers of every MLP (representation, dynamics, heads).
    (Other parameters: see :class:`MuZeroNetwork`.)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        num_actions: int,
        *,
        value_support_size: int,
        reward_support_size: int,
        discount: float,
        normalize_images: bool = True,
        latent_dim: int = 64,
        hidden_sizes: tuple[int, ...] = (128,),
    ):
        super().__init__(
            observation_space,
            num_actions,
            value_support_size=value_support_size,
            reward_support_size=reward_support_size,
            discount=discount,
            normalize_images=normalize_images,
        )
        hidden_sizes = tuple(hidden_sizes)
        obs_dim = get_flattened_obs_dim(observation_space)
        self.representation_net = _mlp(obs_dim, hidden_sizes, latent_dim)
        self.dynamics_net = _mlp(latent_dim + num_actions, hidden_sizes, latent_dim)
        self.reward_net = _mlp(latent_dim, hidden_sizes, 2 * reward_support_size + 1, zero_last=True)
        self.policy_net = _mlp(latent_dim, hidden_sizes, self.policy_outputs(num_actions))
        self.value_net = _mlp(latent_dim, hidden_sizes, 2 * value_support_size + 1, zero_last=True)

    @staticmethod
    def policy_outputs(num_actions: int) -> int:
        """Width of the policy head: one logit per action."""
        return num_actions

    def representation(self, observation: th.Tensor) -> th.Tensor:
        return normalize_hidden_state(self.representation_net(observation.flatten(1)))

    def transition(self, hidden: th.Tensor, action: th.Tensor) -> th.Tensor:
        one_hot = nn.functional.one_hot(action, self.num_actions).to(hidden.dtype)
        return normalize_hidden_state(self.dynamics_net(th.cat([hidden, one_hot], dim=1)))

    def reward(self, next_hidden: th.Tensor) -> th.Tensor:
        return self.reward_net(next_hidden)

    def prediction(self, hidden: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.policy_net(hidden), self.value_net(hidden)


class _ResidualBlock(nn.Module):
    """conv3x3 -> BN-free ReLU -> conv3x3, plus the input (no BatchNorm: predictions must not depend
    on what else is in the batch)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: th.Tensor) -> th.Tensor:
        return th.relu(x + self.conv2(th.relu(self.conv1(x))))


def _residual_tower(channels: int, num_blocks: int) -> nn.Sequential:
    return nn.Sequential(*[_ResidualBlock(channels) for _ in range(num_blocks)])


def _halved(side: int, halvings: int) -> int:
    """Side after ``halvings`` stride-2 stages (3 x 3 kernels, padding 1): ``ceil(side / 2)`` each."""
    for _ in range(halvings):
        side = (side + 1) // 2
    return side


def choose_downsampling(image_shape: tuple[int, int], downsample: bool | int | Literal["auto"] = "auto") -> int:
    """How many of MuZero's 4 halving stages to apply to ``[H, W]`` images.

    :param downsample: ``"auto"`` (the most halvings, up to 4, that keep the smaller latent side at least
        ``MIN_AUTO_LATENT_SIDE`` = 6: 96 x 96 -> 6 x 6, 64 x 64 -> 8 x 8, 15 x 19 -> 8 x 10, 10 x 10 kept),
        True (all 4, MuZero's Atari network), False (none) or the number of halvings 0..4.
    :raises ValueError: for another value, or an explicit choice leaving a latent side below ``MIN_LATENT_SIDE``.
    """
    smaller = min(image_shape)
    if downsample == "auto":
        return max(h for h in range(MAX_HALVINGS + 1) if h == 0 or _halved(smaller, h) >= MIN_AUTO_LATENT_SIDE)
    if isinstance(downsample, (bool, np.bool_)):
        halvings = MAX_HALVINGS if downsample else 0
    elif isinstance(downsample, (int, np.integer)) and 0 <= downsample <= MAX_HALVINGS:
        halvings = int(downsample)
    else:
        raise ValueError(f"downsample must be 'auto', True, False or an integer 0..{MAX_HALVINGS}; got {downsample!r}")
    latent = tuple(_halved(side, halvings) for side in image_shape)
    if halvings and min(latent) < MIN_LATENT_SIDE:
        raise ValueError(
            f"downsample={downsample!r} shrinks {image_shape[0]}x{image_shape[1]} observations to a "
            f"{latent[0]}x{latent[1]} latent; use downsample='auto' ({choose_downsampling(image_shape)} halvings here) "
            f"or fewer halvings (an integer 0..{MAX_HALVINGS})"
        )
    return halvings


def _representation_tower(in_channels: int, channels: int, num_blocks: int, halvings: int) -> nn.Sequential:
    """MuZero's Atari representation cut after ``halvings`` of its stages: stride-2 convolutions for the first
    two halvings, average pools for the last two, a residual tower after each stage."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, stride=2 if halvings >= 1 else 1, padding=1), nn.ReLU()]
    layers.append(_residual_tower(channels, num_blocks))
    if halvings >= 2:
        layers += [nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU(), _residual_tower(channels, num_blocks)]
    for stage in range(3, halvings + 1):
        layers.append(nn.AvgPool2d(3, stride=2, padding=1))
        if stage < MAX_HALVINGS:  # MuZero's last pool has no tower after it
            layers.append(_residual_tower(channels, num_blocks))
    return nn.Sequential(*layers)


class ConvMuZeroNetwork(MuZeroNetwork):
    """Convolutional / residual MuZero network for channel-first image observations ``[C, H, W]``.

    :param channels: channels of the hidden planes.
    :param num_blocks: residual blocks in each tower (representation, dynamics, prediction).
    :param downsample: how much of MuZero's Atari down-sampling (two stride-2 convolutions, then two stride-2
        average pools: 1/16 of each side) to apply: ``"auto"`` chooses from the observation size, True all,
        False none, an integer 0..4 that many halvings (see :func:`choose_downsampling`).
    :param head_hidden_sizes: hidden layers of the MLP heads on the flattened planes.
    (Other parameters: see :class:`MuZeroNetwork`.)
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        num_actions: int,
        *,
        value_support_size: int,
        reward_support_size: int,
        discount: float,
        normalize_images: bool = True,
        channels: int = 32,
        num_blocks: int = 1,
        downsample: bool | int | Literal["auto"] = "auto",
        head_hidden_sizes: tuple[int, ...] = (64,),
    ):
        super().__init__(
            observation_space,
            num_actions,
            value_support_size=value_support_size,
            reward_support_size=reward_support_size,
            discount=discount,
            normalize_images=normalize_images,
        )
        in_channels, height, width = observation_space.shape
        self.halvings = choose_downsampling((height, width), downsample)
        self.representation_net = _representation_tower(in_channels, channels, num_blocks, self.halvings)
        with th.no_grad():
            latent_shape = self.representation_net(th.zeros(1, in_channels, height, width)).shape[1:]
        self.latent_shape = tuple(latent_shape)
        flat = int(np.prod(latent_shape))
        self.dynamics_net = nn.Sequential(
            nn.Conv2d(channels + num_actions, channels, 3, padding=1), nn.ReLU(), _residual_tower(channels, num_blocks)
        )
        self.prediction_net = _residual_tower(channels, num_blocks)
        self.reward_net = _mlp(flat, tuple(head_hidden_sizes), 2 * reward_support_size + 1, zero_last=True)
        self.policy_net = _mlp(flat, tuple(head_hidden_sizes), num_actions)
        self.value_net = _mlp(flat, tuple(head_hidden_sizes), 2 * value_support_size + 1, zero_last=True)

    def representation(self, observation: th.Tensor) -> th.Tensor:
        return normalize_hidden_state(self.representation_net(observation))

    def transition(self, hidden: th.Tensor, action: th.Tensor) -> th.Tensor:
        # One constant plane per action, 1 on the plane of the action taken.
        planes = nn.functional.one_hot(action, self.num_actions).to(hidden.dtype)[:, :, None, None]
        planes = planes.expand(-1, -1, *hidden.shape[2:])
        return normalize_hidden_state(self.dynamics_net(th.cat([hidden, planes], dim=1)))

    def reward(self, next_hidden: th.Tensor) -> th.Tensor:
        return self.reward_net(next_hidden.flatten(1))

    def prediction(self, hidden: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        features = self.prediction_net(hidden).flatten(1)
        return self.policy_net(features), self.value_net(features)


def squash_action(pre_squash: th.Tensor) -> th.Tensor:
    """Pre-squash action vectors (any shape) -> normalised actions in ``(-1, 1)`` (``tanh``, as SB3's SAC)."""
    return th.tanh(pre_squash)


def gaussian_parameters(policy_output: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """Split the Gaussian policy head's output ``[..., 2D]`` into ``mean [..., D]`` and ``log_std [..., D]``,
    ``log_std`` clamped into ``[LOG_STD_MIN, LOG_STD_MAX]``."""
    mean, raw = policy_output.chunk(2, dim=-1)
    return mean, raw.clamp(LOG_STD_MIN, LOG_STD_MAX)


def gaussian_log_prob(policy_output: th.Tensor, pre_squash: th.Tensor) -> th.Tensor:
    """Log-density ``[..., K]`` of K pre-squash actions ``[..., K, D]`` under the diagonal Gaussian the policy
    head's output ``[..., 2D]`` describes (summed over the D dimensions).

    Densities are of the pre-squash Gaussian: the ``tanh`` Jacobian does not depend on the network, so the
    sampled-policy loss ``-sum_k w_k log pi(a_k)`` has the same gradient with or without it.
    """
    mean, log_std = gaussian_parameters(policy_output)
    z = (pre_squash - mean.unsqueeze(-2)) * th.exp(-log_std).unsqueeze(-2)
    per_dim = -0.5 * z.square() - log_std.unsqueeze(-2) - 0.5 * np.log(2.0 * np.pi)
    return per_dim.sum(dim=-1)


class GaussianMlpMuZeroNetwork(MlpMuZeroNetwork):
    """Fully connected MuZero network for ``Box`` actions of D dimensions (Sampled MuZero, Hubert et al. 2021).

    The policy head outputs ``[B, 2D]``: the mean and log standard deviation (clamped to ``[LOG_STD_MIN, LOG_STD_MAX]``) of a diagonal
    Gaussian over *pre-squash* actions ``u``; the action is ``tanh(u)`` in ``[-1, 1]^D``, rescaled to the Box's
    ``low .. high`` by the agent (as SB3's SAC does). The dynamics network takes the hidden state and the
    normalised action vector ``tanh(u)`` (instead of a one-hot). Searches see it through :meth:`sampled_root`
    and :meth:`sampled_recurrent_fn`, which draw K candidates per node with
    :func:`~gym_planning.search.sampled.gaussian_candidates`. ``root`` still gives the value (bootstrap targets);
    its ``prior_logits`` are the Gaussian's ``[B, 2D]`` parameters, not logits over actions.

    :param num_actions: ``D``, the Box's action dimensions.
    :param latent_dim: ``L``, size of the hidden state.
    :param hidden_sizes: hidden layers of every MLP (representation, dynamics, heads).
    (Other parameters: see :class:`MuZeroNetwork`.)
    """

    @property
    def action_dim(self) -> int:
        """``D``, the Box's action dimensions (the constructor's ``num_actions``)."""
        return self.num_actions

    @staticmethod
    def policy_outputs(num_actions: int) -> int:
        """Width of the policy head: the mean and raw log-std of each of the ``D`` action dimensions."""
        return 2 * num_actions

    def transition(self, hidden: th.Tensor, action: th.Tensor) -> th.Tensor:
        """Hidden ``[B, L]`` and normalised actions ``[B, D]`` (in ``[-1, 1]``) -> next normalised hidden ``[B, L]``."""
        return normalize_hidden_state(self.dynamics_net(th.cat([hidden, action.to(hidden.dtype)], dim=1)))

    def prediction(self, hidden: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """``f``: hidden ``[B, L]`` -> Gaussian policy parameters ``[B, 2D]`` (mean, raw log-std) and value logits."""
        return self.policy_net(hidden), self.value_net(hidden)

    def _candidates(
        self, policy_output: th.Tensor, num_samples: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mean, log_std = gaussian_parameters(policy_output)
        return gaussian_candidates(mean.double().cpu().numpy(), log_std.double().cpu().numpy(), num_samples, rng=rng)

    @th.no_grad()
    def sampled_root(
        self, observation: np.ndarray | th.Tensor, num_samples: int, *, rng: np.random.Generator
    ) -> SampledRootOutput:
        """Search roots for raw observations ``[B, *obs]`` with K pre-squash candidates ``[B, K, D]`` each."""
        hidden, policy_output, value_logits = self.initial_inference(observation)
        candidates, log_pi, log_beta = self._candidates(policy_output, num_samples, rng)
        return SampledRootOutput(candidates, log_pi, log_beta, self.value_scalar(value_logits).cpu().numpy(), hidden)

    def sampled_recurrent_fn(self, num_samples: int, *, rng: np.random.Generator) -> SampledRecurrentFn:
        """The sampled search's ``recurrent_fn``: one learned step from E hidden states with the pre-squash
        actions ``[E, D]`` the search chose, K new candidates at each child. Like ``recurrent``, the model never
        predicts termination (``discount`` is the constant ``self.discount``)."""

        @th.no_grad()
        def recurrent_fn(embedding: th.Tensor, action: np.ndarray) -> tuple[SampledRecurrentOutput, th.Tensor]:
            pre_squash = th.as_tensor(np.asarray(action), dtype=th.float32, device=embedding.device)
            next_hidden, reward_logits, policy_output, value_logits = self.recurrent_inference(
                embedding, squash_action(pre_squash)
            )
            candidates, log_pi, log_beta = self._candidates(policy_output, num_samples, rng)
            output = SampledRecurrentOutput(
                reward=self.reward_scalar(reward_logits).cpu().numpy(),
                discount=np.full(embedding.shape[0], self.discount),
                candidates=candidates,
                log_pi=log_pi,
                log_beta=log_beta,
                value=self.value_scalar(value_logits).cpu().numpy(),
            )
            return output, next_hidden

        # The search hands back the embeddings this network made (its root's tensors), so the protocol's
        # ``Embedding`` union is always a tensor here.
        return cast(SampledRecurrentFn, recurrent_fn)

    def recurrent(self, embedding: th.Tensor, action: Any) -> tuple[RecurrentOutput, th.Tensor]:
        raise TypeError(
            "GaussianMlpMuZeroNetwork has continuous actions: search it with gym_planning.search.sampled_search "
            "through sampled_root and sampled_recurrent_fn, not with a discrete search"
        )
