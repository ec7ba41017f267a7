"""Convolutions: conv2d, its backward pass, transposed convolution, kernel
composition and the list of available algorithms.

Each public function validates and normalises its arguments (through
``_args``), computes PyTorch's output shape, picks an algorithm, allocates
the output and makes one call per result into the C kernels (GIL released).
"""
import importlib
import time

import numpy as np

from . import _args, _auto, _blas_threads, _kernels

# The module, not the function ``fastconv.profile`` re-exported under the same
# name (``from . import profile`` would pick the function once __init__ ran).
_profile = importlib.import_module(__package__ + ".profile")
# Likewise the tuning module (``fastconv.tune`` is its function).
_tune = importlib.import_module(__package__ + ".tune")

__all__ = ["conv2d", "conv2d_backward", "conv_transpose2d", "compose", "algorithms"]

_ALGO_CODES = {"direct": _kernels.ALGO_DIRECT, "im2col": _kernels.ALGO_IM2COL,
               "dilated": _kernels.ALGO_DILATED}
_CONV_OPS = ("conv2d", "conv2d_backward", "conv_transpose2d")
_POOL_OPS = ("max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward")
_NEEDS = ("input", "weight", "bias")
_INT64_MAX = 2 ** 63 - 1


# ---------------------------------------------------------------- algorithms

_probe_cache = {}


def _probe(algo, op):
    """True when the C kernels of `algo` serve a small configuration of `op`.

    A kernel family not yet implemented (or im2col without a BLAS) reports
    "unsupported"; probing with a real call is the one test that cannot
    drift from what the kernels do.  The answer is fixed per process.
    """
    key = (algo, op)
    if key not in _probe_cache:
        from . import config
        if algo == "im2col" and not config._blas_loaded:
            _probe_cache[key] = False
            return False
        code = _ALGO_CODES[algo]
        dil = 2 if algo == "dilated" else 1
        # (n, c_in, h_in, w_in, c_out, kh, kw, h_out, w_out, sh, sw, ph, pw, dh, dw, groups)
        shape = (1, 2, 6, 6, 2, 2, 2, 6 - dil, 6 - dil, 1, 1, 0, 0, dil, dil, 1)
        x = np.zeros(72)
        w = np.zeros(16)
        y = np.zeros(2 * (6 - dil) ** 2)
        try:
            with _blas_threads.single_threaded():
                if op == "conv2d":
                    _kernels.conv2d(x, w, None, y, shape, code)
                elif op == "conv2d_backward":
                    _kernels.conv2d_grad_input(y, w, x, shape, code)
                    _kernels.conv2d_grad_weight(y, x, w, shape, code)
                else:  # conv_transpose2d
                    _kernels.conv2d_grad_input(y, w, x, shape, code)
            ok = True
        except (ValueError, MemoryError):
            ok = False
        _probe_cache[key] = ok
    return _probe_cache[key]


def algorithms(op):
    """Names usable as ``algo=`` for an operation.

    Parameters
    ----------
    op : str
        ``"conv2d"``, ``"conv2d_backward"``, ``"conv_transpose2d"``, or a
        pooling op (``"max_pool2d"``, ``"avg_pool2d"`` and their
        ``_backward``).

    Returns
    -------
    list of str
        ``"auto"`` first, then every algorithm whose kernels are available
        in this build and process (im2col needs a BLAS).
    """
    if op in _POOL_OPS:
        return ["auto", "direct"]
    if op not in _CONV_OPS:
        raise ValueError(f"op must be one of {_CONV_OPS + _POOL_OPS}, got {op!r}")
    names = ["auto", "direct"]
    for algo in ("im2col", "dilated"):
        if _probe(algo, op):
            names.append(algo)
    return names


