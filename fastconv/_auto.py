"""``algo="auto"``: pick a convolution algorithm from the layer's geometry.

A cost-model heuristic fitted to measurements on AVX2 machines
(``fastconv bench``): GEMM-based algorithms win when both channel counts per
group are large enough to fill a BLAS micro-tile; fastconv's own direct
kernels win for depthwise, few-channel and first layers, and the AVX2 direct
forward kernel matches or beats GEMM on dense layers without the im2col copy.
Dilated layers go to the space-to-batch algorithm, which skips taps that
only read padding.
"""

# Both per-group channel counts must reach this for GEMM to pay (measured:
# below it, BLAS micro-tiles run mostly empty).
_GEMM_MIN_CHANNELS = 8


def choose(op, shape, available, isa):
    """Algorithm name for one call.

    Parameters
    ----------
    op : str
        ``"conv2d"``, ``"conv2d_backward"`` or ``"conv_transpose2d"``.
    shape : tuple
        The C conv shape tuple of the forward convolution
        ``(n, c_in, h_in, w_in, c_out, kh, kw, h_out, w_out, sh, sw, ph, pw, dh, dw, groups)``.
    available : sequence of str
        Algorithms usable for ``op`` in this process.
    isa : str
        ``"avx2"`` or ``"baseline"``.
    """
    (n, c_in, h_in, w_in, c_out, kh, kw, h_out, w_out, sh, sw, ph, pw, dh, dw, g) = shape
    cg, og = c_in // g, c_out // g
    gemm_ok = "im2col" in available and cg >= _GEMM_MIN_CHANNELS and og >= _GEMM_MIN_CHANNELS
    if not gemm_ok:
        return "direct"
    if (dh, dw) != (1, 1) and "dilated" in available:
        return "dilated"
    if op == "conv2d" and isa == "avx2" and _direct_avx2_wins(kh, kw, sh, sw, cg, og):
        return "direct"
    return "im2col"


def _direct_avx2_wins(kh, kw, sh, sw, cg, og):
    """Forward layers where the AVX2 direct kernel beats im2col + GEMM."""
    if kh == 1 and kw == 1 and sh == 1 and sw == 1:
        return False  # a 1x1 stride-1 im2col is a bare GEMM on x, no copy
    return True
