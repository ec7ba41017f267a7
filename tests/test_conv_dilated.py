"""Dilated convolution by space-to-batch (algo 2) against the float64 reference and PyTorch.

The kernels are called through fastconv._kernels directly (algo=2) so these
tests cover the C decomposition itself: forward, grad input (also the
transposed convolution) and grad weight, over dilations 1-18, strides 1-3,
sizes that are not multiples of the dilation (sub-images of unequal size),
padding, groups, empty batches, both dtypes, both ISA paths, 1 and 2 threads,
and the exact workspace each call allocates.
"""
import numpy as np
import pytest

from fastconv import _dilated, _kernels, _workspace, config
from fastconv import reference as ref

from conftest import HAVE_TORCH, rand, tol

ALGO = _kernels.ALGO_DILATED


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_blas():
    """The GEMM path calls the BLAS from OpenMP threads: hold it to one thread, as
    fastconv's public API does around every such call."""
    from fastconv import _blas_threads
    with _blas_threads.single_threaded():
        yield


PASSES = {"forward": 0, "input": 1, "weight": 2}


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class Case:
    """One convolution: NCHW input, (C_out, C_in/g, kh, kw) weight, stride, padding, dilation."""

    def __init__(self, n, c_in, h, w, c_out, k, stride=1, padding=0, dilation=1, groups=1):
        self.n, self.c_in, self.h, self.w, self.c_out, self.groups = n, c_in, h, w, c_out, groups
        self.kh, self.kw = _pair(k)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.ho = ref.conv_output_size(h, self.kh, self.stride[0], self.padding[0], self.padding[0],
                                       self.dilation[0])
        self.wo = ref.conv_output_size(w, self.kw, self.stride[1], self.padding[1], self.padding[1],
                                       self.dilation[1])

    @property
    def shape(self):
        return (self.n, self.c_in, self.h, self.w, self.c_out, self.kh, self.kw, self.ho, self.wo,
                self.stride[0], self.stride[1], self.padding[0], self.padding[1],
                self.dilation[0], self.dilation[1], self.groups)

    @property
    def x_shape(self):
        return (self.n, self.c_in, self.h, self.w)

    @property
    def w_shape(self):
        return (self.c_out, self.c_in // self.groups, self.kh, self.kw)

    @property
    def y_shape(self):
        return (self.n, self.c_out, self.ho, self.wo)

    def workspace(self, pass_, itemsize):
        return _workspace.conv2d("dilated", pass_, self.x_shape, self.w_shape, self.y_shape,
                                 self.stride, self.padding, self.dilation, self.groups, itemsize)

    def __repr__(self):
        return (f"x{self.x_shape} w{self.w_shape} s{self.stride} p{self.padding} "
                f"d{self.dilation} g{self.groups}")


CASES = [
    Case(1, 3, 17, 19, 4, 3, padding=2, dilation=2),
    Case(2, 4, 33, 33, 6, 3, padding=18, dilation=18, groups=2),      # ASPP rate 18
    Case(1, 5, 23, 21, 3, 3, padding=6, dilation=6),                  # 23, 21 not multiples of 6
    Case(1, 2, 31, 29, 4, (3, 2), stride=(2, 3), padding=(3, 1), dilation=(4, 5), groups=2),
    Case(1, 3, 40, 37, 2, (2, 3), stride=3, dilation=(7, 3)),
    Case(1, 4, 1, 300, 4, (1, 2), padding=(0, 64), dilation=(1, 64)),  # WaveNet-like, H = 1
    Case(2, 3, 15, 16, 3, 3, stride=2, padding=1, dilation=2, groups=3),  # stride == dilation
    Case(1, 6, 30, 30, 6, 3, padding=12, dilation=12, groups=6),      # depthwise
    Case(1, 1, 9, 9, 1, 5, dilation=2),                               # kernel span == input
    Case(1, 3, 25, 25, 2, 3, stride=3, padding=17, dilation=17),
    Case(1, 2, 11, 13, 3, 2, stride=(1, 2), dilation=(9, 11)),
    Case(1, 3, 12, 11, 4, 3, stride=2, padding=1, dilation=1),        # no dilation, stride 2
    Case(1, 3, 8, 9, 2, 1, stride=2, dilation=5),                     # 1x1 kernel
    Case(1, 2, 20, 20, 2, 2, stride=3, padding=1, dilation=3),        # stride > kernel
    Case(1, 2, 1, 1, 3, 3, padding=4, dilation=4),                    # input smaller than padding
    Case(1, 2, 29, 31, 2, 3, stride=2, padding=5, dilation=3),        # gcd(stride, dil) = 1
    Case(1, 2, 26, 27, 3, 2, stride=3, padding=2, dilation=(6, 9)),   # stride divides dilation
    Case(1, 7, 10, 13, 5, 3, padding=(2, 3), dilation=(2, 3), groups=1),  # channels not 8k
]

# >= 8 channels per group: served by the GEMM path when a BLAS is loaded.
GEMM_CASES = [
    Case(1, 16, 17, 19, 16, 3, padding=2, dilation=2),
    Case(2, 16, 33, 33, 24, 3, padding=18, dilation=18, groups=2),
    Case(1, 8, 31, 29, 9, (3, 2), stride=(2, 3), padding=(3, 1), dilation=(4, 5)),
    Case(1, 10, 40, 37, 9, (2, 3), stride=3, dilation=(7, 3)),
    Case(1, 8, 1, 300, 8, (1, 2), padding=(0, 64), dilation=(1, 64)),   # WaveNet-like
    Case(1, 8, 25, 25, 8, 3, stride=3, padding=17, dilation=17),
    Case(1, 8, 2, 3, 8, 3, padding=4, dilation=4),                      # input smaller than padding
    Case(1, 8, 29, 31, 11, 3, stride=2, padding=5, dilation=3),
    Case(2, 12, 14, 15, 8, (3, 1), stride=(2, 1), padding=(3, 0), dilation=(3, 1)),
    Case(1, 9, 10, 13, 10, 3, padding=(2, 3), dilation=(2, 3)),
    Case(2, 8, 1, 200, 8, (1, 2), dilation=(1, 32)),            # every column full: one K = 2*8 GEMM
    Case(1, 8, 20, 21, 9, 3, dilation=3),                       # 3x3 without padding, stacked columns
    Case(1, 8, 1, 40, 9, (3, 2), padding=(2, 3), dilation=(1, 4)),      # one input row, 3 output rows
    Case(2, 16, 1, 37, 16, 3, stride=(2, 1), padding=(3, 5), dilation=(2, 5), groups=2),
    # one-row paths with several column chunks (and grad-weight partial sums)
    Case(2, 64, 1, 1500, 16, (1, 2), padding=(0, 3), dilation=(1, 50)),
    Case(1, 16, 1, 3000, 64, (1, 3), padding=(0, 5), dilation=(1, 7), groups=2),
]
CASES = CASES + GEMM_CASES


def _run_forward(case, dtype, rng, bias=True):
    x = rand(rng, case.x_shape, dtype)
    w = rand(rng, case.w_shape, dtype)
    b = rand(rng, (case.c_out,), dtype) if bias else None
    y = np.full(case.y_shape, np.nan, dtype=dtype)
    x0, w0 = x.copy(), w.copy()
    ws = _kernels.conv2d(x.reshape(-1), w.reshape(-1), b, y.reshape(-1), case.shape, ALGO)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)
    return x, w, b, y, ws


