"""The ``fastconv`` command: bench, cost, summary, peak, info.

Run ``fastconv -h`` or ``fastconv COMMAND -h`` for the options.
"""
import argparse
import json
import os
import sys

__all__ = ["main"]


# ---------------------------------------------------------------- argument types


def _shape(text):
    """'1x3x256x256' -> (1, 3, 256, 256)."""
    parts = text.lower().replace(",", "x").replace("*", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid shape {text!r}: expected integers joined by 'x', e.g. 1x3x224x224")
    if any(d < 0 for d in dims):
        raise argparse.ArgumentTypeError(f"invalid shape {text!r}: dimensions must be >= 0")
    return dims


def _int_or_pair(text):
    """'2' -> 2, '2x3' or '2,3' -> (2, 3)."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected an int or AxB")
    if len(vals) == 1:
        return vals[0]
    if len(vals) == 2:
        return tuple(vals)
    raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected an int or AxB")


def _padding(text):
    if text.lower() in ("same", "valid"):
        return text.lower()
    return _int_or_pair(text)


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int {text!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _thread_list(text):
    return [_positive_int(t) for t in text.split(",") if t.strip()]


def _dtype(text):
    t = text.lower()
    aliases = {"f32": "float32", "fp32": "float32", "float32": "float32", "float": "float32",
               "f64": "float64", "fp64": "float64", "float64": "float64", "double": "float64"}
    if t not in aliases:
        raise argparse.ArgumentTypeError(f"invalid dtype {text!r}: choose float32 or float64")
    return aliases[t]


def _suite_list(text):
    from . import _suites
    names = [s.strip() for s in text.split(",") if s.strip()]
    if names == ["all"]:
        return _suites.names()
    for n in names:
        if n not in _suites.SUITES:
            raise argparse.ArgumentTypeError(
                f"unknown suite {n!r}; choose from {', '.join(_suites.names())} or all")
    return names


def _fmt_shape(s):
    if s is None:
        return "-"
    if any(isinstance(d, (tuple, list)) or d is None for d in s):   # several outputs
        return ", ".join(_fmt_shape(x) for x in s)
    return "x".join(str(int(d)) for d in s)


def _fmt_bytes(n):
    n = int(n)
    if n < 1024:
        return f"{n:,} B"
    v, unit = float(n), "B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        v /= 1024
        if v < 1024:
            break
    return f"{n:,} B ({v:.2f} {unit})"


# ---------------------------------------------------------------- cost


_CONV_OPS = ("conv2d", "conv2d_backward", "conv_transpose2d")
_POOL_OPS = ("max_pool2d", "avg_pool2d", "max_pool2d_backward", "avg_pool2d_backward")


def _cost_kwargs(a):
    kw = {"input_shape": a.input, "dtype": a.dtype}
    def put(name, value):
        if value is not None:
            kw[name] = value
    if a.op in _CONV_OPS:
        if a.weight is None:
            raise ValueError(f"{a.op} needs --weight")
        kw["weight_shape"] = a.weight
        put("stride", a.stride)
        put("padding", a.padding)
        put("dilation", a.dilation)
        put("groups", a.groups)
        if a.bias:
            kw["bias"] = True
        if a.op == "conv_transpose2d":
            put("output_padding", a.output_padding)
        if a.op == "conv2d_backward" and a.needs:
            kw["needs"] = tuple(n.strip() for n in a.needs.split(",") if n.strip())
    else:
        if a.kernel is None:
            raise ValueError(f"{a.op} needs --kernel")
        kw["kernel_size"] = a.kernel
        put("stride", a.stride)
        put("padding", a.padding)
        if a.ceil_mode:
            kw["ceil_mode"] = True
        if a.op.startswith("max"):
            put("dilation", a.dilation)
        else:
            if a.no_count_include_pad:
                kw["count_include_pad"] = False
            put("divisor_override", a.divisor_override)
    return kw


def _cost_lines(c):
    label = "grad shapes (in, w, b)" if getattr(c, "op", "") == "conv2d_backward" else "output shape"
    rows = [(label, _fmt_shape(c.output_shape)), ("params", f"{int(c.params):,}")]
    rows.append(("mults", f"{int(c.mults):,}"))
    rows.append(("adds", f"{int(c.adds):,}"))
    if getattr(c, "comparisons", 0):
        rows.append(("comparisons", f"{int(c.comparisons):,}"))
    rows.append(("flops", f"{int(c.flops):,}"))
    for name, label in (("effective_mults", "mults (no padding taps)"),
                        ("effective_adds", "adds (no padding taps)"),
                        ("effective_comparisons", "comparisons (no padding)")):
        v = getattr(c, name, None)
        if v is not None and (v or name != "effective_comparisons" or getattr(c, "comparisons", 0)):
            rows.append((label, f"{int(v):,}"))
    for k in ("input", "weight", "bias", "output"):
        if k in c.bytes:
            rows.append((f"bytes {k}", _fmt_bytes(c.bytes[k])))
    rows.append(("intensity", f"{c.intensity:.2f} flop/byte"))
    w = max(len(r[0]) for r in rows)
    return [f"  {k:<{w}}  {v}" for k, v in rows]


def _cmd_cost(a):
    from . import cost as _cost
    import fastconv as fc
    kw = _cost_kwargs(a)
    fn = getattr(_cost, a.op)
    head = f"{a.op}  input {_fmt_shape(a.input)}"
    if a.op in _CONV_OPS:
        head += f"  weight {_fmt_shape(a.weight)}"
    opts = {k: v for k, v in kw.items() if k not in ("input_shape", "weight_shape", "dtype")}
    head += "".join(f"  {k}={v}" for k, v in opts.items()) + f"  [{a.dtype}]"
    out = [head]
    if a.op in _CONV_OPS:
        try:
            algos = [x for x in fc.algorithms(a.op) if x != "auto"]
        except Exception:
            algos = ["direct"]
        results = []
        for algo in algos:
            try:
                results.append((algo, fn(**kw, algo=algo), None))
            except ValueError as e:
                results.append((algo, None, str(e)))
        ok = [r for r in results if r[1] is not None]
        if not ok:
            raise ValueError(results[0][2] if results else f"no algorithm for {a.op}")
        base = ok[0][1]
        out += _cost_lines(base)
        if getattr(base, "parts", None):
            for part, pc in base.parts.items():
                if pc is None:
                    continue
                out.append(f"  grad {part}: mults {int(pc.mults):,}  adds {int(pc.adds):,}  flops {int(pc.flops):,}")
        out.append("")
        out.append("  per algorithm:")
        table = [("algo", "mults", "adds", "workspace", "footprint")]
        for algo, c, err in results:
            if c is None:
                table.append((algo, "n/a", "", "", err[:70]))
            else:
                table.append((algo, f"{int(c.mults):,}", f"{int(c.adds):,}",
                              _fmt_bytes(c.bytes.get("workspace", 0)), _fmt_bytes(c.footprint)))
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        for i, r in enumerate(table):
            out.append("    " + "  ".join(x.ljust(w) if j == 0 else x.rjust(w)
                                          for j, (x, w) in enumerate(zip(r, widths))).rstrip())
    else:
        c = fn(**kw)
        out += _cost_lines(c)
        out.append(f"  {'workspace':<23}  {_fmt_bytes(c.bytes.get('workspace', 0))}")
        out.append(f"  {'footprint':<23}  {_fmt_bytes(c.footprint)}")
    print("\n".join(out))
    return 0


# ---------------------------------------------------------------- summary / info / peak


def _cmd_summary(a):
    import fastconv as fc
    shape = a.input
    if a.batch is not None:
        shape = (a.batch,) + tuple(shape[-3:])
    res = fc.summary(a.layers, shape)
    print(res if isinstance(res, str) else str(res))
    return 0


def _cmd_info(a):
    from .config import show_config
    show_config()
    from .peak import cached_peak
    p = cached_peak()
    if p:
        print(f"peak (cached): fp32 {p['fma_gflops']['float32']['all']:.1f} GFLOP/s, "
              f"fp64 {p['fma_gflops']['float64']['all']:.1f} GFLOP/s, "
              f"copy {p['copy_gbps']['all']:.1f} GB/s on {p['threads_all']} threads")
    return 0


def format_peak(p):
    n = p["threads_all"]
    lines = [f"machine : {p['hostname']}  |  {p['cpu']}  |  isa {p['isa']}",
             f"          {'1 thread':>14}  {f'{n} threads':>14}"]
    for dt in ("float32", "float64"):
        g = p["fma_gflops"][dt]
        lines.append(f"{dt:<8}: {g['1']:>8.1f} GFLOP/s  {g['all']:>8.1f} GFLOP/s   (FMA peak)")
    b = p["copy_gbps"]
    lines.append(f"{'copy':<8}: {b['1']:>8.1f} GB/s     {b['all']:>8.1f} GB/s      (read + write)")
    src = "cached" if p.get("cached") else "measured"
    lines.append(f"{src} {p.get('measured_at', '')}" + (f"  ->  {p['cache_file']}" if p.get("cache_file") else ""))
    return "\n".join(lines)


def _cmd_peak(a):
    from .peak import peak, DEFAULT_DURATION
    if a.duration is not None and not a.duration > 0:
        raise ValueError(f"--duration must be > 0 seconds, got {a.duration}")
    tty = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    measuring = a.refresh or not _has_cache()
    if measuring and not a.json:
        msg = "measuring FMA peak and copy bandwidth..."
        print(msg, end="" if tty else "\n", file=sys.stderr, flush=True)
    p = peak(refresh=a.refresh, duration=a.duration or DEFAULT_DURATION)
    if measuring and not a.json and tty:
        print("\r" + " " * 45 + "\r", end="", file=sys.stderr, flush=True)
    if a.json:
        print(json.dumps(p, indent=2, sort_keys=True))
    else:
        print(format_peak(p))
    return 0


def _has_cache():
    from .peak import cached_peak
    return cached_peak() is not None


# ---------------------------------------------------------------- bench


def _cmd_bench(a):
    from . import _bench, _suites, config
    from .peak import peak
    suites = a.suite or _suites.names()
    if a.list:
        for s in _suites.names():
            print(f"{s}:")
            for L in _suites.SUITES[s]:
                print(f"  {L.name:<26} {L.op:<11} {L.describe()}")
        print("quick:")
        for s, L in _suites.QUICK:
            print(f"  {s + '/' + L.name:<26} {L.op:<11} {L.describe()}")
        return 0
    passes = ("fwd", "bwd") if a.passes == "both" else (a.passes,)
    threads_list = a.threads or [config.get_num_threads()]
    if a.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ValueError("--plot needs matplotlib: pip install 'fastconv[plot]'")
    print("fastconv bench" + (" --quick" if a.quick else "") + f": suites {', '.join(suites)}; "
          f"dtype {a.dtype}; passes {', '.join(passes)}", flush=True)
    if not _has_cache():
        print("measuring machine peak once (cached for later runs; `fastconv peak --refresh` re-measures)...",
              file=sys.stderr, flush=True)
    pk = peak(duration=0.15 if a.quick else 0.3)
    print(format_peak(pk), flush=True)
    cfg = config._config_dict()
    wait = os.environ.get("OMP_WAIT_POLICY", "default")
    print(f"fastconv {cfg['version']} | isa {cfg['isa']} | BLAS {cfg['blas']} | OMP_WAIT_POLICY={wait}",
          flush=True)
    torch = None if a.no_torch else _bench._torch()
    print("PyTorch: " + (f"{torch.__version__} (same thread count, alternating, median)"
                         if torch is not None else "not available (install torch for the comparison)"))
    print("* = the algorithm algo='auto' picks; ms = median; GFLOP/s = theoretical flops / ms\n", flush=True)
    all_rows = []
    saved = config.get_num_threads()
    try:
        for t in threads_list:
            all_rows += _bench.run(suites, quick=a.quick, dtype=a.dtype, threads=t, batch=a.batch,
                                   passes=passes, repeats=a.repeats, budget=a.budget,
                                   torch=not a.no_torch, numpy=not a.no_numpy,
                                   progress=not a.no_progress, peak_info=pk)
    finally:
        config.set_num_threads(saved)
    print(_bench.format_summary(all_rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": pk, "config": cfg, "dtype": a.dtype, "quick": a.quick,
                       "omp_wait_policy": wait,
                       "torch": getattr(torch, "__version__", None), "rows": all_rows}, f, indent=1)
        print(f"wrote {a.json}")
    if a.plot:
        from . import _roofline
        from .peak import _scale
        t = threads_list[-1]
        _roofline.plot([r for r in all_rows if r["threads"] == t], a.plot,
                       peak_gflops=_scale(pk["fma_gflops"][a.dtype], t, pk["threads_all"]),
                       bandwidth_gbps=_scale(pk["copy_gbps"], t, pk["threads_all"]),
                       title=f"fastconv bench roofline ({a.dtype}, {t} thread{'s' if t > 1 else ''}, "
                             f"isa {cfg['isa']})")
        print(f"wrote {a.plot}")
    return 0


# ---------------------------------------------------------------- parser



def build_parser():
    p = argparse.ArgumentParser(
        prog="fastconv",
        description="fastconv: fast CPU convolution and pooling, with a cost model.")
    from . import __version__
    p.add_argument("--version", action="version", version=f"fastconv {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    b = sub.add_parser("bench", help="benchmark built-in layer suites against PyTorch and NumPy",
                       description="Time every algorithm on built-in layer suites (forward and backward) "
                                   "next to PyTorch CPU and a NumPy baseline.")
    b.add_argument("--quick", action="store_true", help="a tiny subset (under a minute)")
    b.add_argument("--suite", type=_suite_list, default=None,
                   help="comma-separated suites (default all): " + ", ".join(__import__(
                       "fastconv._suites", fromlist=["names"]).names()))
    b.add_argument("--threads", type=_thread_list, default=None,
                   help="thread count(s), e.g. 1 or 1,2 (default: fastconv's current threads)")
    b.add_argument("--dtype", type=_dtype, default="float32", help="float32 (default) or float64")
    b.add_argument("--batch", type=_positive_int, default=None, help="batch size (default 1)")
    b.add_argument("--pass", dest="passes", choices=("fwd", "bwd", "both"), default="both",
                   help="forward, backward or both (default)")
    b.add_argument("--repeats", type=_positive_int, default=None, help="timed rounds per layer (max)")
    b.add_argument("--budget", type=float, default=None, help="seconds of timing per layer and pass")
    b.add_argument("--json", metavar="FILE", help="write all results as JSON")
    b.add_argument("--plot", metavar="FILE.png", help="draw a roofline (needs matplotlib)")
    b.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    b.add_argument("--no-numpy", action="store_true", help="skip the NumPy baseline")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.add_argument("--list", action="store_true", help="list the suites' layers and exit")
    b.set_defaults(func=_cmd_bench)

    c = sub.add_parser("cost", help="theoretical cost of one call (every algorithm)",
                       description="Output shape, params, mults, adds, bytes and footprint of one call.")
    c.add_argument("op", choices=_CONV_OPS + _POOL_OPS)
    c.add_argument("--input", type=_shape, required=True, help="input shape NCHW, e.g. 1x3x256x256")
    c.add_argument("--weight", type=_shape, help="weight shape (convolutions), e.g. 64x3x5x5")
    c.add_argument("--kernel", type=_int_or_pair, help="pool kernel size, int or AxB")
    c.add_argument("--stride", type=_int_or_pair)
    c.add_argument("--padding", type=_padding, help="int, AxB, or (conv2d) same/valid")
    c.add_argument("--dilation", type=_int_or_pair)
    c.add_argument("--groups", type=_positive_int)
    c.add_argument("--output-padding", type=_int_or_pair, help="conv_transpose2d only")
    c.add_argument("--bias", action="store_true", help="count a bias")
    c.add_argument("--needs", help="conv2d_backward: comma list of input,weight,bias")
    c.add_argument("--ceil-mode", action="store_true")
    c.add_argument("--no-count-include-pad", action="store_true", help="avg pooling")
    c.add_argument("--divisor-override", type=_positive_int, help="avg pooling")
    c.add_argument("--dtype", type=_dtype, default="float32")
    c.set_defaults(func=_cmd_cost)

    s = sub.add_parser("summary", help="textbook table of a network spec",
                       description='Per-layer shapes, params, mults, adds and receptive field, e.g. '
                                   'fastconv summary "conv(64,5,s=2,p=2) maxpool(2) flatten fc(10)" --input 3x256x256')
    s.add_argument("layers", help='layer spec, e.g. "conv(64,5,s=2,p=2) conv(128,7,s=2) maxpool(2) flatten fc(10)"')
    s.add_argument("--input", type=_shape, required=True, help="input shape CxHxW (or NxCxHxW)")
    s.add_argument("--batch", type=_positive_int, default=None)
    s.set_defaults(func=_cmd_summary)

    k = sub.add_parser("peak", help="measure (once, cached) FMA peak and copy bandwidth")
    k.add_argument("--refresh", action="store_true", help="re-measure and update the cache")
    k.add_argument("--duration", type=float, default=None, help="seconds per measurement (default 0.3)")
    k.add_argument("--json", action="store_true", help="print JSON")
    k.set_defaults(func=_cmd_peak)

    i = sub.add_parser("info", help="build and runtime configuration (include it in bug reports)")
    i.set_defaults(func=_cmd_info)
    return p


def _reexec_with_passive_omp(argv):
    """Re-run this command with ``OMP_WAIT_POLICY=PASSIVE`` (bench only).

    fastconv and PyTorch each bring an OpenMP runtime whose idle threads spin
    after every parallel region.  Timed alternately on a machine with no
    spare cores, each library's spinning threads steal the cores the other
    needs, and both look 10-100x slower than they are.  Passive waiting
    removes that interference for both sides alike.  The runtimes read the
    variable when they load, so it has to be set before fastconv is
    imported: hence a fresh process, importing the same fastconv.
    """
    import fastconv
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(fastconv.__file__)))
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
            "from fastconv.cli import main; sys.exit(main(sys.argv[1:]))")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-c", code, pkg_parent] + list(argv), env)


def main(argv=None):
    """Entry point of the ``fastconv`` console script; returns the exit code."""
    parser = build_parser()
    # Only a program run (argv None: the console script) may replace the
    # process; main([...]) called from Python (tests) never does.
    program = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if (program and os.name == "posix" and args.command == "bench" and not args.list
            and "OMP_WAIT_POLICY" not in os.environ):
        _reexec_with_passive_omp(argv)
    try:
        return args.func(args) or 0
    except (ValueError, TypeError) as e:
        parser.exit(2, f"fastconv {args.command}: error: {e}\n")
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `fastconv bench | head`: stop quietly.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


if __name__ == "__main__":
    sys.exit(main())
