"""The BLAS thread-count contract of ``fastconv._blas_threads.single_threaded``.

* During an im2col/dilated kernel call SciPy's BLAS runs on one thread,
  whichever Python thread makes the call (threadpoolctl >= 3.8 silently
  ignores a limit set from any thread but the first one that ever set one,
  which left the BLAS multi-threaded inside calls made from worker threads).
* When the fastconv calls are over, the count is the user's again, whichever
  Python thread left last.
* Concurrent callers: the count stays 1 while any of them is inside.

The user's count is set through OpenBLAS's own C function so that the
precondition holds whatever threadpoolctl thinks the controlling thread is.
"""
import threading

import numpy as np
import pytest

from fastconv import _blas_threads, _kernels, conv

LIBS = _blas_threads.blas_libraries()
pytestmark = pytest.mark.skipif(not LIBS, reason="threadpoolctl cannot see SciPy's BLAS")


def _counts():
    return [lib.num_threads for lib in LIBS]


@pytest.fixture
def user_count():
    """The user's BLAS count set to 2 (restored to the original afterwards)."""
    knobs = _blas_threads._get_knobs()
    original = [k.get() for k in knobs]
    for k in knobs:
        k.set(2)
    assert _counts() == [2] * len(LIBS)
    yield 2
    for k, n in zip(knobs, original):
        k.set(n)


def _claim_threadpoolctl_for_main():
    """Make the main thread threadpoolctl's controlling thread, as a user's
    earlier ``threadpool_limits`` would (the situation that hid worker-thread
    limits)."""
    for lib in LIBS:
        lib.set_num_threads(lib.num_threads)


def _in_thread(fn):
    out, err = [], []

    def run():
        try:
            out.append(fn())
        except BaseException as e:  # noqa: BLE001  (re-raised in the caller)
            err.append(e)
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if err:
        raise err[0]
    return out[0]


def test_main_thread_lowered_inside_restored_after(user_count):
    with _blas_threads.single_threaded():
        assert _counts() == [1] * len(LIBS)
        with _blas_threads.single_threaded():
            assert _counts() == [1] * len(LIBS)
        assert _counts() == [1] * len(LIBS)
    assert _counts() == [user_count] * len(LIBS)


def test_worker_thread_lowered_inside_restored_after(user_count):
    _claim_threadpoolctl_for_main()

    def call():
        with _blas_threads.single_threaded():
            return _counts()
    assert _in_thread(call) == [1] * len(LIBS)
    assert _counts() == [user_count] * len(LIBS)


def test_restored_after_exception(user_count):
    with pytest.raises(RuntimeError):
        with _blas_threads.single_threaded():
            raise RuntimeError("boom")
    assert _counts() == [user_count] * len(LIBS)


def test_user_count_of_one_left_alone():
    knobs = _blas_threads._get_knobs()
    original = [k.get() for k in knobs]
    try:
        for k in knobs:
            k.set(1)
        with _blas_threads.single_threaded():
            assert _counts() == [1] * len(LIBS)
        assert _counts() == [1] * len(LIBS)
    finally:
        for k, n in zip(knobs, original):
            k.set(n)


def test_last_out_is_not_first_in(user_count):
    """A enters, B enters, A leaves (still 1: B is inside), B leaves -> restored."""
    _claim_threadpoolctl_for_main()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with _blas_threads.single_threaded():
            seen["a"] = _counts()
            a_in.set()
            assert b_in.wait(10)
        a_out.set()

    def b():
        assert a_in.wait(10)
        with _blas_threads.single_threaded():
            b_in.set()
            assert a_out.wait(10)
            seen["b_after_a_left"] = _counts()
        seen["b_out"] = _counts()

    ts = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    assert seen["a"] == [1] * len(LIBS)
    assert seen["b_after_a_left"] == [1] * len(LIBS)
    assert seen["b_out"] == [user_count] * len(LIBS)
    assert _counts() == [user_count] * len(LIBS)


def test_public_calls_from_concurrent_threads(user_count, monkeypatch):
    """Real im2col/dilated calls from 3 Python threads: every kernel call sees
    a BLAS count of 1, results equal the serial ones, the count is restored."""
    _claim_threadpoolctl_for_main()
    during = []
    real = _kernels.conv2d

    def spy(*args):
        during.append(tuple(_counts()))
        return real(*args)

    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (2, 5, 13, 11)).astype(np.float32)
    w = rng.uniform(-1, 1, (6, 5, 3, 3)).astype(np.float32)
    jobs = [("im2col", 1), ("dilated", 2)] * 6
    expect = {j: conv.conv2d(x, w, padding=1, dilation=j[1], algo=j[0]) for j in set(jobs)}
    monkeypatch.setattr(_kernels, "conv2d", spy)
    start = threading.Barrier(3)
    got, err = [], []

    def worker(k):
        try:
            start.wait(10)
            for algo, d in jobs[k::3]:
                got.append(((algo, d), conv.conv2d(x, w, padding=1, dilation=d, algo=algo)))
        except BaseException as e:  # noqa: BLE001
            err.append(e)
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not err, err
    assert len(got) == len(jobs) and len(during) == len(jobs)
    assert set(during) == {(1,) * len(LIBS)}
    for job, y in got:
        np.testing.assert_array_equal(y, expect[job])
    assert _counts() == [user_count] * len(LIBS)
