"""Runtime configuration: threads, ISA dispatch, BLAS, build information.

The ISA is chosen once at import: the best of AVX-512 (F/BW/VL, with the OS
saving zmm state), AVX2+FMA and the portable baseline that both the CPU
supports and the build compiled.  The AVX-512 path uses its own kernels where
it has them and the AVX2 ones everywhere else.  Environment variables read at
import: ``FASTCONV_ISA=baseline|avx2|avx512|auto`` forces a path (forcing one
the CPU or build lacks raises ImportError); ``FASTCONV_DISABLE_AVX512=1`` caps
the choice at AVX2 and ``FASTCONV_DISABLE_AVX2=1`` forces the baseline.  Tests
cover every path this machine can run (``_available_isas()``).
"""
import importlib
import os
import platform
import threading

from . import _kernels

__all__ = ["set_num_threads", "get_num_threads", "show_config", "isa", "get_workspace_limit",
           "set_workspace_limit"]

_lock = threading.Lock()


def _env_truthy(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "no", "false", "off")


def _avx2_runnable():
    return _kernels.cpu_has_avx2_fma() and _kernels.avx2_compiled()


def _avx512_runnable():
    return _avx2_runnable() and _kernels.cpu_has_avx512() and _kernels.avx512_compiled()


def _choose_isa():
    forced = os.environ.get("FASTCONV_ISA", "").strip().lower()
    if forced not in ("", "auto", "baseline", "avx2", "avx512"):
        raise ImportError(f"FASTCONV_ISA must be 'baseline', 'avx2', 'avx512' or 'auto', got {forced!r}")
    if forced == "baseline" or _env_truthy("FASTCONV_DISABLE_AVX2"):
        return _kernels.ISA_BASELINE
    if forced == "avx2" and not _avx2_runnable():
        raise ImportError("FASTCONV_ISA=avx2 but the CPU or this build lacks AVX2+FMA")
    if forced == "avx512":
        if not _avx512_runnable():
            raise ImportError("FASTCONV_ISA=avx512 but the CPU, the OS or this build lacks AVX-512 F/BW/VL")
        if _env_truthy("FASTCONV_DISABLE_AVX512"):
            raise ImportError("FASTCONV_ISA=avx512 contradicts FASTCONV_DISABLE_AVX512")
        return _kernels.ISA_AVX512
    if forced != "avx2" and not _env_truthy("FASTCONV_DISABLE_AVX512") and _avx512_runnable():
        return _kernels.ISA_AVX512
    return _kernels.ISA_AVX2 if _avx2_runnable() else _kernels.ISA_BASELINE


