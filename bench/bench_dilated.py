"""Dilated (atrous) convolution benchmark: fastconv's algorithms side by side with PyTorch.

Layers: DeepLab ASPP-like 3x3 convolutions with rates 2, 4, 6, 12, 18 (padding =
rate, "same" output) at 33x33 and 65x65, and WaveNet-like 1-D dilated
convolutions run as H = 1 convolutions (kernel 1x2, dilations 1..512, 64
channels).  For every layer and pass (forward; backward = grad input + grad
weight) it times fastconv's direct (native dilation), im2col (when its kernels
are available) and dilated (space-to-batch decomposition: AVX2 row kernels for the
1-D layers, per-tap GEMMs or stacked sub-images through the direct kernels for
the 2-D ones) algorithms and PyTorch, in one
process, alternating, and prints the median time, GFLOP/s (dense convention:
2 * mults) and the speed-up over PyTorch, then geometric means.

Usage:  python bench/bench_dilated.py [--threads 1] [--repeat 7] [--quick] [--dtype float32]
                                      [--clock wall|cpu] [--algos dilated] [--only aspp33]
Issue 5's targets (1 thread): dilated forward >= 1.2x PyTorch geo-mean,
dilated backward (input + weight) >= 1.5x.
"""
import argparse
import math
import os
import statistics
import sys
import time

import numpy as np


