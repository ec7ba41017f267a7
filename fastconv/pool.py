"""Max and average pooling, forward and backward (NCHW, float32/float64).

Argument handling and output shapes follow ``torch.nn.functional``
exactly; the work is done by the C kernels behind ``fastconv._kernels``
(one call per op, GIL released, OpenMP over the N*C planes).
"""
import time

import numpy as np

from . import _args, _kernels
import importlib

# The module, not the function fastconv.profile re-exported under the same name.
_profile = importlib.import_module(__package__ + ".profile")
from ._args import MAX_DIM, SUPPORTED_DTYPES, as_array, as_int, flat, pair

__all__ = ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward"]


# ---------------------------------------------------------------- helpers

def _out_size(size, kernel, stride, pad, dilation, ceil_mode):
    """PyTorch's pooling output size along one axis (pooling_output_shape)."""
    num = size + 2 * pad - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-num // stride) + 1
        # the last window must start inside the input or the left padding
        if (out - 1) * stride >= size + pad:
            out -= 1
    else:
        out = num // stride + 1
    return out


def _plain(v):
    """True for the argument forms that normalise by value alone: exact
    ints, tuples of exact ints, None and bools (not int subclasses such as
    numpy ints or bool-as-size, which must go through validation)."""
    t = type(v)
    return t is int or t is bool or v is None or (t is tuple and all(type(e) is int for e in v))


_PARAMS_CACHE = {}


def _params(op, input_shape, kernel_size, stride, padding, dilation, ceil_mode):
    """Normalise and validate pooling parameters for a 4-D input shape.

    Returns ``(kernel, stride, padding, dilation, output_shape)`` with the
    first four as pairs.  Valid results for plain int/tuple arguments are
    memoised (a layer calls with the same arguments every step; the
    validation costs more than a small kernel), keyed with each argument's
    type so that e.g. ``kernel_size=True`` still raises.
    """
    args = (kernel_size, stride, padding, dilation, ceil_mode)
    key = None
    if all(map(_plain, args)):
        key = (op, tuple(input_shape)) + tuple((type(a), a) for a in args)
        hit = _PARAMS_CACHE.get(key)
        if hit is not None:
            return hit
    res = _params_checked(op, input_shape, kernel_size, stride, padding, dilation, ceil_mode)
    if key is not None:
        if len(_PARAMS_CACHE) >= 256:
            _PARAMS_CACHE.clear()
        _PARAMS_CACHE[key] = res
    return res


def _params_checked(op, input_shape, kernel_size, stride, padding, dilation, ceil_mode):
    k = pair(kernel_size, "kernel_size", 1)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else pair(stride, "stride", 1)
    p = pair(padding, "padding", 0)
    d = pair(dilation, "dilation", 1)
    _flag(ceil_mode, "ceil_mode")
    for axis in (0, 1):
        if p[axis] > k[axis] // 2:
            raise ValueError(f"padding={padding!r}: padding must be at most half the kernel size "
                             f"(kernel_size={kernel_size!r}), as in PyTorch")
    n, c, h, w = input_shape
    if h < 1 or w < 1:
        # As PyTorch: only the batch and channel dimensions may be empty.
        raise ValueError(f"{op}: x has shape {tuple(input_shape)}; its height and width must be >= 1")
    ho = _out_size(h, k[0], s[0], p[0], d[0], bool(ceil_mode))
    wo = _out_size(w, k[1], s[1], p[1], d[1], bool(ceil_mode))
    if ho < 1 or wo < 1:
        raise ValueError(f"{op}: output size ({ho}, {wo}) is too small for input size ({h}, {w}) with "
                         f"kernel_size={k}, stride={s}, padding={p}, dilation={d}, ceil_mode={bool(ceil_mode)}")
    return k, s, p, d, (n, c, ho, wo)


def _flag(v, name):
    """A bool (or the ints 0/1, which PyTorch also takes)."""
    if isinstance(v, (bool, np.bool_)) or (isinstance(v, (int, np.integer)) and v in (0, 1)):
        return bool(v)
    raise TypeError(f"{name} must be a bool, got {v!r}")


def _early_params(op, x, *args):
    """Validate pooling parameters on x's shape before as_array may copy x
    (a huge zero-stride x with a bad kernel must give ValueError, not MemoryError)."""
    if isinstance(x, np.ndarray) and x.ndim in (3, 4) and x.dtype in SUPPORTED_DTYPES:
        _params(op, (1,) + x.shape if x.ndim == 3 else x.shape, *args)


