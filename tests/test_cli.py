"""The `fastconv` command: right numbers for known layers, clean errors, bench, README/CI."""
import importlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import fastconv as fc
from fastconv import cost
from fastconv.cli import main

P = importlib.import_module("fastconv.peak")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def fake_peak(tmp_path, monkeypatch):
    """A cached peak with known numbers, so nothing is measured and % of peak is exact."""
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    d = dict(P._machine_key(), schema=P._SCHEMA, threads_all=2, duration=0.0, copy_bytes=0,
             measured_at="test", fma_gflops={"float32": {"1": 100.0, "all": 200.0},
                                             "float64": {"1": 50.0, "all": 100.0}},
             copy_gbps={"1": 20.0, "all": 30.0})
    P._write_cache(d)
    return d


def run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def field(out, label):
    """Value printed after `label` on its own line of `fastconv cost` output."""
    m = re.search(r"^\s*" + re.escape(label) + r"\s{2,}(.+)$", out, re.M)
    assert m, (label, out)
    return m.group(1).strip()


def test_cost_design_example(capsys):
    rc, out, _ = run(capsys, "cost", "conv2d", "--input", "1x3x256x256", "--weight", "64x3x5x5",
                     "--stride", "2", "--padding", "2")
    assert rc == 0
    # 128x128 outputs x 64 channels, each 3*5*5 = 75 products and 74 additions
    assert field(out, "output shape") == "1x64x128x128"
    assert field(out, "params") == "4,800"
    assert field(out, "mults") == "78,643,200"
    assert field(out, "adds") == "77,594,624"
    assert field(out, "flops") == "156,237,824"
    c = cost.conv2d((1, 3, 256, 256), (64, 3, 5, 5), stride=2, padding=2)
    assert field(out, "mults (no padding taps)") == f"{c.effective_mults:,}"
    assert field(out, "bytes input").startswith("786,432 B")
    assert field(out, "bytes output").startswith("4,194,304 B")
    # one row per algorithm with its own workspace and footprint
    algos = [a for a in fc.algorithms("conv2d") if a != "auto"]
    for a in algos:
        row = re.search(r"^\s+" + a + r"\s+(\S+)\s+(\S+)\s+([\d,]+) B.*?\s([\d,]+) B", out, re.M)
        assert row, (a, out)
        try:
            ca = cost.conv2d((1, 3, 256, 256), (64, 3, 5, 5), stride=2, padding=2, algo=a)
        except ValueError:
            continue
        assert row.group(1) == f"{ca.mults:,}"
        assert row.group(3) == f"{ca.bytes['workspace']:,}"
        assert row.group(4) == f"{ca.footprint:,}"


def test_cost_backward_transposed_and_bias(capsys):
    rc, out, _ = run(capsys, "cost", "conv2d_backward", "--input", "2x8x10x10", "--weight", "4x8x3x3",
                     "--padding", "1", "--needs", "input,weight")
    assert rc == 0
    c = cost.conv2d_backward((2, 8, 10, 10), (4, 8, 3, 3), padding=1, needs=("input", "weight"))
    assert field(out, "mults") == f"{c.mults:,}"
    assert field(out, "adds") == f"{c.adds:,}"
    rc, out, _ = run(capsys, "cost", "conv_transpose2d", "--input", "1x16x7x7", "--weight", "16x8x4x4",
                     "--stride", "2", "--padding", "1", "--bias")
    c = cost.conv_transpose2d((1, 16, 7, 7), (16, 8, 4, 4), stride=2, padding=1, bias=True)
    assert field(out, "output shape") == "x".join(map(str, c.output_shape)) == "1x8x14x14"
    assert field(out, "params") == f"{c.params:,}" == "2,056"
    assert field(out, "mults") == f"{c.mults:,}"


