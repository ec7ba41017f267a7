"""Bad input to the pooling functions: clear TypeError/ValueError naming the
argument and value, never a crash or a silent wrong answer."""
import numpy as np
import pytest

from fastconv import _kernels
from fastconv.pool import (_shape_tuple, avg_pool2d, avg_pool2d_backward, max_pool2d,
                           max_pool2d_backward)

X = np.zeros((1, 2, 6, 6), dtype=np.float32)


@pytest.mark.parametrize("fn", [max_pool2d, avg_pool2d])
@pytest.mark.parametrize("x,exc,match", [
    (np.zeros((6, 6), np.float32), ValueError, "x must be 4-D"),
    (np.zeros((1, 1, 1, 6, 6), np.float32), ValueError, "x must be 4-D"),
    (np.zeros((1, 2, 6, 6), np.int32), TypeError, "dtype float32 or float64"),
    (np.zeros((1, 2, 6, 6), np.complex64), TypeError, "dtype"),
    (np.zeros((1, 2, 6, 6), np.float16), TypeError, "dtype"),
    ("abc", TypeError, "x"),
    (None, TypeError, "x"),
])
def test_bad_input_array(fn, x, exc, match):
    with pytest.raises(exc, match=match):
        fn(x, 2)


@pytest.mark.parametrize("fn", [max_pool2d, avg_pool2d])
@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(kernel_size=0), ValueError, "kernel_size must be >= 1, got 0"),
    (dict(kernel_size=(2, -1)), ValueError, "kernel_size must be >= 1, got -1"),
    (dict(kernel_size=2.0), TypeError, "kernel_size"),
    (dict(kernel_size=(2, 2, 2)), ValueError, "kernel_size"),
    (dict(kernel_size=True), TypeError, "kernel_size"),
    (dict(kernel_size=2, stride=0), ValueError, "stride must be >= 1, got 0"),
    (dict(kernel_size=2, padding=-1), ValueError, "padding must be >= 0, got -1"),
    (dict(kernel_size=2, padding=2), ValueError, "padding=2.*at most half"),
    (dict(kernel_size=(3, 2), padding=(1, 2)), ValueError, "at most half"),
    (dict(kernel_size=7), ValueError, "output size .* too small"),
    (dict(kernel_size=2, ceil_mode="yes"), TypeError, "ceil_mode"),
    (dict(kernel_size=2 ** 63), ValueError, "kernel_size"),
])
def test_bad_params(fn, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(X, **kwargs)


@pytest.mark.parametrize("dilation,exc", [(0, ValueError), ((1, 0), ValueError), (1.5, TypeError)])
def test_bad_dilation(dilation, exc):
    with pytest.raises(exc, match="dilation"):
        max_pool2d(X, 2, dilation=dilation)


def test_dilated_window_too_large():
    with pytest.raises(ValueError, match="too small"):
        max_pool2d(X, 3, dilation=3)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(divisor_override=0), ValueError, "divisor_override"),
    (dict(divisor_override=-2), ValueError, "divisor_override must be positive, got -2"),
    (dict(divisor_override=1.5), TypeError, "divisor_override"),
    (dict(count_include_pad="no"), TypeError, "count_include_pad"),
])
def test_bad_avg_options(kw, exc, match):
    with pytest.raises(exc, match=match):
        avg_pool2d(X, 2, **kw)


def test_max_backward_shape_and_dtype_mismatch():
    y, ind = max_pool2d(X, 2, return_indices=True)
    with pytest.raises(ValueError, match=r"grad_out has shape \(1, 2, 2, 2\)"):
        max_pool2d_backward(np.zeros((1, 2, 2, 2), np.float32), X, 2)
    with pytest.raises(TypeError, match="grad_out has dtype float64"):
        max_pool2d_backward(y.astype(np.float64), X, 2)
    with pytest.raises(TypeError, match="indices must have dtype int64, got int32"):
        max_pool2d_backward(y, X, 2, indices=ind.astype(np.int32))
    with pytest.raises(ValueError, match="indices has shape"):
        max_pool2d_backward(y, X, 2, indices=ind[:, :1])
    with pytest.raises(TypeError, match="indices must be a NumPy array"):
        max_pool2d_backward(y, X, 2, indices=ind.tolist())
    with pytest.raises(ValueError, match="x must be 4-D"):
        max_pool2d_backward(y, X[0, 0], 2, indices=ind)
    with pytest.raises(TypeError, match="x must have dtype"):
        max_pool2d_backward(y, X.astype(np.int64), 2, indices=ind)


