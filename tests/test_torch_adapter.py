"""fastconv.torch: autograd Functions, drop-in modules, patch/unpatch, fallbacks.

Everything is checked against plain PyTorch on the same inputs: a small
ResNet-style model patched vs unpatched (outputs, input and parameter
gradients, one SGD step), gradcheck in float64 for each Function, and the
module/functional parity and fallback behaviour one option at a time.
"""
import copy
import types
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import fastconv  # noqa: E402
import fastconv.torch as fct  # noqa: E402

F32 = dict(rtol=1e-4, atol=1e-5)


@pytest.fixture(autouse=True)
def _fresh_warnings():
    fct._reset_warnings()
    yield
    fct._reset_warnings()


def _rand(*shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)


def _close(a, b, **tol):
    torch.testing.assert_close(a, b, **(tol or F32))


def _fallback_warnings(record):
    return [w for w in record if issubclass(w.category, fct.FallbackWarning)]


# ---------------------------------------------------------------- the model

class Block(nn.Module):
    """3x3 residual block (optionally dilated)."""

    def __init__(self, c, dilation=1):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return F.relu(x + self.conv2(F.relu(self.bn1(self.conv1(x)))))


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 7, stride=2, padding=3, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.block1 = Block(8)
        self.block2 = Block(8, dilation=2)
        self.grouped = nn.Conv2d(8, 12, 3, stride=2, padding=1, groups=4)
        self.depthwise = nn.Conv2d(12, 12, 3, padding=1, groups=12)
        self.same = nn.Conv2d(12, 12, (4, 3), padding="same", dilation=(1, 2))
        self.avg = nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False)
        self.up = nn.ConvTranspose2d(12, 6, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.stem(x))))
        x = self.block2(self.block1(x))
        x = F.relu(self.grouped(x))
        x = F.relu(self.same(self.depthwise(x)))
        return self.up(self.avg(x))


def _run(model, x, target):
    x = x.clone().requires_grad_(True)
    y = model(x)
    (y * target).sum().backward()
    return y, x.grad


def test_resnet_patched_equals_pytorch():
    torch.manual_seed(0)
    plain = SmallResNet()
    fast = fct.patch(copy.deepcopy(plain))
    assert type(fast.stem) is fct.Conv2d and type(fast.pool) is fct.MaxPool2d
    assert type(fast.avg) is fct.AvgPool2d and type(fast.up) is fct.ConvTranspose2d
    x = _rand(2, 3, 33, 33)
    target = _rand(2, 6, 6, 6, seed=1)

    y0, gx0 = _run(plain, x, target)
    y1, gx1 = _run(fast, x, target)
    assert y1.shape == y0.shape == (2, 6, 6, 6)
    _close(y1, y0)
    _close(gx1, gx0)
    for (name, p0), (_, p1) in zip(plain.named_parameters(), fast.named_parameters()):
        assert p1.grad is not None, name
        _close(p1.grad, p0.grad, msg=lambda m: f"{name}: {m}")

    for model in (plain, fast):
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4).step()
    for (name, p0), (_, p1) in zip(plain.named_parameters(), fast.named_parameters()):
        _close(p1, p0, msg=lambda m: f"{name}: {m}")
    for (name, b0), (_, b1) in zip(plain.named_buffers(), fast.named_buffers()):
        _close(b1, b0, msg=lambda m: f"{name}: {m}")


