"""conv2d forward: kernels vs the float64 reference and PyTorch, every algorithm,
both ISA paths, both dtypes, 1 and 2 threads, odd layouts, out=, workspace."""
import numpy as np
import pytest

from conftest import HAVE_TORCH, tol
from _conv_cases import (CASES, NO_TORCH, THREADED, assert_bit_identical, both_thread_counts,
                         conv_algos, make, recorder)  # noqa: F401 (fixture)
from fastconv import _kernels, _workspace, conv, reference

ALL = list(CASES) + list(THREADED)


def _check(y, ref, dtype):
    rtol, atol = tol(dtype)
    assert y.dtype == dtype
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("algo", conv_algos("conv2d"))
@pytest.mark.parametrize("case", ALL)
def test_matches_reference(case, algo, dtype, isa):
    x, w, b, kw = make(case, dtype)
    y = conv.conv2d(x, w, b, **kw, algo=algo)
    _check(y, reference.conv2d(x, w, b, **kw), dtype)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed")
@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("case", [c for c in ALL if c not in NO_TORCH])
def test_matches_torch(case, dtype, isa):
    import torch
    x, w, b, kw = make(case, dtype)
    y = conv.conv2d(x, w, b, **kw)
    t = lambda a: None if a is None else torch.from_numpy(a.astype(np.float64))  # noqa: E731
    yt = torch.nn.functional.conv2d(t(x), t(w), t(b), **kw).numpy()
    _check(y, yt, dtype)


@pytest.mark.parametrize("case", ALL)
def test_bit_identical_across_threads(case, dtype, isa):
    x, w, b, kw = make(case, dtype)
    y1, y2 = both_thread_counts(lambda: conv.conv2d(x, w, b, **kw))
    assert_bit_identical(y1, y2)


def test_threads_fixture_results(threads, isa, dtype):
    """Every thread count gives the reference answer on a shape that splits."""
    x, w, b, kw = make("threaded_groups_stride", dtype, seed=3)
    _check(conv.conv2d(x, w, b, **kw), reference.conv2d(x, w, b, **kw), dtype)


@pytest.mark.parametrize("layout", ["transposed", "negative_stride", "strided_slice", "readonly",
                                    "broadcast_weight", "fortran"])
def test_odd_layouts_and_inputs_unchanged(layout, dtype, isa):
    rng = np.random.default_rng(7)
    base_x = rng.uniform(-1, 1, (2, 3, 9, 8)).astype(dtype)
    base_w = rng.uniform(-1, 1, (4, 3, 3, 2)).astype(dtype)
    b = rng.uniform(-1, 1, 4).astype(dtype)
    if layout == "transposed":
        x = base_x.transpose(0, 1, 3, 2)
        w = base_w.transpose(0, 1, 3, 2)
    elif layout == "negative_stride":
        x = base_x[:, ::-1, ::-1, ::-1]
        w = base_w[::-1, :, :, ::-1]
    elif layout == "strided_slice":
        x = rng.uniform(-1, 1, (4, 3, 18, 8)).astype(dtype)[::2, :, ::2]
        w = base_w
    elif layout == "readonly":
        x, w = base_x.copy(), base_w.copy()
        x.flags.writeable = False
        w.flags.writeable = False
        b = b.copy()
        b.flags.writeable = False
    elif layout == "broadcast_weight":
        x = base_x
        w = np.broadcast_to(base_w[:1], base_w.shape)
    else:
        x = np.asfortranarray(base_x)
        w = np.asfortranarray(base_w)
    assert not (x.flags.c_contiguous and w.flags.c_contiguous) or layout == "readonly"
    snapshot = [a.copy() for a in (x, w, b)]
    y = conv.conv2d(x, w, b, stride=(1, 2), padding=1)
    _check(y, reference.conv2d(np.array(x), np.array(w), b, stride=(1, 2), padding=1), dtype)
    for before, after in zip(snapshot, (x, w, b)):
        assert np.array_equal(before, after)


@pytest.mark.parametrize("case", ["basic_odd", "same_even_kernel", "empty_batch", "trivial"])
def test_out_prefilled_with_nan(case, dtype, isa):
    x, w, b, kw = make(case, dtype)
    ref = reference.conv2d(x, w, b, **kw)
    out = np.full(ref.shape, np.nan, dtype)
    y = conv.conv2d(x, w, b, **kw, out=out)
    assert y is out
    assert not np.isnan(out).any()
    _check(out, ref, dtype)


def test_auto_reports_the_algorithm_used(recorder, dtype):
    x, w, b, kw = make("basic_odd", dtype)
    conv.conv2d(x, w, b, **kw, algo="auto")
    (rec,) = recorder.records
    assert rec["op"] == "conv2d"
    assert rec["algo"] in conv.algorithms("conv2d") and rec["algo"] != "auto"
    assert rec["cost_kwargs"]["algo"] == rec["algo"]
    assert rec["seconds"] >= 0


