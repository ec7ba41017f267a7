"""conv2d_backward: grad input / weight / bias vs the float64 reference and
PyTorch autograd, every algorithm, both ISAs and dtypes, 1 and 2 threads."""
import numpy as np
import pytest

from conftest import HAVE_TORCH, tol
from _conv_cases import (CASES, NO_TORCH, THREADED, assert_bit_identical, both_thread_counts,
                         conv_algos, make, recorder)  # noqa: F401 (fixture)
from fastconv import _workspace, conv, reference

ALL = list(CASES) + list(THREADED)


def _grad_out(x, w, kw, seed=1):
    shape = reference.conv2d(x, w, None, **kw).shape
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(x.dtype)


def _check(got, ref, dtype, rtol=None, atol=None):
    r, a = tol(dtype)
    assert got.dtype == dtype and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=rtol or r, atol=atol if atol is not None else a)


def _check_grad_w(got, ref, dtype, x, gy):
    """grad_w sums N*H_out*W_out products: scale float32's absolute tolerance with that count."""
    rtol, atol = tol(dtype)
    terms = max(1, gy.shape[0] * gy.shape[2] * gy.shape[3])
    _check(got, ref, dtype, rtol=rtol, atol=atol * max(1.0, np.sqrt(terms)))


@pytest.mark.parametrize("algo", conv_algos("conv2d_backward"))
@pytest.mark.parametrize("case", ALL)
def test_matches_reference(case, algo, dtype, isa):
    x, w, _, kw = make(case, dtype)
    gy = _grad_out(x, w, kw)
    gx, gw, gb = conv.conv2d_backward(gy, x, w, **kw, algo=algo)
    rx, rw, rb = reference.conv2d_backward(gy, x, w, **kw)
    _check(gx, rx, dtype)
    _check_grad_w(gw, rw, dtype, x, gy)
    _check_grad_w(gb, rb, dtype, x, gy)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed")
