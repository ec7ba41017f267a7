"""im2col + BLAS convolution benchmark (issue 4 targets).

Standalone:  python bench/bench_im2col.py [--threads N] [--repeat R] [--quick] [--batch B]
             [--clock cpu] [--only forward|backward|transpose] [--algo auto|direct|im2col]
             [--split]

(a) im2col forward time / bare BLAS GEMM of the same sizes      target <= 1.15
(b) NumPy sliding_window_view + tensordot time / im2col forward  target >= 2
    (also einsum(optimize=True) on the same windows, for reference)
(c) PyTorch backward (grad_input + grad_weight) / fastconv's    target geo-mean >= 1.5 (1 thread)
(d) PyTorch conv_transpose2d / fastconv's                        target >= 1.0

(c) and (d) time the algorithm given by --algo (default auto: what
fastconv.conv2d_backward / conv_transpose2d pick; direct = the forward-kernel
grad input and register-blocked grad weight; im2col = BLAS GEMM + col2im).
--first-layer adds the ResNet 7x7/2 3->64 stem to (c) (not in the geo-mean).

Protocol (DESIGN.md): same process, same thread count for everyone (fastconv,
its BLAS, NumPy's BLAS, PyTorch), the contenders alternate, median of the
repeats, inputs in [-1, 1], float32.  Ratios are quoted because the machine
is shared and noisy.  PyTorch's backward is timed through
torch.ops.aten.convolution_backward, the kernel autograd calls for conv2d.
"""
import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fastconv import _kernels, config  # noqa: E402
from fastconv._blas_threads import single_threaded  # noqa: E402

IM2COL = _kernels.ALGO_IM2COL
ALGO = "auto"   # --algo, for (c) and (d)
SPLIT = False   # --split: (c) times grad input and grad weight separately
CODES = {"direct": _kernels.ALGO_DIRECT, "im2col": _kernels.ALGO_IM2COL,
         "dilated": _kernels.ALGO_DILATED}
FIRST_LAYER = ("resnet stem 7x7/2", 3, 224, 64, 7, 2, 3)


def resolve(op, st):
    """(name, code) of the algorithm --algo means for this conv shape tuple."""
    from fastconv import conv
    name = conv.resolve_algo(ALGO, op, st, np.dtype(np.float32),
                             ("input", "weight") if op == "conv2d_backward" else None)
    return name, CODES[name]

# name, c_in, h(=w), c_out, k, stride, pad
LAYERS = [
    ("resnet-2x 3x3", 64, 56, 64, 3, 1, 1),
    ("resnet-3x 3x3", 128, 28, 128, 3, 1, 1),
    ("resnet-4x 3x3", 256, 14, 256, 3, 1, 1),
    ("resnet-5x 3x3", 512, 7, 512, 3, 1, 1),
    ("resnet-3x down", 64, 56, 128, 3, 2, 1),
    ("resnet 1x1 red", 256, 56, 64, 1, 1, 0),
    ("resnet 1x1 exp", 128, 28, 512, 1, 1, 0),
    ("vgg conv2", 128, 112, 128, 3, 1, 1),
    ("vgg conv3", 256, 56, 256, 3, 1, 1),
    ("vgg conv4", 512, 28, 512, 3, 1, 1),
]
QUICK = {"resnet-2x 3x3", "resnet-4x 3x3", "resnet-5x 3x3", "resnet 1x1 red", "vgg conv3"}

# transposed convs (decoder / FCN style): name, c_in, h, c_out, k, stride, pad, output_padding
TLAYERS = [
    ("up 512->256 7->14", 512, 7, 256, 3, 2, 1, 1),
    ("up 256->128 14->28", 256, 14, 128, 4, 2, 1, 0),
    ("up 128->64 28->56", 128, 28, 64, 4, 2, 1, 0),
    ("up 64->32 56->112", 64, 56, 32, 4, 2, 1, 0),
]


