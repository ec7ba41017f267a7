"""Keep the BLAS single-threaded while fastconv's OpenMP kernels call it.

The im2col kernels run OpenMP threads that each call the BLAS on their own
chunk (``csrc/conv_im2col.c``).  A multi-threaded OpenBLAS inside those
threads would oversubscribe the cores (and OpenBLAS's pthreads build warns
that it "may hang"), so every im2col kernel call is wrapped in
:func:`single_threaded`, which sets the OpenBLAS that
``scipy.linalg.cython_blas`` uses to one thread for the duration of the call
and restores the previous count afterwards.  fastconv's own thread count
(``fastconv.set_num_threads``) then governs all the parallelism.

The controllers are found once, lazily, with threadpoolctl; getting and
setting the count are then plain ctypes calls (microseconds).  Without
threadpoolctl the context manager does nothing.
"""
import contextlib
import threading

__all__ = ["single_threaded", "blas_libraries"]

_lock = threading.Lock()
_libs = None


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


_depth = 0          # calls currently inside single_threaded(), across Python threads
_saved = []         # (controller, thread count) to restore when the last one leaves


@contextlib.contextmanager
def single_threaded():
    """Run the body with SciPy's BLAS limited to one thread, then restore it.

    Re-entrant and safe when several Python threads call fastconv at once:
    the first caller in saves and lowers the count, the last one out restores it.
    """
    global _depth, _saved
    libs = blas_libraries()
    with _lock:
        if _depth == 0:
            _saved = []
            for lib in libs:
                try:
                    n = lib.num_threads
                    if n != 1:
                        lib.set_num_threads(1)
                        _saved.append((lib, n))
                except Exception:
                    pass
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for lib, n in _saved:
                    try:
                        lib.set_num_threads(n)
                    except Exception:
                        pass
                _saved = []
