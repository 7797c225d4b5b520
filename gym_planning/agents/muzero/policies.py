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

from gym_planning.models.networks import (
    ConvMuZeroNetwork,
    GaussianMlpMuZeroNetwork,
    MlpMuZeroNetwork,
    MuZeroNetwork,
    gaussian_parameters,
    squash_action,
)


class MuZeroPolicy(BasePolicy):
    """Holds a MuZero network, its target copy (for bootstrap values) and the optimizer.

    :param observation_space: observation space (as seen through the VecEnv).
    :param action_space: ``Discrete(A)``, or a bounded ``Box`` of shape ``(D,)`` where the policy has a
        ``box_network_class`` (Sampled MuZero; actions are normalised to ``[-1, 1]`` and ``predict`` rescales them).
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
    # The network for Box actions (a Gaussian policy head); None: this policy takes Discrete actions only.
    box_network_class: ClassVar[type[MuZeroNetwork] | None] = None

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete | spaces.Box,
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
            squash_output=isinstance(action_space, spaces.Box),
        )
        self.value_support_size = value_support_size
        self.reward_support_size = reward_support_size
        self.discount = discount
        self.network_kwargs = dict(network_kwargs or {})
        network_class, num_actions = self._network_class_for(action_space)
        self.network = network_class(
            observation_space,
            num_actions,
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
        # torch's stubs type the base Optimizer, whose __init__ takes no ``lr``; every optimizer class takes one.
        self.optimizer = self.optimizer_class(self.network.parameters(), lr=lr_schedule(1), **optimizer_kwargs)  # type: ignore[call-arg]

    @classmethod
    def _network_class_for(cls, action_space: spaces.Space) -> tuple[type[MuZeroNetwork], int]:
        """The network class and its ``num_actions`` (``A``, or ``D`` for a Box) for ``action_space``."""
        if isinstance(action_space, spaces.Discrete):
            return cls.network_class, int(action_space.n)
        if not isinstance(action_space, spaces.Box):
            raise ValueError(f"{cls.__name__} needs a Discrete or Box action space; got {action_space}")
        if cls.box_network_class is None:
            raise ValueError(
                f"{cls.__name__} has no network for Box actions: use MlpPolicy (Sampled MuZero's Gaussian policy "
                "head), or discretise the actions with gymnasium.wrappers.DiscretizeAction"
            )
        return cls.box_network_class, int(action_space.shape[0])

    # SB3 types ``observation`` as a tensor or a dict of them; MuZero refuses Dict observation spaces.
    def _predict(self, observation: th.Tensor, deterministic: bool = False) -> th.Tensor:  # type: ignore[override]
        """Act with the policy head alone (no search): argmax, or a sample from its softmax; for a Box the
        normalised action ``tanh(mean)``, or ``tanh`` of a sample from the Gaussian."""
        _, policy_logits, _ = self.network.initial_inference(observation)
        if isinstance(self.action_space, spaces.Box):
            mean, log_std = gaussian_parameters(policy_logits)
            return squash_action(mean if deterministic else mean + log_std.exp() * th.randn_like(mean))
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
    """MuZero policy with :class:`~gym_planning.models.networks.MlpMuZeroNetwork` (``Discrete`` actions) or
    :class:`~gym_planning.models.networks.GaussianMlpMuZeroNetwork` (``Box`` actions)."""

    network_class = MlpMuZeroNetwork
    box_network_class = GaussianMlpMuZeroNetwork


class CnnPolicy(MuZeroPolicy):
    """MuZero policy with :class:`~gym_planning.models.networks.ConvMuZeroNetwork` (channel-first images)."""

    network_class = ConvMuZeroNetwork
