"""Pooling kernels vs the float64 reference and PyTorch.

Every configuration runs on both ISA paths, 1 and 2 threads and both
dtypes.  Max pooling values and int64 indices must equal the reference and
PyTorch exactly (a max picks an input element); sums carry the dtype's
rounding.  Kernels called directly get NaN-prefilled outputs so an element
the C code forgets to write is caught.
"""
import numpy as np
import pytest

from fastconv import _kernels, config, reference
from fastconv import profile as _profile
from fastconv.pool import (_shape_tuple, avg_pool2d, avg_pool2d_backward, max_pool2d,
                           max_pool2d_backward)
from conftest import HAVE_TORCH, rand, tol

if HAVE_TORCH:
    import torch
    import torch.nn.functional as F


@pytest.fixture(autouse=True, scope="module")
def _torch_one_thread():
    """PyTorch as an oracle on tiny arrays: its thread pool only adds latency
    (badly so on a loaded machine)."""
    if not HAVE_TORCH:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


# ---------------------------------------------------------------- configurations

def _out(size, k, s, p, d, ceil):
    return reference.pool_output_size(size, k, s, p, d, ceil)


def _has_empty_window(h, k, s, p, d, ceil):
    """True when some window along this axis has no tap inside the input."""
    for o in range(_out(h, k, s, p, d, ceil)):
        taps = [o * s - p + t * d for t in range(k)]
        if not any(0 <= t < h for t in taps):
            return True
    return False


def _valid(c):
    for ax in (0, 1):
        size = (c["h"], c["w"])[ax]
        k, s, p, d = c["k"][ax], c["s"][ax], c["p"][ax], c["d"][ax]
        if p > k // 2 or _out(size, k, s, p, d, c["ceil"]) < 1:
            return False
        if _has_empty_window(size, k, s, p, d, c["ceil"]):
            return False
    return True


def _cfg(n, c, h, w, k, s, p=0, d=1, ceil=False, cip=True, div=None):
    pr = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)  # noqa: E731
    return dict(n=n, c=c, h=h, w=w, k=pr(k), s=pr(s), p=pr(p), d=pr(d), ceil=ceil, cip=cip, div=div)


# Hand-picked: the fast paths (2x2/2, 3x3/2 p1, 3x3/1 p1) at widths that
# exercise the vector main loop, its tail and the borders, plus corners.
HAND = [
    _cfg(2, 3, 8, 16, 2, 2),
    _cfg(1, 2, 9, 37, 2, 2, ceil=True),             # odd sizes, ceil overhang
    _cfg(1, 3, 7, 35, 2, 2),                        # odd sizes, floor
    _cfg(2, 2, 13, 33, 3, 2, 1),
    _cfg(1, 3, 12, 40, 3, 2, 1, ceil=True),
    _cfg(1, 2, 11, 29, 3, 1, 1),
    _cfg(1, 2, 6, 19, 3, 1, 1, cip=False),
    _cfg(1, 2, 5, 17, 3, 2, 1, cip=False),
    _cfg(1, 1, 1, 1, 1, 1),                         # 1x1 plane
    _cfg(2, 1, 1, 1, 3, 2, 1),                      # 1x1 plane, window all padding but one tap
    _cfg(1, 2, 5, 5, 5, 1),                         # kernel as large as the input
    _cfg(1, 2, 9, 10, 2, 3),                        # stride > kernel
    _cfg(1, 2, 10, 11, (3, 2), (1, 2), (1, 0), (2, 1), ceil=True),
    _cfg(1, 3, 11, 12, 4, 3, 2, 2, ceil=True, cip=False),
    _cfg(1, 2, 8, 9, 3, 2, 1, div=5),
    _cfg(1, 2, 7, 9, 2, 2, div=3),
    _cfg(1, 1, 2, 40, 2, 2),                        # single output row
    _cfg(1, 1, 3, 18, 3, 1, 1),
    _cfg(1, 1, 4, 9, 3, 2, 1),
]


