"""Pooling benchmark: fastconv vs PyTorch (issue 6 suite), bandwidth and 2-thread scaling.

Three tables, float32, NCHW, batch 8 (ResNet/VGG layer sizes):

1. **Suite** (``--no-suite`` skips): fastconv and PyTorch in the same process,
   1 thread each, calls alternating, median of ``--repeat``, timed by the
   calling thread's CPU clock (``--clock wall`` for wall time).  Per pass:
   ``fc ms``, ``GB/s`` (bytes that must cross memory at least once: input +
   output for forward; grad_out (+ int64 indices) + grad_input for backward),
   ``torch ms``, ``x torch``; ``2t/1t`` (``--threads2``) is fastconv's
   2-thread over 1-thread throughput at these (mostly cache-sized) sizes.
   Max pooling backward is compared as PyTorch users run it:
   ``max_pool2d_with_indices_backward`` with saved indices ("bwd idx", in
   the backward geo-mean); the recompute-from-input variant ("bwd x") is
   shown against the same PyTorch call and reported separately.

2. **Bandwidth** (``--no-bandwidth`` skips; the issue's forward target: at
   least 70% of the copy bandwidth on 2x2/2 and 3x3/2, max and avg).  The
   reference must be measured the way the pass is, so each forward is timed
   next to a copy (``np.copyto``, glibc memcpy) that moves the same number of
   bytes (reads + writes, the STREAM convention `fastconv peak` uses), on
   the same thread count (1), with the same clock and in the same cache
   state:

   - ``cold``: before every timed call (pass or copy) the caches are flushed
     by reading a buffer of 3x the last-level cache (clean lines, nothing to
     write back), so both stream from DRAM -- the regime of `fastconv
     peak`'s 128 MiB copy, which a cache-sized layer never reaches when
     timed back to back;
   - ``warm``: the call is repeated back to back (input in cache as far as
     it fits), against a warm copy of the same bytes.

   ``%copy`` = same-state copy time / pass time; ``%peak`` = pass GB/s /
   `fastconv peak` 1-thread copy GB/s (the machine's measured copy
   bandwidth: a 1 GiB-class memcpy, non-temporal stores).  The verdict takes
   each layer in the state it runs in inside a network -- cold beyond the
   kernels' 32 MiB streaming threshold, warm below it (its input was just
   written by the previous layer) -- against `fastconv peak`; a cold
   cache-sized layer pays DRAM latency that a same-size copy pays too, so
   cold is also shown against that copy.  Bytes are
   the compulsory traffic (input read once, output written once): the 3x3/2
   kernels read each input row once (row buffer), so this is also the DRAM
   traffic, except that outputs below the streaming threshold (32 MiB of
   arrays) are written with normal stores, whose read-for-ownership the copy
   pays alike.  Pooling's traffic is mostly reads (80% for 2x2/2), and reads
   stream faster than a copy's mix, so read-heavy passes can exceed 100%.
   The pass is timed through the public API (its output is allocated per
   call, as users call it); the copy writes into an existing buffer, so the
   reference is never the slower of the two for allocation reasons.

3. **Scaling** (``--scaling``/``--scaling-only``): every pass at a batch whose
   input is at least twice the last-level cache, 1 vs 2 threads, wall clock,
   with a copy of the same bytes on 1 and 2 threads measured in the same run
   (what the memory system allows right now) and the load average.  The
   issue's target is 2t/1t >= 1.7 for every pass; on a shared machine it is
   only meaningful at a load average below ~1.5 (the second OpenMP thread
   needs a free core).

    OMP_WAIT_POLICY=PASSIVE python bench/bench_pool.py --repeat 11
    OMP_WAIT_POLICY=PASSIVE python bench/bench_pool.py --no-suite --repeat 11      # bandwidth only
    OMP_WAIT_POLICY=PASSIVE python bench/bench_pool.py --scaling-only --repeat 9
"""
import argparse
import math
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fastconv  # noqa: E402
import importlib  # noqa: E402
from fastconv import pool  # noqa: E402

_peak = importlib.import_module("fastconv.peak")  # the module, not fastconv.peak()

