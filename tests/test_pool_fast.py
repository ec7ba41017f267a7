"""The specialised pooling kernels beyond tests/test_pool.py's sweeps.

- max_pool2d_backward 3x3/2 p1 gathers per output row: any valid tap index
  (not only the argmax) must route its gradient there, with colliding
  windows summed in output order (compared bit for bit with an in-order
  scatter), and every kind of bad index must be refused, in the vector
  lanes as well as the scalar borders.
- avg_pool2d 3x3/1 p1 runs as separable sums with a per-row buffer: wide
  planes, every divisor option, and the fallback above the buffer width.
- 1 and 2 threads agree bit for bit.
"""
import numpy as np
import pytest

from fastconv import config, reference
from fastconv.pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from conftest import rand, tol


def _close(got, want):
    rtol, atol = tol(got.dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def _taps(o, k, s, p, size):
    return [t for t in range(o * s - p, o * s - p + k) if 0 <= t < size]


def _random_valid_indices(rng, n, c, h, w, k, s, p, ceil=False):
    ho = reference.pool_output_size(h, k, s, p, 1, ceil)
    wo = reference.pool_output_size(w, k, s, p, 1, ceil)
    ind = np.empty((n, c, ho, wo), dtype=np.int64)
    for oh in range(ho):
        rows = _taps(oh, k, s, p, h)
        for ow in range(wo):
            cols = _taps(ow, k, s, p, w)
            ind[:, :, oh, ow] = (rng.choice(rows, (n, c)) * w + rng.choice(cols, (n, c)))
    return ind


def _scatter(g, ind, shape):
    """gx[ind[o]] += g[o] in output order (np.add.at is unbuffered and in order)."""
    n, c, h, w = shape
    gx = np.zeros((n * c, h * w), dtype=g.dtype)
    gi, ii = g.reshape(n * c, -1), ind.reshape(n * c, -1)
    for pl in range(n * c):
        np.add.at(gx[pl], ii[pl], gi[pl])
    return gx.reshape(shape)


@pytest.mark.parametrize("h,w", [(13, 41), (12, 40), (5, 18), (7, 3), (2, 33), (1, 17)])
@pytest.mark.parametrize("ceil", [False, True])
@pytest.mark.parametrize("k,s,p", [(3, 2, 1), (2, 2, 0)])
def test_backward_gather_any_valid_index_bit_exact(h, w, ceil, k, s, p, dtype, isa):
    if min(reference.pool_output_size(v, k, s, p, 1, ceil) for v in (h, w)) < 1:
        pytest.skip("no output for this size")
    rng = np.random.default_rng(h * 100 + w)
    x = rand(rng, (2, 3, h, w), dtype)
    ind = _random_valid_indices(rng, 2, 3, h, w, k, s, p, ceil)
    g = rand(rng, ind.shape, dtype)
    got = max_pool2d_backward(g, x, k, s, p, ceil_mode=ceil, indices=ind)
    np.testing.assert_array_equal(got, _scatter(g, ind, x.shape))


def _bad_variants(ind, pos, w):
    """Indices of the neighbouring windows, a column -1 alias, out of the
    plane, and a valid code plus 2**32 (its low 32 bits look valid)."""
    v = ind[pos]
    out = [v + 3, v - 3, v + 3 * w, v - 3 * w, v + (1 << 32), v - (1 << 32), -1, 1 << 40]
    oh, ow = pos[2], pos[3]
    if ow == 0:
        out.append((2 * oh) * w - 1)      # tap column -1 of output 0: the previous row's last element
    return out


@pytest.mark.parametrize("k,s,p", [(3, 2, 1), (2, 2, 0)])
@pytest.mark.parametrize("dtype_", ["float32", "float64"])
def test_backward_gather_refuses_bad_indices_in_every_lane(k, s, p, dtype_, isa):
    rng = np.random.default_rng(3)
    h, w = 9, 37                               # 18-19 outputs per row: vector blocks, overlap, borders
    x = rand(rng, (1, 2, h, w), dtype_)
    y, ind = max_pool2d(x, k, s, p, return_indices=True)
    g = rand(rng, y.shape, dtype_)
    for oh in (0, 2, y.shape[2] - 1):
        for ow in range(y.shape[3]):
            pos = (0, 1, oh, ow)
            for bad in _bad_variants(ind, pos, w):
                ind2 = ind.copy()
                ind2[pos] = bad
                with pytest.raises(ValueError, match="indices"):
                    max_pool2d_backward(g, x, k, s, p, indices=ind2)


def test_max3_backward_wide_rows_fall_back(dtype, isa):
    """Rows wider than the argmax row buffer take the scatter path."""
    rng = np.random.default_rng(5)
    x = rand(rng, (1, 1, 3, 4203), dtype)
    y, ind = max_pool2d(x, 3, 2, 1, return_indices=True)
    g = rand(rng, y.shape, dtype)
    want = reference.max_pool2d_backward(g, x, 3, 2, 1)
    _close(max_pool2d_backward(g, x, 3, 2, 1), want)
    _close(max_pool2d_backward(g, x, 3, 2, 1, indices=ind), want)


AVG3 = [dict(count_include_pad=True), dict(count_include_pad=False), dict(divisor_override=4)]


@pytest.mark.parametrize("h,w", [(1, 1), (1, 9), (2, 2), (3, 8), (6, 7), (5, 33), (4, 100), (2, 4097)])
@pytest.mark.parametrize("opts", AVG3, ids=["cip", "nopad", "div4"])
def test_avg3_separable_matches_reference(h, w, opts, dtype, isa):
    rng = np.random.default_rng(h * 7 + w)
    x = rand(rng, (2, 3, h, w), dtype)
    _close(avg_pool2d(x, 3, 1, 1, **opts), reference.avg_pool2d(x, 3, 1, 1, **opts))
    g = rand(rng, x.shape, dtype)
    _close(avg_pool2d_backward(g, x.shape, 3, 1, 1, **opts),
           reference.avg_pool2d_backward(g, x.shape, 3, 1, 1, **opts))


def test_avg3_nan_inf_propagate(dtype, isa):
    x = np.zeros((1, 1, 5, 20), dtype=dtype)
    x[0, 0, 0, 0] = np.nan
    x[0, 0, 3, 10] = np.inf
    x[0, 0, 4, 19] = -np.inf
    want = reference.avg_pool2d(x, 3, 1, 1)
    np.testing.assert_array_equal(np.isnan(avg_pool2d(x, 3, 1, 1)), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(avg_pool2d(x, 3, 1, 1)), np.isinf(want))


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_two_threads_bit_identical_on_many_planes(k, s, p, dtype):
    rng = np.random.default_rng(9)
    x = rand(rng, (3, 7, 30, 45), dtype)
    outs = []
    for t in (1, 2):
        with config._forced_runtime(threads=t):
            y, ind = max_pool2d(x, k, s, p, return_indices=True)
            g = rand(np.random.default_rng(1), y.shape, dtype)
            ya = avg_pool2d(x, k, s, p)
            outs.append((y, ind, max_pool2d_backward(g, x, k, s, p, indices=ind),
                         max_pool2d_backward(g, x, k, s, p), ya, avg_pool2d_backward(g, x.shape, k, s, p)))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def _max_2x2(x):
    """2x2/2 max pooling and PyTorch's indices, vectorised (no NaN in x)."""
    n, c, h, w = x.shape
    ho, wo = h // 2, w // 2
    win = x[:, :, :2 * ho, :2 * wo].reshape(n, c, ho, 2, wo, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho, wo, 4)
    t = win.argmax(axis=-1)                       # first maximum in window order
    rows = 2 * np.arange(ho)[:, None] + t // 2
    cols = 2 * np.arange(wo)[None, :] + t % 2
    return win.max(axis=-1), rows * w + cols


def test_outputs_larger_than_cache_streamed(isa):
    """Calls beyond the last-level cache stream their rows out (non-temporal
    stores from a row buffer): same values, indices and thread invariance."""
    rng = np.random.default_rng(12)
    x = rand(rng, (1, 2, 2050, 2049), np.float32)          # 33.6 MB: over the streaming threshold
    y, ind = max_pool2d(x, 2, return_indices=True)
    wy, wind = _max_2x2(x)
    np.testing.assert_array_equal(y, wy)
    np.testing.assert_array_equal(ind, wind)
    np.testing.assert_array_equal(max_pool2d(x, 2), wy)
    ya = avg_pool2d(x, 2)
    _close(ya, x[:, :, :2050, :2048].astype(np.float64).reshape(1, 2, 1025, 2, 1024, 2).mean(axis=(3, 5)))
    y3 = max_pool2d(x, 3, 2, 1)
    with config._forced_runtime(threads=2):
        np.testing.assert_array_equal(max_pool2d(x, 3, 2, 1), y3)
        np.testing.assert_array_equal(avg_pool2d(x, 2), ya)
    # 3x3/2 p1 against the 2x2 result on the even-aligned sub-grid: each
    # 3x3 window is the max of its centre 2x2 block and its left/top taps
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    want = np.full(y3.shape, -np.inf, dtype=np.float32)
    for r in range(3):
        for c in range(3):
            want = np.maximum(want, xp[:, :, r:r + 2 * y3.shape[2]:2, c:c + 2 * y3.shape[3]:2][:, :, :y3.shape[2], :y3.shape[3]])
    np.testing.assert_array_equal(y3, want)


@pytest.mark.parametrize("shape", [(1, 4, 1000, 1600), (1, 4, 1500, 2000)], ids=["25MB", "48MB"])
@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1)])
def test_backward_larger_than_cache(shape, k, s, p, isa):
    """Max backward beyond the last-level cache (grad_input below and above
    NumPy's fresh-mmap size): bit-equal to an in-order scatter, the
    recompute path equal to the indexed one, and 2 threads equal to 1."""
    rng = np.random.default_rng(13)
    x = rand(rng, shape, np.float32)
    y, ind = max_pool2d(x, k, s, p, return_indices=True)
    g = rand(rng, y.shape, np.float32)
    gx = max_pool2d_backward(g, x, k, s, p, indices=ind)
    np.testing.assert_array_equal(gx, _scatter(g, ind, x.shape))
    np.testing.assert_array_equal(max_pool2d_backward(g, x, k, s, p), gx)
    with config._forced_runtime(threads=2):
        np.testing.assert_array_equal(max_pool2d_backward(g, x, k, s, p, indices=ind), gx)
    bad = ind.copy()
    bad[0, 3, -1, -2] += 3
    with pytest.raises(ValueError, match="indices"):
        max_pool2d_backward(g, x, k, s, p, indices=bad)


