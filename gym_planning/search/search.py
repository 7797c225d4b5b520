"""The batched search loop: ``num_simulations`` times, select in Numba, call the model once for all the
trees that expand, then expand and back up in Numba (:mod:`gym_planning.search.simulation`).

Two loops run that same body: one in Python for a model that is a Python callback (a torch network, an
environment), one compiled for a :class:`~gym_planning.search.compiled_model.JitRecurrentFn`, where no
Python runs between simulations. Root preparation (noise, masks) and the final action live in
:mod:`gym_planning.search.policies`. Shapes: ``B`` trees, ``N`` nodes, ``A`` actions, ``K`` expanding trees.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gym_planning.search.base import RecurrentFn
from gym_planning.search.checks import check_child_mask, check_recurrent_output, to_numpy, unpack_recurrent_result
from gym_planning.search.compiled_model import JitRecurrentFn, compiled_model
from gym_planning.search.embeddings import EmbeddingStore
from gym_planning.search.simulation import GUMBEL, LOGITS_ERROR, MUZERO, OVERFLOW, finish_simulation, select
from gym_planning.search.tree import Tree, TreeArrays

__all__ = ["GUMBEL", "MUZERO", "OVERFLOW", "overflow_message", "run_search", "to_numpy"]

# Names of the model outputs in the kernels' error codes (simulation.REWARD_ERROR ...).
_OUTPUT_FIELDS = {1: "reward", 2: "discount", 3: "value", 4: "prior_logits"}


def overflow_message(simulation: int) -> str:
    """The error for :data:`OVERFLOW`: what overflowed and what to do."""
    return (
        f"the search's values overflowed float64 at simulation {simulation}: the model's rewards, values, discounts "
        "or the search settings are too large in magnitude (backed-up values, Q or sigma reached NaN/inf); "
        "scale rewards and values down (e.g. to [-1e6, 1e6]) and keep discounts in [0, 1]"
    )


def _error(code: int, simulation: int, model: str) -> ValueError:
    """The error for a kernel's code at ``simulation``; ``model`` names the model in the message."""
    if code == OVERFLOW:
        return ValueError(overflow_message(simulation))
    hint = " (logits must be finite or -inf, with a finite one in every row)" if code == LOGITS_ERROR else ""
    return ValueError(f"{model} returned a NaN or infinite {_OUTPUT_FIELDS[code]} at simulation {simulation}{hint}")


class _Buffers:
    """The per-simulation ``[B]`` and ``[B, A]`` arrays the loops pass between the kernels."""

    def __init__(self, batch_size: int, num_actions: int):
        self.parent = np.zeros(batch_size, np.int32)
        self.action = np.zeros(batch_size, np.int64)
        self.expand = np.zeros(batch_size, np.bool_)
        self.slots = np.zeros(batch_size, np.int64)
        self.scratch = np.empty((3, num_actions))
        self.all_legal = np.ones((batch_size, num_actions), np.bool_)  # for models that return no legal mask


def run_search(
    tree: Tree,
    store: EmbeddingStore,
    recurrent_fn: RecurrentFn | JitRecurrentFn,
    num_simulations: int,
    *,
    policy: int,
    params: np.ndarray,
    considered_table: np.ndarray,
    num_considered: np.ndarray,
    max_depth: int,
    discount_sign: float,
    update_bounds: bool,
) -> Tree:
    """Run ``num_simulations`` batched simulations on a tree whose roots are already set up.

    ``policy`` is the selection rule (:data:`MUZERO` or :data:`GUMBEL`), ``params`` the kernels' float
    settings (layout ``simulation.P_*``), ``considered_table`` / ``num_considered`` Gumbel's Sequential
    Halving schedule, ``discount_sign`` -1 in two-player search. Raises ``ValueError`` on a model output
    with NaN/inf or an overflow of the search's values.
    """
    arrays = tree.arrays
    settings = (policy, params, considered_table, num_considered, max_depth)
    if isinstance(recurrent_fn, JitRecurrentFn):
        model_fn, model_params = compiled_model(recurrent_fn, store.data)
        code = _search_compiled(arrays, *settings, discount_sign, update_bounds, model_fn, model_params, store.data,
                                num_simulations)  # fmt: skip
        if code:
            raise _error(*divmod(code, num_simulations + 1), "the jitted model")
        return tree
    batch_size, num_actions = tree.root_gumbel.shape
    buffers = _Buffers(batch_size, num_actions)
    rows = np.arange(batch_size)
    for simulation in range(num_simulations):
        if select(arrays, *settings, buffers.parent, buffers.action, buffers.expand, buffers.scratch):
            raise ValueError(overflow_message(simulation))
        # Only the trees that expand a new node ask the model: a perfect model then steps no env copy
        # for the others (walks that stopped at max_depth or a terminal step).
        expanding = rows if buffers.expand.all() else np.flatnonzero(buffers.expand)
        outputs, new_embedding = _call_model(recurrent_fn, store, arrays, buffers, expanding, num_actions)
        code = finish_simulation(arrays, buffers.parent, buffers.action, buffers.expand, *outputs, discount_sign,
                                 update_bounds, buffers.slots)  # fmt: skip
        if code:
            raise _error(code, simulation, "recurrent_fn")
        if expanding.size:
            store.scatter(buffers.slots[expanding], new_embedding)
    return tree


