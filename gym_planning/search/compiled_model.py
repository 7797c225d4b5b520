"""Models compiled with Numba (:class:`JitRecurrentFn`) and how the compiled search loop calls them.

The loop (:func:`gym_planning.search.search.run_search`) calls the model through a function pointer of a
fixed signature (:func:`call_model` at the address :func:`compiled_model` gives), so the loop compiles
once and is cached on disk for every model; a new model pays only its own compilation. Shapes: ``B``
trees, ``A`` actions, ``E`` embedding size.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numba import types
from numba.core.typing import Signature
from numba.experimental.function_type import _get_wrapper_address
from numba.extending import intrinsic


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


_EMBEDDING_TYPES = {np.dtype(np.float64): types.float64, np.dtype(np.int64): types.int64}


def _model_signature(embedding_type: types.Type) -> Signature:
    vector, matrix, embedding = types.float64[::1], types.float64[:, ::1], embedding_type[:, ::1]
    return types.void(vector, embedding, types.int64[::1], vector, vector, matrix, vector, types.boolean[:, ::1], embedding)


_ADDRESSES: dict[tuple[Any, np.dtype], int] = {}


def compiled_model(model: JitRecurrentFn, embedding: Any) -> tuple[int, np.ndarray]:
    """The address of ``model.fn`` compiled for this embedding store, and its checked ``params``.

    The address is that of the C wrapper Numba compiles for a first-class function of the fixed signature
    (compiled once per model and embedding dtype, then kept). Raises ``TypeError`` when the embedding is not
    a 2-D float64/int64 numpy array, the parameters are not a 1-D float64 array, or ``fn`` does not compile
    for that signature.
    """
    if not (isinstance(embedding, np.ndarray) and embedding.ndim == 2):
        raise TypeError("a JitRecurrentFn needs the root embedding as a 2-D numpy array [B, E]")
    if embedding.dtype not in _EMBEDDING_TYPES:
        raise TypeError(f"a JitRecurrentFn needs a float64 or int64 root embedding; got {embedding.dtype}")
    params = np.asarray(model.params)
    if params.dtype != np.float64 or params.ndim != 1:
        raise TypeError(f"JitRecurrentFn.params must be a 1-D float64 array; got {params.dtype} of shape {params.shape}")
    key = (model.fn, embedding.dtype)
    if key not in _ADDRESSES:
        try:
            _ADDRESSES[key] = _get_wrapper_address(model.fn, _model_signature(_EMBEDDING_TYPES[embedding.dtype]))
        except Exception as error:
            raise TypeError(
                "JitRecurrentFn.fn must be an @njit function accepting (params float64[B], embedding "
                f"{embedding.dtype}[B, E], action int64[B], reward, discount, prior_logits, value, legal_mask, "
                f"new_embedding); compiling it failed: {error}"
            ) from None
    return _ADDRESSES[key], np.ascontiguousarray(params)


def _same_layout(got: types.Type, expected: types.Type) -> bool:
    """Whether Numba passes an argument of type ``got`` as it passes ``expected`` (read-only or not)."""
    return (
        isinstance(got, types.Array) and (got.dtype, got.ndim, got.layout) == (expected.dtype, expected.ndim, expected.layout)  # type: ignore[attr-defined]
    )


@intrinsic
def call_model(typingctx, address, params, embedding, action, reward, discount, prior_logits, value, legal_mask,
               new_embedding):  # fmt: skip
    """In compiled code: call the model whose C wrapper is at ``address`` (from :func:`compiled_model`).

    This is how Numba calls a first-class function (through its C wrapper), with the address passed as
    an int64 instead of as a function object: typing and unboxing a function object cost about 6 µs of
    Python at every call of the search loop, a tenth of a whole search at batch 1. The arguments must have
    the model signature's types (checked here, at compile time).
    """
    del typingctx
    args = (params, embedding, action, reward, discount, prior_logits, value, legal_mask, new_embedding)
    if not isinstance(embedding, types.Array) or embedding.dtype not in _EMBEDDING_TYPES.values():
        return None
    expected = _model_signature(embedding.dtype)
    if not isinstance(address, types.Integer) or not all(map(_same_layout, args, expected.args)):
        return None

    def codegen(context, builder, signature, llargs):
        del signature
        pointer = builder.inttoptr(llargs[0], context.get_value_type(types.FunctionType(expected).ftype))
        builder.call(pointer, llargs[1:])
        return context.get_dummy_value()

    return types.void(address, *args), codegen
