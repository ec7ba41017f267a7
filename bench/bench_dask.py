"""A conv stack over a Dask array larger than one chunk, against the in-memory run (issue 10).

Builds a lazy NCHW input cut into spatial (and batch) chunks, runs a layer
stack through ``fastconv.dask.sequential`` (fused: one halo exchange for the
whole stack; and split: one per layer), and prints, per variant, what
``fastconv.dask.cost`` predicts -- total FLOPs including the work redone on
halos, halo bytes moved, rechunk bytes, peak per-task footprint, tasks --
next to the measured time of the dask computation (threaded scheduler,
``--workers`` threads, fastconv held to 1 thread per task so the two do not
oversubscribe) and of the in-memory fastconv stack on the whole array
(``--workers`` fastconv threads: the same cores).  Times are medians of
``--repeat`` runs, the variants alternating; quote ratios (shared machines).

    python bench/bench_dask.py                       # 2 x 3 x 1024 x 1024, 256 x 256 chunks
    python bench/bench_dask.py --size 2048 --chunk 512 --workers 2 --repeat 5
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dask  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
import dask.array as da  # noqa: E402

import fastconv as fc  # noqa: E402
import fastconv.dask as fcd  # noqa: E402
from fastconv import _layers  # noqa: E402

STACK = "conv(16,3,p=1) maxpool(2) conv(32,3,s=2,p=1) conv(32,3,p=1)"


def make_params(spec, c_in, dtype, rng):
    params, c = [], c_in
    for layer in _layers.as_layers(spec):
        if isinstance(layer, _layers.Conv):
            w = rng.uniform(-0.3, 0.3, (layer.out, c // layer.groups) + layer.kernel).astype(dtype)
            params.append((w, rng.uniform(-1, 1, layer.out).astype(dtype)) if layer.bias else w)
            c = layer.out
    return params


def in_memory(spec, x, params):
    pi = 0
    for layer in _layers.as_layers(spec):
        if isinstance(layer, _layers.Conv):
            p = params[pi]
            pi += 1
            w, b = p if isinstance(p, tuple) else (p, None)
            x = fc.conv2d(x, w, b, layer.stride, layer.padding, layer.dilation, layer.groups)
        else:
            fn = fc.max_pool2d if layer.mode == "max" else fc.avg_pool2d
            x = fn(x, layer.kernel, layer.stride, layer.padding)
    return x


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stack", default=STACK)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--size", type=int, default=1024, help="H = W of the input")
    ap.add_argument("--chunk", type=int, default=256, help="spatial chunk (H and W)")
    ap.add_argument("--batch-chunk", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2, help="dask threads = in-memory fastconv threads")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    dtype = np.dtype(args.dtype)
    shape = (args.batch, args.channels, args.size, args.size)
    x_np = rng.uniform(-1, 1, shape).astype(dtype)
    chunks = (args.batch_chunk, args.channels, args.chunk, args.chunk)
    x = da.from_array(x_np, chunks=chunks)
    params = make_params(args.stack, args.channels, dtype, rng)

    print(f"stack: {args.stack}")
    print(f"input {'x'.join(map(str, shape))} {dtype} ({x_np.nbytes / 1e6:.1f} MB), chunks "
          f"{chunks} ({x.npartitions} chunks of {np.prod(chunks) * dtype.itemsize / 1e6:.2f} MB); "
          f"{args.workers} dask threads x 1 fastconv thread vs in-memory with "
          f"{args.workers} fastconv threads")

    variants = {"fused": fcd.sequential(args.stack, x, params, fuse=True),
                "per-layer": fcd.sequential(args.stack, x, params, fuse=False)}

    def run_mem():
        with fc.config._forced_runtime(threads=args.workers):
            return in_memory(args.stack, x_np, params)

    def run_dask(y):
        def go():
            # BLAS held at one thread for the whole compute (see fastconv.dask's docstring)
            with fc.config._forced_runtime(threads=1), threadpool_limits(1, user_api="blas"), \
                    dask.config.set(scheduler="threads", num_workers=args.workers):
                return y.compute()
        return go

    want = run_mem()
    fns = {"in-memory": run_mem}
    for name, y in variants.items():
        got = run_dask(y)()
        err = float(np.max(np.abs(got - want)))
        assert np.allclose(got, want, rtol=1e-4, atol=1e-4), (name, err)
        fns[name] = run_dask(y)
    times = {k: [] for k in fns}
    for _ in range(args.repeat):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}

    mem_flops = fc.summary(args.stack, shape).totals["flops"]
    print()
    head = (f"{'variant':10} {'GFLOP':>8} {'redone':>8} {'halo MB':>8} {'rechunk MB':>10} "
            f"{'peak task MB':>12} {'tasks':>6} {'ms':>9} {'vs mem':>7} {'GFLOP/s':>8}")
    print(head)
    print("-" * len(head))
    print(f"{'in-memory':10} {mem_flops / 1e9:8.3f} {'':>8} {'':>8} {'':>10} "
          f"{(x_np.nbytes + want.nbytes) / 1e6:12.1f} {1:6d} {med['in-memory'] * 1e3:9.1f} "
          f"{1.0:7.2f} {mem_flops / med['in-memory'] / 1e9:8.2f}")
    for name, y in variants.items():
        c = fcd.cost(y)
        t = med[name]
        print(f"{name:10} {c.flops / 1e9:8.3f} {c.redundant_flops / c.in_memory_flops:+8.2%} "
              f"{c.halo_bytes / 1e6:8.2f} {c.rechunk_bytes / 1e6:10.2f} "
              f"{c.peak_task_bytes / 1e6:12.2f} {c.tasks:6d} {t * 1e3:9.1f} "
              f"{t / med['in-memory']:7.2f} {c.flops / t / 1e9:8.2f}")
    print("\n(in-memory 'peak task MB' = input + output arrays; 'redone' = FLOPs beyond the "
          "in-memory run, from halo recompute; results checked equal to the in-memory run)")
    for name, y in variants.items():
        print(f"\n{name}:\n{fcd.cost(y)}")


if __name__ == "__main__":
    main()