def _call_model(recurrent_fn: RecurrentFn, store: EmbeddingStore, arrays: TreeArrays, buffers: _Buffers,
                expanding: np.ndarray, num_actions: int):  # fmt: skip
    """Call the model on the ``K`` expanding trees; returns its outputs spread over the ``B`` trees
    (``reward, discount [B], prior_logits [B, A], value [B], legal [B, A]``) and the K new embeddings."""
    batch_size = buffers.parent.shape[0]
    num_rows = expanding.shape[0]
    if num_rows == 0:
        zeros = np.zeros(batch_size)
        return (zeros, zeros, np.zeros((batch_size, num_actions)), zeros, buffers.all_legal), None
    parent_slots = arrays.embedding_slots[expanding, buffers.parent[expanding]]
    output, new_embedding = unpack_recurrent_result(recurrent_fn(store.gather(parent_slots), buffers.action[expanding]))
    reward, discount, logits, value = check_recurrent_output(output, num_rows, num_actions)
    if len(new_embedding) != num_rows:
        raise ValueError(f"recurrent_fn returned {len(new_embedding)} new embeddings; expected one per action, {num_rows}")
    legal = None if output.legal_mask is None else check_child_mask(to_numpy(output.legal_mask), num_rows, num_actions)
    if legal is None:
        legal = buffers.all_legal[:num_rows]
    outputs = (reward, discount, logits, value, legal)
    if num_rows < batch_size:
        full = [np.zeros((batch_size, *part.shape[1:]), part.dtype) for part in outputs]
        for target, part in zip(full, outputs):
            target[expanding] = part
        outputs = tuple(full)
    return outputs, new_embedding


@njit(cache=True, error_model="numpy")
def _search_compiled(arrays, rule, params, considered_table, num_considered, max_depth, discount_sign, update_bounds,
                     model_fn, model_params, store, num_simulations):  # fmt: skip
    """:func:`run_search`'s loop with a Numba model (``model_fn``, a function pointer) compiled in.

    ``store`` is the ``[B * N, E]`` embedding array. Returns 0, or ``code * (num_simulations + 1) +
    simulation`` with the kernels' error code.
    """
    batch_size, num_actions = arrays.root_gumbel.shape
    parent = np.zeros(batch_size, np.int32)
    action = np.zeros(batch_size, np.int64)
    expand = np.zeros(batch_size, np.bool_)
    slots = np.zeros(batch_size, np.int64)
    reward, discount, value = np.zeros(batch_size), np.zeros(batch_size), np.zeros(batch_size)
    logits = np.zeros((batch_size, num_actions))
    legal = np.ones((batch_size, num_actions), np.bool_)
    embedding = np.empty((batch_size, store.shape[1]), store.dtype)
    new_embedding = np.empty((batch_size, store.shape[1]), store.dtype)
    scratch = np.empty((3, num_actions))
    embedding_slots = arrays.embedding_slots
    for simulation in range(num_simulations):
        code = select(arrays, rule, params, considered_table, num_considered, max_depth, parent, action, expand, scratch)
        if code:
            return code * (num_simulations + 1) + simulation
        for b in range(batch_size):
            embedding[b] = store[embedding_slots[b, parent[b]]]
        legal[:] = True
        model_fn(model_params, embedding, action, reward, discount, logits, value, legal, new_embedding)
        code = finish_simulation(arrays, parent, action, expand, reward, discount, logits, value, legal, discount_sign,
                                 update_bounds, slots)  # fmt: skip
        if code:
            return code * (num_simulations + 1) + simulation
        for b in range(batch_size):
            if expand[b]:
                store[slots[b]] = new_embedding[b]
    return 0
