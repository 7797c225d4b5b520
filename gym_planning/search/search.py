"""The batched search loop: ``num_simulations`` times, select in Numba, call the model once for all the
trees that expand, then expand and back up in Numba (:mod:`gym_planning.search.simulation`).

Two loops run that same body: one in Python for a model that is a Python callback (a torch network, an
environment), making one kernel call per simulation (:func:`_finish_and_select`: this simulation's
expansion and backup, then the next one's selection), and one compiled for a
:class:`~gym_planning.search.compiled_model.JitRecurrentFn`, where no Python runs between simulations. Root preparation (noise, masks) and the final action live in
:mod:`gym_planning.search.policies`. Shapes: ``B`` trees, ``N`` nodes, ``A`` actions, ``K`` expanding trees.
"""

from __future__ import annotations

import functools
import os

import numpy as np
from numba import njit, prange

from gym_planning.search.base import RecurrentFn
from gym_planning.search.borrowed import borrowed, borrowed_trees
from gym_planning.search.checks import check_child_mask, check_recurrent_output, to_numpy, unpack_recurrent_result
from gym_planning.search.compiled_model import JitRecurrentFn, call_model, compiled_model
from gym_planning.search.embeddings import EmbeddingStore
from gym_planning.search.simulation import GUMBEL, LOGITS_ERROR, MUZERO, OVERFLOW, finish_simulation, select
from gym_planning.search.tree import Tree, TreeArrays

__all__ = ["GUMBEL", "MUZERO", "OVERFLOW", "compiled_search_error", "overflow_message", "run_search", "to_numpy"]

# Names of the model outputs in the kernels' error codes (simulation.REWARD_ERROR ...).
_OUTPUT_FIELDS = {1: "reward", 2: "discount", 3: "value", 4: "prior_logits"}


def overflow_message(simulation: int) -> str:
    """The error for :data:`OVERFLOW`: what overflowed and what to do."""
    return (
        f"the search's values overflowed float64 at simulation {simulation}: the model's rewards, values, discounts "
        "or the search settings are too large in magnitude (backed-up values, Q or sigma reached NaN/inf); "
        "scale rewards and values down (e.g. to [-1e6, 1e6]) and keep discounts in [0, 1]"
    )


def compiled_search_error(code: int, num_simulations: int) -> ValueError:
    """The error for a nonzero result of the compiled loop (``code * (num_simulations + 1) + simulation``)."""
    code, simulation = divmod(code, num_simulations + 1)
    return _error(code, simulation, "the jitted model")


def _error(code: int, simulation: int, model: str) -> ValueError:
    """The error for a kernel's code at ``simulation``; ``model`` names the model in the message."""
    if code == OVERFLOW:
        return ValueError(overflow_message(simulation))
    hint = " (logits must be finite or -inf, with a finite one in every row)" if code == LOGITS_ERROR else ""
    return ValueError(f"{model} returned a NaN or infinite {_OUTPUT_FIELDS[code]} at simulation {simulation}{hint}")


