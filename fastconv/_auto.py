"""``algo="auto"``: pick a convolution algorithm from the layer's geometry.

A cost-model heuristic: a short decision list per pass over shape features:
channels per group ``cg``/``og``, taps ``k = kH*kW``, GEMM depth
``K = cg*k``, stride, output pixels ``P = N*H_out*W_out``, a group's weight
bytes (``og*cg*k*itemsize``: does it stay in L2?) and the fraction of dense
taps that read padding (``_pad_fraction``; what the space-to-batch
``dilated`` algorithm skips).  Every number the lists compare against lives
in one table, ``RULES`` (with float64 and baseline-ISA overrides), fitted on the
TRAIN suite of ``bench/bench_auto.py`` (1 thread, AVX2) and measured on its
held-out suites (ResNet/VGG/MobileNet/DeepLab; EfficientNet/ResNeXt/
Inception/ESPNet).  When the kernels change, rerun
``bench/bench_auto.py --suite train --json F`` (two or three runs) and
``--fit F1 F2 ...`` and paste the printed table here.

What the measurements say (the why behind the rules):

* forward: fastconv's direct kernels win for depthwise, few-channel and
  grouped layers, for dense stride-1 layers whose weights fit L2 on images
  up to ``fwd_direct_max_pixels`` and for thin 1x1 layers; im2col (BLAS
  GEMM) wins on strided layers, wide layers and large images; ``dilated``
  wins when many taps read padding (ASPP rates on small maps) and on wide
  dilated layers with large outputs.
* backward (grad input + grad weight): the direct grad-weight kernel is
  5-20x slower than GEMM on dense layers, so direct only serves depthwise
  layers (on large or tiny planes); im2col serves most layers; ``dilated``'s
  GEMM path (one GEMM per tap, no column buffer) wins for narrow layers
  (8 to ``bwd_dilated_max_cg`` channels, no groups), large stride-1 kernels
  and padding-heavy dilations.
* direct backward (AVX2; bench_im2col.py timings, not yet refitted): the
  forward-kernel grad input and register-blocked grad weight beat im2col
  by 1.05-1.35x on dense layers from about 256 output pixels, so
  ``conv2d_backward`` picks it there (``bwd_direct_*``).
* grad input alone (``conv_transpose2d``): the backward rules, minus direct.

Tables: ``RULES`` (float32, AVX2), ``RULES_F64`` (float64 overrides),
``RULES_ISA["baseline"]`` (portable-kernel overrides, forward only);
``rules_for(dtype, isa)`` combines them.  ``threads`` is an input but no
rule uses it yet (two-thread timings on the shared development machine were
too noisy to fit); tuning mode keys on it.
"""

#: Thresholds of the decision lists (fitted; see the module docstring).
RULES = {
    # forward (conv2d)
    "fwd_grouped_direct_max_cg": 1 << 20,  # grouped, not depthwise: im2col above this cg
    "fwd_few_channels": 8,          # min(cg, og) below this: direct, except ...
    "fwd_first_im2col_K": 256,      # ... GEMM depth K = cg*k this deep with og >= 32: im2col (AlexNet conv1)
    "fwd_few_dilated_min_k": 49,    # ... strided stems with this many taps: dilated (7x7/2 stems)
    "fwd_dilated_pad": 0.2,         # "dilated" when this fraction of dense taps reads padding ...
    "fwd_dilated_wide_pixels": 1600,  # ... or from 2, with weights over L2 and this many outputs
    "fwd_direct_max_wkib": 192,     # stride 1: direct only while a group's weights (KiB) fit L2 ...
    "fwd_direct_max_pixels": 8192,  # ... and (kxk) N*H_out*W_out <= this (larger images: GEMM)
    "fwd_1x1_direct_pixels": 1024,   # 1x1: direct when this <= N*H_out*W_out ...
    "fwd_1x1_max_pixels": 2304,     # ... <= this, or at any size when cg*og <= this:
    "fwd_1x1_thin": 1024,           # a GEMM this thin runs memory-bound in the BLAS
    # backward (grad input + grad weight) and conv_transpose2d (grad input)
    "bwd_dw_direct_pixels": 2048,   # depthwise: direct on planes of N*H_out*W_out >= this ...
    "bwd_dw_small_pixels": 64,      # ... or, at stride 1, <= this; im2col in between
    "bwd_dilated_pad": 0.05,        # "dilated" when this fraction of dense taps reads padding
    "bwd_dilated_max_cg": 12,       # narrow layers (8 <= cg <= this): "dilated"
    "bwd_dilated_min_k": 25,        # stride-1 kernels with this many taps ...
    "bwd_dilated_k_pixels": 512,    # ... on at least this many output pixels: "dilated"
    "bwd_direct_min_c": 8,          # conv2d_backward, AVX2/AVX-512: "direct" with >= this many channels
    "bwd_direct_min_pixels": 256,   # ... per group (in and out) on >= this many N*H_out*W_out
}

