"""Slow, obviously-correct float64 NumPy reference for every fastconv op.

This module is the test oracle.  It is written for clarity, not speed: every
function computes in float64, loops over kernel taps or pooling windows in
the plainest way, and follows PyTorch's documented semantics (output-size
formulas, ceil_mode, count_include_pad, divisor_override, max-pool NaN
propagation and tie-breaking).  It validates nothing beyond what it needs;
argument checking is the job of the fast API.

All arrays are NCHW.  Int-or-pair arguments take an int or a 2-tuple.
"""
import numpy as np

__all__ = [
    "conv2d", "conv2d_backward", "conv_transpose2d", "compose",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "conv_output_size", "pool_output_size", "same_padding",
]


def _pair(v):
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


# ---------------------------------------------------------------- sizes

def conv_output_size(size, kernel, stride, pad_begin, pad_end, dilation):
    """PyTorch's convolution output size along one axis."""
    return (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1


def pool_output_size(size, kernel, stride, pad, dilation, ceil_mode):
    """PyTorch's pooling output size along one axis (pooling_output_shape).

    With ceil_mode the division rounds up, but the last window must start
    inside the input or the left padding, otherwise it is dropped.
    """
    numerator = size + 2 * pad - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-numerator // stride) + 1
        if (out - 1) * stride >= size + pad:
            out -= 1
    else:
        out = numerator // stride + 1
    return out


def same_padding(kernel, dilation):
    """(begin, end) padding of PyTorch's padding='same' for one axis (stride 1)."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def _conv_padding(padding, kernel, dilation):
    """((top, bottom), (left, right)) for an int, pair, 'same' or 'valid'."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            return same_padding(kernel[0], dilation[0]), same_padding(kernel[1], dilation[1])
        raise ValueError(f"padding={padding!r}")
    ph, pw = _pair(padding)
    return (ph, ph), (pw, pw)


def _tap_slice(start, count, step):
    """Slice picking `count` elements from `start` every `step`."""
    return slice(start, start + (count - 1) * step + 1, step)


# ---------------------------------------------------------------- convolution

def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation as torch.nn.functional.conv2d, in float64.

    y[n, o, i, j] = bias[o] + sum_{c, a, b} w[o, c, a, b] *
                    xpad[n, g*Cg + c, i*sh + a*dh, j*sw + b*dw]
    where g is the group of output channel o and Cg = C_in / groups.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    n, c_in, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    (pt, pb), (pl, pr) = _conv_padding(padding, (kh, kw), (dh, dw))
    ho = conv_output_size(h, kh, sh, pt, pb, dh)
    wo = conv_output_size(wd, kw, sw, pl, pr, dw)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    og = c_out // groups
    y = np.zeros((n, c_out, ho, wo))
    for g in range(groups):
        xg = xp[:, g * cg:(g + 1) * cg]
        wg = w[g * og:(g + 1) * og]
        for a in range(kh):
            for b in range(kw):
                patch = xg[:, :, _tap_slice(a * dh, ho, sh), _tap_slice(b * dw, wo, sw)]
                y[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, wg[:, :, a, b])
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return y


def conv2d_backward(grad_out, x, w, stride=1, padding=0, dilation=1, groups=1,
                    needs=("input", "weight", "bias")):
    """Gradients of conv2d with respect to x, w and bias, in float64.

    Returns (grad_x, grad_w, grad_b) with None where not in `needs`.
    grad_x scatters every output gradient back through every tap (taps on
    padding are dropped by cropping the padded gradient); grad_w correlates
    the output gradient with the input patch of each tap.
    """
    gy = np.asarray(grad_out, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    n, c_in, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    (pt, pb), (pl, pr) = _conv_padding(padding, (kh, kw), (dh, dw))
    ho, wo = gy.shape[2], gy.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    og = c_out // groups
    gxp = np.zeros_like(xp) if "input" in needs else None
    gw = np.zeros_like(w) if "weight" in needs else None
    for g in range(groups):
        cs, os_ = slice(g * cg, (g + 1) * cg), slice(g * og, (g + 1) * og)
        for a in range(kh):
            for b in range(kw):
                rows, cols = _tap_slice(a * dh, ho, sh), _tap_slice(b * dw, wo, sw)
                if gxp is not None:
                    gxp[:, cs, rows, cols] += np.einsum("nohw,oc->nchw", gy[:, os_], w[os_, :, a, b])
                if gw is not None:
                    gw[os_, :, a, b] += np.einsum("nohw,nchw->oc", gy[:, os_], xp[:, cs, rows, cols])
    gx = None
    if gxp is not None:
        gx = gxp[:, :, pt:pt + h, pl:pl + wd].copy()
    gb = gy.sum(axis=(0, 2, 3)) if "bias" in needs else None
    return gx, gw, gb


def conv_transpose2d(x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution as torch.nn.functional.conv_transpose2d, in float64.

    Weight layout (C_in, C_out/groups, kH, kW).  Every input element scatters
    x[n, c, i, j] * w[c, o, a, b] to full[n, o, i*sh + a*dh, j*sw + b*dw];
    the output is `full` cropped by `padding` on both sides, with
    `output_padding` extra rows/columns kept at the bottom/right.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    n, c_in, h, wd = x.shape
    _, og, kh, kw = w.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    oph, opw = _pair(output_padding)
    dh, dw = _pair(dilation)
    ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    wo = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    full_h = (h - 1) * sh + dh * (kh - 1) + 1 + oph
    full_w = (wd - 1) * sw + dw * (kw - 1) + 1 + opw
    cg = c_in // groups
    full = np.zeros((n, og * groups, full_h, full_w))
    for g in range(groups):
        cs, os_ = slice(g * cg, (g + 1) * cg), slice(g * og, (g + 1) * og)
        for a in range(kh):
            for b in range(kw):
                full[:, os_, _tap_slice(a * dh, h, sh), _tap_slice(b * dw, wd, sw)] += \
                    np.einsum("nchw,co->nohw", x[:, cs], w[cs, :, a, b])
    y = full[:, :, ph:ph + ho, pw:pw + wo].copy()
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return y


def compose(w1, w2):
    """One kernel equal to conv2d(conv2d(x, w1), w2) (stride 1, no padding, no bias).

    Cross-correlations compose by full convolution of their kernels along the
    taps: W[p, q, a, b] = sum_{c, i+k=a, j+l=b} w2[p, c, i, j] * w1[c, q, k, l].
    """
    w1 = np.asarray(w1, dtype=np.float64)
    w2 = np.asarray(w2, dtype=np.float64)
    c1, c0, k1h, k1w = w1.shape
    c2, _, k2h, k2w = w2.shape
    out = np.zeros((c2, c0, k1h + k2h - 1, k1w + k2w - 1))
    for i in range(k2h):
        for j in range(k2w):
            out[:, :, i:i + k1h, j:j + k1w] += np.einsum("pc,cqkl->pqkl", w2[:, :, i, j], w1)
    return out


# ---------------------------------------------------------------- pooling

def _pool_params(kernel_size, stride, padding, dilation=1):
    kh, kw = _pair(kernel_size)
    sh, sw = (kh, kw) if stride is None else _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    return kh, kw, sh, sw, ph, pw, dh, dw


def _max_pool_argmax(x, kernel_size, stride, padding, dilation, ceil_mode):
    """(values, flat indices into each H*W plane), PyTorch's CPU semantics.

    For each window the taps are visited in row-major order; a tap replaces
    the running maximum when it is greater or NaN (so the result is NaN if
    any tap is NaN, and the first maximum wins among equal values).
    """
    x = np.asarray(x, dtype=np.float64)
    n, c, h, wd = x.shape
    kh, kw, sh, sw, ph, pw, dh, dw = _pool_params(kernel_size, stride, padding, dilation)
    ho = pool_output_size(h, kh, sh, ph, dh, ceil_mode)
    wo = pool_output_size(wd, kw, sw, pw, dw, ceil_mode)
    y = np.empty((n, c, ho, wo))
    idx = np.empty((n, c, ho, wo), dtype=np.int64)
    for i in range(ho):
        for j in range(wo):
            best = np.full((n, c), -np.inf)
            # The index starts at the first tap at or past the top-left
            # corner of the input; with dilation a window can lie wholly in
            # the padding, and PyTorch then reports -inf with this index.
            r_first, c_first = i * sh - ph, j * sw - pw
            while r_first < 0:
                r_first += dh
            while c_first < 0:
                c_first += dw
            arg = np.full((n, c), r_first * wd + c_first, dtype=np.int64)
            for a in range(kh):
                r = i * sh - ph + a * dh
                if r < 0 or r >= h:
                    continue
                for b in range(kw):
                    q = j * sw - pw + b * dw
                    if q < 0 or q >= wd:
                        continue
                    v = x[:, :, r, q]
                    take = (v > best) | np.isnan(v)
                    best = np.where(take, v, best)
                    arg = np.where(take, r * wd + q, arg)
            y[:, :, i, j] = best
            idx[:, :, i, j] = arg
    return y, idx


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max pooling as torch.nn.functional.max_pool2d (values in float64)."""
    y, idx = _max_pool_argmax(x, kernel_size, stride, padding, dilation, ceil_mode)
    return (y, idx) if return_indices else y


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, indices=None):
    """Gradient of max pooling: each output gradient goes to its argmax.

    Uses `indices` when given, otherwise recomputes the argmax from x.
    Overlapping windows that share an argmax accumulate.
    """
    x = np.asarray(x, dtype=np.float64)
    gy = np.asarray(grad_out, dtype=np.float64)
    if indices is None:
        _, indices = _max_pool_argmax(x, kernel_size, stride, padding, dilation, ceil_mode)
    n, c, h, wd = x.shape
    gx = np.zeros((n, c, h * wd))
    flat_idx = np.asarray(indices).reshape(n, c, -1)
    flat_gy = gy.reshape(n, c, -1)
    # A window lying wholly in the padding (possible with dilation) holds no
    # input element: its output is a constant -inf and its gradient goes
    # nowhere, whatever placeholder index it carries.
    kh, kw, sh, sw, ph, pw, dh, dw = _pool_params(kernel_size, stride, padding, dilation)
    ho, wo = gy.shape[2], gy.shape[3]
    rows_ok = np.array([any(0 <= i * sh - ph + a * dh < h for a in range(kh)) for i in range(ho)], bool)
    cols_ok = np.array([any(0 <= j * sw - pw + b * dw < wd for b in range(kw)) for j in range(wo)], bool)
    inside = np.broadcast_to((rows_ok[:, None] & cols_ok[None, :]).reshape(-1), flat_idx.shape)
    for b in range(n):
        for ch in range(c):
            keep = inside[b, ch]
            np.add.at(gx[b, ch], flat_idx[b, ch][keep], flat_gy[b, ch][keep])
    return gx.reshape(n, c, h, wd)


def _avg_windows(h, wd, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Yield (i, j, row slice, col slice, divisor) for every output of avg pooling.

    PyTorch clips the window to the padded extent [-pad, size+pad) to get the
    count_include_pad divisor, then to the input for the sum.
    """
    kh, kw, sh, sw, ph, pw, _, _ = _pool_params(kernel_size, stride, padding)
    ho = pool_output_size(h, kh, sh, ph, 1, ceil_mode)
    wo = pool_output_size(wd, kw, sw, pw, 1, ceil_mode)
    for i in range(ho):
        r0 = i * sh - ph
        r1 = min(r0 + kh, h + ph)
        for j in range(wo):
            c0 = j * sw - pw
            c1 = min(c0 + kw, wd + pw)
            padded_count = (r1 - r0) * (c1 - c0)
            rr0, rr1, cc0, cc1 = max(r0, 0), min(r1, h), max(c0, 0), min(c1, wd)
            if divisor_override:
                div = divisor_override
            elif count_include_pad:
                div = padded_count
            else:
                div = (rr1 - rr0) * (cc1 - cc0)
            yield i, j, slice(rr0, rr1), slice(cc0, cc1), div


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling as torch.nn.functional.avg_pool2d (float64)."""
    x = np.asarray(x, dtype=np.float64)
    n, c, h, wd = x.shape
    kh, kw, sh, sw, ph, pw, _, _ = _pool_params(kernel_size, stride, padding)
    ho = pool_output_size(h, kh, sh, ph, 1, ceil_mode)
    wo = pool_output_size(wd, kw, sw, pw, 1, ceil_mode)
    y = np.zeros((n, c, ho, wo))
    for i, j, rows, cols, div in _avg_windows(h, wd, kernel_size, stride, padding, ceil_mode,
                                              count_include_pad, divisor_override):
        y[:, :, i, j] = x[:, :, rows, cols].sum(axis=(2, 3)) / div
    return y


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Gradient of average pooling: each output gradient spread over its window / divisor."""
    gy = np.asarray(grad_out, dtype=np.float64)
    n, c, h, wd = input_shape
    gx = np.zeros((n, c, h, wd))
    for i, j, rows, cols, div in _avg_windows(h, wd, kernel_size, stride, padding, ceil_mode,
                                              count_include_pad, divisor_override):
        gx[:, :, rows, cols] += (gy[:, :, i, j] / div)[:, :, None, None]
    return gx
