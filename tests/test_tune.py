"""Tuning mode of algo="auto": fastconv.tune(), FASTCONV_TUNE, the per-machine cache file."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastconv as fc
from fastconv import _tune_cache, _workspace, config, reference

_tune = sys.modules["fastconv.tune"]   # the module (fastconv.tune is its function)
# where the imported fastconv lives: subprocesses must import the same (installed or in-place built) package
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fc.__file__)))

X, W = (1, 16, 10, 9), (16, 16, 3, 3)   # every algorithm serves it; quick to time


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A private, empty cache directory and a clean in-memory state per test."""
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_tune, "_env_mode", "off")    # whatever FASTCONV_TUNE the run has
    monkeypatch.setattr(_tune, "_mode", "off")
    _tune.clear()
    yield tmp_path / "cache"
    _tune.clear()


def _file_entries():
    with open(fc.tune.cache_file()) as f:
        return json.load(f)["entries"]


def test_round_trip_measure_then_cache_then_file():
    r = fc.tune(X, W, padding=1, repeats=2)
    assert r.source == "measured"
    assert r.best in fc.algorithms("conv2d") and r.best != "auto"
    assert r.best == min(r.timings, key=r.timings.get)
    assert set(r.timings) <= set(fc.algorithms("conv2d")) and len(r.timings) >= 2
    assert all(t > 0 for t in r.timings.values())
    assert r.cache_file == fc.tune.cache_file() and os.path.isfile(r.cache_file)
    assert _file_entries()[r.key]["algo"] == r.best
    # same key again: served from memory, nothing re-timed
    again = fc.tune(X, W, padding=1)
    assert (again.source, again.best, again.key) == ("cache", r.best, r.key)
    # a fresh process state (memory copy dropped) reads the winner from the file
    _tune._tables.clear()
    third = fc.tune(X, W, padding=1)
    assert (third.source, third.best) == ("cache", r.best)
    # refresh re-times
    assert fc.tune(X, W, padding=1, refresh=True, repeats=1).source == "measured"


def test_auto_uses_the_tuned_winner_and_reports_the_source():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, X).astype(np.float32)
    w = rng.uniform(-1, 1, W).astype(np.float32)
    r = fc.tune(X, W, padding=1, repeats=1)
    # force a winner different from the heuristic's to see it is really used
    key = r.key
    other = next(a for a in r.timings if a != _tune._auto.choose(
        "conv2d", (1, 16, 10, 9, 16, 3, 3, 10, 9, 1, 1, 1, 1, 1, 1, 1), fc.algorithms("conv2d"),
        config.isa(), dtype="float32", threads=config.get_num_threads()))
    _tune._tables[fc.tune.cache_file()][key] = {"algo": other, "times": {}}
    with fc.tune(mode="cached"), fc.profile() as prof:
        fc.conv2d(x, w, padding=1)
    assert prof.records[0].algo == other
    assert fc.tune.decisions()[key] == (other, "cache")
    # tuning off: the heuristic again
    with fc.profile() as prof:
        fc.conv2d(x, w, padding=1)
    assert prof.records[0].algo == _tune._auto.choose(
        "conv2d", (1, 16, 10, 9, 16, 3, 3, 10, 9, 1, 1, 1, 1, 1, 1, 1), fc.algorithms("conv2d"),
        config.isa(), dtype="float32", threads=config.get_num_threads())


def test_show_config_line(capsys):
    import io
    buf = io.StringIO()
    cfg = fc.show_config(file=buf)
    assert "heuristic (tuning off" in cfg["auto"] and "auto" in buf.getvalue()
    with fc.tune():
        fc.tune(X, W, padding=1, repeats=1)
        line = fc.show_config(file=io.StringIO())["auto"]
    assert line.startswith("tuning on") and "1 measured" in line and "(1 entries)" in line
    after = fc.show_config(file=io.StringIO())["auto"]      # the block ended: heuristic again
    assert after.startswith("heuristic") and "earlier with tuning on: 1 measured" in after


@pytest.mark.parametrize("content", [b"{not json", b"", b"\x00\xff\xfe", b"[1, 2]",
                                     b'{"schema": 999, "entries": {}}',
                                     b'{"schema": 1, "entries": {"k": {"algo": 3}}}',
                                     b'{"schema": 1, "entries": []}'])
def test_corrupt_cache_file_is_ignored_and_replaced(content):
    path = fc.tune.cache_file()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)
    assert fc.tune.entries() == {} or all(isinstance(e["algo"], str) for e in fc.tune.entries().values())
    r = fc.tune(X, W, padding=1, repeats=1)
    assert r.source == "measured"
    assert _file_entries()[r.key]["algo"] == r.best     # the file is valid JSON again


def test_cached_algorithm_not_available_is_retuned():
    r = fc.tune(X, W, padding=1, repeats=1)
    _tune._tables[fc.tune.cache_file()][r.key] = {"algo": "fft", "times": {}}
    r2 = fc.tune(X, W, padding=1, repeats=1)
    assert r2.source == "measured" and r2.best in fc.algorithms("conv2d")