def test_resnet_eval_no_grad_float64():
    torch.manual_seed(1)
    plain = SmallResNet().double().eval()
    fast = fct.patch(copy.deepcopy(plain))
    x = _rand(1, 3, 21, 18, dtype=torch.float64)
    with torch.no_grad():
        y0, y1 = plain(x), fast(x)
    assert y1.grad_fn is None and not y1.requires_grad
    _close(y1, y0, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- gradcheck (float64)

def _leaf(*shape, seed=0):
    return _rand(*shape, dtype=torch.float64, seed=seed).requires_grad_(True)


@pytest.mark.parametrize("case", [
    # x shape, w shape, bias, stride, padding, dilation, groups
    ((2, 4, 7, 6), (6, 2, 3, 2), True, (2, 1), (1, 2), (1, 2), 2),
    ((1, 3, 6, 5), (4, 3, 4, 3), False, (1, 1), "same", (2, 1), 1),
    ((2, 3, 5, 5), (3, 1, 3, 3), True, (3, 2), "valid", (1, 1), 3),
    ((1, 2, 4, 4), (3, 2, 1, 1), True, (1, 1), (0, 0), (1, 1), 1),
])
def test_gradcheck_conv2d(case):
    xs, ws, bias, stride, padding, dilation, groups = case
    x, w = _leaf(*xs), _leaf(*ws, seed=1)
    b = _leaf(ws[0], seed=2) if bias else None
    args = (stride, padding, dilation, groups)
    inputs = (x, w, b) if bias else (x, w)
    fn = (lambda x, w, b: fct.Conv2dFunction.apply(x, w, b, *args)) if bias else \
        (lambda x, w: fct.Conv2dFunction.apply(x, w, None, *args))
    assert torch.autograd.gradcheck(fn, inputs)
    _close(fn(*inputs), F.conv2d(x, w, b, *args), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", [
    # x shape, w shape, stride, padding, output_padding, groups, dilation
    ((2, 4, 4, 5), (4, 3, 3, 2), (2, 3), (1, 0), (1, 2), 2, (1, 1)),
    ((1, 2, 4, 3), (2, 3, 3, 2), (1, 1), (1, 0), (1, 1), 1, (2, 2)),  # output_padding >= stride
    ((1, 3, 3, 3), (3, 1, 2, 2), (2, 2), (0, 0), (0, 0), 3, (1, 1)),
])
def test_gradcheck_conv_transpose2d(case):
    xs, ws, stride, padding, output_padding, groups, dilation = case
    x, w, b = _leaf(*xs), _leaf(*ws, seed=1), _leaf(ws[1] * groups, seed=2)
    args = (stride, padding, output_padding, groups, dilation)

    def fn(x, w, b):
        return fct.ConvTranspose2dFunction.apply(x, w, b, *args)

    assert torch.autograd.gradcheck(fn, (x, w, b))
    _close(fn(x, w, b), F.conv_transpose2d(x, w, b, *args), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("args", [
    # kernel, stride, padding, dilation, ceil_mode
    ((3, 3), (2, 2), (1, 1), (1, 2), True),
    ((2, 3), (1, 2), (0, 1), (1, 1), False),
])
def test_gradcheck_max_pool2d(args):
    x = _leaf(2, 3, 7, 8)  # random values: no ties, so the gradient is defined

    def fn(x):
        return fct.MaxPool2dFunction.apply(x, *args)[0]

    assert torch.autograd.gradcheck(fn, (x,))
    y, idx = fct.MaxPool2dFunction.apply(x, *args)
    y0, idx0 = F.max_pool2d(x, *args[:4], ceil_mode=args[4], return_indices=True)
    _close(y, y0, rtol=0, atol=0)
    assert torch.equal(idx, idx0) and idx.dtype == torch.int64 and not idx.requires_grad


@pytest.mark.parametrize("args", [
    # kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    ((3, 3), (2, 2), (1, 1), True, False, None),
    ((3, 2), (2, 1), (1, 1), True, True, None),
    ((2, 2), (2, 2), (1, 0), False, True, 5),
])
def test_gradcheck_avg_pool2d(args):
    x = _leaf(2, 3, 7, 6)

    def fn(x):
        return fct.AvgPool2dFunction.apply(x, *args)

    assert torch.autograd.gradcheck(fn, (x,))
    _close(fn(x), F.avg_pool2d(x, *args), rtol=1e-12, atol=1e-14)


def test_double_backward_raises():
    x, w = _leaf(1, 2, 5, 5), _leaf(3, 2, 3, 3, seed=1)
    y = fct.Conv2dFunction.apply(x, w, None, (1, 1), (1, 1), (1, 1), 1)
    (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="twice"):
        gx.sum().backward()


# ---------------------------------------------------------------- modules and functionals vs torch

def _pair_modules(cls_torch, *args, **kwargs):
    torch.manual_seed(3)
    plain = cls_torch(*args, **kwargs)
    fast = fct.patch(copy.deepcopy(plain))
    return plain, fast


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Conv2d(5, 6, (3, 2), stride=(2, 1), padding=(2, 0), dilation=(1, 3)), (3, 5, 9, 10)),
    (lambda: nn.Conv2d(4, 4, 2, padding="same", groups=2, bias=False), (2, 4, 6, 7)),
    (lambda: nn.Conv2d(3, 6, 5, padding="valid", groups=3), (1, 3, 5, 8)),
    (lambda: nn.ConvTranspose2d(4, 6, (3, 4), stride=(2, 3), padding=(1, 2), output_padding=(1, 0),
                                groups=2, dilation=(1, 2)), (2, 4, 5, 4)),
    (lambda: nn.MaxPool2d((3, 2), stride=(2, 1), padding=1, dilation=(2, 1), ceil_mode=True), (2, 3, 9, 6)),
    (lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 3, 8, 9)),
    (lambda: nn.AvgPool2d((2, 3), divisor_override=4), (1, 2, 6, 7)),
])
def test_module_matches_torch(make, shape, dtype):
    torch.manual_seed(4)
    plain = make().to(dtype)
    fast = fct.patch(copy.deepcopy(plain))
    x = _rand(*shape, dtype=dtype)
    y0, gx0 = _run(plain, x, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fct.FallbackWarning)  # must run on fastconv
        y1, gx1 = _run(fast, x, 1.0)
    tol = F32 if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    _close(y1, y0, **tol)
    _close(gx1, gx0, **tol)
    for p0, p1 in zip(plain.parameters(), fast.parameters()):
        _close(p1.grad, p0.grad, **tol)


