"""Models compiled with Numba (:class:`JitRecurrentFn`) and how the compiled search loop calls them.

The loop (:func:`gym_planning.search.search.run_search`) calls the model through a function pointer of a
fixed signature, so the loop compiles once and is cached on disk for every model; a new model pays only
its own compilation. Shapes: ``B`` trees, ``A`` actions, ``E`` embedding size.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numba import types
from numba.experimental.function_type import _get_wrapper_address


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


def _model_signature(embedding_type: types.Type) -> types.Type:
    vector, matrix, embedding = types.float64[::1], types.float64[:, ::1], embedding_type[:, ::1]
    return types.void(vector, embedding, types.int64[::1], vector, vector, matrix, vector, types.boolean[:, ::1], embedding)


class CompiledModel:
    """A Numba model function as a first-class function of a fixed signature (Numba's wrapper-address
    protocol: ``__wrapper_address__`` and ``signature``).

    Passing it (rather than the dispatcher) keeps the search loop generic over models, so Numba caches
    the loop on disk once instead of recompiling it for every model in every process. Its Numba type is
    built once and given as ``_numba_type_``: typing a ``WrapperAddressProtocol`` instance builds a new
    function type at every call, about 15 µs, a tenth of a whole search at batch 1.
    """

    def __init__(self, fn: Any, embedding_dtype: np.dtype):
        self._signature = _model_signature(_EMBEDDING_TYPES[embedding_dtype])
        self._numba_type_ = types.FunctionType(self._signature)
        try:
            self._address = _get_wrapper_address(fn, self._signature)
        except Exception as error:
            raise TypeError(
                "JitRecurrentFn.fn must be an @njit function accepting (params float64[B], embedding "
                f"{embedding_dtype}[B, E], action int64[B], reward, discount, prior_logits, value, legal_mask, "
                f"new_embedding); compiling it failed: {error}"
            ) from None

    def __wrapper_address__(self) -> int:
        return self._address

    def signature(self) -> types.Type:
        return self._signature


_COMPILED_MODELS: dict[tuple[Any, np.dtype], CompiledModel] = {}


def compiled_model(model: JitRecurrentFn, embedding: Any) -> tuple[CompiledModel, np.ndarray]:
    """The function pointer of ``model.fn`` for this embedding store and its checked ``params``.

    Raises ``TypeError`` when the embedding is not a 2-D float64/int64 numpy array or the parameters are
    not a 1-D float64 array.
    """
    if not (isinstance(embedding, np.ndarray) and embedding.ndim == 2):
        raise TypeError("a JitRecurrentFn needs the root embedding as a 2-D numpy array [B, E]")
    if embedding.dtype not in _EMBEDDING_TYPES:
        raise TypeError(f"a JitRecurrentFn needs a float64 or int64 root embedding; got {embedding.dtype}")
    params = np.asarray(model.params)
    if params.dtype != np.float64 or params.ndim != 1:
        raise TypeError(f"JitRecurrentFn.params must be a 1-D float64 array; got {params.dtype} of shape {params.shape}")
    key = (model.fn, embedding.dtype)
    if key not in _COMPILED_MODELS:
        _COMPILED_MODELS[key] = CompiledModel(model.fn, embedding.dtype)
    return _COMPILED_MODELS[key], np.ascontiguousarray(params)
