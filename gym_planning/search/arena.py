"""Reusable memory for the search's large arrays (trees and embedding stores).

A search at batch 256 with 18 actions allocates about 10 MB of tree arrays. Fresh memory of that size
comes from the kernel page by page: every 4 KiB page faults on first touch, and in a virtual machine a
page fault costs a few microseconds, so a third of a search's time went to faults on the 2-core VM of
issue 17 (measured with ``perf stat -e page-faults``: about 3,800 faults per search). The pool keeps a
few byte buffers alive and hands one out again once nothing refers to it any more: every array carved
from a buffer is a view whose ``base`` is that buffer, so a buffer whose reference count is back to the
pool's own references is free. Results handed to the caller (``SearchOutput.tree``) keep their buffer
busy for as long as the caller holds them.

A search at batch 1 is a hundred-odd microseconds, and carving its thirteen arrays and wrapping them in a
:class:`~gym_planning.search.tree.Tree` cost a quarter of it (a numpy array object costs about a microsecond
to make). :func:`reuse` keeps whole workspaces (trees, embedding store, the kernels' record) by shape and hands
one out again when nothing outside refers to any of its objects any more: the same reference-count test, on
every object of the workspace.
"""

from __future__ import annotations

import collections
import functools
import math
import sys
import threading
from typing import Any, Callable, Hashable

import numpy as np

# Buffers kept for reuse, and the most bytes they may hold together (about 16 large searches' trees).
MAX_BUFFERS = 8
MAX_POOLED_BYTES = 256 * 2**20
# Buffers are carved at this alignment (a cache line), so that each array starts on a line of its own.
ALIGNMENT = 64

_lock = threading.Lock()
_buffers: list[np.ndarray] = []
# Where each buffer's first aligned byte is, by id (reading ``buffer.ctypes.data`` costs over a microsecond).
_aligned_starts: dict[int, int] = {}


def take(nbytes: int) -> np.ndarray:
    """A ``uint8`` buffer of at least ``nbytes`` bytes, reused when a pooled one is free (contents undefined).

    Prefers the smallest free buffer that fits and is at most twice the size asked for; otherwise allocates
    one and keeps it in the pool, evicting a free buffer when the pool is full.
    """
    with _lock:
        fits = [i for i in range(len(_buffers)) if _is_free(i) and nbytes <= _buffers[i].nbytes <= 2 * nbytes + 4096]
        if fits:
            return _buffers[min(fits, key=lambda i: _buffers[i].nbytes)]
        fresh = np.empty(nbytes, np.uint8)
        _keep(fresh)
        return fresh


def _keep(fresh: np.ndarray) -> None:
    """Add ``fresh`` to the pool, evicting free buffers (largest first) while over the limits."""
    if fresh.nbytes > MAX_POOLED_BYTES:
        return
    _buffers.append(fresh)
    _aligned_starts[id(fresh)] = _aligned_start(fresh)
    while len(_buffers) > MAX_BUFFERS or sum(b.nbytes for b in _buffers) > MAX_POOLED_BYTES:
        free = [i for i in range(len(_buffers) - 1) if _is_free(i)]
        if not free:  # every older buffer is in use: keep them, stop pooling this one
            del _aligned_starts[id(_buffers.pop())]
            return
        del _aligned_starts[id(_buffers.pop(max(free, key=lambda i: _buffers[i].nbytes)))]


def _aligned_start(buffer: np.ndarray) -> int:
    """The offset of ``buffer``'s first byte on an ``ALIGNMENT`` boundary."""
    return (-buffer.ctypes.data) % ALIGNMENT


def _is_free(index: int) -> bool:
    """Whether nothing but the pool refers to buffer ``index`` (references: the pool's list, the argument)."""
    return sys.getrefcount(_buffers[index]) == 2


def carve(shapes: tuple[tuple[int, ...], ...], dtypes: tuple[np.dtype, ...], *, pooled: bool = True) -> list[np.ndarray]:
    """C-contiguous arrays of these shapes and dtypes, each starting on a cache line of one buffer (contents
    undefined): a pooled one, or (``pooled=False``) a fresh one that only the arrays refer to."""
    offsets, total = _layout(shapes, dtypes)
    buffer = take(total + ALIGNMENT) if pooled else np.empty(total + ALIGNMENT, np.uint8)
    start = _aligned_starts.get(id(buffer))  # None for a buffer too large to pool, or not pooled
    if start is None:
        start = _aligned_start(buffer)
    return [np.ndarray(shape, dtype, buffer, start + offset) for shape, dtype, offset in zip(shapes, dtypes, offsets)]


# Workspaces kept for reuse: at most this many per key, of at most this many keys and MAX_POOLED_BYTES in
# all (the least recently used key is dropped first).
MAX_WORKSPACES_PER_KEY = 2
MAX_WORKSPACE_KEYS = 8


class _Workspace:
    """A value handed out by :func:`reuse`, the objects whose references decide whether it is free (the value
    first), and their reference counts when only the workspace refers to them."""

    def __init__(self, value: Any, watched: tuple[Any, ...]):
        self.value = value
        self.watched = (value, *watched)
        self.counts: list[int] = []  # set by reuse once this constructor's arguments are gone
        self.nbytes = sum(item.nbytes for item in watched if isinstance(item, np.ndarray) and item.base is None)


_workspaces: collections.OrderedDict[Hashable, list[_Workspace]] = collections.OrderedDict()


def _refcounts(objects: tuple[Any, ...]) -> list[int]:
    return [sys.getrefcount(item) for item in objects]


def reuse(key: Hashable, build: Callable[[], tuple[Any, tuple[Any, ...]]]) -> Any:
    """A workspace for ``key``: one built before by ``build`` whose objects nothing outside refers to any more,
    else a new one (kept for reuse while there is room). ``build()`` returns ``(value, watched)``: the value to
    hand out, and every object inside it that a caller can keep (arrays, their buffer, records), so that a
    caller holding any of them (or a view: views refer to the buffer) keeps the workspace busy. Contents are
    whatever the last user left: the caller initialises them."""
    with _lock:
        workspaces = _workspaces.get(key)
        if workspaces is not None:
            _workspaces.move_to_end(key)
            for workspace in workspaces:
                if _refcounts(workspace.watched) == workspace.counts:
                    return workspace.value
        workspace = _Workspace(*build())
        workspace.counts = _refcounts(workspace.watched)  # the references the workspace itself holds
        if workspaces is None:
            workspaces = _workspaces[key] = []
        if len(workspaces) < MAX_WORKSPACES_PER_KEY:
            workspaces.append(workspace)
        while len(_workspaces) > 1 and (
            len(_workspaces) > MAX_WORKSPACE_KEYS
            or sum(w.nbytes for kept in _workspaces.values() for w in kept) > MAX_POOLED_BYTES
        ):
            _workspaces.popitem(last=False)
        return workspace.value


@functools.lru_cache(maxsize=256)
def _layout(shapes: tuple[tuple[int, ...], ...], dtypes: tuple[np.dtype, ...]) -> tuple[tuple[int, ...], int]:
    """Aligned byte offsets of the arrays in a buffer, and its size."""
    offsets, total = [], 0
    for shape, dtype in zip(shapes, dtypes):
        offsets.append(total)
        total += -(-math.prod(shape) * np.dtype(dtype).itemsize // ALIGNMENT) * ALIGNMENT
    return tuple(offsets), total
