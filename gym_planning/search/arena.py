"""Reusable memory for the search's large arrays (trees and embedding stores).

A search at batch 256 with 18 actions allocates about 10 MB of tree arrays. Fresh memory of that size
comes from the kernel page by page: every 4 KiB page faults on first touch, and in a virtual machine a
page fault costs a few microseconds, so a third of a search's time went to faults on the 2-core VM of
issue 17 (measured with ``perf stat -e page-faults``: about 3,800 faults per search). The pool keeps a
few byte buffers alive and hands one out again once nothing refers to it any more: every array carved
from a buffer is a view whose ``base`` is that buffer, so a buffer whose reference count is back to the
pool's own references is free. Results handed to the caller (``SearchOutput.tree``) keep their buffer
busy for as long as the caller holds them.
"""

from __future__ import annotations

import functools
import math
import sys
import threading

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


def carve(shapes: tuple[tuple[int, ...], ...], dtypes: tuple[np.dtype, ...]) -> list[np.ndarray]:
    """C-contiguous arrays of these shapes and dtypes, each starting on a cache line of one pooled buffer
    (contents undefined)."""
    offsets, total = _layout(shapes, dtypes)
    buffer = take(total + ALIGNMENT)
    start = _aligned_starts.get(id(buffer))  # None for a buffer too large to pool
    if start is None:
        start = _aligned_start(buffer)
    return [np.ndarray(shape, dtype, buffer, start + offset) for shape, dtype, offset in zip(shapes, dtypes, offsets)]


@functools.lru_cache(maxsize=256)
def _layout(shapes: tuple[tuple[int, ...], ...], dtypes: tuple[np.dtype, ...]) -> tuple[tuple[int, ...], int]:
    """Aligned byte offsets of the arrays in a buffer, and its size."""
    offsets, total = [], 0
    for shape, dtype in zip(shapes, dtypes):
        offsets.append(total)
        total += -(-math.prod(shape) * np.dtype(dtype).itemsize // ALIGNMENT) * ALIGNMENT
    return tuple(offsets), total
