"""The SIMD direct convolution kernels (algo 0) against the float64 reference.

Calls ``fastconv._kernels.conv2d`` directly under each SIMD runtime level
(AVX2, AVX-512) so the hand-written kernels themselves are exercised, not
the dispatcher's fallbacks; under AVX-512 the AVX2 kernels still serve the
shapes the AVX-512 ones decline.  One grid runs on every level:

- awkward shapes: odd sizes, channel counts and widths that are not
  multiples of the tiles (AVX2: 6 channels x 16/8 pixels, 16/8 channels x 6
  pixels; AVX-512: 4 zmm x 6 flattened pixels, masked channel vectors),
  1x1, kernels as large as the input, stride > kernel, dilation, groups,
  depthwise (row tiles, flattened small planes, tap masks), empty batch,
  with and without bias;
- the blocking of the AVX-512 tiles: several input-channel blocks (padded
  copy and in place), row chunks, masked row ends of the padded copy, rows
  wider than a chunk and too many taps (declined, AVX2 serves).

Outputs are NaN-prefilled so unwritten elements fail; inputs must stay
unchanged; 1/2/3 threads must agree bit for bit; no workspace is allocated.
"""
import numpy as np
import pytest

import fastconv
from fastconv import _kernels, config, reference

try:
    import torch
    HAVE_TORCH = True
except ImportError:  # torch is an optional second oracle
    HAVE_TORCH = False

ISAS = [pytest.param(name, marks=pytest.mark.skipif(name not in config._available_isas(),
                                                    reason=f"{name} kernels not available on this machine/build"))
        for name in ("avx2", "avx512")]


def out_size(i, k, s, p, d):
    return (i + 2 * p - d * (k - 1) - 1) // s + 1


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