# ---- forward without indices: flat 2x2/2 over tiled planes, row-reduced 3x3/2

try:
    import torch
    import torch.nn.functional as F
except ImportError:      # pragma: no cover - torch is optional
    torch = None


def _want_max(x, k, s, p, ceil=False):
    if torch is not None:
        return F.max_pool2d(torch.from_numpy(x), k, s, p, ceil_mode=ceil).numpy()
    return reference.max_pool2d(x, k, s, p, ceil_mode=ceil).astype(x.dtype)


def _ties_nan_input(rng, shape, dtype, nan_frac):
    """Many windows whose maximum is a tie between +0 and -0 (the first in
    window order decides the sign), infinities, and sparse NaNs."""
    x = rng.choice(np.array([-0.0, 0.0, -1.0, -0.5, 0.25, -np.inf], dtype=dtype), size=shape)
    x.flat[rng.random(x.size) < 0.02] = np.inf
    x.flat[rng.random(x.size) < nan_frac] = np.nan
    return x


def _assert_same_bits(got, want):
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))   # +0 vs -0, as PyTorch


FLAT = [(3, 5, 2, 2), (2, 3, 4, 6), (2, 7, 14, 14), (1, 3, 8, 40), (2, 3, 10, 64), (5, 3, 6, 18), (1, 1, 2, 4096)]


