"""Benchmark fastconv's direct convolution against PyTorch, layer by layer.

Standalone script (no pytest): for every layer of a ResNet-18/50 + VGG-16
forward suite, a first layer (3->64, 7x7, stride 2 on 224x224) and
MobileNet-V2 depthwise 3x3 layers, time fastconv's direct kernel and
``torch.nn.functional.conv2d`` in the same process, alternating, and report
the median of the repeats: GFLOP/s (2 * multiplications / time), % of the
machine's FMA peak, and the speed ratio vs PyTorch (> 1: fastconv faster),
with geometric means per suite.

    python bench/bench_direct.py --threads 1 --repeat 7 --dtype float32
    python bench/bench_direct.py --threads 2 --quick
    python bench/bench_direct.py --threads 1 --clock thread --isa avx2   # compare ISA paths
    python bench/bench_direct.py --clock thread --only l4 --batch 8      # the same layers, batch 8
"""
import argparse
import math
import statistics
import sys
import time

import os

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import fastconv
from fastconv import _kernels, config

# name, (n, c_in, h, w), (c_out, kh, kw), stride, pad, groups
RESNET = [
    ("r18.conv1 7x7s2", (1, 3, 224, 224), (64, 7, 7), 2, 3, 1),
    ("r18.l1 3x3 64", (1, 64, 56, 56), (64, 3, 3), 1, 1, 1),
    ("r18.l2 3x3 s2 64-128", (1, 64, 56, 56), (128, 3, 3), 2, 1, 1),
    ("r18.l2 3x3 128", (1, 128, 28, 28), (128, 3, 3), 1, 1, 1),
    ("r18.l2 ds 1x1 s2", (1, 64, 56, 56), (128, 1, 1), 2, 0, 1),
    ("r18.l3 3x3 s2 128-256", (1, 128, 28, 28), (256, 3, 3), 2, 1, 1),
    ("r18.l3 3x3 256", (1, 256, 14, 14), (256, 3, 3), 1, 1, 1),
    ("r18.l4 3x3 s2 256-512", (1, 256, 14, 14), (512, 3, 3), 2, 1, 1),
    ("r18.l4 3x3 512", (1, 512, 7, 7), (512, 3, 3), 1, 1, 1),
    ("r50.l1 1x1 64-64", (1, 64, 56, 56), (64, 1, 1), 1, 0, 1),
    ("r50.l1 1x1 64-256", (1, 64, 56, 56), (256, 1, 1), 1, 0, 1),
    ("r50.l1 1x1 256-64", (1, 256, 56, 56), (64, 1, 1), 1, 0, 1),
    ("r50.l2 1x1 512-128", (1, 512, 28, 28), (128, 1, 1), 1, 0, 1),
    ("r50.l2 1x1 128-512", (1, 128, 28, 28), (512, 1, 1), 1, 0, 1),
    ("r50.l3 1x1 1024-256", (1, 1024, 14, 14), (256, 1, 1), 1, 0, 1),
    ("r50.l3 1x1 256-1024", (1, 256, 14, 14), (1024, 1, 1), 1, 0, 1),
    ("r50.l4 1x1 2048-512", (1, 2048, 7, 7), (512, 1, 1), 1, 0, 1),
    ("r50.l4 1x1 512-2048", (1, 512, 7, 7), (2048, 1, 1), 1, 0, 1),
    ("r50.l3 ds 1x1 s2 512-1024", (1, 512, 28, 28), (1024, 1, 1), 2, 0, 1),
    ("r18.l1 3x3 64 b8", (8, 64, 56, 56), (64, 3, 3), 1, 1, 1),
    ("r18.l3 3x3 256 b8", (8, 256, 14, 14), (256, 3, 3), 1, 1, 1),
    ("r50.l2 1x1 512-128 b8", (8, 512, 28, 28), (128, 1, 1), 1, 0, 1),
]
VGG = [
    ("vgg.1_2 3x3 64", (1, 64, 224, 224), (64, 3, 3), 1, 1, 1),
    ("vgg.2_1 3x3 64-128", (1, 64, 112, 112), (128, 3, 3), 1, 1, 1),
    ("vgg.2_2 3x3 128", (1, 128, 112, 112), (128, 3, 3), 1, 1, 1),
    ("vgg.3_2 3x3 256", (1, 256, 56, 56), (256, 3, 3), 1, 1, 1),
    ("vgg.4_1 3x3 256-512", (1, 256, 28, 28), (512, 3, 3), 1, 1, 1),
    ("vgg.4_2 3x3 512", (1, 512, 28, 28), (512, 3, 3), 1, 1, 1),
    ("vgg.5_2 3x3 512", (1, 512, 14, 14), (512, 3, 3), 1, 1, 1),
]
FIRST = [
    ("first 3-64 7x7s2 224", (1, 3, 224, 224), (64, 7, 7), 2, 3, 1),
    ("first 3-64 7x7s2 224 b8", (8, 3, 224, 224), (64, 7, 7), 2, 3, 1),
    ("vgg.1_1 3-64 3x3 224", (1, 3, 224, 224), (64, 3, 3), 1, 1, 1),
]
DEPTHWISE = [
    ("mbv2 dw 32 112", (1, 32, 112, 112), (32, 3, 3), 1, 1, 32),
    ("mbv2 dw 96 112 s2", (1, 96, 112, 112), (96, 3, 3), 2, 1, 96),
    ("mbv2 dw 144 56", (1, 144, 56, 56), (144, 3, 3), 1, 1, 144),
    ("mbv2 dw 144 56 s2", (1, 144, 56, 56), (144, 3, 3), 2, 1, 144),
    ("mbv2 dw 192 28", (1, 192, 28, 28), (192, 3, 3), 1, 1, 192),
    ("mbv2 dw 384 14", (1, 384, 14, 14), (384, 3, 3), 1, 1, 384),
    ("mbv2 dw 576 14 s2", (1, 576, 14, 14), (576, 3, 3), 2, 1, 576),
    ("mbv2 dw 960 7", (1, 960, 7, 7), (960, 3, 3), 1, 1, 960),
    ("mbv2 dw 144 56 b8", (8, 144, 56, 56), (144, 3, 3), 1, 1, 144),
]
QUICK = {"r18.l1 3x3 64", "r18.l2 3x3 s2 64-128", "r18.l3 3x3 256", "r18.l4 3x3 512",
         "r50.l1 1x1 256-64", "r50.l3 1x1 256-1024", "vgg.4_2 3x3 512",
         "first 3-64 7x7s2 224", "mbv2 dw 144 56", "mbv2 dw 96 112 s2"}