def _run_backward(case, dtype, rng):
    x = rand(rng, case.x_shape, dtype)
    w = rand(rng, case.w_shape, dtype)
    gy = rand(rng, case.y_shape, dtype)
    gx = np.full(case.x_shape, np.nan, dtype=dtype)
    gw = np.full(case.w_shape, np.nan, dtype=dtype)
    gy0 = gy.copy()
    ws_in = _kernels.conv2d_grad_input(gy.reshape(-1), w.reshape(-1), gx.reshape(-1), case.shape, ALGO)
    ws_w = _kernels.conv2d_grad_weight(gy.reshape(-1), x.reshape(-1), gw.reshape(-1), case.shape, ALGO)
    np.testing.assert_array_equal(gy, gy0)
    return x, w, gy, gx, gw, ws_in, ws_w


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_forward_matches_reference(case, dtype, isa):
    rng = np.random.default_rng(1)
    x, w, b, y, ws = _run_forward(case, dtype, rng)
    expect = ref.conv2d(x, w, b, case.stride, case.padding, case.dilation, case.groups)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(y, expect, rtol=rtol, atol=atol * case.c_in * case.kh * case.kw)
    assert ws == case.workspace("forward", dtype.itemsize)
    assert ws == _kernels.conv2d_workspace(case.shape, ALGO, dtype.itemsize, 0)
    assert ws > 0


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_backward_matches_reference(case, dtype, isa):
    rng = np.random.default_rng(2)
    x, w, gy, gx, gw, ws_in, ws_w = _run_backward(case, dtype, rng)
    ex, ew, _ = ref.conv2d_backward(gy, x, w, case.stride, case.padding, case.dilation, case.groups,
                                    needs=("input", "weight"))
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(gx, ex, rtol=rtol, atol=atol * case.c_out * case.kh * case.kw)
    np.testing.assert_allclose(gw, ew, rtol=rtol, atol=atol * case.n * case.ho * case.wo)
    assert ws_in == case.workspace("input", dtype.itemsize)
    assert ws_w == case.workspace("weight", dtype.itemsize)
    assert ws_in == _kernels.conv2d_workspace(case.shape, ALGO, dtype.itemsize, 1)
    assert ws_w == _kernels.conv2d_workspace(case.shape, ALGO, dtype.itemsize, 2)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed")