def out_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def shape_tuple(n, c_in, h, c_out, k, s, p):
    ho = out_size(h, k, s, p)
    return (n, c_in, h, h, c_out, k, k, ho, ho, s, s, p, p, 1, 1, 1)


CLOCK = time.perf_counter


def alternate(funcs, repeat):
    """Median seconds of each function, run alternately after one warm-up each."""
    for f in funcs:
        f()
    times = [[] for _ in funcs]
    for _ in range(repeat):
        for i, f in enumerate(funcs):
            t0 = CLOCK()
            f()
            times[i].append(CLOCK() - t0)
    return [float(np.median(t)) for t in times]


def geomean(v):
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else float("nan")


def rand(rng, shape):
    return rng.uniform(-1, 1, size=shape).astype(np.float32)


def bench_forward(layers, n, repeat, rng):
    from scipy.linalg import blas
    print("\n(a)(b) forward: im2col vs bare GEMM (same sizes) and vs NumPy sliding_window_view+tensordot")
    print(f"{'layer':<16} {'GFLOP':>6} {'im2col ms':>9} {'GFLOP/s':>8} {'gemm ms':>8} "
          f"{'overhead':>8} {'tdot ms':>9} {'speedup':>7} {'einsum ms':>9} {'speedup':>7}")
    over, speed, speed_e = [], [], []
    for name, c_in, h, c_out, k, s, p in layers:
        st = shape_tuple(n, c_in, h, c_out, k, s, p)
        ho = st[7]
        x = rand(rng, (n, c_in, h, h))
        w = rand(rng, (c_out, c_in, k, k))
        y = np.empty((n, c_out, ho, ho), np.float32)
        K, M = c_in * k * k, n * ho * ho
        a = np.asfortranarray(rand(rng, (M, K)))
        b = np.asfortranarray(rand(rng, (K, c_out)))
        c = np.zeros((M, c_out), np.float32, order="F")
        xf, wf, yf = x.reshape(-1), w.reshape(-1), y.reshape(-1)

        def fc_fwd():
            with single_threaded():
                _kernels.conv2d(xf, wf, None, yf, st, IM2COL)

        def gemm():
            blas.sgemm(1.0, a, b, 0.0, c, overwrite_c=1)

        def windows():
            xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
            return np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]

        def numpy_fwd():
            return np.tensordot(windows(), w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)

        def einsum_fwd():
            return np.einsum("nchwij,ocij->nohw", windows(), w, optimize=True)

        ref = numpy_fwd()
        fc_fwd()
        assert np.allclose(y, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max()), name
        t_fc, t_gemm, t_np, t_ein = alternate([fc_fwd, gemm, numpy_fwd, einsum_fwd], repeat)
        gflop = 2.0 * M * K * c_out / 1e9
        over.append(t_fc / t_gemm)
        speed.append(t_np / t_fc)
        speed_e.append(t_ein / t_fc)
        print(f"{name:<16} {gflop:6.2f} {t_fc*1e3:9.2f} {gflop/t_fc:8.1f} {t_gemm*1e3:8.2f} "
              f"{over[-1]:8.3f} {t_np*1e3:9.2f} {speed[-1]:7.2f} {t_ein*1e3:9.2f} {speed_e[-1]:7.2f}")
    print(f"geo-mean overhead vs bare GEMM: {geomean(over):.3f} (max {max(over):.3f}; target <= 1.15)")
    print(f"geo-mean speed-up vs NumPy tensordot:       {geomean(speed):.2f} (min {min(speed):.2f}; "
          "target >= 2)")
    print(f"geo-mean speed-up vs NumPy einsum(optimize): {geomean(speed_e):.2f} (min {min(speed_e):.2f})")
    return over, speed


