"""Argument normalisation shared by conv.py and pool.py.

Every public function funnels its arguments through these helpers so that
bad input gets the same clear ValueError/TypeError everywhere, naming the
argument and the value.
"""
import numbers
import operator

import numpy as np

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# No real array reaches this; bigger sizes cannot be addressed in int64 bytes.
MAX_DIM = 2 ** 62


def _is_int(v):
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


def as_int(value, name, minimum=None):
    """An int (not bool, not float) with an optional lower bound."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    value = operator.index(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if abs(value) > MAX_DIM:
        raise ValueError(f"{name}={value} is too large (limit 2**62)")
    return value


def pair(value, name, minimum=None):
    """Normalise an int-or-pair argument to a tuple of two ints."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return (as_int(value[0], name, minimum), as_int(value[1], name, minimum))
    if isinstance(value, np.ndarray) and value.shape == (2,):
        return pair(tuple(value.tolist()), name, minimum)
    if not _is_int(value):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r} ({type(value).__name__})")
    v = as_int(value, name, minimum)
    return (v, v)


def as_array(x, name, ndim=None, dtype=None):
    """A C-contiguous float32/float64 ndarray, never a view the caller can see mutated.

    Non-contiguous, negative-stride, broadcast (zero-stride) and read-only
    inputs are accepted; anything not C-contiguous is copied.  Non-float
    dtypes raise TypeError: fastconv never silently casts integers or complex.
    """
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    if not isinstance(x, np.ndarray):
        if hasattr(x, "__array__") or isinstance(x, (list, tuple)):
            try:
                x = np.asarray(x)
            except Exception as e:  # ragged lists and the like
                raise TypeError(f"{name} could not be converted to an array: {e}") from None
        else:
            raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name} has dtype {x.dtype} but the other inputs are {np.dtype(dtype)}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D (NCHW), got shape {x.shape}")
    return np.ascontiguousarray(x)


def flat(a):
    """1-D view of a C-contiguous array, the form the Cython boundary takes."""
    return a.reshape(-1)


def check_out(out, shape, dtype, name="out"):
    """Validate a user-provided output array: exact shape, dtype, writable, C-contiguous."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} has shape {out.shape}, expected {tuple(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"{name} has dtype {out.dtype}, expected {np.dtype(dtype)}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    return out


def may_share(out, *arrays):
    """True when `out` overlaps any input (the kernel would read what it writes)."""
    return any(a is not None and np.may_share_memory(out, a) for a in arrays)
