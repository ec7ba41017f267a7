"""``algo="auto"``: pick a convolution algorithm from the layer's geometry.

A cost-model heuristic fitted to measurements on an AVX2 machine (1 thread,
ResNet/VGG/MobileNet layers, see README's performance section): GEMM-based
algorithms win when both channel counts per group are large enough to fill
a BLAS micro-tile (im2col forward ran 1.1-2.4x faster than the direct
kernel on every such layer measured, 1x1 included); fastconv's own direct
kernels win for depthwise, few-channel and first layers.  Dilated layers go
to the space-to-batch algorithm, which skips taps that only read padding.
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
        ``"avx2"`` or ``"baseline"`` (no rule depends on it yet: im2col beat
        the direct kernel on GEMM-sized layers on both paths).
    """
    c_in, c_out = shape[1], shape[4]
    dh, dw, g = shape[13], shape[14], shape[15]
    cg, og = c_in // g, c_out // g
    gemm_ok = "im2col" in available and cg >= _GEMM_MIN_CHANNELS and og >= _GEMM_MIN_CHANNELS
    if not gemm_ok:
        return "direct"
    if (dh, dw) != (1, 1) and "dilated" in available:
        return "dilated"
    return "im2col"
