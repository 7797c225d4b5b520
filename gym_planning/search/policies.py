"""Search policies: MuZero (pUCT) and Gumbel MuZero over a batch of B roots.

Each policy prepares the roots (mask, noise), runs :func:`gym_planning.search.search.run_search` and
turns the trees into an action, a policy target and a root value.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np
from numba import njit

from gym_planning.search.action_selection import LOW_LOGIT
from gym_planning.search.arena import carve, reuse
from gym_planning.search.base import RecurrentFn, RootOutput, SearchOutput
from gym_planning.search.checks import check_root, integer_setting, setting, value_bounds_setting
from gym_planning.search.compiled_model import JitRecurrentFn, compiled_model
from gym_planning.search.embeddings import EmbeddingStore
from gym_planning.search.qtransforms import MASKED_LOGIT, set_prior_probabilities, softmax
from gym_planning.search.search import compiled_search_error, overflow_message, parallel_parts, run_search, search_compiled
from gym_planning.search.seq_halving import considered_visits_table
from gym_planning.search.simulation import GUMBEL, MUZERO, gumbel_completed_q
from gym_planning.search.tree import (
    DISCOUNT,
    LOGIT,
    REWARD,
    ROOT_INDEX,
    TREE_DTYPES,
    VALUE,
    VISITS,
    Tree,
    TreeArrays,
    initialise,
    max_tree_nodes,
    tree_shapes,
)

# sigma's constants c_scale and c_visit (mctx's qtransform_completed_by_mix_value defaults).
VALUE_SCALE = 0.1
MAXVISIT_INIT = 50.0

# Seeding a fresh Generator from OS entropy costs ~10 µs, a tenth of a small search: share one.
_UNSEEDED_RNG = np.random.default_rng()


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return _UNSEEDED_RNG if rng is None else np.random.default_rng(rng)


def _new_tree(root: RootOutput, batch_size: int, num_actions: int, num_simulations: int, max_depth: int | None):
    """Trees with their contents undefined (the policy's start kernel fills them) and the embedding store
    holding the root embeddings at the roots' slots (``b * N``, as :func:`_set_roots` assigns them). With a numpy
    embedding both come from a workspace reused once the caller has dropped every part of it
    (:func:`~gym_planning.search.arena.reuse`), so a search builds no array objects for them."""
    num_nodes = max_tree_nodes(num_simulations, num_actions, max_depth)
    embedding = root.embedding
    if isinstance(embedding, np.ndarray) and not embedding.dtype.hasobject:
        key = (batch_size, num_nodes, num_actions, embedding.shape[1:], embedding.dtype)
        tree, store = reuse(key, functools.partial(_workspace, *key))
        store.set_roots(embedding, num_nodes)
        return tree, store
    tree = Tree.of_arrays(TreeArrays(*carve(tree_shapes(batch_size, num_nodes, num_actions), TREE_DTYPES)))
    return tree, EmbeddingStore.for_trees(embedding, batch_size, num_nodes)


def _workspace(batch_size: int, num_nodes: int, num_actions: int, embedding_shape: tuple[int, ...], dtype: np.dtype):
    """A search's trees and numpy embedding store ``[B * N, ...]`` carved from one buffer of their own, and every
    object in them that a caller can keep (:func:`~gym_planning.search.arena.reuse`'s ``build``)."""
    shapes = (*tree_shapes(batch_size, num_nodes, num_actions), (batch_size * num_nodes, *embedding_shape))
    *fields, data = carve(shapes, (*TREE_DTYPES, dtype), pooled=False)
    tree = Tree.of_arrays(TreeArrays(*fields))
    store = EmbeddingStore(data, len(data), data=data)
    return (tree, store), (tree, store, data, data.base, *vars(tree).values())


@njit(cache=True)
def _set_roots(fields, logits, value, legal):
    """Node 0 of each empty tree: the root's value, one visit, prior logits and probabilities ``[B, A]``, legal mask.
    ``fields``: the :class:`TreeArrays` record as a plain tuple (Numba types one faster than a NamedTuple)."""
    arrays = TreeArrays(*fields)
    edge_floats, node_visits, num_nodes = arrays.edge_floats, arrays.node_visits, arrays.num_nodes
    for b in range(logits.shape[0]):
        arrays.raw_values[b, ROOT_INDEX] = arrays.node_values[b, ROOT_INDEX] = value[b]
        node_visits[b, ROOT_INDEX] = 1
        num_nodes[b] = 1
        arrays.embedding_slots[b, ROOT_INDEX] = b * node_visits.shape[1]
        edge_floats[b, ROOT_INDEX, LOGIT] = logits[b]
        arrays.edge_legal[b, ROOT_INDEX] = legal[b]
        set_prior_probabilities(edge_floats, b, ROOT_INDEX)


@njit(cache=True)
def _start_muzero_trees(fields, logits, value, legal, noise, noise_is_gamma, fraction, value_low, value_high):
    """One kernel call that readies MuZero's trees: :func:`initialise`, the noisy root prior
    (:func:`_noisy_root_logits`), :func:`_set_roots`, and known value bounds when ``value_low <= value_high``.

    ``noise`` ``[B, A]`` is the Dirichlet noise, or (``noise_is_gamma``) the Gamma draws it is made of, which
    are normalised here exactly as numpy's ``Generator.dirichlet`` does (each draw times ``1 / sum``); an
    empty array means no noise. Returns the root logits ``[B, A]``.
    """
    initialise(fields)
    batch_size, num_actions = logits.shape
    weights = np.zeros((batch_size, num_actions))
    if noise.shape[0]:
        for b in range(batch_size):
            scale = 1.0
            if noise_is_gamma:
                total = 0.0
                for a in range(num_actions):
                    total += noise[b, a]
                scale = 1.0 / total
            for a in range(num_actions):
                weights[b, a] = noise[b, a] * scale
    root_logits = _noisy_root_logits(logits, legal, weights, fraction)
    _set_roots(fields, root_logits, value, legal)
    if value_low <= value_high:
        bounds = TreeArrays(*fields).value_bounds
        bounds[:, 0], bounds[:, 1] = value_low, value_high
    return root_logits


@njit(cache=True)
def _start_gumbel_trees(fields, logits, value, legal, gumbel):
    """One kernel call that readies Gumbel MuZero's trees: :func:`initialise`, the root logits masked and
    shifted so that the best legal one is 0 (illegal ones ``MASKED_LOGIT``), :func:`_set_roots`, and the
    root Gumbel noise ``[B, A]``. Returns the root logits ``[B, A]``."""
    initialise(fields)
    batch_size, num_actions = logits.shape
    root_logits = np.empty((batch_size, num_actions))
    for b in range(batch_size):
        top = -np.inf
        for a in range(num_actions):
            if legal[b, a] and logits[b, a] > top:
                top = logits[b, a]
        for a in range(num_actions):
            root_logits[b, a] = logits[b, a] - top if legal[b, a] else MASKED_LOGIT
    _set_roots(fields, root_logits, value, legal)
    TreeArrays(*fields).root_gumbel[...] = gumbel
    return root_logits


def _dirichlet_noise(rng: np.random.Generator, alpha: float, batch_size: int, num_actions: int) -> tuple[np.ndarray, bool]:
    """``[B, A]`` draws for the root noise, and whether they are Gamma draws still to be normalised.

    For ``alpha >= 0.1`` numpy's ``Generator.dirichlet`` draws ``standard_gamma(alpha)`` in this order and
    multiplies each row by ``1 / sum``; drawing the Gammas directly and normalising in the start kernel gives
    the same numbers from the same stream for a fifth of the cost. Below 0.1 numpy uses another method.
    """
    if alpha < 0.1:
        return rng.dirichlet(np.full(num_actions, alpha), size=batch_size), False
    return rng.standard_gamma(alpha, size=(batch_size, num_actions)), True


_FLOAT32_MAX = float(np.finfo(np.float32).max)

# Depth beyond which an unbounded search warns: each simulation walks the whole depth down and back up.
DEEP_TREE_WARNING = 1_000


def _warn_if_deep(tree: Tree, num_simulations: int, max_depth: int | None) -> None:
    """Warns when an unbounded search grew a chain so deep that its cost grows as simulations squared."""
    if max_depth is not None or num_simulations <= DEEP_TREE_WARNING:  # no check (and no cost) in ordinary searches
        return
    depth = int(tree.node_depth.max())
    if depth > DEEP_TREE_WARNING:
        warnings.warn(
            f"the search tree grew to depth {depth} with max_depth=None: every simulation walks the whole depth, so "
            "the time grows as num_simulations squared; pass max_depth=... (e.g. 50) to bound it",
            RuntimeWarning,
            stacklevel=3,
        )


def _root_value_error(tree: Tree) -> ValueError:
    """The error for root values beyond float32's range (:class:`SearchOutput.root_value` is float32)."""
    return ValueError(
        f"the search's root values {tree.node_values[:, ROOT_INDEX].tolist()} do not fit SearchOutput.root_value "
        "(float32, |x| < 3.4e38): scale the model's rewards and values down"
    )


@njit(cache=True)
def _root_value32(node_values, out):
    """``out[b] = float32(node_values[b, root])``; False when one is beyond float32's range (or NaN)."""
    for b in range(out.shape[0]):
        value = node_values[b, ROOT_INDEX]
        if not abs(value) <= _FLOAT32_MAX:
            return False
        out[b] = value
    return True


def muzero_policy(
    root: RootOutput,
    recurrent_fn: RecurrentFn | JitRecurrentFn,
    num_simulations: int,
    *,
    legal_mask: Any = None,
    max_depth: int | None = None,
    rng: np.random.Generator | int | None = None,
    dirichlet_alpha: float = 0.25,  # SearchConfig's default (search/config.py)
    dirichlet_fraction: float = 0.25,
    pb_c_init: float = 1.25,
    pb_c_base: float = 19652.0,
    temperature: float = 1.0,
    two_player: bool = False,
    value_bounds: tuple[float, float] | None = None,
    num_threads: int = 1,
) -> SearchOutput:
    """MuZero search (Schrittwieser et al. 2020): pUCT with Q min-max normalised over each tree.

    :param root: the model's output at the B roots (``prior_logits [B, A]``, ``value [B]``, embedding).
    :param recurrent_fn: ``(embedding, action [B]) -> (RecurrentOutput, new_embedding)``; called once
        per simulation for all B trees.
    :param num_simulations: simulations per tree (>= 1).
    :param legal_mask: ``[B, A]`` bool, True = legal, at the roots (None: all legal).
    :param max_depth: maximum tree depth in edges from the root; a walk that reaches it backs up the
        model's value of the node it stopped on (the seed's ``D_tree``). None: unbounded.
    :param rng: numpy Generator or seed, for Dirichlet noise and action sampling.
    :param dirichlet_alpha: concentration of the root Dirichlet noise.
    :param dirichlet_fraction: weight of the noise in the root prior; 0 disables it (evaluation).
    :param pb_c_init: pUCT ``c1``.
    :param pb_c_base: pUCT ``c2``.
    :param temperature: visit-count temperature for the acted action; 0 = most visited.
    :param two_player: zero-sum alternating play: values and rewards are for the player to move /
        who moved, and the search flips their sign at each level.
    :param value_bounds: known ``(min, max)`` of Q (e.g. ``(-1, 1)`` in board games) instead of
        bounds tracked over the tree.
    :param num_threads: threads for a compiled model's search (see :class:`~gym_planning.search.SearchConfig`).
    :return: :class:`SearchOutput`; ``action_weights`` are the visit-count probabilities.
    """
    temperature = setting("temperature", temperature, minimum=0.0)
    if not 0.0 <= setting("dirichlet_fraction", dirichlet_fraction) <= 1.0:
        raise ValueError(f"dirichlet_fraction must be in [0, 1]; got {dirichlet_fraction}")
    return run_muzero(
        root,
        recurrent_fn,
        num_simulations,
        legal_mask=legal_mask,
        max_depth=max_depth,
        rng=rng,
        dirichlet_alpha=setting("dirichlet_alpha", dirichlet_alpha, minimum=0.0, strict=True),
        dirichlet_fraction=dirichlet_fraction,
        params=muzero_params(
            setting("pb_c_init", pb_c_init, minimum=0.0), setting("pb_c_base", pb_c_base, minimum=0.0, strict=True)
        ),  # fmt: skip
        temperature=temperature,
        two_player=two_player,
        value_bounds=value_bounds_setting(value_bounds),
        num_threads=integer_setting("num_threads", num_threads, 1),
    )


def muzero_params(pb_c_init: float, pb_c_base: float) -> np.ndarray:
    """The kernels' float settings (layout ``simulation.P_*``) of a MuZero search."""
    return np.array([pb_c_init, pb_c_base, 0.0, 0.0, 0.0, 0.0])


def run_muzero(
    root: RootOutput,
    recurrent_fn: RecurrentFn | JitRecurrentFn,
    num_simulations: int,
    *,
    legal_mask: Any,
    max_depth: int | None,
    rng: np.random.Generator | int | None,
    dirichlet_alpha: float,
    dirichlet_fraction: float,
    params: np.ndarray,
    temperature: float,
    two_player: bool,
    value_bounds: tuple[float, float] | None,
    num_threads: int,
) -> SearchOutput:
    """:func:`muzero_policy` with its float settings already validated (as :class:`SearchConfig` does once, at
    construction), ``params`` from :func:`muzero_params`; the root, mask and tree size are checked here."""
    logits, value, legal = check_root(root, legal_mask, num_simulations, max_depth)
    rng = _as_rng(rng)
    batch_size, num_actions = logits.shape
    noise, noise_is_gamma = _NO_NOISE, False
    if dirichlet_fraction > 0:
        noise, noise_is_gamma = _dirichlet_noise(rng, dirichlet_alpha, batch_size, num_actions)
    tree, store = _new_tree(root, batch_size, num_actions, num_simulations, max_depth)
    low, high = (1.0, 0.0) if value_bounds is None else value_bounds  # low > high: bounds tracked over the tree
    start = (tree.fields, logits, value, legal, noise, noise_is_gamma, dirichlet_fraction, low, high)
    search_depth = num_simulations + 1 if max_depth is None else int(max_depth)
    discount_sign, num_considered = -1.0 if two_player else 1.0, np.zeros(batch_size, np.int64)
    action = np.empty(batch_size, np.int64)
    visit_probs = np.empty((batch_size, num_actions), np.float32)
    root_value = np.empty(batch_size, np.float32)
    if isinstance(recurrent_fn, JitRecurrentFn) and parallel_parts(batch_size, num_threads) == 1:
        # A compiled model on one thread: start, search and results in one kernel call (each call from Python
        # costs microseconds of argument unboxing, and a search at batch 1 is about a hundred). The action
        # draws come before the search instead of after it: a compiled model draws nothing, so they are the same.
        model_address, model_params = compiled_model(recurrent_fn, store.data)
        code = _muzero_compiled(*start, params, _NO_CONSIDERED_TABLE, num_considered, search_depth, discount_sign,
                                value_bounds is None, model_address, model_params, store.data, num_simulations, temperature,
                                rng.random(batch_size), action, visit_probs, root_value)  # fmt: skip
        if code > 0:
            raise compiled_search_error(code, num_simulations)
        _warn_if_deep(tree, num_simulations, max_depth)
        if code < 0:
            raise _root_value_error(tree)
        return SearchOutput(action, visit_probs, root_value, tree)
    _start_muzero_trees(*start)
    run_search(tree, store, recurrent_fn, num_simulations, policy=MUZERO, params=params,
               considered_table=_NO_CONSIDERED_TABLE, num_considered=num_considered, max_depth=search_depth,
               discount_sign=discount_sign, update_bounds=value_bounds is None, num_threads=num_threads)  # fmt: skip
    _warn_if_deep(tree, num_simulations, max_depth)
    arrays = tree.arrays
    if not _muzero_outputs(arrays.edge_floats, arrays.edge_ints, arrays.node_values, legal, temperature, rng.random(batch_size),
                           action, visit_probs, root_value):  # fmt: skip
        raise _root_value_error(tree)
    return SearchOutput(action, visit_probs, root_value, tree)


@njit(cache=True, error_model="numpy")
def _muzero_compiled(fields, logits, value, legal, noise, noise_is_gamma, fraction, value_low, value_high, params,
                     considered_table, num_considered, max_depth, discount_sign, update_bounds, model_address, model_params,
                     store, num_simulations, temperature, uniforms, action, visit_probs, root_value):  # fmt: skip
    """:func:`_start_muzero_trees`, the compiled search (:func:`~gym_planning.search.search.search_compiled`) and
    :func:`_muzero_outputs` in one kernel call. Returns 0, the search's error code (> 0), or -1 when a root
    value does not fit float32."""
    _start_muzero_trees(fields, logits, value, legal, noise, noise_is_gamma, fraction, value_low, value_high)
    code = search_compiled(fields, MUZERO, params, considered_table, num_considered, max_depth, discount_sign,
                            update_bounds, model_address, model_params, store, num_simulations)  # fmt: skip
    if code:
        return code
    arrays = TreeArrays(*fields)
    if not _muzero_outputs(arrays.edge_floats, arrays.edge_ints, arrays.node_values, legal, temperature, uniforms, action,
                           visit_probs, root_value):  # fmt: skip
        return -1
    return 0


# MuZero's search reads no Sequential Halving table and the start kernel no noise when there is none.
_NO_CONSIDERED_TABLE = np.zeros((1, 1), np.int32)
_NO_NOISE = np.zeros((0, 0))


@njit(cache=True, error_model="numpy")
def _muzero_outputs(edge_floats, edge_ints, node_values, legal, temperature, uniforms, action, visit_probs, root_value):
    """MuZero's results from the searched trees (three of their :class:`TreeArrays` fields: a kernel call costs
    per array passed), in one kernel call: the acted ``action`` ``[B]`` (:func:`_visit_count_action` over the
    root's visits and Q), the root's visit probabilities ``[B, A]`` float32, and the root values ``[B]``
    float32. False when a root value does not fit float32."""
    batch_size, num_actions = legal.shape
    visits = np.empty((batch_size, num_actions), np.int64)
    qvalues = np.empty((batch_size, num_actions))
    for b in range(batch_size):
        edges = edge_floats[b, ROOT_INDEX]
        total = 0
        for a in range(num_actions):
            visits[b, a] = edge_ints[b, ROOT_INDEX, VISITS, a]
            total += visits[b, a]
            qvalues[b, a] = edges[REWARD, a] + edges[DISCOUNT, a] * edges[VALUE, a]
        # As numpy's visits / float32(total): the count over a float32 total, divided in float64.
        denominator = np.float64(np.float32(total))
        for a in range(num_actions):
            visit_probs[b, a] = visits[b, a] / denominator
    action[:] = _visit_count_action(visits, qvalues, legal, temperature, uniforms)
    return _root_value32(node_values, root_value)


@njit(cache=True)
def _noisy_root_logits(logits, legal, noise, fraction):
    """``masked(log((1 - f) * softmax(masked(logits)) + f * noise))``, ``[B, A]``; illegal actions get MASKED_LOGIT."""
    batch_size, num_actions = logits.shape
    out = np.empty((batch_size, num_actions))
    tiny = np.finfo(np.float64).tiny
    for b in range(batch_size):
        top = -np.inf
        for a in range(num_actions):
            if legal[b, a] and logits[b, a] > top:
                top = logits[b, a]
        total = 0.0
        for a in range(num_actions):
            out[b, a] = np.exp(logits[b, a] - top) if legal[b, a] else 0.0
            total += out[b, a]
        log_top = -np.inf
        for a in range(num_actions):
            if legal[b, a]:
                out[b, a] = np.log(max((1.0 - fraction) * (out[b, a] / total) + fraction * noise[b, a], tiny))
                log_top = max(log_top, out[b, a])
        for a in range(num_actions):
            out[b, a] = out[b, a] - log_top if legal[b, a] else MASKED_LOGIT
    return out


@njit(cache=True)
def _visit_count_action(visits, qvalues, legal, temperature, uniforms):
    """Sample ``a`` with probability ``∝ n(a)^(1/T)`` over legal actions (``T = 0``: most visited; among equally
    visited actions the one with the higher Q ``[B, A]``, then the lowest index). ``uniforms`` ``[B]`` are draws in
    [0, 1). Returns ``[B]`` int64.

    Ties are common with few simulations (2 simulations over 2 actions visit each once): breaking them by index
    would act the same way in every state, breaking them by Q acts on what the search found.
    """
    batch_size, num_actions = visits.shape
    actions = np.zeros(batch_size, np.int64)
    weights = np.zeros(num_actions)
    for b in range(batch_size):
        best = -1
        for a in range(num_actions):
            if not legal[b, a]:
                continue
            if (
                best < 0
                or visits[b, a] > visits[b, best]
                or (visits[b, a] == visits[b, best] and visits[b, a] > 0 and qvalues[b, a] > qvalues[b, best])
            ):
                best = a
        actions[b] = best
        if temperature == 0:
            continue
        # Scale by the largest count first so that n^(1/T) cannot overflow at small T.
        total = 0.0
        for a in range(num_actions):
            weights[a] = (visits[b, a] / visits[b, best]) ** (1.0 / temperature) if legal[b, a] else 0.0
            total += weights[a]
        threshold = uniforms[b] * total
        cumulative = 0.0
        for a in range(num_actions):
            cumulative += weights[a]
            if weights[a] > 0 and cumulative > threshold:
                actions[b] = a
                break
    return actions


def most_visited_action(tree: Tree) -> np.ndarray:
    """``[B]`` int64: the root action MuZero's search takes at temperature 0 (:func:`_visit_count_action`: the most
    visited legal action; among equally visited ones the higher Q, then the lower index), e.g. to act greedily
    after a search that sampled its action."""
    visits = tree.children_visits[:, ROOT_INDEX].astype(np.int64)
    legal = np.ascontiguousarray(tree.children_legal[:, ROOT_INDEX])
    qvalues = np.ascontiguousarray(tree.qvalues(ROOT_INDEX), dtype=np.float64)
    return _visit_count_action(visits, qvalues, legal, 0.0, np.zeros(tree.batch_size))


def gumbel_muzero_policy(
    root: RootOutput,
    recurrent_fn: RecurrentFn | JitRecurrentFn,
    num_simulations: int,
    *,
    legal_mask: Any = None,
    max_depth: int | None = None,
    rng: np.random.Generator | int | None = None,
    max_num_considered_actions: int = 16,
    gumbel_scale: float = 1.0,
    value_scale: float = VALUE_SCALE,
    maxvisit_init: float = MAXVISIT_INIT,
    rescale_values: bool = True,
    use_mixed_value: bool = True,
    two_player: bool = False,
    num_threads: int = 1,
) -> SearchOutput:
    """Gumbel MuZero search (Danihelka et al. 2022): Gumbel-top-k at the root, Sequential Halving,
    deterministic interior selection, and the completed-Q improved policy as the training target.

    :param root: the model's output at the B roots.
    :param recurrent_fn: ``(embedding, action [B]) -> (RecurrentOutput, new_embedding)``.
    :param num_simulations: simulations per tree (>= 1).
    :param legal_mask: ``[B, A]`` bool, True = legal, at the roots (None: all legal).
    :param max_depth: maximum tree depth (see :func:`muzero_policy`).
    :param rng: numpy Generator or seed for the Gumbel noise.
    :param max_num_considered_actions: root actions sampled without replacement (``m``).
    :param gumbel_scale: scale of the Gumbel noise; 0 for deterministic evaluation.
    :param value_scale: ``c_scale`` of ``sigma``.
    :param maxvisit_init: ``c_visit`` of ``sigma``.
    :param rescale_values: min-max rescale completed Q to [0, 1] at each node before ``sigma``.
    :param use_mixed_value: complete unvisited Q with the mixed value (else with the model's raw value of
        the node, as mctx's ``qtransform_completed_by_mix_value``).
    :param two_player: zero-sum alternating play (see :func:`muzero_policy`).
    :param num_threads: threads for a compiled model's search (see :class:`~gym_planning.search.SearchConfig`).
    :return: :class:`SearchOutput`; ``action_weights = softmax(logits + sigma(completed Q))``.
    """
    return run_gumbel(
        root,
        recurrent_fn,
        num_simulations,
        legal_mask=legal_mask,
        max_depth=max_depth,
        rng=rng,
        max_num_considered_actions=integer_setting("max_num_considered_actions", max_num_considered_actions, 1),
        gumbel_scale=setting("gumbel_scale", gumbel_scale, minimum=0.0),
        params=gumbel_params(
            setting("value_scale", value_scale, minimum=0.0),
            setting("maxvisit_init", maxvisit_init, minimum=0.0),
            rescale_values,
            use_mixed_value,
        ),  # fmt: skip
        two_player=two_player,
        num_threads=integer_setting("num_threads", num_threads, 1),
    )


def gumbel_params(value_scale: float, maxvisit_init: float, rescale_values: bool, use_mixed_value: bool) -> np.ndarray:
    """The kernels' float settings (layout ``simulation.P_*``) of a Gumbel MuZero search."""
    return np.array([0.0, 0.0, value_scale, maxvisit_init, float(rescale_values), float(use_mixed_value)])


# The kernels' settings for gumbel_muzero_policy's defaults (run_policy searches with them).
GUMBEL_DEFAULT_PARAMS = gumbel_params(VALUE_SCALE, MAXVISIT_INIT, True, True)


def run_gumbel(
    root: RootOutput,
    recurrent_fn: RecurrentFn | JitRecurrentFn,
    num_simulations: int,
    *,
    legal_mask: Any,
    max_depth: int | None,
    rng: np.random.Generator | int | None,
    max_num_considered_actions: int,
    gumbel_scale: float,
    params: np.ndarray,
    two_player: bool,
    num_threads: int,
) -> SearchOutput:
    """:func:`gumbel_muzero_policy` with its settings already validated (as :class:`SearchConfig` does once, at
    construction), ``params`` from :func:`gumbel_params`; the root, mask and tree size are checked here."""
    logits, value, legal = check_root(root, legal_mask, num_simulations, max_depth)
    rng = _as_rng(rng)
    batch_size, num_actions = logits.shape
    tree, store = _new_tree(root, batch_size, num_actions, num_simulations, max_depth)
    gumbel = gumbel_scale * rng.gumbel(size=(batch_size, num_actions))
    root_logits = _start_gumbel_trees(tree.fields, logits, value, legal, gumbel)
    # Rows of the Sequential Halving table above the number of actions are never read: build only those used.
    max_considered = min(max_num_considered_actions, num_actions)
    num_considered = np.minimum(max_considered, legal.sum(axis=1)).astype(np.int64)
    run_search(
        tree,
        store,
        recurrent_fn,
        num_simulations,
        policy=GUMBEL,
        params=params,
        considered_table=considered_visits_table(max_considered, num_simulations),
        num_considered=num_considered,
        max_depth=num_simulations + 1 if max_depth is None else int(max_depth),
        discount_sign=-1.0 if two_player else 1.0,
        update_bounds=False,
        num_threads=num_threads,
    )
    action = np.empty(batch_size, np.int64)
    weights = np.empty((batch_size, num_actions), np.float32)
    root_value = np.empty(batch_size, np.float32)
    code = _gumbel_outputs(tree.fields, params, root_logits, legal, action, weights, root_value)
    if code == _OUTPUTS_OVERFLOW:
        raise ValueError(overflow_message(num_simulations - 1))
    _warn_if_deep(tree, num_simulations, max_depth)
    if code == _OUTPUTS_ROOT_VALUE:
        raise _root_value_error(tree)
    return SearchOutput(action, weights, root_value, tree)


# _gumbel_outputs' results besides 0: sigma(completed Q) at a root overflowed, a root value does not fit float32.
_OUTPUTS_OVERFLOW, _OUTPUTS_ROOT_VALUE = 1, 2


@njit(cache=True, error_model="numpy")
def _gumbel_outputs(fields, params, root_logits, legal, action, weights, root_value):
    """Gumbel MuZero's results from the searched trees, in one kernel call: the acted ``action`` ``[B]`` (the
    best of the most-visited legal root actions by ``g + logits + sigma(completed Q)``), the policy target
    ``weights = softmax(logits + sigma(completed Q))`` ``[B, A]`` float32 (0 on illegal actions), and the root
    values ``[B]`` float32. Returns 0, ``_OUTPUTS_OVERFLOW`` or ``_OUTPUTS_ROOT_VALUE``."""
    arrays = TreeArrays(*fields)
    completed_q = root_completed_qvalues(arrays, params)
    edge_ints, gumbel = arrays.edge_ints, arrays.root_gumbel
    batch_size, num_actions = legal.shape
    improved = np.empty(num_actions)
    probs = np.empty(num_actions)
    for b in range(batch_size):
        most = -1
        for a in range(num_actions):
            if not np.isfinite(completed_q[b, a]):
                return _OUTPUTS_OVERFLOW
            if legal[b, a]:
                most = max(most, edge_ints[b, ROOT_INDEX, VISITS, a])
        best, best_score = -1, -np.inf
        for a in range(num_actions):
            if legal[b, a] and edge_ints[b, ROOT_INDEX, VISITS, a] == most:
                score = max(LOW_LOGIT, gumbel[b, a] + root_logits[b, a] + completed_q[b, a])
                if best < 0 or score > best_score:
                    best, best_score = a, score
            improved[a] = root_logits[b, a] + completed_q[b, a] if legal[b, a] else MASKED_LOGIT
        action[b] = best
        softmax(improved, probs)
        for a in range(num_actions):
            weights[b, a] = probs[a]
    if not _root_value32(arrays.node_values, root_value):
        return _OUTPUTS_ROOT_VALUE
    return 0


@njit(cache=True, error_model="numpy")
def root_completed_qvalues(arrays, params):
    """``sigma(completed Q)`` at each root, ``[B, A]`` (``arrays``: the trees' :class:`TreeArrays`)."""
    edge_floats, edge_ints, raw_values = arrays.edge_floats, arrays.edge_ints, arrays.raw_values
    batch_size, num_actions = arrays.root_gumbel.shape
    out = np.empty((batch_size, num_actions))
    for b in range(batch_size):
        gumbel_completed_q(edge_floats, edge_ints, b, ROOT_INDEX, raw_values[b, ROOT_INDEX], params, out[b])
    return out