class _Buffers:
    """The arrays the Python-callback loop passes between its kernels, allocated once per search.

    ``[B]``: the walk's end (``parent``, ``action``, ``expand``) and the new nodes' embedding ``slots``;
    the model's outputs spread over the B trees (``reward``, ``discount``, ``value``, ``logits`` and
    ``legal`` ``[B, A]``); ``rows``, ``model_slots``, ``model_actions``: for the K trees that ask the model,
    their index, their parent's embedding slot and the action, packed into the first K entries, and
    ``new_slots`` the slots of the K new nodes.
    """

    def __init__(self, batch_size: int, num_actions: int):
        self.parent = np.zeros(batch_size, np.int32)
        self.action = np.zeros(batch_size, np.int64)
        self.expand = np.zeros(batch_size, np.bool_)
        self.slots = np.zeros(batch_size, np.int64)
        self.scratch = np.empty((2, num_actions))
        self.reward, self.discount, self.value = np.zeros(batch_size), np.zeros(batch_size), np.zeros(batch_size)
        self.logits = np.zeros((batch_size, num_actions))
        self.legal = np.ones((batch_size, num_actions), np.bool_)
        self.rows = np.zeros(batch_size, np.int64)
        self.model_slots = np.zeros(batch_size, np.int64)
        self.model_actions = np.zeros(batch_size, np.int64)
        self.new_slots = np.zeros(batch_size, np.int64)
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
    num_threads: int,
) -> Tree:
    """Run ``num_simulations`` batched simulations on a tree whose roots are already set up.

    ``policy`` is the selection rule (:data:`MUZERO` or :data:`GUMBEL`), ``params`` the kernels' float
    settings (layout ``simulation.P_*``), ``considered_table`` / ``num_considered`` Gumbel's Sequential
    Halving schedule, ``discount_sign`` -1 in two-player search. ``num_threads`` > 1 searches a compiled
    model's trees in that many parts in parallel (:func:`parallel_parts`); a Python model is always searched
    in one thread. Raises ``ValueError`` on a model output with NaN/inf or an overflow of the search's values.
    """
    # The kernels called from Python take the record's fields as a plain tuple and rebuild the record inside
    # (Tree.fields).
    fields = tree.fields
    settings = (policy, params, considered_table, num_considered, max_depth)
    if isinstance(recurrent_fn, JitRecurrentFn):
        model_address, model_params = compiled_model(recurrent_fn, store.data)
        model = (discount_sign, update_bounds, model_address, model_params, store.data, num_simulations)
        parts = parallel_parts(tree.batch_size, num_threads)
        if parts > 1:
            _passive_omp_threads()
            code = _search_compiled_parallel(fields, *settings, *model, parts)
        else:
            code = search_compiled(fields, *settings, *model)
        if code:
            raise compiled_search_error(code, num_simulations)
        return tree
    batch_size, num_actions = tree.root_gumbel.shape
    b = _Buffers(batch_size, num_actions)
    walk = (b.parent, b.action, b.expand, b.scratch, b.rows, b.model_slots, b.model_actions)
    spread = (b.reward, b.discount, b.logits, b.value, b.legal)
    # One kernel call per simulation (each call costs microseconds of argument unboxing, a large part of a
    # small batch's simulation): it finishes a simulation and selects the next one's walks.
    count = _select_and_pack(fields, *settings, *walk)
    for simulation in range(num_simulations):
        if count < 0:  # selecting this simulation's walks overflowed
            raise ValueError(overflow_message(simulation))
        outputs, new_embedding = _call_model(recurrent_fn, store, b, count, num_actions)
        expanded = count
        count = _finish_and_select(fields, *settings, discount_sign, update_bounds, simulation == num_simulations - 1, *walk,  # type: ignore[call-arg]
                                   expanded, *outputs, *spread, b.slots, b.new_slots)  # fmt: skip
        if count < 0 and count != _SELECT_OVERFLOW:
            raise _error(-count, simulation, "recurrent_fn")
        if expanded:
            store.scatter(b.new_slots[:expanded], new_embedding)
    return tree


def _call_model(recurrent_fn: RecurrentFn, store: EmbeddingStore, buffers: _Buffers, count: int, num_actions: int):
    """Call the model on the ``K = count`` trees whose walks expand (packed in ``buffers``); returns its
    checked outputs (``reward, discount [K], prior_logits [K, A], value [K], legal [K, A]``) and the K new
    embeddings (None when K = 0)."""
    if count == 0:
        return (buffers.reward[:0], buffers.discount[:0], buffers.logits[:0], buffers.value[:0], buffers.legal[:0]), None
    # Copies: the model may keep what it is given, and the buffers are rewritten next simulation.
    actions = buffers.model_actions[:count].copy()
    result = recurrent_fn(store.gather(buffers.model_slots[:count]), actions)
    output, new_embedding = unpack_recurrent_result(result)
    reward, discount, logits, value = check_recurrent_output(output, count, num_actions)
    if len(new_embedding) != count:
        raise ValueError(f"recurrent_fn returned {len(new_embedding)} new embeddings; expected one per action, {count}")
    legal = None if output.legal_mask is None else check_child_mask(to_numpy(output.legal_mask), count, num_actions)
    if legal is None:
        legal = buffers.all_legal[:count]
    return (reward, discount, logits, value, legal), new_embedding


# _finish_and_select's result when selecting the next simulation's walks overflowed (model and backup
# errors are -1 to -OVERFLOW).
_SELECT_OVERFLOW = -(OVERFLOW + 1)