def _random_cfgs(count, seed):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        k = tuple(int(v) for v in rng.integers(1, 6, 2))
        c = _cfg(int(rng.integers(1, 3)), int(rng.integers(1, 6)), int(rng.integers(1, 15)),
                 int(rng.integers(1, 22)), k, tuple(int(v) for v in rng.integers(1, 5, 2)),
                 tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k),
                 tuple(int(v) for v in rng.integers(1, 4, 2)), bool(rng.integers(0, 2)),
                 bool(rng.integers(0, 2)), [None, None, None, 2, 7][int(rng.integers(0, 5))])
        if _valid(c):
            out.append(c)
    return out


CFGS = [c for c in HAND if _valid(c)] + _random_cfgs(24, 1)
AVG_CFGS = [c for c in HAND if _valid(dict(c, d=(1, 1)))] + [dict(c, d=(1, 1)) for c in _random_cfgs(24, 2)]
AVG_CFGS = [c for c in AVG_CFGS if _valid(c)]


def _id(c):
    return (f"{c['n']}x{c['c']}x{c['h']}x{c['w']}-k{c['k']}-s{c['s']}-p{c['p']}-d{c['d']}"
            f"{'-ceil' if c['ceil'] else ''}{'' if c['cip'] else '-nopad'}{'-div%d' % c['div'] if c['div'] else ''}")


def _maxargs(c):
    return dict(kernel_size=c["k"], stride=c["s"], padding=c["p"], dilation=c["d"], ceil_mode=c["ceil"])


def _avgargs(c):
    return dict(kernel_size=c["k"], stride=c["s"], padding=c["p"], ceil_mode=c["ceil"],
                count_include_pad=c["cip"], divisor_override=c["div"])


def _x(c, dtype, seed=0):
    return rand(np.random.default_rng(seed), (c["n"], c["c"], c["h"], c["w"]), dtype)


def _close(got, want, dtype):
    rtol, atol = tol(dtype)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# ---------------------------------------------------------------- max pooling

@pytest.mark.parametrize("c", CFGS, ids=_id)
def test_max_pool2d_matches_reference_and_torch(c, dtype, isa, threads):
    x = _x(c, dtype)
    x0 = x.copy()
    y, ind = max_pool2d(x, **_maxargs(c), return_indices=True)
    ry, rind = reference.max_pool2d(x, **_maxargs(c), return_indices=True)
    np.testing.assert_array_equal(y, ry.astype(dtype))
    np.testing.assert_array_equal(ind, rind)
    assert ind.dtype == np.int64
    np.testing.assert_array_equal(max_pool2d(x, **_maxargs(c)), y)
    np.testing.assert_array_equal(x, x0)
    if HAVE_TORCH:
        ty, tind = F.max_pool2d(torch.from_numpy(x), c["k"], c["s"], c["p"], c["d"], c["ceil"],
                                return_indices=True)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(ind, tind.numpy())


@pytest.mark.parametrize("c", CFGS, ids=_id)
def test_max_pool2d_backward(c, dtype, isa, threads):
    x = _x(c, dtype)
    y, ind = max_pool2d(x, **_maxargs(c), return_indices=True)
    g = _x(dict(c, h=y.shape[2], w=y.shape[3]), dtype, seed=5)
    want = reference.max_pool2d_backward(g, x, **_maxargs(c))
    gx_x = max_pool2d_backward(g, x, **_maxargs(c))
    gx_i = max_pool2d_backward(g, x, **_maxargs(c), indices=ind)
    _close(gx_x, want, dtype)
    np.testing.assert_array_equal(gx_x, gx_i)
    if HAVE_TORCH:
        tx = torch.from_numpy(x.copy()).requires_grad_()
        F.max_pool2d(tx, c["k"], c["s"], c["p"], c["d"], c["ceil"]).backward(torch.from_numpy(g))
        _close(gx_x, tx.grad.numpy(), dtype)