def _as_input(x, name):
    """(4-D C-contiguous array, was_3d) for an NCHW or CHW input."""
    if isinstance(x, np.ndarray):
        _check_size(x.shape, x.itemsize, f"{name}.shape")  # before as_array may copy it
    a = as_array(x, name)
    if a.ndim == 3:
        return a[None], True
    if a.ndim != 4:
        raise ValueError(f"{name} must be 4-D (NCHW) or 3-D (CHW), got shape {a.shape}")
    return a, False


def _check_size(shape, itemsize, name):
    total = itemsize
    for v in shape:
        total *= v
    if total > MAX_DIM:
        raise ValueError(f"{name}={tuple(shape)} is too large: {total} bytes")


def _shape_tuple(in_shape, out_shape, k, s, p, d, count_include_pad=True, divisor_override=0):
    n, c, h, w = in_shape
    return (n, c, h, w, out_shape[2], out_shape[3], k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1],
            int(count_include_pad), int(divisor_override or 0))


def _avg_options(count_include_pad, divisor_override):
    _flag(count_include_pad, "count_include_pad")
    if divisor_override is not None:
        divisor_override = as_int(divisor_override, "divisor_override")
        if divisor_override == 0:
            raise ValueError("divisor_override must be non-zero (None for no override), got 0")
        if divisor_override < 0:
            raise ValueError(f"divisor_override must be positive, got {divisor_override}")
    return bool(count_include_pad), divisor_override


def _pairs_kwargs(k, s, p, d=None):
    kw = {"kernel_size": k, "stride": s, "padding": p}
    if d is not None:
        kw["dilation"] = d
    return kw


def _pool_out(out, x, out_shape, was_3d, dtype):
    """The output array: a fresh one, or `out` checked (the shape the call
    returns, dtype of x, C-contiguous, writable, not overlapping x) and
    viewed as 4-D."""
    if out is None:
        return np.empty(out_shape, dtype=dtype)
    _args.check_out(out, out_shape[1:] if was_3d else out_shape, dtype)
    if _args.may_share(out, x):
        raise ValueError("out must not overlap x")
    return out.reshape(out_shape)


# ---------------------------------------------------------------- max pooling

