"""Pooling benchmark: fastconv vs PyTorch (issue 6 suite), bandwidth and 2-thread scaling.

Times max/avg pooling forward and backward on ResNet/VGG layer sizes
(batch 8, float32, NCHW) for fastconv and PyTorch in the same process,
calls alternating, median of repeats, 1 thread each (PyTorch and fastconv),
timed by the calling thread's CPU clock (``--clock wall`` for wall time).
Per case it prints:

- ``fc ms``, ``GB/s``: fastconv's time and the bytes that must cross memory
  at least once per second (input + output for forward; grad_out (+ int64
  indices) + grad_input for backward);
- ``%peak``: that rate as a % of the 1-thread copy bandwidth ``fastconv peak``
  measured (cached; read + write bytes per second of a buffer far beyond the
  last-level cache);
- ``%copy``: the same rate as a % of a numpy copy moving the same number of
  bytes, timed in the same alternation (so machine load and cache level
  affect both alike -- the fairer figure on a shared machine);
- ``torch ms``, ``x torch``: PyTorch's time and the speed-up over it.
  Backward of max pooling is compared as PyTorch users see it:
  ``max_pool2d_with_indices_backward`` with saved indices ("bwd idx"); the
  recompute-from-input variant ("bwd x") is shown too, compared with the same
  PyTorch call;
- ``2t/1t``: fastconv's 2-thread throughput over its 1-thread throughput.

Geometric means close the table.  ``--scaling`` adds a table of 2-thread
scaling at a batch large enough that every array exceeds the last-level cache
(the issue's 2-thread target), with the load average at the time.

    python bench/bench_pool.py --repeat 15
    python bench/bench_pool.py --scaling-only --repeat 9
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


def suite_table(args, torch, F, peak_bw):
    hdr = (f"{'layer':22s} {'pass':7s} {'fc ms':>8s} {'GB/s':>6s} {'%peak':>6s} {'%copy':>6s} "
           f"{'torch ms':>9s} {'x torch':>8s} {'2t/1t':>6s}")
    print(hdr)
    print("-" * len(hdr))
    acc = {"fwd": [], "bwd": [], "bwd x": [], "peak": [], "copy": [], "scale": []}
    for name, op, shape, k, s, p in SUITE:
        if args.only and args.only not in name:
            continue
        shape = (args.batch,) + shape[1:]
        for label, f_fc, f_t, nbytes in cases(torch, F, op, shape, k, s, p):
            src = np.ones(nbytes // 8, dtype=np.float32)
            dst = np.empty_like(src)
            fns = [f_fc, lambda: np.copyto(dst, src)]
            clocks = [CLOCK, CLOCK]
            if args.threads2:
                # 2 threads against 1, both on the wall clock (a CPU clock
                # would count only the calling thread's share)
                fns += [f_fc, with_threads(f_fc, 2)]
                clocks += [time.perf_counter, time.perf_counter]
            if f_t:
                fns.append(f_t)
                clocks.append(CLOCK)
            ts = median_time(fns, args.repeat, clocks)
            gbps = nbytes / ts[0] / 1e9
            pct_copy = 100 * ts[1] / ts[0]
            pct_peak = 100 * gbps / peak_bw if peak_bw else float("nan")
            line = f"{name:22s} {label:7s} {ts[0] * 1e3:8.2f} {gbps:6.1f} {pct_peak:5.0f}% {pct_copy:5.0f}%"
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
                sc = ts[2] / ts[3]
                acc["scale"].append(sc)
                line += f" {sc:5.2f}x"
            if label == "fwd" and (k, s) in ((2, 2), (3, 2)):
                acc["peak"].append(pct_peak)
                acc["copy"].append(pct_copy)
            print(line, flush=True)
    print()
    if acc["fwd"]:
        print(f"geo-mean speed-up over PyTorch, forward:            {geomean(acc['fwd']):5.1f}x ({len(acc['fwd'])} layers)")
        print(f"geo-mean speed-up over PyTorch, backward:           {geomean(acc['bwd']):5.1f}x "
              f"({len(acc['bwd'])} layers; max pooling with saved indices, as PyTorch)")
        print(f"geo-mean speed-up over PyTorch, max backward from x: {geomean(acc['bwd x']):5.1f}x "
              f"({len(acc['bwd x'])} layers; recomputed argmax vs PyTorch's indexed backward)")
    if acc["peak"]:
        print(f"2x2/2 and 3x3/2 forward, % of copy bandwidth: min {min(acc['peak']):.0f}% / geo-mean "
              f"{geomean(acc['peak']):.0f}% of `fastconv peak`; min {min(acc['copy']):.0f}% / geo-mean "
              f"{geomean(acc['copy']):.0f}% of the same-size copy")
    if acc["scale"]:
        print(f"2-thread / 1-thread throughput, geo-mean over all rows: {geomean(acc['scale']):.2f}x "
              "(suite sizes; many fit in the last-level cache)")


def scaling_table(args):
    llc = _peak._llc_bytes()
    print(f"\n2-thread scaling on arrays larger than the last-level cache ({llc >> 20} MiB); {load()}")
    hdr = f"{'case':18s} {'batch':>5s} {'in MB':>6s} {'pass':7s} {'1t ms':>8s} {'2t ms':>8s} {'2t/1t':>6s} {'1t GB/s':>8s} {'2t GB/s':>8s}"
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
            out.append(t1 / t2)
            print(f"{name:18s} {n:5d} {n * per_bytes / 1e6:6.0f} {label:7s} {t1 * 1e3:8.2f} {t2 * 1e3:8.2f} "
                  f"{t1 / t2:5.2f}x {nbytes / t1 / 1e9:8.1f} {nbytes / t2 / 1e9:8.1f}", flush=True)
    print(f"geo-mean 2-thread / 1-thread: {geomean(out):.2f}x ({len(out)} rows); {load()}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--threads", type=int, default=1, choices=[1],
                    help="base thread count (1; the 2t/1t column and --scaling add 2 threads)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--only", default="", help="substring filter on layer names")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-threads2", dest="threads2", action="store_false",
                    help="skip the 2-thread column of the suite table")
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
    fastconv.set_num_threads(1)
    torch = F = None
    if not args.no_torch and not args.scaling_only:
        try:
            import torch
            import torch.nn.functional as F
            torch.set_num_threads(1)
            torch.set_flush_denormal(True)
        except ImportError:
            torch = None
    peak_bw = _peak.peak_bandwidth(1)
    print(f"fastconv isa={fastconv.config.isa()} threads=1 (and 2 for 2t/1t) repeat={args.repeat} stat={args.stat} "
          f"batch={args.batch}"
          f"{'' if torch else ' (no torch)'}; clock={args.clock}; {load()}")
    print(f"copy bandwidth (`fastconv peak`, 1 thread): "
          f"{'%.1f GB/s' % peak_bw if peak_bw else 'not measured (run `fastconv peak`)'}")
    if not args.scaling_only:
        suite_table(args, torch, F, peak_bw)
    if args.scaling or args.scaling_only:
        scaling_table(args)


if __name__ == "__main__":
    main()