def test_cost_pooling(capsys):
    rc, out, _ = run(capsys, "cost", "max_pool2d", "--input", "1x64x112x112", "--kernel", "3",
                     "--stride", "2", "--padding", "1")
    assert rc == 0
    assert field(out, "output shape") == "1x64x56x56"
    assert field(out, "comparisons") == f"{64 * 56 * 56 * 8:,}"        # window - 1 per output
    assert field(out, "workspace") == "0 B"
    rc, out, _ = run(capsys, "cost", "avg_pool2d", "--input", "2x3x9x9", "--kernel", "2x3",
                     "--ceil-mode", "--no-count-include-pad")
    c = cost.avg_pool2d((2, 3, 9, 9), (2, 3), ceil_mode=True, count_include_pad=False)
    assert field(out, "output shape") == "x".join(map(str, c.output_shape))
    assert field(out, "adds") == f"{c.adds:,}" and field(out, "mults") == f"{c.mults:,}"


@pytest.mark.parametrize("argv, msg", [
    (["cost", "conv2d", "--input", "1x3xAx4", "--weight", "2x3x3x3"], "invalid shape"),
    (["cost", "conv2d", "--input", "1x3x8x8"], "needs --weight"),
    (["cost", "max_pool2d", "--input", "1x3x8x8"], "needs --kernel"),
    (["cost", "conv2d", "--input", "1x3x8x8", "--weight", "2x4x3x3"], "expects 4"),
    (["cost", "conv2d", "--input", "1x3x8x8", "--weight", "2x3x3x3", "--stride", "0"], "stride"),
    (["cost", "frobnicate", "--input", "1x3x8x8"], "invalid choice"),
    (["cost", "conv2d", "--input", "1x3x8x8", "--weight", "2x3x3x3", "--dtype", "int8"], "dtype"),
    (["bench", "--suite", "nonesuch"], "unknown suite"),
    (["bench", "--threads", "0"], ">= 1"),
    (["summary", "conv(8,3) frob(2)", "--input", "3x32x32"], "frob"),
    ([], "required"),
])
def test_bad_arguments_exit_2(capsys, argv, msg):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_summary_matches_api(capsys):
    spec = "conv(64,5,s=2,p=2) conv(128,7,s=2) maxpool(2) flatten fc(10)"
    rc, out, _ = run(capsys, "summary", spec, "--input", "3x256x256")
    assert rc == 0
    assert out.strip() == str(fc.summary(spec, (3, 256, 256))).strip()
    # conv(64,5,s=2,p=2) on 3x256x256: 64*128*128 outputs of 75 products; params 64*75 + 64 bias
    assert "4,864" in out and "78,643,200" in out


def test_info_and_peak(capsys):
    rc, out, _ = run(capsys, "info")
    assert rc == 0 and f"isa" in out and fc.config.isa() in out
    rc, out, _ = run(capsys, "peak")
    assert rc == 0
    assert re.search(r"float32 :\s+100\.0 GFLOP/s\s+200\.0 GFLOP/s", out), out
    assert re.search(r"copy\s+:\s+20\.0 GB/s\s+30\.0 GB/s", out), out
    rc, out, _ = run(capsys, "peak", "--json")
    assert json.loads(out)["fma_gflops"]["float64"]["all"] == 100.0


def test_peak_refresh_measures(capsys, monkeypatch):
    calls = []
    real = P._measure

    def tiny(duration, copy_bytes, repeats=3):
        calls.append(duration)
        return real(0.003, 1 << 20, 1)
    monkeypatch.setattr(P, "_measure", tiny)
    rc, out, _ = run(capsys, "peak", "--refresh", "--duration", "0.05")
    assert rc == 0 and calls == [0.05] and "measured" in out
    assert P.cached_peak()["fma_gflops"]["float32"]["1"] != 100.0