# (name, op, input shape, kernel, stride, padding)
SUITE = [
    ("vgg1 max2/2", "max", (8, 64, 224, 224), 2, 2, 0),
    ("vgg2 max2/2", "max", (8, 128, 112, 112), 2, 2, 0),
    ("vgg3 max2/2", "max", (8, 256, 56, 56), 2, 2, 0),
    ("vgg5 max2/2", "max", (8, 512, 14, 14), 2, 2, 0),
    ("resnet stem max3/2p1", "max", (8, 64, 112, 112), 3, 2, 1),
    ("resnet max3/2p1 56", "max", (8, 128, 56, 56), 3, 2, 1),
    ("densenet avg2/2", "avg", (8, 128, 56, 56), 2, 2, 0),
    ("avg2/2 28", "avg", (8, 256, 28, 28), 2, 2, 0),
    ("inception avg3/1p1 35", "avg", (8, 192, 35, 35), 3, 1, 1),
    ("inception avg3/1p1 28", "avg", (8, 256, 28, 28), 3, 1, 1),
]

# One case per kernel for the >LLC scaling table: (name, op, per-image shape, k, s, p)
SCALING = [
    ("max2/2 64x112", "max", (64, 112, 112), 2, 2, 0),
    ("max3/2p1 64x112", "max", (64, 112, 112), 3, 2, 1),
    ("avg2/2 128x56", "avg", (128, 56, 56), 2, 2, 0),
    ("avg3/1p1 192x35", "avg", (192, 35, 35), 3, 1, 1),
]


STAT = statistics.median
CLOCK = time.thread_time


def median_time(fns, repeat, clocks=None):
    """Median (or --stat min) seconds of each fn, calls alternating between
    them; fn i is timed with clocks[i] (default: the --clock of the run)."""
    clocks = clocks or [CLOCK] * len(fns)
    times = [[] for _ in fns]
    for f in fns:  # warm-up
        f()
    for _ in range(repeat):
        for i, f in enumerate(fns):
            clk = clocks[i]
            t = clk()
            f()
            times[i].append(clk() - t)
    return [STAT(t) for t in times]


def with_threads(f, t):
    def run():
        fastconv.set_num_threads(t)
        try:
            return f()
        finally:
            fastconv.set_num_threads(1)
    return run


