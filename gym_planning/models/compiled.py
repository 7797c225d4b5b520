"""A Numba copy of :class:`~gym_planning.models.networks.MlpMuZeroNetwork` for search on the CPU.

A torch network pays ~0.1 ms of framework overhead per call, and a search calls it once per
simulation: at 16 simulations over 4 envs that overhead is most of MuZero's acting time. The copy
here evaluates the same network (in float64) inside the search's compiled loop, through
:class:`~gym_planning.search.JitRecurrentFn`, so acting, reanalyse and ``predict`` run search and model
without returning to Python. torch keeps training; :meth:`CompiledMlpModel.sync` copies the weights.

Every weight lives in one flat float64 array (``params``), laid out as:

``[discount, num_actions, value_support_size, reward_support_size,
offset of representation, dynamics, reward, policy, value MLP]`` then one block per MLP:
``[num_layers, (in, out, has_layer_norm) x num_layers, then per layer W^T [in, out], bias [out],
(LayerNorm weight [out], bias [out])]``.

Letters: ``B`` batch, ``D`` flattened observation, ``L`` latent, ``A`` actions.
"""

from __future__ import annotations

import numpy as np
import torch as th
from numba import njit
from torch import nn

from gym_planning.models.networks import HIDDEN_STATE_EPS, MlpMuZeroNetwork
from gym_planning.models.support import TRANSFORM_EPS
from gym_planning.search import JitRecurrentFn, RootOutput

# Header fields of ``params``.
_DISCOUNT, _NUM_ACTIONS, _VALUE_SUPPORT, _REWARD_SUPPORT = 0, 1, 2, 3
_REPRESENTATION, _DYNAMICS, _REWARD, _POLICY, _VALUE = 4, 5, 6, 7, 8
_HEADER_SIZE = 9
# torch's nn.LayerNorm default; MlpMuZeroNetwork builds its LayerNorms with it.
_LAYER_NORM_EPS = 1e-5


class NotCompilableError(TypeError):
    """The network is not one :class:`CompiledMlpModel` can copy (a custom module or another family)."""


def _mlp_layers(mlp: nn.Module, name: str) -> list[tuple[nn.Linear, nn.LayerNorm | None]]:
    """``(Linear, LayerNorm or None)`` per layer of a ``Linear -> LayerNorm -> ReLU ... -> Linear`` stack."""
    if not isinstance(mlp, nn.Sequential):
        raise NotCompilableError(f"{name} is a {type(mlp).__name__}, not the nn.Sequential MlpMuZeroNetwork builds")
    modules = list(mlp)
    layers: list[tuple[nn.Linear, nn.LayerNorm | None]] = []
    i = 0
    while i < len(modules):
        linear = modules[i]
        if not isinstance(linear, nn.Linear):
            raise NotCompilableError(f"{name}[{i}] is a {type(linear).__name__}; expected nn.Linear")
        if i == len(modules) - 1:
            layers.append((linear, None))
            break
        norm, relu = modules[i + 1 : i + 3] if i + 3 <= len(modules) else (None, None)
        if not (isinstance(norm, nn.LayerNorm) and isinstance(relu, nn.ReLU) and norm.eps == _LAYER_NORM_EPS):
            raise NotCompilableError(f"{name}[{i + 1}:{i + 3}] is not LayerNorm(eps=1e-5) -> ReLU")
        layers.append((linear, norm))
        i += 3
    return layers


def _mlp_layout(mlp: nn.Module, name: str) -> tuple[np.ndarray, list[th.Tensor]]:
    """The block header of one MLP and its tensors in the order the block stores them."""
    layers = _mlp_layers(mlp, name)
    header = [float(len(layers))]
    tensors: list[th.Tensor] = []
    for linear, norm in layers:
        header += [linear.in_features, linear.out_features, float(norm is not None)]
        # W^T [in, out], a live view of the weight: the inner loop of _affine then reads contiguous memory.
        tensors += [linear.weight.detach().t(), linear.bias.detach()]
        tensors += [norm.weight.detach(), norm.bias.detach()] if norm is not None else []
    return np.array(header, np.float64), tensors


def _network_layout(network: MlpMuZeroNetwork) -> list[tuple[np.ndarray, list[th.Tensor]]]:
    # A subclass may compute differently, so only the exact class is copied.
    if type(network) is not MlpMuZeroNetwork:
        raise NotCompilableError(
            f"only MlpMuZeroNetwork can run compiled; got {type(network).__name__}: use inference='torch'"
        )
    parts = [
        ("representation_net", network.representation_net),
        ("dynamics_net", network.dynamics_net),
        ("reward_net", network.reward_net),
        ("policy_net", network.policy_net),
        ("value_net", network.value_net),
    ]
    return [_mlp_layout(module, name) for name, module in parts]