@pytest.mark.parametrize("bad", [-1, 36, 1 << 40, 2, 12])
def test_max_backward_index_outside_window(bad, isa):
    """Out of range or inside the plane but outside its own window (2 and 12 belong to other windows)."""
    x = np.random.default_rng(0).uniform(-1, 1, (1, 2, 6, 6)).astype(np.float32)
    y, ind = max_pool2d(x, 2, return_indices=True)
    ind2 = ind.copy()
    ind2[0, 1, 0, 0] = bad
    with pytest.raises(ValueError, match="indices"):
        max_pool2d_backward(y, x, 2, indices=ind2)
    np.testing.assert_array_equal(ind, max_pool2d(x, 2, return_indices=True)[1])  # input untouched


@pytest.mark.parametrize("k,s,p", [(3, 2, 1), (3, 1, 1), (2, 2, 0), (3, 3, 1)])
def test_max_backward_index_outside_window_fast_paths(k, s, p, isa):
    x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 17, 37)).astype(np.float64)
    y, ind = max_pool2d(x, k, s, p, return_indices=True)
    for pos in [(0, 0, 0, 0), (1, 2, 3, 9), (1, 1, y.shape[2] - 1, y.shape[3] - 1)]:
        for delta in (-3, 3, 37 * 3, -37 * 3):
            ind2 = ind.copy()
            ind2[pos] += delta
            with pytest.raises(ValueError, match="indices"):
                max_pool2d_backward(y, x, k, s, p, indices=ind2)


def test_avg_backward_bad_input_shape():
    g = np.zeros((1, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="input_shape must be a tuple"):
        avg_pool2d_backward(g, (2, 6, 6, 1, 1), 2)
    with pytest.raises(ValueError, match="input_shape must be a tuple"):
        avg_pool2d_backward(g, 6, 2)
    with pytest.raises(TypeError, match="input_shape"):
        avg_pool2d_backward(g, (1, 2, 6.0, 6), 2)
    with pytest.raises(ValueError, match="input_shape must be >= 0"):
        avg_pool2d_backward(g, (1, -2, 6, 6), 2)
    with pytest.raises(ValueError, match=r"grad_out has shape \(1, 2, 3, 3\)"):
        avg_pool2d_backward(g, (1, 2, 8, 8), 2)
    with pytest.raises(TypeError, match="grad_out"):
        avg_pool2d_backward(g.astype(np.int16), (1, 2, 6, 6), 2)


def test_huge_sizes_rejected_without_allocating():
    g = np.zeros((1, 1, 1, 1), np.float32)
    with pytest.raises(ValueError, match="input_shape=.* too large"):
        avg_pool2d_backward(g, (2 ** 31, 2 ** 31, 2, 2), 2)
    with pytest.raises(ValueError, match="x.shape=.* too large"):
        max_pool2d(np.broadcast_to(np.float32(0), (2 ** 29, 2 ** 29, 2, 3)), 1)


def test_c_layer_rejects_bad_shapes():
    """The Cython/C checks are the last line of defence: short buffers and
    inconsistent sizes give ValueError, not a read past the end."""
    x = np.zeros(36, np.float32)
    y = np.zeros(9, np.float32)
    st = _shape_tuple((1, 1, 6, 6), (1, 1, 3, 3), (2, 2), (2, 2), (0, 0), (1, 1))
    with pytest.raises(ValueError):
        _kernels.max_pool2d(x[:35], y, None, st)
    with pytest.raises(ValueError):
        _kernels.avg_pool2d(x, y[:8], st)
    bad = list(st)
    bad[8] = 0  # stride 0
    with pytest.raises(ValueError):
        _kernels.avg_pool2d(x, y, tuple(bad))
    bad = list(st)
    bad[0] = 2 ** 62  # n overflows n*c*h*w*8
    with pytest.raises(ValueError):
        _kernels.avg_pool2d_backward(y, x, tuple(bad))


@pytest.mark.parametrize("fn", [max_pool2d, avg_pool2d])
@pytest.mark.parametrize("out,exc,match", [
    ([0.0], TypeError, "out must be a NumPy array"),
    (np.zeros((1, 2, 3, 4), np.float32), ValueError, r"out has shape \(1, 2, 3, 4\), expected \(1, 2, 3, 3\)"),
    (np.zeros((1, 2, 3, 3), np.float64), TypeError, "out has dtype float64, expected float32"),
    (np.zeros((1, 2, 3, 6), np.float32)[..., ::2], ValueError, "out must be C-contiguous"),
])
def test_bad_out(fn, out, exc, match):
    before = out.copy() if isinstance(out, np.ndarray) else None
    with pytest.raises(exc, match=match):
        fn(X, 2, out=out)
    if before is not None:
        np.testing.assert_array_equal(out, before)


@pytest.mark.parametrize("fn", [max_pool2d, avg_pool2d])
def test_out_overlapping_x_or_read_only(fn):
    x = np.zeros((1, 2, 6, 6), np.float32)
    with pytest.raises(ValueError, match="out must not overlap x"):
        fn(x, 1, out=x)
    ro = np.zeros((1, 2, 3, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        fn(X, 2, out=ro)