def _special_input(rng, shape, dtype):
    """Small integers (many ties, signed zeros) sprinkled with NaN and +-inf."""
    x = rng.integers(-2, 3, size=shape).astype(dtype)
    x[rng.random(shape) < 0.1] = -0.0
    x.flat[rng.random(x.size) < 0.08] = np.nan
    x.flat[rng.random(x.size) < 0.05] = np.inf
    x.flat[rng.random(x.size) < 0.05] = -np.inf
    return x


@pytest.mark.parametrize("c", [c for c in CFGS if c["h"] * c["w"] > 1][:20], ids=_id)
def test_max_pool2d_nan_inf_ties(c, dtype, isa):
    rng = np.random.default_rng(3)
    x = _special_input(rng, (c["n"], c["c"], c["h"], c["w"]), dtype)
    y, ind = max_pool2d(x, **_maxargs(c), return_indices=True)
    ry, rind = reference.max_pool2d(x, **_maxargs(c), return_indices=True)
    np.testing.assert_array_equal(y, ry.astype(dtype))     # NaN where the reference has NaN
    np.testing.assert_array_equal(ind, rind)
    if HAVE_TORCH:
        ty, tind = F.max_pool2d(torch.from_numpy(x), c["k"], c["s"], c["p"], c["d"], c["ceil"],
                                return_indices=True)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(ind, tind.numpy())
    g = rand(rng, y.shape, dtype)
    _close(max_pool2d_backward(g, x, **_maxargs(c)), reference.max_pool2d_backward(g, x, **_maxargs(c)), dtype)


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
@pytest.mark.parametrize("fill", [np.nan, np.inf, -np.inf])
def test_max_pool2d_all_special(k, s, p, fill, dtype, isa):
    """Planes of nothing but NaN / inf / -inf (-inf ties with the -inf start value)."""
    x = np.full((1, 2, 7, 21), fill, dtype=dtype)
    y, ind = max_pool2d(x, k, s, p, return_indices=True)
    ry, rind = reference.max_pool2d(x, k, s, p, return_indices=True)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(ind, rind)


def test_max_pool2d_empty_window_matches_torch(isa):
    """A dilated window wholly in the padding: -inf and PyTorch's placeholder index;
    its gradient goes nowhere."""
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    y, ind = max_pool2d(x, 2, 1, 1, 3, return_indices=True)
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == -np.inf and ind[0, 0, 0, 0] == 6
    if HAVE_TORCH:
        ty, tind = F.max_pool2d(torch.from_numpy(x), 2, 1, 1, 3, return_indices=True)
        assert tind.item() == 6
    g = np.ones_like(y)
    np.testing.assert_array_equal(max_pool2d_backward(g, x, 2, 1, 1, 3), np.zeros_like(x))
    np.testing.assert_array_equal(max_pool2d_backward(g, x, 2, 1, 1, 3, indices=ind), np.zeros_like(x))
    np.testing.assert_array_equal(reference.max_pool2d_backward(g, x, 2, 1, 1, 3), np.zeros_like(x))
    np.testing.assert_array_equal(reference.max_pool2d_backward(g, x, 2, 1, 1, 3, indices=ind), np.zeros_like(x))


# ---------------------------------------------------------------- avg pooling

@pytest.mark.parametrize("c", AVG_CFGS, ids=_id)
def test_avg_pool2d_matches_reference_and_torch(c, dtype, isa, threads):
    x = _x(c, dtype)
    x0 = x.copy()
    y = avg_pool2d(x, **_avgargs(c))
    _close(y, reference.avg_pool2d(x, **_avgargs(c)), dtype)
    np.testing.assert_array_equal(x, x0)
    if HAVE_TORCH:
        ty = F.avg_pool2d(torch.from_numpy(x), c["k"], c["s"], c["p"], c["ceil"], c["cip"], c["div"])
        _close(y, ty.numpy(), dtype)


