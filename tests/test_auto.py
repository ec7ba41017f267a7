"""algo="auto" picks an available algorithm that serves every configuration of the test grid."""
import numpy as np
import pytest

import fastconv as fc
from fastconv import _auto, reference

from _conv_cases import CASES  # tests/ is on sys.path

# Cases with enough channels per group for the GEMM-based algorithms.
WIDE = {
    "wide_3x3": ((2, 16, 9, 11), (12, 16, 3, 3), 1, 1, 1, 1, True),
    "wide_dilated": ((1, 16, 13, 12), (8, 16, 3, 3), 1, 2, (3, 2), 1, False),
    "wide_1x1": ((1, 16, 5, 7), (24, 16, 1, 1), 1, 0, 1, 1, True),
    "wide_groups_strided": ((1, 32, 9, 9), (16, 16, 3, 3), 2, 1, 1, 2, True),
}
ALL = dict(CASES, **WIDE)


@pytest.mark.parametrize("name", sorted(ALL))
def test_auto_serves_and_matches_reference(name):
    xs, ws, stride, padding, dilation, groups, has_bias = ALL[name]
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, xs)
    w = rng.uniform(-1, 1, ws)
    b = rng.uniform(-1, 1, ws[0]) if has_bias else None
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    with fc.profile() as prof:
        y = fc.conv2d(x, w, b, algo="auto", **kw)
        gy = np.ones_like(y)
        grads = fc.conv2d_backward(gy, x, w, algo="auto", **kw)
    for rec, op in zip(prof.records, ("conv2d", "conv2d_backward")):
        assert rec.algo in fc.algorithms(op) and rec.algo != "auto"
    np.testing.assert_allclose(y, reference.conv2d(x, w, b, **kw), rtol=1e-10, atol=1e-12)
    ref = reference.conv2d_backward(gy, x, w, **kw)
    for mine, theirs in zip(grads, ref):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)


def test_heuristic_choices():
    avail = ["auto", "direct", "im2col", "dilated"]
    # (n, c_in, h, w, c_out, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw, g)
    dw3 = (1, 32, 56, 56, 32, 3, 3, 56, 56, 1, 1, 1, 1, 1, 1, 32)
    first = (1, 3, 224, 224, 64, 7, 7, 112, 112, 2, 2, 3, 3, 1, 1, 1)
    res = (1, 64, 56, 56, 64, 3, 3, 56, 56, 1, 1, 1, 1, 1, 1, 1)
    aspp = (1, 256, 33, 33, 256, 3, 3, 33, 33, 1, 1, 12, 12, 12, 12, 1)
    pw1 = (1, 64, 56, 56, 256, 1, 1, 56, 56, 1, 1, 0, 0, 1, 1, 1)
    assert _auto.choose("conv2d", dw3, avail, "avx2") == "direct"
    assert _auto.choose("conv2d", first, avail, "avx2") == "direct"
    assert _auto.choose("conv2d", aspp, avail, "avx2") == "dilated"
    assert _auto.choose("conv2d", pw1, avail, "avx2") == "im2col"
    assert _auto.choose("conv2d_backward", res, avail, "avx2") == "im2col"
    assert _auto.choose("conv2d", res, avail, "avx2") == "im2col"
    assert _auto.choose("conv2d", res, ["auto", "direct"], "avx2") == "direct"
    for op in ("conv2d", "conv2d_backward", "conv_transpose2d"):
        for shape in (dw3, first, res, aspp, pw1):
            for isa in ("avx2", "baseline"):
                assert _auto.choose(op, shape, avail, isa) in avail


def test_auto_reaches_each_algorithm():
    """The grid above really runs every algorithm through auto (when the build has it)."""
    rng = np.random.default_rng(1)
    used = set()
    for name in WIDE:
        xs, ws, stride, padding, dilation, groups, _ = WIDE[name]
        with fc.profile() as prof:
            fc.conv2d(rng.uniform(-1, 1, xs), rng.uniform(-1, 1, ws), stride=stride, padding=padding,
                      dilation=dilation, groups=groups)
        used.add(prof.records[0].algo)
    expected = {"im2col", "dilated"} & set(fc.algorithms("conv2d"))
    assert expected <= used
