"""Concurrency (issue 9): many Python threads calling every op at once, the
GIL released during kernels, and results independent of the kernel thread
count.

* 8 Python threads run every op (and algorithm) many times in shuffled
  order, interleaved with calls that fail validation; every result must be
  bit-identical to the same call made alone.
* GIL release: thread A starts a long call (>= ~0.25 s on one kernel
  thread); thread B waits until A is inside it, then makes a short call of
  the same op.  B can only finish before A if A's kernel runs without the
  GIL, so "B's exit timestamp precedes A's" proves the overlap without
  relying on speed-ups a loaded 2-core machine cannot give.  Retried up to 3
  times for scheduler noise.
* 1 vs 2 kernel threads: bit-identical results for every op, algorithm,
  dtype and ISA path (no thread-count-dependent reduction order).
"""
import random
import threading
import time

import numpy as np
import pytest

from fastconv import config, conv, pool

_rng = np.random.default_rng(17)


def A(*shape, dtype=np.float32):
    return _rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


def _bits_equal(a, b):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _bits_equal(x, y)
        return
    if a is None:
        assert b is None
        return
    assert a.shape == b.shape and a.dtype == b.dtype
    assert a.tobytes() == b.tobytes(), "results differ bit-wise"


def _calls(dtype=np.float32, scale=1):
    """(name, thunk) for every op and conv algorithm on medium shapes."""
    x = A(3, 8 * scale, 23, 19, dtype=dtype)
    w = A(12, 4 * scale, 3, 3, dtype=dtype)
    b = A(12, dtype=dtype)
    geo = dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    gy = np.ascontiguousarray(A(*conv.conv2d(x, w, b, **geo).shape, dtype=dtype))
    xt = A(2, 8 * scale, 11, 9, dtype=dtype)
    wt = A(8 * scale, 3, 3, 4, dtype=dtype)
    px = A(2, 6 * scale, 31, 27, dtype=dtype)
    pk = dict(kernel_size=(3, 2), stride=(2, 1), padding=1)
    _, idx = pool.max_pool2d(px, return_indices=True, dilation=(1, 2), **pk)
    pg = A(*idx.shape, dtype=dtype)
    apg = A(*pool.avg_pool2d(px, **pk).shape, dtype=dtype)
    w1, w2 = A(5, 3, 2, 2, dtype=dtype), A(4, 5, 3, 2, dtype=dtype)
    out = []
    for algo in conv.algorithms("conv2d"):
        out.append((f"conv2d[{algo}]", lambda algo=algo: conv.conv2d(x, w, b, algo=algo, **geo)))
    for algo in conv.algorithms("conv2d_backward"):
        out.append((f"conv2d_backward[{algo}]",
                    lambda algo=algo: conv.conv2d_backward(gy, x, w, algo=algo, **geo)))
    for algo in conv.algorithms("conv_transpose2d"):
        out.append((f"conv_transpose2d[{algo}]", lambda algo=algo: conv.conv_transpose2d(
            xt, wt, None, stride=2, padding=1, output_padding=1, dilation=2, groups=2, algo=algo)))
    out += [
        ("compose", lambda: conv.compose(w1, w2)),
        ("max_pool2d", lambda: pool.max_pool2d(px, return_indices=True, dilation=(1, 2), **pk)),
        ("max_pool2d_backward", lambda: pool.max_pool2d_backward(pg, px, dilation=(1, 2), **pk)),
        ("max_pool2d_backward+indices",
         lambda: pool.max_pool2d_backward(pg, px, dilation=(1, 2), indices=idx, **pk)),
        ("avg_pool2d", lambda: pool.avg_pool2d(px, count_include_pad=False, **pk)),
        ("avg_pool2d_backward", lambda: pool.avg_pool2d_backward(apg, px.shape, divisor_override=5, **pk)),
    ]
    return out


def _bad_calls():
    """Calls that must fail validation (exercised concurrently with good ones)."""
    x = A(2, 4, 9, 9)
    return [
        lambda: conv.conv2d(x, A(4, 4, 3, 3), stride=0),
        lambda: conv.conv2d_backward(A(2, 4, 6, 6), x, A(4, 4, 3, 3)),
        lambda: conv.conv_transpose2d(x, A(3, 2, 2, 2)),
        lambda: pool.max_pool2d_backward(A(2, 4, 4, 4), x, 2, indices=np.full((2, 4, 4, 4), 99, np.int64)),
        lambda: pool.avg_pool2d(x, 3, padding=2),
        lambda: pool.avg_pool2d_backward(A(2, 4, 3, 3), (2, 4, 9, 9), 2),
    ]


