"""Arrays that compiled kernels read without reference counting.

Numba counts the references to an array whenever compiled code passes it on or binds it to a new name (an
inlined rule's arguments included): an atomic increment and decrement each time, through a call into a small
separate module (``NRT_incref`` / ``NRT_decref``). In the search's walks that is six atomic operations per node
visited, a tenth of a Gumbel search at batch 256 (``perf record``, 2-core AMD EPYC VM, issue 17). The array
:func:`borrowed` gives has the same data, shape and strides but no reference count (a null meminfo, as Numba's
views of constant arrays have), so those operations find nothing to count and return at once.

Safe only while some owner keeps the array alive for as long as the borrowed one is used: a kernel's own
arguments qualify (its caller holds them until the call returns); an array the kernel allocated itself does
not (Numba frees it after its last use, which may come before the borrowed one's).
"""

from __future__ import annotations

from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from gym_planning.search.tree import TreeArrays


@intrinsic
def borrowed(typingctx, array):
    """In compiled code: ``array`` without its reference count (see the module docstring for when it is safe)."""
    del typingctx
    if not isinstance(array, types.Array):
        return None

    def codegen(context, builder, signature, args):
        del signature
        source = context.make_array(array)(context, builder, args[0])
        view = context.make_array(array)(context, builder)
        for name in ("data", "shape", "strides", "itemsize", "nitems"):
            setattr(view, name, getattr(source, name))
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        return view._getvalue()

    return array(array), codegen


@njit(cache=True, inline="always")
def borrowed_trees(arrays):
    """A :class:`~gym_planning.search.tree.TreeArrays` record whose arrays are :func:`borrowed`."""
    return TreeArrays(borrowed(arrays.edge_floats), borrowed(arrays.edge_ints), borrowed(arrays.edge_legal),
                      borrowed(arrays.node_visits), borrowed(arrays.raw_values), borrowed(arrays.node_values),
                      borrowed(arrays.parents), borrowed(arrays.action_from_parent), borrowed(arrays.node_depth),
                      borrowed(arrays.embedding_slots), borrowed(arrays.num_nodes), borrowed(arrays.value_bounds),
                      borrowed(arrays.root_gumbel))  # fmt: skip