PEAK_PER_CORE = {"float32": 100.0, "float64": 50.0}


def make_fc_call(x, w, b, y, shape):
    """A closure running fastconv's direct kernel (through conv2d when present)."""
    if hasattr(fastconv, "conv2d"):
        n, cin, h, wd, cout, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw, groups = shape
        return lambda: fastconv.conv2d(x, w, b, stride=(sh, sw), padding=(ph, pw),
                                       dilation=(dh, dw), groups=groups, algo="direct")
    xf, wf, yf = x.reshape(-1), w.reshape(-1), y.reshape(-1)
    bf = None if b is None else b.reshape(-1)
    return lambda: _kernels.conv2d(xf, wf, bf, yf, shape, _kernels.ALGO_DIRECT)


def bench_layer(torch, layer, dtype, repeat, clock=time.perf_counter):
    name, (n, cin, h, wd), (cout, kh, kw), stride, pad, groups = layer
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (n, cin, h, wd)).astype(dtype)
    w = rng.uniform(-1, 1, (cout, cin // groups, kh, kw)).astype(dtype)
    b = rng.uniform(-1, 1, cout).astype(dtype)
    ho = (h + 2 * pad - kh) // stride + 1
    wo = (wd + 2 * pad - kw) // stride + 1
    y = np.empty((n, cout, ho, wo), dtype=dtype)
    shape = (n, cin, h, wd, cout, kh, kw, ho, wo, stride, stride, pad, pad, 1, 1, groups)
    fc_call = make_fc_call(x, w, b, y, shape)
    tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)

    def torch_call():
        with torch.no_grad():
            torch.nn.functional.conv2d(tx, tw, tb, stride, pad, 1, groups)

    mults = n * cout * ho * wo * (cin // groups) * kh * kw
    # warm up (oneDNN creates its primitive on the first calls) and decide
    # how many calls make one sample (>= ~20 ms)
    # a fixed 3 calls were not enough: the first layer timed in a process
    # showed PyTorch at ~40 % of its later speed on the same shape
    t_end = time.perf_counter() + 0.3
    n_warm = 0
    while n_warm < 3 or time.perf_counter() < t_end:
        fc_call(); torch_call()
        n_warm += 1
    t0 = clock(); fc_call(); t1 = clock()
    inner = max(1, int(0.02 / max(t1 - t0, 1e-6)))
    tf, tt = [], []
    for _ in range(repeat):
        # let the other library's idle OpenMP threads stop spinning first
        time.sleep(0.005)
        t0 = clock()
        for _ in range(inner):
            fc_call()
        tf.append((clock() - t0) / inner)
        time.sleep(0.005)
        t0 = clock()
        for _ in range(inner):
            torch_call()
        tt.append((clock() - t0) / inner)
    # correctness guard: a fast wrong kernel must not be reported
    fc_call()
    yt = torch.nn.functional.conv2d(tx.double(), tw.double(), tb.double(), stride, pad, 1, groups).numpy()
    got = y if not hasattr(fastconv, "conv2d") else fc_call()
    err = np.max(np.abs(got - yt)) / max(1.0, np.max(np.abs(yt)))
    if err > (1e-4 if dtype == np.float32 else 1e-10):
        raise SystemExit(f"{name}: fastconv result differs from PyTorch (rel err {err:.2e})")
    mf, mt = statistics.median(tf), statistics.median(tt)
    return 2.0 * mults / mf / 1e9, 2.0 * mults / mt / 1e9, mf, mt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--quick", action="store_true", help="a representative subset")
    ap.add_argument("--suite", choices=["all", "resnet", "vgg", "first", "depthwise"], default="all")
    ap.add_argument("--clock", choices=["wall", "thread"], default="wall",
                    help="thread: CPU time of the calling thread (1 thread only; robust on a busy machine)")
    ap.add_argument("--only", default=None, help="run only layers whose name contains this")
    ap.add_argument("--batch", type=int, default=None,
                    help="run every layer at this batch size instead of the suite's (e.g. 8 for small planes)")
    ap.add_argument("--isa", choices=["baseline", "avx2", "avx512"], default=None,
                    help="force fastconv's ISA path (default: the one chosen at import)")
    args = ap.parse_args(argv)
    if args.batch is not None and args.batch < 1:
        ap.error("--batch must be >= 1")
    if args.clock == "thread" and args.threads != 1:
        ap.error("--clock thread needs --threads 1")
    clock = time.thread_time if args.clock == "thread" else time.perf_counter
    import torch
    torch.set_num_threads(args.threads)
    config.set_num_threads(args.threads)
    if args.isa:
        if args.isa not in config._available_isas():
            ap.error(f"--isa {args.isa}: this machine/build runs {config._available_isas()}")
        config._forced_runtime(isa_name=args.isa).__enter__()   # for the whole run
    if config.isa() == "baseline":
        print("warning: fastconv is running its baseline ISA path", file=sys.stderr)
    dtype = np.dtype(args.dtype)
    # the first PyTorch convolutions of a process are slow (oneDNN set-up):
    # run some before timing anything
    with torch.no_grad():
        xw = torch.rand(1, 3, 224, 224, dtype=getattr(torch, args.dtype))
        ww = torch.rand(64, 3, 7, 7, dtype=xw.dtype)
        t_end = time.perf_counter() + 0.5
        while time.perf_counter() < t_end:
            torch.nn.functional.conv2d(xw, ww, None, 2, 3)
    # the measured FMA peak (`fastconv peak`) when cached, else a nominal one
    import importlib
    _peak = importlib.import_module("fastconv.peak")   # the module (fastconv.peak is also a function)
    measured = _peak.peak_gflops(args.dtype, args.threads, measure=False)
    peak = measured or PEAK_PER_CORE[args.dtype] * args.threads
    suites = {"resnet": RESNET, "vgg": VGG, "first": FIRST, "depthwise": DEPTHWISE}
    if args.suite != "all":
        suites = {args.suite: suites[args.suite]}
    print(f"fastconv direct (isa {config.isa()}) vs torch {torch.__version__} | {args.dtype} | "
          f"threads={args.threads} | repeat={args.repeat} | clock={args.clock} | "
          f"peak {'measured' if measured else 'assumed'} {peak:.0f} GFLOP/s")
    hdr = f"{'layer':<28} {'fc GF/s':>8} {'%peak':>6} {'torch GF/s':>10} {'ratio':>6}"
    ratios_all = {}
    # the first layer timed in a process measured PyTorch at half its later
    # speed on the same shape even after the per-layer warm-up (r18.conv1:
    # 63 vs 123 GFLOP/s), so one throwaway layer runs before the tables
    bench_layer(torch, FIRST[0], dtype, 1, clock)
    for sname, layers in suites.items():
        print(f"\n[{sname}]\n{hdr}")
        ratios = []
        for layer in layers:
            if args.quick and layer[0] not in QUICK:
                continue
            if args.only and args.only not in layer[0]:
                continue
            if args.batch is not None:
                name, xs = layer[0], layer[1]
                layer = (f"{name} @b{args.batch}", (args.batch,) + tuple(xs[1:])) + tuple(layer[2:])
            gf, gt, _, _ = bench_layer(torch, layer, dtype, args.repeat, clock)
            ratios.append(gf / gt)
            print(f"{layer[0]:<28} {gf:8.1f} {100 * gf / peak:6.1f} {gt:10.1f} {gf / gt:6.2f}", flush=True)
        if ratios:
            gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
            ratios_all[sname] = ratios
            print(f"{'geo-mean ratio':<28} {'':>8} {'':>6} {'':>10} {gm:6.2f}")
    rv = ratios_all.get("resnet", []) + ratios_all.get("vgg", [])
    if rv:
        gm = math.exp(sum(math.log(r) for r in rv) / len(rv))
        print(f"\nResNet+VGG geo-mean ratio vs torch: {gm:.2f}")


if __name__ == "__main__":
    main()