def run_kernel(isa, x, w, b, stride, pad, dil, groups, threads=1):
    n, cin, hi, wi = x.shape
    cout, cig, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dil
    ho, wo = out_size(hi, kh, sh, ph, dh), out_size(wi, kw, sw, pw, dw)
    y = np.full((n, cout, ho, wo), np.nan, dtype=x.dtype)
    shape = (n, cin, hi, wi, cout, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw, groups)
    xc, wc = x.copy(), w.copy()
    with config._forced_runtime(isa_name=isa, threads=threads):
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
    (1, 4, 9, 9, 4, 3, 3, 1, 2, 2, 4),          # depthwise dilated
    # depthwise dilated: dilation moves the taps of the row tile (d <= 4)
    (1, 5, 33, 37, 5, 3, 3, 1, 2, 2, 5),        # d2 'same', rows of 37 = 2*16 + 5
    (2, 7, 19, 41, 7, 3, 3, 1, 3, 3, 7),        # d3
    (1, 4, 21, 35, 4, 3, 3, 1, 4, 4, 4),        # d4
    (1, 3, 12, 20, 3, 3, 3, 1, 1, 4, 3),        # d4, pad < dilation
    (1, 4, 8, 5, 4, 3, 3, 1, 0, 2, 4),          # d2, 1-column output
    (1, 4, 12, 40, 4, 3, 3, 1, (0, 4), 4, 4),   # d4, pad_h 0, pad_w 4
    (1, 6, 17, 23, 6, 3, 3, 2, 2, 2, 6),        # stride 2, d2
    (1, 5, 15, 40, 5, 3, 3, 2, 3, 3, 5),        # stride 2, d3
    (1, 3, 30, 50, 3, 3, 3, 1, 5, 5, 3),        # d5: general path
    (1, 4, 20, 20, 4, 3, 3, 1, (2, 1), (2, 1), 4),  # unequal dilation: general path
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
    # aimed at the AVX-512 tiles (4 zmm of channels x 6 flattened pixels) and their blocking
    (1, 16, 12, 20, 64, 3, 3, 1, 1, 1, 1),      # one exact 64-channel block (f64: 2 blocks of 32)
    (1, 5, 11, 10, 65, 3, 3, 1, 1, 1, 1),       # 64 + 1 channels: a 1-channel block
    (1, 6, 7, 9, 56, 3, 3, 1, 1, 1, 1),         # 48 + 8: 4 vectors, the last half used (f32)
    (1, 9, 6, 8, 33, 1, 1, 1, 0, 1, 1),         # 33 channels, 1x1 in place
    (1, 3, 29, 35, 64, 7, 7, 2, 3, 1, 1),       # first layer 7x7/2 3->64
    (2, 3, 23, 21, 40, 7, 7, 2, 3, 1, 1),       # first layer, batch 2, channel tail
    (1, 3, 19, 17, 64, 3, 3, 1, 1, 1, 1),       # VGG first layer style (3 -> 64, 3x3)
    (1, 70, 7, 7, 64, 3, 3, 1, 1, 1, 1),        # several ci-blocks, 7x7 plane (49 = 6*4 + 5*5)
    (1, 600, 3, 3, 20, 1, 1, 1, 0, 1, 1),       # several ci-blocks in place (1x1)
    (1, 5, 40, 40, 20, 3, 3, 1, 1, 1, 1),       # several row chunks, padded copy
    (1, 5, 37, 41, 18, 1, 1, 1, 0, 1, 1),       # several row chunks in place
    (1, 2, 9, 260, 16, 3, 3, 1, 1, 1, 1),       # one row per chunk
    (1, 2, 3, 515, 16, 1, 3, 1, 1, 1, 1),       # rows wider than a chunk: declined, AVX2 serves
    (1, 1, 30, 30, 16, 25, 25, 1, 0, 1, 1),     # too many taps: declined, AVX2 serves
    (1, 3, 14, 37, 16, 3, 3, 1, 1, 1, 1),       # padded-copy rows of 39 = 2*16 + 7 (masked row end)
    (1, 3, 14, 16, 16, 3, 5, 1, (1, 2), 1, 1),  # padded rows of exactly 20; pad 2 on the left
    (1, 4, 10, 10, 24, 1, 1, 1, 1, 1, 1),       # 1x1 with padding (padded copy)
    (1, 6, 25, 27, 16, 3, 3, 3, 2, 2, 1),       # dilation 2, stride 3
    (1, 6, 15, 26, 40, 3, 3, 2, 3, 3, 1),       # dilation 3, stride 2
    (1, 3, 8, 9, 16, 3, 3, (1, 2), (0, 1), (2, 1), 1),  # asymmetric stride/pad/dil
    (1, 3, 8, 9, 20, 3, 3, (2, 1), (1, 0), (1, 2), 1),  # asymmetric, the other way
    (1, 4, 5, 6, 16, 5, 6, 1, 2, 1, 1),         # kernel as large as the input, padded
    (1, 4, 5, 6, 16, 5, 6, 1, 0, 1, 1),         # kernel as large as the input: 1 pixel
    (1, 3, 11, 19, 16, 2, 2, 3, 0, 1, 1),       # stride > kernel
    # dilation taller than a chunk: the padded block holds one band per kernel row
    (1, 20, 9, 11, 32, 3, 3, 1, 12, 12, 1),     # one chunk, bands of 9 rows, 12 apart
    (1, 16, 40, 33, 16, 3, 3, 1, 16, 16, 1),    # 3 chunks of 15/15/10 rows (bands of the last one shorter)
    (1, 8, 12, 20, 24, 3, 2, (2, 1), (18, 1), (18, 1), 1),  # stride 2 inside the bands
    (1, 12, 7, 9, 16, 5, 5, 1, 16, 8, 1),       # 5 bands, rows of only padding
    (1, 16, 9, 17, 64, 3, 3, 1, 1, 1, 2),       # groups, 32 channels per group
    (1, 6, 9, 10, 48, 3, 3, 2, 1, 1, 3),        # groups, 16 channels per group
    (1, 4, 3, 9, 16, 3, 3, 1, 0, 1, 1),         # 7 pixels: tiles 4 + 3
    (1, 4, 1, 2, 16, 1, 2, 1, 0, 1, 1),         # 1 pixel
    (0, 4, 8, 8, 64, 3, 3, 1, 1, 1, 1),         # empty batch
    # small planes: a chunk takes several images (one weight pack serves them all)
    (3, 70, 7, 7, 20, 3, 3, 1, 1, 1, 1),        # 3 images, several ci-blocks, padded copy
    (5, 600, 3, 3, 20, 1, 1, 1, 0, 1, 1),       # 5 images, 1x1 in place, several ci-blocks
    (17, 9, 5, 5, 65, 3, 3, 1, 1, 1, 1),        # 17 images: chunks of 9 + 8, a 1-channel block
    (4, 16, 6, 6, 48, 3, 3, 2, 1, 1, 2),        # groups and stride 2
    (3, 20, 9, 11, 32, 3, 3, 1, 12, 12, 1),     # banded padded blocks, 3 images
    (2, 40, 16, 16, 64, 3, 3, 1, 1, 1, 1),      # 2 images of 256 pixels: blocks shrink to fit both
    (6, 4, 1, 2, 16, 1, 2, 1, 0, 1, 1),         # 1-pixel planes
    (7, 5, 4, 5, 24, 3, 3, 1, (2, 0), 1, 1),    # rows of only padding, tiles across images
    # depthwise 3x3 (groups == c_in == c_out)
    (1, 3, 1, 1, 3, 3, 3, 1, 1, 1, 3),          # 1x1 maps: every tap but the centre padding
    (1, 20, 7, 7, 20, 3, 3, 1, 1, 1, 20),       # 7x7 planes: flattened (4 vectors, tap masks)
    (2, 6, 5, 6, 6, 3, 3, 1, (2, 1), 1, 6),     # flattened, pad_h 2 (rows of only padding)
    (1, 6, 9, 7, 6, 3, 3, 1, (0, 1), 1, 6),     # flattened, pad_h 0
    (1, 5, 40, 7, 5, 3, 3, 1, 1, 1, 5),         # flattened, 280 pixels (18 vectors: 4-groups + 2)
    (1, 4, 6, 8, 4, 3, 3, 1, 1, 1, 4),          # width 8: row tiles again
    (1, 17, 14, 14, 17, 3, 3, 2, 1, 1, 17),     # 14x14 stride 2
    (1, 4, 33, 35, 4, 3, 3, 1, 1, 1, 4),        # rows of 35 = 2*16 + 3
    (1, 8, 9, 9, 16, 3, 3, 1, 1, 1, 8),         # depthwise multiplier 2 (general path)
]

