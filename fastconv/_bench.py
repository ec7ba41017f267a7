"""Engine of ``fastconv bench``: time every algorithm of every suite layer.

Protocol (DESIGN.md): one process; for each (layer, pass) the candidates
(fastconv per algorithm, PyTorch CPU, a NumPy sliding-window + einsum
baseline) are timed in alternating rounds and each one's median is kept;
PyTorch gets the same thread count as fastconv; inputs are uniform in
[-1, 1] so no denormals occur.  GFLOP/s is the cost model's flops (the
dense convention, identical for every implementation) over the median
time, so rows of one layer are directly comparable.
"""
import math
import statistics
import sys
import time

import numpy as np

from . import _suites, config
from . import cost as _cost
from .profile import Profile

# ---------------------------------------------------------------- candidates


def _fc():
    import fastconv
    return fastconv


def _torch():
    try:
        import torch
        return torch
    except Exception:   # not installed, or broken install: just no comparison
        return None


def _algorithms(op):
    try:
        algos = list(_fc().algorithms(op))
    except Exception:
        return [None]
    return [a for a in algos if a != "auto"] or [None]


def _numpy_conv2d(x, w, stride, padding, dilation, groups):
    """Forward conv via sliding_window_view + einsum (the NumPy baseline)."""
    from numpy.lib.stride_tricks import sliding_window_view
    n, c, h, wd = x.shape
    co, cg, kh, kw = w.shape
    eh, ew = dilation * (kh - 1) + 1, dilation * (kw - 1) + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - eh) // stride + 1
    wo = (wd + 2 * padding - ew) // stride + 1
    win = sliding_window_view(xp, (eh, ew), axis=(2, 3))
    win = win[:, :, ::stride, ::stride, ::dilation, ::dilation][:, :, :ho, :wo]
    win = win.reshape(n, groups, cg, ho, wo, kh, kw)
    wg = w.reshape(groups, co // groups, cg, kh, kw)
    y = np.einsum("ngchwij,gocij->ngohw", win, wg, optimize=True)
    return y.reshape(n, co, ho, wo)


def _numpy_pool(x, op, k, s, p):
    from numpy.lib.stride_tricks import sliding_window_view
    fill = -np.inf if op == "max_pool2d" else 0
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    win = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    return win.max(axis=(-2, -1)) if op == "max_pool2d" else win.mean(axis=(-2, -1))


class _Case:
    """The callables to time for one (layer, pass)."""

    def __init__(self, layer, pas, dtype, rng):
        self.layer, self.pas, self.dtype = layer, pas, np.dtype(dtype)
        fc = _fc()
        L = layer
        self.x = rng.uniform(-1, 1, L.input).astype(self.dtype)
        self.candidates = []      # (impl name, algo or None, fn)
        self.errors = {}          # impl -> reason it could not run
        torch = _torch()
        if L.is_conv:
            self.w = rng.uniform(-1, 1, L.weight).astype(self.dtype)
            kw = dict(stride=L.stride, padding=L.padding, dilation=L.dilation, groups=L.groups)
            self.cost_kwargs = dict(input_shape=L.input, weight_shape=L.weight, bias=False,
                                    dtype=self.dtype.name, **kw)
            y0 = _cost.conv2d(**self.cost_kwargs, algo="direct").output_shape
            self.gy = rng.uniform(-1, 1, y0).astype(self.dtype)
            if pas == "fwd":
                self.op = "conv2d"
                for a in _algorithms("conv2d"):
                    extra = {} if a is None else {"algo": a}
                    self.candidates.append((f"fastconv:{a or 'default'}", a,
                                            lambda extra=extra: fc.conv2d(self.x, self.w, **kw, **extra)))
                if torch is not None:
                    tx, tw = torch.from_numpy(self.x), torch.from_numpy(self.w)

                    def tfwd():
                        with torch.inference_mode():
                            return torch.nn.functional.conv2d(tx, tw, None, L.stride, L.padding,
                                                              L.dilation, L.groups)
                    self.candidates.append(("torch", None, tfwd))
                self.candidates.append(("numpy", None, lambda: _numpy_conv2d(
                    self.x, self.w, L.stride, L.padding, L.dilation, L.groups)))
            else:
                self.op = "conv2d_backward"
                self.cost_kwargs["needs"] = ("input", "weight")
                for a in _algorithms("conv2d_backward"):
                    extra = {} if a is None else {"algo": a}
                    self.candidates.append((f"fastconv:{a or 'default'}", a, lambda extra=extra: fc.conv2d_backward(
                        self.gy, self.x, self.w, **kw, needs=("input", "weight"), **extra)))
                if torch is not None:
                    tx, tw, tg = (torch.from_numpy(a) for a in (self.x, self.w, self.gy))
                    conv_bwd = torch.ops.aten.convolution_backward

                    def tbwd():
                        with torch.inference_mode():
                            return conv_bwd(tg, tx, tw, None, [L.stride] * 2, [L.padding] * 2,
                                            [L.dilation] * 2, False, [0, 0], L.groups,
                                            [True, True, False])
                    self.candidates.append(("torch", None, tbwd))
        else:
            op = L.op
            k, s, p = L.kernel, L.stride, L.padding
            self.cost_kwargs = dict(input_shape=L.input, kernel_size=k, stride=s, padding=p,
                                    dtype=self.dtype.name)
            y0, ind = fc.max_pool2d(self.x, k, s, p, return_indices=True) if op == "max_pool2d" else \
                (fc.avg_pool2d(self.x, k, s, p), None)
            self.gy = rng.uniform(-1, 1, y0.shape).astype(self.dtype)
            fwd = getattr(fc, op)
            if pas == "fwd":
                self.op = op
                self.candidates.append(("fastconv:direct", "direct", lambda: fwd(self.x, k, s, p)))
                if torch is not None:
                    tx = torch.from_numpy(self.x)
                    tf = getattr(torch.nn.functional, op)

                    def tfwd():
                        with torch.inference_mode():
                            return tf(tx, k, s, p)
                    self.candidates.append(("torch", None, tfwd))
                self.candidates.append(("numpy", None, lambda: _numpy_pool(self.x, op, k, s, p)))
            else:
                self.op = op + "_backward"
                if op == "max_pool2d":
                    self.candidates.append(("fastconv:direct", "direct", lambda: fc.max_pool2d_backward(
                        self.gy, self.x, k, s, p, indices=ind)))
                else:
                    self.candidates.append(("fastconv:direct", "direct", lambda: fc.avg_pool2d_backward(
                        self.gy, L.input, k, s, p)))
                if torch is not None:
                    tx, tg = torch.from_numpy(self.x), torch.from_numpy(self.gy)
                    if op == "max_pool2d":
                        ti = torch.from_numpy(ind)
                        f = torch.ops.aten.max_pool2d_with_indices_backward

                        def tbwd():
                            with torch.inference_mode():
                                return f(tg, tx, [k, k], [s, s], [p, p], [1, 1], False, ti)
                    else:
                        f = torch.ops.aten.avg_pool2d_backward

                        def tbwd():
                            with torch.inference_mode():
                                return f(tg, tx, [k, k], [s, s], [p, p], False, True, None)
                    self.candidates.append(("torch", None, tbwd))

    def cost(self, algo):
        kw = dict(self.cost_kwargs)
        if self.layer.is_conv:
            kw["algo"] = algo or "direct"
        return getattr(_cost, self.op)(**kw)


def _auto_choice(case):
    """Algorithm that algo="auto" picks for this case (from a profiled call), or None."""
    if not case.layer.is_conv:
        return None
    fc = _fc()
    L = case.layer
    kw = dict(stride=L.stride, padding=L.padding, dilation=L.dilation, groups=L.groups)
    try:
        with Profile() as prof:
            if case.pas == "fwd":
                fc.conv2d(case.x, case.w, **kw)
            else:
                fc.conv2d_backward(case.gy, case.x, case.w, **kw, needs=("input", "weight"))
        return prof.records[-1].algo if prof.records else None
    except Exception:
        return None


def _run_case(case, repeats, budget, min_rounds=3):
    """Alternate the candidates round by round; return {impl: (median s, workspace, algo used)}."""
    live = []
    info = {}
    for name, algo, fn in case.candidates:
        try:
            with Profile() as prof:     # warm-up call, also gives the algo and workspace
                t0 = time.perf_counter()
                fn()
                first = time.perf_counter() - t0
        except (ValueError, NotImplementedError, RuntimeError, TypeError, MemoryError) as e:
            case.errors[name] = f"{type(e).__name__}: {e}"
            continue
        ws = prof.records[-1].workspace if prof.records else None
        used = prof.records[-1].algo if prof.records else algo
        live.append((name, fn))
        info[name] = {"times": [], "first": first, "workspace": ws, "algo": used}
    start = time.perf_counter()
    for r in range(max(1, repeats)):
        for name, fn in live:
            t0 = time.perf_counter()
            fn()
            info[name]["times"].append(time.perf_counter() - t0)
        spent = time.perf_counter() - start
        if spent > budget and (r + 1 >= min_rounds or spent > 3 * budget):
            break
    return {name: (statistics.median(d["times"]), d["workspace"], d["algo"]) for name, d in info.items()}


# ---------------------------------------------------------------- progress


class _SimpleBar:
    """Minimal stderr progress bar used when tqdm is not installed."""

    def __init__(self, total, desc="", file=None):
        self.total, self.n, self.desc = total, 0, desc
        self.file = file or sys.stderr
        self.tty = hasattr(self.file, "isatty") and self.file.isatty()
        self.t0 = time.perf_counter()
        self._draw()

    def _draw(self):
        width = 28
        done = int(width * self.n / max(1, self.total))
        el = time.perf_counter() - self.t0
        line = f"{self.desc} [{'#' * done}{'.' * (width - done)}] {self.n}/{self.total} {el:5.1f}s"
        if self.tty:
            self.file.write("\r" + line[:120].ljust(80))
        elif self.n == self.total:
            self.file.write(line + "\n")
        self.file.flush()

    def set_description(self, desc):
        self.desc = desc
        self._draw()

    def update(self, k=1):
        self.n += k
        self._draw()

    def write(self, text):
        if self.tty:
            self.file.write("\r" + " " * 100 + "\r")
            self.file.flush()
        print(text, flush=True)
        self._draw()

    def close(self):
        if self.tty:
            self.file.write("\n")
            self.file.flush()


def _progress(total, enabled=True):
    if enabled and not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        enabled = False     # no bar in logs and pipes: the tables are the progress
    if not enabled:
        class _Null(_SimpleBar):
            def _draw(self):
                pass
        return _Null(total)
    try:
        from tqdm import tqdm
    except ImportError:
        return _SimpleBar(total, "bench")

    class _T(tqdm):
        def write(self, text):     # keep the bar at the bottom while tables print
            tqdm.write(text, file=sys.stdout)
    return _T(total=total, desc="bench", file=sys.stderr, unit="case", leave=False,
              bar_format="{desc} {bar} {n}/{total} [{elapsed}<{remaining}]")


# ---------------------------------------------------------------- running


def run(suites=None, quick=False, dtype="float32", threads=None, batch=None, passes=("fwd", "bwd"),
        repeats=None, budget=None, torch=True, numpy=True, progress=True, printer=print,
        peak_info=None):
    """Run the bench; returns a list of row dicts (one per layer x pass x implementation)."""
    fc = _fc()
    dtype = np.dtype(dtype).name
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    if threads is not None:
        fc.set_num_threads(int(threads))
    threads = config.get_num_threads()
    tmod = _torch() if torch else None
    if tmod is not None:
        tmod.set_num_threads(threads)
        tmod.set_flush_denormal(True)
    repeats = repeats or (5 if quick else 11)
    budget = budget or (0.4 if quick else 2.0)
    todo = [(s, l if batch is None else l.with_batch(batch), p)
            for s, l in _suites.layers(suites, quick) for p in passes]
    rng = np.random.default_rng(0)
    rows = []
    peak_f = _peak_for(peak_info, dtype, threads)
    peak_bw = _bw_for(peak_info, threads)
    bar = _progress(len(todo), progress)
    try:
        for suite, layer, pas in todo:
            bar.set_description(f"{suite}/{layer.name} {pas}")
            case = _Case(layer, pas, dtype, rng)
            if tmod is None or not torch:
                case.candidates = [c for c in case.candidates if c[0] != "torch"]
            if not numpy:
                case.candidates = [c for c in case.candidates if c[0] != "numpy"]
            auto = _auto_choice(case)
            res = _run_case(case, repeats, budget)
            block = _rows_for(case, suite, res, auto, threads, peak_f, peak_bw)
            rows.extend(block)
            bar.write(format_block(block, case))
            bar.update()
    finally:
        bar.close()
    return rows


def _peak_for(peak_info, dtype, threads):
    if not peak_info:
        return None
    from .peak import _scale
    return _scale(peak_info["fma_gflops"][dtype], threads, peak_info["threads_all"])


def _bw_for(peak_info, threads):
    if not peak_info:
        return None
    from .peak import _scale
    return _scale(peak_info["copy_gbps"], threads, peak_info["threads_all"])


def _rows_for(case, suite, res, auto, threads, peak_f, peak_bw):
    L = case.layer
    base = case.cost(None)
    torch_s = res.get("torch", (None,))[0]
    rows = []
    for name, algo, _ in case.candidates:
        try:
            c = case.cost(algo) if name.startswith("fastconv") else base
        except ValueError:
            c = base
        mem = sum(v for k, v in c.bytes.items() if k != "workspace")
        row = {
            "suite": suite, "layer": L.name, "op": case.op, "pass": case.pas, "impl": name,
            "algo": algo, "auto": bool(auto and algo == auto), "dtype": case.dtype.name,
            "threads": threads, "input_shape": list(L.input),
            "weight_shape": list(L.weight) if L.weight else None,
            "stride": L.stride, "padding": L.padding, "dilation": L.dilation, "groups": L.groups,
            "kernel": L.kernel, "flops": int(c.flops), "mults": int(c.mults),
            "effective_mults": int(getattr(c, "effective_mults", c.mults)),
            "bytes": int(mem), "footprint": int(c.footprint if name.startswith("fastconv") else mem),
            "intensity": float(c.flops) / mem if mem else None,
            "seconds": None, "gflops": None, "gbps": None, "pct_peak": None, "pct_bandwidth": None,
            "speedup_vs_torch": None, "workspace": None, "error": case.errors.get(name),
        }
        if name in res:
            s, ws, used = res[name]
            row["seconds"] = s
            row["workspace"] = ws
            if used and name.startswith("fastconv"):
                row["algo"] = used
            row["gflops"] = c.flops / s / 1e9 if s > 0 else None
            row["gbps"] = mem / s / 1e9 if s > 0 else None
            if peak_f and row["gflops"] is not None:
                row["pct_peak"] = 100.0 * row["gflops"] / peak_f
            if peak_bw and row["gbps"] is not None:
                row["pct_bandwidth"] = 100.0 * row["gbps"] / peak_bw
            if torch_s and name != "torch":
                row["speedup_vs_torch"] = torch_s / s
        rows.append(row)
    return rows


# ---------------------------------------------------------------- formatting


def _fmt_bytes(n):
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _table(head, rows, left=(0,)):
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]