def _pads(case):
    x_shape, w_shape, stride, padding, dilation, groups, _ = (CASES | THREADED)[case]
    d = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    if padding == "same":
        return tuple(d[i] * (w_shape[2 + i] - 1) // 2 for i in range(2))
    if padding == "valid":
        return (0, 0)
    return padding if isinstance(padding, tuple) else (padding, padding)


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


@pytest.mark.parametrize("algo", [a for a in conv_algos("conv2d") if a != "auto"])
@pytest.mark.parametrize("case", ["basic_odd", "asym_pairs_groups", "same_even_kernel",
                                  "threaded_3x3", "empty_batch"])
def test_workspace_matches_model(case, algo, dtype, recorder):
    """Bytes the kernel allocates == the Python workspace model (and the C query)."""
    x, w, b, kw = make(case, dtype)
    y = conv.conv2d(x, w, b, **kw, algo=algo)
    (rec,) = recorder.records
    stride, dilation = _pair(kw["stride"]), _pair(kw["dilation"])
    model = _workspace.conv2d(algo, "forward", x.shape, w.shape, y.shape, stride, _pads(case),
                              dilation, kw["groups"], x.dtype.itemsize)
    assert rec["workspace_bytes"] == model
    shape = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], w.shape[0], w.shape[2], w.shape[3],
             y.shape[2], y.shape[3], *stride, *_pads(case), *dilation, kw["groups"])
    assert _kernels.conv2d_workspace(shape, conv._ALGO_CODES[algo], x.dtype.itemsize, 0) == model


def test_cost_kwargs_are_accepted_by_cost_model(recorder):
    cost = pytest.importorskip("fastconv.cost")
    x, w, b, kw = make("same_dilated", np.float32)
    y = conv.conv2d(x, w, b, **kw)
    (rec,) = recorder.records
    c = getattr(cost, rec["op"])(**rec["cost_kwargs"])
    assert tuple(c.output_shape) == y.shape


def test_no_record_without_profile():
    from fastconv import profile as _profile
    assert _profile._active == []
    x, w, b, kw = make("trivial", np.float64)
    conv.conv2d(x, w, b, **kw)
    assert _profile._active == []


def test_algorithms_lists_working_algorithms():
    for op in ("conv2d", "conv2d_backward", "conv_transpose2d"):
        names = conv.algorithms(op)
        assert names[:2] == ["auto", "direct"]
        assert len(set(names)) == len(names)
        assert set(names) <= {"auto", "direct", "im2col", "dilated"}
    for op in ("max_pool2d", "avg_pool2d", "max_pool2d_backward", "avg_pool2d_backward"):
        assert conv.algorithms(op) == ["auto", "direct"]


def test_dilated_algorithm_on_dilated_config(dtype):
    if "dilated" not in conv.algorithms("conv2d"):
        pytest.skip("dilated kernels not available in this build")
    x, w, b, kw = make("stride_pad_dil_pairs", dtype)
    _check(conv.conv2d(x, w, b, **kw, algo="dilated"), reference.conv2d(x, w, b, **kw), dtype)


def test_empty_outputs_have_the_right_shape(dtype):
    x, w, b, kw = make("empty_batch", dtype)
    y = conv.conv2d(x, w, b, **kw)
    assert y.shape == (0, 4, 5, 5)
    x, w, b, kw = make("empty_in_channels", dtype)
    y = conv.conv2d(x, w, b, **kw)
    assert y.shape == (2, 3, 5, 5)
    np.testing.assert_array_equal(y, np.broadcast_to(b[None, :, None, None], y.shape))


def test_c_dispatch_rejects_unknown_algorithm():
    x = np.zeros(9)
    w = np.zeros(1)
    y = np.zeros(9)
    shape = (1, 1, 3, 3, 1, 1, 1, 3, 3, 1, 1, 0, 0, 1, 1, 1)
    with pytest.raises(ValueError, match="invalid argument"):
        _kernels.conv2d(x, w, None, y, shape, 7)
    with pytest.raises(ValueError, match="invalid argument"):
        _kernels.conv2d_grad_input(y, w, x, shape, -1)
    with pytest.raises(ValueError, match="invalid argument"):
        _kernels.conv2d_grad_weight(y, x, w, shape, 3)
    with pytest.raises(ValueError, match="invalid argument"):
        _kernels.conv2d_workspace(shape, 9, 8, 0)
    with pytest.raises(ValueError, match="invalid argument"):
        _kernels.conv2d_workspace(shape, 0, 3, 0)
    with pytest.raises(ValueError, match="invalid argument"):
        _kernels.conv2d_workspace(shape, 0, 8, 3)
    assert _kernels.conv2d_workspace(shape, _kernels.ALGO_DIRECT, 8, 0) == 0


def test_c_kernel_tolerates_asymmetric_same_shape(dtype):
    """The C struct has top/left padding only: a larger h_out clips bottom taps exactly."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (1, 2, 5, 6)).astype(dtype)
    w = rng.uniform(-1, 1, (3, 2, 2, 4)).astype(dtype)
    y = np.full((1, 3, 5, 6), np.nan, dtype)
    shape = (1, 2, 5, 6, 3, 2, 4, 5, 6, 1, 1, 0, 1, 1, 1, 1)
    _kernels.conv2d(x.reshape(-1), w.reshape(-1), None, y.reshape(-1), shape, _kernels.ALGO_DIRECT)
    _check(y, reference.conv2d(x, w, padding="same"), dtype)


def test_add_channel_bias_kernel(dtype, threads):
    rng = np.random.default_rng(2)
    y = rng.uniform(-1, 1, (3, 5, 7 * 9)).astype(dtype)
    b = rng.uniform(-1, 1, 5).astype(dtype)
    want = y + b[None, :, None]
    _kernels.add_channel_bias(y.reshape(-1), b, 3, 5, 63)
    np.testing.assert_array_equal(y, want)
    _kernels.add_channel_bias(np.zeros(0, dtype), np.zeros(0, dtype), 3, 0, 63)  # empty: no-op


def test_profile_hook_is_the_module_whatever_the_import_order():
    """fastconv.profile is re-exported as a function; conv must still hold the module."""
    import importlib
    import types
    mod = importlib.reload(conv)
    assert isinstance(mod._profile, types.ModuleType)
    assert hasattr(mod._profile, "_active")