#: float64 overrides of RULES (fitted on float64 training timings: the
#: column buffers of im2col move twice the bytes, the direct kernels half
#: the lanes).
RULES_F64 = dict(RULES, **{
    "fwd_few_dilated_min_k": 81,
    "fwd_direct_max_wkib": 512,
    "fwd_1x1_direct_pixels": 1 << 40,   # float64 1x1: im2col (the BLAS) at every size
    "fwd_1x1_thin": 0,
    "bwd_dw_direct_pixels": 1024,
    "bwd_dw_small_pixels": 64,
    "bwd_dilated_pad": 0.1,
})


#: Overrides for the portable baseline kernels (``FASTCONV_ISA=baseline``),
#: applied on top of the dtype's table.
RULES_ISA = {"baseline": {      # fitted on one baseline forward TRAIN run
    "fwd_grouped_direct_max_cg": 1,    # the baseline grouped direct kernel is 4-16x slower than GEMM
    "fwd_first_im2col_K": 128,
    "fwd_dilated_pad": 0.1,
    "fwd_direct_max_wkib": 96,
    "fwd_direct_max_pixels": 4096,
    "fwd_1x1_direct_pixels": 1 << 40,
    "fwd_1x1_thin": 0,
}}


def rules_for(dtype, isa="avx2"):
    """The threshold table ``choose`` uses for `dtype` and `isa`."""
    base = RULES_F64 if str(dtype) == "float64" else RULES
    extra = RULES_ISA.get(isa)
    return dict(base, **extra) if extra else base


#: Candidate values ``bench_auto.py --fit`` searches for each threshold
#: (forward ones on the forward rows, the others on the backward rows).
FIT_GRID = {
    "fwd_grouped_direct_max_cg": [1, 4, 16, 1 << 20],
    "fwd_first_im2col_K": [128, 256],
    "fwd_few_dilated_min_k": [25, 49, 81],
    "fwd_dilated_pad": [0.1, 0.15, 0.2, 0.25, 0.3],
    "fwd_dilated_wide_pixels": [1024, 1600, 2304, 4096, 1 << 40],
    "fwd_direct_max_wkib": [96, 128, 192, 256, 384, 512],
    "fwd_direct_max_pixels": [4096, 8192, 16384],
    "fwd_1x1_direct_pixels": [256, 512, 1024, 1 << 40],     # 1 << 40: never (by size)
    "fwd_1x1_max_pixels": [2304, 4096, 8192],
    "fwd_1x1_thin": [0, 512, 1024, 2048],
    "bwd_dw_direct_pixels": [1024, 1536, 2048, 4096],
    "bwd_dw_small_pixels": [0, 64, 128, 256],
    "bwd_dilated_pad": [0.05, 0.1, 0.15, 0.2, 0.25],
    "bwd_dilated_max_cg": [8, 12, 16, 24],
    "bwd_dilated_min_k": [25, 49],
    "bwd_dilated_k_pixels": [256, 512, 1024],
    "bwd_direct_min_c": [4, 8, 16],
    "bwd_direct_min_pixels": [128, 256, 512, 1024],
}