def format_block(rows, case=None):
    """Text table for one (layer, pass)."""
    if not rows:
        return ""
    r0 = rows[0]
    conv = r0["op"].startswith("conv")
    title = f"{r0['suite']}/{r0['layer']}  {r0['op']}  "
    if case is not None:
        title += case.layer.describe()
    title += f"  [{r0['dtype']}, {r0['threads']} thread{'s' if r0['threads'] != 1 else ''}]"
    head = ("impl", "GFLOP", "Mmul exec", "footprint", "workspace", "ms", "GFLOP/s",
            "% peak" if conv else "% bw", "vs torch")
    body = []
    for r in rows:
        impl = r["impl"] + (" *" if r["auto"] else "")
        if r["seconds"] is None:
            why = (r["error"] or "").split(": ", 1)[-1]
            body.append((impl, f"{r['flops'] / 1e9:.4f}", "", "", "", "n/a", "", "",
                         why if len(why) <= 48 else why[:45] + "..."))
            continue
        pct = r["pct_peak"] if conv else r["pct_bandwidth"]
        body.append((
            impl, f"{r['flops'] / 1e9:.4f}", f"{r['effective_mults'] / 1e6:,.1f}",
            _fmt_bytes(r["footprint"]), _fmt_bytes(r["workspace"]), f"{r['seconds'] * 1e3:.3f}",
            f"{r['gflops']:.2f}", "-" if pct is None else f"{pct:.1f}",
            "-" if r["speedup_vs_torch"] is None else f"{r['speedup_vs_torch']:.2f}x"))
    return "\n".join([title] + ["  " + l for l in _table(head, body)]) + "\n"


def format_summary(rows):
    """Geometric-mean speed-up vs PyTorch per implementation and pass."""
    groups = {}
    for r in rows:
        if r["speedup_vs_torch"]:
            kind = "conv" if r["op"].startswith("conv") else "pool"
            groups.setdefault((kind, r["pass"], r["impl"]), []).append(r["speedup_vs_torch"])
            if r["auto"]:
                groups.setdefault((kind, r["pass"], "fastconv:auto (*)"), []).append(r["speedup_vs_torch"])
    if not groups:
        return "(no PyTorch comparison: install torch to get speed-ups)\n"
    body = []
    for (kind, pas, impl), v in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "fwd", kv[0][2])):
        g = math.exp(sum(math.log(x) for x in v) / len(v))
        body.append((kind, pas, impl, str(len(v)), f"{g:.2f}x", f"{min(v):.2f}x", f"{max(v):.2f}x"))
    lines = ["Speed-up vs PyTorch (torch time / time; > 1 means faster than PyTorch)"]
    lines += ["  " + l for l in _table(("ops", "pass", "impl", "layers", "geomean", "min", "max"), body,
                                       left=(0, 1, 2))]
    return "\n".join(lines) + "\n"
