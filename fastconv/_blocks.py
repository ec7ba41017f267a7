"""Layers as `fastconv.dask` runs them on one block, and what a block costs (no dask here).

`Layer` is one spatial layer (conv, max or avg pooling) with its weights;
`run_block` computes a block's outputs by running the in-memory fastconv
ops (GIL released) layer after layer on the block's input plus halo,
adding padding only at the array's true borders (`fastconv._halo`
decides which); `block_cost` counts, for the same plan, the kernel calls'
exact FLOPs (``fastconv.cost``), and the block's peak memory footprint.
"""
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import cost as _cost
from . import _halo

__all__ = ["Layer", "run_block", "block_cost", "BlockCost"]


@dataclass(frozen=True, eq=False)
class Layer:
    """One spatial layer with global (whole-array) geometry.

    ``pads`` is ``((top, bottom), (left, right))``; ``kind`` is ``"conv"``,
    ``"max"`` or ``"avg"``.  ``w``/``b`` are the conv's weight and bias.
    """
    kind: str
    kernel: tuple
    stride: tuple
    dilation: tuple = (1, 1)
    pads: tuple = ((0, 0), (0, 0))
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: Optional[int] = None
    groups: int = 1
    c_out: Optional[int] = None
    w: Optional[np.ndarray] = field(default=None, repr=False)
    b: Optional[np.ndarray] = field(default=None, repr=False)
    algo: str = "auto"

    def step(self, axis):
        """The `fastconv._halo.Step` of this layer along axis 0 (H) or 1 (W)."""
        return _halo.Step(self.kernel[axis], self.stride[axis], self.dilation[axis],
                          self.pads[axis][0], self.pads[axis][1], self.ceil_mode)

    def channels(self, c_in):
        return self.c_out if self.kind == "conv" else c_in

    @property
    def fill(self):
        """What the padding holds: -inf for max pooling, zero otherwise."""
        return -np.inf if self.kind == "max" else 0.0

    @property
    def param_bytes(self):
        return sum(a.nbytes for a in (self.w, self.b) if a is not None)


def _needs_fixup(layer, wins):
    """True when some avg-pool output of the block has a divisor other than kH*kW."""
    if layer.kind != "avg" or layer.divisor_override:
        return False
    for axis in (0, 1):
        d = _avg_div_axis(layer, axis, wins[axis])
        if np.any(d != layer.kernel[axis]):
            return True
    return False


def _avg_div_axis(layer, axis, win):
    k, s, p = layer.kernel[axis], layer.stride[axis], layer.pads[axis][0]
    o = np.arange(win.q0, win.q1, dtype=np.int64)
    start = o * s - p
    end = np.minimum(start + k, win.n_in + p)
    if layer.count_include_pad:
        return end - start
    return np.minimum(end, win.n_in) - np.maximum(start, 0)


def _apply(layer, buf, wins):
    """One layer on an explicitly padded buffer (the kernel itself pads nothing)."""
    import fastconv as fc
    if layer.kind == "conv":
        return fc.conv2d(buf, layer.w, layer.b, layer.stride, 0, layer.dilation, layer.groups,
                         algo=layer.algo)
    if layer.kind == "max":
        return fc.max_pool2d(buf, layer.kernel, layer.stride, 0, layer.dilation)
    if layer.divisor_override:
        return fc.avg_pool2d(buf, layer.kernel, layer.stride, 0,
                             divisor_override=layer.divisor_override)
    if not _needs_fixup(layer, wins):
        return fc.avg_pool2d(buf, layer.kernel, layer.stride, 0)
    # Border windows divide by what the whole-array pooling would (padding
    # and ceil_mode overhang rules): sum here, then multiply by the same
    # reciprocal the kernel uses, (T)1/(T)divisor.
    y = fc.avg_pool2d(buf, layer.kernel, layer.stride, 0, divisor_override=1)
    div = np.multiply.outer(_avg_div_axis(layer, 0, wins[0]), _avg_div_axis(layer, 1, wins[1]))
    y *= y.dtype.type(1) / div.astype(y.dtype)
    return y


def _window(cur, off, wins, fill):
    """The padded input of one layer from `cur` (global offset `off`), or `cur` itself."""
    (h0, h1), (w0, w1) = wins[0].src, wins[1].src
    pads = [(wn.pad_before, wn.pad_after) for wn in wins]
    sl = cur[:, :, h0 - off[0]:h1 - off[0], w0 - off[1]:w1 - off[1]]
    if pads == [(0, 0), (0, 0)]:
        if sl.shape == cur.shape and cur.flags.c_contiguous:
            return cur, False
        return np.ascontiguousarray(sl), True
    buf = np.full(cur.shape[:2] + (wins[0].length, wins[1].length), fill, cur.dtype)
    buf[:, :, pads[0][0]:pads[0][0] + (h1 - h0), pads[1][0]:pads[1][0] + (w1 - w0)] = sl
    return buf, True


def _copies(wins, cur_hw):
    """Whether `_window` copies (for the footprint model): a copy unless it is all of `cur`."""
    (h0, h1), (w0, w1) = wins[0].src, wins[1].src
    padded = any(wn.pad_before or wn.pad_after for wn in wins)
    return padded or (h1 - h0, w1 - w0) != tuple(cur_hw)


