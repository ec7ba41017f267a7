"""algo="auto" picks an available algorithm that serves every configuration of the test grid."""
import itertools

import numpy as np
import pytest

import fastconv as fc
from fastconv import _auto, _suites, reference

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
    strided = (1, 512, 28, 28, 512, 3, 3, 14, 14, 2, 2, 1, 1, 1, 1, 1)     # 9 MiB of weights
    assert _auto.choose("conv2d", dw3, avail, "avx2") == "direct"
    assert _auto.choose("conv2d", first, avail, "avx2") == "direct"
    assert _auto.choose("conv2d", aspp, avail, "avx2") == "dilated"
    assert _auto.choose("conv2d", strided, avail, "avx2") == "im2col"
    # stride beyond the kernel: the polyphase direct grad input would run stride**2 mostly
    # empty sub-convolutions (a hang at stride 2**62), so never direct
    big = (1, 1, 1, 1, 1, 1, 1, 1, 1, 1 << 62, 1 << 62, 0, 0, 1, 1, 1)
    s2_1x1 = (1, 64, 56, 56, 128, 1, 1, 28, 28, 2, 2, 0, 0, 1, 1, 1)
    for op in ("conv2d_backward", "conv_transpose2d"):
        for isa in ("avx2", "avx512"):
            assert _auto.choose(op, big, avail, isa) == "im2col"
        # 1x1 stride 2: 3 of the 4 phases are empty; the AVX2 direct loses to
        # im2col there (0.73-1.05x), the AVX-512 one wins (1.09-1.41x, measured)
        assert _auto.choose(op, s2_1x1, avail, "avx2") == "im2col"
        assert _auto.choose(op, s2_1x1, avail, "avx512") == "direct"
    # direct backward (AVX2/AVX-512 kernels) wins on dense layers on 28x28+ planes
    assert _auto.choose("conv2d_backward", res, avail, "avx2") == "direct"
    assert _auto.choose("conv2d_backward", res, avail, "avx512") == "direct"
    assert _auto.choose("conv2d_backward", res, avail, "baseline") != "direct"
    # wide weights on few pixels: the BLAS's blocking wins every pass (1.4-1.6x)
    for op in ("conv2d_backward", "conv_transpose2d"):
        assert _auto.choose(op, strided, avail, "avx2") == "im2col"
        assert _auto.choose(op, aspp, avail, "avx2") == "dilated"
    # grouped (TRAIN margins): 32 channels per group on 25-36 outputs and 8 on
    # 1300-1600 go to the BLAS (direct 1.5-1.6x / 1.1x slower with AVX-512),
    # 4-6 channels per group stay direct (the BLAS 1.3-1.6x slower)
    g32_tiny = (1, 768, 5, 5, 768, 3, 3, 5, 5, 1, 1, 1, 1, 1, 1, 24)
    g8_large = (1, 192, 36, 36, 192, 3, 3, 36, 36, 1, 1, 1, 1, 1, 1, 24)
    g6 = (1, 288, 20, 20, 288, 3, 3, 20, 20, 1, 1, 1, 1, 1, 1, 48)
    for op in ("conv2d", "conv_transpose2d"):
        assert _auto.choose(op, g32_tiny, avail, "avx512") == "im2col"
        assert _auto.choose(op, g8_large, avail, "avx512") == "im2col"
        assert _auto.choose(op, g6, avail, "avx512") == "direct"
    # strided 3x3 depthwise backward on 400 outputs: the direct one is 1.3x slower
    dw_s2 = (1, 288, 40, 40, 288, 3, 3, 20, 20, 2, 2, 1, 1, 1, 1, 288)
    assert _auto.choose("conv2d_backward", dw_s2, avail, "avx512") == "im2col"
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
    configs = (("avx2", "float32", 1), ("baseline", "float64", 2), ("avx512", "float32", 2))
    for i, shape in enumerate(_grid()):
        for op in ("conv2d", "conv2d_backward", "conv_transpose2d"):
            needs_all = ((None, ("input",), ("weight",), ("input", "weight", "bias"))
                         if op == "conv2d_backward" else (None,))
            for avail in AVAILABLE:
                # every shape with the AVX2 float32 table, every 3rd with the others
                for isa, dtype, threads in configs if i % 3 == 0 else configs[:1]:
                    for needs in needs_all:
                        a = _auto.choose(op, shape, avail, isa, dtype=dtype, threads=threads, needs=needs)
                        assert a in avail and a != "auto", (op, shape, avail, a)
                        count += 1
    assert count > 10000


