"""The search tree: a batch of B trees stored as a struct of preallocated numpy arrays.

Shapes: ``B`` trees, ``N = num_simulations + 1`` nodes per tree (fewer when ``max_depth`` bounds the
tree: see :func:`max_tree_nodes`), ``A`` actions. Node 0 is the
root; a node first expanded by a simulation gets the next free index (``num_nodes``). Node
embeddings are not stored here: ``embedding_slots[b, n]`` names where the caller's embedding store
keeps node ``n`` of tree ``b``.

Edges are stored on the parent: ``children_*[b, n, a]`` describe taking action ``a`` in node ``n``.
``Q(n, a) = children_rewards + children_discounts * children_values``. In two-player search the
stored discount carries the sign flip, so Q is always from the view of the player to move at ``n``.

Memory layout: the kernels read all of a node's edges at once, so the edge fields of one node lie side
by side: ``TreeArrays.edge_floats[b, n]`` is a ``[5, A]`` block (prior logit, reward, discount, value,
prior probability) and ``edge_ints[b, n]`` a ``[2, A]`` block (child index, visits). The ``children_*``
fields of :class:`Tree` are views of those planes, so one tree is one record for the kernels and the
usual named arrays for everyone else. All arrays come from :mod:`gym_planning.search.arena`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from gym_planning.search.arena import carve

ROOT_INDEX = 0
NO_PARENT = -1
UNVISITED = -1

# Planes of TreeArrays.edge_floats and edge_ints (the second axis of a node's block).
LOGIT, REWARD, DISCOUNT, VALUE, PROB = range(5)
CHILD, VISITS = range(2)


class TreeArrays(NamedTuple):
    """A batch of trees as the compiled kernels take it: one record instead of a list of arrays.

    The ``[B, N]`` and smaller fields are those of :class:`Tree`; the edges are grouped per node.
    """

    edge_floats: np.ndarray  # [B, N, 5, A] float64: planes LOGIT, REWARD, DISCOUNT, VALUE, PROB
    edge_ints: np.ndarray  # [B, N, 2, A] int32: planes CHILD (child node or UNVISITED), VISITS
    edge_legal: np.ndarray  # [B, N, A] bool
    node_visits: np.ndarray  # [B, N] int32
    raw_values: np.ndarray  # [B, N] float64
    node_values: np.ndarray  # [B, N] float64
    parents: np.ndarray  # [B, N] int32
    action_from_parent: np.ndarray  # [B, N] int32
    node_depth: np.ndarray  # [B, N] int32
    embedding_slots: np.ndarray  # [B, N] int64
    num_nodes: np.ndarray  # [B] int32
    value_bounds: np.ndarray  # [B, 2] float64
    root_gumbel: np.ndarray  # [B, A] float64


def max_tree_nodes(num_simulations: int, num_actions: int, max_depth: int | None) -> int:
    """Nodes a tree can hold: the root plus one per simulation (``N = num_simulations + 1``), but no more
    than a full ``A``-ary tree of ``max_depth`` levels below the root (``1 + A + ... + A^max_depth``)."""
    limit = num_simulations + 1
    if max_depth is None:
        return limit
    total, level = 1, 1
    for _ in range(int(max_depth)):
        level *= num_actions
        total += level
        if total >= limit:
            return limit
    return total


def tree_shapes(b: int, n: int, a: int) -> tuple[tuple[int, ...], ...]:
    """Shapes of the :class:`TreeArrays` fields, in order."""
    return (b, n, 5, a), (b, n, 2, a), (b, n, a), *([(b, n)] * 7), (b,), (b, 2), (b, a)


TREE_DTYPES = tuple(np.dtype(t) for t in (np.float64, np.int32, np.bool_, np.int32, np.float64, np.float64, np.int32, np.int32,
                                       np.int32, np.int64, np.int32, np.float64, np.float64))  # fmt: skip


@njit(cache=True)
def initialise(fields):
    """Empty trees: no visits, no children (UNVISITED), every action legal, no parents, unused slots -1,
    value bounds (+inf, -inf) so that the first Q sets both. ``fields``: the :class:`TreeArrays` record as a
    plain tuple (Numba types one faster than a NamedTuple)."""
    arrays = TreeArrays(*fields)
    arrays.edge_floats[...] = 0.0
    arrays.edge_ints[:, :, CHILD] = UNVISITED
    arrays.edge_ints[:, :, VISITS] = 0
    arrays.edge_legal[...] = True
    for field in (arrays.node_visits, arrays.node_depth):
        field[...] = 0
    for field in (arrays.raw_values, arrays.node_values, arrays.root_gumbel):
        field[...] = 0.0
    arrays.parents[...] = NO_PARENT
    arrays.action_from_parent[...] = NO_PARENT
    arrays.embedding_slots[...] = -1
    arrays.num_nodes[...] = 0
    arrays.value_bounds[:, 0] = np.inf
    arrays.value_bounds[:, 1] = -np.inf


class SearchSummary(NamedTuple):
    """Root statistics of a batch of trees.

    :param visit_counts: ``[B, A]`` int, visits of each root action.
    :param visit_probs: ``[B, A]`` float, visit counts normalised (uniform over legal actions when none).
    :param value: ``[B]`` float, search value of the root (mean of backed-up values).
    :param qvalues: ``[B, A]`` float, ``Q(root, a)``; 0 where the action was never visited.
    """

    visit_counts: np.ndarray
    visit_probs: np.ndarray
    value: np.ndarray
    qvalues: np.ndarray


@dataclasses.dataclass
class Tree:
    """A batch of search trees as a struct of arrays (see the module docstring for shapes)."""

    node_visits: np.ndarray  # [B, N] int32: visits, counting the expansion itself
    raw_values: np.ndarray  # [B, N] float64: value the model gave when the node was expanded
    node_values: np.ndarray  # [B, N] float64: mean of the raw value and all values backed up through the node
    parents: np.ndarray  # [B, N] int32: parent node, NO_PARENT for the root and unused nodes
    action_from_parent: np.ndarray  # [B, N] int32
    node_depth: np.ndarray  # [B, N] int32: edges from the root
    embedding_slots: np.ndarray  # [B, N] int64: slot of the node's embedding in the caller's store; -1 unused
    children_index: np.ndarray  # [B, N, A] int32: child node, UNVISITED when not expanded
    children_prior_logits: np.ndarray  # [B, N, A] float64 (Dirichlet noise included at the root)
    children_legal: np.ndarray  # [B, N, A] bool: legal_mask of each node (root mask at node 0)
    children_visits: np.ndarray  # [B, N, A] int32
    children_rewards: np.ndarray  # [B, N, A] float64
    children_discounts: np.ndarray  # [B, N, A] float64 (negated in two-player search)
    children_values: np.ndarray  # [B, N, A] float64: node_values of the child
    num_nodes: np.ndarray  # [B] int32: nodes in use
    value_bounds: np.ndarray  # [B, 2] float64: (min, max) of Q seen in the tree, for pUCT normalisation
    root_gumbel: np.ndarray  # [B, A] float64: Gumbel noise of Gumbel MuZero (zeros for pUCT)

    @classmethod
    def allocate(cls, batch_size: int, num_nodes: int, num_actions: int) -> Tree:
        """Allocate empty trees of ``num_nodes`` nodes each (node 0 is the root)."""
        fields = tuple(carve(tree_shapes(batch_size, num_nodes, num_actions), TREE_DTYPES))
        initialise(fields)
        return cls.of_arrays(TreeArrays(*fields))

    @classmethod
    def of_arrays(cls, arrays: TreeArrays) -> Tree:
        """The trees whose arrays are ``arrays`` (shapes and dtypes of :func:`tree_shapes` and
        :data:`TREE_DTYPES`), as they are: the caller has run :func:`initialise` or will."""
        floats, ints = arrays.edge_floats, arrays.edge_ints
        tree = cls(
            node_visits=arrays.node_visits,
            raw_values=arrays.raw_values,
            node_values=arrays.node_values,
            parents=arrays.parents,
            action_from_parent=arrays.action_from_parent,
            node_depth=arrays.node_depth,
            embedding_slots=arrays.embedding_slots,
            children_index=ints[:, :, CHILD],
            children_prior_logits=floats[:, :, LOGIT],
            children_legal=arrays.edge_legal,
            children_visits=ints[:, :, VISITS],
            children_rewards=floats[:, :, REWARD],
            children_discounts=floats[:, :, DISCOUNT],
            children_values=floats[:, :, VALUE],
            num_nodes=arrays.num_nodes,
            value_bounds=arrays.value_bounds,
            root_gumbel=arrays.root_gumbel,
        )
        # Attributes, not dataclass fields, so that Tree(**{fields}) still takes the named arrays alone.
        object.__setattr__(tree, "_arrays", arrays)
        object.__setattr__(tree, "_fields", tuple(arrays))
        return tree

    @property
    def arrays(self) -> TreeArrays:
        """The record the kernels take; only trees made by :meth:`allocate` or :meth:`of_arrays` have one."""
        arrays = getattr(self, "_arrays", None)
        if arrays is None:
            raise TypeError("this Tree was not made by Tree.allocate, so it has no kernel record; allocate it")
        return arrays

    @property
    def fields(self) -> tuple[np.ndarray, ...]:
        """:attr:`arrays` as a plain tuple, as the kernels called from Python take it (Numba types a plain tuple
        about 3 µs faster per call than a NamedTuple, whose type key spells out every field name)."""
        if getattr(self, "_arrays", None) is None:
            raise TypeError("this Tree was not made by Tree.allocate, so it has no kernel record; allocate it")
        return self._fields  # type: ignore[attr-defined]

    @property
    def batch_size(self) -> int:
        return self.node_visits.shape[0]

    @property
    def num_actions(self) -> int:
        return self.children_index.shape[2]

    def qvalues(self, node_index: int | np.ndarray = ROOT_INDEX) -> np.ndarray:
        """``Q(node, a)`` for every action, ``[B, A]``; ``node_index`` is an int or a ``[B]`` array."""
        rows = np.arange(self.batch_size)
        idx = np.broadcast_to(np.asarray(node_index), (self.batch_size,))
        return self.children_rewards[rows, idx] + self.children_discounts[rows, idx] * self.children_values[rows, idx]

    def summary(self) -> SearchSummary:
        """Visit counts, visit probabilities, value and Q-values at the roots."""
        visits = self.children_visits[:, ROOT_INDEX].astype(np.int64)
        total = visits.sum(axis=1, keepdims=True)
        legal = self.children_legal[:, ROOT_INDEX]
        uniform = legal / legal.sum(axis=1, keepdims=True)
        probs = np.where(total > 0, visits / np.maximum(total, 1), uniform)
        q = np.where(visits > 0, self.qvalues(ROOT_INDEX), 0.0)
        return SearchSummary(visits, probs, self.node_values[:, ROOT_INDEX].copy(), q)

    def to_dict(self, batch_index: int = 0, node_index: int = ROOT_INDEX) -> dict[str, Any]:
        """Nested dict of one tree below ``node_index``, for debugging and printing."""
        b, n = batch_index, node_index
        children = {}
        for a in np.flatnonzero(self.children_index[b, n] != UNVISITED):
            child = int(self.children_index[b, n, a])
            children[int(a)] = {
                "visits": int(self.children_visits[b, n, a]),
                "reward": float(self.children_rewards[b, n, a]),
                "discount": float(self.children_discounts[b, n, a]),
                "q": float(self.children_rewards[b, n, a] + self.children_discounts[b, n, a] * self.children_values[b, n, a]),
                "node": self.to_dict(b, child),
            }
        return {
            "index": n,
            "visits": int(self.node_visits[b, n]),
            "value": float(self.node_values[b, n]),
            "raw_value": float(self.raw_values[b, n]),
            "depth": int(self.node_depth[b, n]),
            "children": children,
        }