@njit(cache=True, error_model="numpy")
def _select_and_pack(fields, rule, params, considered_table, num_considered, max_depth, parent, action, expand, scratch, rows,
                     model_slots, model_actions):  # fmt: skip
    """:func:`select`, then the K trees whose walks expand packed into the first K entries of ``rows`` (tree
    index), ``model_slots`` (the parent's embedding slot) and ``model_actions``. Returns K, or -1 on overflow.
    ``fields``: the :class:`TreeArrays` record as a plain tuple (borrowed: the caller holds it)."""
    arrays = borrowed_trees(TreeArrays(*fields))
    if select(arrays, rule, params, considered_table, num_considered, max_depth, parent, action, expand, scratch):
        return -1
    embedding_slots = arrays.embedding_slots
    count = 0
    for b in range(parent.shape[0]):
        if expand[b]:
            rows[count], model_slots[count], model_actions[count] = b, embedding_slots[b, parent[b]], action[b]
            count += 1
    return count


@njit(cache=True, error_model="numpy")
def _finish_and_select(fields, rule, params, considered_table, num_considered, max_depth, discount_sign, update_bounds, last,
                       parent, action, expand, scratch, rows, model_slots, model_actions, count, reward, discount, logits,
                       value, legal, full_reward, full_discount, full_logits, full_value, full_legal, slots,
                       new_slots):  # fmt: skip
    """The Python-callback loop's one kernel call per simulation: the model's outputs for the K = ``count``
    packed trees spread over the B trees (``full_*``), :func:`finish_simulation`, the K new nodes' embedding
    slots packed into ``new_slots``, then (unless ``last``) :func:`_select_and_pack` for the next simulation.

    Returns the next K (0 after the last simulation), ``-code`` for an error of the model's outputs or of
    the backup, or ``_SELECT_OVERFLOW``. ``fields``: the :class:`TreeArrays` record as a plain tuple.
    """
    arrays = borrowed_trees(TreeArrays(*fields))
    for k in range(count):
        b = rows[k]
        full_reward[b], full_discount[b], full_value[b] = reward[k], discount[k], value[k]
        for a in range(logits.shape[1]):
            full_logits[b, a], full_legal[b, a] = logits[k, a], legal[k, a]
    code = finish_simulation(arrays, parent, action, expand, full_reward, full_discount, full_logits, full_value, full_legal,
                             discount_sign, update_bounds, slots)  # fmt: skip
    if code:
        return -code
    for k in range(count):
        new_slots[k] = slots[rows[k]]
    if last:
        return 0
    count = _select_and_pack(fields, rule, params, considered_table, num_considered, max_depth, parent, action, expand,
                             scratch, rows, model_slots, model_actions)  # fmt: skip
    return _SELECT_OVERFLOW if count < 0 else count


# The smallest batch a parallel search splits: below it the threads cost more than they save (2 threads on the
# 2-core VM of issue 17: 0.7-0.9x of one thread at batch 16, about 1x at 64; docs/benchmarks.md).
PARALLEL_MIN_BATCH = 64