def cases(torch, F, op, shape, k, s, p):
    """Yields (label, fastconv fn, torch fn or None, bytes that must move)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, shape).astype(np.float32)
    tx = torch.from_numpy(x) if torch else None
    if op == "max":
        y, ind = pool.max_pool2d(x, k, s, p, return_indices=True)
        g = rng.uniform(-1, 1, y.shape).astype(np.float32)
        yield ("fwd", lambda: pool.max_pool2d(x, k, s, p),
               (lambda: F.max_pool2d(tx, k, s, p)) if torch else None, x.nbytes + y.nbytes)
        yield ("fwd+idx", lambda: pool.max_pool2d(x, k, s, p, return_indices=True),
               (lambda: F.max_pool2d(tx, k, s, p, return_indices=True)) if torch else None,
               x.nbytes + y.nbytes + ind.nbytes)
        tb = None
        if torch:
            tg, tind = torch.from_numpy(g), torch.from_numpy(ind)
            tb = lambda: torch.ops.aten.max_pool2d_with_indices_backward(tg, tx, [k, k], [s, s], [p, p],  # noqa: E731
                                                                          [1, 1], False, tind)
        yield ("bwd idx", lambda: pool.max_pool2d_backward(g, x, k, s, p, indices=ind), tb,
               g.nbytes + ind.nbytes + x.nbytes)
        yield ("bwd x", lambda: pool.max_pool2d_backward(g, x, k, s, p), tb, g.nbytes + 2 * x.nbytes)
    else:
        y = pool.avg_pool2d(x, k, s, p)
        g = rng.uniform(-1, 1, y.shape).astype(np.float32)
        yield ("fwd", lambda: pool.avg_pool2d(x, k, s, p),
               (lambda: F.avg_pool2d(tx, k, s, p)) if torch else None, x.nbytes + y.nbytes)
        tb = None
        if torch:
            tg = torch.from_numpy(g)
            tb = lambda: torch.ops.aten.avg_pool2d_backward(tg, tx, [k, k], [s, s], [p, p], False, True, None)  # noqa: E731
        yield ("bwd", lambda: pool.avg_pool2d_backward(g, x.shape, k, s, p), tb, g.nbytes + x.nbytes)


def geomean(xs):
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


def load():
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average n/a"


def suite_table(args, torch, F):
    hdr = (f"{'layer':22s} {'pass':7s} {'fc ms':>8s} {'GB/s':>6s} "
           f"{'torch ms':>9s} {'x torch':>8s}{' 2t/1t' if args.threads2 else ''}")
    print(hdr)
    print("-" * len(hdr))
    acc = {"fwd": [], "bwd": [], "bwd x": [], "scale": []}
    for name, op, shape, k, s, p in SUITE:
        if args.only and args.only not in name:
            continue
        shape = (args.batch,) + shape[1:]
        for label, f_fc, f_t, nbytes in cases(torch, F, op, shape, k, s, p):
            fns = [f_fc]
            clocks = [CLOCK]
            if args.threads2:
                # 2 threads against 1, both on the wall clock (a CPU clock
                # would count only the calling thread's share)
                fns += [f_fc, with_threads(f_fc, 2)]
                clocks += [time.perf_counter, time.perf_counter]
            if f_t:
                fns.append(f_t)
                clocks.append(CLOCK)
            ts = median_time(fns, args.repeat, clocks)
            line = f"{name:22s} {label:7s} {ts[0] * 1e3:8.2f} {nbytes / ts[0] / 1e9:6.1f}"
            if f_t:
                r = ts[-1] / ts[0]
                line += f" {ts[-1] * 1e3:9.2f} {r:7.1f}x"
                key = "fwd" if label == "fwd" else ("bwd x" if label == "bwd x" else
                                                    ("bwd" if label.startswith("bwd") else None))
                if key:
                    acc[key].append(r)
            else:
                line += f" {'':9s} {'':8s}"
            if args.threads2:
                sc = ts[1] / ts[2]
                acc["scale"].append(sc)
                line += f" {sc:5.2f}x"
            print(line, flush=True)
    print()
    if acc["fwd"]:
        print(f"geo-mean speed-up over PyTorch, forward:            {geomean(acc['fwd']):5.1f}x ({len(acc['fwd'])} layers)")
        print(f"geo-mean speed-up over PyTorch, backward:           {geomean(acc['bwd']):5.1f}x "
              f"({len(acc['bwd'])} layers; max pooling with saved indices, as PyTorch)")
        print(f"geo-mean speed-up over PyTorch, max backward from x: {geomean(acc['bwd x']):5.1f}x "
              f"({len(acc['bwd x'])} layers; recomputed argmax vs PyTorch's indexed backward)")
    if acc["scale"]:
        print(f"2-thread / 1-thread throughput, geo-mean over all rows: {geomean(acc['scale']):.2f}x "
              "(suite sizes; many fit in the last-level cache -- see --scaling for the target)")


# Extra forward layers of the bandwidth table (avg 3x3/2 is not in the
# speed-up suite, but the bandwidth target names it).
BW_EXTRA = [
    ("avg3/2p1 112", "avg", (8, 64, 112, 112), 3, 2, 1),
    ("avg3/2p1 56", "avg", (8, 128, 56, 56), 3, 2, 1),
]


# Arrays of a call at or beyond this many bytes are streamed from DRAM in any
# use (the kernels' own threshold for streaming stores, FC_POOL_LLC in
# csrc/pool_avx2.c); below it a layer's input was just written by the
# layer before and is served from the cache.
STREAM_BYTES = 32 << 20


class Flusher:
    """Evicts the caches by reading a buffer of 3x the last-level cache:
    afterwards neither the pass's nor the copy's arrays are cached, and the
    cache holds no dirty lines whose write-back would be charged to
    whichever call runs next (a write-based flush measured every pass and
    copy 10-25% slower, by an amount that depends on the flush, not the
    pass)."""

    def __init__(self):
        self.buf = np.ones(3 * _peak._llc_bytes() // 4, dtype=np.float32)

    def __call__(self):
        self.buf.max()


def state_times(fns, repeat, cold, flush):
    """Median (--stat) CPU-clock seconds of each fn, alternating; cold:
    caches flushed before every timed call; warm: each timed call directly
    follows an untimed call of the same fn."""
    times = [[] for _ in fns]
    for f in fns:
        f()
    for _ in range(repeat):
        for i, f in enumerate(fns):
            if cold:
                flush()
            else:
                f()
            t = CLOCK()
            f()
            times[i].append(CLOCK() - t)
    return [STAT(t) for t in times]


def bandwidth_table(args, peak_bw):
    flush = Flusher()
    print(f"\nForward bandwidth, 1 thread, against a copy of the same bytes in the same cache state "
          f"(cold = caches flushed before every call; copy = np.copyto); {load()}")
    hdr = (f"{'layer':22s} {'MB':>5s} | {'cold GB/s':>9s} {'copy':>5s} {'%copy':>6s} {'%peak':>6s} | "
           f"{'warm GB/s':>9s} {'copy':>5s} {'%copy':>6s}")
    print(hdr)
    print("-" * len(hdr))
    rows = []
    for name, op, shape, k, s, p in SUITE + BW_EXTRA:
        if (k, s) not in ((2, 2), (3, 2)) or (args.only and args.only not in name):
            continue
        shape = (args.batch,) + shape[1:]
        label, f_fc, _, nbytes = next(iter(cases(None, None, op, shape, k, s, p)))
        src = np.ones(nbytes // 8, dtype=np.float32)       # copy moves 2 * nbytes/2 bytes
        dst = np.empty_like(src)
        cp = lambda: np.copyto(dst, src)  # noqa: E731
        cold = state_times([f_fc, cp], args.repeat, True, flush)
        warm = state_times([f_fc, cp], args.repeat, False, flush)
        g = [nbytes / t / 1e9 for t in cold + warm]
        pc, pw = 100 * cold[1] / cold[0], 100 * warm[1] / warm[0]
        pk = 100 * g[0] / peak_bw if peak_bw else float("nan")
        # the state the layer runs in inside a network: an input that fits
        # in the cache was just written by the layer before (warm); beyond
        # the kernels' streaming threshold it streams from DRAM (cold)
        beyond = nbytes >= STREAM_BYTES
        use = g[0] if beyond else g[2]
        rows.append((name, pc, pk, "cold" if beyond else "warm", 100 * use / peak_bw if peak_bw else float("nan")))
        print(f"{name:22s} {nbytes / 1e6:5.1f} | {g[0]:9.1f} {g[1]:5.1f} {pc:5.0f}% {pk:5.0f}% | "
              f"{g[2]:9.1f} {g[3]:5.1f} {pw:5.0f}%", flush=True)
    if rows:
        pcs, pks = [r[1] for r in rows], [r[2] for r in rows]
        print(f"cold, % of the same-size copy: min {min(pcs):.0f}% / geo-mean {geomean(pcs):.0f}%; "
              f"% of `fastconv peak`: min {min(pks):.0f}% / geo-mean {geomean(pks):.0f}%  ({load()})")
        print("in use (warm below the streaming threshold, cold beyond it), % of `fastconv peak`: "
              + ", ".join(f"{r[0]} {r[4]:.0f}% ({r[3]})" for r in rows))
        low = [r[0] for r in rows if not r[4] >= 70]
        print("target (>= 70% of the measured copy bandwidth, `fastconv peak`, in the state of use): "
              + ("met on every layer" if not low else "below on " + ", ".join(low)))
        low = [r[0] for r in rows if r[1] < 70]
        print("cold, >= 70% of a same-size copy in the same state: "
              + ("met on every layer" if not low else "below on " + ", ".join(low)))


def copy_scaling(nbytes, repeat):
    """Wall-clock 2-thread / 1-thread throughput of a copy of `nbytes`
    (np.copyto, which releases the GIL; 2 threads copy one half each),
    measured in the same run: what the memory system and the machine's
    load allow right now."""
    from concurrent.futures import ThreadPoolExecutor
    src = np.ones(nbytes // 8, dtype=np.float32)
    dst = np.empty_like(src)
    h = src.size // 2
    pool2 = ThreadPoolExecutor(2)

    def one():
        np.copyto(dst, src)

    def two():
        a = pool2.submit(np.copyto, dst[:h], src[:h])
        np.copyto(dst[h:], src[h:])
        a.result()
    try:
        t1, t2 = median_time([one, two], repeat, [time.perf_counter, time.perf_counter])
    finally:
        pool2.shutdown()
    return t1 / t2


def scaling_table(args):
    llc = _peak._llc_bytes()
    print(f"\n2-thread scaling on arrays larger than the last-level cache ({llc >> 20} MiB); wall clock; {load()}")
    hdr = (f"{'case':18s} {'batch':>5s} {'in MB':>6s} {'pass':7s} {'1t ms':>8s} {'2t ms':>8s} {'2t/1t':>6s} "
           f"{'1t GB/s':>8s} {'2t GB/s':>8s}")
    print(hdr)
    print("-" * len(hdr))
    out = []
    for name, op, per, k, s, p in SCALING:
        per_bytes = 4 * per[0] * per[1] * per[2]
        n = max(8, -(-2 * llc // per_bytes))      # input at least twice the LLC
        for label, f_fc, _, nbytes in cases(None, None, op, (n,) + per, k, s, p):
            if label in ("fwd+idx",):
                continue
            t1, t2 = median_time([with_threads(f_fc, 1), with_threads(f_fc, 2)], args.repeat,
                                 [time.perf_counter, time.perf_counter])
            out.append((f"{name} {label}", t1 / t2))
            print(f"{name:18s} {n:5d} {n * per_bytes / 1e6:6.0f} {label:7s} {t1 * 1e3:8.2f} {t2 * 1e3:8.2f} "
                  f"{t1 / t2:5.2f}x {nbytes / t1 / 1e9:8.1f} {nbytes / t2 / 1e9:8.1f}", flush=True)
    sc = [r for _, r in out]
    print(f"geo-mean 2-thread / 1-thread: {geomean(sc):.2f}x, min {min(sc):.2f}x ({len(sc)} rows); {load()}")
    print(f"same run, copy of {2 * llc >> 20} MiB (np.copyto), 2 threads / 1 thread (wall clock): "
          f"{copy_scaling(2 * llc, args.repeat):.2f}x; {load()}")
    low = [nm for nm, r in out if r < 1.7]
    print("target (2t/1t >= 1.7 on every pass): " + ("met" if not low else "below on " + ", ".join(low)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--threads", type=int, default=1, choices=[1],
                    help="base thread count (1; --threads2 and --scaling add 2 threads)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--only", default="", help="substring filter on layer names")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--threads2", action="store_true",
                    help="add a 2-thread column to the suite table (cache-sized layers)")
    ap.add_argument("--no-suite", dest="suite", action="store_false", help="skip the PyTorch suite table")
    ap.add_argument("--no-bandwidth", dest="bandwidth", action="store_false",
                    help="skip the cold/warm bandwidth table")
    ap.add_argument("--scaling", action="store_true", help="add the >LLC 2-thread scaling table")
    ap.add_argument("--scaling-only", action="store_true")
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                    help="1-thread timings: the calling thread's CPU time (default; both libraries run "
                         "1-thread calls on it, and it ignores time the thread is preempted on a shared "
                         "machine) or wall time.  2-thread scaling always uses wall time.")
    ap.add_argument("--stat", choices=["median", "min"], default="median",
                    help="statistic over the repeats (min resists a loaded machine better)")
    args = ap.parse_args(argv)
    global STAT, CLOCK
    STAT = min if args.stat == "min" else statistics.median
    CLOCK = time.thread_time if args.clock == "cpu" else time.perf_counter
    if args.scaling_only:
        args.suite = args.bandwidth = False
        args.scaling = True
    fastconv.set_num_threads(1)
    torch = F = None
    if not args.no_torch and args.suite:
        try:
            import torch
            import torch.nn.functional as F
            torch.set_num_threads(1)
            torch.set_flush_denormal(True)
        except ImportError:
            torch = None
    peak_bw = _peak.peak_bandwidth(1)
    print(f"fastconv isa={fastconv.config.isa()} threads=1 repeat={args.repeat} stat={args.stat} "
          f"batch={args.batch}{'' if torch or not args.suite else ' (no torch)'}; clock={args.clock}; {load()}")
    print(f"copy bandwidth (`fastconv peak`, 1 thread, 128 MiB-class buffers): "
          f"{'%.1f GB/s' % peak_bw if peak_bw else 'not measured (run `fastconv peak`)'}")
    if args.suite:
        suite_table(args, torch, F)
    if args.bandwidth:
        bandwidth_table(args, peak_bw)
    if args.scaling:
        scaling_table(args)


if __name__ == "__main__":
    main()