def test_conv_transpose_output_size():
    plain, fast = _pair_modules(nn.ConvTranspose2d, 3, 2, 3, stride=2, padding=1)
    x = _rand(1, 3, 4, 5)
    for size in ([8, 10], [7, 9], (1, 2, 8, 9)):
        y0, y1 = plain(x, output_size=size), fast(x, output_size=size)
        assert y1.shape == y0.shape
        _close(y1, y0)
    with pytest.raises(ValueError):  # PyTorch's own check
        fast(x, output_size=[20, 20])


def test_max_pool_return_indices_module():
    plain, fast = _pair_modules(nn.MaxPool2d, 3, 2, 1, return_indices=True)
    x = _rand(2, 3, 9, 8).requires_grad_(True)
    (y0, i0), (y1, i1) = plain(x), fast(x)
    _close(y1, y0, rtol=0, atol=0)
    assert torch.equal(i1, i0)
    # indices feed max_unpool2d as PyTorch's do
    _close(F.max_unpool2d(y1, i1, 3, 2, 1, output_size=x.shape), F.max_unpool2d(y0, i0, 3, 2, 1, output_size=x.shape))
    with torch.no_grad():
        y2, i2 = fast(x)
    assert torch.equal(i2, i0) and torch.equal(y2, y0)


def test_functionals_match_torch():
    x, w, b = _rand(2, 4, 8, 7), _rand(6, 2, 3, 3, seed=1), _rand(6, seed=2)
    _close(fct.conv2d(x, w, b, 2, 1, 1, 2), F.conv2d(x, w, b, 2, 1, 1, 2))
    wt = _rand(4, 3, 3, 3, seed=3)
    _close(fct.conv_transpose2d(x, wt, None, 2, 1, 1, 1, 1), F.conv_transpose2d(x, wt, None, 2, 1, 1, 1, 1))
    _close(fct.max_pool2d(x, 3, None, 1, ceil_mode=True), F.max_pool2d(x, 3, None, 1, ceil_mode=True))
    _close(fct.max_pool2d(x, [2], []), F.max_pool2d(x, [2], []))
    _close(fct.avg_pool2d(x, 2, 1, 1, False, False), F.avg_pool2d(x, 2, 1, 1, False, False))


def test_unbatched_input():
    plain, fast = _pair_modules(nn.Conv2d, 3, 4, 3, padding=1)
    x = _rand(3, 6, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fct.FallbackWarning)
        y1, gx1 = _run(fast, x, 1.0)
        y2 = fct.max_pool2d(x, 2, return_indices=True)
    y0, gx0 = _run(plain, x, 1.0)
    assert y1.shape == (4, 6, 5)
    _close(y1, y0)
    _close(gx1, gx0)
    ref = F.max_pool2d(x, 2, return_indices=True)
    assert torch.equal(y2[0], ref[0]) and torch.equal(y2[1], ref[1])


