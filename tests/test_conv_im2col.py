"""im2col + BLAS kernels (algo 1) called through fastconv._kernels directly.

Oracle: PyTorch float64 (autograd for the backward passes) when importable,
else a float64 NumPy einsum reference for the forward.  Every output buffer is
NaN-filled first; the workspace each call reports must equal the pure-Python
model in fastconv._workspace; a tiny workspace limit forces many chunks; 1 and
2 threads must give bit-identical results.
"""
import numpy as np
import pytest

from fastconv import _kernels, _workspace, config
from fastconv._blas_threads import single_threaded

from conftest import HAVE_TORCH, rand, tol

if HAVE_TORCH:
    import torch

IM2COL = _kernels.ALGO_IM2COL
pytestmark = pytest.mark.skipif(not _kernels.get_runtime()["blas"], reason="no BLAS capsules")


def out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


class Case:
    """One convolution configuration (PyTorch conv2d conventions)."""

    def __init__(self, n, c_in, h, w, c_out, k, stride=1, pad=0, dil=1, groups=1):
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
        self.n, self.c_in, self.h, self.w, self.c_out, self.groups = n, c_in, h, w, c_out, groups
        self.k, self.stride, self.pad, self.dil = pair(k), pair(stride), pair(pad), pair(dil)
        self.h_out = out_size(h, self.k[0], self.stride[0], self.pad[0], self.dil[0])
        self.w_out = out_size(w, self.k[1], self.stride[1], self.pad[1], self.dil[1])

    @property
    def x_shape(self):
        return (self.n, self.c_in, self.h, self.w)

    @property
    def w_shape(self):
        return (self.c_out, self.c_in // self.groups) + self.k

    @property
    def y_shape(self):
        return (self.n, self.c_out, self.h_out, self.w_out)

    @property
    def tuple(self):
        return (self.n, self.c_in, self.h, self.w, self.c_out, self.k[0], self.k[1],
                self.h_out, self.w_out, self.stride[0], self.stride[1], self.pad[0], self.pad[1],
                self.dil[0], self.dil[1], self.groups)

    def workspace(self, pass_, itemsize):
        return _workspace.conv2d("im2col", pass_, self.x_shape, self.w_shape, self.y_shape,
                                 self.stride, self.pad, self.dil, self.groups, itemsize)

    def __repr__(self):
        return "Case%r" % (self.tuple,)


CASES = [
    Case(2, 3, 9, 11, 4, 3, pad=1),                                  # plain 3x3, odd sizes
    Case(2, 4, 9, 11, 6, (3, 2), stride=(2, 3), pad=(1, 2), dil=(2, 1), groups=2),
    Case(1, 6, 8, 7, 6, 3, pad=1, groups=6),                         # depthwise
    Case(3, 5, 6, 5, 7, 1),                                          # 1x1 identity path
    Case(2, 5, 7, 9, 3, 1, stride=2),                                # 1x1 strided
    Case(2, 3, 7, 7, 5, 7),                                          # kernel == input
    Case(2, 3, 10, 11, 4, 2, stride=3),                              # stride > kernel
    Case(1, 2, 5, 6, 3, 2, pad=3),                                   # rows of pure padding
    Case(7, 5, 4, 3, 9, 3, pad=1),                                   # several images per chunk
    Case(6, 6, 3, 3, 4, 1, groups=2),                                # identity, images staged
    Case(2, 9, 12, 13, 10, (5, 3), stride=(1, 2), pad=(2, 0), dil=(1, 3)),
    Case(0, 4, 5, 5, 6, 3, pad=1),                                   # empty batch
]


def _torch_ref(case, x, w, b, gy):
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64)
    yt = torch.nn.functional.conv2d(xt, wt, bt, case.stride, case.pad, case.dil, case.groups)
    yt.backward(torch.tensor(gy, dtype=torch.float64))
    return yt.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()