def test_rules_table_is_consistent():
    keys = set(_auto.RULE_DOCS)
    assert set(_auto.FIT_GRID) == keys and set(_auto.FIT_START) == keys
    for isa, table in _auto.FITTED.items():
        assert set(table) == keys, isa
    assert set(_auto.RULES_F64) <= keys
    for over in _auto.RULES_ISA.values():
        assert set(over) <= keys
    groups = [k for g in _auto.FIT_GROUPS for k in g]
    assert sorted(groups) == sorted(keys) and len(set(groups)) == len(groups)
    for g in _auto.FIT_GROUPS:      # a group is fitted on one pass's rows
        assert len({k.startswith("fwd_") for k in g}) == 1, g
    for name, values in _auto.FIT_GRID.items():
        assert values == sorted(values) and len(values) >= 2, name
        assert _auto.FIT_START[name] in values, name
    src = open(_auto.__file__).read()
    for name in keys:
        # the backward/grad-input pairs are read as r[p + "..."] with p = "bwd_" or "gin_"
        tail = name[4:]
        assert (src.count(f'r["{name}"]') >= 1
                or name[:4] in ("bwd_", "gin_") and src.count(f'r[p + "{tail}"]') >= 1), \
            f"threshold {name!r} is never used"


def test_fitted_table_is_what_auto_uses():
    """choose() without `rules` uses the fitted table of the ISA (or its fallback)."""
    for isa in ("avx2", "avx512", "baseline", "some-future-isa"):
        r32 = _auto.rules_for("float32", isa)
        fitted = _auto.FITTED.get(isa) or _auto.FITTED[_auto._FALLBACK.get(isa, "avx2")]
        assert r32 == {**fitted, **_auto.RULES_ISA.get(isa, {})}
        assert _auto.rules_for("float64", isa) == {**fitted, **_auto.RULES_F64, **_auto.RULES_ISA.get(isa, {})}
    avail = ["auto", "direct", "im2col", "dilated"]
    for i, shape in enumerate(_grid()):
        if i % 7:
            continue
        for op in ("conv2d", "conv2d_backward", "conv_transpose2d"):
            for isa, dtype in (("avx2", "float32"), ("avx512", "float32"), ("baseline", "float64")):
                assert _auto.choose(op, shape, avail, isa, dtype=dtype) == _auto.choose(
                    op, shape, avail, isa, dtype=dtype, rules=_auto.rules_for(dtype, isa))


def _bench_auto():
    import importlib.util
    import sys
    import os
    path = os.path.join(os.path.dirname(__file__), "..", "bench", "bench_auto.py")
    if not os.path.exists(path):
        pytest.skip("bench/bench_auto.py is not next to the tests")
    spec = importlib.util.spec_from_file_location("bench_auto", path)
    mod = importlib.util.module_from_spec(spec)
    # imported (not run), the script must leave sys.path alone: a source tree
    # first on it made later spawned processes (Dask workers) import an
    # unbuilt fastconv
    saved = list(sys.path)
    spec.loader.exec_module(mod)
    assert sys.path == saved, "bench_auto.py changed sys.path on import"
    return mod


