"""Where node embeddings live: a store indexed by the tree's integer slots.

The search never looks inside embeddings. The store is allocated from the root embedding's type:
a numpy array, a torch tensor (kept on its device, allocated with ``new_empty``), or a sequence of
arbitrary Python objects (env states for a perfect model).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from gym_planning.search.arena import carve


def _pooled_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """``np.empty(shape, dtype)`` from the search's memory pool (fresh memory for object arrays)."""
    if dtype.hasobject:
        return np.empty(shape, dtype)
    return carve((shape,), (dtype,))[0]


class EmbeddingStore:
    """``num_slots`` embeddings shaped like one row of ``root_embedding``.

    :param root_embedding: the B root embeddings; a ``[B, ...]`` array/tensor or a length-B sequence.
    :param num_slots: slots to allocate (``B * num_nodes``).
    :param data: for a numpy root embedding, the ``[num_slots, ...]`` array to use as the store (of the root's
        dtype; e.g. carved from the same pooled buffer as the trees); None allocates one.
    """

    data: Any  # a numpy array, a torch tensor or a list of objects

    def __init__(self, root_embedding: Any, num_slots: int, *, data: np.ndarray | None = None):
        if isinstance(root_embedding, np.ndarray):
            self._kind = "array"
            shape = (num_slots, *root_embedding.shape[1:])
            if data is not None and (data.shape != shape or data.dtype != root_embedding.dtype):
                raise ValueError(f"store data must be {root_embedding.dtype} of shape {shape}; got {data.dtype} {data.shape}")
            self.data = _pooled_empty(shape, root_embedding.dtype) if data is None else data
        elif hasattr(root_embedding, "new_empty") and hasattr(root_embedding, "shape"):
            self._kind = "array"
            self.data = root_embedding.new_empty((num_slots, *root_embedding.shape[1:]))
        elif isinstance(root_embedding, (list, tuple)):
            self._kind = "objects"
            self.data = [None] * num_slots
        else:
            raise TypeError(
                "root embedding must be a numpy array, a torch tensor or a list of per-root objects; "
                f"got {type(root_embedding).__name__}"
            )

    @classmethod
    def for_trees(cls, root_embedding: Any, num_trees: int, nodes_per_tree: int, *, data: np.ndarray | None = None
                  ) -> EmbeddingStore:  # fmt: skip
        """A store of ``num_trees * nodes_per_tree`` slots holding root ``b``'s embedding at slot
        ``b * nodes_per_tree`` (where the search's trees keep their roots), written with one strided slice
        instead of a gather of slots. ``data``: as in the constructor."""
        store = cls(root_embedding, num_trees * nodes_per_tree, data=data)
        store.set_roots(root_embedding, nodes_per_tree)
        return store

    def set_roots(self, root_embedding: Any, nodes_per_tree: int) -> None:
        """Write root ``b``'s embedding to slot ``b * nodes_per_tree`` (one strided slice)."""
        rows = slice(0, len(root_embedding) * nodes_per_tree, nodes_per_tree)
        self.data[rows] = root_embedding if self._kind == "array" else list(root_embedding)

    def gather(self, slots: np.ndarray) -> Any:
        """Embeddings at ``slots`` (``[B]`` int64), in the store's container type."""
        if self._kind == "array":
            return self.data[slots]
        return [self.data[s] for s in slots]

    def scatter(self, slots: np.ndarray, embedding: Any) -> None:
        """Write row ``i`` of ``embedding`` to ``slots[i]``.

        An array store keeps the dtype the model returns: when ``embedding`` holds a wider type (float
        embeddings after an integer root, float64 after float32) the store is widened first, never the
        embedding truncated.
        """
        if self._kind == "array":
            dtype = getattr(embedding, "dtype", None)
            if dtype is None:
                embedding = np.asarray(embedding)
                dtype = embedding.dtype
            if dtype is not self.data.dtype and dtype != self.data.dtype:
                self._widen(dtype)
            self.data[slots] = embedding
        else:
            for s, item in zip(slots, embedding):
                self.data[s] = item

    def _widen(self, dtype: Any) -> None:
        if isinstance(self.data, np.ndarray):
            try:
                wider = np.result_type(self.data.dtype, dtype)
            except TypeError:  # not a numpy dtype (a tensor written into a numpy store): numpy converts it
                return
        else:  # a torch tensor: torch is imported, since the model made one
            wider = sys.modules["torch"].promote_types(self.data.dtype, dtype)
        if wider != self.data.dtype:
            self.data = self.data.astype(wider) if isinstance(self.data, np.ndarray) else self.data.to(wider)
