"""Records passed between the search and the model callback.

The search imports no network framework. Arrays may be numpy arrays or anything with
``.detach().cpu().numpy()`` (torch tensors); embeddings stay as the caller made them.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np

from gym_planning.search.tree import Tree


class RootOutput(NamedTuple):
    """What the model says about the B root states.

    :param prior_logits: ``[B, A]`` policy logits.
    :param value: ``[B]`` value estimate of each root.
    :param embedding: the B root embeddings, indexed along the first axis: a numpy array or torch
        tensor ``[B, ...]`` (on any device) or a sequence of B Python objects (e.g. env states).
    """

    prior_logits: Any
    value: Any
    embedding: Any


class RecurrentOutput(NamedTuple):
    """What the model says about one step taken from each of the B parents.

    :param reward: ``[B]`` reward of the step, for the player who took it.
    :param discount: ``[B]`` discount of the step; 0 marks a terminal state (nothing is bootstrapped past it).
    :param prior_logits: ``[B, A]`` policy logits at the new state.
    :param value: ``[B]`` value of the new state, for the player to move there.
    :param legal_mask: optional ``[B, A]`` bool, True = legal, at the new state (a perfect model knows it;
        a learned model leaves it None and every action is searched).
    """

    reward: Any
    discount: Any
    prior_logits: Any
    value: Any
    legal_mask: Any = None


class RecurrentFn(Protocol):
    """``recurrent_fn(embedding, action) -> (RecurrentOutput, new_embedding)``.

    ``embedding`` holds the parents' embeddings (gathered from their slots), ``action`` is a ``[K]``
    int64 array; ``new_embedding`` holds the K children's embeddings, in the same container type.
    ``K`` is the number of trees that expand a node this simulation: ``B`` unless some walks ended
    at ``max_depth`` or a terminal step, whose trees are left out of the call. All outputs are ``[K, ...]``.
    """

    def __call__(self, embedding: Any, action: np.ndarray) -> tuple[RecurrentOutput, Any]: ...


class JitRecurrentFn(NamedTuple):
    """A model compiled with Numba, so the whole search runs inside one compiled loop.

    ``fn(params, embedding, action, reward, discount, prior_logits, value, legal_mask, new_embedding)`` is an
    ``@njit`` function that reads ``embedding [B, E]`` and ``action [B]`` (int64) and writes the outputs
    in place: ``reward, discount, value [B]`` float64, ``prior_logits [B, A]`` float64, ``legal_mask [B, A]``
    bool (preset to True), ``new_embedding [B, E]``. ``params`` is a 1-D float64 array the model reads.
    The root embedding must then be a 2-D numpy array ``[B, E]`` of float64 or int64.

    Use it for models written in Numba (our own environments as perfect models, tabular models):
    no Python runs between simulations. ``fn`` is compiled for that fixed signature and called through
    a function pointer, so the search loop itself is compiled once and cached on disk for every model.
    """

    fn: Any
    params: np.ndarray


class SearchOutput(NamedTuple):
    """Result of a batched search.

    :param action: ``[B]`` int64, the action to take.
    :param action_weights: ``[B, A]`` float32, the policy target (visit distribution for MuZero,
        ``softmax(logits + sigma(completed Q))`` for Gumbel MuZero); 0 on illegal actions.
    :param root_value: ``[B]`` float32, the search value of each root.
    :param tree: the search trees, for inspection (``tree.summary()``, ``tree.qvalues()``).
    """

    action: np.ndarray
    action_weights: np.ndarray
    root_value: np.ndarray
    tree: Tree
