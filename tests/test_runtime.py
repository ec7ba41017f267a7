"""Runtime: ISA dispatch, threads, 64-bit size helpers, build configuration."""
import io
import os
import subprocess
import sys

import pytest

import fastconv
from fastconv import _kernels, config


def _run(code, **env):
    e = dict(os.environ)
    e.update(env)
    # Run from the directory holding the imported fastconv: `python -c` puts the
    # cwd first on sys.path, and from the repository root that would be the
    # source tree (no compiled extension) instead of the installed package.
    cwd = os.path.dirname(os.path.dirname(os.path.abspath(fastconv.__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, cwd=cwd)
    return out


def test_isa_env_forces_baseline():
    out = _run("import fastconv.config as c; print(c.isa())", FASTCONV_ISA="baseline")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "baseline"
    out = _run("import fastconv.config as c; print(c.isa())", FASTCONV_DISABLE_AVX2="1")
    assert out.stdout.strip() == "baseline"


def _best_isa(cap_avx2=False):
    avx2 = _kernels.cpu_has_avx2_fma() and _kernels.avx2_compiled()
    if avx2 and not cap_avx2 and _kernels.cpu_has_avx512() and _kernels.avx512_compiled():
        return "avx512"
    return "avx2" if avx2 else "baseline"


def test_isa_default_matches_cpu():
    out = _run("import fastconv.config as c; print(c.isa())", FASTCONV_ISA="", FASTCONV_DISABLE_AVX2="",
               FASTCONV_DISABLE_AVX512="")
    assert out.stdout.strip() == _best_isa()
    assert config._available_isas()[-1] == _best_isa()


def test_disable_avx512_caps_at_avx2():
    out = _run("import fastconv.config as c; print(c.isa())", FASTCONV_ISA="", FASTCONV_DISABLE_AVX2="",
               FASTCONV_DISABLE_AVX512="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == _best_isa(cap_avx2=True)


@pytest.mark.parametrize("name", ["baseline", "avx2", "avx512"])
def test_isa_env_forces_each_path_or_raises(name):
    out = _run("import fastconv.config as c; print(c.isa(), c.show_config()['isa'])", FASTCONV_ISA=name,
               FASTCONV_DISABLE_AVX2="", FASTCONV_DISABLE_AVX512="")
    if name in config._available_isas():
        assert out.returncode == 0, out.stderr
        assert out.stdout.split()[-2:] == [name, name]
    else:   # forcing an ISA the CPU or the build lacks is an error, not a silent fallback
        assert out.returncode != 0
        assert "FASTCONV_ISA=" + name in out.stderr


def test_available_isas_are_runnable_and_settable():
    names = config._available_isas()
    assert names[0] == "baseline"
    assert names == sorted(names, key=["baseline", "avx2", "avx512"].index)
    for name in names:
        with config._forced_runtime(isa_name=name):
            assert config.isa() == name
    if "avx512" not in names:
        with pytest.raises(ValueError, match="avx512"):
            _kernels.set_runtime(1, _kernels.ISA_AVX512, 1 << 20)
    with pytest.raises(ValueError, match="isa must be"):
        _kernels.set_runtime(1, 3, 1 << 20)


def test_bad_isa_env_is_an_import_error():
    out = _run("import fastconv", FASTCONV_ISA="sse9")
    assert out.returncode != 0
    assert "FASTCONV_ISA" in out.stderr


def test_threads_roundtrip_and_errors():
    before = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(1)
        assert fastconv.get_num_threads() == 1
        assert _kernels.get_runtime()["num_threads"] == 1
    finally:
        fastconv.set_num_threads(before)
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        fastconv.set_num_threads(0)
    with pytest.raises(TypeError, match="n must be an int"):
        fastconv.set_num_threads(1.5)
    with pytest.raises(TypeError):
        fastconv.set_num_threads(True)


def test_show_config_reports_isa_threads_blas_build():
    buf = io.StringIO()
    cfg = fastconv.show_config(file=buf)
    text = buf.getvalue()
    for key in ("isa", "threads", "blas", "build", "openmp", "cpu_avx512", "avx512_compiled"):
        assert key in cfg and key in text
    assert cfg["isa"] == config.isa()
    assert "-march=native" not in cfg["build"] or os.environ.get("FASTCONV_NATIVE")
    assert "-ffast-math" not in cfg["build"]


@pytest.mark.parametrize("a,b", [(2**31, 2), (2**32, 2**20), (2**31 - 1, 2**31 + 1), (3037000499, 3037000499)])
def test_checked_mul_past_32_bits(a, b):
    assert _kernels.checked_mul(a, b) == a * b


@pytest.mark.parametrize("a,b", [(2**62, 2), (2**32, 2**32), (-(2**62), 3), (3037000500, 3037000500)])
def test_checked_mul_overflow(a, b):
    with pytest.raises(OverflowError):
        _kernels.checked_mul(a, b)


def test_checked_add():
    assert _kernels.checked_add(2**62, 2**62 - 1) == 2**63 - 1
    with pytest.raises(OverflowError):
        _kernels.checked_add(2**62, 2**62)


def _conv_tuple(**kw):
    s = dict(n=1, c_in=1, h_in=5, w_in=5, c_out=1, kh=3, kw=3, h_out=3, w_out=3,
             sh=1, sw=1, ph=0, pw=0, dh=1, dw=1, groups=1)
    s.update(kw)
    return tuple(s.values())


def test_conv_check_catches_overflow_and_bad_sizes():
    _kernels.conv_check(_conv_tuple())
    with pytest.raises(ValueError, match="overflow"):
        _kernels.conv_check(_conv_tuple(n=2**40, c_in=2**20, h_in=2**10))
    with pytest.raises(ValueError, match="overflow"):
        _kernels.conv_check(_conv_tuple(kh=2**40, dh=2**40))
    with pytest.raises(ValueError):
        _kernels.conv_check(_conv_tuple(sh=0))
    with pytest.raises(ValueError):
        _kernels.conv_check(_conv_tuple(groups=2))  # 1 channel not divisible by 2 groups


def test_kernel_boundary_rejects_short_buffers():
    import numpy as np
    x = np.zeros(24, np.float32)  # shape says 25
    w = np.zeros(9, np.float32)
    y = np.zeros(9, np.float32)
    with pytest.raises(ValueError, match="x: buffer has 24 elements, the shape needs 25"):
        _kernels.conv2d(x, w, None, y, _conv_tuple(), 0)
