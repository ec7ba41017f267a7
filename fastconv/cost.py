"""Theoretical cost of every fastconv operation, in exact integer counts.

Pure Python: nothing here imports the compiled kernels (the workspace of the
chosen algorithm comes from ``fastconv._workspace``, also pure Python).  All
counts are exact integers computed in closed form from the shapes; the test
suite checks them against instrumented loops that count the operations they
really perform.

Conventions
-----------
"Dense" counts (``mults``, ``adds``, ``comparisons``) count every kernel tap,
including taps that land on padding (what every FLOP counter does).  The
``effective_*`` counts leave out taps on padding (and, for pooling in
ceil_mode, taps past the padded input): only terms that involve a real input
element are counted.

A sum of ``t`` terms costs ``t - 1`` additions; a sum with no terms is an
assignment (of zero, of the bias, or of -inf for max pooling) and costs
nothing.  So:

* conv2d forward: each output sums ``(C_in/groups)*kH*kW`` products
  (``that many`` mults, ``that minus 1`` adds) plus one add for the bias.
  Effective: an output whose window has ``v`` real taps costs ``v`` mults and
  ``v - 1`` adds (+1 with bias); with ``v == 0`` it costs 0 mults and 0 adds
  (it is the bias, or zero, by assignment).
* conv2d backward, grad_input: each element of grad_input is the exact sum of
  its ``t`` products ``grad_out * weight`` (``t`` mults, ``t - 1`` adds).
  Dense: over every element of the *padded* input (so the mults equal the
  forward dense mults); effective: real input elements only, products with
  real taps only.
* grad_weight: each weight element sums ``N*H_out*W_out`` products (dense;
  padding taps contribute products of zeros) -- that many mults and one fewer
  adds; effective: only products with a real input element.
* grad_bias: each channel sums ``N*H_out*W_out`` values: that minus 1 adds.
* conv_transpose2d counts over the *input* positions (fvcore /
  FlopCounterMode): ``mults = N*C_in*H_in*W_in*(C_out/groups)*kH*kW``, every
  product scattered into the full, uncropped output.  Each element of that
  full output that receives ``t >= 1`` products costs ``t - 1`` adds, and each
  (cropped) output that received at least one product costs one more add for
  the bias.  Effective: only products landing inside the cropped output.
  (This is exactly grad_input of the matching conv2d, plus the bias.)
* max pooling: ``window - 1`` comparisons per output (``c.comparisons``,
  counted in ``c.flops``); dense window ``kH*kW``, effective window the
  in-bounds taps (0 taps: -inf by assignment, 0 comparisons).
* avg pooling: ``window - 1`` adds and one multiplication (by the reciprocal
  of the divisor) per output; dense window ``kH*kW``, effective window the
  in-bounds taps.  The divisor itself is index arithmetic, not counted.
* max pooling backward: one addition per output (``grad_out`` scattered into
  a zero-initialised grad_input at the argmax); effective: outputs whose
  window has a real element.  Locating the argmax (stored indices or a
  re-run of the forward) is not counted.  (The exact-sum count would depend
  on the data; this is its upper bound.)
* avg pooling backward: one multiplication per output (``grad_out/divisor``)
  and, like grad_input, every grad_input element is the exact sum of the
  ``t`` scaled gradients that reach it: ``t - 1`` adds.  Dense: over every
  position any window tap touches (padding and ceil_mode overhang included);
  effective: real input elements only.

``macs == mults``; ``flops == mults + adds + comparisons``.
``bytes`` holds the size of each buffer in the dtype: ``input``, ``weight``,
``bias``, ``output`` and ``workspace`` (the extra bytes the algorithm
allocates, from ``fastconv._workspace``); ``footprint`` is their sum and
``intensity`` is ``flops`` per byte of input+weight+bias+output (the bytes
that must cross memory at least once).  For backward passes the keys name
the tensor's role in the forward pass (``input`` = grad_input written plus
the input read, ``output`` = grad_output read, ...), each distinct buffer
counted once.
"""
from dataclasses import dataclass, field
from collections import namedtuple

import numpy as np

from . import _args
from . import _workspace

__all__ = ["Cost", "conv2d", "conv2d_backward", "conv_transpose2d", "max_pool2d",
           "avg_pool2d", "max_pool2d_backward", "avg_pool2d_backward", "receptive_field",
           "ReceptiveField"]

_BYTE_KEYS = ("input", "weight", "bias", "output", "workspace")


