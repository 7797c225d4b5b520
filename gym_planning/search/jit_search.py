"""The search loop with a Numba model compiled in (:class:`JitRecurrentFn`): no Python runs between
simulations. The kernels are those of :mod:`gym_planning.search.search`; the model is called through a
function pointer of a fixed signature, so this loop compiles once and is cached on disk for every model.

Shapes as in :mod:`gym_planning.search.tree`: ``B`` trees, ``N`` nodes, ``A`` actions, ``E`` embedding size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, types
from numba.core.types import WrapperAddressProtocol
from numba.experimental.function_type import _get_wrapper_address

from gym_planning.search.base import JitRecurrentFn
from gym_planning.search.embeddings import EmbeddingStore
from gym_planning.search.search import (
    _HINTS,
    _OUTPUT_FIELDS,
    OVERFLOW,
    expand_and_backup_batch,
    overflow_message,
    select_batch,
)
from gym_planning.search.tree import Tree


def run_jit(tree: Tree, store: EmbeddingStore, model: JitRecurrentFn, num_simulations: int, policy: int,
            params: np.ndarray, considered_table: np.ndarray, num_considered: np.ndarray, max_depth: int,
            discount_sign: float, update_bounds: bool) -> None:  # fmt: skip
    """:func:`gym_planning.search.search.run_search` for a :class:`JitRecurrentFn`: checks the embedding and
    the model's parameters, then runs :func:`run_search_jit`."""
    if not (isinstance(store.data, np.ndarray) and store.data.ndim == 2):
        raise TypeError("a JitRecurrentFn needs the root embedding as a 2-D numpy array [B, E]")
    if store.data.dtype not in _EMBEDDING_TYPES:
        raise TypeError(f"a JitRecurrentFn needs a float64 or int64 root embedding; got {store.data.dtype}")
    model_params = np.asarray(model.params)
    if model_params.dtype != np.float64 or model_params.ndim != 1:
        raise TypeError(
            f"JitRecurrentFn.params must be a 1-D float64 array; got {model_params.dtype} of shape {model_params.shape}"
        )
    code = run_search_jit(
        tree.children_index, tree.children_visits, tree.children_prior_logits, tree.children_legal, tree.children_rewards,
        tree.children_discounts, tree.children_values, tree.node_visits, tree.raw_values, tree.node_values, tree.parents,
        tree.action_from_parent, tree.node_depth, tree.embedding_slots, tree.num_nodes, tree.value_bounds, tree.root_gumbel,
        policy, params, considered_table, num_considered, max_depth, discount_sign, update_bounds,
        _compiled_model(model.fn, store.data.dtype), np.ascontiguousarray(model_params), store.data, num_simulations,
    )  # fmt: skip
    if code:
        field, simulation = divmod(code, num_simulations + 1)
        if field == OVERFLOW:
            raise ValueError(overflow_message(simulation))
        hint = _HINTS.get(field, "")
        raise ValueError(
            f"the jitted model returned a NaN or infinite {_OUTPUT_FIELDS[field]} at simulation {simulation}{hint}"
        )


def _model_signature(embedding_type: types.Type) -> types.Type:
    vector, matrix, embedding = types.float64[::1], types.float64[:, ::1], embedding_type[:, ::1]
    return types.void(vector, embedding, types.int64[::1], vector, vector, matrix, vector, types.boolean[:, ::1], embedding)


_EMBEDDING_TYPES = {np.dtype(np.float64): types.float64, np.dtype(np.int64): types.int64}


