"""The AVX2 direct convolution kernel (algo 0) against a float64 reference.

Calls ``fastconv._kernels.conv2d`` directly under the AVX2 runtime so the
hand-written kernel itself is exercised (not the dispatcher's fallbacks),
over awkward shapes: odd sizes, channel counts and widths that are not
multiples of the tiles (6 channels x 16/8 pixels; 16/8 channels x 6
pixels), 1x1, kernels as large as the
input, stride > kernel, dilation, groups, depthwise, empty batch, with and
without bias.  Outputs are NaN-prefilled so unwritten elements fail.
"""
import numpy as np
import pytest

from fastconv import _kernels, config

pytestmark = pytest.mark.skipif("avx2" not in config._available_isas(),
                                reason="AVX2+FMA kernels not available on this machine/build")

try:
    import torch
    HAVE_TORCH = True
except ImportError:  # torch is an optional second oracle
    HAVE_TORCH = False


def out_size(i, k, s, p, d):
    return (i + 2 * p - d * (k - 1) - 1) // s + 1


def ref_conv(x, w, b, stride, pad, dil, groups):
    """Plain float64 NumPy convolution (zero padding), NCHW."""
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    n, cin, hi, wi = x.shape
    cout, cig, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dil
    ho, wo = out_size(hi, kh, sh, ph, dh), out_size(wi, kw, sw, pw, dw)
    xp = np.zeros((n, cin, hi + 2 * ph, wi + 2 * pw))
    xp[:, :, ph:ph + hi, pw:pw + wi] = x
    cog = cout // groups
    y = np.zeros((n, cout, ho, wo))
    for g in range(groups):
        xs = xp[:, g * cig:(g + 1) * cig]
        ws = w[g * cog:(g + 1) * cog]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]
                y[:, g * cog:(g + 1) * cog] += np.einsum("nchw,oc->nohw", patch, ws[:, :, i, j])
    if b is not None:
        y += b.astype(np.float64)[None, :, None, None]
    return y


def run_kernel(x, w, b, stride, pad, dil, groups, threads=1):
    n, cin, hi, wi = x.shape
    cout, cig, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dil
    ho, wo = out_size(hi, kh, sh, ph, dh), out_size(wi, kw, sw, pw, dw)
    y = np.full((n, cout, ho, wo), np.nan, dtype=x.dtype)
    shape = (n, cin, hi, wi, cout, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw, groups)
    xc, wc = x.copy(), w.copy()
    with config._forced_runtime(isa_name="avx2", threads=threads):
        ws = _kernels.conv2d(x.reshape(-1), w.reshape(-1), None if b is None else b.reshape(-1),
                             y.reshape(-1), shape, _kernels.ALGO_DIRECT)
    assert ws == 0, "direct convolution must not allocate workspace"
    np.testing.assert_array_equal(x, xc)   # inputs never modified
    np.testing.assert_array_equal(w, wc)
    return y


def tol(dtype, k):
    # error grows with the reduction length k = cig*kh*kw
    return (2e-5 * np.sqrt(k) + 1e-5, 2e-5 * np.sqrt(k)) if dtype == np.float32 else (1e-12 * np.sqrt(k), 1e-12 * np.sqrt(k))