@dataclass(frozen=True, repr=False)
class Cost:
    """Theoretical cost of one call.  See the module docstring for conventions.

    Attributes
    ----------
    op : str
        Name of the operation (``"conv2d"``, ``"max_pool2d_backward"``, ...).
    output_shape : tuple
        Shape of what the call produces; for ``conv2d_backward`` a tuple
        ``(grad_input_shape, grad_weight_shape, grad_bias_shape)`` with
        ``None`` for parts not needed.
    params : int
        Weight elements + bias elements.
    mults, adds, comparisons : int
        Dense counts (padding taps included).
    effective_mults, effective_adds, effective_comparisons : int
        Counts with padding taps excluded.
    bytes : dict
        ``{"input", "weight", "bias", "output", "workspace"}`` in bytes.
    dtype : str
    algo : str or None
    parts : dict
        For ``conv2d_backward``: ``{"input": Cost, "weight": Cost, "bias": Cost}``
        for the parts needed; empty otherwise.
    """
    op: str
    output_shape: tuple
    params: int
    mults: int
    adds: int
    comparisons: int
    effective_mults: int
    effective_adds: int
    effective_comparisons: int
    bytes: dict
    dtype: str
    algo: object = None
    parts: dict = field(default_factory=dict)

    @property
    def macs(self):
        """Multiply-accumulates, equal to ``mults``."""
        return self.mults

    @property
    def flops(self):
        """``mults + adds + comparisons``."""
        return self.mults + self.adds + self.comparisons

    @property
    def effective_flops(self):
        return self.effective_mults + self.effective_adds + self.effective_comparisons

    @property
    def workspace(self):
        """Bytes of workspace the algorithm allocates."""
        return self.bytes["workspace"]

    @property
    def footprint(self):
        """Sum of all buffers in bytes, workspace included."""
        return sum(self.bytes.values())

    @property
    def intensity(self):
        """``flops`` per byte of input+weight+bias+output (0.0 when no bytes)."""
        moved = sum(self.bytes[k] for k in ("input", "weight", "bias", "output"))
        return self.flops / moved if moved else 0.0

    def as_dict(self):
        """Plain dict of every field and derived quantity (JSON-friendly)."""
        d = {
            "op": self.op, "algo": self.algo, "dtype": self.dtype,
            "output_shape": self.output_shape, "params": self.params,
            "mults": self.mults, "adds": self.adds, "comparisons": self.comparisons,
            "macs": self.macs, "flops": self.flops,
            "effective_mults": self.effective_mults, "effective_adds": self.effective_adds,
            "effective_comparisons": self.effective_comparisons,
            "effective_flops": self.effective_flops,
            "bytes": dict(self.bytes), "footprint": self.footprint,
            "intensity": self.intensity, "workspace": self.workspace,
        }
        if self.parts:
            d["parts"] = {k: v.as_dict() for k, v in self.parts.items()}
        return d

    def __repr__(self):
        items = [f"op={self.op!r}"]
        if self.algo is not None:
            items.append(f"algo={self.algo!r}")
        items += [f"output_shape={self.output_shape}", f"params={self.params:,}",
                  f"mults={self.mults:,}", f"adds={self.adds:,}"]
        if self.comparisons or self.effective_comparisons:
            items.append(f"comparisons={self.comparisons:,}")
        items += [f"flops={self.flops:,}", f"footprint={self.footprint:,} B",
                  f"intensity={self.intensity:.3g}", f"dtype={self.dtype!r}"]
        if self.parts:
            items.append(f"parts={list(self.parts)}")
        return "Cost(" + ", ".join(items) + ")"


# ---------------------------------------------------------------- per-axis geometry

@dataclass(frozen=True)
class _Axis:
    """Exact tap statistics along one spatial axis.

    `windows` windows of `taps` taps; tap k of window o reads position
    ``o*stride + k*dilation - pad_lo``; real positions are ``[0, length)``.
    """
    windows: int       # O
    taps: int          # K
    valid: int         # (window, tap) pairs on a real position
    windows_hit: int   # windows with at least one real tap
    taps_hit: int      # taps that are real for at least one window
    hit: int           # distinct positions (anywhere) touched by some pair
    real_hit: int      # distinct real positions touched by some pair

    @property
    def pairs(self):
        return self.windows * self.taps


def _union_len(intervals):
    """Number of integers covered by closed intervals [a, b]."""
    total, cur_a, cur_b = 0, None, None
    for a, b in sorted(intervals):
        if cur_b is None or a > cur_b + 1:
            if cur_b is not None:
                total += cur_b - cur_a + 1
            cur_a, cur_b = a, b
        elif b > cur_b:
            cur_b = b
    if cur_b is not None:
        total += cur_b - cur_a + 1
    return total