@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("case", [c for c in ALL if c not in NO_TORCH])
def test_matches_torch_autograd_float64(case, isa):
    import torch
    x, w, b, kw = make(case, np.float64)
    gy = _grad_out(x, w, kw)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    wt = torch.from_numpy(w.copy()).requires_grad_(True)
    bt = torch.zeros(w.shape[0], dtype=torch.float64, requires_grad=True)
    torch.nn.functional.conv2d(xt, wt, bt, **kw).backward(torch.from_numpy(gy))
    gx, gw, gb = conv.conv2d_backward(gy, x, w, **kw)
    for got, want in ((gx, xt.grad), (gw, wt.grad), (gb, bt.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed")
@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("case", ["basic_odd", "groups3_odd_channels", "stride_pad_dil_pairs"])
def test_matches_torch_float32(case):
    import torch
    x, w, _, kw = make(case, np.float32)
    gy = _grad_out(x, w, kw)
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    wt = torch.from_numpy(w.astype(np.float64)).requires_grad_(True)
    torch.nn.functional.conv2d(xt, wt, None, **kw).backward(torch.from_numpy(gy.astype(np.float64)))
    gx, gw, gb = conv.conv2d_backward(gy, x, w, **kw)
    _check(gx, xt.grad.numpy(), np.float32)
    _check_grad_w(gw, wt.grad.numpy(), np.float32, x, gy)


@pytest.mark.parametrize("case", ALL)
def test_bit_identical_across_threads(case, dtype, isa):
    x, w, _, kw = make(case, dtype)
    gy = _grad_out(x, w, kw)
    r1, r2 = both_thread_counts(lambda: conv.conv2d_backward(gy, x, w, **kw))
    for a, b in zip(r1, r2):
        assert_bit_identical(a, b)


def test_threads_fixture_results(threads, isa, dtype):
    x, w, _, kw = make("threaded_groups_stride", dtype, seed=5)
    gy = _grad_out(x, w, kw)
    gx, gw, gb = conv.conv2d_backward(gy, x, w, **kw)
    rx, rw, rb = reference.conv2d_backward(gy, x, w, **kw)
    _check(gx, rx, dtype)
    _check_grad_w(gw, rw, dtype, x, gy)
    _check_grad_w(gb, rb, dtype, x, gy)


@pytest.mark.parametrize("needs", [(), ("input",), ("weight",), ("bias",), ("bias", "input"),
                                   ["weight", "bias"], "input", ("input", "input")])
def test_needs_selects_outputs(needs, dtype):
    x, w, _, kw = make("basic_odd", dtype)
    gy = _grad_out(x, w, kw)
    got = conv.conv2d_backward(gy, x, w, **kw, needs=needs)
    want = reference.conv2d_backward(gy, x, w, **kw)
    wanted = (needs,) if isinstance(needs, str) else tuple(needs)
    for name, g, r in zip(("input", "weight", "bias"), got, want):
        if name in wanted:
            _check(g, r, dtype, atol=1e-4 if dtype == np.float32 else None)
        else:
            assert g is None


def test_empty_batch_gives_zero_weight_and_bias_grads(dtype):
    x, w, _, kw = make("empty_batch", dtype)
    gy = np.zeros((0, 4, 5, 5), dtype)
    gx, gw, gb = conv.conv2d_backward(gy, x, w, **kw)
    assert gx.shape == x.shape
    assert gw.shape == w.shape and gb.shape == (4,)
    assert np.all(gw == 0) and np.all(gb == 0)


def test_empty_channels(dtype):
    x, w, _, kw = make("empty_in_channels", dtype)
    gy = _grad_out(x, w, kw)
    gx, gw, gb = conv.conv2d_backward(gy, x, w, **kw)
    assert gx.shape == x.shape and gw.shape == w.shape
    _check(gb, gy.sum(axis=(0, 2, 3)), dtype)
    x, w, _, kw = make("empty_out_channels", dtype)
    gy = _grad_out(x, w, kw)
    gx, gw, gb = conv.conv2d_backward(gy, x, w, **kw)
    assert np.all(gx == 0) and gw.shape == w.shape and gb.shape == (0,)


@pytest.mark.parametrize("layout", ["transposed", "negative_stride", "readonly"])
def test_odd_layouts_and_inputs_unchanged(layout, dtype, isa):
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (2, 3, 8, 7)).astype(dtype)
    w = rng.uniform(-1, 1, (4, 3, 3, 3)).astype(dtype)
    gy = rng.uniform(-1, 1, (2, 4, 4, 7)).astype(dtype)
    kw = dict(stride=(2, 1), padding=1)
    ref = reference.conv2d_backward(gy, x, w, **kw)
    if layout == "transposed":
        x, w, gy = (np.ascontiguousarray(a.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
                    for a in (x, w, gy))
    elif layout == "negative_stride":
        x, w, gy = (np.ascontiguousarray(a[:, :, ::-1])[:, :, ::-1] for a in (x, w, gy))
    else:
        for a in (x, w, gy):
            a.flags.writeable = False
    snapshot = [a.copy() for a in (x, w, gy)]
    gx, gw, gb = conv.conv2d_backward(gy, x, w, **kw)
    _check(gx, ref[0], dtype)
    _check_grad_w(gw, ref[1], dtype, x, gy)
    _check_grad_w(gb, ref[2], dtype, x, gy)
    for before, after in zip(snapshot, (x, w, gy)):
        assert np.array_equal(before, after)


@pytest.mark.parametrize("algo", [a for a in conv_algos("conv2d_backward") if a != "auto"])
def test_workspace_and_record(algo, recorder, dtype):
    x, w, _, kw = make("asym_pairs_groups", dtype)
    gy = _grad_out(x, w, kw)
    conv.conv2d_backward(gy, x, w, **kw, algo=algo, needs=("weight", "input"))
    (rec,) = recorder.records
    assert rec["op"] == "conv2d_backward" and rec["algo"] == algo
    assert rec["cost_kwargs"]["needs"] == ("input", "weight")
    args = (x.shape, w.shape, gy.shape, (2, 1), (1, 2), (2, 1), 2, x.dtype.itemsize)
    model = (_workspace.conv2d(algo, "input", *args) + _workspace.conv2d(algo, "weight", *args))
    assert rec["workspace_bytes"] == model


def test_cost_kwargs_are_accepted_by_cost_model(recorder):
    cost = pytest.importorskip("fastconv.cost")
    x, w, _, kw = make("basic_odd", np.float64)
    conv.conv2d_backward(_grad_out(x, w, kw), x, w, **kw)
    (rec,) = recorder.records
    getattr(cost, rec["op"])(**rec["cost_kwargs"])