@pytest.mark.parametrize("c", AVG_CFGS, ids=_id)
def test_avg_pool2d_backward(c, dtype, isa, threads):
    x = _x(c, dtype)
    y = avg_pool2d(x, **_avgargs(c))
    g = _x(dict(c, h=y.shape[2], w=y.shape[3]), dtype, seed=7)
    gx = avg_pool2d_backward(g, x.shape, **_avgargs(c))
    _close(gx, reference.avg_pool2d_backward(g, x.shape, **_avgargs(c)), dtype)
    if HAVE_TORCH:
        tx = torch.from_numpy(x.copy()).requires_grad_()
        F.avg_pool2d(tx, c["k"], c["s"], c["p"], c["ceil"], c["cip"], c["div"]).backward(torch.from_numpy(g))
        _close(gx, tx.grad.numpy(), dtype)


def test_avg_pool2d_propagates_nan_inf(dtype, isa):
    x = np.zeros((1, 1, 4, 20), dtype=dtype)
    x[0, 0, 0, 0] = np.nan
    x[0, 0, 2, 5] = np.inf
    y = avg_pool2d(x, 2)
    np.testing.assert_array_equal(y, reference.avg_pool2d(x, 2).astype(dtype))


# ---------------------------------------------------------------- kernels called directly

def _nan(shape, dtype):
    return np.full(shape, np.nan, dtype=dtype)


@pytest.mark.parametrize("c", CFGS[:12] + CFGS[-6:], ids=_id)
def test_kernels_write_every_output(c, dtype, isa, threads):
    """C entry points with NaN/garbage-prefilled outputs: everything is overwritten."""
    x = _x(c, dtype)
    ho = _out(c["h"], c["k"][0], c["s"][0], c["p"][0], c["d"][0], c["ceil"])
    wo = _out(c["w"], c["k"][1], c["s"][1], c["p"][1], c["d"][1], c["ceil"])
    oshape = (c["n"], c["c"], ho, wo)
    st = _shape_tuple(x.shape, oshape, c["k"], c["s"], c["p"], c["d"])
    y, ind = _nan(oshape, dtype), np.full(oshape, -7, dtype=np.int64)
    assert _kernels.max_pool2d(x.reshape(-1), y.reshape(-1), ind.reshape(-1), st) == 0
    ry, rind = reference.max_pool2d(x, **_maxargs(c), return_indices=True)
    np.testing.assert_array_equal(y, ry.astype(dtype))
    np.testing.assert_array_equal(ind, rind)
    y2 = _nan(oshape, dtype)
    _kernels.max_pool2d(x.reshape(-1), y2.reshape(-1), None, st)
    np.testing.assert_array_equal(y2, y)
    g = rand(np.random.default_rng(1), oshape, dtype)
    want = reference.max_pool2d_backward(g, x, **_maxargs(c))
    for use_ind in (True, False):
        gx = _nan(x.shape, dtype)
        _kernels.max_pool2d_backward(g.reshape(-1), ind.reshape(-1) if use_ind else None,
                                     None if use_ind else x.reshape(-1), gx.reshape(-1), st)
        _close(gx, want, dtype)
    if c["d"] == (1, 1):
        st = _shape_tuple(x.shape, oshape, c["k"], c["s"], c["p"], c["d"], c["cip"], c["div"] or 0)
        ya = _nan(oshape, dtype)
        _kernels.avg_pool2d(x.reshape(-1), ya.reshape(-1), st)
        _close(ya, reference.avg_pool2d(x, **_avgargs(c)), dtype)
        gx = _nan(x.shape, dtype)
        _kernels.avg_pool2d_backward(g.reshape(-1), gx.reshape(-1), st)
        _close(gx, reference.avg_pool2d_backward(g, x.shape, **_avgargs(c)), dtype)