def _pad_fraction(shape):
    """Fraction of the dense (output, tap) pairs whose tap reads padding.

    The space-to-batch algorithm skips those taps; the other algorithms
    multiply by the zeros (cost.py's effective vs dense mults).
    """
    (_, _, h, w, _, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw, _) = shape
    useful = 1.0
    for size, k, out, s, p, d in ((h, kh, ho, sh, ph, dh), (w, kw, wo, sw, pw, dw)):
        if out <= 0 or k <= 0:
            return 0.0
        valid = 0
        for t in range(k):
            lo = max(0, -((t * d - p) // s))                 # ceil((p - t*d) / s)
            hi = min(out - 1, (size - 1 + p - t * d) // s)
            valid += max(0, hi - lo + 1)
        useful *= valid / (k * out)
    return 1.0 - useful


# The GEMM-based paths need this many channels per group (below it, BLAS
# micro-tiles run mostly empty and conv_dilated.c falls back to direct).
_GEMM_MIN_CHANNELS = 8


def choose(op, shape, available, isa, dtype="float32", threads=1, needs=None, rules=None):
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
    dtype : str
        ``"float32"`` or ``"float64"``.
    threads : int
        fastconv's kernel threads.
    needs : sequence of str, optional
        For ``conv2d_backward``, the gradients asked for.
    rules : dict, optional
        Thresholds to use instead of ``rules_for(dtype)`` (for fitting).

    Returns
    -------
    str
        One of `available` (never ``"auto"``).
    """
    r = rules_for(dtype, isa) if rules is None else rules
    (n, c_in, _, _, c_out, kh, kw, ho, wo, sh, sw, _, _, dh, dw, g) = shape
    g = max(int(g), 1)
    cg, og = c_in // g, c_out // g
    k = kh * kw
    stride, dil = max(sh, sw), max(dh, dw)
    pixels = n * ho * wo
    itemsize = 8 if str(dtype) == "float64" else 4
    has_dil = "dilated" in available
    if "im2col" not in available:       # no BLAS: the GEMM paths are gone
        return "direct"

    if op == "conv2d":
        if g > 1 and cg > r["fwd_grouped_direct_max_cg"]:
            return "im2col"
        if min(cg, og) < r["fwd_few_channels"]:
            if g > 1 and cg == 1 and dil > 1:    # the direct depthwise kernels are for dilation 1
                return "im2col"
            if cg * k >= r["fwd_first_im2col_K"] and og >= 32:
                return "im2col"
            if has_dil and stride > 1 and k >= r["fwd_few_dilated_min_k"]:
                return "dilated"
            return "direct"
        wide = og * cg * k * itemsize > r["fwd_direct_max_wkib"] * 1024
        if has_dil and dil > 1 and (_pad_fraction(shape) >= r["fwd_dilated_pad"]
                                    or wide and pixels >= r["fwd_dilated_wide_pixels"]):
            return "dilated"
        if g > 1:
            return "direct"
        if stride > 1 or wide:
            return "im2col"
        if k == 1:
            ok = (r["fwd_1x1_direct_pixels"] <= pixels <= r["fwd_1x1_max_pixels"]
                  or cg * og <= r["fwd_1x1_thin"])
        else:
            ok = pixels <= r["fwd_direct_max_pixels"]
        return "direct" if ok else "im2col"

    # conv2d_backward, conv_transpose2d (grad input)
    if g > 1 and cg == 1:       # depthwise
        if pixels >= r["bwd_dw_direct_pixels"] or stride == 1 and pixels <= r["bwd_dw_small_pixels"]:
            return "direct"
        return "im2col"
    if has_dil and cg >= _GEMM_MIN_CHANNELS and og >= _GEMM_MIN_CHANNELS:
        if dil > 1 and _pad_fraction(shape) >= r["bwd_dilated_pad"]:
            return "dilated"
        if g == 1 and cg <= r["bwd_dilated_max_cg"]:    # per-group GEMMs get tiny with groups
            return "dilated"
        if stride == 1 and k >= r["bwd_dilated_min_k"] and pixels >= r["bwd_dilated_k_pixels"]:
            return "dilated"
    # direct backward (grad input on the forward kernels, register-blocked grad weight): not
    # fitted yet, set from bench_im2col.py timings: direct/im2col 1.05-1.35x from 2x14x14
    # output pixels up; 0.85-0.9x on 7x7 planes at batch 1-2 (rearranging the weights per
    # call shows) and on the 3-channel stem; its polyphase transposed conv is 0.8x im2col
    if (op == "conv2d_backward" and isa != "baseline" and min(cg, og) >= r["bwd_direct_min_c"]
            and wo <= 512 and pixels >= r["bwd_direct_min_pixels"]):
        return "direct"
    return "im2col"