# Benchmark-like layers: fast paths, many tasks per thread, 1/2/3 threads.
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
    (1, 64, 30, 30, 128, 3, 3, 1, 1, 1, 1),
    (1, 3, 70, 70, 64, 7, 7, 2, 3, 1, 1),
    (1, 512, 7, 7, 100, 3, 3, 1, 1, 1, 1),
    (1, 144, 28, 28, 144, 3, 3, 1, 1, 1, 144),
    (1, 64, 20, 20, 64, 3, 3, 2, 1, 1, 64),
    (1, 64, 33, 33, 64, 3, 3, 1, 12, 12, 1),    # ASPP-like: banded padded blocks
    (1, 48, 40, 40, 64, 3, 3, 1, 18, 18, 1),
    (4, 256, 7, 7, 100, 3, 3, 1, 1, 1, 1),      # several images per chunk
    (3, 512, 7, 7, 64, 1, 1, 1, 0, 1, 1),       # one channel block: image chunks feed the threads
]


def _data(case, dtype, with_bias, seed):
    n, cin, h, wd, cout, kh, kw, stride, pad, dil, groups = case
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, cin, h, wd)).astype(dtype)
    w = rng.uniform(-1, 1, (cout, cin // groups, kh, kw)).astype(dtype)
    b = rng.uniform(-1, 1, cout).astype(dtype) if with_bias else None
    return (x, w, b, _pair(stride), _pair(pad), _pair(dil), groups), (cin // groups) * kh * kw


def _check_reference(y, args, k):
    x, w, b, stride, pad, dil, groups = args
    ref = reference.conv2d(x, w, b, stride, pad, dil, groups)
    assert y.shape == ref.shape
    assert not np.isnan(y).any(), "some outputs were not written"
    rtol, atol = tol(x.dtype, k)
    np.testing.assert_allclose(y, ref, rtol=rtol, atol=atol)
    if HAVE_TORCH and x.size and y.size:
        t = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(),
                                       None if b is None else torch.from_numpy(b).double(),
                                       stride, pad, dil, groups).numpy()
        np.testing.assert_allclose(y, t, rtol=rtol, atol=atol)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
@pytest.mark.parametrize("with_bias", [True, False])
def test_matches_reference(isa, case, dtype, with_bias):
    args, k = _data(case, dtype, with_bias, hash(case) % 2**32)
    _check_reference(run_kernel(isa, *args), args, k)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", LARGE, ids=[str(c) for c in LARGE])
def test_threads_bit_identical_and_correct(isa, case, dtype):
    args, k = _data(case, dtype, True, 1234)
    y1 = run_kernel(isa, *args, threads=1)
    np.testing.assert_array_equal(y1, run_kernel(isa, *args, threads=2))
    np.testing.assert_array_equal(y1, run_kernel(isa, *args, threads=3))
    _check_reference(y1, args, k)


@pytest.mark.parametrize("isa", ISAS)
def test_public_api_non_contiguous_nan_out(isa, dtype=np.float32):
    """Through fastconv.conv2d: non-contiguous input, a NaN-filled out= buffer."""
    rng = np.random.default_rng(7)
    base = rng.uniform(-1, 1, (2, 40, 19, 23)).astype(dtype)
    x = base[:, ::2, :, ::-1]                      # strided channels, reversed width
    w = rng.uniform(-1, 1, (70, 20, 3, 3)).astype(dtype)[:, :, ::-1]
    out = np.full((2, 70, 10, 12), np.nan, dtype=dtype)
    with config._forced_runtime(isa_name=isa, threads=2):
        y = fastconv.conv2d(x, w, stride=2, padding=1, algo="direct", out=out)
    assert y is out and not np.isnan(out).any()
    ref = reference.conv2d(x, w, None, 2, 1, 1, 1)
    rtol, atol = tol(dtype, 20 * 9)
    np.testing.assert_allclose(out, ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("cout", [6, 32])
def test_denormal_inputs_flush_and_do_not_poison(isa, cout):
    # FTZ/DAZ inside the kernel: denormal inputs are treated as zero; the
    # caller's floating-point mode is restored afterwards.
    def caller_flushes():
        return bool(np.float32(1e-39) * np.float32(1.0) == 0.0)

    before = caller_flushes()
    x = np.full((1, 4, 6, 20), 1e-40, dtype=np.float32)
    w = np.ones((cout, 4, 3, 3), dtype=np.float32)
    y = run_kernel(isa, x, w, None, (1, 1), (1, 1), (1, 1), 1)
    assert np.all(y == 0.0)
    assert caller_flushes() == before  # the caller thread's mode is restored