# ---------------------------------------------------------------- fast-path sweeps

FAST = [(2, 2, 0), (3, 2, 1), (3, 1, 1)]


class _Oracle:
    """PyTorch when importable (fast), else the reference; float64 results."""

    @staticmethod
    def max(x, *a, **kw):
        if not HAVE_TORCH:
            return reference.max_pool2d(x, *a, return_indices=True, **kw)
        y, i = F.max_pool2d(torch.from_numpy(x).double(), *a, return_indices=True, **kw)
        return y.numpy(), i.numpy()

    @staticmethod
    def max_back(g, x, *a, **kw):
        if not HAVE_TORCH:
            return reference.max_pool2d_backward(g, x, *a, **kw)
        tx = torch.from_numpy(x).double().requires_grad_()
        F.max_pool2d(tx, *a, **kw).backward(torch.from_numpy(g).double())
        return tx.grad.numpy()

    @staticmethod
    def avg(x, *a):
        if not HAVE_TORCH:
            return reference.avg_pool2d(x, *a)
        return F.avg_pool2d(torch.from_numpy(x).double(), *a).numpy()

    @staticmethod
    def avg_back(g, shape, *a):
        if not HAVE_TORCH:
            return reference.avg_pool2d_backward(g, shape, *a)
        tx = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
        F.avg_pool2d(tx, *a).backward(torch.from_numpy(g).double())
        return tx.grad.numpy()