def _numpy_forward(case, x, w, b):
    """Independent float64 forward: explicit taps, einsum per group."""
    x = x.astype(np.float64)
    (sh, sw), (ph, pw), (dh, dw) = case.stride, case.pad, case.dil
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cig, cog = case.c_in // case.groups, case.c_out // case.groups
    y = np.zeros(case.y_shape)
    for g in range(case.groups):
        for i in range(case.k[0]):
            for j in range(case.k[1]):
                patch = xp[:, g * cig:(g + 1) * cig,
                           i * dh: i * dh + sh * (case.h_out - 1) + 1: sh,
                           j * dw: j * dw + sw * (case.w_out - 1) + 1: sw]
                y[:, g * cog:(g + 1) * cog] += np.einsum("nchw,oc->nohw", patch,
                                                         w[g * cog:(g + 1) * cog, :, i, j])
    return y + b[None, :, None, None]


def _run(case, x, w, b, gy):
    """The three kernels on NaN-filled outputs; returns outputs and workspace bytes."""
    dt = x.dtype
    y = np.full(case.y_shape, np.nan, dt)
    gx = np.full(case.x_shape, np.nan, dt)
    gw = np.full(case.w_shape, np.nan, dt)
    with single_threaded():
        ws = (_kernels.conv2d(x.reshape(-1), w.reshape(-1), b, y.reshape(-1), case.tuple, IM2COL),
              _kernels.conv2d_grad_input(gy.reshape(-1), w.reshape(-1), gx.reshape(-1),
                                         case.tuple, IM2COL),
              _kernels.conv2d_grad_weight(gy.reshape(-1), x.reshape(-1), gw.reshape(-1),
                                          case.tuple, IM2COL))
    return (y, gx, gw), ws


def _data(case, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rand(rng, case.x_shape, dtype), rand(rng, case.w_shape, dtype),
            rand(rng, (case.c_out,), dtype), rand(rng, case.y_shape, dtype))


def _close(got, ref, dtype, what):
    rtol, atol = tol(dtype)
    if np.dtype(dtype) == np.float64:
        rtol = 1e-9
    scale = max(1.0, float(np.abs(ref).max())) if ref.size else 1.0
    assert not np.isnan(got).any(), f"{what}: unwritten (NaN) elements"
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol * scale, err_msg=what)


def _check_against_oracle(case, dtype):
    x, w, b, gy = _data(case, dtype)
    copies = [a.copy() for a in (x, w, b, gy)]
    (y, gx, gw), ws = _run(case, x, w, b, gy)
    for a, c in zip((x, w, b, gy), copies):
        np.testing.assert_array_equal(a, c, err_msg="an input was modified")
    if HAVE_TORCH:
        ry, rgx, rgw = _torch_ref(case, x, w, b, gy)
    else:
        ry, rgx, rgw = _numpy_forward(case, x, w, b), None, None
    _close(y, ry, dtype, f"forward {case}")
    if rgx is not None:
        _close(gx, rgx, dtype, f"grad_input {case}")
        _close(gw, rgw, dtype, f"grad_weight {case}")
    item = np.dtype(dtype).itemsize
    for got, pass_, code in zip(ws, ("forward", "input", "weight"), (0, 1, 2)):
        assert got == case.workspace(pass_, item), (pass_, case)
        assert got == _kernels.conv2d_workspace(case.tuple, IM2COL, item, code), (pass_, case)
    return y, gx, gw


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_matches_oracle(case, dtype, threads):
    _check_against_oracle(case, dtype)


def test_numpy_reference_agrees_with_torch():
    """The fallback oracle itself is right (so torch-less runs still test something)."""
    if not HAVE_TORCH:
        pytest.skip("torch not installed")
    for case in CASES[:3]:
        x, w, b, gy = _data(case, np.float64)
        np.testing.assert_allclose(_numpy_forward(case, x, w, b), _torch_ref(case, x, w, b, gy)[0],
                                   rtol=1e-12, atol=1e-12)


