"""Pooling benchmark: fastconv vs PyTorch (issue 6 suite).

Times max/avg pooling forward and backward on ResNet/VGG layer sizes
(batch 8, float32, NCHW) for fastconv and PyTorch in the same process,
alternating calls, median of repeats, with the same thread count.  Prints
milliseconds, achieved GB/s (bytes that must cross memory at least once:
input + output for forward; grad_out (+ indices) + grad_input for
backward), that as a % of a plain copy moving the same number of bytes
(numpy copy of a buffer half that size, read + write, timed alternating
with the kernels so machine load affects both alike), and the speed-up
over PyTorch.

    python bench/bench_pool.py --threads 1 --repeat 15
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
from fastconv import pool  # noqa: E402

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


def median_time(fns, repeat):
    """Median seconds of each fn, calls alternating between them."""
    times = [[] for _ in fns]
    for f in fns:  # warm-up
        f()
    for _ in range(repeat):
        for i, f in enumerate(fns):
            t = time.perf_counter()
            f()
            times[i].append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


def copy_gbps(nbytes, repeat):
    src = np.random.default_rng(0).uniform(-1, 1, nbytes // 4).astype(np.float32)
    dst = np.empty_like(src)
    (t,) = median_time([lambda: np.copyto(dst, src)], repeat)
    return 2 * src.nbytes / t / 1e9


def cases(torch, F, name, op, shape, k, s, p):
    """Yields (label, fastconv fn, torch fn or None, bytes moved)."""
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
        if torch:
            tg, tind = torch.from_numpy(g), torch.from_numpy(ind)
            tb = lambda: torch.ops.aten.max_pool2d_with_indices_backward(tg, tx, [k, k], [s, s], [p, p],  # noqa: E731
                                                                          [1, 1], False, tind)
        yield ("bwd idx", lambda: pool.max_pool2d_backward(g, x, k, s, p, indices=ind),
               tb if torch else None, g.nbytes + ind.nbytes + x.nbytes)
        yield ("bwd x", lambda: pool.max_pool2d_backward(g, x, k, s, p),
               tb if torch else None, g.nbytes + 2 * x.nbytes)
    else:
        y = pool.avg_pool2d(x, k, s, p)
        g = rng.uniform(-1, 1, y.shape).astype(np.float32)
        yield ("fwd", lambda: pool.avg_pool2d(x, k, s, p),
               (lambda: F.avg_pool2d(tx, k, s, p)) if torch else None, x.nbytes + y.nbytes)
        if torch:
            tg = torch.from_numpy(g)
            tb = lambda: torch.ops.aten.avg_pool2d_backward(tg, tx, [k, k], [s, s], [p, p], False, True, None)  # noqa: E731
        yield ("bwd", lambda: pool.avg_pool2d_backward(g, x.shape, k, s, p),
               tb if torch else None, g.nbytes + x.nbytes)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--only", default="", help="substring filter on layer names")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args(argv)
    fastconv.set_num_threads(args.threads)
    torch = F = None
    if not args.no_torch:
        try:
            import torch
            import torch.nn.functional as F
            torch.set_num_threads(args.threads)
            torch.set_flush_denormal(True)
        except ImportError:
            torch = None
    print(f"fastconv isa={fastconv.config.isa()} threads={args.threads} repeat={args.repeat}"
          f"{'' if torch else ' (no torch)'}")
    bw = copy_gbps(64 * 2 ** 20, args.repeat)
    print(f"copy bandwidth (numpy, 64 MiB, read+write): {bw:.1f} GB/s")
    hdr = f"{'layer':24s} {'pass':8s} {'fc ms':>8s} {'GB/s':>6s} {'%copy':>6s} {'torch ms':>9s} {'speed-up':>8s}"
    print(hdr)
    print("-" * len(hdr))
    ratios = {"fwd": [], "bwd": []}
    for name, op, shape, k, s, p in SUITE:
        if args.only and args.only not in name:
            continue
        for label, f_fc, f_t, nbytes in cases(torch, F, name, op, shape, k, s, p):
            src = np.ones(nbytes // 8, dtype=np.float32)
            dst = np.empty_like(src)
            fns = [f_fc, lambda: np.copyto(dst, src)] + ([f_t] if f_t else [])
            ts = median_time(fns, args.repeat)
            gbps = nbytes / ts[0] / 1e9
            line = f"{name:24s} {label:8s} {ts[0] * 1e3:8.2f} {gbps:6.1f} {100 * ts[1] / ts[0]:5.0f}%"
            if f_t:
                r = ts[2] / ts[0]
                line += f" {ts[2] * 1e3:9.2f} {r:7.1f}x"
                if label in ("fwd", "bwd", "bwd idx"):
                    ratios["fwd" if label == "fwd" else "bwd"].append(r)
            print(line, flush=True)
    for key, rs in ratios.items():
        if rs:
            print(f"geo-mean speed-up over torch, {key}: {math.exp(sum(map(math.log, rs)) / len(rs)):.1f}x "
                  f"({len(rs)} layers)")


if __name__ == "__main__":
    main()
