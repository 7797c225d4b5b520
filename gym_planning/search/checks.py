"""Checks at the search's edge: model outputs, root inputs and settings, validated in Python before any
compiled kernel sees them (once per call for settings, once per model call for outputs).

Shapes: ``B`` trees, ``A`` actions, ``K`` trees expanding in one simulation. Every check raises one
``ValueError``/``TypeError`` that names the field or setting and what is expected.
"""

from __future__ import annotations

import functools
import math
from numbers import Real
from typing import Any

import numpy as np
from numba import njit

from gym_planning.search.base import RecurrentOutput, RootOutput

# dtype kinds the search accepts for numbers: bool, signed and unsigned integers, floats (float16 included).
_REAL_KINDS = "biuf"
_HALF_PRECISIONS = ("torch.bfloat16", "torch.float16", "bfloat16")
_FLOAT64 = np.dtype(np.float64)
# (field, name in errors, per action): the RecurrentOutput fields the search reads.
_OUTPUTS = tuple((name, f"recurrent_fn's {name}", name == "prior_logits") for name in RecurrentOutput._fields[:4])


def to_numpy(x: Any) -> np.ndarray:
    """numpy view of a model output; torch tensors (any device, bfloat16 included) are copied to the CPU."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):
        x = x.detach()
        if str(x.dtype) in _HALF_PRECISIONS:  # numpy has no bfloat16: widen on the tensor's device first
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)


def real_array(x: Any, what: str) -> np.ndarray:
    """``x`` as a float64 array; half precisions (float16, bfloat16) are widened, other non-real dtypes
    (complex, object, strings, dates) refused with a ``TypeError`` naming ``what``."""
    if type(x) is np.ndarray and x.dtype is _FLOAT64:  # the common case, once per output per simulation: stay cheap
        return x
    array = to_numpy(x)
    if array.dtype.kind not in _REAL_KINDS and array.dtype.name not in _HALF_PRECISIONS:
        raise TypeError(
            f"{what} has dtype {array.dtype}; expected real numbers (float16, bfloat16, float32, float64 or integers)"
        )
    return array.astype(np.float64)


def setting(name: str, value: Any, *, minimum: float | None = None, strict: bool = False) -> float:
    """A float search setting: a real number, finite, and ``>= minimum`` (``> minimum`` when ``strict``)."""
    if type(value) is not float and type(value) is not int:  # the common cases skip the slower ABC check
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
            raise TypeError(f"{name} must be a real number; got {value!r}")
    number = float(value)
    bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
    if not math.isfinite(number) or (minimum is not None and (number <= minimum if strict else number < minimum)):
        raise ValueError(f"{name} must be a finite number{bound}; got {value!r}")
    return number


def integer_setting(name: str, value: Any, minimum: int) -> int:
    """An integer search setting ``>= minimum`` (Python or numpy integers; not bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def value_bounds_setting(value_bounds: Any) -> tuple[float, float] | None:
    """``(min, max)`` of Q, both finite, ``max > min`` and ``max - min`` finite; None passes through."""
    if value_bounds is None:
        return None
    message = f"value_bounds must be None or (min, max) of finite numbers with max > min; got {value_bounds!r}"
    try:
        low, high = (float(x) for x in value_bounds)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(high - low) and high > low):
        raise ValueError(message)
    return low, high


def check_root(root: RootOutput, legal_mask: Any, num_simulations: int, max_depth: int | None):
    """Validates the root and the tree size; returns ``logits [B, A]``, ``value [B]`` float64, ``legal [B, A]`` bool."""
    integer_setting("num_simulations", num_simulations, 1)
    if max_depth is not None:
        try:
            integer_setting("max_depth", max_depth, 1)
        except ValueError:
            raise ValueError(f"max_depth must be None or an integer >= 1; got {max_depth!r}") from None
    logits = real_array(root.prior_logits, "root prior_logits")
    value = real_array(root.value, "root value")
    if logits.ndim != 2 or logits.shape[1] < 1:
        raise ValueError(f"root prior_logits must have shape [B, A]; got {logits.shape}")
    batch_size, num_actions = logits.shape
    if value.shape != (batch_size,):
        raise ValueError(f"root value must have shape [B] = ({batch_size},); got {value.shape}")
    if len(root.embedding) != batch_size:
        raise ValueError(f"root embedding must hold B = {batch_size} rows; got {len(root.embedding)}")
    problem = _root_problem(logits, value)
    if problem == 1:
        raise ValueError("root prior_logits contain NaN or +inf")
    if problem == 2:
        raise ValueError("root value contains NaN or infinity")
    legal = _all_legal(batch_size, num_actions) if legal_mask is None else _root_mask(legal_mask, logits.shape)
    if _any_row_without_prior(logits, legal):
        no_prior = np.flatnonzero(~(legal & (logits > -np.inf)).any(axis=1))
        raise ValueError(f"root prior_logits are -inf on every legal action of batch rows {no_prior.tolist()}")
    return logits, value, legal