@pytest.fixture
def limit():
    """Set the workspace limit for one test, restoring it afterwards."""
    saved = config.get_workspace_limit()
    yield config.set_workspace_limit
    config.set_workspace_limit(saved)


CHUNKY = [
    Case(3, 5, 13, 11, 6, 3, pad=1),
    Case(4, 8, 9, 9, 10, 3, stride=2, pad=1, groups=2),
    Case(5, 6, 4, 4, 7, 1),
    Case(2, 3, 15, 7, 4, (3, 1), dil=(2, 1), pad=(2, 0)),
]


@pytest.mark.parametrize("nbytes", [0, 700, 4096, 20000])
@pytest.mark.parametrize("case", CHUNKY, ids=repr)
def test_chunked_under_tiny_limit(case, nbytes, limit, dtype, threads):
    """Tiny limits force one-row chunks and fewer threads; results are unchanged."""
    limit(nbytes)
    _check_against_oracle(case, dtype)
    item = np.dtype(dtype).itemsize
    # the limit holds, except that a chunk is never smaller than one output row of
    # one channel block (the whole group's K forward, one input channel backward),
    # run on one thread
    kh, kw = case.k
    for pass_ in ("forward", "input", "weight"):
        ws = case.workspace(pass_, item)
        k_min = case.c_in // case.groups * kh * kw if pass_ == "forward" else kh * kw
        assert ws <= nbytes or ws == k_min * case.w_out * item, (pass_, ws, nbytes)


@pytest.mark.parametrize("nbytes", [None, 3000])
@pytest.mark.parametrize("case", CASES[:-1] + CHUNKY, ids=repr)
def test_threads_bit_identical(case, nbytes, limit, dtype):
    """1 and 2 threads give identical bits in all three passes (grad_weight included)."""
    if nbytes is not None:
        limit(nbytes)
    x, w, b, gy = _data(case, dtype, seed=3)
    with config._forced_runtime(threads=1):
        one, _ = _run(case, x, w, b, gy)
    with config._forced_runtime(threads=2):
        two, _ = _run(case, x, w, b, gy)
    for a, c, what in zip(one, two, ("forward", "grad_input", "grad_weight")):
        np.testing.assert_array_equal(a, c, err_msg=f"{what} differs between 1 and 2 threads")


def test_two_threads_use_two_buffers(limit):
    """Parallel runs report one buffer per thread; a limit fitting one buffer serialises."""
    case = Case(2, 16, 40, 40, 16, 3, pad=1)
    item = 4
    with config._forced_runtime(threads=1):
        one = case.workspace("forward", item)
    with config._forced_runtime(threads=2):
        two = case.workspace("forward", item)
        assert two == 2 * one
        limit(one + 1)
        assert case.workspace("forward", item) == one
        x, w, b, gy = _data(case, np.float32)
        _, ws = _run(case, x, w, b, gy)
        assert ws[0] == one
        assert max(ws) <= one + 1


@pytest.mark.parametrize("case", [Case(2, 3, 5, 5, 0, 3), Case(2, 0, 5, 5, 0, 3),
                                  Case(0, 3, 5, 5, 4, 3), Case(2, 4, 5, 5, 6, 3, groups=2)],
                         ids=repr)
def test_empty_dimensions(case, dtype):
    """Empty batch / channels: nothing read out of bounds, gradients zero, workspace 0."""
    x, w, b, gy = _data(case, dtype)
    (y, gx, gw), ws = _run(case, x, w, b, gy)
    if case.n == 0 or case.c_out == 0:
        assert ws == (0, 0, 0)
        assert not np.isnan(gx).any() and not np.isnan(gw).any()
        if case.n == 0 and case.c_out:
            np.testing.assert_array_equal(gw, 0)
        if case.c_out == 0:
            np.testing.assert_array_equal(gx, 0)