def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False, *,
               out=None):
    """2-D max pooling over an NCHW array, as ``torch.nn.functional.max_pool2d``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W) or (C, H, W)
        float32 or float64 input; any strides (non-contiguous input is copied).
    kernel_size : int or (int, int)
        Window size (kH, kW), each >= 1.
    stride : int or (int, int), optional
        Window step; defaults to `kernel_size`.
    padding : int or (int, int), optional
        Implicit -inf padding on both sides, at most half the kernel size.
    dilation : int or (int, int), optional
        Spacing between window taps, >= 1.
    ceil_mode : bool, optional
        Round the output size up; the last window must still start inside
        the input or the left padding (PyTorch's rule).
    return_indices : bool, optional
        Also return the argmax of every window.
    out : ndarray, optional
        Array the maxima are written into (the shape of `y`, dtype of `x`,
        C-contiguous, not overlapping `x`); returned as `y`.  Reusing one
        saves the first-touch cost of fresh memory in a loop.

    Returns
    -------
    y : ndarray, shape (N, C, H_out, W_out) (or (C, H_out, W_out))
        Window maxima, same dtype as `x`.  A NaN anywhere in a window gives
        NaN; among equal values the first in row-major window order wins.
    indices : ndarray of int64, same shape as `y`
        Only with ``return_indices=True``: flat offsets ``h * W + w`` into
        each H*W plane, equal to PyTorch's.

    Raises
    ------
    TypeError
        Non-array or non-float input, non-int sizes.
    ValueError
        Wrong rank, kernel/stride/dilation < 1, negative padding or padding
        above half the kernel, output size < 1.
    """
    prof = _profile._active
    if prof:
        t0 = time.perf_counter()
    _early_params("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    a, was_3d = _as_input(x, "x")
    k, s, p, d, out_shape = _params("max_pool2d", a.shape, kernel_size, stride, padding, dilation, ceil_mode)
    _check_size(out_shape, 8, "output shape")
    y = _pool_out(out, x, out_shape, was_3d, a.dtype)
    ind = np.empty(out_shape, dtype=np.int64) if return_indices else None
    ws = 0
    if y.size:
        ws = _kernels.max_pool2d(flat(a), flat(y), None if ind is None else flat(ind),
                                 _shape_tuple(a.shape, out_shape, k, s, p, d))
    if prof:
        _profile._record("max_pool2d", "direct",
                         dict(input_shape=a.shape, ceil_mode=bool(ceil_mode), dtype=a.dtype.name,
                              **_pairs_kwargs(k, s, p, d)),
                         time.perf_counter() - t0, ws)
    if was_3d:
        y = y[0]
        ind = None if ind is None else ind[0]
    if out is not None:
        y = out
    return (y, ind) if return_indices else y


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
                        indices=None):
    """Gradient of :func:`max_pool2d` with respect to its input.

    Parameters
    ----------
    grad_out : ndarray, shape (N, C, H_out, W_out) (or 3-D)
        Gradient of the pooled output; same dtype as `x`.
    x : ndarray, shape (N, C, H, W) (or 3-D)
        The forward input.  Only its shape is used when `indices` is given;
        otherwise the argmax of every window is recomputed from it.
    kernel_size, stride, padding, dilation, ceil_mode
        As in :func:`max_pool2d`.
    indices : ndarray of int64, optional
        The indices :func:`max_pool2d` returned; each must lie in its own
        window.

    Returns
    -------
    grad_x : ndarray, shape of `x`
        Each output gradient added to the input element its window
        selected (gradients of overlapping windows that pick the same
        element add up).  A window lying wholly in the padding sends its
        gradient nowhere.

    Raises
    ------
    TypeError, ValueError
        As :func:`max_pool2d`, plus mismatched shapes/dtypes of `grad_out`
        or `indices`, and indices outside their windows.
    """
    prof = _profile._active
    if prof:
        t0 = time.perf_counter()
    if indices is None or not isinstance(x, np.ndarray):
        a, was_3d = _as_input(x, "x")
    else:
        # with indices only the shape and dtype of x are used: no copy
        if x.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"x must have dtype float32 or float64, got {x.dtype}")
        if x.ndim not in (3, 4):
            raise ValueError(f"x must be 4-D (NCHW) or 3-D (CHW), got shape {x.shape}")
        was_3d = x.ndim == 3
        a = x[None] if was_3d else x
    k, s, p, d, out_shape = _params("max_pool2d_backward", a.shape, kernel_size, stride, padding, dilation,
                                    ceil_mode)
    want = out_shape[1:] if was_3d else out_shape
    if isinstance(grad_out, np.ndarray) and grad_out.shape != tuple(want):
        # checked before as_array so a huge broadcast grad_out is never copied
        raise ValueError(f"grad_out has shape {grad_out.shape}, but the pooling of x (shape {x.shape}) "
                         f"gives {tuple(want)}")
    g = as_array(grad_out, "grad_out", dtype=a.dtype)
    if g.shape != tuple(want):
        raise ValueError(f"grad_out has shape {g.shape}, but the pooling of x (shape {x.shape}) "
                         f"gives {tuple(want)}")
    g = g.reshape(out_shape)
    ind = None
    if indices is not None:
        if not isinstance(indices, np.ndarray):
            raise TypeError(f"indices must be a NumPy array, got {type(indices).__name__}")
        if indices.dtype != np.int64:
            raise TypeError(f"indices must have dtype int64, got {indices.dtype}")
        if indices.shape != tuple(want):
            raise ValueError(f"indices has shape {indices.shape}, expected {tuple(want)} (grad_out's shape)")
        ind = np.ascontiguousarray(indices).reshape(out_shape)
    _check_size(a.shape, 8, "x.shape")
    gx = np.empty(a.shape, dtype=a.dtype)
    ws = 0
    if gx.size:
        ws = _kernels.max_pool2d_backward(flat(g), None if ind is None else flat(ind),
                                          flat(a) if ind is None else None, flat(gx),
                                          _shape_tuple(a.shape, out_shape, k, s, p, d))
    if prof:
        _profile._record("max_pool2d_backward", "direct",
                         dict(input_shape=a.shape, ceil_mode=bool(ceil_mode), dtype=a.dtype.name,
                              **_pairs_kwargs(k, s, p, d)),
                         time.perf_counter() - t0, ws)
    return gx[0] if was_3d else gx


# ---------------------------------------------------------------- average pooling

