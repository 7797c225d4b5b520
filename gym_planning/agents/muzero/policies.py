"""SB3 policies for MuZero: a :class:`~stable_baselines3.common.policies.BasePolicy` that owns the MuZero
network (``self.network``, a :class:`gym_planning.models.SearchModel`) and its optimizer.

``policy.predict`` acts with the raw policy head (no search); :meth:`gym_planning.agents.muzero.MuZero.predict`
searches with the network.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import Schedule

from gym_planning.models.networks import ConvMuZeroNetwork, MlpMuZeroNetwork, MuZeroNetwork


class MuZeroPolicy(BasePolicy):
    """Holds a MuZero network, its target copy (for bootstrap values) and the optimizer.

    :param observation_space: observation space (as seen through the VecEnv).
    :param action_space: ``Discrete(A)``.
    :param lr_schedule: learning-rate schedule (its value at progress 1 sets the initial rate).
    :param value_support_size: value bins ``-value_support_size .. value_support_size``.
    :param reward_support_size: reward bins ``-reward_support_size .. reward_support_size``.
    :param discount: per-step discount used inside the search.
    :param network_kwargs: keyword arguments of the network class (e.g. ``latent_dim``, ``hidden_sizes``
        for the MLP; ``channels``, ``num_blocks``, ``downsample`` for the conv network).
    :param normalize_images: divide image observations by 255.
    :param optimizer_class: torch optimizer class.
    :param optimizer_kwargs: extra optimizer arguments (e.g. ``weight_decay``); Adam and AdamW run ``fused=True``
        unless ``fused`` or ``foreach`` is given.
    """

    network_class: ClassVar[type[MuZeroNetwork]]

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        *,
        value_support_size: int = 20,
        reward_support_size: int = 5,
        discount: float = 0.997,
        network_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(
            observation_space,
            action_space,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )
        self.value_support_size = value_support_size
        self.reward_support_size = reward_support_size
        self.discount = discount
        self.network_kwargs = dict(network_kwargs or {})
        self.network = self.network_class(
            observation_space,
            int(action_space.n),
            value_support_size=value_support_size,
            reward_support_size=reward_support_size,
            discount=discount,
            normalize_images=normalize_images,
            **self.network_kwargs,
        )
        # Frozen copy that bootstraps value targets; the algorithm refreshes it from ``network``.
        self.target_network = copy.deepcopy(self.network).requires_grad_(False)
        optimizer_kwargs = dict(self.optimizer_kwargs)
        if self.optimizer_class in (th.optim.Adam, th.optim.AdamW) and not {"fused", "foreach"} & optimizer_kwargs.keys():
            # One fused kernel for all parameters: ~7x faster than the per-tensor default on the CPU.
            optimizer_kwargs["fused"] = True
        self.optimizer = self.optimizer_class(self.network.parameters(), lr=lr_schedule(1), **optimizer_kwargs)

    def _predict(self, observation: th.Tensor, deterministic: bool = False) -> th.Tensor:
        """Act with the policy head alone (no search): argmax, or a sample from its softmax."""
        _, policy_logits, _ = self.network.initial_inference(observation)
        if deterministic:
            return policy_logits.argmax(dim=1)
        return th.distributions.Categorical(logits=policy_logits).sample()

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            value_support_size=self.value_support_size,
            reward_support_size=self.reward_support_size,
            discount=self.discount,
            network_kwargs=self.network_kwargs,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
        )
        return data


class MlpPolicy(MuZeroPolicy):
    """MuZero policy with :class:`~gym_planning.models.networks.MlpMuZeroNetwork`."""

    network_class = MlpMuZeroNetwork


class CnnPolicy(MuZeroPolicy):
    """MuZero policy with :class:`~gym_planning.models.networks.ConvMuZeroNetwork` (channel-first images)."""

    network_class = ConvMuZeroNetwork