def test_zero_input_channels_gives_bias(dtype):
    """c_in = 0: no products, so the forward is the bias everywhere."""
    case = Case(2, 0, 4, 4, 3, 3, pad=1)
    x, w, b, gy = _data(case, dtype)
    (y, gx, gw), ws = _run(case, x, w, b, gy)
    np.testing.assert_array_equal(y, np.broadcast_to(b[None, :, None, None], y.shape))
    assert gx.size == 0 and gw.size == 0 and ws == (0, 0, 0)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed")
@pytest.mark.parametrize("args", [
    dict(n=2, c_in=4, c_out=6, h=5, w=6, k=3, stride=2, pad=1, out_pad=1, dil=1, groups=2),
    dict(n=1, c_in=3, c_out=5, h=4, w=3, k=(2, 3), stride=(3, 1), pad=0, out_pad=(2, 0), dil=(1, 2),
         groups=1),
])
def test_transposed_conv_is_grad_input(args, dtype, threads):
    """conv_transpose2d forward = grad_input of the conv whose input is its output."""
    a = dict(args)
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
    k, s, p, op, d = (pair(a[key]) for key in ("k", "stride", "pad", "out_pad", "dil"))
    ho = (a["h"] - 1) * s[0] - 2 * p[0] + d[0] * (k[0] - 1) + op[0] + 1
    wo = (a["w"] - 1) * s[1] - 2 * p[1] + d[1] * (k[1] - 1) + op[1] + 1
    rng = np.random.default_rng(7)
    xt = rand(rng, (a["n"], a["c_in"], a["h"], a["w"]), dtype)
    wt = rand(rng, (a["c_in"], a["c_out"] // a["groups"]) + k, dtype)
    ref = torch.nn.functional.conv_transpose2d(torch.tensor(xt, dtype=torch.float64),
                                               torch.tensor(wt, dtype=torch.float64), None, s, p,
                                               op, a["groups"], d).numpy()
    # the forward conv: input (n, c_out, ho, wo) -> output (n, c_in, h, w)
    case = Case(a["n"], a["c_out"], ho, wo, a["c_in"], k, s, p, d, a["groups"])
    assert (case.h_out, case.w_out) == (a["h"], a["w"])
    out = np.full(case.x_shape, np.nan, dtype)
    with single_threaded():
        ws = _kernels.conv2d_grad_input(xt.reshape(-1), wt.reshape(-1), out.reshape(-1),
                                        case.tuple, IM2COL)
    _close(out, ref, dtype, "conv_transpose2d")
    assert ws == case.workspace("input", np.dtype(dtype).itemsize)


def test_bad_shapes_raise():
    case = Case(1, 3, 5, 5, 4, 3)
    x, w, b, gy = _data(case, np.float32)
    y = np.zeros(case.y_shape, np.float32)
    bad = list(case.tuple)
    bad[7] += 5  # h_out inconsistent with the y buffer
    with pytest.raises(ValueError):
        _kernels.conv2d(x.reshape(-1), w.reshape(-1), b, y.reshape(-1), tuple(bad), IM2COL)
    with pytest.raises(ValueError):
        _kernels.conv2d(x.reshape(-1)[:-1], w.reshape(-1), b, y.reshape(-1), case.tuple, IM2COL)


def test_workspace_model_rejects_unknown_pass():
    with pytest.raises(ValueError, match="pass_"):
        _workspace.conv2d("im2col", "sideways", (1, 1, 3, 3), (1, 1, 1, 1), (1, 1, 3, 3),
                          (1, 1), (0, 0), (1, 1), 1, 4)


# ---- through the public API (needs fastconv.conv, the conv branch) ---------------

def _public():
    """fastconv.conv (the public conv functions), skipping while it is not in this tree."""
    try:
        from fastconv import conv
    except ImportError:
        pytest.skip("fastconv.conv is not in this tree yet")
    if "im2col" not in conv.algorithms("conv2d"):
        pytest.skip("algo='im2col' is not available (no BLAS?)")
    return conv


API_CASES = [
    dict(x=(2, 4, 9, 10), w=(6, 2, 3, 3), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
    dict(x=(3, 5, 7, 7), w=(4, 5, 1, 1), stride=1, padding=0, dilation=1, groups=1),
    dict(x=(1, 3, 6, 8), w=(3, 1, 3, 3), stride=1, padding="same", dilation=2, groups=3),
    dict(x=(0, 3, 6, 6), w=(4, 3, 3, 3), stride=1, padding=1, dilation=1, groups=1),
]


@pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed")
@pytest.mark.parametrize("spec", API_CASES, ids=lambda s: str(s["x"]) + str(s["w"]))
def test_public_api_im2col(spec, dtype, threads):
    fc = _public()
    rng = np.random.default_rng(11)
    # non-contiguous input: every other column of a wider array
    x_wide = rand(rng, spec["x"][:3] + (2 * spec["x"][3],), dtype)
    x = x_wide[..., ::2]
    w = rand(rng, spec["w"], dtype)
    b = rand(rng, (spec["w"][0],), dtype)
    kw = {k: spec[k] for k in ("stride", "padding", "dilation", "groups")}
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, torch.tensor(b, dtype=torch.float64), **kw)
    y = fc.conv2d(x, w, b, algo="im2col", **kw)
    _close(y, yt.detach().numpy(), dtype, "conv2d(algo='im2col')")
    gy = rand(rng, tuple(yt.shape), dtype)
    yt.backward(torch.tensor(gy, dtype=torch.float64))
    gx, gw, gb = fc.conv2d_backward(gy, x, w, algo="im2col", **kw)
    _close(gx, xt.grad.numpy(), dtype, "grad_input(algo='im2col')")
    _close(gw, wt.grad.numpy(), dtype, "grad_weight(algo='im2col')")
    _close(gb, gy.astype(np.float64).sum(axis=(0, 2, 3)), dtype, "grad_bias")
    np.testing.assert_array_equal(x_wide[..., ::2], x)  # input untouched


@pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed")
def test_public_conv_transpose_im2col(dtype, threads):
    fc = _public()
    rng = np.random.default_rng(12)
    x = rand(rng, (2, 4, 5, 6), dtype)
    w = rand(rng, (4, 3, 3, 2), dtype)
    b = rand(rng, (6,), dtype)
    kw = dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2, dilation=(1, 2))
    y = fc.conv_transpose2d(x, w, b, algo="im2col", **kw)
    ref = torch.nn.functional.conv_transpose2d(torch.tensor(x, dtype=torch.float64),
                                               torch.tensor(w, dtype=torch.float64),
                                               torch.tensor(b, dtype=torch.float64), **kw).numpy()
    _close(y, ref, dtype, "conv_transpose2d(algo='im2col')")


def test_public_workspace_matches_cost_model(limit, monkeypatch):
    """The bytes the kernels report through the profile hook equal fastconv.cost's workspace."""
    fc = _public()
    try:
        from fastconv import cost, profile
    except ImportError:
        pytest.skip("cost model / profile hook not in this tree")
    seen = []

    class Probe:
        def _add(self, op, algo, cost_kwargs, seconds, workspace_bytes):
            seen.append((op, algo, workspace_bytes))

    monkeypatch.setattr(profile, "_active", [Probe()])
    limit(50_000)
    rng = np.random.default_rng(13)
    x = rand(rng, (2, 6, 11, 9), np.float32)
    w = rand(rng, (8, 3, 3, 3), np.float32)
    fc.conv2d(x, w, padding=1, groups=2, algo="im2col")
    fc.conv2d_backward(rand(rng, (2, 8, 11, 9), np.float32), x, w, padding=1, groups=2,
                       needs=("input", "weight"), algo="im2col")
    fwd = cost.conv2d(x.shape, w.shape, padding=1, groups=2, dtype="float32", algo="im2col")
    bwd = cost.conv2d_backward(x.shape, w.shape, padding=1, groups=2, dtype="float32",
                               algo="im2col", needs=("input", "weight"))
    assert [s[:2] for s in seen] == [("conv2d", "im2col"), ("conv2d_backward", "im2col")]
    assert seen[0][2] == fwd.bytes["workspace"] > 0
    assert seen[1][2] == bwd.bytes["workspace"] > 0


def test_single_threaded_restores_blas_threads():
    """The BLAS thread count is 1 inside (nested too) and restored after the outermost exit."""
    from fastconv import _blas_threads
    libs = _blas_threads.blas_libraries()
    if not libs:
        pytest.skip("threadpoolctl cannot see SciPy's BLAS")
    original = [lib.num_threads for lib in libs]
    for lib in libs:
        lib.set_num_threads(2)
    before = [lib.num_threads for lib in libs]
    assert before == [2] * len(libs)
    with single_threaded():
        assert all(lib.num_threads == 1 for lib in libs)
        with single_threaded():
            assert all(lib.num_threads == 1 for lib in libs)
        assert all(lib.num_threads == 1 for lib in libs)
    after = [lib.num_threads for lib in libs]
    for lib, n in zip(libs, original):
        lib.set_num_threads(n)
    assert after == before


# (case, passes that must run in parallel).  One small image is one forward
# task: splitting it (rows or output channels) cost 25-35% at 1 thread, and the
# task geometry may not depend on the thread count, so it stays serial.
MEDIUM = [
    (Case(2, 64, 20, 20, 64, 3, pad=1), ("forward", "input", "weight")),   # forward-form grad input
    (Case(1, 32, 12, 12, 160, 3, pad=1), ("input", "weight")),             # col2im grad input
    (Case(3, 48, 9, 9, 32, 3, stride=2, pad=1, groups=2), ("forward", "input", "weight")),
]


@pytest.mark.parametrize("case,parallel", MEDIUM, ids=[repr(c) for c, _ in MEDIUM])
def test_medium_layers_parallel_and_bit_identical(case, parallel):
    """Realistic sizes really run on 2 threads (two buffers) and match 1 thread bit for bit."""
    x, w, b, gy = _data(case, np.float32, seed=5)
    with config._forced_runtime(threads=1):
        one, ws1 = _run(case, x, w, b, gy)
    with config._forced_runtime(threads=2):
        two, ws2 = _run(case, x, w, b, gy)
    for pass_, a, c in zip(("forward", "input", "weight"), ws1, ws2):
        if pass_ in parallel:
            assert c > a, f"{pass_}: 2 threads should allocate a second buffer ({a} vs {c})"
    for a, c, what in zip(one, two, ("forward", "grad_input", "grad_weight")):
        np.testing.assert_array_equal(a, c, err_msg=f"{what} differs between 1 and 2 threads")
    if HAVE_TORCH:
        ry, rgx, rgw = _torch_ref(case, x, w, b, gy)
        for got, ref, what in zip(one, (ry, rgx, rgw), ("forward", "grad_input", "grad_weight")):
            _close(got, ref, np.float32, what)



def test_public_call_keeps_blas_single_threaded(monkeypatch):
    """fastconv.conv runs im2col kernels inside _blas_threads.single_threaded()."""
    conv = _public()
    from fastconv import _blas_threads
    entered = []
    real = _blas_threads.single_threaded

    def spy():
        entered.append(1)
        return real()

    monkeypatch.setattr(_blas_threads, "single_threaded", spy)
    x = np.ones((1, 2, 5, 5))
    w = np.ones((3, 2, 3, 3))
    conv.conv2d(x, w, algo="im2col")
    assert entered, "im2col call not wrapped"
    entered.clear()
    conv.conv2d(x, w, algo="direct")
    assert not entered