def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, out=None):
    """2-D average pooling over an NCHW array, as ``torch.nn.functional.avg_pool2d``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W) or (C, H, W)
        float32 or float64 input; any strides.
    kernel_size : int or (int, int)
        Window size, each >= 1.
    stride : int or (int, int), optional
        Window step; defaults to `kernel_size`.
    padding : int or (int, int), optional
        Implicit zero padding on both sides, at most half the kernel size.
    ceil_mode : bool, optional
        Round the output size up (the last window must start inside the
        input or the left padding).
    count_include_pad : bool, optional
        Divide by the window size clipped to the padded input (True) or by
        the number of real input elements in the window (False).
    divisor_override : int, optional
        Positive divisor used for every window instead.
    out : ndarray, optional
        Array the result is written into (the shape of `y`, dtype of `x`,
        C-contiguous, not overlapping `x`); returned as `y`.

    Returns
    -------
    y : ndarray, shape (N, C, H_out, W_out) (or 3-D), dtype of `x`
        Window sums (in window order, in the input dtype) times the
        reciprocal of the divisor (PyTorch divides; results can differ in
        the last bit).

    Raises
    ------
    TypeError, ValueError
        Bad types, ranks, sizes, padding above half the kernel, output size
        < 1, divisor_override <= 0.
    """
    prof = _profile._active
    if prof:
        t0 = time.perf_counter()
    _early_params("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    a, was_3d = _as_input(x, "x")
    cip, dov = _avg_options(count_include_pad, divisor_override)
    k, s, p, d, out_shape = _params("avg_pool2d", a.shape, kernel_size, stride, padding, 1, ceil_mode)
    _check_size(out_shape, 8, "output shape")
    y = _pool_out(out, x, out_shape, was_3d, a.dtype)
    ws = 0
    if y.size:
        ws = _kernels.avg_pool2d(flat(a), flat(y), _shape_tuple(a.shape, out_shape, k, s, p, d, cip, dov))
    if prof:
        _profile._record("avg_pool2d", "direct",
                         dict(input_shape=a.shape, ceil_mode=bool(ceil_mode), count_include_pad=cip,
                              divisor_override=dov, dtype=a.dtype.name, **_pairs_kwargs(k, s, p)),
                         time.perf_counter() - t0, ws)
    if out is not None:
        return out
    return y[0] if was_3d else y


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Gradient of :func:`avg_pool2d` with respect to its input.

    Parameters
    ----------
    grad_out : ndarray, shape (N, C, H_out, W_out) (or 3-D)
        Gradient of the pooled output (float32 or float64; the result has
        its dtype).
    input_shape : tuple of int
        Shape of the forward input, (N, C, H, W) or (C, H, W).
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As in :func:`avg_pool2d`.

    Returns
    -------
    grad_x : ndarray, shape `input_shape`
        Every output gradient times the reciprocal of its window's divisor, added to
        each input element of the window.

    Raises
    ------
    TypeError, ValueError
        As :func:`avg_pool2d`, plus a malformed `input_shape` or a
        `grad_out` whose shape does not match it.
    """
    prof = _profile._active
    if prof:
        t0 = time.perf_counter()
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) not in (3, 4):
        raise ValueError(f"input_shape must be a tuple of 4 ints (N, C, H, W) or 3 ints (C, H, W), "
                         f"got {input_shape!r}")
    shape = tuple(as_int(v, "input_shape", 0) for v in input_shape)
    was_3d = len(shape) == 3
    shape4 = (1,) + shape if was_3d else shape
    _check_size(shape4, 8, "input_shape")
    cip, dov = _avg_options(count_include_pad, divisor_override)
    k, s, p, d, out_shape = _params("avg_pool2d_backward", shape4, kernel_size, stride, padding, 1, ceil_mode)
    want = out_shape[1:] if was_3d else out_shape
    if isinstance(grad_out, np.ndarray) and grad_out.shape != tuple(want):
        # checked before as_array so a huge broadcast grad_out is never copied
        raise ValueError(f"grad_out has shape {grad_out.shape}, but pooling input_shape={shape} gives {tuple(want)}")
    g = as_array(grad_out, "grad_out")
    if g.shape != tuple(want):
        raise ValueError(f"grad_out has shape {g.shape}, but pooling input_shape={shape} gives {tuple(want)}")
    g = g.reshape(out_shape)
    gx = np.empty(shape4, dtype=g.dtype)
    ws = 0
    if gx.size:
        ws = _kernels.avg_pool2d_backward(flat(g), flat(gx), _shape_tuple(shape4, out_shape, k, s, p, d, cip, dov))
    if prof:
        _profile._record("avg_pool2d_backward", "direct",
                         dict(input_shape=shape4, ceil_mode=bool(ceil_mode), count_include_pad=cip,
                              divisor_override=dov, dtype=g.dtype.name, **_pairs_kwargs(k, s, p)),
                         time.perf_counter() - t0, ws)
    return gx[0] if was_3d else gx