class _CompiledModel(WrapperAddressProtocol):
    """A Numba model function as a first-class function of a fixed signature.

    Passing it (rather than the dispatcher) keeps :func:`run_search_jit` generic over models, so Numba
    caches the search loop on disk once instead of recompiling it for every model in every process.
    """

    def __init__(self, fn: Any, embedding_dtype: np.dtype):
        self._signature = _model_signature(_EMBEDDING_TYPES[embedding_dtype])
        try:
            self._address = _get_wrapper_address(fn, self._signature)
        except Exception as error:
            raise TypeError(
                "JitRecurrentFn.fn must be an @njit function accepting (params float64[B], embedding "
                f"{embedding_dtype}[B, E], action int64[B], reward, discount, prior_logits, value, legal_mask, "
                f"new_embedding); compiling it failed: {error}"
            ) from None

    def __wrapper_address__(self) -> int:
        return self._address

    def signature(self) -> types.Type:
        return self._signature


_COMPILED_MODELS: dict[tuple[Any, np.dtype], _CompiledModel] = {}


def _compiled_model(fn: Any, embedding_dtype: np.dtype) -> _CompiledModel:
    key = (fn, embedding_dtype)
    if key not in _COMPILED_MODELS:
        _COMPILED_MODELS[key] = _CompiledModel(fn, embedding_dtype)
    return _COMPILED_MODELS[key]


@njit(cache=True)
def run_search_jit(
    children_index,
    children_visits,
    children_prior_logits,
    children_legal,
    children_rewards,
    children_discounts,
    children_values,
    node_visits,
    raw_values,
    node_values,
    parents,
    action_from_parent,
    node_depth,
    embedding_slots,
    num_nodes,
    value_bounds,
    root_gumbel,
    policy,
    params,
    considered_table,
    num_considered,
    max_depth,
    discount_sign,
    update_bounds,
    model_fn,
    model_params,
    store,
    num_simulations,
):
    """:func:`run_search` with a Numba model: the same kernels, with the model call compiled in.

    ``store`` is the ``[B * N, E]`` embedding array. Returns 0, or ``code * (num_simulations + 1) + simulation``
    with the expansion kernel's error code.
    """
    batch_size, _, num_actions = children_index.shape
    parent = np.zeros(batch_size, np.int32)
    action = np.zeros(batch_size, np.int64)
    expand = np.zeros(batch_size, np.bool_)
    slots = np.zeros(batch_size, np.int64)
    reward = np.zeros(batch_size)
    discount = np.zeros(batch_size)
    value = np.zeros(batch_size)
    logits = np.zeros((batch_size, num_actions))
    legal = np.ones((batch_size, num_actions), np.bool_)
    embedding = np.empty((batch_size, store.shape[1]), store.dtype)
    new_embedding = np.empty((batch_size, store.shape[1]), store.dtype)
    scratch = np.empty((3, num_actions))
    for simulation in range(num_simulations):
        code = select_batch(
            children_index, children_visits, children_prior_logits, children_legal, children_rewards,
            children_discounts, children_values, node_visits, raw_values, node_values, value_bounds, root_gumbel,
            policy, params, considered_table, num_considered, max_depth, parent, action, expand, scratch,
        )  # fmt: skip
        if code:
            return code * (num_simulations + 1) + simulation
        for b in range(batch_size):
            embedding[b] = store[embedding_slots[b, parent[b]]]
        legal[:] = True
        model_fn(model_params, embedding, action, reward, discount, logits, value, legal, new_embedding)
        for b in range(batch_size):
            empty = True
            for a in range(num_actions):
                if legal[b, a]:
                    empty = False
            if empty:  # terminal for a perfect model: keep it searchable, its discount 0 ends the value
                legal[b, :] = True
        code = expand_and_backup_batch(
            children_index, children_visits, children_prior_logits, children_legal, children_rewards,
            children_discounts, children_values, node_visits, raw_values, node_values, parents, action_from_parent,
            node_depth, embedding_slots, num_nodes, value_bounds, update_bounds, parent, action, expand, reward,
            discount, logits, value, legal, discount_sign, slots,
        )  # fmt: skip
        if code:
            return code * (num_simulations + 1) + simulation
        for b in range(batch_size):
            if expand[b]:
                store[slots[b]] = new_embedding[b]
    return 0