def test_eight_threads_every_op_at_once():
    calls = _calls()
    expected = {name: fn() for name, fn in calls}
    bad = _bad_calls()
    n_threads, rounds = 8, 4
    barrier = threading.Barrier(n_threads)
    errors = []
    counts = [0] * n_threads

    def worker(tid):
        try:
            order = [c for c in calls for _ in range(rounds)] + [("bad", f) for f in bad]
            random.Random(tid).shuffle(order)
            barrier.wait()
            for name, fn in order:
                if name == "bad":
                    with pytest.raises((ValueError, TypeError)):
                        fn()
                else:
                    _bits_equal(fn(), expected[name])
                counts[tid] += 1
        except BaseException as e:  # report every thread's failure in the main thread
            errors.append((tid, repr(e)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors
    assert sum(counts) == n_threads * (rounds * len(calls) + len(bad))
    print(f"\n[concurrency] {n_threads} threads, {sum(counts)} calls ({len(calls)} op/algo kinds, "
          f"{n_threads * len(bad)} failing), all bit-identical to the single-threaded results", end="")


# ---------------------------------------------------------------- GIL release

def _long_and_short(op):
    """(long call builder(scale), short call) for one op; scale grows the long call."""
    def conv_x(s):
        return A(s, 32, 48, 48), A(32, 32, 3, 3)

    if op == "conv2d":
        def long(s):
            x, w = conv_x(s)
            return lambda: conv.conv2d(x, w, padding=1, algo="direct")
        short = (A(1, 4, 8, 8), A(4, 4, 3, 3))
        return long, lambda: conv.conv2d(*short, algo="direct")
    if op == "conv2d_backward":
        def long(s):
            x, w = conv_x(s)
            gy = A(s, 32, 48, 48)
            return lambda: conv.conv2d_backward(gy, x, w, padding=1, algo="direct")
        return long, lambda: conv.conv2d_backward(A(1, 4, 6, 6), A(1, 4, 8, 8), A(4, 4, 3, 3))
    if op == "conv_transpose2d":
        def long(s):
            x, w = conv_x(s)
            return lambda: conv.conv_transpose2d(x, w, padding=1, algo="direct")
        return long, lambda: conv.conv_transpose2d(A(1, 4, 6, 6), A(4, 4, 3, 3))
    if op == "max_pool2d":
        def long(s):
            x = A(s, 16, 128, 128)
            return lambda: pool.max_pool2d(x, 9, stride=1, padding=4, return_indices=True)
        return long, lambda: pool.max_pool2d(A(1, 2, 8, 8), 2)
    if op == "max_pool2d_backward":
        def long(s):
            x = A(s, 16, 128, 128)
            gy = A(s, 16, 128, 128)
            return lambda: pool.max_pool2d_backward(gy, x, 9, stride=1, padding=4)
        return long, lambda: pool.max_pool2d_backward(A(1, 2, 4, 4), A(1, 2, 8, 8), 2)
    if op == "avg_pool2d":
        def long(s):
            x = A(s, 16, 128, 128)
            return lambda: pool.avg_pool2d(x, 9, stride=1, padding=4)
        return long, lambda: pool.avg_pool2d(A(1, 2, 8, 8), 2)
    if op == "avg_pool2d_backward":
        def long(s):
            gy = A(s, 16, 128, 128)
            return lambda: pool.avg_pool2d_backward(gy, (s, 16, 128, 128), 9, stride=1, padding=4)
        return long, lambda: pool.avg_pool2d_backward(A(1, 2, 4, 4), (1, 2, 8, 8), 2)
    raise AssertionError(op)


def _calibrated(build, target=0.25, limit=64):
    """The long call grown until one run takes >= target seconds."""
    s = 1
    while True:
        fn = build(s)
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        if dt >= target or s >= limit:
            return fn, dt
        s = min(limit, max(s * 2, int(s * target / max(dt, 1e-3)) + 1))


GIL_OPS = ["conv2d", "conv2d_backward", "conv_transpose2d", "max_pool2d", "max_pool2d_backward",
           "avg_pool2d", "avg_pool2d_backward"]


@pytest.mark.parametrize("op", GIL_OPS)
def test_gil_released_during_kernel(op):
    build, short = _long_and_short(op)
    with config._forced_runtime(threads=1):
        long_fn, dt = _calibrated(build)
        short()
        outcomes = []
        for attempt in range(3):
            stamps = {}
            started = threading.Event()

            def run_long():
                stamps["a_in"] = time.perf_counter()
                started.set()
                long_fn()
                stamps["a_out"] = time.perf_counter()

            def run_short():
                started.wait()
                # let A get past its Python prologue into the kernel
                time.sleep(min(0.05, dt / 5))
                stamps["b_in"] = time.perf_counter()
                short()
                stamps["b_out"] = time.perf_counter()

            ta, tb = threading.Thread(target=run_long), threading.Thread(target=run_short)
            ta.start()
            tb.start()
            ta.join()
            tb.join()
            outcomes.append({k: round(v - stamps["a_in"], 4) for k, v in stamps.items()})
            # B entered and left while A's call was running: A's kernel did not hold the GIL
            if stamps["a_in"] < stamps["b_in"] and stamps["b_out"] < stamps["a_out"]:
                o = outcomes[-1]
                print(f"\n[gil] {op}: long call {o['a_out'] * 1e3:.0f} ms; short call ran "
                      f"{o['b_in'] * 1e3:.1f}-{o['b_out'] * 1e3:.1f} ms inside it "
                      f"(attempt {attempt + 1})", end="")
                return
    pytest.fail(f"{op}: a short call never completed inside a {dt:.3f} s call: {outcomes}")


# ---------------------------------------------------------------- 1 vs 2 kernel threads

@pytest.mark.parametrize("isa", config._available_isas())
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_one_and_two_kernel_threads_bit_identical(isa, dtype):
    calls = _calls(dtype, scale=2)
    with config._forced_runtime(isa_name=isa, threads=1):
        one = {name: fn() for name, fn in calls}
    with config._forced_runtime(isa_name=isa, threads=2):
        two = {name: fn() for name, fn in calls}
    for name, _ in calls:
        try:
            _bits_equal(one[name], two[name])
        except AssertionError as e:
            raise AssertionError(f"{name} ({isa}, {np.dtype(dtype)}): 1 vs 2 threads: {e}") from None
    print(f"\n[threads] {isa} {np.dtype(dtype)}: {len(calls)} op/algo results bit-identical "
          "with 1 and 2 kernel threads", end="")