def test_unwritable_cache_dir_still_tunes(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(blocker / "sub"))   # a file as a parent dir
    r = fc.tune(X, W, padding=1, repeats=1)
    assert r.source == "measured" and r.cache_file is None
    assert fc.tune(X, W, padding=1).source == "cache"       # remembered in memory


def test_clear():
    fc.tune(X, W, padding=1, repeats=1)
    assert os.path.isfile(fc.tune.cache_file())
    assert fc.tune.clear() is True
    assert not os.path.exists(fc.tune.cache_file()) and fc.tune.entries() == {}
    assert fc.tune.clear() is False
    assert fc.tune(X, W, padding=1, repeats=1).source == "measured"


def test_keys_differ_by_every_field():
    base = fc.tune(X, W, padding=1, repeats=1).key
    variants = [
        fc.tune(X, W, padding=0, repeats=1),
        fc.tune(X, W, padding=1, stride=2, repeats=1),
        fc.tune(X, W, padding=2, dilation=2, repeats=1),
        fc.tune(X, (16, 8, 3, 3), padding=1, groups=2, repeats=1),
        fc.tune(X, W, padding=1, dtype="float64", repeats=1),
        fc.tune((2,) + X[1:], W, padding=1, repeats=1),
        fc.tune(X, W, padding=1, op="conv2d_backward", repeats=1),
        fc.tune(X, W, padding=1, op="conv2d_backward", needs=("input",), repeats=1),
        fc.tune(X, W, padding=1, op="conv_transpose2d", repeats=1),
    ]
    keys = [base] + [v.key for v in variants]
    assert len(set(keys)) == len(keys)
    assert set(keys) == set(fc.tune.entries())
    assert "float64" in variants[4].key and "conv2d_backward[input]" in variants[7].key


