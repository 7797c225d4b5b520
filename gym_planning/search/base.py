"""Records passed between the search and the model callback.

The search imports no network framework. Arrays may be numpy arrays or anything with
``.detach().cpu().numpy()`` (torch tensors); embeddings stay as the caller made them.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, Sequence

import numpy as np

from gym_planning.search.compiled_model import JitRecurrentFn
from gym_planning.search.tree import Tree


class TensorLike(Protocol):
    """What the search needs of a tensor (a torch tensor, on any device): ``.detach()``, then ``.cpu().numpy()``.

    Named structurally so that the search never imports torch.
    """

    shape: Any
    dtype: Any

    def detach(self) -> Any: ...

    def __len__(self) -> int: ...


Array = np.ndarray | TensorLike
"""A numpy array or a tensor; the search converts it with :func:`~gym_planning.search.checks.to_numpy`."""
Embedding = np.ndarray | TensorLike | Sequence[Any]
"""Embeddings along the first axis: an array or tensor ``[B, ...]``, or a sequence of B Python objects."""

__all__ = [
    "Array",
    "Embedding",
    "TensorLike",
    "JitRecurrentFn",
    "RecurrentFn",
    "RecurrentOutput",
    "RootOutput",
    "SearchOutput",
]


class RootOutput(NamedTuple):
    """What the model says about the B root states.

    :param prior_logits: ``[B, A]`` policy logits.
    :param value: ``[B]`` value estimate of each root.
    :param embedding: the B root embeddings, indexed along the first axis: a numpy array or torch
        tensor ``[B, ...]`` (on any device) or a sequence of B Python objects (e.g. env states).
    """

    prior_logits: Array
    value: Array
    embedding: Embedding


class RecurrentOutput(NamedTuple):
    """What the model says about one step taken from each of the B parents.

    :param reward: ``[B]`` reward of the step, for the player who took it.
    :param discount: ``[B]`` discount of the step; 0 marks a terminal state (nothing is bootstrapped past it).
    :param prior_logits: ``[B, A]`` policy logits at the new state.
    :param value: ``[B]`` value of the new state, for the player to move there.
    :param legal_mask: optional ``[B, A]`` bool, True = legal, at the new state (a perfect model knows it;
        a learned model leaves it None and every action is searched).
    """

    reward: Array
    discount: Array
    prior_logits: Array
    value: Array
    legal_mask: Array | None = None


class RecurrentFn(Protocol):
    """``recurrent_fn(embedding, action) -> (RecurrentOutput, new_embedding)``.

    ``embedding`` holds the parents' embeddings (gathered from their slots), ``action`` is a ``[K]``
    int64 array; ``new_embedding`` holds the K children's embeddings, in the same container type.
    ``K`` is the number of trees that expand a node this simulation: ``B`` unless some walks ended
    at ``max_depth`` or a terminal step, whose trees are left out of the call. All outputs are ``[K, ...]``.
    """

    def __call__(self, embedding: Embedding, action: np.ndarray) -> tuple[RecurrentOutput, Embedding]: ...


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
