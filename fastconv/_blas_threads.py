"""Keep the BLAS single-threaded while fastconv's OpenMP kernels call it.

The im2col and dilated kernels run OpenMP threads that each call the BLAS on
their own chunk (``csrc/conv_im2col.c``, ``csrc/conv_dilated.c``).  A
multi-threaded OpenBLAS inside those threads would oversubscribe the cores
(and OpenBLAS's pthreads build warns that it "may hang"), so every such kernel
call is wrapped in :func:`single_threaded`, which sets the OpenBLAS that
``scipy.linalg.cython_blas`` uses to one thread for the duration of the call
and restores the previous count afterwards.  fastconv's own thread count
(``fastconv.set_num_threads``) then governs all the parallelism.

The libraries are found once, lazily, with threadpoolctl.  The count is then
read and written through the library's own C functions (ctypes, about a
microsecond), *not* through ``threadpoolctl``'s ``set_num_threads``: for an
OpenBLAS with its own (pthreads) thread pool, threadpoolctl >= 3.8 lets only
the first Python thread that ever set a limit change it and silently ignores
every other thread.  Called from a worker thread (a dask threaded scheduler,
a ``ThreadPoolExecutor``) the count then stayed at N inside the kernels:
two Python threads each driving a multi-threaded OpenBLAS from fastconv's
OpenMP threads ran 20-30x slower than serially, and a restore issued by a
non-controlling thread was lost too.  This module is the one place that
coordinates the count (a lock and a depth counter across Python threads), so
it may call the library directly.  Without threadpoolctl the context manager
does nothing.
"""
import ctypes
import threading

__all__ = ["single_threaded", "blas_libraries"]

_lock = threading.Lock()
_libs = None
_knobs = None


def _find():
    """The threadpoolctl controllers of SciPy's BLAS (all BLAS libraries if unsure)."""
    try:
        import threadpoolctl
        import scipy.linalg.cython_blas  # noqa: F401  (loads the library we must control)
    except Exception:
        return []
    try:
        libs = [lib for lib in threadpoolctl.ThreadpoolController().lib_controllers
                if lib.user_api == "blas"]
    except Exception:
        return []
    scipy_libs = [lib for lib in libs if "scipy.libs" in str(lib.filepath)
                  or "scipy/" in str(lib.filepath)]
    return scipy_libs or libs


def blas_libraries():
    """The BLAS controllers :func:`single_threaded` acts on (found on first use)."""
    global _libs
    if _libs is None:
        with _lock:
            if _libs is None:
                _libs = _find()
    return _libs


class _Knob:
    """Get/set the thread count of one BLAS library from any Python thread."""

    def __init__(self, lib):
        self.get = lib.get_num_threads
        self.set = lib.set_num_threads
        if getattr(lib, "internal_api", None) == "openblas" and \
                getattr(lib, "threading_layer", None) != "openmp":
            # Process-wide pool: call OpenBLAS itself (see the module docstring).
            fn = _openblas_setter(lib)
            if fn is not None:
                self.set = fn


def _openblas_setter(lib):
    """``openblas_set_num_threads`` of the library behind `lib`, or None."""
    try:
        dll = getattr(lib, "dynlib", None) or ctypes.CDLL(lib.filepath)
    except OSError:
        return None
    for prefix in ("", "scipy_"):
        for suffix in ("", "64_", "_64"):
            fn = getattr(dll, f"{prefix}openblas_set_num_threads{suffix}", None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                fn.restype = None
                return fn
    return None


def _get_knobs():
    global _knobs
    if _knobs is None:
        libs = blas_libraries()
        with _lock:
            if _knobs is None:
                knobs = []
                for lib in libs:
                    try:
                        knobs.append(_Knob(lib))
                    except Exception:
                        pass
                _knobs = knobs
    return _knobs


_depth = 0          # calls currently inside single_threaded(), across Python threads
_saved = []         # (knob, thread count) to restore when the last one leaves


class _SingleThreaded:
    """The context manager :func:`single_threaded` returns (stateless; re-entrant)."""

    __slots__ = ()

    def __enter__(self):
        global _depth, _saved
        knobs = _get_knobs()
        with _lock:
            if _depth == 0:
                _saved = []
                for knob in knobs:
                    try:
                        n = knob.get()
                        if n is not None and n != 1:
                            knob.set(1)
                            _saved.append((knob, n))
                    except Exception:
                        pass
            _depth += 1
        return self

    def __exit__(self, *exc):
        global _depth, _saved
        with _lock:
            _depth -= 1
            if _depth == 0:
                for knob, n in _saved:
                    try:
                        knob.set(n)
                    except Exception:
                        pass
                _saved = []
        return False


_SINGLE = _SingleThreaded()


def single_threaded():
    """Run the body with SciPy's BLAS limited to one thread, then restore it.

    Re-entrant and safe when several Python threads call fastconv at once:
    the first caller in saves and lowers the count, the last one out restores
    it, whichever Python threads these are.

    Returns
    -------
    context manager
        ``with single_threaded(): ...``
    """
    return _SINGLE
