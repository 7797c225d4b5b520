"""Search policies: MuZero (pUCT) and Gumbel MuZero over a batch of B roots.

Each policy prepares the roots (mask, noise), runs :func:`gym_planning.search.search.run_search` and
turns the trees into an action, a policy target and a root value.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numba import njit

from gym_planning.search.action_selection import LOW_LOGIT
from gym_planning.search.base import RecurrentFn, RootOutput, SearchOutput
from gym_planning.search.checks import check_root, integer_setting, setting, value_bounds_setting
from gym_planning.search.compiled_model import JitRecurrentFn
from gym_planning.search.embeddings import EmbeddingStore
from gym_planning.search.qtransforms import MASKED_LOGIT, softmax, softmax_rows
from gym_planning.search.search import overflow_message, run_search
from gym_planning.search.seq_halving import considered_visits_table
from gym_planning.search.simulation import GUMBEL, MUZERO, gumbel_completed_q
from gym_planning.search.tree import LOGIT, PROB, ROOT_INDEX, VISITS, Tree, TreeArrays, max_tree_nodes

# Seeding a fresh Generator from OS entropy costs ~10 µs, a tenth of a small search: share one.
_UNSEEDED_RNG = np.random.default_rng()


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return _UNSEEDED_RNG if rng is None else np.random.default_rng(rng)


def _masked_logits(logits: np.ndarray, legal: np.ndarray) -> np.ndarray:
    finite_max = np.max(np.where(legal, logits, -np.inf), axis=1, keepdims=True)
    with np.errstate(over="ignore"):  # a logit more than ~1.8e308 below the best is -inf: probability 0 either way
        return np.where(legal, logits - finite_max, MASKED_LOGIT)


def _init_tree(root: RootOutput, logits: np.ndarray, value: np.ndarray, legal: np.ndarray, num_simulations: int,
               max_depth: int | None):  # fmt: skip
    batch_size, num_actions = logits.shape
    num_nodes = max_tree_nodes(num_simulations, num_actions, max_depth)
    tree = Tree.allocate(batch_size, num_nodes, num_actions)
    _set_roots(tuple(tree.arrays), logits, value, legal)
    store = EmbeddingStore(root.embedding, batch_size * num_nodes)
    store.scatter(tree.embedding_slots[:, ROOT_INDEX], root.embedding)
    return tree, store


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
        softmax(edge_floats[b, ROOT_INDEX, LOGIT], edge_floats[b, ROOT_INDEX, PROB])


def _bounds(tree: Tree, value_bounds: tuple[float, float] | None) -> bool:
    """Fix known (checked) value bounds in the tree; returns whether the search must track bounds itself."""
    if value_bounds is None:
        return True
    tree.value_bounds[:, 0], tree.value_bounds[:, 1] = value_bounds
    return False


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


def _root_value32(tree: Tree) -> np.ndarray:
    """``[B]`` float32 root values of :class:`SearchOutput`; a value beyond float32's range is an error, not inf."""
    value = tree.node_values[:, ROOT_INDEX]
    if not (np.abs(value) <= _FLOAT32_MAX).all():
        raise ValueError(
            f"the search's root values {value.tolist()} do not fit SearchOutput.root_value (float32, |x| < 3.4e38): "
            "scale the model's rewards and values down"
        )
    return value.astype(np.float32)


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
    :return: :class:`SearchOutput`; ``action_weights`` are the visit-count probabilities.
    """
    logits, value, legal = check_root(root, legal_mask, num_simulations, max_depth)
    temperature = setting("temperature", temperature, minimum=0.0)
    if not 0.0 <= setting("dirichlet_fraction", dirichlet_fraction) <= 1.0:
        raise ValueError(f"dirichlet_fraction must be in [0, 1]; got {dirichlet_fraction}")
    dirichlet_alpha = setting("dirichlet_alpha", dirichlet_alpha, minimum=0.0, strict=True)
    params = np.array([setting("pb_c_init", pb_c_init, minimum=0.0), setting("pb_c_base", pb_c_base, minimum=0.0, strict=True),
                       0.0, 0.0, 0.0, 0.0])  # fmt: skip
    value_bounds = value_bounds_setting(value_bounds)
    rng = _as_rng(rng)
    batch_size, num_actions = logits.shape
    if dirichlet_fraction > 0:
        noise = rng.dirichlet(np.full(num_actions, dirichlet_alpha), size=batch_size)
    else:
        noise = np.zeros((batch_size, num_actions))
    root_logits = _noisy_root_logits(logits, legal, noise, dirichlet_fraction)

    tree, store = _init_tree(root, root_logits, value, legal, num_simulations, max_depth)
    update_bounds = _bounds(tree, value_bounds)
    run_search(
        tree,
        store,
        recurrent_fn,
        num_simulations,
        policy=MUZERO,
        params=params,
        considered_table=np.zeros((1, 1), np.int32),
        num_considered=np.zeros(batch_size, np.int64),
        max_depth=num_simulations + 1 if max_depth is None else int(max_depth),
        discount_sign=-1.0 if two_player else 1.0,
        update_bounds=update_bounds,
    )
    _warn_if_deep(tree, num_simulations, max_depth)
    visits = tree.children_visits[:, ROOT_INDEX]
    action = _visit_count_action(visits, tree.qvalues(ROOT_INDEX), legal, temperature, rng.random(batch_size))
    visit_probs = visits / visits.sum(axis=1, keepdims=True).astype(np.float32)
    return SearchOutput(action, visit_probs.astype(np.float32), _root_value32(tree), tree)


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
    value_scale: float = 0.1,
    maxvisit_init: float = 50.0,
    rescale_values: bool = True,
    use_mixed_value: bool = True,
    two_player: bool = False,
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
    :return: :class:`SearchOutput`; ``action_weights = softmax(logits + sigma(completed Q))``.
    """
    logits, value, legal = check_root(root, legal_mask, num_simulations, max_depth)
    max_considered = integer_setting("max_num_considered_actions", max_num_considered_actions, 1)
    gumbel_scale = setting("gumbel_scale", gumbel_scale, minimum=0.0)
    value_scale = setting("value_scale", value_scale, minimum=0.0)
    maxvisit_init = setting("maxvisit_init", maxvisit_init, minimum=0.0)
    params = np.array([0.0, 0.0, value_scale, maxvisit_init, float(rescale_values), float(use_mixed_value)])
    rng = _as_rng(rng)
    batch_size, num_actions = logits.shape
    root_logits = _masked_logits(logits, legal)
    tree, store = _init_tree(root, root_logits, value, legal, num_simulations, max_depth)
    tree.root_gumbel[:] = gumbel_scale * rng.gumbel(size=(batch_size, num_actions))
    # Rows of the Sequential Halving table above the number of actions are never read: build only those used.
    max_considered = min(max_considered, num_actions)
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
    )
    completed_q = root_completed_qvalues(tree.arrays, params)
    if not np.isfinite(completed_q).all():
        raise ValueError(overflow_message(num_simulations - 1))
    _warn_if_deep(tree, num_simulations, max_depth)
    visits = tree.children_visits[:, ROOT_INDEX]
    # Act with the best of the most-visited considered actions (score g + logits + sigma(q)).
    score = np.maximum(LOW_LOGIT, tree.root_gumbel + root_logits + completed_q)
    most_visited = visits == np.max(np.where(legal, visits, -1), axis=1, keepdims=True)
    action = np.argmax(np.where(legal & most_visited, score, -np.inf), axis=1).astype(np.int64)
    weights = softmax_rows(np.where(legal, root_logits + completed_q, MASKED_LOGIT))
    return SearchOutput(action, weights.astype(np.float32), _root_value32(tree), tree)


@njit(cache=True, error_model="numpy")
def root_completed_qvalues(arrays, params):
    """``sigma(completed Q)`` at each root, ``[B, A]`` (``arrays``: the trees' :class:`TreeArrays`)."""
    edge_floats, edge_ints, raw_values = arrays.edge_floats, arrays.edge_ints, arrays.raw_values
    batch_size, num_actions = arrays.root_gumbel.shape
    out = np.empty((batch_size, num_actions))
    q = np.empty(num_actions)
    for b in range(batch_size):
        gumbel_completed_q(edge_floats[b, ROOT_INDEX], edge_ints[b, ROOT_INDEX, VISITS], raw_values[b, ROOT_INDEX], params, q,
                           out[b])  # fmt: skip
    return out