@functools.cache
def _passive_omp_threads() -> None:
    """Before the first parallel search, unless the user chose otherwise: OpenMP threads (Numba's threading
    layer when TBB is absent) that sleep rather than spin between parallel regions. Spinning threads on a
    machine whose cores are shared made a 2-thread search 3-50x slower than one thread (2-core VM, load 7);
    sleeping ones cost little on a quiet machine. (Read when the OpenMP runtime starts, at Numba's first
    parallel launch in this process.)"""
    if "NUMBA_THREADING_LAYER" not in os.environ:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def parallel_parts(batch_size: int, num_threads: int) -> int:
    """Into how many parts the compiled loop splits a batch of ``batch_size`` trees for ``num_threads``
    threads: 1 (one thread) below :data:`PARALLEL_MIN_BATCH` trees, else ``num_threads`` parts of at least
    ``PARALLEL_MIN_BATCH / 2`` trees."""
    if num_threads <= 1 or batch_size < PARALLEL_MIN_BATCH:
        return 1
    return max(1, min(num_threads, batch_size // (PARALLEL_MIN_BATCH // 2)))


@njit(cache=True, error_model="numpy")
def search_compiled(fields, rule, params, considered_table, num_considered, max_depth, discount_sign, update_bounds,
                     model_address, model_params, store, num_simulations):  # fmt: skip
    """:func:`run_search`'s loop with a Numba model (the C function at ``model_address``) compiled in.

    ``fields`` is the :class:`TreeArrays` record as a plain tuple, ``store`` the ``[B * N, E]`` embedding
    array. Returns 0, or ``code * (num_simulations + 1) + simulation`` with the kernels' error code.
    """
    return _search_rows(TreeArrays(*fields), rule, params, considered_table, num_considered, max_depth, discount_sign,
                        update_bounds, model_address, model_params, store, num_simulations)  # fmt: skip


@njit(cache=True, parallel=True, error_model="numpy")
def _search_compiled_parallel(fields, rule, params, considered_table, num_considered, max_depth, discount_sign,
                              update_bounds, model_address, model_params, store, num_simulations, num_parts):  # fmt: skip
    """:func:`search_compiled` with the trees split into ``num_parts`` parts searched in parallel, each with all
    its simulations (one parallel region per search: its threads start once). The trees are independent and
    a row-wise model gives each row the same outputs in any batch, so the trees are those of one thread; the
    model must be safe to call from several threads (a JitRecurrentFn that only reads its params is).
    Returns the error of the earliest simulation that failed, as :func:`search_compiled`.
    """
    arrays = TreeArrays(*fields)
    batch_size = arrays.root_gumbel.shape[0]
    part_size = -(-batch_size // num_parts)
    codes = np.zeros(num_parts, np.int64)
    for part in prange(num_parts):
        start = part * part_size
        stop = min(start + part_size, batch_size)
        if start < stop:
            codes[part] = _search_rows(_rows(arrays, start, stop), rule, params, considered_table,
                                       num_considered[start:stop], max_depth, discount_sign, update_bounds,
                                       model_address, model_params, store, num_simulations)  # fmt: skip
    first = 0
    for code in codes:
        if code and (first == 0 or code % (num_simulations + 1) < first % (num_simulations + 1)):
            first = code
    return first


@njit(cache=True, inline="always")
def _rows(arrays, start, stop):
    """The trees ``start:stop`` of a :class:`TreeArrays` record (views)."""
    return TreeArrays(arrays.edge_floats[start:stop], arrays.edge_ints[start:stop], arrays.edge_legal[start:stop],
                      arrays.node_visits[start:stop], arrays.raw_values[start:stop], arrays.node_values[start:stop],
                      arrays.parents[start:stop], arrays.action_from_parent[start:stop], arrays.node_depth[start:stop],
                      arrays.embedding_slots[start:stop], arrays.num_nodes[start:stop], arrays.value_bounds[start:stop],
                      arrays.root_gumbel[start:stop])  # fmt: skip


@njit(cache=True, error_model="numpy")
def _search_rows(arrays, rule, params, considered_table, num_considered, max_depth, discount_sign, update_bounds,
                 model_address, model_params, store, num_simulations):  # fmt: skip
    """All simulations of the trees in ``arrays`` (a :class:`TreeArrays` record), for :func:`search_compiled`."""
    # The arguments, borrowed (no reference counts: an atomic operation per array per node of every walk).
    arrays, params, considered_table = borrowed_trees(arrays), borrowed(params), borrowed(considered_table)
    num_considered, model_params, store = borrowed(num_considered), borrowed(model_params), borrowed(store)
    batch_size, num_actions = arrays.root_gumbel.shape
    parent = np.zeros(batch_size, np.int32)
    action = np.zeros(batch_size, np.int64)
    expand = np.zeros(batch_size, np.bool_)
    slots = np.zeros(batch_size, np.int64)
    reward, discount, value = np.zeros(batch_size), np.zeros(batch_size), np.zeros(batch_size)
    logits = np.zeros((batch_size, num_actions))
    legal = np.ones((batch_size, num_actions), np.bool_)
    embedding_size = store.shape[1]
    embedding = np.empty((batch_size, embedding_size), store.dtype)
    new_embedding = np.empty((batch_size, embedding_size), store.dtype)
    scratch = np.empty((2, num_actions))
    embedding_slots = arrays.embedding_slots
    for simulation in range(num_simulations):
        code = select(arrays, rule, params, considered_table, num_considered, max_depth, parent, action, expand, scratch)
        if code:
            return code * (num_simulations + 1) + simulation
        # Element by element, not row by row: a row view costs an atomic reference-count update.
        for b in range(batch_size):
            slot = embedding_slots[b, parent[b]]
            for e in range(embedding_size):
                embedding[b, e] = store[slot, e]
        legal[:] = True
        call_model(model_address, model_params, embedding, action, reward, discount, logits, value, legal, new_embedding)
        code = finish_simulation(arrays, parent, action, expand, reward, discount, logits, value, legal, discount_sign,
                                 update_bounds, slots)  # fmt: skip
        if code:
            return code * (num_simulations + 1) + simulation
        for b in range(batch_size):
            if expand[b]:
                for e in range(embedding_size):
                    store[slots[b], e] = new_embedding[b, e]
    return 0
