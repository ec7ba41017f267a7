"""The cost model equals the operations a naive computation really performs.

Each naive loop below computes the op's result element by element and routes
every multiplication, addition and comparison through a counter.  Their
results are checked against PyTorch (when installed) so the counters count a
real computation; the cost model must then equal the counts exactly.

Dense loops compute over the zero- (or -inf-) padded input, touching every
tap; effective loops skip taps outside the real input.  A sum of t terms is
formed as ``((t1 + t2) + t3) ...`` (t - 1 additions); an empty sum is an
assignment.
"""
import math

import numpy as np
import pytest

from fastconv import cost, _workspace

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # torch is an optional oracle
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


class Ops:
    """Counts the arithmetic a loop performs."""

    def __init__(self):
        self.mults = self.adds = self.cmps = 0

    def mul(self, a, b):
        self.mults += 1
        return a * b

    def add(self, a, b):
        self.adds += 1
        return a + b

    def gt(self, a, b):
        self.cmps += 1
        return a > b

    def acc(self, total, term):
        """Running sum: the first term is an assignment, the others cost one add."""
        return term if total is None else self.add(total, term)


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _pads(padding, kernel, dilation):
    """(top, bottom, left, right), 'same' as PyTorch (odd one bottom/right)."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        t = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return (t[0] // 2, t[0] - t[0] // 2, t[1] // 2, t[1] - t[1] // 2)
    p = _pair(padding)
    return (p[0], p[0], p[1], p[1])


# ---------------------------------------------------------------- naive convolutions

def naive_conv2d(x, w, b, stride, padding, dilation, groups, effective):
    N, C, H, W = x.shape
    CO, CPG, KH, KW = w.shape
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    pt, pb, pl, pr = _pads(padding, (KH, KW), (dh, dw))
    Ho = (H + pt + pb - dh * (KH - 1) - 1) // sh + 1
    Wo = (W + pl + pr - dw * (KW - 1) - 1) // sw + 1
    cog = CO // groups
    ops = Ops()
    y = np.zeros((N, CO, Ho, Wo))
    for n in range(N):
        for co in range(CO):
            g = co // cog
            for oh in range(Ho):
                for ow in range(Wo):
                    acc = None
                    for ci in range(CPG):
                        for kh in range(KH):
                            for kw in range(KW):
                                ih, iw = oh * sh + kh * dh - pt, ow * sw + kw * dw - pl
                                inside = 0 <= ih < H and 0 <= iw < W
                                if effective and not inside:
                                    continue
                                xv = x[n, g * CPG + ci, ih, iw] if inside else 0.0
                                acc = ops.acc(acc, ops.mul(xv, w[co, ci, kh, kw]))
                    if b is not None:
                        acc = ops.acc(acc, b[co])
                    y[n, co, oh, ow] = 0.0 if acc is None else acc
    return y, ops


def naive_conv2d_grad_input(gy, w, x_shape, stride, padding, dilation, groups, effective):
    """grad_input as exact sums: dense over the padded input, effective over real elements."""
    N, C, H, W = x_shape
    CO, CPG, KH, KW = w.shape
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    pt, pb, pl, pr = _pads(padding, (KH, KW), (dh, dw))
    _, _, Ho, Wo = gy.shape
    cog = CO // groups
    ops = Ops()
    buf = {}   # padded-input coordinates -> running sum
    for n in range(N):
        for co in range(CO):
            g = co // cog
            for oh in range(Ho):
                for ow in range(Wo):
                    for ci in range(CPG):
                        for kh in range(KH):
                            for kw in range(KW):
                                ph, pw = oh * sh + kh * dh, ow * sw + kw * dw
                                inside = 0 <= ph - pt < H and 0 <= pw - pl < W
                                if effective and not inside:
                                    continue
                                key = (n, g * CPG + ci, ph, pw)
                                buf[key] = ops.acc(buf.get(key),
                                                   ops.mul(gy[n, co, oh, ow], w[co, ci, kh, kw]))
    gx = np.zeros(x_shape)
    for (n, c, ph, pw), v in buf.items():
        if 0 <= ph - pt < H and 0 <= pw - pl < W:
            gx[n, c, ph - pt, pw - pl] = v
    return gx, ops


def naive_conv2d_grad_weight(gy, x, w_shape, stride, padding, dilation, groups, effective):
    N, C, H, W = x.shape
    CO, CPG, KH, KW = w_shape
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    pt, pb, pl, pr = _pads(padding, (KH, KW), (dh, dw))
    _, _, Ho, Wo = gy.shape
    cog = CO // groups
    ops = Ops()
    gw = np.zeros(w_shape)
    for co in range(CO):
        g = co // cog
        for ci in range(CPG):
            for kh in range(KH):
                for kw in range(KW):
                    acc = None
                    for n in range(N):
                        for oh in range(Ho):
                            for ow in range(Wo):
                                ih, iw = oh * sh + kh * dh - pt, ow * sw + kw * dw - pl
                                inside = 0 <= ih < H and 0 <= iw < W
                                if effective and not inside:
                                    continue
                                xv = x[n, g * CPG + ci, ih, iw] if inside else 0.0
                                acc = ops.acc(acc, ops.mul(gy[n, co, oh, ow], xv))
                    gw[co, ci, kh, kw] = 0.0 if acc is None else acc
    return gw, ops


def naive_conv2d_grad_bias(gy):
    N, CO, Ho, Wo = gy.shape
    ops = Ops()
    gb = np.zeros(CO)
    for co in range(CO):
        acc = None
        for n in range(N):
            for oh in range(Ho):
                for ow in range(Wo):
                    acc = ops.acc(acc, gy[n, co, oh, ow])
        gb[co] = 0.0 if acc is None else acc
    return gb, ops


def naive_conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups, effective):
    """Scatter over the input positions into the full output, then crop and add the bias."""
    N, CI, H, W = x.shape
    _, COG, KH, KW = w.shape
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    (oph, opw), (dh, dw) = _pair(output_padding), _pair(dilation)
    Ho = (H - 1) * sh - 2 * ph + dh * (KH - 1) + oph + 1
    Wo = (W - 1) * sw - 2 * pw + dw * (KW - 1) + opw + 1
    CO, CIG = COG * groups, CI // groups
    ops = Ops()
    buf = {}   # full-output coordinates -> running sum
    for n in range(N):
        for ci in range(CI):
            g = ci // CIG
            for h in range(H):
                for w_ in range(W):
                    for j in range(COG):
                        for kh in range(KH):
                            for kw in range(KW):
                                fh, fw = h * sh + kh * dh, w_ * sw + kw * dw
                                inside = 0 <= fh - ph < Ho and 0 <= fw - pw < Wo
                                if effective and not inside:
                                    continue
                                key = (n, g * COG + j, fh, fw)
                                buf[key] = ops.acc(buf.get(key), ops.mul(x[n, ci, h, w_], w[ci, j, kh, kw]))
    y = np.zeros((N, CO, Ho, Wo))
    for n in range(N):
        for co in range(CO):
            for oh in range(Ho):
                for ow in range(Wo):
                    v = buf.get((n, co, oh + ph, ow + pw))
                    if b is not None:
                        v = ops.acc(v, b[co])
                    y[n, co, oh, ow] = 0.0 if v is None else v
    return y, ops


# ---------------------------------------------------------------- naive pooling

def _pool_out(size, k, s, p, d, ceil_mode):
    # written from PyTorch's pooling_output_shape, independently of cost.py
    out = (size + 2 * p - d * (k - 1) - 1 + ((s - 1) if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def naive_max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, effective):
    """Returns y, the argmax (plane coordinates, possibly in padding) per output, ops."""
    N, C, H, W = x.shape
    (KH, KW), (sh, sw) = _pair(kernel), _pair(stride if stride is not None else kernel)
    (ph, pw), (dh, dw) = _pair(padding), _pair(dilation)
    Ho = _pool_out(H, KH, sh, ph, dh, ceil_mode)
    Wo = _pool_out(W, KW, sw, pw, dw, ceil_mode)
    ops = Ops()
    y = np.zeros((N, C, Ho, Wo))
    arg = {}
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    best = where = None
                    for kh in range(KH):
                        for kw in range(KW):
                            ih, iw = oh * sh - ph + kh * dh, ow * sw - pw + kw * dw
                            inside = 0 <= ih < H and 0 <= iw < W
                            if effective and not inside:
                                continue
                            v = x[n, c, ih, iw] if inside else -math.inf
                            if best is None or ops.gt(v, best):
                                best, where = v, (ih, iw)
                    y[n, c, oh, ow] = -math.inf if best is None else best
                    arg[n, c, oh, ow] = where
    return y, arg, ops


def naive_max_pool2d_backward(gy, x_shape, arg, effective):
    """Scatter each grad_out into a zero-initialised grad_input at its argmax."""
    N, C, H, W = x_shape
    ops = Ops()
    buf = {}
    for (n, c, oh, ow), where in arg.items():
        if where is None or (effective and not (0 <= where[0] < H and 0 <= where[1] < W)):
            continue
        key = (n, c) + where
        buf[key] = ops.add(buf.get(key, 0.0), gy[n, c, oh, ow])
    gx = np.zeros(x_shape)
    for (n, c, ih, iw), v in buf.items():
        if 0 <= ih < H and 0 <= iw < W:
            gx[n, c, ih, iw] = v
    return gx, ops


def _avg_divisor(oh, ow, H, W, KH, KW, sh, sw, ph, pw, count_include_pad, divisor_override):
    """PyTorch's avg_pool2d divisor for one window."""
    if divisor_override:
        return divisor_override
    hs, ws = oh * sh - ph, ow * sw - pw
    he, we = min(hs + KH, H + ph), min(ws + KW, W + pw)
    if count_include_pad:
        return (he - hs) * (we - ws)
    return (min(he, H) - max(hs, 0)) * (min(we, W) - max(ws, 0))


