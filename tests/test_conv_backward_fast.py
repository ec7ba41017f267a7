"""The fast direct backward paths (csrc/conv_bwd*.c): grad input as forward
convolutions of grad_out (one per stride phase) and the register-blocked
AVX2 / AVX-512 grad weight, on shapes that exercise their plans: several output-channel
blocks and partial ones, combos not a multiple of the micro-tile, several
input-channel blocks, row chunks, wide rows, padding copies vs in-place
reads, several small images per chunk, strides with and without a common factor with the dilation, padding
past the kernel's reach, grouped layers, batch chunks under a small
workspace limit.  Against the float64 reference and PyTorch autograd, both
ISAs, both dtypes, 1 and 2 threads bit-identical, outputs NaN-filled first,
workspace equal to the cost model."""
import numpy as np
import pytest

from conftest import HAVE_TORCH, tol
from fastconv import _kernels, _workspace, config, reference

# name: x shape, w shape, stride, padding, dilation, groups
CASES = {
    "resnet_like_3x3": ((2, 20, 12, 12), (24, 20, 3, 3), 1, 1, 1, 1),
    "partial_co_block_nv2": ((1, 7, 9, 11), (13, 7, 3, 3), 1, 1, 1, 1),
    "many_ci_blocks": ((1, 70, 6, 5), (16, 70, 3, 3), 1, 1, 1, 1),
    "one_by_one_in_place": ((2, 33, 7, 9), (17, 33, 1, 1), 1, 0, 1, 1),
    "one_by_one_stride2": ((2, 16, 9, 8), (32, 16, 1, 1), 2, 0, 1, 1),
    "down_3x3_s2": ((1, 16, 13, 14), (24, 16, 3, 3), 2, 1, 1, 1),
    "first_layer_7x7_s2": ((1, 3, 29, 30), (16, 3, 7, 7), 2, 3, 1, 1),
    "stride3_dil2": ((1, 8, 19, 17), (16, 8, 3, 3), 3, 2, 2, 1),
    "stride2_dil2_common_factor": ((1, 8, 15, 16), (16, 8, 3, 3), 2, 2, 2, 1),
    "stride_gt_kernel": ((2, 8, 14, 13), (16, 8, 2, 2), 3, 0, 1, 1),
    "pad_past_reach_s1": ((1, 9, 6, 7), (16, 9, 3, 3), 1, (3, 1), 1, 1),
    "pad_past_reach_s2": ((1, 9, 6, 7), (16, 9, 3, 3), 2, 4, 1, 1),
    "kernel_4_s2": ((1, 16, 10, 10), (8, 16, 4, 4), 2, 1, 1, 1),
    "groups": ((2, 24, 9, 10), (32, 12, 3, 3), 1, 1, 1, 2),
    "groups_stride2_rect": ((1, 12, 11, 10), (24, 4, 3, 2), (2, 1), (1, 0), (1, 2), 3),
    "wide_rows_chunked": ((1, 8, 3, 300), (16, 8, 3, 3), 1, 1, 1, 1),
    "wider_than_tile_rows": ((1, 8, 2, 530), (16, 8, 1, 3), 1, (0, 1), 1, 1),
    "tall_rows_chunked": ((1, 8, 70, 9), (16, 8, 3, 3), 1, 1, 1, 1),
    "no_pad_reach_in_place": ((1, 8, 9, 9), (16, 8, 3, 3), 1, 0, 1, 1),
    "empty_batch": ((0, 8, 5, 5), (16, 8, 3, 3), 1, 1, 1, 1),
    # AVX-512 grad weight (64 f32 / 32 f64 channels per block): partial
    # blocks of 1-4 vectors, small planes merged several images per chunk
    # (padded copy and in place, uneven image chunks), two blocks per group
    "co_tail_merged_images_copy": ((3, 20, 5, 6), (100, 20, 3, 3), 1, 1, 1, 1),
    "merged_images_in_place": ((4, 24, 6, 5), (72, 24, 1, 1), 1, 0, 1, 1),
    "merged_images_uneven": ((5, 10, 7, 7), (40, 10, 3, 3), 1, 1, 1, 1),
    "merged_images_stride2": ((3, 6, 9, 8), (48, 6, 3, 3), 2, 1, 1, 1),
    "two_co_blocks_groups": ((1, 16, 8, 8), (140, 8, 3, 3), 1, 1, 1, 2),
    # grad input: the padded form (grad_out padded symmetrically, leading
    # outputs dropped) for stride 2 and for stride-1 padding past the reach;
    # phases packed in several batches (25 phases); a kernel too large for
    # the one-pass packing
    "kernel_4_s2_padded_form": ((2, 16, 40, 38), (8, 16, 4, 4), 2, 1, 1, 1),
    "pad_past_reach_s1_padded_form": ((1, 8, 40, 37), (16, 8, 3, 3), 1, (3, 1), 1, 1),
    "stride5_25_phases": ((1, 4, 23, 21), (16, 4, 5, 5), 5, 2, 1, 1),
    "kernel_9x9_s2_unstaged": ((1, 4, 20, 19), (16, 4, 9, 9), 2, 4, 1, 1),
}
FAST = ["resnet_like_3x3", "down_3x3_s2", "stride3_dil2", "pad_past_reach_s2", "groups_stride2_rect",
        "first_layer_7x7_s2"]