# (n, cin, h, w, cout, kh, kw, stride, pad, dil, groups)
CASES = [
    (1, 16, 12, 20, 12, 3, 3, 1, 1, 1, 1),      # exact tiles along channels
    (2, 7, 9, 13, 11, 3, 3, 1, 1, 1, 1),        # odd everything
    (1, 3, 17, 23, 5, 3, 3, 2, 1, 1, 1),        # stride 2, odd
    (1, 5, 31, 37, 13, 3, 3, 2, 0, 1, 1),       # stride 2 no pad
    (1, 3, 29, 35, 8, 7, 7, 2, 3, 1, 1),        # first-layer style
    (1, 9, 8, 8, 7, 1, 1, 1, 0, 1, 1),          # 1x1 (flattened path)
    (1, 9, 9, 11, 7, 1, 1, 2, 0, 1, 1),         # 1x1 stride 2
    (1, 4, 10, 10, 6, 1, 1, 1, 1, 1, 1),        # 1x1 with padding
    (1, 4, 5, 6, 3, 5, 6, 1, 0, 1, 1),          # kernel as large as the input
    (1, 4, 5, 6, 3, 5, 6, 1, 2, 1, 1),          # ... with padding
    (1, 3, 11, 19, 4, 2, 2, 3, 0, 1, 1),        # stride > kernel (gather path)
    (1, 3, 11, 19, 4, 3, 2, 5, 1, 1, 1),        # stride 5
    (1, 6, 15, 21, 9, 3, 3, 1, 2, 2, 1),        # dilation 2
    (1, 6, 15, 26, 9, 3, 3, 2, 3, 3, 1),        # dilation 3, stride 2
    (1, 8, 9, 17, 12, 3, 3, 1, 1, 1, 4),        # groups
    (1, 6, 9, 10, 9, 3, 3, 2, 1, 1, 3),         # groups, odd per-group channels
    (1, 13, 14, 19, 13, 3, 3, 1, 1, 1, 13),     # depthwise
    (2, 10, 17, 33, 10, 3, 3, 2, 1, 1, 10),     # depthwise stride 2
    (1, 8, 9, 9, 16, 5, 5, 1, 2, 1, 8),         # depthwise multiplier 2
    (1, 5, 2, 7, 5, 3, 3, 1, 1, 1, 5),          # depthwise, maps narrower/shorter than a tile
    (3, 7, 23, 41, 7, 3, 3, 1, 0, 1, 7),        # depthwise no padding, several row tiles
    (1, 6, 30, 18, 6, 3, 3, 2, 0, 1, 6),        # depthwise stride 2 no padding
    (1, 4, 9, 9, 4, 3, 3, 1, 2, 2, 4),          # depthwise dilated (general path)
    (0, 4, 8, 8, 5, 3, 3, 1, 1, 1, 1),          # empty batch
    (1, 70, 7, 7, 13, 3, 3, 1, 1, 1, 1),        # several ci-blocks, 7x7 maps
    (1, 40, 6, 40, 7, 3, 3, 1, 1, 1, 1),        # widths 40 = 16+16+8
    (1, 2, 3, 1100, 7, 1, 3, 1, 1, 1, 1),       # very wide rows (column chunks)
    (1, 2, 40, 40, 7, 1, 1, 1, 0, 1, 1),        # flattened 1x1, column chunks
    (1, 3, 8, 9, 4, 3, 3, (1, 2), (0, 1), (2, 1), 1),  # asymmetric stride/pad/dil
    # >= 8 output channels per group: the output-channel-vectorised kernel
    # (16 f32 / 8 f64 channels per vector pair, 6 flattened pixels per tile)
    (1, 16, 12, 20, 16, 3, 3, 1, 1, 1, 1),      # exact channel block
    (2, 7, 9, 13, 17, 3, 3, 1, 1, 1, 1),        # 16 + 1 channels, pixel tails
    (1, 3, 29, 35, 24, 7, 7, 2, 3, 1, 1),       # first-layer style, 16 + 8 channels
    (1, 9, 9, 11, 20, 1, 1, 2, 0, 1, 1),        # 1x1 stride 2 (reads x in place)
    (1, 4, 10, 10, 10, 1, 1, 1, 1, 1, 1),       # 1x1 with padding (padded copy)
    (1, 70, 7, 7, 20, 3, 3, 1, 1, 1, 1),        # several ci-blocks, padded copy
    (1, 600, 3, 3, 8, 1, 1, 1, 0, 1, 1),        # several ci-blocks, in place
    (1, 5, 40, 40, 10, 3, 3, 1, 1, 1, 1),       # several row chunks
    (1, 5, 37, 41, 9, 1, 1, 1, 0, 1, 1),        # several row chunks, in place
    (1, 2, 9, 260, 12, 3, 3, 1, 1, 1, 1),       # one row per chunk
    (1, 2, 3, 600, 9, 1, 3, 1, 1, 1, 1),        # rows too wide: pixel-vectorised kernel
    (1, 1, 30, 30, 8, 25, 25, 1, 0, 1, 1),      # too many taps: pixel-vectorised kernel
    (1, 6, 25, 27, 9, 3, 3, 3, 2, 2, 1),        # dilation 2, stride 3
    (1, 8, 9, 17, 32, 3, 3, 1, 1, 1, 2),        # groups, 16 channels per group
    (1, 6, 9, 10, 27, 3, 3, 2, 1, 1, 3),        # groups, 9 channels per group
    (1, 4, 5, 6, 12, 5, 6, 1, 2, 1, 1),         # kernel as large as the input, padded
    (1, 3, 8, 9, 10, 3, 3, (1, 2), (0, 1), (2, 1), 1),  # asymmetric stride/pad/dil
    (1, 3, 8, 9, 10, 3, 3, (2, 1), (1, 0), (1, 2), 1),  # asymmetric, the other way
    (1, 9, 1, 13, 16, 1, 1, 1, 0, 1, 1),        # 13 pixels: tiles 5 + 4 + 4
    (1, 4, 3, 9, 10, 3, 3, 1, 0, 1, 1),         # 7 pixels: tiles 4 + 3
]


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
@pytest.mark.parametrize("with_bias", [True, False])
def test_matches_reference(case, dtype, with_bias):
    n, cin, h, wd, cout, kh, kw, stride, pad, dil, groups = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x = rng.uniform(-1, 1, (n, cin, h, wd)).astype(dtype)
    w = rng.uniform(-1, 1, (cout, cin // groups, kh, kw)).astype(dtype)
    b = rng.uniform(-1, 1, cout).astype(dtype) if with_bias else None
    stride, pad, dil = _pair(stride), _pair(pad), _pair(dil)
    y = run_kernel(x, w, b, stride, pad, dil, groups)
    ref = ref_conv(x, w, b, stride, pad, dil, groups)
    assert y.shape == ref.shape
    assert not np.isnan(y).any(), "some outputs were not written"
    rtol, atol = tol(dtype, (cin // groups) * kh * kw)
    np.testing.assert_allclose(y, ref, rtol=rtol, atol=atol)
    if HAVE_TORCH and x.size and y.size:
        t = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(),
                                       None if b is None else torch.from_numpy(b).double(),
                                       stride, pad, dil, groups).numpy()
        np.testing.assert_allclose(y, t, rtol=rtol, atol=atol)


# Larger layers typical of the benchmarks (fast paths, many tasks per thread).
LARGE = [
    (1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1),
    (1, 64, 56, 56, 128, 3, 3, 2, 1, 1, 1),
    (1, 256, 14, 14, 64, 1, 1, 1, 0, 1, 1),
    (1, 3, 64, 64, 64, 7, 7, 2, 3, 1, 1),
    (1, 96, 28, 28, 96, 3, 3, 1, 1, 1, 96),
    (1, 96, 28, 28, 96, 3, 3, 2, 1, 1, 96),
    (1, 512, 7, 7, 40, 3, 3, 1, 1, 1, 1),
    (2, 256, 14, 14, 40, 1, 1, 2, 0, 1, 1),
    (1, 16, 70, 70, 24, 3, 3, 1, 1, 1, 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", LARGE, ids=[str(c) for c in LARGE])
def test_threads_bit_identical_and_correct(case, dtype):
    n, cin, h, wd, cout, kh, kw, stride, pad, dil, groups = case
    rng = np.random.default_rng(1234)
    x = rng.uniform(-1, 1, (n, cin, h, wd)).astype(dtype)
    w = rng.uniform(-1, 1, (cout, cin // groups, kh, kw)).astype(dtype)
    b = rng.uniform(-1, 1, cout).astype(dtype)
    args = (x, w, b, _pair(stride), _pair(pad), _pair(dil), groups)
    y1 = run_kernel(*args, threads=1)
    y2 = run_kernel(*args, threads=2)
    y3 = run_kernel(*args, threads=3)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(y1, y3)
    ref = ref_conv(*args)
    rtol, atol = tol(dtype, (cin // groups) * kh * kw)
    np.testing.assert_allclose(y1, ref, rtol=rtol, atol=atol)


def test_denormal_inputs_flush_and_do_not_poison():
    # FTZ/DAZ inside the kernel: denormal inputs are treated as zero; the
    # caller's floating-point mode is restored afterwards.
    def caller_flushes():
        return bool(np.float32(1e-39) * np.float32(1.0) == 0.0)

    before = caller_flushes()
    x = np.full((1, 4, 6, 20), 1e-40, dtype=np.float32)
    w = np.ones((6, 4, 3, 3), dtype=np.float32)
    y = run_kernel(x, w, None, (1, 1), (1, 1), (1, 1), 1)
    assert np.all(y == 0.0)
    assert caller_flushes() == before  # the caller thread's mode is restored
