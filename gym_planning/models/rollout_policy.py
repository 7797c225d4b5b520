"""A trained agent's greedy policy, cheap enough to drive the simulator's leaf rollouts.

A rollout of R steps from each of S leaves asks the rollout policy R x S times per decision (about 8,000
calls at 256 simulations of 30-step rollouts). SB3's ``predict`` spends ~0.3 ms per call on bookkeeping
(training-mode switches, observation checks, a torch distribution) around a network that needs ~10 us, so
:func:`greedy_policy` evaluates the same network from a NumPy copy of its weights: the actor path of an SB3
PPO/A2C (``features_extractor`` -> ``mlp_extractor.policy_net`` -> ``action_net``, argmax of the logits) or a
DQN's Q-network (argmax of Q), in float32 as torch computes it. Anything else (image or dict observations, a
custom extractor or layer, a MuZero agent) keeps its own ``predict(observation, deterministic=True)``.

The copy is taken when the policy is built: train the agent further and build it again.

Shapes: ``B`` batch, ``A`` actions.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.torch_layers import FlattenExtractor
from torch import nn

from gym_planning.models.simulator import RolloutPolicy

__all__ = ["greedy_policy", "numpy_mlp"]

_Layer = Callable[[np.ndarray], np.ndarray]
_ACTIVATIONS: dict[type, _Layer] = {
    nn.Tanh: np.tanh,
    nn.ReLU: lambda x: np.maximum(x, np.float32(0.0)),
    nn.Identity: lambda x: x,
    nn.Flatten: lambda x: x.reshape(len(x), -1),
}
"""Parameter-free modules and their NumPy equivalents (``nn.Flatten`` with its default ``start_dim=1``)."""


def _linear(module: nn.Linear) -> _Layer:
    weight = module.weight.detach().cpu().numpy().astype(np.float32).T.copy()  # [in, out]
    bias = None if module.bias is None else module.bias.detach().cpu().numpy().astype(np.float32).copy()
    return (lambda x: x @ weight + bias) if bias is not None else (lambda x: x @ weight)


def numpy_mlp(*modules: nn.Module) -> _Layer | None:
    """The composition of ``modules`` (applied in order) as a NumPy function, or None if one is not supported.

    Supported: ``nn.Linear``, ``nn.Tanh``, ``nn.ReLU``, ``nn.Identity``, ``nn.Flatten(start_dim=1)``, SB3's
    ``FlattenExtractor`` and ``nn.Sequential`` of these.
    """
    layers: list[_Layer] = []
    for module in modules:
        if isinstance(module, nn.Sequential):
            inner = numpy_mlp(*module)
            if inner is None:
                return None
            layers.append(inner)
        elif isinstance(module, nn.Linear):
            layers.append(_linear(module))
        elif isinstance(module, FlattenExtractor):
            layers.append(_ACTIVATIONS[nn.Flatten])
        elif type(module) in _ACTIVATIONS and not (isinstance(module, nn.Flatten) and module.start_dim != 1):
            layers.append(_ACTIVATIONS[type(module)])
        else:
            return None

    def forward(x: np.ndarray) -> np.ndarray:
        for layer in layers:
            x = layer(x)
        return x

    return forward


def _actor_modules(policy: Any) -> tuple[nn.Module, ...] | None:
    """The modules from observation to logits (PPO, A2C) or Q-values (DQN); None for other policies."""
    if hasattr(policy, "mlp_extractor") and hasattr(policy, "action_net"):  # ActorCriticPolicy
        return policy.pi_features_extractor, policy.mlp_extractor.policy_net, policy.action_net
    q_net = getattr(policy, "q_net", None)
    if q_net is not None and hasattr(q_net, "features_extractor") and hasattr(q_net, "q_net"):  # DQN's QNetwork
        return q_net.features_extractor, q_net.q_net
    return None


def greedy_policy(agent: Any) -> RolloutPolicy:
    """``policy(observation [B, ...]) -> action [B]``: the agent's ``predict(observation, deterministic=True)``.

    :param agent: a trained agent. An SB3 PPO/A2C/DQN with a flat Box observation space, a Discrete action space
        and an MLP of ``Linear``/``Tanh``/``ReLU`` layers gets the NumPy copy of its network (same actions, ~20x
        cheaper); any other agent with SB3's ``predict`` is called as it is.
    """
    policy = getattr(agent, "policy", None)
    modules = _actor_modules(policy) if policy is not None else None
    flat_box = isinstance(getattr(agent, "observation_space", None), spaces.Box) and len(agent.observation_space.shape) == 1
    discrete = isinstance(getattr(agent, "action_space", None), spaces.Discrete)
    network = numpy_mlp(*modules) if modules is not None and flat_box and discrete else None
    if network is None:
        if not callable(getattr(agent, "predict", None)):
            raise TypeError(f"greedy_policy needs an agent with SB3's predict(observation, deterministic=True); got {agent!r}")

        def predicted(observation: np.ndarray) -> np.ndarray:
            return np.asarray(agent.predict(observation, deterministic=True)[0])

        return predicted

    def greedy(observation: np.ndarray) -> np.ndarray:
        return network(np.asarray(observation, np.float32).reshape(len(observation), -1)).argmax(-1)

    return greedy