def bench_backward(layers, n, repeat, rng, torch, extra=()):
    print(f"\n(c) backward grad_input + grad_weight: fastconv (--algo {ALGO}) vs torch convolution_backward")
    print(f"{'layer':<17} {'algo':<7} {'GFLOP':>6} {'fastconv ms':>11} {'GFLOP/s':>8} {'torch ms':>9} "
          f"{'GFLOP/s':>8} {'speedup':>7}")
    speed = []
    for name, c_in, h, c_out, k, s, p in list(layers) + list(extra):
        st = shape_tuple(n, c_in, h, c_out, k, s, p)
        ho = st[7]
        x = rand(rng, (n, c_in, h, h))
        w = rand(rng, (c_out, c_in, k, k))
        gy = rand(rng, (n, c_out, ho, ho))
        gx = np.empty_like(x)
        gw = np.empty_like(w)
        xf, wf, gyf, gxf, gwf = (v.reshape(-1) for v in (x, w, gy, gx, gw))
        xt, wt, gyt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(gy)
        aname, code = resolve("conv2d_backward", st)

        def fc_bwd():
            with single_threaded():
                _kernels.conv2d_grad_input(gyf, wf, gxf, st, code)
                _kernels.conv2d_grad_weight(gyf, xf, gwf, st, code)

        def torch_bwd():
            return torch.ops.aten.convolution_backward(gyt, xt, wt, None, [s, s], [p, p], [1, 1],
                                                       False, [0, 0], 1, [True, True, False])

        fc_bwd()
        rgx, rgw, _ = torch_bwd()
        assert np.allclose(gx, rgx.numpy(), rtol=1e-3, atol=1e-3 * float(rgx.abs().max())), name
        assert np.allclose(gw, rgw.numpy(), rtol=1e-3, atol=1e-3 * float(rgw.abs().max())), name
        gflop = 2 * 2.0 * n * ho * ho * c_in * k * k * c_out / 1e9
        if SPLIT:
            # grad input and grad weight timed on their own, each against
            # torch computing only that gradient
            def fc_gin():
                with single_threaded():
                    _kernels.conv2d_grad_input(gyf, wf, gxf, st, code)

            def fc_gw():
                with single_threaded():
                    _kernels.conv2d_grad_weight(gyf, xf, gwf, st, code)

            def t_gin():
                return torch.ops.aten.convolution_backward(gyt, xt, wt, None, [s, s], [p, p], [1, 1],
                                                           False, [0, 0], 1, [True, False, False])

            def t_gw():
                return torch.ops.aten.convolution_backward(gyt, xt, wt, None, [s, s], [p, p], [1, 1],
                                                           False, [0, 0], 1, [False, True, False])
            a_i, b_i, a_w, b_w = alternate([fc_gin, t_gin, fc_gw, t_gw], repeat)
            t_fc, t_t = a_i + a_w, b_i + b_w
            g2 = gflop / 2
            print(f"{name:<17} {aname:<7} {gflop:6.2f} {t_fc*1e3:11.2f} {gflop/t_fc:8.1f} {t_t*1e3:9.2f} "
                  f"{gflop/t_t:8.1f} {t_t/t_fc:7.2f}   gin {g2/a_i:6.1f} vs {g2/b_i:6.1f} ({b_i/a_i:4.2f})"
                  f"  gw {g2/a_w:6.1f} vs {g2/b_w:6.1f} ({b_w/a_w:4.2f})")
            speed.append(t_t / t_fc)
            continue
        t_fc, t_t = alternate([fc_bwd, torch_bwd], repeat)
        speed.append(t_t / t_fc)
        print(f"{name:<17} {aname:<7} {gflop:6.2f} {t_fc*1e3:11.2f} {gflop/t_fc:8.1f} {t_t*1e3:9.2f} "
              f"{gflop/t_t:8.1f} {speed[-1]:7.2f}")
    speed = speed[:len(layers)]
    print(f"geo-mean backward speed-up vs torch: {geomean(speed):.2f} (target >= 1.5 at 1 thread)")
    return speed