@pytest.mark.parametrize("shape", FLAT, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("nan_frac", [0.0, 0.003])
def test_flat_2x2_forward_exact(shape, nan_frac, dtype, isa, threads):
    """Exactly tiled 2x2/2 runs over the planes as one flat stream: values
    bit-equal to PyTorch (sign of zero included), NaN blocks recomputed."""
    rng = np.random.default_rng(sum(shape))
    x = _ties_nan_input(rng, shape, dtype, nan_frac)
    for ceil in (False, True):
        _assert_same_bits(max_pool2d(x, 2, ceil_mode=ceil), _want_max(x, 2, 2, 0, ceil))
    xa = rand(rng, shape, dtype)
    xa.flat[rng.random(xa.size) < nan_frac] = np.nan
    for opts in ({}, dict(divisor_override=3), dict(count_include_pad=False)):
        got, want = avg_pool2d(xa, 2, **opts), reference.avg_pool2d(xa, 2, **opts)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        _close(np.nan_to_num(got), np.nan_to_num(want))


@pytest.mark.parametrize("h,w", [(7, 17), (12, 40), (9, 33), (8, 16), (5, 18), (16, 112), (3, 255)])
@pytest.mark.parametrize("nan_frac", [0.0, 0.004])
def test_max3_row_reduced_forward_exact(h, w, nan_frac, dtype, isa, threads):
    """Max 3x3/2 p1 reduces each input row once: bit-equal to PyTorch (sign
    of zero, NaN in any row including the one shared by two output rows)."""
    rng = np.random.default_rng(h * 1000 + w)
    x = _ties_nan_input(rng, (2, 3, h, w), dtype, nan_frac)
    for ceil in (False, True):
        _assert_same_bits(max_pool2d(x, 3, 2, 1, ceil_mode=ceil), _want_max(x, 3, 2, 1, ceil))


@pytest.mark.parametrize("row", [0, 1, 2, 5, 6])
def test_max3_single_nan_in_each_row_position(row, isa):
    """A lone NaN reaches exactly the outputs whose windows hold it."""
    x = np.random.default_rng(row).uniform(-1, 1, (1, 1, 7, 40)).astype(np.float32)
    x[0, 0, row, 21] = np.nan
    _assert_same_bits(max_pool2d(x, 3, 2, 1), _want_max(x, 3, 2, 1))


@pytest.mark.parametrize("shape", [(1, 2, 2048, 2048), (44, 1000, 14, 14)], ids=["wide", "narrow"])
def test_flat_2x2_streamed_beyond_cache(shape, isa):
    """Exactly tiled calls over the streaming threshold run the flat stream
    with its prefetch and non-temporal stores from the group buffer (wide
    rows: one row pair per group; narrow rows: many planes per group):
    values equal, NaN windows as the exact path, 2 threads equal to 1."""
    rng = np.random.default_rng(14)
    x = rand(rng, shape, np.float32)                       # 33.5 / 34.5 MB
    n, c, h, w = shape
    x[n - 1, c - 1, h - 1, w - 3] = np.nan                 # the last group's NaN fallback
    x[0, 0, 1, 0] = np.nan
    y = max_pool2d(x, 2)
    np.testing.assert_array_equal(y, _max_2x2(x)[0])
    ya = avg_pool2d(x, 2)
    _close(ya, x.astype(np.float64).reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5)))
    with config._forced_runtime(threads=2):
        np.testing.assert_array_equal(max_pool2d(x, 2), y)
        np.testing.assert_array_equal(avg_pool2d(x, 2), ya)