def run_block(block, layers, plans, index):
    """Outputs of block ``index = (i, j)`` (H, W) of the stack `layers`.

    Parameters
    ----------
    block : ndarray, shape (n, c, h, w)
        The block's input chunk plus its halo, i.e. the global input range
        ``plans[a].received(index[a])`` along H and W.
    layers : sequence of Layer
    plans : (AxisPlan, AxisPlan)
    index : (int, int)
    """
    wins = [plans[a].windows(index[a]) for a in (0, 1)]
    off = [plans[a].received(index[a])[0] for a in (0, 1)]
    cur = block
    for li, layer in enumerate(layers):
        lw = (wins[0][li], wins[1][li])
        c = layer.channels(cur.shape[1])
        if lw[0].q1 <= lw[0].q0 or lw[1].q1 <= lw[1].q0:
            # every output of this layer in the block lies past the array (pure padding rows
            # read by the next layer): nothing to compute
            cur = np.empty((cur.shape[0], c, max(0, lw[0].q1 - lw[0].q0),
                            max(0, lw[1].q1 - lw[1].q0)), cur.dtype)
        else:
            buf, _ = _window(cur, off, lw, layer.fill)
            cur = None                       # the previous activation can go
            cur = _apply(layer, buf, lw)
            del buf
        off = [lw[0].q0, lw[1].q0]
    return cur


@dataclass
class BlockCost:
    """Exact counts of one block's kernel calls and its peak footprint."""
    flops: int = 0
    mults: int = 0
    adds: int = 0
    comparisons: int = 0
    fixup_mults: int = 0
    received_bytes: int = 0
    peak_bytes: int = 0
    workspace_bytes: int = 0
    calls: int = 0


def _workspace(layer, in_shape, dtype):
    """Workspace bytes of the algorithm fastconv picks for this call (0 for pooling)."""
    if layer.kind != "conv":
        return 0, None
    from . import conv as _conv
    c = _cost.conv2d(in_shape, layer.w.shape, layer.stride, 0, layer.dilation, layer.groups)
    n, c_in, h, w = in_shape
    c_out, _, kh, kw = layer.w.shape
    shape = (n, c_in, h, w, c_out, kh, kw, c.output_shape[2], c.output_shape[3],
             layer.stride[0], layer.stride[1], 0, 0, layer.dilation[0], layer.dilation[1],
             layer.groups)
    algo = _conv.resolve_algo(layer.algo, "conv2d", shape, dtype)
    c = _cost.conv2d(in_shape, layer.w.shape, layer.stride, 0, layer.dilation, layer.groups,
                     algo=algo, dtype=dtype)
    return c.bytes["workspace"], algo


def block_cost(layers, plans, index, n, c_in, dtype):
    """`BlockCost` of block ``index`` of a stage over a batch chunk of `n` samples.

    FLOPs are the sum of ``fastconv.cost`` of every kernel call `run_block`
    makes (padding 0: the block's border padding is explicit and counted as
    dense taps, exactly as the whole-array call counts it), plus one
    multiplication per avg-pool output whose divisor is fixed up.  The
    footprint counts the arrays alive at once: the block (input plus halo),
    the layers' parameters, and per layer the larger of (previous activation
    + padded copy) and (padded copy or previous activation + output +
    kernel workspace).  Python object headers are not counted.
    """
    dtype = np.dtype(dtype)
    isz = dtype.itemsize
    wins = [plans[a].windows(index[a]) for a in (0, 1)]
    rec = [plans[a].received(index[a]) for a in (0, 1)]
    cur_hw = (rec[0][1] - rec[0][0], rec[1][1] - rec[1][0])
    cur_c = c_in
    out = BlockCost()
    out.received_bytes = n * c_in * cur_hw[0] * cur_hw[1] * isz
    held = out.received_bytes + sum(l.param_bytes for l in layers)
    peak = held
    prev = 0                                  # bytes of the previous activation beyond the block
    for li, layer in enumerate(layers):
        lw = (wins[0][li], wins[1][li])
        c = layer.channels(cur_c)
        oh, ow = max(0, lw[0].q1 - lw[0].q0), max(0, lw[1].q1 - lw[1].q0)
        out_bytes = n * c * oh * ow * isz
        if oh and ow:
            in_shape = (n, cur_c, lw[0].length, lw[1].length)
            copy = _copies(lw, cur_hw)
            buf = n * cur_c * lw[0].length * lw[1].length * isz if copy else 0
            ws, _ = _workspace(layer, in_shape, dtype)
            peak = max(peak, held + prev + buf, held + (buf if copy else prev) + out_bytes + ws)
            out.workspace_bytes = max(out.workspace_bytes, ws)
            if layer.kind == "conv":
                k = _cost.conv2d(in_shape, layer.w.shape, layer.stride, 0, layer.dilation,
                                 layer.groups, bias=layer.b is not None, dtype=dtype)
            elif layer.kind == "max":
                k = _cost.max_pool2d(in_shape, layer.kernel, layer.stride, 0, layer.dilation,
                                     dtype=dtype)
            else:
                k = _cost.avg_pool2d(in_shape, layer.kernel, layer.stride, 0, dtype=dtype)
                if _needs_fixup(layer, lw):
                    out.fixup_mults += n * c * oh * ow
            out.flops += k.flops
            out.mults += k.mults
            out.adds += k.adds
            out.comparisons += k.comparisons
            out.calls += 1
        else:
            peak = max(peak, held + prev + out_bytes)
        prev = out_bytes
        cur_c, cur_hw = c, (oh, ow)
    out.flops += out.fixup_mults
    out.mults += out.fixup_mults
    out.peak_bytes = peak
    return out