def _pack(network: MlpMuZeroNetwork, layout: list[tuple[np.ndarray, list[th.Tensor]]]) -> np.ndarray:
    """The flat float64 ``params`` of ``network`` (layout in the module docstring)."""
    blocks = []
    for block_header, tensors in layout:
        weights = th.cat([t.reshape(-1) for t in tensors]).cpu().double().numpy()
        blocks.append(np.concatenate([block_header, weights]))
    header = np.zeros(_HEADER_SIZE)
    header[:_REPRESENTATION] = network.discount, network.num_actions, network.value_support_size, network.reward_support_size
    header[_REPRESENTATION:] = _HEADER_SIZE + np.cumsum([0] + [len(block) for block in blocks[:-1]])
    return np.concatenate([header, *blocks])


@njit(cache=True, fastmath=True)
def _affine(x, weight, bias):
    """``x [B, in] @ weight [in, out] + bias [out]`` in plain loops.

    Faster here than BLAS: the layers are small, the inner loop over ``out`` vectorises, rows of zeros
    (after ReLU, one-hot actions) are skipped, and no BLAS thread pool competes for the cores.
    """
    batch_size, n_in = x.shape
    n_out = weight.shape[1]
    y = np.empty((batch_size, n_out))
    for b in range(batch_size):
        y[b] = bias
        for k in range(n_in):
            xk = x[b, k]
            if xk != 0.0:
                for j in range(n_out):
                    y[b, j] += xk * weight[k, j]
    return y


@njit(cache=True)
def _mlp(params, offset, x):
    """Evaluate the MLP block at ``params[offset]`` on ``x [B, in]`` -> ``[B, out]``."""
    num_layers = int(params[offset])
    cursor = offset + 1 + 3 * num_layers
    for layer in range(num_layers):
        shape = offset + 1 + 3 * layer
        n_in, n_out, has_norm = int(params[shape]), int(params[shape + 1]), params[shape + 2] > 0
        weight = params[cursor : cursor + n_in * n_out].reshape((n_in, n_out))
        cursor += n_in * n_out
        y = _affine(x, weight, params[cursor : cursor + n_out])
        cursor += n_out
        if has_norm:
            gain, bias = params[cursor : cursor + n_out], params[cursor + n_out : cursor + 2 * n_out]
            cursor += 2 * n_out
            for b in range(y.shape[0]):
                mean = y[b].mean()
                var = ((y[b] - mean) ** 2).mean()
                inv = 1.0 / np.sqrt(var + _LAYER_NORM_EPS)
                for j in range(n_out):
                    y[b, j] = max((y[b, j] - mean) * inv * gain[j] + bias[j], 0.0)
        x = y
    return x


@njit(cache=True)
def _normalize_hidden(hidden):
    """Min-max normalise each row to [0, 1] in place (as ``networks.normalize_hidden_state``)."""
    for b in range(hidden.shape[0]):
        low, high = hidden[b].min(), hidden[b].max()
        hidden[b] = (hidden[b] - low) / (high - low + HIDDEN_STATE_EPS)
    return hidden


@njit(cache=True)
def _support_to_scalar(logits, support_size, out):
    """``out[b] = h^-1(sum_i softmax(logits[b])_i * i)`` over bins ``-support_size .. support_size``."""
    eps = TRANSFORM_EPS
    for b in range(logits.shape[0]):
        top = logits[b].max()
        total = 0.0
        expected = 0.0
        for i in range(logits.shape[1]):
            p = np.exp(logits[b, i] - top)
            total += p
            expected += p * (i - support_size)
        y = expected / total
        root = (np.sqrt(1.0 + 4.0 * eps * (abs(y) + 1.0 + eps)) - 1.0) / (2.0 * eps)
        out[b] = np.sign(y) * (root * root - 1.0)


@njit(cache=True)
def _prediction(params, hidden, prior_logits, value):
    """``f``: policy logits ``[B, A]`` and scalar value ``[B]`` written in place."""
    prior_logits[:] = _mlp(params, int(params[_POLICY]), hidden)
    _support_to_scalar(_mlp(params, int(params[_VALUE]), hidden), int(params[_VALUE_SUPPORT]), value)


