"""Runtime configuration: threads, ISA dispatch, BLAS, build information.

The ISA is chosen once at import: AVX2+FMA when the CPU supports it and the
build compiled the AVX2 kernels, else the portable baseline.  Setting the
environment variable ``FASTCONV_DISABLE_AVX2=1`` (or ``FASTCONV_ISA=baseline``)
before import forces the baseline path; tests use it to cover both paths.
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


def _choose_isa():
    forced = os.environ.get("FASTCONV_ISA", "").strip().lower()
    if forced not in ("", "auto", "baseline", "avx2"):
        raise ImportError(f"FASTCONV_ISA must be 'baseline', 'avx2' or 'auto', got {forced!r}")
    available = _kernels.cpu_has_avx2_fma() and _kernels.avx2_compiled()
    if forced == "baseline" or _env_truthy("FASTCONV_DISABLE_AVX2"):
        return _kernels.ISA_BASELINE
    if forced == "avx2" and not available:
        raise ImportError("FASTCONV_ISA=avx2 but the CPU or this build lacks AVX2+FMA")
    return _kernels.ISA_AVX2 if available else _kernels.ISA_BASELINE


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


_ISA_NAMES = {_kernels.ISA_BASELINE: "baseline", _kernels.ISA_AVX2: "avx2"}
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
    """Name of the kernel ISA in use: ``"avx2"`` or ``"baseline"``."""
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
    names = ["baseline"]
    if _kernels.cpu_has_avx2_fma() and _kernels.avx2_compiled():
        names.append("avx2")
    return names