def _default_threads():
    env = os.environ.get("FASTCONV_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if env:
        try:
            n = int(env.split(",")[0])
            if n >= 1:
                return n
        except ValueError:
            pass
    return max(1, os.cpu_count() or 1)


def _default_workspace_limit():
    env = os.environ.get("FASTCONV_WORKSPACE_LIMIT")
    if env:
        try:
            v = int(env)
            if v >= 0:
                return v
        except ValueError:
            pass
        raise ImportError(f"FASTCONV_WORKSPACE_LIMIT must be a non-negative integer (bytes), got {env!r}")
    return 32 * 1024 * 1024


_ISA_NAMES = {_kernels.ISA_BASELINE: "baseline", _kernels.ISA_AVX2: "avx2",
              _kernels.ISA_AVX512: "avx512"}
_isa = _choose_isa()
_threads = _default_threads() if _kernels.openmp_enabled() else 1
_workspace_limit = _default_workspace_limit()
_kernels.set_runtime(_threads, _isa, _workspace_limit)


def _load_blas():
    """Take sgemm/dgemm from scipy.linalg.cython_blas's C-API capsules."""
    try:
        from scipy.linalg import cython_blas
        capi = cython_blas.__pyx_capi__
        _kernels.set_blas(capi["sgemm"], capi["dgemm"])
        return True
    except Exception:  # SciPy missing or without the capsules: im2col is then unavailable
        return False


_blas_loaded = _load_blas()


def isa():
    """Name of the kernel ISA in use: ``"avx512"``, ``"avx2"`` or ``"baseline"``."""
    return _ISA_NAMES[_isa]


def set_num_threads(n):
    """Set the number of threads fastconv's kernels (and the BLAS they call) use.

    Parameters
    ----------
    n : int
        Number of threads, at least 1.  Without OpenMP in the build, only 1
        is accepted.
    """
    global _threads
    if isinstance(n, bool) or not isinstance(n, int) and not hasattr(n, "__index__"):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    n = int(n.__index__())
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if n > 1 and not _kernels.openmp_enabled():
        raise ValueError(f"n={n}: this build has no OpenMP; only 1 thread is available")
    with _lock:
        _threads = n
        _kernels.set_runtime(_threads, _isa, _workspace_limit)


def get_num_threads():
    """Number of threads fastconv's kernels use."""
    return _threads


def get_workspace_limit():
    """Upper bound in bytes for chunked workspaces (im2col buffers)."""
    return _workspace_limit


def set_workspace_limit(nbytes):
    """Set the workspace bound in bytes (``FASTCONV_WORKSPACE_LIMIT`` sets the default)."""
    global _workspace_limit
    nbytes = int(nbytes)
    if nbytes < 0:
        raise ValueError(f"nbytes must be >= 0, got {nbytes}")
    with _lock:
        _workspace_limit = nbytes
        _kernels.set_runtime(_threads, _isa, _workspace_limit)


def _config_dict():
    from . import __version__
    blas = "none"
    if _blas_loaded:
        blas = "scipy.linalg.cython_blas"
        try:
            import threadpoolctl
            for info in threadpoolctl.threadpool_info():
                if info.get("user_api") == "blas":
                    blas += f" ({info.get('internal_api')} {info.get('version')}, {info.get('threading_layer', '?')})"
                    break
        except Exception:
            pass
    return {
        "version": __version__,
        "isa": isa(),
        "cpu_avx2_fma": _kernels.cpu_has_avx2_fma(),
        "avx2_compiled": _kernels.avx2_compiled(),
        "cpu_avx512": _kernels.cpu_has_avx512(),
        "avx512_compiled": _kernels.avx512_compiled(),
        "threads": _threads,
        "openmp": _kernels.openmp_enabled(),
        "cpu_count": os.cpu_count(),
        "workspace_limit": _workspace_limit,
        "auto": importlib.import_module(__package__ + ".tune").describe(),
        "blas": blas,
        "build": _kernels.build_info(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def show_config(file=None):
    """Print the ISA in use, threads, BLAS and build flags.

    Returns
    -------
    dict
        The same information as a dictionary.
    """
    import sys
    cfg = _config_dict()
    out = file or sys.stdout
    width = max(len(k) for k in cfg)
    for k, v in cfg.items():
        print(f"{k:<{width}} : {v}", file=out)
    return cfg


class _forced_runtime:
    """Context manager for tests: run with a given ISA name and thread count."""

    def __init__(self, isa_name=None, threads=None):
        self.isa_name, self.threads = isa_name, threads

    def __enter__(self):
        global _isa, _threads
        self.saved = (_isa, _threads)
        if self.isa_name is not None:
            _isa = {v: k for k, v in _ISA_NAMES.items()}[self.isa_name]
        if self.threads is not None:
            _threads = int(self.threads)
        _kernels.set_runtime(_threads, _isa, _workspace_limit)
        return self

    def __exit__(self, *exc):
        global _isa, _threads
        _isa, _threads = self.saved
        _kernels.set_runtime(_threads, _isa, _workspace_limit)
        return False


def _available_isas():
    """ISA names this machine and build can run, lowest first."""
    names = ["baseline"]
    if _avx2_runnable():
        names.append("avx2")
    if _avx512_runnable():
        names.append("avx512")
    return names