@pytest.mark.parametrize("case", CASES[:8] + CASES[15:], ids=repr)
def test_matches_torch(case):
    import torch
    import torch.nn.functional as F
    rng = np.random.default_rng(3)
    dtype = np.dtype("float64")
    x, w, b, y, _ = _run_forward(case, dtype, rng)
    xt = torch.from_numpy(x).requires_grad_()
    wt = torch.from_numpy(w).requires_grad_()
    yt = F.conv2d(xt, wt, torch.from_numpy(b), case.stride, case.padding, case.dilation, case.groups)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-11)
    gy = rand(rng, case.y_shape, dtype)
    yt.backward(torch.from_numpy(gy))
    gx = np.full(case.x_shape, np.nan)
    gw = np.full(case.w_shape, np.nan)
    _kernels.conv2d_grad_input(gy.reshape(-1), w.reshape(-1), gx.reshape(-1), case.shape, ALGO)
    _kernels.conv2d_grad_weight(gy.reshape(-1), x.reshape(-1), gw.reshape(-1), case.shape, ALGO)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_random_configurations(dtype):
    """Every stride 1-3 with every dilation 1-18 is served exactly (no configuration is refused)."""
    rng = np.random.default_rng(4)
    rtol, atol = tol(dtype)
    checked = 0
    while checked < 60:
        d = (int(rng.integers(1, 19)), int(rng.integers(1, 19)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        p = (int(rng.integers(0, d[0] + 1)), int(rng.integers(0, d[1] + 1)))
        g = int(rng.choice([1, 2]))
        ci, co = int(rng.choice([1, 3, 8, 9])), int(rng.choice([2, 8, 10]))  # both paths
        case = Case(int(rng.integers(1, 3)), g * ci, int(rng.integers(1, 40)),
                    int(rng.integers(1, 40)), g * co, k, s, p, d, g)
        if case.ho < 1 or case.wo < 1:
            continue
        x, w, b, y, ws = _run_forward(case, dtype, rng)
        terms_y = case.c_in // g * k[0] * k[1]        # products summed per output
        terms_x = case.c_out // g * k[0] * k[1]       # ... per input gradient
        np.testing.assert_allclose(y, ref.conv2d(x, w, b, s, p, d, g), rtol=rtol, atol=atol * terms_y,
                                   err_msg=repr(case))
        assert ws == case.workspace("forward", dtype.itemsize), case
        x, w, gy, gx, gw, ws_in, ws_w = _run_backward(case, dtype, rng)
        ex, ew, _ = ref.conv2d_backward(gy, x, w, s, p, d, g, needs=("input", "weight"))
        np.testing.assert_allclose(gx, ex, rtol=rtol, atol=atol * terms_x, err_msg=repr(case))
        np.testing.assert_allclose(gw, ew, rtol=rtol, atol=atol * 4 * case.ho * case.wo,
                                   err_msg=repr(case))
        assert (ws_in, ws_w) == (case.workspace("input", dtype.itemsize),
                                 case.workspace("weight", dtype.itemsize)), case
        checked += 1


@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[5]] + GEMM_CASES[1:5] + GEMM_CASES[-4:],
                         ids=repr)