@pytest.mark.parametrize("h,w", [(7, 17), (12, 40), (9, 33), (1, 20), (2, 112), (3, 255)])
@pytest.mark.parametrize("opts", AVG3, ids=["cip", "nopad", "div4"])
def test_avg3s2_row_reduced_forward(h, w, opts, dtype, isa, threads):
    """Avg 3x3/2 p1 reduces each input row once; column 0 and the edge rows
    keep their own divisors; NaN/inf propagate to exactly their windows."""
    rng = np.random.default_rng(h * 31 + w)
    x = rand(rng, (2, 3, h, w), dtype)
    x.flat[rng.random(x.size) < 0.003] = np.nan
    x.flat[rng.random(x.size) < 0.003] = np.inf
    for ceil in (False, True):
        got = avg_pool2d(x, 3, 2, 1, ceil_mode=ceil, **opts)
        want = reference.avg_pool2d(x, 3, 2, 1, ceil_mode=ceil, **opts)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        fin = np.isfinite(want)
        _close(got[fin], want[fin])


@pytest.mark.parametrize("w", [2, 4, 6, 8, 14, 16])
def test_flat_2x2_writes_nothing_past_the_output(w, dtype, isa, threads):
    """Narrow rows store one full vector per row pair (extra lanes rewritten
    by the following pairs): nothing may land past the call's last output,
    whatever the plane count or the thread split."""
    from fastconv import _kernels
    from fastconv.pool import _shape_tuple
    rng = np.random.default_rng(w)
    for planes in (1, 2, 3, 5, 9, 17):
        x = rand(rng, (1, planes, 2, w), dtype)
        n = planes * (w // 2)
        big = np.full(n + 64, 7.0, dtype=dtype)
        st = _shape_tuple(x.shape, (1, planes, 1, w // 2), (2, 2), (2, 2), (0, 0), (1, 1))
        _kernels.max_pool2d(x.reshape(-1), big[:n], None, st)
        np.testing.assert_array_equal(big[:n], x.reshape(planes, 2, w // 2, 2).max(axis=(1, 3)).reshape(-1))
        np.testing.assert_array_equal(big[n:], 7.0)
        big[:] = 7.0
        _kernels.avg_pool2d(x.reshape(-1), big[:n], st)
        np.testing.assert_array_equal(big[n:], 7.0)


# ---- backward 2x2/2 on exactly tiled planes: narrow planes flat, avg stored once

NARROW_K2 = [(2, 3, 14, 14), (1, 5, 4, 6), (3, 2, 8, 2), (1, 1, 64, 14), (2, 2, 6, 12), (1, 2, 2, 16),
             (1, 2, 680, 6), (1, 2, 684, 6)]


def _into_nan(fn, shape, dtype):
    """Run a raw kernel call into a NaN-filled grad_input (every element must be written)."""
    gx = np.full(shape, np.nan, dtype=dtype)
    fn(gx.reshape(-1))
    return gx


@pytest.mark.parametrize("shape", NARROW_K2, ids=lambda s: "x".join(map(str, s)))
def test_backward_2x2_exact_planes_any_valid_index(shape, dtype, isa, threads):
    """Exactly tiled 2x2/2 (narrow rows: each plane gathered as one flat run,
    planes up to and past the table size): any valid index, -0 gradients,
    bit-equal to an in-order scatter into zeros, every element written."""
    from fastconv import _kernels
    from fastconv.pool import _shape_tuple
    rng = np.random.default_rng(sum(shape))
    n, c, h, w = shape
    x = rand(rng, shape, dtype)
    ind = _random_valid_indices(rng, n, c, h, w, 2, 2, 0, False)
    g = rand(rng, ind.shape, dtype)
    g.flat[rng.random(g.size) < 0.1] = -0.0
    want = _scatter(g, ind, shape)
    st = _shape_tuple(shape, ind.shape, (2, 2), (2, 2), (0, 0), (1, 1))
    got = _into_nan(lambda out: _kernels.max_pool2d_backward(g.reshape(-1), ind.reshape(-1), None, out, st),
                    shape, dtype)
    _assert_same_bits(got, want)
    _assert_same_bits(max_pool2d_backward(g, x, 2, indices=ind), want)


@pytest.mark.parametrize("shape", [(1, 3, 14, 14), (1, 2, 4, 6), (1, 1, 10, 8)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype_", ["float32", "float64"])
def test_backward_2x2_narrow_planes_refuse_bad_indices(shape, dtype_, isa):
    rng = np.random.default_rng(7)
    x = rand(rng, shape, dtype_)
    y, ind = max_pool2d(x, 2, return_indices=True)
    g = rand(rng, y.shape, dtype_)
    w = shape[3]
    for oh in range(y.shape[2]):
        for ow in range(y.shape[3]):
            pos = (0, shape[1] - 1, oh, ow)
            for bad in _bad_variants(ind, pos, w) + [ind[pos] + 2, ind[pos] - 2]:
                ind2 = ind.copy()
                ind2[pos] = bad
                with pytest.raises(ValueError, match="indices"):
                    max_pool2d_backward(g, x, 2, indices=ind2)


@pytest.mark.parametrize("shape", [(2, 3, 14, 14), (1, 2, 8, 40), (2, 3, 56, 56), (1, 2, 6, 18), (1, 1, 2, 4)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("opts", [{}, dict(divisor_override=3)], ids=["div4", "div3"])
def test_avg_backward_2x2_exact_stored_once(shape, opts, dtype, isa, threads):
    """Exactly tiled avg 2x2/2 backward writes every grad_input element once:
    bit-equal to 0 + g * (1/div) (the zero-filled scatter's value, +0 for -0)."""
    from fastconv import _kernels
    from fastconv.pool import _shape_tuple
    rng = np.random.default_rng(sum(shape))
    n, c, h, w = shape
    g = rand(rng, (n, c, h // 2, w // 2), dtype)
    g.flat[rng.random(g.size) < 0.1] = -0.0
    div = opts.get("divisor_override", 4)
    e = dtype.type(0) + g * (dtype.type(1) / dtype.type(div))
    want = np.repeat(np.repeat(e, 2, axis=2), 2, axis=3)
    st = _shape_tuple(shape, g.shape, (2, 2), (2, 2), (0, 0), (1, 1), True, opts.get("divisor_override", 0))
    got = _into_nan(lambda out: _kernels.avg_pool2d_backward(g.reshape(-1), out, st), shape, dtype)
    _assert_same_bits(got, want)
    _assert_same_bits(avg_pool2d_backward(g, shape, 2, **opts), want)


# ---- max backward with indices by slot gather (AVX-512: 8 float32 / 4 float64
# outputs per block, the row's last block masked; the AVX2 paths alike)

# widths giving w_out = 1..3 (one masked block), exactly 4/8/16 outputs
# (whole blocks only, or a whole block plus a one-output tail), 17 and 33
# (tails of 1), odd and even widths (the last window cut by the edge or not)
MAX3_SLOT_W = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 34, 65, 66]


def _raw_max_backward(g, ind, shape, k, s, p, ceil=False):
    from fastconv import _kernels
    from fastconv.pool import _shape_tuple
    st = _shape_tuple(shape, ind.shape, (k, k), (s, s), (p, p), (1, 1), ceil)
    return _into_nan(lambda out: _kernels.max_pool2d_backward(g.reshape(-1), ind.reshape(-1), None, out, st),
                     shape, g.dtype)


@pytest.mark.parametrize("w", MAX3_SLOT_W)
@pytest.mark.parametrize("h,ceil", [(1, False), (2, True), (6, False), (7, True), (9, False)])
def test_max3_slot_gather_any_valid_index_bit_exact(w, h, ceil, dtype, isa, threads):
    """3x3/2 p1 with any valid tap index: bit-equal (sign of zero included)
    to the in-order scatter into zeros, every grad_input element written
    (the output starts as NaN)."""
    rng = np.random.default_rng(h * 1000 + w)
    shape = (2, 3, h, w)
    ind = _random_valid_indices(rng, 2, 3, h, w, 3, 2, 1, ceil)
    g = rand(rng, ind.shape, dtype)
    g.flat[rng.random(g.size) < 0.1] = -0.0
    want = _scatter(g, ind, shape)
    _assert_same_bits(_raw_max_backward(g, ind, shape, 3, 2, 1, ceil), want)
    _assert_same_bits(max_pool2d_backward(g, np.zeros(shape, dtype), 3, 2, 1, ceil_mode=ceil, indices=ind), want)


@pytest.mark.parametrize("w", [2, 4, 6, 14, 16, 18, 32, 34, 66])
@pytest.mark.parametrize("h", [2, 4, 14])
def test_max2_slot_gather_any_valid_index_bit_exact(w, h, dtype, isa, threads):
    """Exactly tiled 2x2/2 with any valid index, rows of 1..33 outputs."""
    rng = np.random.default_rng(h * 1000 + w)
    shape = (2, 3, h, w)
    ind = _random_valid_indices(rng, 2, 3, h, w, 2, 2, 0)
    g = rand(rng, ind.shape, dtype)
    g.flat[rng.random(g.size) < 0.1] = -0.0
    want = _scatter(g, ind, shape)
    _assert_same_bits(_raw_max_backward(g, ind, shape, 2, 2, 0), want)


@pytest.mark.parametrize("k,s,p,h,w", [(3, 2, 1, 7, 32), (3, 2, 1, 6, 33), (3, 2, 1, 5, 9), (3, 2, 1, 1, 3),
                                       (2, 2, 0, 4, 32), (2, 2, 0, 6, 18), (2, 2, 0, 2, 2)])
@pytest.mark.parametrize("dtype_", ["float32", "float64"])
def test_slot_gather_refuses_bad_indices_at_every_position(k, s, p, h, w, dtype_, isa):
    """Every output position (first/last column and row, block boundaries,
    the masked tail): each kind of bad index is refused."""
    rng = np.random.default_rng(11)
    x = rand(rng, (1, 2, h, w), dtype_)
    y, ind = max_pool2d(x, k, s, p, return_indices=True)
    g = rand(rng, y.shape, dtype_)
    for oh in range(y.shape[2]):
        for ow in range(y.shape[3]):
            pos = (0, 1, oh, ow)
            for bad in _bad_variants(ind, pos, w) + [(1 << 31) + int(ind[pos]), -(1 << 31)]:
                ind2 = ind.copy()
                ind2[pos] = bad
                with pytest.raises(ValueError, match="indices"):
                    max_pool2d_backward(g, x, k, s, p, indices=ind2)


@pytest.mark.parametrize("shape", [(3, 7, 30, 44), (2, 9, 28, 28), (3, 5, 31, 33)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1)])
def test_slot_gather_two_threads_bit_identical(shape, k, s, p, dtype, isa):
    """Enough planes for two threads (exactly tiled 2x2/2 included)."""
    rng = np.random.default_rng(13)
    x = rand(rng, shape, dtype)
    y, ind = max_pool2d(x, k, s, p, return_indices=True)
    g = rand(rng, y.shape, dtype)
    got = []
    for t in (1, 2):
        with config._forced_runtime(threads=t):
            got.append(max_pool2d_backward(g, x, k, s, p, indices=ind))
    _assert_same_bits(got[0], got[1])
    _assert_same_bits(got[0], _scatter(g, ind, shape))
