"""Workspace bytes each convolution algorithm allocates, in pure Python.

The cost model (cost.py) reports these numbers and the tests check them
against the bytes the C kernels really allocate (returned by every
_kernels call), so the two must agree exactly.
"""


def conv2d(algo, pass_, input_shape, weight_shape, output_shape, stride, padding, dilation,
           groups, itemsize, threads=None, limit=None):
    """Bytes of workspace for one conv call.

    Parameters
    ----------
    algo : str
        ``"direct"``, ``"im2col"`` or ``"dilated"``.
    pass_ : str
        ``"forward"``, ``"input"`` (grad input / transposed conv) or ``"weight"``.
    input_shape, weight_shape, output_shape : tuple of int
        The forward convolution's NCHW input, weight and output shapes.
    stride, padding, dilation : tuple of (int, int)
    groups, itemsize : int
    threads, limit : int or None
        Kernel threads and workspace limit in bytes; None means the current
        ``fastconv.config`` settings.
    """
    if algo == "direct":
        return 0
    if algo == "dilated":
        return _dilated(pass_, input_shape, weight_shape, output_shape, stride, padding, dilation,
                        groups, itemsize, threads, limit)
    raise ValueError(f"algo={algo!r}: no workspace model for this algorithm")


def _dilated(pass_, input_shape, weight_shape, output_shape, stride, padding, dilation, groups,
             itemsize, threads, limit):
    """Workspace of the space-to-batch dilated convolution (csrc/conv_dilated.c).

    Per axis, P = dilation / gcd(stride, dilation) classes of q = ceil(out / P)
    outputs, each reading a sub-image of (q - 1) * (stride / gcd) + k positions.
    The stacked sub-inputs (n*Ph*Pw, c_in, hs, ws) and sub-outputs
    (n*Ph*Pw, c_out, qh, qw) are allocated for every pass, plus whatever the
    dense convolution over them allocates.  Nothing is allocated when the
    result is empty or when n, c_in, c_out or the output size is zero.
    """
    from math import gcd

    n, c_in, h_in, w_in = (int(v) for v in input_shape)
    c_out, _, kh, kw = (int(v) for v in weight_shape)
    h_out, w_out = int(output_shape[2]), int(output_shape[3])
    result = {"forward": n * c_out * h_out * w_out,
              "input": n * c_in * h_in * w_in,
              "weight": c_out * (c_in // groups) * kh * kw}[pass_]
    if result == 0 or min(n, c_in, c_out, h_out, w_out) == 0:
        return 0
    gemm = _dilated_gemm(input_shape, weight_shape, output_shape, stride, padding, dilation, groups,
                         pass_)
    if gemm is not None:
        return gemm * itemsize
    axes = []
    for out, k, s, d in ((h_out, kh, stride[0], dilation[0]), (w_out, kw, stride[1], dilation[1])):
        g = gcd(int(s), int(d))
        p, ds = int(d) // g, int(s) // g
        q = -(-out // p)
        axes.append((p, q, (q - 1) * ds + k, ds))
    (ph, qh, hs, sh2), (pw, qw, ws, sw2) = axes
    b = n * ph * pw
    nested = conv2d("direct", pass_, (b, c_in, hs, ws), weight_shape, (b, c_out, qh, qw),
                    (sh2, sw2), (0, 0), (1, 1), groups, itemsize, threads, limit)
    return (b * c_in * hs * ws + b * c_out * qh * qw) * itemsize + nested


_INT_MAX = 2**31 - 1


def _dilated_gemm(input_shape, weight_shape, output_shape, stride, padding, dilation, groups,
                  pass_="input"):
    """Elements the dilated algorithm's GEMM path allocates, or None when it is not used.

    The GEMM path (a BLAS is loaded, at least 8 channels per group, BLAS
    int sizes) keeps, per kernel column b, the band of C_b output columns
    whose tap reads real input: a column-shifted copy of one image
    (c_in * stride_h * ceil(h_in / stride_h) * C_b elements) and, when the
    band is not the whole row, a (c_out, h_out, C_b) temporary; plus one
    weight-sized buffer.  A single-row input with unit column stride is used
    in place (no copies), and its backward passes need no temporaries.
    """
    from . import _kernels

    if not _kernels.get_runtime()["blas"]:
        return None
    n, c_in, h_in, w_in = (int(v) for v in input_shape)
    c_out, cig, kh, kw = (int(v) for v in weight_shape)
    h_out, w_out = int(output_shape[2]), int(output_shape[3])
    cog = c_out // groups
    if cig < 8 or cog < 8:
        return None
    sh, sw = int(stride[0]), int(stride[1])
    pw, dw = int(padding[1]), int(dilation[1])
    rows = sh * (-(-h_in // sh))
    if max(rows * w_out, h_out * w_out, w_in, cog, kw * cig) > _INT_MAX:
        return None
    copies = temps = 0
    for b in range(kw):
        lo = max(0, -((b * dw - pw) // sw))              # first column reading x
        hi = min(w_out, -((b * dw - pw - w_in) // sw))   # one past the last
        cb = max(0, hi - lo)
        copies += c_in * rows * cb
        if cb != w_out:
            temps += c_out * h_out * cb
    if h_in == 1 and sw == 1:   # x used in place; backward reads grad_out rows in place
        copies = 0
        if pass_ != "forward":
            temps = 0
    return copies + temps + c_out * cig * kh * kw