def _layers(quick):
    """(name, n, c_in, c_out, h, w, kernel, padding, dilation) for the suite."""
    out = []
    aspp = [(33, 256 if not quick else 128), (65, 128 if not quick else 64)]
    for size, c in aspp:
        for rate in (2, 4, 6, 12, 18):
            out.append((f"aspp{size}_r{rate}", 1, c, c, size, size, (3, 3), (rate, rate), (rate, rate)))
    length = 4096 if quick else 16000
    dils = (1, 4, 32, 512) if quick else (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
    for d in dils:
        out.append((f"wavenet_L{length}_d{d}", 1, 64, 64, 1, length, (1, 2), (0, 0), (1, d)))
    return out


def _out_size(size, k, pad, dil, stride=1):
    return (size + 2 * pad - dil * (k - 1) - 1) // stride + 1


class Layer:
    def __init__(self, spec, dtype, rng):
        self.name, n, c_in, c_out, h, w, k, p, d = spec
        self.ho, self.wo = _out_size(h, k[0], p[0], d[0]), _out_size(w, k[1], p[1], d[1])
        self.stride, self.padding, self.dilation = (1, 1), p, d
        self.shape = (n, c_in, h, w, c_out, k[0], k[1], self.ho, self.wo, 1, 1, p[0], p[1], d[0], d[1], 1)
        self.mults = n * c_out * self.ho * self.wo * c_in * k[0] * k[1]
        self.x = rng.uniform(-1, 1, (n, c_in, h, w)).astype(dtype)
        self.w = rng.uniform(-1, 1, (c_out, c_in) + tuple(k)).astype(dtype)
        self.b = rng.uniform(-1, 1, (c_out,)).astype(dtype)
        self.y = np.empty((n, c_out, self.ho, self.wo), dtype)
        self.gy = rng.uniform(-1, 1, self.y.shape).astype(dtype)
        self.gx = np.empty_like(self.x)
        self.gw = np.empty_like(self.w)


def _fastconv_fns(kernels, layer, algo):
    L = layer
    x, w, b, y, gy, gx, gw = (a.reshape(-1) for a in (L.x, L.w, L.b, L.y, L.gy, L.gx, L.gw))

    def fwd():
        kernels.conv2d(x, w, b, y, L.shape, algo)

    def bwd():
        kernels.conv2d_grad_input(gy, w, gx, L.shape, algo)
        kernels.conv2d_grad_weight(gy, x, gw, L.shape, algo)
    return fwd, bwd


def _torch_fns(torch, layer):
    L = layer
    x, w, b, gy = (torch.from_numpy(a) for a in (L.x, L.w, L.b, L.gy))
    conv = torch.nn.functional.conv2d
    bwd_op = torch.ops.aten.convolution_backward

    def fwd():
        conv(x, w, b, L.stride, L.padding, L.dilation, 1)

    def bwd():
        bwd_op(gy, x, w, None, list(L.stride), list(L.padding), list(L.dilation), False, [0, 0], 1,
               [True, True, False])
    return fwd, bwd


def _works(fn):
    try:
        fn()
        return True
    except (ValueError, NotImplementedError):
        return False


def _time_alternating(fns, repeat, clock=time.perf_counter):
    """Median seconds of each callable, run round-robin `repeat` times after a warm-up."""
    for f in fns.values():
        f()
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = clock()
            f()
            times[k].append(clock() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _geo(v):
    v = [x for x in v if x and x > 0]
    return math.exp(sum(map(math.log, v)) / len(v)) if v else float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="smaller layers, fewer dilations")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--only", default="", help="substring filter on layer names")
    ap.add_argument("--algos", default="direct,im2col,dilated",
                    help="comma-separated fastconv algorithms to time (default: all three)")
    ap.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                    help="cpu: process CPU time (steadier on a shared machine; all threads summed)")
    args = ap.parse_args(argv)

    # run from a source tree: import the fastconv next to this script
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import torch
    from threadpoolctl import threadpool_limits

    import fastconv  # noqa: F401  (loads the BLAS the kernels call)
    from fastconv import _kernels, config

    config.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    # fastconv's OpenMP threads each call the BLAS: keep the BLAS single-threaded.
    blas_limit = threadpool_limits(limits=1, user_api="blas")  # noqa: F841  (kept alive)

    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    rng = np.random.default_rng(0)
    algos = {"direct": _kernels.ALGO_DIRECT, "im2col": _kernels.ALGO_IM2COL,
             "dilated": _kernels.ALGO_DILATED}
    algos = {a: c for a, c in algos.items() if a in args.algos.split(",")}
    print(f"fastconv dilated suite: dtype={args.dtype} threads={args.threads} repeat={args.repeat} "
          f"isa={config.isa()} clock={args.clock} torch={torch.__version__}")
    ratios = {(a, p): [] for a in algos for p in ("fwd", "bwd")}
    hdr = f"{'layer':<22}{'pass':<5}{'GMAC':>8}" + "".join(f"{a + ' ms':>12}{'GF/s':>7}{'x':>6}" for a in algos) \
        + f"{'torch ms':>11}{'GF/s':>7}"
    print(hdr)
    for spec in _layers(args.quick):
        if args.only and args.only not in spec[0]:
            continue
        L = Layer(spec, np.dtype(args.dtype), rng)
        tf, tb = _torch_fns(torch, L)
        for pass_, idx, tfn, flops in (("fwd", 0, tf, 2 * L.mults), ("bwd", 1, tb, 4 * L.mults)):
            fns = {"torch": tfn}
            for a, code in algos.items():
                f = _fastconv_fns(_kernels, L, code)[idx]
                if _works(f):
                    fns[a] = f
            t = _time_alternating(fns, args.repeat, clock)
            row = f"{L.name:<22}{pass_:<5}{L.mults / 1e9:8.3f}"
            for a in algos:
                if a in t:
                    r = t["torch"] / t[a]
                    ratios[(a, pass_)].append(r)
                    row += f"{t[a] * 1e3:12.2f}{flops / t[a] / 1e9:7.1f}{r:6.2f}"
                else:
                    row += f"{'n/a':>12}{'':>7}{'':>6}"
            row += f"{t['torch'] * 1e3:11.2f}{flops / t['torch'] / 1e9:7.1f}"
            print(row, flush=True)
    print("\ngeometric mean speed-up over torch (>1 = fastconv faster):")
    for p, target in (("fwd", 1.2), ("bwd", 1.5)):
        parts = [f"{a} {_geo(ratios[(a, p)]):.2f}x" for a in algos if ratios[(a, p)]]
        print(f"  {p}: " + ", ".join(parts) + f"   (issue 5 target for dilated: {target}x)")


if __name__ == "__main__":
    main()