@pytest.mark.parametrize("isa", sorted(_auto.FITTED))
def test_fitted_table_refits_from_its_training_data(isa):
    """FITTED[isa] is exactly what ``bench_auto.py --fit`` gives on the saved training timings."""
    import json
    import os
    ba = _bench_auto()
    info = _auto.FIT_INFO[isa]
    assert {"command", "data", "rows", "over", "max", "geomean"} <= set(info), info
    path = ba.training_data_path(isa)
    assert os.path.relpath(path, ba._ROOT) == info["data"]
    with open(path) as f:
        d = json.load(f)
    rows = d["rows"]
    assert d["meta"]["isa"] == isa and d["meta"]["dtype"] == "float32" and d["meta"]["threads"] == 1
    assert len(rows) == info["rows"]
    train = {l.name for l in _suites.TRAIN}
    assert {r["layer"]["name"] for r in rows} <= train           # fitted on TRAIN only
    rules = ba.fit(rows, "float32", 1, isa, log=lambda *a: None)
    assert rules == _auto.FITTED[isa]
    o = ba._objective(rows, ba._heuristic_choose("float32", 1, isa, rules))
    assert (o[0], o[1], o[2]) == (info["over"], info["max"], info["geomean"])


def _geometry(layer):
    return (tuple(layer.input), layer.weight, layer.stride, layer.padding, layer.dilation, layer.groups)


def test_heldout_layers_are_not_in_the_training_suite():
    train = {_geometry(l) for l in _suites.TRAIN}
    held = _suites.HELDOUT_A + _suites.HELDOUT_B
    assert len(_suites.HELDOUT_A) == 45 and len(_suites.HELDOUT_B) == 25 and len(_suites.TRAIN) == 143
    assert not [l.name for l in held if _geometry(l) in train]
    names = [l.name for s in _suites.AUTO.values() for l in s]
    assert len(names) == len(set(names))


def test_bench_auto_suites_come_from_fastconv_suites():
    ba = _bench_auto()
    for name, layers in _suites.AUTO.items():
        assert [d["name"] for d in ba.SUITES[name]] == [l.name for l in layers]
        for d, l in zip(ba.SUITES[name], layers):
            assert (d["x"], d["w"]) == (tuple(l.input), l.weight)


def test_bench_auto_counts_a_miss_only_if_the_remeasure_confirms_it():
    ba = _bench_auto()
    lay = dict(name="l", x=(1, 8, 8, 8), w=(8, 8, 3, 3), stride=1, padding=1, dilation=1, groups=1)
    rows = [dict(layer=lay, pass_="fwd", suite="s", times={"direct": 1.0, "im2col": 1.3}, shape=()),
            dict(layer=lay, pass_="bwd", suite="s", times={"direct": 1.0, "im2col": 1.3}, shape=()),
            dict(layer=lay, pass_="gin", suite="s", times={"direct": 1.0, "im2col": 1.05}, shape=())]
    ba.score(rows, lambda r: "im2col")
    rows[0]["confirmed"] = 1.04         # noise: the alternating re-measure disagrees
    rows[1]["confirmed"] = 1.25         # confirmed
    lines = {tuple(l.split()[:2]): l for l in ba.summary(rows)}
    assert "over 1.10: 1  misses after re-measuring: 0" in lines[("s", "fwd")]
    assert "over 1.10: 1  misses after re-measuring: 1" in lines[("s", "bwd")]
    assert "over 1.10: 2  misses after re-measuring: 1" in lines[("s", "all")]


def test_confirm_measures_the_pair_alternating(monkeypatch):
    """confirm() times pick and best in alternating order, round by round,
    and returns the median of the rounds' ratios.  The calls run on a fake
    clock (pick costs 3 units, best 1), so the check is exact and cannot be
    disturbed by a loaded machine."""
    ba = _bench_auto()
    now, calls = [0.0], []

    def runner(layer, pas, algo, arrays):
        def call():
            calls.append(algo)
            now[0] += {"direct": 3.0, "im2col": 1.0}[algo]
        return call

    monkeypatch.setattr(ba, "_runner", runner)
    monkeypatch.setattr(ba, "_arrays", lambda layer, dtype: None)
    lay = dict(name="l", x=(1, 16, 12, 12), w=(16, 16, 3, 3), stride=1, padding=1, dilation=1, groups=1)
    ratio = ba.confirm(lay, "fwd", np.float32, "direct", "im2col", rounds=5, budget=0.0, clock=lambda: now[0])
    assert ratio == 3.0
    d, i = "direct", "im2col"
    # warm-up and the calls-per-round estimate, then five rounds whose order flips each round
    assert calls == [d, i, d, i] + [d, i, i, d, d, i, i, d, d, i]


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