def bench_transpose(n, repeat, rng, torch):
    print(f"\n(d) conv_transpose2d forward: fastconv (grad-input machinery, --algo {ALGO}) vs torch")
    print(f"{'layer':<20} {'algo':<7} {'GFLOP':>6} {'fastconv ms':>11} {'GFLOP/s':>8} {'torch ms':>9} "
          f"{'speedup':>7}")
    speed = []
    for name, c_in, h, c_out, k, s, p, op in TLAYERS:
        ho = (h - 1) * s - 2 * p + (k - 1) + op + 1
        # the forward conv whose grad_input this is: (n, c_out, ho, ho) -> (n, c_in, h, h)
        st = (n, c_out, ho, ho, c_in, k, k, h, h, s, s, p, p, 1, 1, 1)
        x = rand(rng, (n, c_in, h, h))
        w = rand(rng, (c_in, c_out, k, k))
        y = np.empty((n, c_out, ho, ho), np.float32)
        xf, wf, yf = x.reshape(-1), w.reshape(-1), y.reshape(-1)
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)
        aname, code = resolve("conv_transpose2d", st)

        def fc_t():
            with single_threaded():
                _kernels.conv2d_grad_input(xf, wf, yf, st, code)

        def torch_t():
            return torch.nn.functional.conv_transpose2d(xt, wt, None, s, p, op)

        fc_t()
        ref = torch_t().numpy()
        assert np.allclose(y, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max()), name
        t_fc, t_t = alternate([fc_t, torch_t], repeat)
        gflop = 2.0 * n * h * h * c_in * c_out * k * k / 1e9
        speed.append(t_t / t_fc)
        print(f"{name:<20} {aname:<7} {gflop:6.2f} {t_fc*1e3:11.2f} {gflop/t_fc:8.1f} {t_t*1e3:9.2f} "
              f"{speed[-1]:7.2f}")
    print(f"geo-mean conv_transpose2d speed-up vs torch: {geomean(speed):.2f} (target >= 1.0)")
    return speed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="fewer layers, batch 1, 3 repeats")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall: perf_counter (the protocol); cpu: this thread's CPU time, which "
                         "ignores time stolen by other processes on a shared machine (1 thread only)")
    ap.add_argument("--only", choices=["forward", "backward", "transpose"], default=None)
    ap.add_argument("--algo", choices=["auto", "direct", "im2col", "dilated"], default="auto",
                    help="algorithm timed in (c) and (d) (default auto: what fastconv picks)")
    ap.add_argument("--first-layer", action="store_true",
                    help="also time the ResNet 7x7/2 stem in (c) (not in the geo-mean)")
    ap.add_argument("--split", action="store_true",
                    help="(c): also time grad input and grad weight separately (GFLOP/s vs torch's)")
    args = ap.parse_args(argv)
    if args.quick:
        args.batch, args.repeat = 1, min(args.repeat, 3)
    global CLOCK, ALGO, SPLIT
    ALGO = args.algo
    SPLIT = args.split
    if args.clock == "cpu":
        if args.threads != 1:
            ap.error("--clock cpu measures the calling thread only: use it with --threads 1")
        CLOCK = time.thread_time
    layers = [l for l in LAYERS if not args.quick or l[0] in QUICK]

    import threadpoolctl
    threadpoolctl.threadpool_limits(args.threads)   # NumPy's and SciPy's BLAS
    config.set_num_threads(args.threads)
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    print(f"threads={args.threads} batch={args.batch} repeat={args.repeat} isa={config.isa()} "
          f"clock={args.clock} workspace_limit={config.get_workspace_limit()} torch={getattr(torch, '__version__', None)}")
    rng = np.random.default_rng(0)
    if args.only in (None, "forward"):
        bench_forward(layers, args.batch, args.repeat, rng)
    if torch is None:
        print("torch not installed: (c) and (d) skipped")
        return
    if args.only in (None, "backward"):
        bench_backward(layers, args.batch, args.repeat, rng, torch,
                       [FIRST_LAYER] if args.first_layer else [])
    if args.only in (None, "transpose"):
        bench_transpose(args.batch, args.repeat, rng, torch)


if __name__ == "__main__":
    main()