def test_non_contiguous_input_and_grad():
    plain, fast = _pair_modules(nn.Conv2d, 4, 5, 3, padding=1)
    x = _rand(2, 4, 10, 9)[:, :, ::2, 1:]  # (2, 4, 5, 8), strided NCHW
    assert not x.is_contiguous()
    assert not x.is_contiguous(memory_format=torch.channels_last)
    xt = _rand(2, 8, 5, 4).transpose(1, 3)  # (2, 4, 5, 8), transposed
    for x in (x, xt):
        y0 = plain(x)
        xr = x.detach().requires_grad_(True)  # keeps the strides
        with warnings.catch_warnings():
            warnings.simplefilter("error", fct.FallbackWarning)  # must run on fastconv
            y1 = fast(xr)
            # .sum() sends an expanded (stride 0) gradient into backward
            y1.sum().backward()
        _close(y1, y0)
        xp = x.detach().requires_grad_(True)
        plain(xp).sum().backward()
        _close(xr.grad, xp.grad)
        _close(fast.weight.grad, plain.weight.grad)
        fast.zero_grad()
        plain.zero_grad()


def test_empty_batch():
    plain, fast = _pair_modules(nn.Conv2d, 3, 4, 3)
    x = torch.zeros(0, 3, 6, 6, requires_grad=True)
    y = fast(x)
    assert y.shape == plain(x).shape == (0, 4, 4, 4)
    y.sum().backward()
    assert torch.equal(fast.weight.grad, torch.zeros_like(fast.weight))


def test_needs_input_grad_maps_to_needs(monkeypatch):
    seen = []
    real = fct._conv.conv2d_backward

    def spy(*args, needs, **kwargs):
        seen.append(needs)
        return real(*args, needs=needs, **kwargs)

    monkeypatch.setattr(fct._conv, "conv2d_backward", spy)
    conv = fct.Conv2d(3, 4, 3)
    x = _rand(1, 3, 5, 5)
    conv(x).sum().backward()  # first layer: the input needs no gradient
    conv.bias.requires_grad_(False)
    conv(x.requires_grad_(True)).sum().backward()
    assert seen == [("weight", "bias"), ("input", "weight")]


