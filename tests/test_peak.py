"""Machine peak: the C measurement loops and the per-machine JSON cache."""
import json
import os

import pytest

from fastconv import _kernels, config
import importlib

P = importlib.import_module("fastconv.peak")   # the module (fastconv.peak may be the function)

TINY = dict(duration=0.003, copy_bytes=1 << 20, repeats=1)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("isa_name", config._available_isas())
@pytest.mark.parametrize("size", [4, 8])
@pytest.mark.parametrize("threads", [1, 2])
def test_fma_peak_positive(isa_name, size, threads):
    with config._forced_runtime(isa_name=isa_name):
        g = _kernels.measure_fma_peak(size, 0.005, threads)
    # A working register loop does well over 0.1 GFLOP/s on any x86-64 even
    # on a loaded machine; 0 or NaN would mean the loop or the timing is broken.
    assert 0.1 < g < 1e5


@pytest.mark.parametrize("threads", [1, 2])
def test_copy_bandwidth_positive(threads):
    g = _kernels.measure_copy_bandwidth(1 << 20, 0.005, threads)
    assert 0.05 < g < 1e5


@pytest.mark.parametrize("args", [(3, 0.01, 1), (16, 0.01, 1), (4, 0.0, 1), (4, -1.0, 1), (4, float("nan"), 1)])
def test_fma_peak_bad_args(args):
    with pytest.raises((ValueError, RuntimeError)):
        _kernels.measure_fma_peak(*args)


@pytest.mark.parametrize("args", [(100, 0.01, 1), (-5, 0.01, 1), (1 << 20, 0.0, 1)])
def test_copy_bad_args(args):
    with pytest.raises((ValueError, RuntimeError)):
        _kernels.measure_copy_bandwidth(*args)


def test_measures_then_caches(cache):
    assert P.cached_peak() is None
    d = P.peak(**TINY)
    assert d["cached"] is False
    assert d["isa"] == config.isa()
    for dt in ("float32", "float64"):
        assert d["fma_gflops"][dt]["1"] > 0 and d["fma_gflops"][dt]["all"] > 0
    assert d["copy_gbps"]["1"] > 0 and d["copy_gbps"]["all"] > 0
    files = [f for f in os.listdir(cache) if f.endswith(".json")]
    assert len(files) == 1 and os.path.join(str(cache), files[0]) == d["cache_file"]

    again = P.peak(**TINY)
    assert again["cached"] is True
    assert again["fma_gflops"] == d["fma_gflops"] and again["copy_gbps"] == d["copy_gbps"]
    assert P.cached_peak()["measured_at"] == d["measured_at"]

    fresh = P.peak(refresh=True, **TINY)
    assert fresh["cached"] is False
    with open(d["cache_file"]) as f:
        on_disk = json.load(f)
    assert on_disk["fma_gflops"] == fresh["fma_gflops"]


def test_cache_location_env(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTCONV_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert P.cache_dir() == str(tmp_path / "xdg" / "fastconv")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert P.cache_dir() == str(tmp_path / "home" / ".cache" / "fastconv")
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path / "c"))
    assert P.cache_dir() == str(tmp_path / "c")


def test_corrupt_cache_is_remeasured(cache):
    d = P.peak(**TINY)
    with open(d["cache_file"], "w") as f:
        f.write("{not json")
    assert P.cached_peak() is None
    assert P.peak(**TINY)["cached"] is False
    assert P.cached_peak() is not None


def test_key_includes_isa(cache):
    if "avx2" not in config._available_isas():
        pytest.skip("only the baseline ISA runs here")
    with config._forced_runtime(isa_name="avx2"):
        a = P.peak(**TINY)
    with config._forced_runtime(isa_name="baseline"):
        assert P.cached_peak() is None           # another ISA: not this cache entry
        b = P.peak(**TINY)
    assert a["cache_file"] != b["cache_file"]
    assert (a["isa"], b["isa"]) == ("avx2", "baseline")


def test_peak_gflops_scaling(cache):
    d = P.peak(**TINY)
    d["fma_gflops"]["float32"] = {"1": 100.0, "all": 150.0}
    d["threads_all"] = 2
    P._write_cache(d)
    assert P.peak_gflops("float32", 1) == 100.0
    assert P.peak_gflops("float32", 2) == 150.0
    assert P.peak_gflops("float32", 8) == 150.0
    with pytest.raises(ValueError, match="dtype"):
        P.peak_gflops("int8", 1)


def test_peak_gflops_without_cache(cache):
    assert P.peak_gflops("float64", 1, measure=False) is None
    assert P.peak_gflops("float64", 1) > 0           # quick, uncached measurement
    assert P.cached_peak() is None
    assert P.peak_bandwidth(1) is None


def test_bad_duration(cache):
    with pytest.raises(ValueError, match="duration"):
        P.peak(refresh=True, duration=0)