def test_threads_bitwise_identical(case, dtype, isa):
    outs = []
    for t in (1, 2):
        with config._forced_runtime(threads=t):
            rng = np.random.default_rng(5)
            _, _, _, y, _ = _run_forward(case, dtype, rng)
            _, _, _, gx, gw, _, _ = _run_backward(case, dtype, rng)
            outs.append((y, gx, gw))
    for a, b in zip(outs[0], outs[1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("stride,padding,output_padding,dilation", [
    (1, 0, 0, 3), (2, 1, 1, 2), (3, 4, 2, 5), ((2, 1), (3, 0), (1, 0), (4, 7))])
def test_transposed_convolution(stride, padding, output_padding, dilation, dtype):
    """conv_transpose2d = grad input of the conv whose input is the transposed conv's output."""
    rng = np.random.default_rng(6)
    n, c_in_t, h, w, c_out_t, groups, k = 2, 4, 7, 9, 6, 2, (3, 2)
    s, p, op, d = _pair(stride), _pair(padding), _pair(output_padding), _pair(dilation)
    ht = (h - 1) * s[0] - 2 * p[0] + d[0] * (k[0] - 1) + op[0] + 1
    wt = (w - 1) * s[1] - 2 * p[1] + d[1] * (k[1] - 1) + op[1] + 1
    case = Case(n, c_out_t, ht, wt, c_in_t, k, s, p, d, groups)
    assert (case.ho, case.wo) == (h, w)
    t = rand(rng, (n, c_in_t, h, w), dtype)
    wgt = rand(rng, (c_in_t, c_out_t // groups) + k, dtype)
    out = np.full((n, c_out_t, ht, wt), np.nan, dtype=dtype)
    _kernels.conv2d_grad_input(t.reshape(-1), wgt.reshape(-1), out.reshape(-1), case.shape, ALGO)
    expect = ref.conv_transpose2d(t, wgt, None, s, p, op, groups, d)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(out, expect, rtol=rtol, atol=atol * 20)


@pytest.mark.parametrize("case", [
    Case(0, 3, 9, 9, 4, 3, padding=2, dilation=2),      # empty batch
    Case(2, 0, 9, 9, 4, 3, padding=2, dilation=2),      # no input channels: y = bias
    Case(2, 3, 9, 9, 0, 3, padding=2, dilation=2),      # no output channels
    Case(1, 2, 0, 5, 3, 3, padding=(2, 1), dilation=2),  # empty input rows, padded output
    Case(1, 8, 0, 5, 8, 3, padding=(2, 1), dilation=2),  # the same on the GEMM path
    Case(1, 2, 0, 5, 3, 3, padding=(3, 1), dilation=2),  # no input rows, 2x3 output of bias
    Case(2, 8, 0, 5, 8, 3, padding=(3, 1), dilation=2),  # the same on the GEMM path
    Case(1, 8, 3, 0, 8, 3, padding=(1, 3), dilation=2),  # no input columns
    Case(0, 8, 9, 9, 8, 3, padding=2, dilation=2),
], ids=repr)
def test_empty_dimensions(case, dtype):
    rng = np.random.default_rng(7)
    x, w, b, y, ws = _run_forward(case, dtype, rng)
    np.testing.assert_allclose(y, ref.conv2d(x, w, b, case.stride, case.padding, case.dilation,
                                             case.groups), atol=1e-6)
    assert ws == case.workspace("forward", dtype.itemsize)
    x, w, gy, gx, gw, ws_in, ws_w = _run_backward(case, dtype, rng)
    ex, ew, _ = ref.conv2d_backward(gy, x, w, case.stride, case.padding, case.dilation, case.groups,
                                    needs=("input", "weight"))
    np.testing.assert_allclose(gx, ex, atol=1e-6)
    np.testing.assert_allclose(gw, ew, atol=1e-6)
    assert ws_in == case.workspace("input", dtype.itemsize)
    assert ws_w == case.workspace("weight", dtype.itemsize)


def test_empty_batch_allocates_nothing():
    case = Case(0, 3, 9, 9, 4, 3, padding=2, dilation=2)
    for pass_ in PASSES:
        assert case.workspace(pass_, 4) == 0
        assert _kernels.conv2d_workspace(case.shape, ALGO, 4, PASSES[pass_]) == 0


def test_workspace_formula_counts_the_rearranged_copies():
    """Stride 1, sizes multiple of the dilation: sub-images tile the padded input exactly."""
    case = Case(1, 4, 30, 30, 6, 3, padding=6, dilation=6)   # < 8 channels: sub-image copies
    # classes 6x6, each 5x5 outputs from a 7x7 sub-image
    expect = (36 * 4 * 7 * 7 + 36 * 6 * 5 * 5) * 4
    # grad input runs as the forward convolution of grad_out (6 channels) with the
    # flipped 4x6x3x3 weights (rearranged copy) into 4 channels: 6x6 classes again
    expect_in = (36 * 6 * 7 * 7 + 36 * 4 * 5 * 5 + 6 * 4 * 9) * 4
    for pass_ in PASSES:
        want = expect_in if pass_ == "input" else expect
        assert case.workspace(pass_, 4) == want
        assert _kernels.conv2d_workspace(case.shape, ALGO, 4, PASSES[pass_]) == want


@pytest.mark.skipif(not _kernels.get_runtime()["blas"], reason="no BLAS loaded")
def test_gemm_path_workspace():
    """GEMM path: per kernel column the band of output columns reading x, copied (rows grouped
    by stride class), a temporary for partial bands, and one weight-sized buffer."""
    case = Case(1, 8, 31, 29, 9, (3, 2), stride=(2, 3), padding=(3, 1), dilation=(4, 5))
    rows = 2 * -(-31 // 2)
    assert case.wo == 9   # columns j*3 - 1 (b = 0) and j*3 + 4 (b = 1) inside [0, 29)
    # b = 0: j = 1..8, a partial band of 8 (copy + temporary); b = 1: j = 0..8, the whole row
    expect = (8 * rows * 8 + 9 * case.ho * 8 + 8 * rows * 9 + 9 * 8 * 3 * 2) * 8
    for pass_ in PASSES:
        assert case.workspace(pass_, 8) == expect
        assert _kernels.conv2d_workspace(case.shape, ALGO, 8, PASSES[pass_]) == expect
    case = Case(1, 8, 31, 29, 9, (3, 2), stride=(2, 3), padding=(3, 7), dilation=(4, 5))
    assert case.wo == 13
    # b = 0: columns j*3 - 7 inside x for j = 3..11, b = 1: j*3 - 2 for j = 1..10: two
    # partial bands (copy + temporary each)
    expect = (8 * rows * 9 + 9 * case.ho * 9 + 8 * rows * 10 + 9 * case.ho * 10 + 9 * 8 * 3 * 2) * 8
    for pass_ in PASSES:
        assert case.workspace(pass_, 8) == expect
        assert _kernels.conv2d_workspace(case.shape, ALGO, 8, PASSES[pass_]) == expect
    for c in GEMM_CASES:
        assert _workspace._dilated_gemm(c.x_shape, c.w_shape, c.y_shape, c.stride, c.padding,
                                         c.dilation, c.groups) is not None
    for c in CASES[:len(CASES) - len(GEMM_CASES)]:
        assert _workspace._dilated_gemm(c.x_shape, c.w_shape, c.y_shape, c.stride, c.padding,
                                         c.dilation, c.groups) is None


def test_can_serve():
    ok, why = _dilated.can_serve((3, 1), (17, 2))
    assert ok and why == ""
    ok, why = _dilated.can_serve((1, 1), (0, 2))
    assert not ok and "dilation" in why
    ok, why = _dilated.can_serve((0, 1), (2, 2))
    assert not ok and "stride" in why


def test_workspace_model_matches_c_on_many_shapes():
    """The Python model equals the C plan (no allocation: a query only), on random shapes
    and on shapes past the BLAS int range, where the C side leaves the GEMM path."""
    rng = np.random.default_rng(8)
    cases = [
        Case(1, 8, 50000, 50000, 8, 3, padding=2, dilation=2),        # h_out*w_out > 2^31
        Case(1, 8, 1, 3_000_000_000, 8, (1, 2), dilation=(1, 7)),     # w_in > 2^31, one row
        Case(1, 20000, 4, 4, 8, (1, 120000), padding=(0, 60000)),   # kw * c_in > 2^31
    ]
    for _ in range(300):
        g = int(rng.choice([1, 2, 3]))
        d = (int(rng.integers(1, 20)), int(rng.integers(1, 20)))
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        case = Case(int(rng.integers(0, 3)), g * int(rng.integers(0, 12)), int(rng.integers(0, 30)),
                    int(rng.integers(0, 30)), g * int(rng.integers(0, 12)), k,
                    (int(rng.integers(1, 4)), int(rng.integers(1, 4))),
                    (int(rng.integers(0, d[0] * k[0])), int(rng.integers(0, d[1] * k[1]))), d, g)
        if case.ho >= 0 and case.wo >= 0:
            cases.append(case)
    for case in cases:
        for pass_, code in PASSES.items():
            for itemsize in (4, 8):
                assert case.workspace(pass_, itemsize) == \
                    _kernels.conv2d_workspace(case.shape, ALGO, itemsize, code), (case, pass_)


def _read_mask(size, out, k, stride, pad, dil):
    """Input positions along one axis that some (output, tap) pair reads."""
    m = np.zeros(size, bool)
    for o in range(out):
        for a in range(k):
            p = o * stride + a * dil - pad
            if 0 <= p < size:
                m[p] = True
    return m


@pytest.mark.parametrize("case", [
    Case(1, 2, 7, 2, 1, (3, 2), dilation=(3, 1)),                      # the fuzz find
    Case(1, 3, 23, 21, 3, 3, padding=1, dilation=9),                   # unequal sub-images
    Case(1, 2, 26, 27, 3, 2, stride=3, padding=2, dilation=(6, 9)),
    Case(1, 2, 20, 20, 2, 2, stride=3, padding=1, dilation=3),         # stride > kernel
    Case(1, 8, 23, 21, 8, 3, padding=1, dilation=9),                   # GEMM path
    Case(1, 8, 31, 29, 9, (3, 2), stride=(2, 3), padding=(3, 1), dilation=(4, 5)),
    Case(1, 8, 1, 300, 8, (1, 2), dilation=(1, 200)),                  # viewed single row
], ids=repr)
def test_unread_nan_does_not_reach_gradients(case, isa):
    """Input elements no tap reads are NaN: y, grad x and grad w must equal the
    results with those elements zero (no 0*NaN from junk sub-outputs)."""
    rng = np.random.default_rng(9)
    dtype = np.dtype("float64")
    x = rand(rng, case.x_shape, dtype)
    w = rand(rng, case.w_shape, dtype)
    gy = rand(rng, case.y_shape, dtype)
    mh = _read_mask(case.h, case.ho, case.kh, case.stride[0], case.padding[0], case.dilation[0])
    mw = _read_mask(case.w, case.wo, case.kw, case.stride[1], case.padding[1], case.dilation[1])
    unread = ~(mh[:, None] & mw[None, :])
    assert unread.any()
    clean = np.where(unread, 0.0, x)
    x[:, :, unread] = np.nan
    y = np.full(case.y_shape, np.nan)
    gw = np.full(case.w_shape, np.nan)
    _kernels.conv2d(x.reshape(-1), w.reshape(-1), None, y.reshape(-1), case.shape, ALGO)
    _kernels.conv2d_grad_weight(gy.reshape(-1), x.reshape(-1), gw.reshape(-1), case.shape, ALGO)
    np.testing.assert_allclose(y, ref.conv2d(clean, w, None, case.stride, case.padding,
                                             case.dilation, case.groups), rtol=1e-10, atol=1e-11)
    ew = ref.conv2d_backward(gy, clean, w, case.stride, case.padding, case.dilation, case.groups,
                             needs=("weight",))[1]
    np.testing.assert_allclose(gw, ew, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", GEMM_CASES[-2:], ids=repr)
def test_row_path_workspace_per_thread(case):
    """The GEMM one-row paths (baseline ISA) allocate one chunk copy per thread used;
    the AVX2 row kernels a thread-independent workspace: the model follows both."""
    rng = np.random.default_rng(10)
    dtype = np.dtype("float32")
    for isa_name in config._available_isas():
        seen = set()
        for t in (1, 2):
            with config._forced_runtime(isa_name=isa_name, threads=t):
                _, _, _, _, ws = _run_forward(case, dtype, rng)
                _, _, _, _, _, ws_in, ws_w = _run_backward(case, dtype, rng)
                got = (ws, ws_in, ws_w)
                assert got == tuple(case.workspace(p, 4) for p in PASSES), (isa_name, t, got)
                seen.add(got)
        if isa_name != "baseline":
            assert len(seen) == 1   # packed weights / accumulators only
        elif _kernels.get_runtime()["blas"]:
            assert len(seen) == 2   # more threads, more chunk buffers


def test_row_paths_random(dtype, isa):
    """One-row layers (h = 1, kh = 1, no row padding, column stride 1: the chunked row
    paths when >= 8 channels per group) with random widths, kernels, dilations, padding
    and groups, against the reference, with the exact workspace."""
    rng = np.random.default_rng(11)
    rtol, atol = tol(dtype)
    checked = 0
    while checked < 25:
        g = int(rng.choice([1, 2]))
        kw = int(rng.integers(1, 5))
        d = int(rng.integers(1, 300))
        p = int(rng.integers(0, d * kw + 3))
        case = Case(int(rng.integers(1, 3)), g * int(rng.choice([8, 9, 40])), 1,
                    int(rng.integers(1, 3000)), g * int(rng.choice([8, 11, 48])), (1, kw),
                    1, (0, p), (1, d), g)
        if case.wo < 1:
            continue
        x, w, b, y, ws = _run_forward(case, dtype, rng)
        np.testing.assert_allclose(y, ref.conv2d(x, w, b, case.stride, case.padding, case.dilation, g),
                                   rtol=rtol, atol=atol * case.c_in * kw, err_msg=repr(case))
        x, w, gy, gx, gw, ws_in, ws_w = _run_backward(case, dtype, rng)
        ex, ew, _ = ref.conv2d_backward(gy, x, w, case.stride, case.padding, case.dilation, g,
                                        needs=("input", "weight"))
        np.testing.assert_allclose(gx, ex, rtol=rtol, atol=atol * case.c_out * kw, err_msg=repr(case))
        np.testing.assert_allclose(gw, ew, rtol=rtol, atol=atol * case.n * case.wo, err_msg=repr(case))
        assert (ws, ws_in, ws_w) == tuple(case.workspace(q, dtype.itemsize) for q in PASSES), case
        checked += 1


# Row kernels (AVX2 path: h = 1, kh = 1, no row padding, column stride 1, >= 8 channels
# per group): every tail width of the 4 x 3-vector tile (1..3 vectors, masked last one),
# output-row blocks not a multiple of 4, grad-weight input blocks not a multiple of 3,
# up to 2*kw + 1 segments of valid taps (padding wider than the dilation), segments
# where every tap is padding, and kw > 64 (declined: the GEMM row path serves it).
ROW_CASES = [
    Case(1, 8, 1, w, 9, (1, 2), padding=(0, 1), dilation=(1, 3))
    for w in (2, 5, 8, 9, 10, 14, 17, 18, 24, 25, 26, 28, 50)
] + [
    Case(2, 11, 1, 53, 13, (1, 4), padding=(0, 20), dilation=(1, 6)),   # 9 segments
    Case(1, 8, 1, 5, 8, (1, 3), padding=(0, 30), dilation=(1, 25)),     # all-padding segments
    Case(1, 24, 1, 77, 16, (1, 3), padding=(0, 4), dilation=(1, 2), groups=2),
    Case(3, 10, 1, 130, 8, (1, 1)),                                     # 1x1
    Case(1, 8, 1, 200, 8, (1, 65), padding=(0, 40)),                    # kw > 64: GEMM path
    Case(1, 16, 1, 49, 8, (1, 2), stride=(3, 1), dilation=(1, 24)),     # row stride is moot
]


@pytest.mark.parametrize("case", ROW_CASES, ids=repr)
def test_row_kernels(case, dtype, isa, threads):
    """Forward, grad input and grad weight of one-row layers against the reference,
    NaN-filled outputs, exact workspace; bias and no bias."""
    rng = np.random.default_rng(12)
    rtol, atol = tol(dtype)
    kw = case.kw
    for bias in (True, False):
        x, w, b, y, ws = _run_forward(case, dtype, rng, bias=bias)
        np.testing.assert_allclose(y, ref.conv2d(x, w, b, case.stride, case.padding, case.dilation,
                                                 case.groups),
                                   rtol=rtol, atol=atol * case.c_in * kw, err_msg=repr(case))
        assert ws == case.workspace("forward", dtype.itemsize)
    x, w, gy, gx, gw, ws_in, ws_w = _run_backward(case, dtype, rng)
    ex, ew, _ = ref.conv2d_backward(gy, x, w, case.stride, case.padding, case.dilation,
                                    case.groups, needs=("input", "weight"))
    np.testing.assert_allclose(gx, ex, rtol=rtol, atol=atol * case.c_out * kw, err_msg=repr(case))
    np.testing.assert_allclose(gw, ew, rtol=rtol, atol=atol * case.n * case.wo, err_msg=repr(case))
    assert (ws_in, ws_w) == (case.workspace("input", dtype.itemsize),
                             case.workspace("weight", dtype.itemsize))


@pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed")
@pytest.mark.parametrize("d", [1, 7, 64, 300])
def test_row_kernels_match_torch(d, dtype, isa):
    """WaveNet-like layers (64 channels, kernel 1x2, causal padding) against PyTorch."""
    import torch
    rng = np.random.default_rng(13)
    rtol, atol = tol(dtype)
    x = rand(rng, (2, 64, 1, 700), dtype)
    w = rand(rng, (48, 64, 1, 2), dtype)
    b = rand(rng, (48,), dtype)
    case = Case(2, 64, 1, 700, 48, (1, 2), padding=(0, d), dilation=(1, d))
    y = np.full(case.y_shape, np.nan, dtype)
    _kernels.conv2d(x.reshape(-1), w.reshape(-1), b, y.reshape(-1), case.shape, ALGO)
    tx = torch.from_numpy(x).double().requires_grad_()
    tw = torch.from_numpy(w).double().requires_grad_()
    ty = torch.nn.functional.conv2d(tx, tw, torch.from_numpy(b).double(), 1, (0, d), (1, d))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=rtol, atol=atol * 128)
    gy = rand(rng, case.y_shape, dtype)
    ty.backward(torch.from_numpy(gy).double())
    gx = np.full(case.x_shape, np.nan, dtype)
    gw = np.full(case.w_shape, np.nan, dtype)
    _kernels.conv2d_grad_input(gy.reshape(-1), w.reshape(-1), gx.reshape(-1), case.shape, ALGO)
    _kernels.conv2d_grad_weight(gy.reshape(-1), x.reshape(-1), gw.reshape(-1), case.shape, ALGO)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=rtol, atol=atol * 96)
    np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=rtol, atol=atol * 2 * 700)


# Large dense sub-images, stride 1, >= 16 output channels per group: on the AVX2/AVX-512
# paths the stacked sub-images go through the direct dispatcher instead of the GEMM path
# (fc_dil_prefer_split) when they have >= 256 outputs (forward), >= 100 (grad input, run as
# the forward convolution of grad_out with the flipped kernel; also needs >= 16 input
# channels per group and padding <= dilation*(k-1)) or >= 1024 (grad weight).  The
# baseline path keeps the GEMM path.  Unequal sub-images (odd sizes), groups, padding
# smaller and larger than dilation*(k-1).  Each case: (case, (fwd, input, weight) split).
SPLIT_CASES = [
    (Case(1, 16, 70, 66, 16, 3, padding=2, dilation=2), (True, True, True)),
    (Case(2, 8, 67, 101, 32, 3, padding=(2, 3), dilation=(2, 3), groups=2), (True, False, True)),
    (Case(1, 16, 33, 1100, 16, (1, 3), padding=(0, 3), dilation=(1, 1)), (True, False, True)),
    (Case(1, 16, 41, 39, 24, 3, padding=4, dilation=4), (False, True, False)),       # 11x10
    (Case(1, 16, 45, 43, 16, 3, padding=1, dilation=2), (True, True, False)),        # pad < d(k-1)
    (Case(1, 16, 40, 40, 16, 3, padding=5, dilation=2), (True, False, False)),       # pad > d(k-1)
    (Case(1, 16, 37, 35, 20, (3, 2), padding=(2, 1), dilation=(2, 3)), (False, True, False)),
    (Case(2, 32, 35, 34, 32, 3, padding=(0, 3), dilation=(1, 3), groups=2), (True, True, False)),
]


@pytest.mark.parametrize("case,split", SPLIT_CASES, ids=[repr(c) for c, _ in SPLIT_CASES])
def test_large_subimage_paths(case, split, dtype, isa):
    rtol, atol = tol(dtype)
    outs = []
    for t in (1, 2):
        with config._forced_runtime(threads=t):
            rng = np.random.default_rng(14)
            x, w, b, y, ws = _run_forward(case, dtype, rng)
            assert ws == case.workspace("forward", dtype.itemsize)
            xb, wb, gy, gx, gw, ws_in, ws_w = _run_backward(case, dtype, rng)
            assert ws_in == case.workspace("input", dtype.itemsize)
            assert ws_w == case.workspace("weight", dtype.itemsize)
            outs.append((y, gx, gw))
    for pass_, want in zip(("forward", "input", "weight"), split):
        assert _workspace._dilated_prefer_split(pass_, case.w_shape, case.y_shape, case.stride,
                                                case.dilation, case.groups,
                                                case.padding) == (want and isa != "baseline")
    for a, b_ in zip(outs[0], outs[1]):
        np.testing.assert_array_equal(a, b_)
    y, gx, gw = outs[0]
    k = case.kh * case.kw
    np.testing.assert_allclose(y, ref.conv2d(x, w, b, case.stride, case.padding,
                                             case.dilation, case.groups),
                               rtol=rtol, atol=atol * case.c_in * k)
    rgx, rgw, _ = ref.conv2d_backward(gy, xb, wb, case.stride, case.padding, case.dilation,
                                      case.groups)
    np.testing.assert_allclose(gx, rgx, rtol=rtol, atol=atol * case.c_out * k)
    np.testing.assert_allclose(gw, rgw, rtol=rtol, atol=atol * case.n * case.ho * case.wo)