@pytest.mark.parametrize("k,s,p", FAST)
@pytest.mark.parametrize("ceil", [False, True])
def test_fast_paths_all_widths(k, s, p, ceil, dtype, isa):
    """Every width 1..41 at a few heights: main loop, tails and borders."""
    rng = np.random.default_rng(11)
    for w in range(1, 42):
        for h in (1, 2, 7):
            if _out(h, k, s, p, 1, ceil) < 1 or _out(w, k, s, p, 1, ceil) < 1:
                continue
            x = rand(rng, (1, 2, h, w), dtype)
            if w % 3 == 0:
                x[0, 1, h // 2, w // 2] = np.nan
            y, ind = max_pool2d(x, k, s, p, ceil_mode=ceil, return_indices=True)
            ry, rind = _Oracle.max(x, k, s, p, ceil_mode=ceil)
            np.testing.assert_array_equal(y, ry.astype(dtype), err_msg=f"h={h} w={w}")
            np.testing.assert_array_equal(ind, rind, err_msg=f"h={h} w={w}")
            g = rand(rng, y.shape, dtype)
            rg = _Oracle.max_back(g, x, k, s, p, ceil_mode=ceil)
            _close(max_pool2d_backward(g, x, k, s, p, ceil_mode=ceil, indices=ind), rg, dtype)
            _close(max_pool2d_backward(g, x, k, s, p, ceil_mode=ceil), rg, dtype)
            x[0, 1, h // 2, w // 2] = 0.5
            for cip in (True, False):
                _close(avg_pool2d(x, k, s, p, ceil, cip), _Oracle.avg(x, k, s, p, ceil, cip), dtype)
                _close(avg_pool2d_backward(g, x.shape, k, s, p, ceil, cip),
                       _Oracle.avg_back(g, x.shape, k, s, p, ceil, cip), dtype)


# ---------------------------------------------------------------- layouts, threads, empties

@pytest.mark.parametrize("k,s,p", FAST + [(3, 3, 1)])
def test_same_result_across_threads_and_isas(k, s, p, dtype):
    rng = np.random.default_rng(2)
    x = rand(rng, (3, 5, 23, 37), dtype)
    results = []
    for isa_name in config._available_isas():
        for t in (1, 2):
            with config._forced_runtime(isa_name=isa_name, threads=t):
                y, ind = max_pool2d(x, k, s, p, return_indices=True)
                ya = avg_pool2d(x, k, s, p)
                g = np.ones_like(y) * 0.25
                results.append((isa_name, t, y, ind, ya, max_pool2d_backward(g, x, k, s, p, indices=ind),
                                avg_pool2d_backward(g, x.shape, k, s, p)))
    for r in results[1:]:
        for a, b in zip(results[0][2:], r[2:]):
            if results[0][0] == r[0]:
                np.testing.assert_array_equal(a, b)        # thread count never changes a bit
            else:
                _close(a, b, a.dtype) if a.dtype != np.int64 else np.testing.assert_array_equal(a, b)


def test_non_contiguous_and_read_only_inputs(dtype, isa):
    rng = np.random.default_rng(4)
    big = rand(rng, (2, 6, 19, 30), dtype)
    views = [big[:, ::2, 1:, ::-1], big.transpose(0, 1, 3, 2), big[::-1, :, ::2, 3:]]
    ro = big.copy()
    ro.flags.writeable = False
    views.append(ro)
    for v in views:
        v0 = v.copy()
        y, ind = max_pool2d(v, 3, 2, 1, return_indices=True)
        ry, rind = reference.max_pool2d(v0, 3, 2, 1, return_indices=True)
        np.testing.assert_array_equal(y, ry.astype(dtype))
        np.testing.assert_array_equal(ind, rind)
        _close(avg_pool2d(v, 2), reference.avg_pool2d(v0, 2), dtype)
        g = rand(rng, y.shape, dtype)[:, :, ::-1]
        _close(max_pool2d_backward(g, v, 3, 2, 1), reference.max_pool2d_backward(g, v0, 3, 2, 1), dtype)
        _close(max_pool2d_backward(g, v, 3, 2, 1, indices=ind[:, :, ::-1][:, :, ::-1]),
               reference.max_pool2d_backward(g, v0, 3, 2, 1), dtype)
        ga = rand(rng, avg_pool2d(v, 3, 1, 1).shape, dtype).transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2)
        _close(avg_pool2d_backward(ga, v.shape, 3, 1, 1), reference.avg_pool2d_backward(ga, v.shape, 3, 1, 1), dtype)
        np.testing.assert_array_equal(v, v0)


@pytest.mark.parametrize("shape", [(0, 3, 8, 8), (2, 0, 8, 8), (0, 0, 5, 5)])
def test_empty_batch_or_channels(shape, dtype, isa):
    x = np.zeros(shape, dtype=dtype)
    y, ind = max_pool2d(x, 2, return_indices=True)
    assert y.shape == shape[:2] + (shape[2] // 2, shape[3] // 2) and ind.shape == y.shape and y.dtype == dtype
    assert avg_pool2d(x, 3, 1, 1).shape == shape
    assert max_pool2d_backward(y, x, 2).shape == shape
    assert max_pool2d_backward(y, x, 2, indices=ind).shape == shape
    assert avg_pool2d_backward(avg_pool2d(x, 2), shape, 2).shape == shape


def test_3d_input_gives_3d_output(dtype):
    x = rand(np.random.default_rng(6), (3, 9, 10), dtype)
    y, ind = max_pool2d(x, 3, 2, 1, return_indices=True)
    ry, rind = reference.max_pool2d(x[None], 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, ry[0].astype(dtype))
    np.testing.assert_array_equal(ind, rind[0])
    assert max_pool2d_backward(y, x, 3, 2, 1, indices=ind).shape == x.shape
    assert max_pool2d_backward(y, x, 3, 2, 1).shape == x.shape
    ya = avg_pool2d(x, 2)
    _close(ya, reference.avg_pool2d(x[None], 2)[0], dtype)
    _close(avg_pool2d_backward(ya, x.shape, 2), reference.avg_pool2d_backward(ya[None], (1,) + x.shape, 2)[0], dtype)


def test_large_plane_two_threads_match_one(isa):
    """Bigger than a page per plane and more planes than threads."""
    x = rand(np.random.default_rng(8), (2, 5, 64, 70), np.float32)
    outs = []
    for t in (1, 2):
        with config._forced_runtime(threads=t):
            outs.append((max_pool2d(x, 2, return_indices=True), avg_pool2d(x, 3, 1, 1)))
    np.testing.assert_array_equal(outs[0][0][0], outs[1][0][0])
    np.testing.assert_array_equal(outs[0][0][1], outs[1][0][1])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


# ---------------------------------------------------------------- profile hook

class _Recorder:
    def __init__(self):
        self.calls = []

    def _add(self, *args):
        self.calls.append(args)


def test_profile_records_cost_kwargs(monkeypatch):
    rec = _Recorder()
    monkeypatch.setattr(_profile, "_active", [rec])
    x = rand(np.random.default_rng(9), (1, 2, 8, 8), np.float32)
    y, ind = max_pool2d(x, 3, 2, 1, return_indices=True)
    max_pool2d_backward(y, x, 3, 2, 1, indices=ind)
    ya = avg_pool2d(x, 2, count_include_pad=False)
    avg_pool2d_backward(ya, x.shape, 2, count_include_pad=False)
    ops = [c[0] for c in rec.calls]
    assert ops == ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward"]
    for op, algo, kw, sec, ws in rec.calls:
        assert algo == "direct" and sec >= 0 and ws == 0
        assert kw["input_shape"] == (1, 2, 8, 8) and kw["dtype"] == "float32"
    assert rec.calls[0][2]["kernel_size"] == (3, 3) and rec.calls[0][2]["dilation"] == (1, 1)
    assert rec.calls[2][2]["count_include_pad"] is False and rec.calls[2][2]["divisor_override"] is None
    try:
        from fastconv import cost
    except ImportError:
        return
    for op, algo, kw, sec, ws in rec.calls:
        if hasattr(cost, op):
            getattr(cost, op)(**kw)


@pytest.mark.parametrize("k,s,p", FAST + [(3, 3, 1)])
def test_max_pool2d_subnormal_inputs(k, s, p, dtype, isa):
    """Subnormals compare exactly (no DAZ): indices equal the reference's, and
    the backward pass recomputing the argmax agrees with the saved indices."""
    tiny = np.finfo(dtype).tiny
    rng = np.random.default_rng(12)
    x = (rng.integers(-3, 4, size=(2, 3, 9, 21)) * tiny / 8).astype(dtype)
    y, ind = max_pool2d(x, k, s, p, return_indices=True)
    ry, rind = reference.max_pool2d(x, k, s, p, return_indices=True)
    np.testing.assert_array_equal(ind, rind)
    np.testing.assert_array_equal(y, ry.astype(dtype))
    g = rand(rng, y.shape, dtype)
    np.testing.assert_array_equal(max_pool2d_backward(g, x, k, s, p),
                                  max_pool2d_backward(g, x, k, s, p, indices=ind))


@pytest.mark.parametrize("shape", [(2, 5, 13, 14), (5, 13, 14)])
def test_forward_out_is_written_and_returned(shape, dtype, isa):
    """out=: NaN-filled, written in full, the very array returned, equal to a fresh call."""
    x = rand(np.random.default_rng(9), shape, dtype)[..., ::-1]     # non-contiguous input
    for fn, kw in ((max_pool2d, dict(kernel_size=3, stride=2, padding=1)),
                   (max_pool2d, dict(kernel_size=2, ceil_mode=True)),
                   (avg_pool2d, dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
                   (avg_pool2d, dict(kernel_size=2))):
        want = fn(x, **kw)
        out = np.full(want.shape, np.nan, dtype)
        got = fn(x, **kw, out=out)
        assert got is out
        np.testing.assert_array_equal(out, want)
    y, ind = max_pool2d(x, 2, return_indices=True, out=np.empty_like(want))
    ry, rind = max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(ind, rind)
