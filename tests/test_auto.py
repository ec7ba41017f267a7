"""algo="auto" picks an available algorithm that serves every configuration of the test grid."""
import itertools

import numpy as np
import pytest

import fastconv as fc
from fastconv import _auto, reference

from _conv_cases import CASES  # tests/ is on sys.path

# Cases with enough channels per group for the GEMM-based algorithms.
WIDE = {
    "wide_3x3": ((2, 16, 9, 11), (12, 16, 3, 3), 1, 1, 1, 1, True),
    "wide_dilated": ((1, 16, 13, 12), (8, 16, 3, 3), 1, 2, (3, 2), 1, False),
    "wide_dilated8": ((1, 16, 21, 20), (16, 16, 3, 3), 1, 8, 8, 1, True),
    "wide_strided": ((1, 16, 12, 12), (16, 16, 3, 3), 2, 1, 1, 1, True),
    "wide_1x1": ((1, 16, 5, 7), (24, 16, 1, 1), 1, 0, 1, 1, True),
    "wide_groups_strided": ((1, 32, 9, 9), (16, 16, 3, 3), 2, 1, 1, 2, True),
}
ALL = dict(CASES, **WIDE)


@pytest.fixture(autouse=True)
def heuristic_only(monkeypatch):
    """These tests are about the heuristic: tuning off whatever FASTCONV_TUNE says."""
    import sys
    monkeypatch.setattr(sys.modules["fastconv.tune"], "_mode", "off")


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
    """Choices the measurements behind RULES make unambiguous (by a wide margin)."""
    avail = ["auto", "direct", "im2col", "dilated"]
    # (n, c_in, h, w, c_out, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw, g)
    dw3 = (1, 32, 56, 56, 32, 3, 3, 56, 56, 1, 1, 1, 1, 1, 1, 32)
    first = (1, 3, 224, 224, 32, 3, 3, 112, 112, 2, 2, 1, 1, 1, 1, 1)
    res = (1, 64, 56, 56, 64, 3, 3, 56, 56, 1, 1, 1, 1, 1, 1, 1)
    aspp = (1, 256, 33, 33, 256, 3, 3, 33, 33, 1, 1, 12, 12, 12, 12, 1)
    deep = (1, 384, 7, 7, 384, 3, 3, 7, 7, 1, 1, 1, 1, 1, 1, 1)
    strided = (1, 128, 28, 28, 256, 3, 3, 14, 14, 2, 2, 1, 1, 1, 1, 1)
    assert _auto.choose("conv2d", dw3, avail, "avx2") == "direct"
    assert _auto.choose("conv2d", first, avail, "avx2") == "direct"
    assert _auto.choose("conv2d", aspp, avail, "avx2") == "dilated"
    assert _auto.choose("conv2d", deep, avail, "avx2") == "im2col"
    assert _auto.choose("conv2d", strided, avail, "avx2") == "im2col"
    # direct backward (AVX2) wins on dense layers with 28x28+ planes; not on 7x7 planes (its
    # per-call weight rearrangement), the 3-channel stem, or as a transposed conv
    assert _auto.choose("conv2d_backward", res, avail, "avx2") == "direct"
    assert _auto.choose("conv2d_backward", res, avail, "avx512") == "direct"
    assert _auto.choose("conv2d_backward", res, avail, "baseline") != "direct"
    for op in ("conv2d_backward", "conv_transpose2d"):
        for shape in (deep, strided, first) + ((res,) if op == "conv_transpose2d" else ()):
            assert _auto.choose(op, shape, avail, "avx2") != "direct"
        assert _auto.choose(op, aspp, avail, "avx2") == "dilated"
    # without a BLAS only direct is left
    for op in ("conv2d", "conv2d_backward", "conv_transpose2d"):
        for shape in (dw3, first, res, aspp, deep):
            assert _auto.choose(op, shape, ["auto", "direct"], "avx2") == "direct"


def _grid():
    """Shape tuples over every feature the rules look at (and degenerate ones)."""
    for n, c, cout, g, k, hw, s, d in itertools.product(
            (0, 1, 3), (1, 3, 8, 16, 96, 512), (1, 8, 24, 256), (1, 2, 8, 999), (1, 3, 5, 11),
            (1, 7, 40, 112), (1, 2, 4), (1, 2, 6, 24)):
        if g == 999:
            g = c
        if c % g or cout % g:
            continue
        ho = max(1, (hw - d * (k - 1) - 1 + 2 * (k // 2)) // s + 1)
        yield (n, c, hw, hw, cout, k, k, ho, ho, s, s, k // 2, k // 2, d, d, g)


AVAILABLE = (["auto", "direct"], ["auto", "direct", "im2col"], ["auto", "direct", "dilated"],
             ["auto", "direct", "im2col", "dilated"])


def test_heuristic_always_returns_an_available_algorithm():
    count = 0
    for shape in _grid():
        for op in ("conv2d", "conv2d_backward", "conv_transpose2d"):
            for avail in AVAILABLE:
                for isa, dtype, threads in (("avx2", "float32", 1), ("baseline", "float64", 2)):
                    for needs in (None, ("input",), ("weight",), ("input", "weight", "bias")):
                        a = _auto.choose(op, shape, avail, isa, dtype=dtype, threads=threads, needs=needs)
                        assert a in avail and a != "auto", (op, shape, avail, a)
                        count += 1
    assert count > 10000


def test_rules_table_is_consistent():
    assert set(_auto.FIT_GRID) <= set(_auto.RULES)
    for name, values in _auto.FIT_GRID.items():
        assert values == sorted(values) and len(values) >= 2, name
    src = open(_auto.__file__).read()
    for name in _auto.RULES:
        assert src.count(f'r["{name}"]') >= 1, f"RULES[{name!r}] is never used"


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


@pytest.mark.parametrize("xs, ws, stride, padding, dilation", [
    ((1, 8, 33, 33), (8, 8, 3, 3), 1, 12, 12),
    ((2, 4, 13, 10), (4, 4, 3, 5), (2, 1), (1, 3), (2, 3)),
    ((1, 4, 9, 9), (4, 4, 7, 7), 3, 3, 1),
    ((1, 4, 6, 6), (4, 4, 1, 1), 1, 0, 1),
    ((1, 4, 5, 5), (4, 4, 3, 3), 2, 4, 5),
])
def test_pad_fraction_matches_the_cost_models_effective_taps(xs, ws, stride, padding, dilation):
    """The taps the rules think read padding are those fastconv.cost excludes."""
    c = fc.cost.conv2d(xs, ws, stride=stride, padding=padding, dilation=dilation)
    from fastconv.conv import _Conv
    shape = _Conv(xs, ws, stride, padding, dilation, 1).tuple()
    assert _auto._pad_fraction(shape) == pytest.approx(1 - c.effective_mults / c.mults, abs=1e-12)