def test_bench_json_rows_match_cost_model(capsys, tmp_path):
    out_json = tmp_path / "b.json"
    rc, out, _ = run(capsys, "bench", "--quick", "--suite", "mobilenet_v2,pool", "--no-torch",
                     "--repeats", "1", "--budget", "0.001", "--no-progress", "--json", str(out_json))
    assert rc == 0
    data = json.loads(out_json.read_text())
    rows = data["rows"]
    assert {r["suite"] for r in rows} == {"mobilenet_v2", "pool"}
    assert {r["pass"] for r in rows} == {"fwd", "bwd"}
    conv = [r for r in rows if r["op"] == "conv2d" and r["impl"].startswith("fastconv")]
    assert conv
    for r in conv:
        c = cost.conv2d(tuple(r["input_shape"]), tuple(r["weight_shape"]), stride=r["stride"],
                        padding=r["padding"], dilation=r["dilation"], groups=r["groups"], algo=r["algo"])
        assert r["flops"] == c.flops and r["mults"] == c.mults
        assert r["workspace"] == c.bytes["workspace"]
        assert r["gflops"] == pytest.approx(c.flops / r["seconds"] / 1e9)
        # fake peak: 200 GFLOP/s on 2 threads, 100 on 1
        peak = 100.0 if r["threads"] == 1 else 200.0
        assert r["pct_peak"] == pytest.approx(100 * r["gflops"] / peak)
    pools = [r for r in rows if r["op"] == "max_pool2d" and r["impl"] == "fastconv:direct"]
    assert pools and all(r["flops"] == cost.max_pool2d(tuple(r["input_shape"]), r["kernel"], r["stride"],
                                                       r["padding"]).flops for r in pools)
    assert any(r["impl"] == "numpy" and r["seconds"] for r in rows)
    assert "mobilenet_v2/dw@28" in out and "GFLOP/s" in out


def test_numpy_baseline_is_correct():
    from fastconv import _bench
    from fastconv.reference import conv2d as ref_conv
    rng = np.random.default_rng(0)
    x, w = rng.uniform(-1, 1, (2, 6, 9, 8)), rng.uniform(-1, 1, (4, 3, 3, 3))
    got = _bench._numpy_conv2d(x, w, 2, 1, 2, 2)
    want = ref_conv(x, w, stride=2, padding=1, dilation=2, groups=2)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    got = _bench._numpy_pool(x, "max_pool2d", 3, 2, 1)
    np.testing.assert_array_equal(got, fc.max_pool2d(x, 3, 2, 1))


def test_bench_with_torch_and_plot(capsys, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    png = tmp_path / "roof.png"
    rc, out, _ = run(capsys, "bench", "--quick", "--suite", "mobilenet_v2", "--pass", "fwd", "--threads", "1",
                     "--repeats", "1", "--budget", "0.001", "--no-progress", "--no-numpy", "--plot", str(png))
    assert rc == 0
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    assert re.search(r"^\s+torch\s", out, re.M)
    assert re.search(r"\d+\.\d\dx", out)                 # a speed-up vs torch was printed
    assert "Speed-up vs PyTorch" in out


def test_readme_and_ci_run_same_test_command():
    readme = os.path.join(ROOT, "README.md")
    ci = os.path.join(ROOT, ".ci", "run")
    if not (os.path.exists(readme) and os.path.exists(ci)):
        pytest.skip("not running from a source checkout")
    m = re.search(r"^TEST_CMD='(.+)'$", open(ci).read(), re.M)
    assert m, ".ci/run must define TEST_CMD='...'"
    cmd = m.group(1)
    text = open(readme).read()
    assert cmd in text
    assert cmd.startswith('python -m pip install ".[test]" && ')
    assert "python -m pip install . && fastconv bench --quick" in text


def test_console_entry_point_help():
    # `python -m fastconv.cli` from a neutral directory, as the installed script would run
    r = subprocess.run([sys.executable, "-m", "fastconv.cli", "--help"], capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(fc.__file__))))
    assert r.returncode == 0
    for cmd in ("bench", "cost", "summary", "peak", "info"):
        assert cmd in r.stdout