@njit(cache=True)
def compiled_root(params, observation):
    """``h`` then ``f`` on preprocessed, flattened observations ``[B, D]`` float64.

    :return: ``(prior_logits [B, A], value [B], hidden [B, L])``.
    """
    hidden = _normalize_hidden(_mlp(params, int(params[_REPRESENTATION]), observation))
    batch_size = observation.shape[0]
    prior_logits = np.empty((batch_size, int(params[_NUM_ACTIONS])))
    value = np.empty(batch_size)
    _prediction(params, hidden, prior_logits, value)
    return prior_logits, value, hidden


@njit(cache=True)
def compiled_recurrent(params, embedding, action, reward, discount, prior_logits, value, legal_mask, new_embedding):
    """The :class:`~gym_planning.search.JitRecurrentFn` of the copied network: ``g`` then ``f``.

    The learned model never predicts termination: ``discount`` is the network's constant and every
    action stays legal (``legal_mask`` is left as the search preset it, all True).
    """
    batch_size, latent = embedding.shape
    num_actions = int(params[_NUM_ACTIONS])
    x = np.zeros((batch_size, latent + num_actions))
    x[:, :latent] = embedding
    for b in range(batch_size):
        x[b, latent + action[b]] = 1.0
    hidden = _normalize_hidden(_mlp(params, int(params[_DYNAMICS]), x))
    new_embedding[:] = hidden
    _support_to_scalar(_mlp(params, int(params[_REWARD]), hidden), int(params[_REWARD_SUPPORT]), reward)
    discount[:] = params[_DISCOUNT]
    _prediction(params, hidden, prior_logits, value)


class CompiledMlpModel:
    """A Numba copy of an :class:`MlpMuZeroNetwork` that the search runs in its compiled loop.

    ``root(observation)`` returns numpy roots whose embeddings are float64 ``[B, L]``; pass
    ``recurrent_fn`` (a :class:`~gym_planning.search.JitRecurrentFn`) to the search policies.
    Outputs agree with the torch network to float32 precision (they are computed in float64).

    :param network: the torch network to copy (weights are copied now and by :meth:`sync`).
    :raises NotCompilableError: for a network this class cannot copy.
    """

    def __init__(self, network: MlpMuZeroNetwork):
        self.network = network
        layout = _network_layout(network)
        self.params = _pack(network, layout)
        # Where each MLP's weights start in ``params``, and its tensors in that order, for :meth:`sync`.
        offsets = self.params[_REPRESENTATION:_HEADER_SIZE].astype(np.int64)
        self._blocks = [(int(offset) + len(block_header), tensors) for offset, (block_header, tensors) in zip(offsets, layout)]
        self._params_view = th.from_numpy(self.params)
        # Listed once: walking the modules at each refresh cost more than the version check itself.
        self._parameters = list(network.parameters())
        self._synced_version = self._weights_version()
        self._stale = False

    def _weights_version(self) -> int:
        # torch bumps a tensor's version on most in-place changes (load_state_dict, SGD, per-tensor Adam),
        # but fused optimizers update in place without bumping it: their callers must mark_stale().
        return sum(p._version for p in self._parameters)

    def mark_stale(self) -> None:
        """Say that the torch weights changed (e.g. after an optimizer step): the next :meth:`refresh` copies."""
        self._stale = True

    def sync(self) -> None:
        """Copy the torch network's current weights into ``params`` in place (the layout is fixed)."""
        with th.no_grad():
            for start, tensors in self._blocks:
                flat = th.cat([t.reshape(-1) for t in tensors])
                self._params_view[start : start + flat.numel()].copy_(flat)
        self._synced_version = self._weights_version()
        self._stale = False

    def refresh(self) -> None:
        """:meth:`sync` if the weights were marked stale or changed their torch version since the last copy."""
        if self._stale or self._weights_version() != self._synced_version:
            self.sync()

    @property
    def recurrent_fn(self) -> JitRecurrentFn:
        """The search's ``recurrent_fn`` over embeddings from :meth:`root` (call :meth:`refresh` first)."""
        return JitRecurrentFn(compiled_recurrent, self.params)

    def root(self, observation: np.ndarray | th.Tensor) -> RootOutput:
        """Roots for raw observations ``[B, *obs_shape]``, preprocessed as the torch network does:
        ``prior_logits [B, A]``, ``value [B]``, ``embedding [B, L]``, all float64 numpy arrays."""
        with th.no_grad():
            flat = self.network.preprocess(observation).flatten(1).cpu().numpy()
        prior_logits, value, hidden = compiled_root(self.params, np.ascontiguousarray(flat, dtype=np.float64))
        return RootOutput(prior_logits=prior_logits, value=value, embedding=hidden)