def test_no_grad_builds_no_graph(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("backward called")

    monkeypatch.setattr(fct._conv, "conv2d_backward", boom)
    conv = fct.Conv2d(3, 4, 3)
    x = _rand(1, 3, 5, 5, seed=5).requires_grad_(True)
    with torch.no_grad():
        y = conv(x)
    assert y.grad_fn is None and not y.requires_grad
    with torch.inference_mode():
        y = conv(x)
    assert y.grad_fn is None
    _close(y, F.conv2d(x.detach(), conv.weight.detach(), conv.bias.detach()))


def test_zero_copy_views():
    t = _rand(2, 3, 4, 5)
    a = fct._np(t)
    assert np.shares_memory(a, t.numpy())
    out = fct._tensor(np.ones((2, 2), np.float32))
    assert out.dtype == torch.float32


# ---------------------------------------------------------------- fallbacks

def _warns_once_and_matches(plain, fast, x, reason):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        y1 = fast(x)
        y1b = fast(x)
    got = _fallback_warnings(rec)
    assert len(got) == 1, [str(w.message) for w in rec]
    assert reason in str(got[0].message)
    y0 = plain(x)
    torch.testing.assert_close(y1, y0)
    torch.testing.assert_close(y1b, y0)
    return y1


def test_fallback_padding_mode():
    plain, fast = _pair_modules(nn.Conv2d, 3, 4, 3, padding=1, padding_mode="reflect")
    _warns_once_and_matches(plain, fast, _rand(2, 3, 6, 5), "padding_mode='reflect'")


def test_fallback_channels_last():
    plain, fast = _pair_modules(nn.Conv2d, 3, 4, 3, padding=1)
    x = _rand(2, 3, 6, 5).contiguous(memory_format=torch.channels_last)
    y = _warns_once_and_matches(plain, fast, x, "channels_last")
    assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fallback_low_precision(dtype):
    plain, fast = _pair_modules(nn.Conv2d, 3, 4, 3, padding=1)
    plain, fast = plain.to(dtype), fast.to(dtype)
    _warns_once_and_matches(plain, fast, _rand(2, 3, 6, 5, dtype=dtype), str(dtype))
    pool = fct.MaxPool2d(2)
    _warns_once_and_matches(nn.MaxPool2d(2), pool, _rand(1, 2, 4, 4, dtype=dtype), str(dtype))


def test_fallback_rejected_arguments_gives_torch_error():
    conv = fct.Conv2d(4, 4, 3, stride=2, groups=2)
    with pytest.raises(RuntimeError):  # weight/input channel mismatch: PyTorch's error
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fct.FallbackWarning)
            conv(_rand(1, 6, 8, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error", fct.FallbackWarning)  # PyTorch's error, no warning
        with pytest.raises(RuntimeError):
            fct.conv2d(_rand(1, 4, 8, 8), _rand(4, 4, 3, 3, dtype=torch.float64))  # mixed dtypes


def test_fallback_jit_trace():
    plain, fast = _pair_modules(nn.Conv2d, 3, 4, 3)
    x = _rand(1, 3, 6, 6)
    with pytest.warns(fct.FallbackWarning, match="TorchScript tracing"):
        traced = torch.jit.trace(fast, x)
    _close(traced(x), plain(x))


def test_fallback_torch_func_and_forward_ad():
    plain, fast = _pair_modules(nn.Conv2d, 3, 4, 3)
    x = _rand(5, 2, 3, 6, 6)
    with pytest.warns(fct.FallbackWarning, match="torch.func"):
        y1 = torch.func.vmap(fast)(x)
    _close(y1, torch.func.vmap(plain)(x))
    import torch.autograd.forward_ad as fwAD
    tangent = _rand(2, 3, 6, 6, seed=1)
    with fwAD.dual_level():
        with pytest.warns(fct.FallbackWarning, match="forward-mode AD"):
            t1 = fwAD.unpack_dual(fast(fwAD.make_dual(x[0], tangent))).tangent
        t0 = fwAD.unpack_dual(plain(fwAD.make_dual(x[0], tangent))).tangent
    _close(t1, t0)


# ---------------------------------------------------------------- patch / unpatch

def test_state_dict_and_repr_identical():
    torch.manual_seed(5)
    plain = SmallResNet()
    fast = fct.patch(copy.deepcopy(plain))
    sd0, sd1 = plain.state_dict(), fast.state_dict()
    assert list(sd0) == list(sd1)
    assert all(torch.equal(sd0[k], sd1[k]) for k in sd0)
    assert repr(fast) == repr(plain)
    direct = fct.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
    assert list(direct.state_dict()) == list(nn.Conv2d(3, 8, 3, bias=False).state_dict())
    direct.load_state_dict(nn.Conv2d(3, 8, 3, bias=False).state_dict())
    direct.reset_parameters()


def test_patch_unpatch_round_trip():
    torch.manual_seed(6)
    shared = nn.Conv2d(4, 4, 3, padding=1)

    class Sub(nn.Conv2d):
        pass

    model = nn.Sequential(nn.Conv2d(3, 4, 3), shared, nn.ReLU(), shared,
                          nn.Sequential(nn.MaxPool2d(2), nn.AvgPool2d(2), nn.ConvTranspose2d(4, 2, 2)),
                          Sub(2, 2, 1))
    params = list(model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = _rand(1, 3, 18, 18)
    ref = model(x)

    assert fct.patch(model) is model
    kinds = [type(m) for m in model.modules()]
    assert kinds.count(fct.Conv2d) == 2 and fct.ConvTranspose2d in kinds
    assert fct.MaxPool2d in kinds and fct.AvgPool2d in kinds
    assert model[1] is shared and model[3] is shared and type(shared) is fct.Conv2d
    assert type(model[5]) is Sub  # user subclasses are left alone
    assert all(a is b for a, b in zip(params, model.parameters()))
    _close(model(x), ref)
    model(x).sum().backward()
    opt.step()  # the optimizer created before patching sees the same parameters

    fct.patch(model)  # idempotent
    assert fct.unpatch(model) is model
    assert {nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d} <= set(type(m) for m in model.modules())
    assert not any(type(m).__module__ == "fastconv.torch" for m in model.modules())
    assert all(a is b for a, b in zip(params, model.parameters()))
    with pytest.raises(TypeError):
        fct.patch(object())
    single = fct.patch(nn.MaxPool2d(2))
    assert type(single) is fct.MaxPool2d


def test_calls_appear_in_profile():
    prof_fn = getattr(fastconv, "profile", None)
    if isinstance(prof_fn, types.ModuleType):  # before __init__ re-exports the function
        prof_fn = getattr(prof_fn, "profile", None)
    if not callable(prof_fn):
        pytest.skip("fastconv.profile() not available in this tree")
    model = fct.patch(nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.AvgPool2d(2)))
    with prof_fn() as prof:
        model(_rand(1, 3, 10, 10).requires_grad_(True)).sum().backward()
    ops = {r.op if hasattr(r, "op") else r["op"] for r in prof.records}
    assert {"conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward",
            "avg_pool2d", "avg_pool2d_backward"} <= ops
