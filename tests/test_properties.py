"""Property-based tests: random configurations of every op and every
algorithm against the float64 reference (issue 9).

Hypothesis draws the geometry (batch 0..3 included, groups, kernel, stride,
padding, dilation, ceil_mode, ...), the dtype, the ISA path, 1 or 2 kernel
threads and the memory layout of every array (contiguous, strided, negative
stride, Fortran order, zero-stride broadcast).  The runs are bounded and
derandomized so CI sees the same examples every time.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import tol
from fastconv import config, conv, pool
from fastconv import reference as ref

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])
LAYOUTS = ("contig", "strided", "negstride", "fortran", "broadcast")


def _layout(a, kind):
    """`a` (or, for "broadcast", a[:1] repeated along axis 0) in another memory layout."""
    if kind == "broadcast":
        return np.broadcast_to(a[:1], a.shape) if a.ndim and a.shape[0] else a
    if kind == "strided":
        big = np.zeros(a.shape + (2,), a.dtype)
        big[..., 1] = a
        return big[..., 1]
    if kind == "negstride":
        return np.flip(np.flip(a).copy())
    if kind == "fortran":
        return np.asfortranarray(a)
    return a


def _arr(data, shape, dtype, name):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label=f"{name}_seed"))
    a = rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
    return _layout(a, data.draw(st.sampled_from(LAYOUTS), label=f"{name}_layout"))


def _runtime(data):
    isa = data.draw(st.sampled_from(config._available_isas()), label="isa")
    threads = data.draw(st.sampled_from([1, 2]), label="threads")
    return config._forced_runtime(isa_name=isa, threads=threads)


def _close(got, want, dtype):
    rtol, atol = tol(dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def _same_inputs(before, after):
    for b, a in zip(before, after):
        if a is not None:
            np.testing.assert_array_equal(a, b, err_msg="an input was modified")


def _dilated_refuses(algo, dilation, fn):
    """algo='dilated' may refuse dilation 1 (it decomposes dilated convolutions)."""
    if algo == "dilated" and tuple(dilation) == (1, 1):
        try:
            return fn()
        except ValueError as e:
            assert "dilat" in str(e)
            return None
    return fn()


@st.composite
def conv_geometry(draw):
    """A valid conv2d configuration: shapes and geometry arguments."""
    groups = draw(st.integers(1, 3))
    cg = draw(st.integers(0, 3) if draw(st.booleans()) else st.integers(1, 3))
    og = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["int", "pair", "same", "valid"]))
    if mode == "same":
        sh = sw = 1
    if mode == "int":
        p = draw(st.integers(0, 2))
        padding, pads = p, (p, p)
    elif mode == "pair":
        pads = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
        padding = pads
    elif mode == "same":
        padding, pads = "same", (dh * (kh - 1) // 2, dw * (kw - 1) // 2)
    else:
        padding, pads = "valid", (0, 0)
    # input at least as large as the dilated kernel minus the padding on both sides
    h = max(0, dh * (kh - 1) + 1 - 2 * pads[0]) + draw(st.integers(0, 5))
    w = max(0, dw * (kw - 1) + 1 - 2 * pads[1]) + draw(st.integers(0, 5))
    if mode == "same":
        h, w = max(h, 1), max(w, 1)
    n = draw(st.integers(0, 3))
    return dict(x=(n, cg * groups, h, w), w=(og * groups, cg, kh, kw), stride=(sh, sw),
                padding=padding, dilation=(dh, dw), groups=groups)


def _conv_params(op):
    return [pytest.param(a, id=a) for a in conv.algorithms(op)]


@pytest.mark.parametrize("algo", _conv_params("conv2d"))
@SETTINGS
@given(geo=conv_geometry(), data=st.data())
def test_conv2d_matches_reference(algo, geo, data):
    dtype = np.dtype(data.draw(st.sampled_from(["float32", "float64"]), label="dtype"))
    x = _arr(data, geo["x"], dtype, "x")
    w = _arr(data, geo["w"], dtype, "w")
    b = _arr(data, (geo["w"][0],), dtype, "bias") if data.draw(st.booleans(), label="bias") else None
    kw = {k: geo[k] for k in ("stride", "padding", "dilation", "groups")}
    before = [np.array(x), np.array(w), None if b is None else np.array(b)]
    with _runtime(data):
        y = _dilated_refuses(algo, geo["dilation"], lambda: conv.conv2d(x, w, b, algo=algo, **kw))
    _same_inputs(before, [x, w, b])
    if y is not None:
        _close(y, ref.conv2d(x, w, b, **kw), dtype)


@pytest.mark.parametrize("algo", _conv_params("conv2d_backward"))
@SETTINGS
@given(geo=conv_geometry(), data=st.data())
def test_conv2d_backward_matches_reference(algo, geo, data):
    dtype = np.dtype(data.draw(st.sampled_from(["float32", "float64"]), label="dtype"))
    kw = {k: geo[k] for k in ("stride", "padding", "dilation", "groups")}
    x = _arr(data, geo["x"], dtype, "x")
    w = _arr(data, geo["w"], dtype, "w")
    gy = _arr(data, ref.conv2d(np.zeros(geo["x"]), np.zeros(geo["w"]), **kw).shape, dtype, "grad_out")
    needs = tuple(data.draw(st.lists(st.sampled_from(["input", "weight", "bias"]), unique=True),
                            label="needs"))
    before = [np.array(gy), np.array(x), np.array(w)]
    with _runtime(data):
        got = _dilated_refuses(algo, geo["dilation"],
                               lambda: conv.conv2d_backward(gy, x, w, needs=needs, algo=algo, **kw))
    _same_inputs(before, [gy, x, w])
    if got is None:
        return
    want = ref.conv2d_backward(gy, x, w, needs=needs, **kw)
    assert len(got) == 3
    for g, r, name in zip(got, want, ("input", "weight", "bias")):
        if name in needs:
            _close(g, r, dtype)
        else:
            assert g is None


@st.composite
def transpose_geometry(draw):
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(0, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    oph = draw(st.integers(0, max(sh, dh) - 1))
    opw = draw(st.integers(0, max(sw, dw) - 1))
    # padding small enough that the output is at least 1
    full_h = (h - 1) * sh + dh * (kh - 1) + oph + 1
    full_w = (w - 1) * sw + dw * (kw - 1) + opw + 1
    ph = draw(st.integers(0, min(3, (full_h - 1) // 2)))
    pw = draw(st.integers(0, min(3, (full_w - 1) // 2)))
    n = draw(st.integers(0, 3))
    return dict(x=(n, cg * groups, h, w), w=(cg * groups, og, kh, kw), stride=(sh, sw),
                padding=(ph, pw), output_padding=(oph, opw), dilation=(dh, dw), groups=groups)


@pytest.mark.parametrize("algo", _conv_params("conv_transpose2d"))
@SETTINGS
@given(geo=transpose_geometry(), data=st.data())
def test_conv_transpose2d_matches_reference(algo, geo, data):
    dtype = np.dtype(data.draw(st.sampled_from(["float32", "float64"]), label="dtype"))
    x = _arr(data, geo["x"], dtype, "x")
    w = _arr(data, geo["w"], dtype, "w")
    c_out = geo["w"][1] * geo["groups"]
    b = _arr(data, (c_out,), dtype, "bias") if data.draw(st.booleans(), label="bias") else None
    kw = {k: geo[k] for k in ("stride", "padding", "output_padding", "dilation", "groups")}
    before = [np.array(x), np.array(w), None if b is None else np.array(b)]
    with _runtime(data):
        y = _dilated_refuses(algo, geo["dilation"],
                             lambda: conv.conv_transpose2d(x, w, b, algo=algo, **kw))
    _same_inputs(before, [x, w, b])
    if y is not None:
        _close(y, ref.conv_transpose2d(x, w, b, **kw), dtype)


@SETTINGS
@given(data=st.data())
def test_compose_matches_reference_and_sequential_convs(data):
    dtype = np.dtype(data.draw(st.sampled_from(["float32", "float64"]), label="dtype"))
    c0, c1, c2 = (data.draw(st.integers(1, 4), label=f"c{i}") for i in range(3))
    k1 = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    k2 = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    w1 = _arr(data, (c1, c0) + k1, dtype, "w1")
    w2 = _arr(data, (c2, c1) + k2, dtype, "w2")
    before = [np.array(w1), np.array(w2)]
    k = conv.compose(w1, w2)
    _same_inputs(before, [w1, w2])
    _close(k, ref.compose(w1, w2), dtype)
    x = np.random.default_rng(0).uniform(-1, 1, (1, c0, k1[0] + k2[0] + 2, k1[1] + k2[1] + 1))
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(ref.conv2d(x, k), ref.conv2d(ref.conv2d(x, w1), w2),
                               rtol=rtol * 10, atol=atol * 10)


@st.composite
def pool_geometry(draw, max_pool):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.sampled_from([None, "int", "pair"]))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    if stride == "int":
        sw = sh
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    dh, dw = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if max_pool else (1, 1)
    ceil_mode = draw(st.booleans())
    h = max(1, dh * (kh - 1) + 1 - 2 * ph) + draw(st.integers(0, 5))
    w = max(1, dw * (kw - 1) + 1 - 2 * pw) + draw(st.integers(0, 5))
    n, c = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    kw_ = dict(kernel_size=(kh, kw), padding=(ph, pw), ceil_mode=ceil_mode)
    if stride is not None:
        kw_["stride"] = sh if stride == "int" else (sh, sw)
    if max_pool:
        kw_["dilation"] = (dh, dw)
    else:
        kw_["count_include_pad"] = draw(st.booleans())
        kw_["divisor_override"] = draw(st.sampled_from([None, 1, 3, 7]))
    shape = (n, c, h, w)
    if draw(st.booleans()) and n == 1:
        shape = (c, h, w)          # CHW input
    return shape, kw_


def _ref_pool(fn, x, **kw):
    """Reference on a 4-D view (the reference is NCHW only)."""
    if x.ndim == 3:
        out = fn(x[None], **kw)
        return tuple(o[0] for o in out) if isinstance(out, tuple) else out[0]
    return fn(x, **kw)


@SETTINGS
@given(geo=pool_geometry(max_pool=True), data=st.data())
def test_max_pool2d_matches_reference(geo, data):
    shape, kw = geo
    dtype = np.dtype(data.draw(st.sampled_from(["float32", "float64"]), label="dtype"))
    x = _arr(data, shape, dtype, "x")
    before = [np.array(x)]
    with _runtime(data):
        y, idx = pool.max_pool2d(x, return_indices=True, **kw)
        y2 = pool.max_pool2d(x, **kw)
    _same_inputs(before, [x])
    want_y, want_idx = _ref_pool(ref.max_pool2d, x, return_indices=True, **kw)
    np.testing.assert_array_equal(y, want_y.astype(dtype))
    np.testing.assert_array_equal(y2, y)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx, want_idx)


@pytest.mark.parametrize("with_indices", [False, True], ids=["recompute", "indices"])
@SETTINGS
@given(geo=pool_geometry(max_pool=True), data=st.data())
def test_max_pool2d_backward_matches_reference(with_indices, geo, data):
    shape, kw = geo
    dtype = np.dtype(data.draw(st.sampled_from(["float32", "float64"]), label="dtype"))
    x = _arr(data, shape, dtype, "x")
    _, idx = _ref_pool(ref.max_pool2d, x, return_indices=True, **kw)
    gy = _arr(data, idx.shape, dtype, "grad_out")
    extra = {}
    if with_indices:
        lay = data.draw(st.sampled_from(LAYOUTS), label="indices_layout")
        if lay == "broadcast":     # batch-constant indices are right for a batch-constant x
            x = _layout(x, "broadcast")
            _, idx = _ref_pool(ref.max_pool2d, x, return_indices=True, **kw)
        extra["indices"] = _layout(np.array(idx), lay)
    before = [np.array(gy), np.array(x)]
    with _runtime(data):
        gx = pool.max_pool2d_backward(gy, x, **kw, **extra)
    _same_inputs(before, [gy, x])
    if x.size == 0:       # the reference cannot reshape empty indices
        assert gx.shape == x.shape and gx.dtype == dtype
        return
    _close(gx, _max_backward_ref(gy, x, kw), dtype)


def _max_backward_ref(gy, x, kw):
    if x.ndim == 3:
        return ref.max_pool2d_backward(gy[None], x[None], **kw)[0]
    return ref.max_pool2d_backward(gy, x, **kw)


@SETTINGS
@given(geo=pool_geometry(max_pool=False), data=st.data())
def test_avg_pool2d_matches_reference(geo, data):
    shape, kw = geo
    dtype = np.dtype(data.draw(st.sampled_from(["float32", "float64"]), label="dtype"))
    x = _arr(data, shape, dtype, "x")
    before = [np.array(x)]
    with _runtime(data):
        y = pool.avg_pool2d(x, **kw)
    _same_inputs(before, [x])
    _close(y, _ref_pool(ref.avg_pool2d, x, **kw), dtype)


@SETTINGS
@given(geo=pool_geometry(max_pool=False), data=st.data())
def test_avg_pool2d_backward_matches_reference(geo, data):
    shape, kw = geo
    dtype = np.dtype(data.draw(st.sampled_from(["float32", "float64"]), label="dtype"))
    out_shape = _ref_pool(ref.avg_pool2d, np.zeros(shape), **kw).shape
    gy = _arr(data, out_shape, dtype, "grad_out")
    before = [np.array(gy)]
    with _runtime(data):
        gx = pool.avg_pool2d_backward(gy, shape, **kw)
    _same_inputs(before, [gy])
    if len(shape) == 3:
        want = ref.avg_pool2d_backward(gy[None], (1,) + shape, **kw)[0]
    else:
        want = ref.avg_pool2d_backward(gy, shape, **kw)
    _close(gx, want, dtype)