def naive_avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override,
                     effective):
    N, C, H, W = x.shape
    (KH, KW), (sh, sw) = _pair(kernel), _pair(stride if stride is not None else kernel)
    ph, pw = _pair(padding)
    Ho, Wo = _pool_out(H, KH, sh, ph, 1, ceil_mode), _pool_out(W, KW, sw, pw, 1, ceil_mode)
    ops = Ops()
    y = np.zeros((N, C, Ho, Wo))
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    acc = None
                    for kh in range(KH):
                        for kw in range(KW):
                            ih, iw = oh * sh - ph + kh, ow * sw - pw + kw
                            inside = 0 <= ih < H and 0 <= iw < W
                            if effective and not inside:
                                continue
                            acc = ops.acc(acc, x[n, c, ih, iw] if inside else 0.0)
                    div = _avg_divisor(oh, ow, H, W, KH, KW, sh, sw, ph, pw, count_include_pad,
                                       divisor_override)
                    y[n, c, oh, ow] = 0.0 if acc is None else ops.mul(acc, 1.0 / div)
    return y, ops


def naive_avg_pool2d_backward(gy, x_shape, kernel, stride, padding, ceil_mode, count_include_pad,
                              divisor_override, effective):
    """grad_out/divisor once per output, then exact sums per grad_input element."""
    N, C, H, W = x_shape
    (KH, KW), (sh, sw) = _pair(kernel), _pair(stride if stride is not None else kernel)
    ph, pw = _pair(padding)
    _, _, Ho, Wo = gy.shape
    ops = Ops()
    buf = {}
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    taps = [(oh * sh - ph + kh, ow * sw - pw + kw) for kh in range(KH) for kw in range(KW)]
                    if effective:
                        taps = [(i, j) for i, j in taps if 0 <= i < H and 0 <= j < W]
                    if not taps:
                        continue
                    div = _avg_divisor(oh, ow, H, W, KH, KW, sh, sw, ph, pw, count_include_pad,
                                       divisor_override)
                    g = ops.mul(gy[n, c, oh, ow], 1.0 / div)
                    for i, j in taps:
                        buf[n, c, i, j] = ops.acc(buf.get((n, c, i, j)), g)
    gx = np.zeros(x_shape)
    for (n, c, i, j), v in buf.items():
        if 0 <= i < H and 0 <= j < W:
            gx[n, c, i, j] = v
    return gx, ops


# ---------------------------------------------------------------- helpers

def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def _rng(seed):
    return np.random.default_rng(seed)


# (N, C_in, H, W, C_out, kH, kW, stride, padding, dilation, groups)
CONV_CONFIGS = [
    (2, 3, 5, 6, 4, 3, 3, 1, 0, 1, 1),
    (1, 4, 7, 5, 6, 3, 2, 2, 1, 1, 2),
    (2, 2, 6, 6, 3, 3, 3, (2, 1), (2, 1), (1, 2), 1),
    (1, 4, 5, 5, 4, 1, 1, 1, 1, 1, 4),            # depthwise 1x1 with padding: all-padding windows
    (1, 2, 4, 4, 2, 2, 3, 3, (0, 2), 1, 1),       # stride > kernel
    (1, 2, 5, 6, 3, 4, 2, 1, "same", (1, 2), 1),  # even kernel: asymmetric 'same'
    (1, 3, 5, 4, 2, 3, 3, 1, "same", 2, 1),
    (2, 2, 4, 5, 2, 2, 2, 2, "valid", 1, 1),
    (1, 2, 4, 5, 2, 4, 5, 1, 0, 1, 1),            # kernel as large as the input
    (1, 1, 3, 3, 1, 2, 2, 1, 3, 2, 1),            # padding > dilated kernel: empty windows
    (1, 1, 1, 1, 2, 1, 1, 1, 0, 1, 1),
    (0, 2, 4, 4, 3, 3, 3, 1, 1, 1, 1),            # empty batch
    (1, 6, 5, 5, 3, 2, 3, (1, 2), (1, 0), (2, 1), 3),
    (2, 2, 3, 7, 2, 3, 1, (3, 1), (2, 0), (1, 3), 2),
]