def test_thread_count_isa_and_workspace_limit_in_key():
    keys = set()
    for threads in (1, 2):
        with config._forced_runtime(threads=threads):
            r = fc.tune(X, W, padding=1, repeats=1)
            assert f"|t{threads}|" in r.key and r.source == "measured"
            keys.add(r.key)
    for isa in config._available_isas():
        with config._forced_runtime(isa_name=isa, threads=1):
            keys.add(fc.tune(X, W, padding=1, repeats=1).key)
    old = config.get_workspace_limit()
    try:
        config.set_workspace_limit(old // 2)
        with config._forced_runtime(threads=1):
            keys.add(fc.tune(X, W, padding=1, repeats=1).key)
    finally:
        config.set_workspace_limit(old)
    assert len(keys) == 2 + len(config._available_isas())   # t1+current isa counted once


def test_key_names_every_isa():
    """AVX-512, AVX2 and baseline winners never share a cache entry (nor future ISAs)."""
    shape = (1, 16, 12, 12, 16, 3, 3, 12, 12, 1, 1, 1, 1, 1, 1, 1)
    keys = {isa: _tune._key("conv2d", shape, "float32", (), 1, isa, 1 << 30)
            for isa in ("baseline", "avx2", "avx512", "avx10")}
    assert len(set(keys.values())) == 4
    for isa, key in keys.items():
        assert f"|{isa}|" in key


def test_workspace_limit_respected():
    """Candidates whose workspace exceeds the limit are not timed while one fits."""
    xs, ws = (1, 16, 30, 30), (16, 16, 3, 3)
    args = dict(input_shape=xs, weight_shape=ws, output_shape=(1, 16, 30, 30), stride=(1, 1),
                padding=(1, 1), dilation=(1, 1), groups=1, itemsize=4, threads=1)
    big = max(_workspace.conv2d(a, "forward", limit=1 << 30, **args)
              for a in fc.algorithms("conv2d") if a != "auto")
    if big == 0:
        pytest.skip("no algorithm allocates workspace here")
    old = config.get_workspace_limit()
    try:
        config.set_workspace_limit(512)
        with config._forced_runtime(threads=1):
            r = fc.tune(xs, ws, padding=1, repeats=1)
        for a in r.timings:
            assert _workspace.conv2d(a, "forward", limit=512, **args) <= 512
        assert "direct" in r.timings
    finally:
        config.set_workspace_limit(old)


CASES = [
    # x, w, stride, padding, dilation, groups
    ((2, 16, 9, 11), (12, 16, 3, 3), 1, 1, 1, 1),
    ((1, 16, 13, 12), (8, 16, 3, 3), 1, 2, (3, 2), 1),
    ((1, 32, 9, 9), (16, 16, 3, 3), 2, 1, 1, 2),
    ((1, 8, 7, 7), (8, 1, 3, 3), 1, 1, 1, 8),
    ((1, 3, 12, 12), (16, 3, 5, 5), 2, 2, 1, 1),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tuned_results_equal_reference(case, dtype):
    xs, ws, stride, padding, dilation, groups = CASES[case]
    rng = np.random.default_rng(case)
    x = rng.uniform(-1, 1, xs).astype(dtype)
    w = rng.uniform(-1, 1, ws).astype(dtype)
    b = rng.uniform(-1, 1, ws[0]).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    x0, w0 = x.copy(), w.copy()
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    with fc.tune(), fc.profile() as prof:
        y = fc.conv2d(x, w, b, **kw)
        out = np.full(y.shape, np.nan, dtype)
        y2 = fc.conv2d(x, w, b, **kw, out=out)                # second call: from the cache
        gy = rng.uniform(-1, 1, y.shape).astype(dtype)
        grads = fc.conv2d_backward(gy, x, w, **kw)
        yt = fc.conv_transpose2d(gy, w, None, stride, padding, groups=groups, dilation=dilation,
                                 output_padding=0) if stride == 1 else None
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_allclose(y, reference.conv2d(x, w, b, **kw), **tol)
    assert y2 is out and np.array_equal(y2, y)
    for mine, ref in zip(grads, reference.conv2d_backward(gy, x, w, **kw)):
        np.testing.assert_allclose(mine, ref, **tol)
    if yt is not None:
        np.testing.assert_allclose(yt, reference.conv_transpose2d(gy, w, None, stride, padding, groups=groups,
                                                                  dilation=dilation), **tol)
    sources = {a for a, s in fc.tune.decisions().values()}
    assert sources, "tuning mode logged no decision"
    for rec in prof.records:
        assert rec.algo in fc.algorithms(rec.op) and rec.algo != "auto"


def test_context_manager_nests_and_restores():
    assert _tune.mode() == _tune._env_mode
    with fc.tune() as t:
        assert _tune.mode() == "on" and "on" in repr(t)
        with fc.tune(mode="cached"):
            assert _tune.mode() == "cached"
            with fc.tune(mode="off"):
                assert _tune.mode() == "off"
            assert _tune.mode() == "cached"
        assert _tune.mode() == "on"
    assert _tune.mode() == _tune._env_mode

    @fc.tune()
    def decorated():
        return _tune.mode()
    assert decorated() == "on"


def test_cached_mode_never_times():
    x = np.zeros(X, np.float32)
    w = np.zeros(W, np.float32)
    with fc.tune(mode="cached"):
        fc.conv2d(x, w, padding=1)
    assert fc.tune.entries() == {}
    assert list(fc.tune.decisions().values())[0][1] == "heuristic"


def test_trivial_configs_are_not_timed():
    r = fc.tune((0, 16, 8, 8), W, padding=1)
    assert r.source == "heuristic" and r.timings == {} and fc.tune.entries() == {}
    r = fc.tune(X, W, padding=1, op="conv2d_backward", needs=("bias",))
    assert r.source == "heuristic"


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        fc.tune(mode="sometimes")
    with pytest.raises(TypeError, match="weight_shape"):
        fc.tune(X)
    with pytest.raises(ValueError, match="op"):
        fc.tune(X, W, op="pool")
    with pytest.raises(TypeError, match="dtype"):
        fc.tune(X, W, dtype="int32")
    with pytest.raises(ValueError, match="input_shape"):
        fc.tune((1, 2, 3), W)
    with pytest.raises(ValueError, match="C_in/groups"):
        fc.tune((1, 5, 8, 8), W)          # the op's own validation


def test_env_values():
    assert _tune._mode_from_env({}) == "off"
    for v in ("1", "on", "TRUE", " yes "):
        assert _tune._mode_from_env({"FASTCONV_TUNE": v}) == "on"
    for v in ("0", "off", "", "false"):
        assert _tune._mode_from_env({"FASTCONV_TUNE": v}) == "off"
    assert _tune._mode_from_env({"FASTCONV_TUNE": "cached"}) == "cached"
    with pytest.warns(RuntimeWarning, match="FASTCONV_TUNE"):
        assert _tune._mode_from_env({"FASTCONV_TUNE": "maybe"}) == "off"


def test_env_var_turns_tuning_on_in_a_new_process(tmp_path):
    code = ("import numpy as np, fastconv as fc, json, sys\n"
            "x = np.ones((1, 16, 10, 9), np.float32); w = np.ones((16, 16, 3, 3), np.float32)\n"
            "y = fc.conv2d(x, w, padding=1)\n"
            "assert abs(float(y[0, 0, 5, 5]) - 144.0) < 1e-3\n"
            "print(json.dumps([fc.tune.mode(), list(fc.tune.decisions().values())]))\n")
    env = dict(os.environ, FASTCONV_TUNE="1", FASTCONV_CACHE_DIR=str(tmp_path / "c"),
               FASTCONV_NUM_THREADS="1", PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    mode, decisions = json.loads(out.stdout.strip().splitlines()[-1])
    assert mode == "on" and decisions[0][1] == "measured"
    files = os.listdir(tmp_path / "c")
    assert len(files) == 1 and files[0].startswith("tune-")
    # a second process reuses the winner from the file
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])[1][0][1] == "cache"


def test_store_keeps_other_processes_entries(cache):
    path = fc.tune.cache_file()
    _tune_cache.store("other-process-key", {"algo": "direct", "times": {}}, path)
    fc.tune(X, W, padding=1, repeats=1)     # loads the file first, then adds its own
    assert "other-process-key" in _file_entries() and len(_file_entries()) == 2
    assert not [f for f in os.listdir(cache) if f.startswith(".tune-")]   # no temp files left