def _out(size, k, s, p0, p1, d):
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _shape(case):
    xs, ws, stride, padding, dilation, groups = CASES[case]
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    ho, wo = _out(xs[2], ws[2], sh, ph, ph, dh), _out(xs[3], ws[3], sw, pw, pw, dw)
    t = (xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], ho, wo, sh, sw, ph, pw, dh, dw, groups)
    kw = dict(stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups)
    return t, (xs[0], ws[0], ho, wo), kw


def _data(case, dtype, seed=0):
    xs, ws = CASES[case][:2]
    t, ys, kw = _shape(case)
    rng = np.random.default_rng(seed)
    x, w, gy = (rng.uniform(-1, 1, s).astype(dtype) for s in (xs, ws, ys))
    return t, kw, x, w, gy


def _run(t, x, w, gy):
    """Direct grad input and grad weight through _kernels, outputs NaN-filled first."""
    gx = np.full(x.shape, np.nan, x.dtype)
    gw = np.full(w.shape, np.nan, w.dtype)
    xc, wc, gyc = x.copy(), w.copy(), gy.copy()
    ws_i = _kernels.conv2d_grad_input(gy.reshape(-1), w.reshape(-1), gx.reshape(-1), t,
                                      _kernels.ALGO_DIRECT)
    ws_w = _kernels.conv2d_grad_weight(gy.reshape(-1), x.reshape(-1), gw.reshape(-1), t,
                                       _kernels.ALGO_DIRECT)
    for a, b in ((x, xc), (w, wc), (gy, gyc)):
        np.testing.assert_array_equal(a, b)      # inputs never modified
    return gx, gw, ws_i, ws_w


def _model(t, x, w, gy, pass_):
    (n, ci, hi, wi, co, kh, kw_, ho, wo, sh, sw, ph, pw, dh, dw, g) = t
    return _workspace.conv2d("direct", pass_, x.shape, w.shape, gy.shape, (sh, sw), (ph, pw),
                             (dh, dw), g, x.dtype.itemsize)


@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference(case, dtype, isa):
    t, kw, x, w, gy = _data(case, dtype)
    gx, gw, ws_i, ws_w = _run(t, x, w, gy)
    rx, rw, _ = reference.conv2d_backward(gy, x, w, **kw)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(gx, rx, rtol=rtol, atol=atol)
    terms = max(1, gy.shape[0] * gy.shape[2] * gy.shape[3])
    np.testing.assert_allclose(gw, rw, rtol=rtol, atol=atol * np.sqrt(terms))
    assert ws_i == _model(t, x, w, gy, "input")
    assert ws_w == _model(t, x, w, gy, "weight") == 0
    assert _kernels.conv2d_workspace(t, _kernels.ALGO_DIRECT, x.dtype.itemsize, 1) == ws_i


@pytest.mark.parametrize("case", FAST + ["groups", "many_ci_blocks", "wide_rows_chunked",
                                         "co_tail_merged_images_copy", "merged_images_uneven",
                                         "two_co_blocks_groups", "kernel_4_s2_padded_form",
                                         "stride5_25_phases"])
def test_bit_identical_across_threads(case, dtype, isa):
    t, _, x, w, gy = _data(case, dtype)
    with config._forced_runtime(threads=1):
        r1 = _run(t, x, w, gy)
    with config._forced_runtime(threads=2):
        r2 = _run(t, x, w, gy)
    for a, b in zip(r1[:2], r2[:2]):
        assert a.tobytes() == b.tobytes(), "results differ between thread counts"


@pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed")
@pytest.mark.parametrize("case", [c for c in CASES if c != "empty_batch"])
def test_matches_torch_autograd_float64(case, isa):
    import torch
    t, kw, x, w, gy = _data(case, np.float64)
    gx, gw, _, _ = _run(t, x, w, gy)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    wt = torch.from_numpy(w.copy()).requires_grad_(True)
    torch.nn.functional.conv2d(xt, wt, None, **kw).backward(torch.from_numpy(gy))
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", ["down_3x3_s2", "pad_past_reach_s1", "stride3_dil2"])
def test_batch_chunks_under_small_workspace_limit(case, dtype):
    """A limit below one image's buffers: one image per chunk, same result, same model."""
    t, _, x, w, gy = _data(case, dtype)
    x, gy = np.concatenate([x] * 3), np.concatenate([gy] * 3)
    t = (3,) + t[1:]
    full = _run(t, x, w, gy)
    old = config.get_workspace_limit()
    try:
        config.set_workspace_limit(1)
        small = _run(t, x, w, gy)
        assert small[2] == _model(t, x, w, gy, "input")
    finally:
        config.set_workspace_limit(old)
    assert small[2] < full[2]
    for a, b in zip(full[:2], small[:2]):
        assert a.tobytes() == b.tobytes()


def test_stride1_reach_padding_needs_no_copy():
    """Stride 1 with padding within the kernel's reach: only the weights are rearranged."""
    t, _, x, w, gy = _data("resnet_like_3x3", np.float32)
    assert _run(t, x, w, gy)[2] == w.nbytes


@pytest.mark.parametrize("case", ["resnet_like_3x3", "down_3x3_s2", "groups_stride2_rect"])
def test_public_api_non_contiguous_and_transposed(case, dtype, isa):
    """conv2d_backward(algo="direct") on non-contiguous views, and conv_transpose2d(algo="direct")."""
    from fastconv import conv
    _, kw, x, w, gy = _data(case, dtype)
    rx, rw, rb = reference.conv2d_backward(gy, x, w, **kw)
    xv, wv, gv = (np.asfortranarray(a)[:, :, :, :] for a in (x, w, gy))
    xv, wv, gv = (np.ascontiguousarray(a[:, :, :, ::-1])[:, :, :, ::-1] for a in (xv, wv, gv))
    assert not gv.flags.c_contiguous
    gx, gw, gb = conv.conv2d_backward(gv, xv, wv, **kw, algo="direct")
    rtol, atol = tol(dtype)
    terms = gy.shape[0] * gy.shape[2] * gy.shape[3]
    np.testing.assert_allclose(gx, rx, rtol=rtol, atol=atol)
    np.testing.assert_allclose(gw, rw, rtol=rtol, atol=atol * np.sqrt(terms))
    np.testing.assert_allclose(gb, rb, rtol=rtol, atol=atol * np.sqrt(terms))
    # the transposed conv of gy with w is grad input (output_padding recovers x's size)
    s, p, d, g = kw["stride"], kw["padding"], kw["dilation"], kw["groups"]
    op = tuple(x.shape[2 + i] - ((gy.shape[2 + i] - 1) * s[i] - 2 * p[i] + d[i] * (w.shape[2 + i] - 1) + 1)
               for i in range(2))
    if all(0 <= o < max(s[i], d[i]) for i, o in enumerate(op)):
        y = conv.conv_transpose2d(gy, w, None, stride=s, padding=p, output_padding=op, groups=g,
                                  dilation=d, algo="direct")
        np.testing.assert_allclose(y, rx, rtol=rtol, atol=atol)


@pytest.mark.parametrize("stride", [5, 1 << 20, 1 << 62])
def test_stride_far_beyond_input_is_prompt_and_exact(stride, isa):
    """Only residues below the input size are phases: a stride near 2**62 must
    not loop over stride**2 phases.  Positions no tap reaches get 0."""
    from fastconv import conv
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, (2, 8, 4, 3)).astype(np.float32)
    w = rng.uniform(-1, 1, (16, 8, 2, 2)).astype(np.float32)
    y = conv.conv2d(x, w, stride=stride, algo="direct")
    assert y.shape == (2, 16, 1, 1)
    gy = rng.uniform(-1, 1, y.shape).astype(np.float32)
    gx, gw, _ = conv.conv2d_backward(gy, x, w, stride=stride, algo="direct", needs=("input", "weight"))
    # one output pixel: the window is the top-left 2x2 corner, every other
    # position gets no gradient
    g64, w64, x64 = gy[:, :, 0, 0].astype(np.float64), w.astype(np.float64), x.astype(np.float64)
    want_gx = np.zeros(x.shape)
    want_gx[:, :, :2, :2] = np.einsum("no,oikl->nikl", g64, w64)
    want_gw = np.einsum("no,nikl->oikl", g64, x64[:, :, :2, :2])
    np.testing.assert_allclose(gx, want_gx, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(gw, want_gw, rtol=2e-5, atol=2e-6)