def _conv_inputs(cfg, seed):
    n, c, h, w, co, kh, kw, s, p, d, g = cfg
    rng = _rng(seed)
    x = rng.uniform(-1, 1, (n, c, h, w))
    wt = rng.uniform(-1, 1, (co, c // g, kh, kw))
    b = rng.uniform(-1, 1, co)
    return x, wt, b, dict(stride=s, padding=p, dilation=d, groups=g)


@pytest.mark.parametrize("cfg", CONV_CONFIGS)
@pytest.mark.parametrize("with_bias", [False, True])
def test_conv2d_forward_counts(cfg, with_bias):
    x, w, b, kw = _conv_inputs(cfg, 1)
    b = b if with_bias else None
    c = cost.conv2d(x.shape, w.shape, bias=with_bias, dtype="float64", **kw)
    y, dense = naive_conv2d(x, w, b, effective=False, **kw)
    y_eff, eff = naive_conv2d(x, w, b, effective=True, **kw)
    assert c.output_shape == y.shape
    assert (c.mults, c.adds, c.comparisons) == (dense.mults, dense.adds, 0)
    assert (c.effective_mults, c.effective_adds) == (eff.mults, eff.adds)
    assert c.macs == c.mults and c.flops == c.mults + c.adds
    # the stated per-output convention
    n, cin, _, _, co, kh, kwid, *_, g = cfg
    outputs = y.size
    assert c.mults == outputs * (cin // g) * kh * kwid
    assert c.adds == outputs * ((cin // g) * kh * kwid - 1 + with_bias)
    _close(y_eff, y)
    if torch is not None:
        _close(y, F.conv2d(_t(x), _t(w), None if b is None else _t(b), **kw).numpy())


@pytest.mark.parametrize("cfg", CONV_CONFIGS)
def test_conv2d_backward_counts(cfg):
    x, w, b, kw = _conv_inputs(cfg, 2)
    c = cost.conv2d_backward(x.shape, w.shape, bias=True, dtype="float64", **kw)
    y, _ = naive_conv2d(x, w, b, effective=True, **kw)
    gy = _rng(3).uniform(-1, 1, y.shape)
    gx, gi_d = naive_conv2d_grad_input(gy, w, x.shape, effective=False, **kw)
    gx_e, gi_e = naive_conv2d_grad_input(gy, w, x.shape, effective=True, **kw)
    gw, gw_d = naive_conv2d_grad_weight(gy, x, w.shape, effective=False, **kw)
    gw_e, gw_eo = naive_conv2d_grad_weight(gy, x, w.shape, effective=True, **kw)
    gb, gb_o = naive_conv2d_grad_bias(gy)
    pi, pw, pb = c.parts["input"], c.parts["weight"], c.parts["bias"]
    assert (pi.mults, pi.adds) == (gi_d.mults, gi_d.adds)
    assert (pi.effective_mults, pi.effective_adds) == (gi_e.mults, gi_e.adds)
    assert (pw.mults, pw.adds) == (gw_d.mults, gw_d.adds)
    assert (pw.effective_mults, pw.effective_adds) == (gw_eo.mults, gw_eo.adds)
    assert (pb.mults, pb.adds, pb.effective_adds) == (0, gb_o.adds, gb_o.adds)
    assert c.mults == gi_d.mults + gw_d.mults
    assert c.adds == gi_d.adds + gw_d.adds + gb_o.adds
    assert c.effective_adds == gi_e.adds + gw_eo.adds + gb_o.adds
    # dense grad_input and grad_weight each do as many mults as the forward pass
    fwd = cost.conv2d(x.shape, w.shape, **kw)
    assert pi.mults == pw.mults == fwd.mults
    assert pi.effective_mults == pw.effective_mults == fwd.effective_mults
    # every grad_weight element sums N*H_out*W_out products
    e = y.shape[0] * y.shape[2] * y.shape[3]
    assert pw.adds == w.size * max(e - 1, 0)
    assert pb.adds == w.shape[0] * max(e - 1, 0)
    assert c.output_shape == (x.shape, w.shape, (w.shape[0],))
    _close(gx_e, gx)
    _close(gw_e, gw)
    if torch is not None:
        xt, wt, bt = (_t(a).requires_grad_() for a in (x, w, b))
        F.conv2d(xt, wt, bt, **kw).backward(_t(gy))
        _close(gx, xt.grad.numpy())
        _close(gw, wt.grad.numpy())
        _close(gb, bt.grad.numpy())


@pytest.mark.parametrize("needs", [("input",), ("weight",), ("bias",), ("weight", "input"), ()])
def test_conv2d_backward_needs(needs):
    full = cost.conv2d_backward((2, 4, 6, 6), (6, 2, 3, 3), padding=1, groups=2)
    c = cost.conv2d_backward((2, 4, 6, 6), (6, 2, 3, 3), padding=1, groups=2, needs=needs)
    assert set(c.parts) == set(needs)
    for k in needs:
        # params differ only by the bias, which a needed grad_bias implies
        assert dict(c.parts[k].as_dict(), params=0) == dict(full.parts[k].as_dict(), params=0)
    assert c.params == 6 * 2 * 9 + 6 * ("bias" in needs)
    assert c.mults == sum(full.parts[k].mults for k in needs)
    assert c.adds == sum(full.parts[k].adds for k in needs)
    assert c.output_shape == tuple(full.output_shape[i] if k in needs else None
                                   for i, k in enumerate(("input", "weight", "bias")))


# (N, C_in, H, W, C_out, kH, kW, stride, padding, output_padding, dilation, groups)
CONVT_CONFIGS = [
    (1, 2, 3, 3, 3, 3, 3, 1, 0, 0, 1, 1),
    (2, 2, 3, 4, 2, 3, 2, 2, 1, 1, 1, 1),
    (1, 4, 3, 3, 6, 3, 3, 2, (1, 0), (1, 0), 1, 2),
    (1, 2, 4, 3, 2, 2, 3, 3, (0, 1), (2, 1), (1, 2), 1),   # stride > kernel: holes
    (1, 2, 3, 3, 2, 3, 3, 1, 2, (1, 0), 2, 2),              # output_padding < dilation
    (1, 1, 2, 2, 1, 1, 1, 3, 0, 2, 1, 1),                   # outputs that receive nothing
    (0, 2, 3, 3, 2, 3, 3, 2, 1, 1, 1, 1),
    (1, 3, 2, 3, 3, 2, 2, (2, 3), (1, 1), 0, (2, 1), 3),
]


@pytest.mark.parametrize("cfg", CONVT_CONFIGS)
@pytest.mark.parametrize("with_bias", [False, True])
def test_conv_transpose2d_counts(cfg, with_bias):
    n, ci, h, w_, co, kh, kw, s, p, op, d, g = cfg
    rng = _rng(4)
    x = rng.uniform(-1, 1, (n, ci, h, w_))
    w = rng.uniform(-1, 1, (ci, co // g, kh, kw))
    b = rng.uniform(-1, 1, co) if with_bias else None
    args = dict(stride=s, padding=p, output_padding=op, dilation=d, groups=g)
    c = cost.conv_transpose2d(x.shape, w.shape, bias=with_bias, **args)
    y, dense = naive_conv_transpose2d(x, w, b, effective=False, **args)
    y_eff, eff = naive_conv_transpose2d(x, w, b, effective=True, **args)
    assert c.output_shape == y.shape
    assert (c.mults, c.adds) == (dense.mults, dense.adds)
    assert (c.effective_mults, c.effective_adds) == (eff.mults, eff.adds)
    # counted over the input positions (fvcore / FlopCounterMode)
    assert c.mults == x.size * (co // g) * kh * kw
    _close(y_eff, y)
    if torch is not None:
        _close(y, F.conv_transpose2d(_t(x), _t(w), None if b is None else _t(b), **args).numpy())
    # transposed conv == grad_input of the matching conv2d (+ bias)
    if not with_bias and op == 0:
        back = cost.conv2d_backward(y.shape, w.shape, stride=s, padding=p, dilation=d, groups=g,
                                    needs=("input",))
        assert (back.mults, back.adds, back.effective_mults, back.effective_adds) == \
            (c.mults, c.adds, c.effective_mults, c.effective_adds)


# (N, C, H, W, kernel, stride, padding, dilation, ceil_mode)
MAXPOOL_CONFIGS = [
    (2, 2, 5, 6, 2, None, 0, 1, False),
    (1, 2, 5, 5, 3, 2, 1, 1, True),
    (1, 1, 7, 6, (3, 2), (2, 1), (1, 1), 1, True),
    (1, 2, 6, 7, 3, 2, 1, 2, False),
    (1, 1, 6, 5, 2, 3, 1, (1, 2), True),          # stride > kernel, ceil_mode overhang
    (1, 1, 2, 5, 2, 1, 1, 3, False),              # a window with no real tap
    (2, 1, 4, 4, 4, 1, 2, 1, False),              # kernel as large as the input
    (0, 2, 4, 4, 2, 2, 0, 1, True),
    (1, 2, 8, 8, 3, 3, 1, 1, True),
]


def _has_empty_window(arg, H, W):
    return any(wh is None or not (0 <= wh[0] < H and 0 <= wh[1] < W) for wh in arg.values())


@pytest.mark.parametrize("cfg", MAXPOOL_CONFIGS)
def test_max_pool2d_counts(cfg):
    n, ch, h, w, k, s, p, d, ceil = cfg
    x = _rng(5).uniform(-1, 1, (n, ch, h, w))
    args = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    c = cost.max_pool2d(x.shape, **args)
    cb = cost.max_pool2d_backward(x.shape, **args)
    y, arg_d, dense = naive_max_pool2d(x, k, s, p, d, ceil, effective=False)
    y_e, arg_e, eff = naive_max_pool2d(x, k, s, p, d, ceil, effective=True)
    assert c.output_shape == y.shape
    assert (c.mults, c.adds, c.comparisons) == (0, 0, dense.cmps)
    assert c.effective_comparisons == eff.cmps
    assert c.flops == c.comparisons
    kk = np.prod(_pair(k))
    assert c.comparisons == y.size * (kk - 1)
    np.testing.assert_array_equal(y, y_e)
    gy = _rng(6).uniform(-1, 1, y.shape)
    gx, bd = naive_max_pool2d_backward(gy, x.shape, arg_d, effective=False)
    gx_e, be = naive_max_pool2d_backward(gy, x.shape, arg_e, effective=True)
    assert (cb.mults, cb.adds, cb.comparisons) == (0, bd.adds, 0)
    assert (cb.effective_mults, cb.effective_adds) == (0, be.adds)
    assert cb.adds == y.size and cb.output_shape == x.shape
    _close(gx, gx_e)
    if torch is not None and not _has_empty_window(arg_e, h, w):
        xt = _t(x).requires_grad_()
        yt = F.max_pool2d(xt, k, s, p, d, ceil_mode=ceil)
        _close(y, yt.detach().numpy())
        yt.backward(_t(gy))
        _close(gx, xt.grad.numpy())
    elif torch is not None:   # torch gives -inf for an empty window, as the loop does
        _close(y, F.max_pool2d(_t(x), k, s, p, d, ceil_mode=ceil).numpy())


# (N, C, H, W, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVGPOOL_CONFIGS = [
    (2, 2, 5, 6, 2, None, 0, False, True, None),
    (1, 2, 5, 5, 3, 2, 1, True, True, None),
    (1, 2, 5, 5, 3, 2, 1, True, False, None),
    (1, 1, 7, 6, (3, 2), (2, 1), (1, 1), True, False, None),
    (1, 1, 6, 5, 2, 3, 1, True, True, None),      # stride > kernel, ceil_mode overhang
    (1, 2, 4, 4, 4, 1, 2, False, True, 3),
    (0, 2, 4, 4, 2, 2, 0, True, True, None),
    (1, 1, 8, 7, (2, 3), 3, (1, 1), True, False, 5),
]


@pytest.mark.parametrize("cfg", AVGPOOL_CONFIGS)
def test_avg_pool2d_counts(cfg):
    n, ch, h, w, k, s, p, ceil, cip, div = cfg
    x = _rng(7).uniform(-1, 1, (n, ch, h, w))
    args = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=cip,
                divisor_override=div)
    c = cost.avg_pool2d(x.shape, **args)
    cb = cost.avg_pool2d_backward(x.shape, **args)
    y, dense = naive_avg_pool2d(x, k, s, p, ceil, cip, div, effective=False)
    y_e, eff = naive_avg_pool2d(x, k, s, p, ceil, cip, div, effective=True)
    assert c.output_shape == y.shape
    assert (c.mults, c.adds, c.comparisons) == (dense.mults, dense.adds, 0)
    assert (c.effective_mults, c.effective_adds) == (eff.mults, eff.adds)
    kk = np.prod(_pair(k))
    assert c.mults == y.size and c.adds == y.size * (kk - 1)
    _close(y, y_e)
    gy = _rng(8).uniform(-1, 1, y.shape)
    gx, bd = naive_avg_pool2d_backward(gy, x.shape, k, s, p, ceil, cip, div, effective=False)
    gx_e, be = naive_avg_pool2d_backward(gy, x.shape, k, s, p, ceil, cip, div, effective=True)
    assert (cb.mults, cb.adds) == (bd.mults, bd.adds)
    assert (cb.effective_mults, cb.effective_adds) == (be.mults, be.adds)
    assert cb.output_shape == x.shape
    _close(gx, gx_e)
    if torch is not None:
        xt = _t(x).requires_grad_()
        yt = F.avg_pool2d(xt, k, s, p, ceil_mode=ceil, count_include_pad=cip, divisor_override=div)
        _close(y, yt.detach().numpy())
        yt.backward(_t(gy))
        _close(gx, xt.grad.numpy())


def _random_conv_cfg(rng):
    g = int(rng.integers(1, 4))
    c = g * int(rng.integers(1, 3))
    co = g * int(rng.integers(1, 3))
    k = tuple(int(v) for v in rng.integers(1, 4, 2))
    d = tuple(int(v) for v in rng.integers(1, 3, 2))
    s = tuple(int(v) for v in rng.integers(1, 4, 2))
    p = tuple(int(v) for v in rng.integers(0, 4, 2))
    span = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
    h = max(1, span[0] - 2 * p[0]) + int(rng.integers(0, 4))
    w = max(1, span[1] - 2 * p[1]) + int(rng.integers(0, 4))
    return (int(rng.integers(1, 3)), c, h, w, co, k[0], k[1], s, p, d, g)


@pytest.mark.parametrize("seed", range(12))
def test_conv_random_configs_counts(seed):
    """Random small configurations: forward and both backward parts."""
    cfg = _random_conv_cfg(_rng(100 + seed))
    x, w, b, kw = _conv_inputs(cfg, seed)
    c = cost.conv2d(x.shape, w.shape, bias=True, **kw)
    y, dense = naive_conv2d(x, w, b, effective=False, **kw)
    _, eff = naive_conv2d(x, w, None, effective=True, **kw)
    c0 = cost.conv2d(x.shape, w.shape, bias=False, **kw)
    assert (c.mults, c.adds) == (dense.mults, dense.adds)
    assert (c0.effective_mults, c0.effective_adds) == (eff.mults, eff.adds)
    gy = _rng(seed).uniform(-1, 1, y.shape)
    cb = cost.conv2d_backward(x.shape, w.shape, needs=("input", "weight"), **kw)
    _, gi = naive_conv2d_grad_input(gy, w, x.shape, effective=True, **kw)
    _, gw = naive_conv2d_grad_weight(gy, x, w.shape, effective=True, **kw)
    assert (cb.parts["input"].effective_adds, cb.parts["weight"].effective_adds) == (gi.adds, gw.adds)
    if torch is not None:
        _close(y, F.conv2d(_t(x), _t(w), _t(b), **kw).numpy())


def test_conv2d_zero_input_channels():
    # no terms at all: outputs are the bias (or zero) by assignment, nothing counted
    for bias in (False, True):
        c = cost.conv2d((2, 0, 4, 4), (3, 0, 3, 3), padding=1, bias=bias)
        assert c.output_shape == (2, 3, 4, 4)
        assert (c.mults, c.adds, c.effective_mults, c.effective_adds) == (0, 0, 0, 0)
    x, w, b = np.zeros((1, 0, 3, 3)), np.zeros((2, 0, 2, 2)), np.ones(2)
    y, ops = naive_conv2d(x, w, b, 1, 0, 1, 1, effective=False)
    assert (ops.mults, ops.adds) == (0, 0) and np.all(y == 1)


# ---------------------------------------------------------------- shapes vs PyTorch

def _torch_shape(fn, *a, **k):
    try:
        return tuple(fn(*a, **k).shape)
    except RuntimeError:
        return None


def _ours(fn, *a, **k):
    try:
        return fn(*a, **k).output_shape
    except ValueError:
        return None


@needs_torch
def test_output_shapes_match_torch_conv():
    """Random configurations, valid or not: same shape, or both refuse."""
    rng = _rng(11)
    checked = refused = 0
    for _ in range(200):
        g = int(rng.integers(1, 3))
        c, co = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
        h, w = (int(v) for v in rng.integers(1, 9, 2))
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        p = tuple(int(v) for v in rng.integers(0, 3, 2))
        if rng.random() < 0.15:
            p, s = ("same" if rng.random() < 0.7 else "valid"), (1, 1) if rng.random() < 0.8 else s
        x = torch.zeros(1, c, h, w)
        wt = torch.zeros(co, c // g, *k)
        ref = _torch_shape(F.conv2d, x, wt, None, s, p, d, g)
        got = _ours(cost.conv2d, x.shape, wt.shape, stride=s, padding=p, dilation=d, groups=g)
        assert got == ref, (c, h, w, co, k, s, p, d, g)
        checked += 1
        refused += ref is None
    assert 0 < refused < checked   # the grid covers both outcomes


@needs_torch
def test_output_shapes_match_torch_conv_transpose():
    rng = _rng(12)
    refused = 0
    for _ in range(200):
        g = int(rng.integers(1, 3))
        c, co = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
        h, w = (int(v) for v in rng.integers(1, 6, 2))
        k = tuple(int(v) for v in rng.integers(1, 4, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        p = tuple(int(v) for v in rng.integers(0, 4, 2))
        op = tuple(int(v) for v in rng.integers(0, 3, 2))
        x = torch.zeros(1, c, h, w)
        wt = torch.zeros(c, co // g, *k)
        ref = _torch_shape(F.conv_transpose2d, x, wt, None, s, p, op, g, d)
        if ref is not None and 0 in ref:
            # torch refuses a 0-sized output with groups=1 but lets one through with groups>1;
            # fastconv refuses it always
            assert g > 1
            ref = None
        got = _ours(cost.conv_transpose2d, x.shape, wt.shape, stride=s, padding=p,
                    output_padding=op, groups=g, dilation=d)
        assert got == ref, (c, h, w, co, k, s, p, op, d, g)
        refused += ref is None
    assert 0 < refused < 200


@needs_torch
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_output_shapes_match_torch_pool(kind):
    rng = _rng(13 if kind == "max" else 14)
    refused = 0
    for _ in range(250):
        h, w = (int(v) for v in rng.integers(1, 10, 2))
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        s = tuple(int(v) for v in rng.integers(1, 5, 2)) if rng.random() < 0.8 else None
        p = tuple(int(v) for v in rng.integers(0, 3, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2)) if kind == "max" else 1
        ceil = bool(rng.random() < 0.5)
        x = torch.zeros(1, 2, h, w)
        if kind == "max":
            ref = _torch_shape(F.max_pool2d, x, k, s, p, d, ceil_mode=ceil)
            got = _ours(cost.max_pool2d, x.shape, k, s, p, d, ceil_mode=ceil)
            got_b = _ours(cost.max_pool2d_backward, x.shape, k, s, p, d, ceil_mode=ceil)
        else:
            ref = _torch_shape(F.avg_pool2d, x, k, s, p, ceil_mode=ceil)
            got = _ours(cost.avg_pool2d, x.shape, k, s, p, ceil_mode=ceil)
            got_b = _ours(cost.avg_pool2d_backward, x.shape, k, s, p, ceil_mode=ceil)
        assert got == ref, (h, w, k, s, p, d, ceil)
        assert got_b == (None if ref is None else tuple(x.shape))
        refused += ref is None
    assert 0 < refused < 250


@needs_torch
def test_ceil_mode_last_window_rule():
    # (out-1)*stride >= in + pad would start the last window in the right padding: dropped
    for h, k, s, p in [(5, 2, 2, 0), (6, 3, 3, 1), (4, 2, 3, 1), (7, 3, 2, 1), (2, 2, 2, 1)]:
        ref = F.max_pool2d(torch.zeros(1, 1, h, h), k, s, p, ceil_mode=True).shape
        assert cost.max_pool2d((1, 1, h, h), k, s, p, ceil_mode=True).output_shape == tuple(ref)


# ---------------------------------------------------------------- bytes, footprint, intensity

@pytest.mark.parametrize("dtype,isz", [("float32", 4), ("float64", 8), (np.float32, 4)])
def test_bytes_and_intensity(dtype, isz):
    c = cost.conv2d((2, 3, 10, 12), (8, 3, 3, 3), stride=1, padding=1, bias=True, dtype=dtype)
    assert c.output_shape == (2, 8, 10, 12)
    assert c.bytes == {"input": 2 * 3 * 10 * 12 * isz, "weight": 8 * 27 * isz, "bias": 8 * isz,
                       "output": 2 * 8 * 10 * 12 * isz, "workspace": 0}
    assert c.footprint == sum(c.bytes.values())
    assert c.params == 8 * 27 + 8
    assert c.mults == 2 * 8 * 120 * 27 and c.adds == c.mults
    assert c.intensity == pytest.approx(c.flops / (c.footprint - c.workspace))
    assert c.dtype == np.dtype(dtype).name
    p = cost.max_pool2d((2, 3, 10, 12), 2, dtype=dtype)
    assert p.bytes == {"input": 720 * isz, "weight": 0, "bias": 0, "output": 180 * isz, "workspace": 0}
    assert p.intensity == pytest.approx(180 * 3 / (900 * isz))
    assert cost.conv2d((2, 3, 10, 12), (8, 3, 3, 3)).bytes["bias"] == 0


def test_backward_bytes_count_each_buffer_once():
    isz = 4
    x, w, y = 2 * 4 * 6 * 6 * isz, 6 * 2 * 9 * isz, 2 * 6 * 6 * 6 * isz
    c = cost.conv2d_backward((2, 4, 6, 6), (6, 2, 3, 3), padding=1, groups=2)
    # direct grad input's workspace: the weights rearranged (flipped, channel axes swapped)
    assert c.bytes == {"input": 2 * x, "weight": 2 * w, "bias": 6 * isz, "output": y, "workspace": w}
    assert c.parts["input"].bytes == {"input": x, "weight": w, "bias": 0, "output": y, "workspace": w}
    assert c.parts["weight"].workspace == 0
    assert c.parts["bias"].bytes == {"input": 0, "weight": 0, "bias": 6 * isz, "output": y,
                                     "workspace": 0}
    ci = cost.conv2d_backward((2, 4, 6, 6), (6, 2, 3, 3), padding=1, groups=2, needs=("input",))
    assert ci.bytes == {"input": x, "weight": w, "bias": 0, "output": y, "workspace": w}
    assert c.params == 6 * 2 * 9 + 6 and ci.params == 6 * 2 * 9


def test_workspace_comes_from_workspace_module(monkeypatch):
    calls = []

    def fake(algo, pass_, input_shape, weight_shape, output_shape, stride, padding, dilation,
             groups, itemsize, threads=None, limit=None):
        calls.append((algo, pass_, input_shape, weight_shape, output_shape, stride, padding,
                      dilation, groups, itemsize))
        return {"forward": 1000, "input": 200, "weight": 30}[pass_]

    monkeypatch.setattr(_workspace, "conv2d", fake)
    c = cost.conv2d((1, 4, 8, 8), (6, 2, 3, 3), stride=2, padding=1, groups=2, dtype="float64",
                    algo="im2col")
    assert c.workspace == c.bytes["workspace"] == 1000
    assert calls[-1] == ("im2col", "forward", (1, 4, 8, 8), (6, 2, 3, 3), (1, 6, 4, 4), (2, 2),
                         (1, 1), (1, 1), 2, 8)
    assert c.footprint == sum(v for k, v in c.bytes.items() if k != "workspace") + 1000
    b = cost.conv2d_backward((1, 4, 8, 8), (6, 2, 3, 3), padding=1, groups=2, algo="im2col")
    assert b.parts["input"].workspace == 200 and b.parts["weight"].workspace == 30
    assert b.parts["bias"].workspace == 0 and b.workspace == 230
    t = cost.conv_transpose2d((1, 6, 4, 4), (6, 2, 3, 3), stride=2, padding=1, output_padding=1,
                              groups=3, algo="im2col", dtype="float32")
    assert t.workspace == 200
    # the matching conv2d: its input is the transposed conv's output
    assert calls[-1] == ("im2col", "input", (1, 6, 8, 8), (6, 2, 3, 3), (1, 6, 4, 4), (2, 2),
                         (1, 1), (1, 1), 3, 4)


def test_direct_workspace_zero_and_unknown_algo():
    assert cost.conv2d((1, 3, 8, 8), (4, 3, 3, 3)).workspace == 0
    with pytest.raises(ValueError, match="algo"):
        cost.conv2d((1, 3, 8, 8), (4, 3, 3, 3), algo="nonsense")
    with pytest.raises(TypeError, match="algo"):
        cost.conv2d((1, 3, 8, 8), (4, 3, 3, 3), algo=3)


# ---------------------------------------------------------------- Cost object

def test_cost_object():
    c = cost.conv2d((1, 3, 8, 8), (4, 3, 3, 3), padding=1, bias=True)
    with pytest.raises(Exception):
        c.mults = 1          # frozen
    d = c.as_dict()
    for key in ("output_shape", "params", "mults", "adds", "macs", "flops", "bytes", "footprint",
                "intensity", "effective_mults", "effective_adds", "comparisons", "workspace"):
        assert key in d
    assert d["flops"] == c.flops and d["bytes"] == c.bytes and d["bytes"] is not c.bytes
    r = repr(c)
    assert "conv2d" in r and f"{c.mults:,}" in r
    b = cost.conv2d_backward((1, 3, 8, 8), (4, 3, 3, 3), padding=1)
    assert set(b.as_dict()["parts"]) == {"input", "weight", "bias"}
    m = cost.max_pool2d((1, 1, 4, 4), 2)
    assert m.flops == m.comparisons == 4 * 3 and m.effective_flops == 12
    assert "comparisons" in repr(m)


def test_unbatched_input_shape():
    a = cost.conv2d((3, 8, 8), (4, 3, 3, 3), padding=1)
    b = cost.conv2d((1, 3, 8, 8), (4, 3, 3, 3), padding=1)
    assert a.output_shape == (4, 8, 8) and a.mults == b.mults and a.adds == b.adds
    assert cost.max_pool2d((3, 8, 8), 2).output_shape == (3, 4, 4)


def test_large_shapes_are_exact_and_fast():
    # closed forms, independent of the sizes: a huge layer costs microseconds and no rounding
    c = cost.conv2d((1024, 512, 100000, 100000), (512, 512, 3, 3), padding=1, bias=True)
    outputs = 1024 * 512 * 100000 * 100000
    assert c.mults == outputs * 512 * 9 and c.adds == c.mults
    # effective: the border outputs miss taps; per axis 3*100000 - 2 valid (row, tap) pairs
    assert c.effective_mults == 1024 * 512 * 512 * (3 * 100000 - 2) ** 2
    cb = cost.conv2d_backward((2, 8, 10 ** 7, 10 ** 7), (8, 8, 5, 5), stride=3, padding=2)
    assert cb.parts["input"].mults == cost.conv2d((2, 8, 10 ** 7, 10 ** 7), (8, 8, 5, 5),
                                                  stride=3, padding=2).mults


# ---------------------------------------------------------------- receptive field

def test_receptive_field_textbook_examples():
    # Dang Ha The Hien, "A guide to receptive field arithmetic": two 3x3/2 convs with padding 1:
    # jump 2 then 4, size 3 then 7, centre of the first feature at pixel 0 (0.5 in his units)
    rf = cost.receptive_field([(3, 2, 1, 1), (3, 2, 1, 1)])
    assert rf == [(3, 2, 0), (7, 4, 0)]
    # VGG-16: conv5_3 sees 196 pixels, pool5 212, with jump 32
    vgg = []
    for convs in (2, 2, 3, 3, 3):
        vgg += [(3, 1, 1, 1)] * convs + [(2, 2, 1)]
    rf = cost.receptive_field(vgg)
    assert rf[-2].size == 196 and rf[-1].size == 212 and rf[-1].jump == 32
    # AlexNet: 195
    alex = [(11, 4, 1, 2), (3, 2, 1), (5, 1, 1, 2), (3, 2, 1), (3, 1, 1, 1), (3, 1, 1, 1),
            (3, 1, 1, 1), (3, 2, 1)]
    assert cost.receptive_field(alex)[-1][:2] == (195, 32)
    # dilation: three 3x3 convs with dilation 1, 2, 4 (WaveNet/DeepLab style): 3, 7, 15
    assert [r.size for r in cost.receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)])] == [3, 7, 15]
    # the DESIGN example, by hand: 5/2 p2 -> (5, 2, 0); 7/2 -> 5+6*2=17, 4, 0+3*2=6;
    # maxpool 2/2 -> 17+4=21, 8, 6+0.5*4=8
    assert cost.receptive_field([(5, 2, 1, 2), (7, 2, 1), (2, 2, 1)]) == \
        [(5, 2, 0), (17, 4, 6), (21, 8, 8)]


def test_receptive_field_pairs_and_half_starts():
    rf = cost.receptive_field([((3, 2), (2, 1), 1), (2, 2, (1, 3), (0, 1))])
    # H: k3 s2 -> (3, 2, 1); then k2 s2 d1: size 3+1*2=5, jump 4, start 1+0.5*2=2
    # W: k2 s1 -> (2, 1, 0.5); then k2 s2 d3 p1: size 2+3*1=5, jump 2, start 0.5+(1.5-1)*1=1
    assert rf[0] == ((3, 2), (2, 1), (1, 0.5))
    assert rf[1] == ((5, 5), (4, 2), (2, 1))
    assert cost.receptive_field([(2, 1, 1)])[0].start == 0.5


def test_receptive_field_bad_input():
    with pytest.raises(ValueError, match="layers\\[0\\]"):
        cost.receptive_field([(3, 1)])
    with pytest.raises(ValueError, match="stride"):
        cost.receptive_field([(3, 0, 1)])
    with pytest.raises(ValueError, match="kernel"):
        cost.receptive_field([(0, 1, 1)])
    with pytest.raises(TypeError):
        cost.receptive_field(5)


# ---------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("call,exc,word", [
    (lambda: cost.conv2d((1, 3, 8, 8), (4, 3, 3, 3), stride=0), ValueError, "stride"),
    (lambda: cost.conv2d((1, 3, 8, 8), (4, 3, 3, 3), stride=-1), ValueError, "stride"),
    (lambda: cost.conv2d((1, 3, 8, 8), (4, 3, 3, 3), dilation=0), ValueError, "dilation"),
    (lambda: cost.conv2d((1, 3, 8, 8), (4, 3, 3, 3), padding=-1), ValueError, "padding"),
    (lambda: cost.conv2d((1, 3, 8, 8), (4, 3, 3, 3), padding="full"), ValueError, "padding"),
    (lambda: cost.conv2d((1, 3, 8, 8), (4, 3, 3, 3), stride=2, padding="same"), ValueError, "same"),
    (lambda: cost.conv2d((1, 3, 8, 8), (4, 3, 0, 3)), ValueError, "kernel"),
    (lambda: cost.conv2d((1, 3, 8, 8), (4, 3, 9, 3)), ValueError, "kernel"),
    (lambda: cost.conv2d((1, 3, 8, 8), (4, 2, 3, 3)), ValueError, "channels"),
    (lambda: cost.conv2d((1, 4, 8, 8), (3, 2, 3, 3), groups=2), ValueError, "groups"),
    (lambda: cost.conv2d((1, 4, 8, 8), (4, 4, 3, 3), groups=0), ValueError, "groups"),
    (lambda: cost.conv2d((1, 3, 8), (4, 3, 3, 3)), ValueError, "input_shape"),
    (lambda: cost.conv2d((1, 3, 0, 8), (4, 3, 1, 1)), ValueError, "input_shape"),
    (lambda: cost.conv2d((1, -3, 8, 8), (4, 3, 3, 3)), ValueError, "input_shape"),
    (lambda: cost.conv2d((1, 3, 8, 8), (4, 3, 3)), ValueError, "weight_shape"),
    (lambda: cost.conv2d((1, 3, 8.0, 8), (4, 3, 3, 3)), TypeError, "input_shape"),
    (lambda: cost.conv2d("1x3x8x8", (4, 3, 3, 3)), TypeError, "input_shape"),
    (lambda: cost.conv2d((1, 3, 8, 8), (4, 3, 3, 3), stride=1.5), TypeError, "stride"),
    (lambda: cost.conv2d((1, 3, 8, 8), (4, 3, 3, 3), bias="yes"), TypeError, "bias"),
    (lambda: cost.conv2d((1, 3, 8, 8), (4, 3, 3, 3), dtype="int32"), TypeError, "dtype"),
    (lambda: cost.conv2d((1, 3, 8, 8), (4, 3, 3, 3), dtype="nonsense"), TypeError, "dtype"),
    (lambda: cost.conv2d_backward((1, 3, 8, 8), (4, 3, 3, 3), needs=("grad",)), ValueError, "needs"),
    (lambda: cost.conv_transpose2d((1, 3, 4, 4), (4, 3, 3, 3)), ValueError, "channels"),
    (lambda: cost.conv_transpose2d((1, 4, 4, 4), (4, 3, 3, 3), groups=3), ValueError, "groups"),
    (lambda: cost.conv_transpose2d((1, 3, 4, 4), (3, 3, 3, 3), stride=2, output_padding=2),
     ValueError, "output_padding"),
    (lambda: cost.conv_transpose2d((1, 3, 1, 1), (3, 3, 1, 1), padding=1), ValueError, "small"),
    (lambda: cost.max_pool2d((1, 3, 8, 8), 0), ValueError, "kernel_size"),
    (lambda: cost.max_pool2d((1, 3, 8, 8), 2, stride=0), ValueError, "stride"),
    (lambda: cost.max_pool2d((1, 3, 8, 8), 3, padding=2), ValueError, "padding"),
    (lambda: cost.max_pool2d((1, 3, 2, 2), 5, 1, 1), ValueError, "small"),
    (lambda: cost.max_pool2d((1, 3, 8, 8), 2, dilation=0), ValueError, "dilation"),
    (lambda: cost.max_pool2d((1, 3, 8, 8), 2, ceil_mode="no"), TypeError, "ceil_mode"),
    (lambda: cost.avg_pool2d((1, 3, 8, 8), 2, divisor_override=0), ValueError, "divisor_override"),
    (lambda: cost.avg_pool2d((1, 3, 8, 8), 2, count_include_pad=None), TypeError, "count_include_pad"),
    (lambda: cost.avg_pool2d_backward((1, 3, 8, 8), 2, padding=(0, 2)), ValueError, "padding"),
    (lambda: cost.max_pool2d_backward((1, 3, 8, 8), (2, 2, 2)), ValueError, "kernel_size"),
])
def test_bad_arguments(call, exc, word):
    with pytest.raises(exc, match=word):
        call()


def test_cost_module_imports_no_kernels():
    """cost.py (and what it imports from fastconv) stays pure Python at import time."""
    import ast
    import pathlib
    import fastconv
    root = pathlib.Path(fastconv.__file__).parent
    for name in ("cost", "_workspace", "_args", "summary", "_layers"):
        tree = ast.parse((root / f"{name}.py").read_text())
        for node in tree.body:      # module-level imports only
            if isinstance(node, ast.ImportFrom):
                names = {a.name for a in node.names} | {node.module or ""}
            elif isinstance(node, ast.Import):
                names = {a.name for a in node.names}
            else:
                continue
            assert not names & {"_kernels", "config", "fastconv._kernels", "fastconv.config"}, \
                (name, names)


@pytest.mark.parametrize("seed", range(10))
def test_pool_and_transpose_random_configs_counts(seed):
    rng = _rng(200 + seed)
    # pooling: random valid configuration (padding <= kernel//2, output >= 1)
    k = tuple(int(v) for v in rng.integers(1, 4, 2))
    s = tuple(int(v) for v in rng.integers(1, 4, 2))
    p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
    d = tuple(int(v) for v in rng.integers(1, 3, 2))
    ceil = bool(seed % 2)
    h, w = ((kk - 1) * dd + 1 + int(rng.integers(0, 4)) for kk, dd in zip(k, d))
    x = rng.uniform(-1, 1, (1, 2, h, w))
    c = cost.max_pool2d(x.shape, k, s, p, d, ceil)
    _, arg, dense = naive_max_pool2d(x, k, s, p, d, ceil, effective=False)
    _, arg_e, eff = naive_max_pool2d(x, k, s, p, d, ceil, effective=True)
    assert (c.comparisons, c.effective_comparisons) == (dense.cmps, eff.cmps)
    cb = cost.max_pool2d_backward(x.shape, k, s, p, d, ceil)
    gy = rng.uniform(-1, 1, c.output_shape)
    _, be = naive_max_pool2d_backward(gy, x.shape, arg_e, effective=True)
    assert cb.effective_adds == be.adds
    cip = bool(seed % 3)
    a = cost.avg_pool2d(x.shape, k, s, p, ceil, cip)
    ab = cost.avg_pool2d_backward(x.shape, k, s, p, ceil, cip)
    y, ad = naive_avg_pool2d(x, k, s, p, ceil, cip, None, effective=False)
    _, ae = naive_avg_pool2d(x, k, s, p, ceil, cip, None, effective=True)
    assert (a.mults, a.adds, a.effective_mults, a.effective_adds) == (ad.mults, ad.adds, ae.mults, ae.adds)
    gy = rng.uniform(-1, 1, y.shape)
    _, bd = naive_avg_pool2d_backward(gy, x.shape, k, s, p, ceil, cip, None, effective=False)
    _, be = naive_avg_pool2d_backward(gy, x.shape, k, s, p, ceil, cip, None, effective=True)
    assert (ab.adds, ab.effective_adds) == (bd.adds, be.adds)
    if torch is not None:
        _close(y, F.avg_pool2d(_t(x), k, s, p, ceil_mode=ceil, count_include_pad=cip).numpy())
    # transposed convolution: random valid configuration
    g = int(rng.integers(1, 3))
    ci, co = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
    op = tuple(int(rng.integers(0, max(ss, dd))) for ss, dd in zip(s, d))
    xt = rng.uniform(-1, 1, (1, ci, 1 + int(rng.integers(0, 3)), 1 + int(rng.integers(0, 3))))
    # padding up to what keeps the output at least 1 wide (the model's refusal is tested elsewhere)
    room = [(xx - 1) * ss + dd * (kk - 1) + oo for xx, ss, dd, kk, oo in zip(xt.shape[2:], s, d, k, op)]
    pt = tuple(int(rng.integers(0, min(3, r // 2 + 1))) for r in room)
    wt = rng.uniform(-1, 1, (ci, co // g) + k)
    args = dict(stride=s, padding=pt, output_padding=op, dilation=d, groups=g)
    ct = cost.conv_transpose2d(xt.shape, wt.shape, bias=True, **args)
    bt = rng.uniform(-1, 1, co)
    yt, td = naive_conv_transpose2d(xt, wt, bt, effective=False, **args)
    _, te = naive_conv_transpose2d(xt, wt, bt, effective=True, **args)
    assert (ct.mults, ct.adds, ct.effective_mults, ct.effective_adds) == \
        (td.mults, td.adds, te.mults, te.adds)
    if torch is not None:
        _close(yt, F.conv_transpose2d(_t(xt), _t(wt), _t(bt), **args).numpy())
