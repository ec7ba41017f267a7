"""conv_transpose2d vs the float64 reference and PyTorch: output_padding (both
of PyTorch's rules), groups, dilation, bias, odd layouts, threads, ISAs."""
import numpy as np
import pytest

from conftest import HAVE_TORCH, tol
from _conv_cases import (assert_bit_identical, both_thread_counts, conv_algos,  # noqa: F401
                         recorder)
from fastconv import _workspace, conv, reference

# x shape, w shape (C_in, C_out/groups, kH, kW), stride, padding, output_padding, groups, dilation, bias
CASES = {
    "basic": ((2, 3, 5, 6), (3, 4, 3, 3), 1, 1, 0, 1, 1, True),
    "stride2_outpad": ((1, 4, 4, 5), (4, 2, 3, 3), 2, 1, 1, 1, 1, False),
    "outpad_lt_dilation_only": ((1, 2, 4, 3), (2, 3, 2, 2), 1, 0, (1, 1), 1, 2, True),
    "asym_pairs": ((2, 2, 5, 4), (2, 3, 3, 2), (2, 3), (1, 0), (1, 2), 1, (1, 2), False),
    "groups": ((1, 6, 4, 4), (6, 2, 3, 3), 2, 1, 0, 3, 1, True),
    "depthwise": ((2, 5, 3, 6), (5, 1, 3, 3), (1, 2), (0, 1), 0, 5, (2, 1), False),
    "one_by_one": ((1, 3, 4, 4), (3, 2, 1, 1), 1, 0, 0, 1, 1, True),
    "stride_gt_kernel": ((1, 2, 3, 4), (2, 3, 2, 2), 3, 0, 2, 1, 1, False),
    "big_padding": ((1, 2, 6, 6), (2, 2, 3, 3), 1, 2, 0, 1, 1, True),
    "odd_channels_long_rows": ((1, 7, 2, 33), (7, 5, 2, 3), 1, (0, 1), 0, 1, 1, False),
    "empty_batch": ((0, 3, 4, 4), (3, 2, 3, 3), 2, 1, 1, 1, 1, True),
    "threaded": ((2, 8, 12, 12), (8, 8, 3, 3), 2, 1, 1, 1, 1, True),
}


def make(case, dtype, seed=0):
    xs, ws, stride, padding, opad, groups, dil, has_bias = CASES[case]
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, xs).astype(dtype)
    w = rng.uniform(-1, 1, ws).astype(dtype)
    b = rng.uniform(-1, 1, ws[1] * groups).astype(dtype) if has_bias else None
    return x, w, b, dict(stride=stride, padding=padding, output_padding=opad, groups=groups,
                         dilation=dil)


def _check(y, ref, dtype):
    rtol, atol = tol(dtype)
    assert y.dtype == dtype and y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("algo", conv_algos("conv_transpose2d"))
@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference(case, algo, dtype, isa):
    x, w, b, kw = make(case, dtype)
    _check(conv.conv_transpose2d(x, w, b, **kw, algo=algo),
           reference.conv_transpose2d(x, w, b, **kw), dtype)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed")
@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch(case, dtype):
    import torch
    x, w, b, kw = make(case, dtype)
    t = lambda a: None if a is None else torch.from_numpy(a.astype(np.float64))  # noqa: E731
    want = torch.nn.functional.conv_transpose2d(t(x), t(w), t(b), **kw).numpy()
    _check(conv.conv_transpose2d(x, w, b, **kw), want, dtype)


def test_is_the_adjoint_of_conv2d(dtype):
    """<conv2d(u, w), v> == <u, conv_transpose2d(v, w)> for the matching geometry."""
    rng = np.random.default_rng(3)
    w = rng.uniform(-1, 1, (4, 3, 3, 2))
    u = rng.uniform(-1, 1, (2, 3, 9, 8))
    kw = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    y = conv.conv2d(u, w, **kw)
    v = rng.uniform(-1, 1, y.shape)
    # output_padding recovers the rows the forward stride dropped
    opad = ((9 + 2 - 2 * 1 - 1) % 2, 0)
    ut = conv.conv_transpose2d(v, w, **kw, output_padding=opad)
    assert ut.shape == u.shape
    np.testing.assert_allclose(np.vdot(y, v), np.vdot(u, ut), rtol=1e-12)


@pytest.mark.parametrize("case", ["threaded", "groups", "asym_pairs"])
def test_bit_identical_across_threads(case, dtype, isa):
    x, w, b, kw = make(case, dtype)
    y1, y2 = both_thread_counts(lambda: conv.conv_transpose2d(x, w, b, **kw))
    assert_bit_identical(y1, y2)


def test_threads_fixture_results(threads, dtype):
    x, w, b, kw = make("threaded", dtype, seed=9)
    _check(conv.conv_transpose2d(x, w, b, **kw), reference.conv_transpose2d(x, w, b, **kw), dtype)


@pytest.mark.parametrize("layout", ["transposed", "negative_stride", "readonly"])
def test_odd_layouts_and_inputs_unchanged(layout, dtype):
    x, w, b, kw = make("asym_pairs", dtype)
    b = np.arange(3, dtype=dtype)
    ref = reference.conv_transpose2d(x, w, b, **kw)
    if layout == "transposed":
        x, w = (np.ascontiguousarray(a.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2) for a in (x, w))
    elif layout == "negative_stride":
        x, w, b = (np.ascontiguousarray(a[::-1])[::-1] for a in (x, w, b))
    else:
        for a in (x, w, b):
            a.flags.writeable = False
    snapshot = [a.copy() for a in (x, w, b)]
    _check(conv.conv_transpose2d(x, w, b, **kw), ref, dtype)
    for before, after in zip(snapshot, (x, w, b)):
        assert np.array_equal(before, after)


def test_record(recorder):
    x, w, b, kw = make("basic", np.float32)
    conv.conv_transpose2d(x, w, b, **kw, algo="direct")   # auto may pick any algorithm
    (rec,) = recorder.records
    assert rec["op"] == "conv_transpose2d" and rec["algo"] == "direct"
    ck = rec["cost_kwargs"]
    assert ck["input_shape"] == x.shape and ck["weight_shape"] == w.shape and ck["bias"] is True
    assert ck["output_padding"] == (0, 0) and ck["dtype"] == "float32"
    cost = pytest.importorskip("fastconv.cost")
    c = cost.conv_transpose2d(**ck)
    assert tuple(c.output_shape) == (2, 4, 5, 6)
    # direct grad input rearranges the weights (and copies grad_out windows at stride > 1)
    assert rec["workspace_bytes"] == c.workspace > 0


@pytest.mark.parametrize("algo", [a for a in conv_algos("conv_transpose2d") if a != "auto"])
@pytest.mark.parametrize("case", ["basic", "asym_pairs", "groups"])
def test_workspace_matches_model(case, algo, recorder):
    """The transposed conv is the grad-input pass of the conv whose input is its output."""
    x, w, b, kw = make(case, np.float64)
    y = conv.conv_transpose2d(x, w, b, **kw, algo=algo)
    (rec,) = recorder.records
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    model = _workspace.conv2d(algo, "input", y.shape, w.shape, x.shape, pair(kw["stride"]),
                              pair(kw["padding"]), pair(kw["dilation"]), kw["groups"], 8)
    assert rec["workspace_bytes"] == model