def _check_extent(shape):
    """Refuse geometry whose tap coordinates overflow the C kernels' int64 math.

    ``shape`` is the C shape tuple; the kernels compute ``o*stride - pad + t*dil``
    and ``in + 2*pad``, so both ends must fit (Python ints cannot overflow, C's can).
    """
    (n, c_in, h, w, c_out, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw, g) = shape
    for axis, size, k, out, st, pad, dil in (("height", h, kh, ho, sh, ph, dh),
                                             ("width", w, kw, wo, sw, pw, dw)):
        far = max(out - 1, 0) * st + (k - 1) * dil + 1
        if size + 2 * pad > _INT64_MAX or far > _INT64_MAX:
            raise ValueError(f"padding={pad}, dilation={dil}, stride={st} along {axis} (input {size}, "
                             f"kernel {k}): the padded extent overflows 64-bit size arithmetic")


def resolve_algo(algo, op, shape, dtype=None, needs=None):
    """The concrete algorithm a call of `op` with ``algo=`` runs (``"auto"`` resolved).

    Package-internal API: the ops here and planners that must know the
    algorithm before calling (``fastconv._blocks`` sizes workspace with it)
    use this one function, so they always agree.  ``shape`` is the C shape
    tuple of the forward convolution (``dtype`` None: float32's rules, e.g.
    for a plan made before any array exists); ``"auto"`` hands it to the
    heuristic in ``fastconv._auto``, or, in tuning mode, to ``fastconv.tune``
    (which times the candidates once per configuration).  Raises ValueError
    for an unknown or unavailable algorithm.
    """
    if not isinstance(algo, str):
        raise TypeError(f"algo must be a string, got {algo!r} ({type(algo).__name__})")
    _check_extent(shape)
    if algo == "auto":
        dtype = np.dtype(dtype or np.float32)
        if _tune._mode != "off":
            return _tune.choose(op, shape, dtype.name, needs, algorithms(op))
        from . import config
        return _auto.choose(op, shape, algorithms(op), config.isa(), dtype=dtype.name,
                            threads=config.get_num_threads(), needs=needs)
    if algo not in _ALGO_CODES:
        raise ValueError(f"algo={algo!r} is unknown; choose from {algorithms(op)}")
    if algo != "direct" and not _probe(algo, op):
        why = "no BLAS is loaded or its kernels are not built" if algo == "im2col" else \
            "its kernels are not implemented in this build"
        raise ValueError(f"algo={algo!r} is not available for {op}: {why}; "
                         f"available: {algorithms(op)}")
    return algo


def _call(algo, fn, *args):
    """Call a kernel; re-word the kernel's "cannot serve" to name the algorithm.

    The GEMM-based algorithms call the BLAS from fastconv's own OpenMP
    threads, so the BLAS is held to one thread during the call (no
    oversubscription; fastconv's thread count governs).
    """
    try:
        if algo == "direct":
            return fn(*args)
        with _blas_threads.single_threaded():
            return fn(*args)
    except ValueError as e:
        if "cannot serve" in str(e):
            raise ValueError(f"algo={algo!r} cannot serve this configuration ({e})") from None
        raise


# ---------------------------------------------------------------- validation

def _peek(a, name, dtype=None, ndim=None):
    """Type, dtype and rank checks without copying (sizes are checked first)."""
    if a is None:
        raise TypeError(f"{name} must be an array, got None")
    if not isinstance(a, np.ndarray):
        if not (hasattr(a, "__array__") or isinstance(a, (list, tuple))):
            raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
        try:
            a = np.asarray(a)
        except Exception as e:
            raise TypeError(f"{name} could not be converted to an array: {e}") from None
    if a.dtype not in _args.SUPPORTED_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype} but the other inputs are {np.dtype(dtype)}")
    if ndim is not None and a.ndim != ndim:
        what = "(NCHW)" if ndim == 4 else ""
        raise ValueError(f"{name} must be {ndim}-D {what}, got shape {a.shape}".replace("  ", " "))
    return a


def _check_bytes(shape, itemsize, name):
    """ValueError when an array of `shape` could not be addressed in int64 bytes."""
    total = itemsize
    for d in shape:
        total *= int(d)
    if total > _INT64_MAX:
        raise ValueError(f"{name} of shape {tuple(shape)} is too large: {total} bytes "
                         "overflows 64-bit size arithmetic")


