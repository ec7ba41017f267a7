"""fastconv calls from several Python threads: the BLAS thread-count switch.

Standalone:  python bench/bench_blas_threads.py [--calls 16] [--repeat 5] [--threads 1]

Times the same batch of im2col calls (a dask-like block:
conv2d((1,16,131,131), (32,16,3,3), stride=2), float32) made serially and
from 2 Python threads, and prints time(2 Python threads) / time(serial) for
three ways of holding SciPy's OpenBLAS at one thread during the kernels:

  threadpoolctl  the old _blas_threads: set through threadpoolctl, which
                 (>= 3.8, pthreads OpenBLAS) ignores every Python thread but
                 the first that set a limit, so worker threads left the
                 BLAS multi-threaded inside fastconv's kernels
  direct         the current _blas_threads: openblas_set_num_threads called
                 directly, lowered on entry and restored on exit every call
  pinned         the user pinned the BLAS to 1 thread beforehand (the
                 context manager then does nothing): the floor

A ratio near or below 1 means the switch costs nothing under concurrency.
Same process, the variants alternate, median of the repeats.
"""
import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fastconv as fc  # noqa: E402
from fastconv import _blas_threads  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="fastconv (OpenMP) threads per call")
    ap.add_argument("--blas", type=int, default=2, help="the user's BLAS thread count")
    a = ap.parse_args(argv)

    libs = _blas_threads.blas_libraries()
    knobs = _blas_threads._get_knobs()
    if not knobs:
        print("threadpoolctl cannot see SciPy's BLAS: nothing to measure")
        return
    fc.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1, 16, 131, 131)).astype(np.float32)
    w = rng.uniform(-1, 1, (32, 16, 3, 3)).astype(np.float32)

    def one(_):
        return fc.conv2d(x, w, stride=2, algo="im2col")

    def batch(pool):
        t = time.perf_counter()
        if pool is None:
            for i in range(a.calls):
                one(i)
        else:
            list(pool.map(one, range(a.calls)))
        return time.perf_counter() - t

    direct = [k.set for k in knobs]
    via_tpc = [lib.set_num_threads for lib in libs]

    def variant(name):
        setters = via_tpc if name == "threadpoolctl" else direct
        for k, s in zip(knobs, setters):
            k.set = s
        for k in direct:
            k(1 if name == "pinned" else a.blas)
        # the main thread holds threadpoolctl's control, as after a user's
        # threadpool_limits(); worker threads then cannot set a limit through it
        for lib in libs:
            lib.set_num_threads(lib.num_threads)

    names = ("threadpoolctl", "direct", "pinned")
    times = {(n, p): [] for n in names for p in ("serial", "2 threads")}
    one(0)
    with ThreadPoolExecutor(2) as pool:
        for _ in range(a.repeat):
            for n in names:
                variant(n)
                times[(n, "serial")].append(batch(None))
                times[(n, "2 threads")].append(batch(pool))
    variant("direct")
    for k, s in zip(knobs, direct):
        k.set = s
        s(a.blas)

    print(f"{a.calls} im2col calls, fastconv threads={a.threads}, user BLAS threads={a.blas}, "
          f"median of {a.repeat}")
    print(f"{'variant':<14} {'serial ms':>10} {'2 thr ms':>10} {'2thr/serial':>12}")
    for n in names:
        s = np.median(times[(n, "serial")]) * 1e3
        p = np.median(times[(n, "2 threads")]) * 1e3
        print(f"{n:<14} {s:10.1f} {p:10.1f} {p / s:12.2f}")


if __name__ == "__main__":
    main()