# A search call costs tens of microseconds at batch 1: the root checks below are compiled (one pass each, no
# temporaries) rather than numpy expressions, and the all-legal mask is made once per shape.


@njit(cache=True)
def _root_problem(logits, value):
    """0 when the root is usable, 1 when a logit is NaN or +inf, 2 when a value is NaN or infinite."""
    for b in range(logits.shape[0]):
        for a in range(logits.shape[1]):
            if not logits[b, a] < np.inf:  # False for NaN and +inf alike
                return 1
    for b in range(value.shape[0]):
        if not np.isfinite(value[b]):
            return 2
    return 0


@njit(cache=True)
def _any_row_without_prior(logits, legal):
    """Whether some row of ``logits`` ``[B, A]`` is -inf on every action ``legal`` allows."""
    for b in range(logits.shape[0]):
        usable = False
        for a in range(logits.shape[1]):
            usable = usable or (legal[b, a] and logits[b, a] > -np.inf)
        if not usable:
            return True
    return False


@functools.lru_cache(maxsize=64)
def _all_legal(batch_size: int, num_actions: int) -> np.ndarray:
    """A ``[B, A]`` mask of True, shared by every search of that shape: the policies only read the root mask
    and never hand it out. (Writable, so that the kernels see the same array type as a caller's mask and
    compile once.)"""
    return np.ones((batch_size, num_actions), np.bool_)


def _root_mask(legal_mask: Any, shape: tuple[int, int]) -> np.ndarray:
    legal = to_numpy(legal_mask)
    if legal.shape != shape:
        raise ValueError(f"legal_mask must have shape [B, A] = {shape}; got {legal.shape}")
    if legal.dtype != np.bool_:
        if legal.dtype.kind not in _REAL_KINDS or not np.isin(legal, (0, 1)).all():
            raise ValueError("legal_mask must be boolean (True = legal) or 0/1")
        legal = legal.astype(np.bool_)
    empty = np.flatnonzero(~legal.any(axis=1))
    if empty.size:
        raise ValueError(f"legal_mask has no legal action for batch rows {empty.tolist()}")
    return legal


def unpack_recurrent_result(result: Any) -> tuple[RecurrentOutput, Any]:
    """``(RecurrentOutput, new_embedding)`` from what ``recurrent_fn`` returned, or a ``TypeError``."""
    if isinstance(result, RecurrentOutput) or not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"recurrent_fn must return (RecurrentOutput, new_embedding); got {type(result).__name__}")
    if not isinstance(result[0], RecurrentOutput):
        raise TypeError(f"recurrent_fn must return (RecurrentOutput, new_embedding); got {type(result[0]).__name__} first")
    return result


def check_recurrent_output(output: RecurrentOutput, batch_size: int, num_actions: int) -> tuple[np.ndarray, ...]:
    """``reward, discount [K]``, ``prior_logits [K, A]``, ``value [K]`` as float64 arrays of checked shapes."""
    vector, matrix = (batch_size,), (batch_size, num_actions)
    arrays = []
    for name, what, per_action in _OUTPUTS:
        array = real_array(getattr(output, name), what)
        shape = matrix if per_action else vector
        if array.shape != shape:
            raise ValueError(f"recurrent_fn returned {name} of shape {array.shape}; expected {shape}")
        arrays.append(array)
    return tuple(arrays)


def check_child_mask(mask: np.ndarray, batch_size: int, num_actions: int) -> np.ndarray:
    """The ``[K, A]`` legal mask ``recurrent_fn`` returned, as bool (rows with no legal action are kept as they
    are: the expansion makes such a terminal state searchable)."""
    if mask.shape != (batch_size, num_actions):
        raise ValueError(
            f"recurrent_fn returned legal_mask of shape {mask.shape}; expected [B, A] = {(batch_size, num_actions)}"
        )
    if mask.dtype != np.bool_:
        if mask.dtype.kind not in _REAL_KINDS or not np.isin(mask, (0, 1)).all():
            raise ValueError("recurrent_fn returned a legal_mask that is neither boolean (True = legal) nor 0/1")
        mask = mask.astype(np.bool_)
    return mask