def _padding(padding, kernel, dilation, stride):
    """((top, bottom), (left, right)) and the normalised form for the cost model."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0)), "valid"
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding='same' needs stride=1 (as PyTorch), got stride={stride}")
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))  # the extra one bottom/right
            return tuple(pads), "same"
        raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    ph, pw = _args.pair(padding, "padding", 0)
    return ((ph, ph), (pw, pw)), (ph, pw)


def _out_size(size, k, s, pads, d, axis):
    span = d * (k - 1) + 1
    padded = size + pads[0] + pads[1]
    if padded < span:
        raise ValueError(f"kernel {axis} {k} with dilation {d} spans {span}, more than the padded "
                         f"input {axis} {padded} (input {size} + padding {pads[0]}+{pads[1]}): "
                         "the output would be empty")
    return (padded - span) // s + 1


class _Conv:
    """Normalised geometry of one forward convolution."""

    def __init__(self, x_shape, w_shape, stride, padding, dilation, groups, x_name="x", w_name="w"):
        n, c_in, h, wd = x_shape
        c_out, cg, kh, kw = w_shape
        self.stride = _args.pair(stride, "stride", 1)
        self.dilation = _args.pair(dilation, "dilation", 1)
        self.groups = _args.as_int(groups, "groups", 1)
        if kh < 1 or kw < 1:
            raise ValueError(f"{w_name}: kernel size must be >= 1, got {kh}x{kw} (shape {tuple(w_shape)})")
        if c_in % self.groups:
            raise ValueError(f"{x_name} has {c_in} channels, not divisible by groups={self.groups}")
        if c_out % self.groups:
            raise ValueError(f"{w_name} has {c_out} output channels, not divisible by groups={self.groups}")
        if cg * self.groups != c_in:
            raise ValueError(f"{w_name} has shape {tuple(w_shape)}: expected C_in/groups = "
                             f"{c_in}/{self.groups} = {c_in // self.groups} in dim 1, got {cg}")
        self.pads, self.padding = _padding(padding, (kh, kw), self.dilation, self.stride)
        ho = _out_size(h, kh, self.stride[0], self.pads[0], self.dilation[0], "height")
        wo = _out_size(wd, kw, self.stride[1], self.pads[1], self.dilation[1], "width")
        self.x_shape = tuple(int(v) for v in x_shape)
        self.w_shape = tuple(int(v) for v in w_shape)
        self.y_shape = (int(n), int(c_out), int(ho), int(wo))

    def check_sizes(self, itemsize):
        _check_bytes(self.x_shape, itemsize, "input")
        _check_bytes(self.w_shape, itemsize, "weight")
        _check_bytes(self.y_shape, itemsize, "output")

    def tuple(self):
        """The C shape tuple (top/left padding; C clips taps past the bottom/right)."""
        n, c_in, h, wd = self.x_shape
        c_out, _, kh, kw = self.w_shape
        _, _, ho, wo = self.y_shape
        return (n, c_in, h, wd, c_out, kh, kw, ho, wo, self.stride[0], self.stride[1],
                self.pads[0][0], self.pads[1][0], self.dilation[0], self.dilation[1], self.groups)


def _no_overlap(out, name, *inputs):
    if _args.may_share(out, *inputs):
        raise ValueError(f"{name} overlaps an input array; pass a separate buffer")


def _bias(bias, c_out, dtype, name="bias"):
    if bias is None:
        return None
    b = _args.as_array(bias, name, ndim=1, dtype=dtype)
    if b.shape != (c_out,):
        raise ValueError(f"{name} must have shape ({c_out},) (one per output channel), got {b.shape}")
    return b


# ---------------------------------------------------------------- conv2d

def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algo="auto", out=None):
    """2-D convolution (cross-correlation) as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W), float32 or float64
        Input; any strides (non-contiguous input is copied, never modified).
    w : ndarray, shape (C_out, C_in/groups, kH, kW), same dtype
    bias : ndarray, shape (C_out,), optional
    stride, dilation : int or pair of int, >= 1
    padding : int, pair of int, ``"same"`` or ``"valid"``
        ``"same"`` (stride 1 only) pads ``dilation*(k-1)`` in total per axis,
        the odd one at the bottom/right, as PyTorch.
    groups : int, >= 1, dividing C_in and C_out
    algo : str
        ``"auto"`` or a name from ``algorithms("conv2d")``.
    out : ndarray, optional
        C-contiguous, writable, of the output shape and dtype, not
        overlapping the inputs; filled and returned.

    Returns
    -------
    ndarray, shape (N, C_out, H_out, W_out)
        ``H_out = (H + pad_top + pad_bottom - dilation*(kH-1) - 1) // stride + 1``.

    Raises
    ------
    TypeError
        Non-float or mixed dtypes, non-array inputs.
    ValueError
        Bad ranks, channel/group mismatch, sizes < 1, negative padding, a
        kernel larger than the padded input, a bad ``out``, an unknown or
        unavailable ``algo``.
    """
    xr = _peek(x, "x", ndim=4)
    dtype = xr.dtype
    wr = _peek(w, "w", dtype=dtype, ndim=4)
    geo = _Conv(xr.shape, wr.shape, stride, padding, dilation, groups)
    geo.check_sizes(dtype.itemsize)
    algo_used = resolve_algo(algo, "conv2d", geo.tuple(), dtype)
    b = _bias(bias, geo.y_shape[1], dtype)
    if out is not None:
        y = _args.check_out(out, geo.y_shape, dtype)
        _no_overlap(y, "out", x, w, bias)
    else:
        y = np.empty(geo.y_shape, dtype)
    xc = _args.as_array(xr, "x")
    wc = _args.as_array(wr, "w")
    t0 = time.perf_counter() if _profile._active else 0.0
    ws = _call(algo_used, _kernels.conv2d, _args.flat(xc), _args.flat(wc),
               None if b is None else _args.flat(b), _args.flat(y), geo.tuple(),
               _ALGO_CODES[algo_used])
    if _profile._active:
        _profile._record("conv2d", algo_used, dict(
            input_shape=geo.x_shape, weight_shape=geo.w_shape, stride=geo.stride,
            padding=geo.padding, dilation=geo.dilation, groups=geo.groups, bias=b is not None,
            dtype=str(dtype), algo=algo_used), time.perf_counter() - t0, ws)
    return y


# ---------------------------------------------------------------- backward

def _needs(needs):
    if isinstance(needs, str):
        needs = (needs,)
    try:
        items = tuple(needs)
    except TypeError:
        raise TypeError(f"needs must be a sequence of {_NEEDS}, got {needs!r}") from None
    for item in items:
        if not isinstance(item, str) or item not in _NEEDS:
            raise ValueError(f"needs entries must be among {_NEEDS}, got {item!r} in {needs!r}")
    return tuple(n for n in _NEEDS if n in items)


def conv2d_backward(grad_out, x, w, stride=1, padding=0, dilation=1, groups=1, *,
                    needs=("input", "weight", "bias"), algo="auto"):
    """Gradients of :func:`conv2d` with respect to its input, weight and bias.

    Parameters
    ----------
    grad_out : ndarray, shape (N, C_out, H_out, W_out)
        Gradient of the loss with respect to conv2d's output; must have
        exactly the output shape conv2d gives for ``x``, ``w`` and the
        geometry arguments.
    x, w, stride, padding, dilation, groups
        As for :func:`conv2d` (the forward call's arguments).
    needs : sequence of str
        Any of ``"input"``, ``"weight"``, ``"bias"``.
    algo : str
        ``"auto"`` or a name from ``algorithms("conv2d_backward")``.

    Returns
    -------
    (grad_x, grad_w, grad_b)
        Shapes of x, w and (C_out,); None for each gradient not in ``needs``.
        Sums over an empty batch are zeros.
    """
    xr = _peek(x, "x", ndim=4)
    dtype = xr.dtype
    wr = _peek(w, "w", dtype=dtype, ndim=4)
    gr = _peek(grad_out, "grad_out", dtype=dtype, ndim=4)
    geo = _Conv(xr.shape, wr.shape, stride, padding, dilation, groups)
    geo.check_sizes(dtype.itemsize)
    if gr.shape != geo.y_shape:
        raise ValueError(f"grad_out has shape {gr.shape}, but conv2d of x {geo.x_shape} with w "
                         f"{geo.w_shape} gives {geo.y_shape}")
    want = _needs(needs)
    algo_used = resolve_algo(algo, "conv2d_backward", geo.tuple(), dtype, want)
    code = _ALGO_CODES[algo_used]
    shape = geo.tuple()
    t0 = time.perf_counter() if _profile._active else 0.0
    gy = _args.flat(_args.as_array(gr, "grad_out"))
    gx = gw = gb = None
    ws = 0
    if "input" in want:
        gx = np.empty(geo.x_shape, dtype)
        ws += _call(algo_used, _kernels.conv2d_grad_input, gy, _args.flat(_args.as_array(wr, "w")),
                    _args.flat(gx), shape, code)
    if "weight" in want:
        gw = np.empty(geo.w_shape, dtype)
        ws += _call(algo_used, _kernels.conv2d_grad_weight, gy, _args.flat(_args.as_array(xr, "x")),
                    _args.flat(gw), shape, code)
    if "bias" in want:
        gb = np.empty(geo.y_shape[1], dtype)
        ws += _kernels.conv2d_grad_bias(gy, gb, shape)
    if _profile._active:
        _profile._record("conv2d_backward", algo_used, dict(
            input_shape=geo.x_shape, weight_shape=geo.w_shape, stride=geo.stride,
            padding=geo.padding, dilation=geo.dilation, groups=geo.groups, bias="bias" in want,
            dtype=str(dtype), algo=algo_used, needs=want), time.perf_counter() - t0, ws)
    return gx, gw, gb


# ---------------------------------------------------------------- transposed

def conv_transpose2d(x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     *, algo="auto"):
    """Transposed 2-D convolution as ``torch.nn.functional.conv_transpose2d``.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W), float32 or float64
    w : ndarray, shape (C_in, C_out/groups, kH, kW), same dtype
    bias : ndarray, shape (C_out,), optional
    stride, dilation : int or pair of int, >= 1
    padding : int or pair of int, >= 0
    output_padding : int or pair of int
        Extra rows/columns at the bottom/right; each must be smaller than
        the stride or the dilation of its axis (PyTorch's rule).
    groups : int
    algo : str
        ``"auto"`` or a name from ``algorithms("conv_transpose2d")``.

    Returns
    -------
    ndarray, shape (N, C_out, H_out, W_out)
        ``H_out = (H-1)*stride - 2*padding + dilation*(kH-1) + output_padding + 1``.
        Computed as the input gradient of the convolution whose input has
        this shape.
    """
    xr = _peek(x, "x", ndim=4)
    dtype = xr.dtype
    wr = _peek(w, "w", dtype=dtype, ndim=4)
    n, c_in, h, wd = xr.shape
    ci_w, og, kh, kw = wr.shape
    st = _args.pair(stride, "stride", 1)
    dil = _args.pair(dilation, "dilation", 1)
    pad = _args.pair(padding, "padding", 0)
    opad = _args.pair(output_padding, "output_padding", 0)
    g = _args.as_int(groups, "groups", 1)
    if ci_w != c_in:
        raise ValueError(f"w has shape {tuple(wr.shape)}: dim 0 must equal the {c_in} input "
                         f"channels of x (weight layout is (C_in, C_out/groups, kH, kW)), got {ci_w}")
    if c_in % g:
        raise ValueError(f"x has {c_in} channels, not divisible by groups={g}")
    if kh < 1 or kw < 1:
        raise ValueError(f"w: kernel size must be >= 1, got {kh}x{kw} (shape {tuple(wr.shape)})")
    for ax in range(2):
        if not (opad[ax] < st[ax] or opad[ax] < dil[ax]):
            raise ValueError(f"output_padding={opad} must be smaller than either stride={st} or "
                             f"dilation={dil} in each dimension")
    sizes = []
    for size, k, s_, p, d, op, axis in ((h, kh, st[0], pad[0], dil[0], opad[0], "height"),
                                        (wd, kw, st[1], pad[1], dil[1], opad[1], "width")):
        o = (size - 1) * s_ - 2 * p + d * (k - 1) + op + 1
        if o < 1 and size > 0:
            raise ValueError(f"output {axis} would be {o} (< 1): padding={pad} is too large for "
                             f"input {axis} {size}, kernel {k}, stride {s_}, dilation {d}")
        sizes.append(max(o, 0))
    c_out = og * g
    y_shape = (n, c_out, sizes[0], sizes[1])
    _check_bytes(xr.shape, dtype.itemsize, "input")
    _check_bytes(wr.shape, dtype.itemsize, "weight")
    _check_bytes(y_shape, dtype.itemsize, "output")
    # The convolution whose input is y: its output is x and its weight w.
    shape = (n, c_out, y_shape[2], y_shape[3], c_in, kh, kw, h, wd, st[0], st[1], pad[0], pad[1],
             dil[0], dil[1], g)
    algo_used = resolve_algo(algo, "conv_transpose2d", shape, dtype)
    b = _bias(bias, c_out, dtype)
    y = np.empty(y_shape, dtype)
    t0 = time.perf_counter() if _profile._active else 0.0
    ws = _call(algo_used, _kernels.conv2d_grad_input, _args.flat(_args.as_array(xr, "x")),
               _args.flat(_args.as_array(wr, "w")), _args.flat(y), shape, _ALGO_CODES[algo_used])
    if b is not None:
        _kernels.add_channel_bias(_args.flat(y), b, n, c_out, y_shape[2] * y_shape[3])
    if _profile._active:
        _profile._record("conv_transpose2d", algo_used, dict(
            input_shape=tuple(xr.shape), weight_shape=tuple(wr.shape), stride=st, padding=pad,
            output_padding=opad, groups=g, dilation=dil, bias=b is not None, dtype=str(dtype),
            algo=algo_used), time.perf_counter() - t0, ws)
    return y


# ---------------------------------------------------------------- compose

def compose(w1, w2):
    """One kernel equal to applying two convolutions in sequence.

    ``conv2d(x, compose(w1, w2)) == conv2d(conv2d(x, w1), w2)`` for stride 1,
    no padding, no bias, groups 1 (up to rounding).  Cross-correlations
    compose by a full convolution of their kernels over the taps:
    ``W[p, q, a, b] = sum_{c, i+k=a, j+l=b} w2[p, c, i, j] * w1[c, q, k, l]``.

    Parameters
    ----------
    w1 : ndarray, shape (C1, C0, k1h, k1w)
        The first convolution's weight.
    w2 : ndarray, shape (C2, C1, k2h, k2w), same dtype
        The second convolution's weight.

    Returns
    -------
    ndarray, shape (C2, C0, k1h + k2h - 1, k1w + k2w - 1)
    """
    a = _peek(w1, "w1", ndim=4)
    b = _peek(w2, "w2", dtype=a.dtype, ndim=4)
    c1, c0, k1h, k1w = a.shape
    c2, c1b, k2h, k2w = b.shape
    if c1b != c1:
        raise ValueError(f"w2 has shape {b.shape}: its dim 1 (input channels) must equal w1's "
                         f"{c1} output channels, got {c1b}")
    if min(k1h, k1w) < 1:
        raise ValueError(f"w1: kernel size must be >= 1, got {k1h}x{k1w}")
    if min(k2h, k2w) < 1:
        raise ValueError(f"w2: kernel size must be >= 1, got {k2h}x{k2w}")
    shape = (c2, c0, k1h + k2h - 1, k1w + k2w - 1)
    _check_bytes(shape, a.dtype.itemsize, "composed kernel")
    out = np.zeros(shape, a.dtype)
    if out.size == 0 or c1 == 0:
        # nothing to sum: return before looping over (possibly ~2**31) taps
        return out
    # loop over the taps of the smaller kernel, a whole-array product per tap
    if k2h * k2w <= k1h * k1w:
        for i in range(k2h):
            for j in range(k2w):
                out[:, :, i:i + k1h, j:j + k1w] += np.tensordot(b[:, :, i, j], a, axes=(1, 0))
    else:
        for k in range(k1h):
            for l in range(k1w):
                part = np.tensordot(b, a[:, :, k, l], axes=(1, 0))   # (C2, k2h, k2w, C0)
                out[:, :, k:k + k2h, l:l + k2w] += part.transpose(0, 3, 1, 2)
    return out