def _axis(windows, taps, stride, dilation, pad_lo, length):
    """Closed-form `_Axis` in O(taps log taps), independent of the sizes."""
    valid = taps_hit = 0
    window_ivs = []
    by_residue = {}
    for k in range(taps):
        base = k * dilation - pad_lo
        # windows o with 0 <= o*stride + base <= length-1
        lo = max(0, -(base // stride))          # ceil(-base / stride)
        hi = min(windows - 1, (length - 1 - base) // stride)
        if hi >= lo:
            valid += hi - lo + 1
            taps_hit += 1
            window_ivs.append((lo, hi))
        # positions base + stride*o lie in the residue class base mod stride:
        # in units of stride they form the interval [q0, q0 + windows - 1]
        r = base % stride
        by_residue.setdefault(r, []).append((base - r) // stride)
    hit = real_hit = 0
    for r, q0s in by_residue.items():
        ivs = [(q, q + windows - 1) for q in q0s]
        hit += _union_len(ivs)
        qmax = (length - 1 - r) // stride     # r + stride*q <= length-1;  q >= 0 <=> position >= 0
        real_hit += _union_len([(max(a, 0), min(b, qmax)) for a, b in ivs if min(b, qmax) >= max(a, 0)])
    return _Axis(windows, taps, valid, _union_len(window_ivs), taps_hit, hit, real_hit)


# ---------------------------------------------------------------- argument checks

def _shape(value, name, ranks=(4,)):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TypeError(f"{name} must be a tuple of ints, got {value!r}")
    value = tuple(value)
    if len(value) not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ValueError(f"{name} must have {want} dimensions, got {value!r}")
    return tuple(_args.as_int(v, name, minimum=0) for v in value)


def _itemsize(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a NumPy floating dtype, got {dtype!r}") from None
    if dt.kind != "f":
        raise TypeError(f"dtype must be a floating dtype (float32 or float64), got {dt}")
    return dt.name, dt.itemsize


def _flag(value, name):
    if isinstance(value, (bool, np.bool_)) or (_args._is_int(value) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{name} must be a bool, got {value!r}")


def _input4(input_shape):
    """(N, C, H, W) and whether the caller gave an unbatched CHW shape."""
    shape = _shape(input_shape, "input_shape", ranks=(3, 4))
    unbatched = len(shape) == 3
    if unbatched:
        shape = (1,) + shape
    if shape[2] < 1 or shape[3] < 1:
        raise ValueError(f"input_shape={tuple(input_shape)!r}: height and width must be >= 1 "
                         "(only the batch and channel dimensions may be empty)")
    return shape, unbatched


def _out_shape(shape4, unbatched):
    return shape4[1:] if unbatched else shape4


@dataclass(frozen=True)
class _ConvGeom:
    n: int
    c_in: int
    h: int
    w: int
    c_out: int
    kh: int
    kw: int
    stride: tuple
    pad: tuple          # (top, bottom, left, right)
    dilation: tuple
    groups: int
    h_out: int
    w_out: int
    unbatched: bool

    def axes(self):
        return (_axis(self.h_out, self.kh, self.stride[0], self.dilation[0], self.pad[0], self.h),
                _axis(self.w_out, self.kw, self.stride[1], self.dilation[1], self.pad[2], self.w))


def _conv_geom(input_shape, weight_shape, stride, padding, dilation, groups):
    (n, c_in, h, w), unbatched = _input4(input_shape)
    c_out, cpg, kh, kw = _shape(weight_shape, "weight_shape")
    if kh < 1 or kw < 1:
        raise ValueError(f"weight_shape={tuple(weight_shape)!r}: kernel size must be >= 1")
    groups = _args.as_int(groups, "groups", minimum=1)
    stride = _args.pair(stride, "stride", minimum=1)
    dilation = _args.pair(dilation, "dilation", minimum=1)
    if cpg * groups != c_in:
        raise ValueError(f"input_shape has {c_in} channels but weight_shape={tuple(weight_shape)!r} "
                         f"with groups={groups} expects {cpg * groups}")
    if c_out % groups:
        raise ValueError(f"weight_shape={tuple(weight_shape)!r}: {c_out} output channels are not "
                         f"divisible by groups={groups}")
    span = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    if isinstance(padding, str):
        if padding == "valid":
            pad = (0, 0, 0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding='same' is not supported for strided convolutions "
                                 f"(stride={stride})")
            # as PyTorch: total dilation*(k-1), the odd one on the bottom/right
            th, tw = span[0] - 1, span[1] - 1
            pad = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        else:
            raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    else:
        ph, pw = _args.pair(padding, "padding", minimum=0)
        pad = (ph, ph, pw, pw)
    hp, wp = h + pad[0] + pad[1], w + pad[2] + pad[3]
    if hp < span[0] or wp < span[1]:
        raise ValueError(f"weight_shape={tuple(weight_shape)!r} with dilation={dilation}: dilated "
                         f"kernel {span[0]}x{span[1]} is larger than the padded input {hp}x{wp}")
    h_out = (hp - span[0]) // stride[0] + 1
    w_out = (wp - span[1]) // stride[1] + 1
    return _ConvGeom(n, c_in, h, w, c_out, kh, kw, stride, pad, dilation, groups, h_out, w_out,
                     unbatched)


def _workspace_bytes(algo, pass_, in4, w4, out4, g, itemsize):
    if not isinstance(algo, str):
        raise TypeError(f"algo must be a string, got {algo!r}")
    return _workspace.conv2d(algo, pass_, in4, w4, out4, g.stride, (g.pad[0], g.pad[2]),
                             g.dilation, g.groups, itemsize)


def _sum_adds(terms, sums):
    """Adds to form `sums` non-empty sums from `terms` terms in total."""
    return terms - sums


# ---------------------------------------------------------------- convolution

def conv2d(input_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1, bias=False,
           dtype="float32", algo="direct"):
    """Cost of ``fastconv.conv2d``.

    Parameters
    ----------
    input_shape : tuple of int
        ``(N, C_in, H, W)`` (or unbatched ``(C_in, H, W)``).
    weight_shape : tuple of int
        ``(C_out, C_in/groups, kH, kW)``.
    stride, dilation : int or pair
    padding : int, pair, ``"same"`` or ``"valid"``
        ``"same"`` (stride 1 only) pads ``dilation*(k-1)`` in total, the odd
        one on the bottom/right, as PyTorch.
    groups : int
    bias : bool
    dtype : str or numpy dtype
    algo : str
        Algorithm whose workspace is reported (``"direct"`` has none).

    Returns
    -------
    Cost
        Per output element ``(C_in/groups)*kH*kW`` mults and that minus 1
        adds, +1 add with bias; padding taps counted.  ``effective_*``: an
        output with ``v`` real taps costs ``v`` mults and ``v - 1`` adds (+1
        with bias); ``v == 0`` costs nothing (bias or zero by assignment).
    """
    g = _conv_geom(input_shape, weight_shape, stride, padding, dilation, groups)
    bias = _flag(bias, "bias")
    dtype, isz = _itemsize(dtype)
    ah, aw = g.axes()
    cpg = g.c_in // g.groups
    outputs = g.n * g.c_out * g.h_out * g.w_out
    taps = cpg * g.kh * g.kw
    b = int(bias)
    mults = outputs * taps
    adds = _sum_adds(mults + b * outputs, outputs if (bias or taps) else 0)
    eff_mults = g.n * g.c_out * cpg * ah.valid * aw.valid
    eff_sums = outputs if bias else (g.n * g.c_out * ah.windows_hit * aw.windows_hit if cpg else 0)
    eff_adds = _sum_adds(eff_mults + b * outputs, eff_sums)
    in4 = (g.n, g.c_in, g.h, g.w)
    w4 = (g.c_out, cpg, g.kh, g.kw)
    out4 = (g.n, g.c_out, g.h_out, g.w_out)
    nbytes = {"input": _prod(in4) * isz, "weight": _prod(w4) * isz,
              "bias": g.c_out * isz * b, "output": outputs * isz,
              "workspace": _workspace_bytes(algo, "forward", in4, w4, out4, g, isz)}
    return Cost("conv2d", _out_shape(out4, g.unbatched), _prod(w4) + b * g.c_out, mults, adds, 0,
                eff_mults, eff_adds, 0, nbytes, dtype, algo)


def _prod(shape):
    p = 1
    for v in shape:
        p *= v
    return p


_NEEDS = ("input", "weight", "bias")


def _needs(needs):
    if isinstance(needs, str):
        needs = (needs,)
    try:
        needs = tuple(needs)
    except TypeError:
        raise TypeError(f"needs must be a sequence of 'input', 'weight', 'bias', got {needs!r}") from None
    for item in needs:
        if item not in _NEEDS:
            raise ValueError(f"needs must contain only 'input', 'weight', 'bias', got {needs!r}")
    return tuple(k for k in _NEEDS if k in needs)


def conv2d_backward(input_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1,
                    bias=False, dtype="float32", algo="direct", needs=("input", "weight", "bias")):
    """Cost of ``fastconv.conv2d_backward`` (arguments as `conv2d`, shapes of the forward pass).

    Parameters
    ----------
    needs : sequence of {"input", "weight", "bias"}
        Gradients computed; each becomes an entry of ``.parts``.
    bias : bool
        Whether the layer has a bias (counted in ``params``; a ``"bias"``
        in `needs` implies one).

    Returns
    -------
    Cost
        Totals summed over ``.parts``.  Conventions, for ``E = N*H_out*W_out``:

        * ``parts["input"]``: every grad_input element is the exact sum of the
          ``t`` products ``grad_out*weight`` that reach it: ``t`` mults,
          ``t - 1`` adds.  Dense: over the padded input (mults equal the
          forward's); effective: real input elements and real taps only.
        * ``parts["weight"]``: every weight element sums ``E`` products:
          ``E`` mults, ``E - 1`` adds; effective: only products with a real
          input element (``v`` of them: ``v`` mults, ``v - 1`` adds).
        * ``parts["bias"]``: each of ``C_out`` channels sums ``E`` values:
          ``E - 1`` adds.

        ``output_shape`` is ``(grad_input, grad_weight, grad_bias)`` shapes,
        ``None`` where not needed.  Bytes: ``output`` = grad_output read;
        ``input`` = grad_input written (if needed) + input read (if the
        weight gradient is needed); ``weight`` = weight read (input part) +
        grad_weight written; ``bias`` = grad_bias written; ``workspace`` the
        sum over the passes.
    """
    g = _conv_geom(input_shape, weight_shape, stride, padding, dilation, groups)
    bias = _flag(bias, "bias")
    needs = _needs(needs)
    dtype, isz = _itemsize(dtype)
    ah, aw = g.axes()
    cpg = g.c_in // g.groups
    cog = g.c_out // g.groups
    in4 = (g.n, g.c_in, g.h, g.w)
    w4 = (g.c_out, cpg, g.kh, g.kw)
    out4 = (g.n, g.c_out, g.h_out, g.w_out)
    in_b, w_b, out_b, b_b = _prod(in4) * isz, _prod(w4) * isz, _prod(out4) * isz, g.c_out * isz
    has_bias = bias or "bias" in needs
    params = _prod(w4) + g.c_out * has_bias
    per_chan = g.n * g.h_out * g.w_out
    zero = dict.fromkeys(_BYTE_KEYS, 0)
    parts = {}
    if "input" in needs:
        # per (n, c_in): a padded-input element hit by th*tw (row, col) pairs gets cog*th*tw terms
        mults = g.n * g.c_in * cog * ah.pairs * aw.pairs
        adds = _sum_adds(mults, g.n * g.c_in * ah.hit * aw.hit if cog else 0)
        eff_mults = g.n * g.c_in * cog * ah.valid * aw.valid
        eff_adds = _sum_adds(eff_mults, g.n * g.c_in * ah.real_hit * aw.real_hit if cog else 0)
        ws = _workspace_bytes(algo, "input", in4, w4, out4, g, isz)
        parts["input"] = Cost("conv2d_backward_input", _out_shape(in4, g.unbatched), params, mults,
                              adds, 0, eff_mults, eff_adds, 0,
                              dict(zero, input=in_b, weight=w_b, output=out_b, workspace=ws),
                              dtype, algo)
    if "weight" in needs:
        welems = _prod(w4)
        mults = welems * per_chan
        adds = _sum_adds(mults, welems if per_chan else 0)
        eff_mults = g.c_out * cpg * g.n * ah.valid * aw.valid
        eff_adds = _sum_adds(eff_mults, g.c_out * cpg * ah.taps_hit * aw.taps_hit if g.n else 0)
        ws = _workspace_bytes(algo, "weight", in4, w4, out4, g, isz)
        parts["weight"] = Cost("conv2d_backward_weight", w4, params, mults, adds, 0, eff_mults,
                               eff_adds, 0,
                               dict(zero, input=in_b, weight=w_b, output=out_b, workspace=ws),
                               dtype, algo)
    if "bias" in needs:
        adds = _sum_adds(g.c_out * per_chan, g.c_out if per_chan else 0)
        parts["bias"] = Cost("conv2d_backward_bias", (g.c_out,), params, 0, adds, 0, 0, adds, 0,
                             dict(zero, bias=b_b, output=out_b), dtype, algo)
    nbytes = {"input": in_b * (("input" in needs) + ("weight" in needs)),
              "weight": w_b * (("input" in needs) + ("weight" in needs)),
              "bias": b_b * ("bias" in needs),
              "output": out_b if needs else 0,
              "workspace": sum(p.bytes["workspace"] for p in parts.values())}
    shapes = tuple(parts[k].output_shape if k in parts else None for k in _NEEDS)
    total = {f: sum(getattr(p, f) for p in parts.values())
             for f in ("mults", "adds", "effective_mults", "effective_adds")}
    return Cost("conv2d_backward", shapes, params, total["mults"], total["adds"], 0,
                total["effective_mults"], total["effective_adds"], 0, nbytes, dtype, algo, parts)


def conv_transpose2d(input_shape, weight_shape, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, bias=False, dtype="float32", algo="direct"):
    """Cost of ``fastconv.conv_transpose2d``.

    Parameters
    ----------
    input_shape : tuple of int
        ``(N, C_in, H, W)`` (or unbatched ``(C_in, H, W)``).
    weight_shape : tuple of int
        ``(C_in, C_out/groups, kH, kW)``.
    stride, padding, output_padding, dilation : int or pair
        ``output_padding`` must be smaller than either stride or dilation.
    groups : int
    bias : bool
    dtype, algo
        As `conv2d`; the workspace is that of grad_input of the matching conv.
        An output height or width below 1 is refused (as PyTorch does for groups=1).

    Returns
    -------
    Cost
        Counted over the input positions: ``mults = N*C_in*H*W*(C_out/groups)*kH*kW``,
        each product scattered into the full (uncropped) output; a full-output
        element receiving ``t >= 1`` products costs ``t - 1`` adds, and each
        cropped output that received a product costs +1 add for the bias
        (an output that received none is the bias by assignment).
        ``effective_*``: only the products landing inside the cropped output.
    """
    (n, c_in, h, w), unbatched = _input4(input_shape)
    wc_in, cog, kh, kw = _shape(weight_shape, "weight_shape")
    if kh < 1 or kw < 1:
        raise ValueError(f"weight_shape={tuple(weight_shape)!r}: kernel size must be >= 1")
    groups = _args.as_int(groups, "groups", minimum=1)
    stride = _args.pair(stride, "stride", minimum=1)
    padding = _args.pair(padding, "padding", minimum=0)
    dilation = _args.pair(dilation, "dilation", minimum=1)
    output_padding = _args.pair(output_padding, "output_padding", minimum=0)
    bias = _flag(bias, "bias")
    dtype, isz = _itemsize(dtype)
    if wc_in != c_in:
        raise ValueError(f"input_shape has {c_in} channels but weight_shape={tuple(weight_shape)!r} "
                         f"expects {wc_in} (weight is (C_in, C_out/groups, kH, kW))")
    if c_in % groups:
        raise ValueError(f"input_shape: {c_in} input channels are not divisible by groups={groups}")
    for i in range(2):
        if output_padding[i] >= stride[i] and output_padding[i] >= dilation[i]:
            raise ValueError(f"output_padding={output_padding} must be smaller than either "
                             f"stride={stride} or dilation={dilation}")
    size = [(x - 1) * s - 2 * p + d * (k - 1) + op + 1 for x, s, p, d, k, op in
            zip((h, w), stride, padding, dilation, (kh, kw), output_padding)]
    if min(size) < 1:
        raise ValueError(f"conv_transpose2d: input {h}x{w} with padding={padding} gives output "
                         f"size {size[0]}x{size[1]}, which is too small")
    h_out, w_out = size
    c_out = cog * groups
    cig = c_in // groups
    # the matching conv2d: input = this output, output = this input
    g = _ConvGeom(n, c_out, h_out, w_out, c_in, kh, kw, stride,
                  (padding[0], padding[0], padding[1], padding[1]), dilation, groups, h, w, unbatched)
    ah, aw = g.axes()
    b = int(bias)
    planes = n * c_out
    mults = planes * cig * ah.pairs * aw.pairs
    got = planes * ah.real_hit * aw.real_hit if cig else 0   # cropped outputs with >= 1 product
    adds = _sum_adds(mults, planes * ah.hit * aw.hit if cig else 0) + b * got
    eff_mults = planes * cig * ah.valid * aw.valid
    eff_adds = _sum_adds(eff_mults, got) + b * got
    out4 = (n, c_out, h_out, w_out)
    in4 = (n, c_in, h, w)
    w4 = (c_in, cog, kh, kw)
    nbytes = {"input": _prod(in4) * isz, "weight": _prod(w4) * isz, "bias": c_out * isz * b,
              "output": _prod(out4) * isz,
              "workspace": _workspace_bytes(algo, "input", out4, w4, in4, g, isz)}
    return Cost("conv_transpose2d", _out_shape(out4, unbatched), _prod(w4) + b * c_out, mults,
                adds, 0, eff_mults, eff_adds, 0, nbytes, dtype, algo)


# ---------------------------------------------------------------- pooling

@dataclass(frozen=True)
class _PoolGeom:
    n: int
    c: int
    h: int
    w: int
    kernel: tuple
    stride: tuple
    pad: tuple
    dilation: tuple
    h_out: int
    w_out: int
    unbatched: bool

    def axes(self):
        return tuple(_axis(o, k, s, d, p, length) for o, k, s, d, p, length in
                     zip((self.h_out, self.w_out), self.kernel, self.stride, self.dilation,
                         self.pad, (self.h, self.w)))


def _pool_out(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling_output_shape (with the ceil_mode last-window rule)."""
    num = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1    # the last window must start inside the input or the left padding
    return out


def _pool_geom(input_shape, kernel_size, stride, padding, dilation, ceil_mode):
    (n, c, h, w), unbatched = _input4(input_shape)
    kernel = _args.pair(kernel_size, "kernel_size", minimum=1)
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else _args.pair(stride, "stride", minimum=1)
    padding = _args.pair(padding, "padding", minimum=0)
    dilation = _args.pair(dilation, "dilation", minimum=1)
    ceil_mode = _flag(ceil_mode, "ceil_mode")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        # PyTorch's pool2d_shape_check: pad <= kernel/2 (of the undilated kernel)
        raise ValueError(f"padding={padding} must be at most half of kernel_size={kernel}")
    h_out = _pool_out(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    w_out = _pool_out(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    if h_out < 1 or w_out < 1:
        raise ValueError(f"input_shape={tuple(input_shape)!r} with kernel_size={kernel}, "
                         f"padding={padding}, dilation={dilation} gives output size "
                         f"{h_out}x{w_out}, which is too small")
    return _PoolGeom(n, c, h, w, kernel, stride, padding, dilation, h_out, w_out, unbatched)


def _avg_args(count_include_pad, divisor_override):
    _flag(count_include_pad, "count_include_pad")
    if divisor_override is not None:
        if _args.as_int(divisor_override, "divisor_override") == 0:
            raise ValueError("divisor_override must be non-zero, got 0")


def _pool_cost(op, g, dtype, mults, adds, cmps, e_mults, e_adds, e_cmps, out_shape):
    dtype, isz = _itemsize(dtype)
    nbytes = {"input": g.n * g.c * g.h * g.w * isz, "weight": 0, "bias": 0,
              "output": g.n * g.c * g.h_out * g.w_out * isz, "workspace": 0}
    return Cost(op, out_shape, 0, mults, adds, cmps, e_mults, e_adds, e_cmps, nbytes, dtype, None)


def max_pool2d(input_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               dtype="float32"):
    """Cost of ``fastconv.max_pool2d``.

    ``window - 1`` comparisons per output: dense window ``kH*kW`` (padding
    and ceil_mode overhang included); effective window the in-bounds taps
    (an output with none is -inf by assignment: 0 comparisons).  Index bytes
    of ``return_indices`` are not counted.
    """
    g = _pool_geom(input_shape, kernel_size, stride, padding, dilation, ceil_mode)
    ah, aw = g.axes()
    planes = g.n * g.c
    outputs = planes * g.h_out * g.w_out
    cmps = _sum_adds(outputs * g.kernel[0] * g.kernel[1], outputs)
    e_cmps = _sum_adds(planes * ah.valid * aw.valid, planes * ah.windows_hit * aw.windows_hit)
    return _pool_cost("max_pool2d", g, dtype, 0, 0, cmps, 0, 0, e_cmps,
                      _out_shape((g.n, g.c, g.h_out, g.w_out), g.unbatched))


def avg_pool2d(input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None, dtype="float32"):
    """Cost of ``fastconv.avg_pool2d``.

    ``window - 1`` adds and one multiplication (by the reciprocal of the
    divisor) per output; dense window ``kH*kW``, effective window the
    in-bounds taps.  `count_include_pad` and `divisor_override` change the
    divisor, not the counts.
    """
    _avg_args(count_include_pad, divisor_override)
    g = _pool_geom(input_shape, kernel_size, stride, padding, 1, ceil_mode)
    ah, aw = g.axes()
    planes = g.n * g.c
    outputs = planes * g.h_out * g.w_out
    adds = _sum_adds(outputs * g.kernel[0] * g.kernel[1], outputs)
    e_outputs = planes * ah.windows_hit * aw.windows_hit
    e_adds = _sum_adds(planes * ah.valid * aw.valid, e_outputs)
    return _pool_cost("avg_pool2d", g, dtype, outputs, adds, 0, e_outputs, e_adds, 0,
                      _out_shape((g.n, g.c, g.h_out, g.w_out), g.unbatched))


def max_pool2d_backward(input_shape, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, dtype="float32"):
    """Cost of ``fastconv.max_pool2d_backward`` (`input_shape` is the forward input).

    One addition per output: ``grad_out`` is scattered into a zero-initialised
    grad_input at its window's argmax; effective: only outputs whose window
    holds a real element.  Finding the argmax is not counted.  Bytes:
    ``output`` = grad_output read, ``input`` = grad_input written.
    """
    g = _pool_geom(input_shape, kernel_size, stride, padding, dilation, ceil_mode)
    ah, aw = g.axes()
    planes = g.n * g.c
    return _pool_cost("max_pool2d_backward", g, dtype, 0, planes * g.h_out * g.w_out, 0, 0,
                      planes * ah.windows_hit * aw.windows_hit, 0,
                      _out_shape((g.n, g.c, g.h, g.w), g.unbatched))


def avg_pool2d_backward(input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None, dtype="float32"):
    """Cost of ``fastconv.avg_pool2d_backward`` (`input_shape` is the forward input).

    One multiplication per output (``grad_out / divisor``); each grad_input
    element is the exact sum of the ``t`` scaled gradients that reach it:
    ``t - 1`` adds.  Dense: over every position a window tap touches
    (padding and ceil_mode overhang included); effective: real input
    elements only (and only outputs with a real tap are scaled).
    """
    _avg_args(count_include_pad, divisor_override)
    g = _pool_geom(input_shape, kernel_size, stride, padding, 1, ceil_mode)
    ah, aw = g.axes()
    planes = g.n * g.c
    outputs = planes * g.h_out * g.w_out
    adds = _sum_adds(planes * ah.pairs * aw.pairs, planes * ah.hit * aw.hit)
    e_adds = _sum_adds(planes * ah.valid * aw.valid, planes * ah.real_hit * aw.real_hit)
    return _pool_cost("avg_pool2d_backward", g, dtype, outputs, adds, 0,
                      planes * ah.windows_hit * aw.windows_hit, e_adds, 0,
                      _out_shape((g.n, g.c, g.h, g.w), g.unbatched))


# ---------------------------------------------------------------- receptive field

ReceptiveField = namedtuple("ReceptiveField", "size jump start")
ReceptiveField.__doc__ = """Receptive field after a layer, in input pixels.

size : extent of the input seen by one output; jump : distance in input
pixels between adjacent outputs; start : input coordinate of the centre of
the first output's field (pixel i has centre i; may be a half-integer).
Scalars when every layer was given with ints, else (height, width) pairs.
"""


def receptive_field(layers):
    """Receptive field arithmetic (Dumoulin & Visin; Araujo et al.).

    Parameters
    ----------
    layers : sequence of tuples
        ``(kernel, stride, dilation)`` or ``(kernel, stride, dilation, padding)``;
        each an int or a (height, width) pair.

    Returns
    -------
    list of ReceptiveField
        After each layer, starting from ``size=1, jump=1, start=0``:
        ``size += (k-1)*d*jump``; ``start += ((k-1)*d/2 - p)*jump``;
        ``jump *= s`` (``start`` uses the jump before the layer).
        ``start`` is an int when integral, else a float (a half-integer).
    """
    try:
        items = list(layers)
    except TypeError:
        raise TypeError(f"layers must be a sequence of (kernel, stride, dilation[, padding]) "
                        f"tuples, got {layers!r}") from None
    size, jump, start2 = [1, 1], [1, 1], [0, 0]     # start kept doubled: exact halves
    any_pair = False
    out = []
    for i, layer in enumerate(items):
        if not isinstance(layer, (tuple, list)) or len(layer) not in (3, 4):
            raise ValueError(f"layers[{i}] must be (kernel, stride, dilation[, padding]), got {layer!r}")
        k = _args.pair(layer[0], f"layers[{i}] kernel", minimum=1)
        s = _args.pair(layer[1], f"layers[{i}] stride", minimum=1)
        d = _args.pair(layer[2], f"layers[{i}] dilation", minimum=1)
        p = _args.pair(layer[3], f"layers[{i}] padding", minimum=0) if len(layer) == 4 else (0, 0)
        any_pair |= any(isinstance(v, (tuple, list, np.ndarray)) for v in layer)
        for a in range(2):
            size[a] += (k[a] - 1) * d[a] * jump[a]
            start2[a] += ((k[a] - 1) * d[a] - 2 * p[a]) * jump[a]
            jump[a] *= s[a]
        out.append([tuple(size), tuple(jump), tuple(start2)])

    def half(v2):
        return v2 // 2 if v2 % 2 == 0 else v2 / 2

    result = []
    for sz, jp, st2 in out:
        st = tuple(half(v) for v in st2)
        if any_pair:
            result.append(ReceptiveField(sz, jp, st))
        else:
            result.append(ReceptiveField(sz[0], jp[0], st[0]))
    return result
