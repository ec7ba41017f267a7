"""Tuning mode for ``algo="auto"``: time the candidates, cache the winner per machine.

By default ``algo="auto"`` asks the cost-model heuristic (``fastconv._auto``).
In tuning mode it instead times every algorithm that can serve the call, once
per configuration key

    (op [+ needs], N, C_in, H, W, C_out, kH, kW, H_out, W_out, stride, padding,
     dilation, groups, dtype, threads, ISA, workspace limit)

and remembers the fastest, in memory and in a per-machine JSON file in the
user cache directory (the one ``fastconv peak`` uses: ``$FASTCONV_CACHE_DIR``,
else ``$XDG_CACHE_HOME/fastconv``, else ``~/.cache/fastconv``).  Later calls
with the same key, in this process or another, reuse the winner.

Turn it on with the environment variable ``FASTCONV_TUNE`` (read at import:
``1``/``on`` tunes, ``cached`` only reuses cached winners and never times,
``0``/``off``/unset is the default heuristic), or in code::

    with fastconv.tune():               # tuning mode inside the block
        y = fastconv.conv2d(x, w, padding=1)

    r = fastconv.tune((1, 64, 56, 56), (64, 64, 3, 3), padding=1)   # tune one configuration
    r.best, r.timings                   # 'im2col', {'direct': 0.0021, 'im2col': 0.0013, ...}

    fastconv.tune.clear()               # forget every tuned winner (deletes the file)

Timing never touches the caller's arrays: the candidates run on arrays of
the same shapes filled with uniform [-1, 1] values, then the call runs with
the winner as usual, so results are those of ``algo=<winner>``.  Each
candidate is warmed up and timed in ``repeats`` interleaved rounds (a round
keeps the fastest of up to 10 back-to-back calls for calls under 10 ms); the
median counts.  With one kernel thread the clock is the calling thread's CPU
time (immune to other processes taking the core); with more threads, wall
time.  A candidate more than ``4x`` slower than the best on its first
timed call is not timed again.  Candidates whose workspace (``fastconv.cost``'s model) would
exceed ``fastconv.config.get_workspace_limit()`` are not considered while
another candidate fits.
"""
import contextlib
import statistics
import threading
import time
import warnings

import numpy as np

from . import _auto, _tune_cache

__all__ = ["tune", "TuneResult"]

_MODES = ("off", "on", "cached")
_ENV_VALUES = {"": "off", "0": "off", "off": "off", "no": "off", "false": "off",
               "1": "on", "on": "on", "yes": "on", "true": "on",
               "cached": "cached", "cache": "cached", "readonly": "cached"}
#: Repeats (interleaved rounds) per candidate when tuning.
DEFAULT_REPEATS = 5
#: After the first round, candidates slower than this times the best are dropped.
_DROP_FACTOR = 4.0
_LOG_MAX = 4096
# Calls shorter than _INNER_SECONDS are repeated (at most _INNER_MAX times) within a round.
_INNER_SECONDS = 0.01
_INNER_MAX = 10


def _mode_from_env(environ=None):
    import os
    raw = (environ if environ is not None else os.environ).get("FASTCONV_TUNE", "")
    v = _ENV_VALUES.get(raw.strip().lower())
    if v is None:
        warnings.warn(f"FASTCONV_TUNE={raw!r} is not one of 1/on, cached, 0/off; tuning stays off",
                      RuntimeWarning, stacklevel=2)
        return "off"
    return v


_env_mode = _mode_from_env()
_stack = []                     # modes pushed by ``with tune(...)`` blocks (process-wide)
_mode = _env_mode               # what conv.py tests: the innermost block's mode, else the env's
_lock = threading.Lock()
_tables = {}                    # cache file path -> {key: entry} (memory copy of the file)
_local = threading.local()      # .last: the TuneResult of this thread's last measurement
_counts = {"heuristic": 0, "cache": 0, "measured": 0}
_log = {}                       # key -> (algo, source), the newest _LOG_MAX decisions


def mode():
    """The tuning mode in force: ``"off"``, ``"on"`` or ``"cached"``."""
    return _mode


def _set_mode():
    global _mode
    _mode = _stack[-1] if _stack else _env_mode


class TuneResult:
    """Outcome of tuning one configuration.

    Attributes
    ----------
    key : str
        The configuration key (op, shapes, geometry, dtype, threads, ISA,
        workspace limit).
    best : str
        The fastest algorithm, the one ``algo="auto"`` now uses for this key.
    timings : dict
        ``{algo: median seconds}`` for every candidate timed (a candidate
        dropped after its first round has that round's time); candidates
        that cannot serve the call or exceed the workspace limit are absent.
    source : str
        ``"measured"`` (timed now), ``"cache"`` (a winner found in the cache)
        or ``"heuristic"`` (nothing to tune: an empty shape, or a single
        candidate algorithm; ``timings`` is then empty).
    cache_file : str or None
        The file the winner is stored in (None if it could not be written).
    """

    __slots__ = ("key", "best", "timings", "source", "cache_file")

    def __init__(self, key, best, timings, source, cache_file):
        self.key, self.best, self.timings = key, best, dict(timings)
        self.source, self.cache_file = source, cache_file

    def __repr__(self):
        ts = ", ".join(f"{a}={t * 1e3:.3f}ms" for a, t in sorted(self.timings.items(), key=lambda i: i[1]))
        return f"TuneResult(best={self.best!r}, source={self.source!r}, {ts})"


# ---------------------------------------------------------------- keys and cache

def _key(op, shape, dtype, needs, threads, isa, limit):
    (n, c_in, h, w, c_out, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw, g) = shape
    if op == "conv2d_backward":
        op = f"conv2d_backward[{','.join(x for x in needs if x != 'bias')}]"
    return (f"{op}|n{n}|x{c_in}x{h}x{w}|w{c_out}x{kh}x{kw}|y{ho}x{wo}|s{sh}x{sw}|p{ph}x{pw}"
            f"|d{dh}x{dw}|g{g}|{dtype}|t{threads}|{isa}|ws{limit}")


def _table():
    p = _tune_cache.path()
    t = _tables.get(p)
    if t is None:
        t = _tables[p] = _tune_cache.load(p)
    return p, t


def _note(key, algo, source):
    _counts[source] += 1
    if len(_log) >= _LOG_MAX and key not in _log:
        _log.pop(next(iter(_log)))
    _log[key] = (algo, source)


def clear():
    """Forget every tuned winner: delete this machine's cache file and the memory copy.

    Returns
    -------
    bool
        True if a cache file was removed.
    """
    with _lock:
        _tables.clear()
        _log.clear()
        for k in _counts:
            _counts[k] = 0
    return _tune_cache.clear()


def cache_file():
    """Path of this machine's tuning cache file (it may not exist yet)."""
    return _tune_cache.path()


def entries():
    """``{key: {"algo", "times", ...}}``: the tuned winners in this machine's cache file."""
    return _tune_cache.load()


def decisions():
    """``{key: (algo, source)}`` for the newest ``algo="auto"`` calls made with tuning on.

    ``source`` is ``"measured"`` (timed in this process), ``"cache"`` (a
    cached winner) or ``"heuristic"`` (mode ``"cached"`` and no entry, or a
    call tuning cannot help: empty, or a single candidate).  Calls made with
    tuning off are not logged: they all come from the heuristic.
    """
    return dict(_log)


def describe():
    """One line for ``show_config()``: where ``algo="auto"`` choices come from."""
    c = _counts
    if _mode == "off":
        line = "heuristic (tuning off; FASTCONV_TUNE=1 or `with fastconv.tune():` to tune)"
        if any(c.values()):
            line += (f"; earlier with tuning on: {c['measured']} measured, {c['cache']} from cache, "
                     f"{c['heuristic']} heuristic")
        return line
    return (f"tuning {_mode}: this process {c['measured']} measured, {c['cache']} from cache, "
            f"{c['heuristic']} heuristic; cache {cache_file()} ({len(entries())} entries)")


# ---------------------------------------------------------------- measuring

def _workspace_ok(algo, op, shape, itemsize, needs, threads, limit):
    from . import _workspace
    (n, c_in, h, w, c_out, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw, g) = shape
    passes = {"conv2d": ("forward",), "conv_transpose2d": ("input",)}.get(op)
    if passes is None:
        passes = tuple(p for p in ("input", "weight") if p in needs)
    try:
        need = max(_workspace.conv2d(algo, p, (n, c_in, h, w), (c_out, c_in // g, kh, kw),
                                     (n, c_out, ho, wo), (sh, sw), (ph, pw), (dh, dw), g, itemsize,
                                     threads, limit) for p in passes)
    except (ValueError, KeyError):
        return True
    return need <= limit


def _calls(op, shape, dtype, needs):
    """``fn(algo)`` running one kernel call of `op` on fresh uniform [-1, 1] arrays."""
    from . import _kernels, conv
    (n, c_in, h, w, c_out, kh, kw, ho, wo, *_rest, g) = shape
    rng = np.random.default_rng(12345)

    def arr(*s):
        return rng.uniform(-1, 1, s).astype(dtype).reshape(-1)
    x, wt, y = arr(n, c_in, h, w), arr(c_out, c_in // g, kh, kw), arr(n, c_out, ho, wo)
    if op == "conv2d":
        def run(algo):
            conv._call(algo, _kernels.conv2d, x, wt, None, y, shape, conv._ALGO_CODES[algo])
    elif op == "conv_transpose2d":
        def run(algo):
            conv._call(algo, _kernels.conv2d_grad_input, y, wt, x, shape, conv._ALGO_CODES[algo])
    else:
        gx, gw = np.empty_like(x), np.empty_like(wt)

        def run(algo):
            code = conv._ALGO_CODES[algo]
            if "input" in needs:
                conv._call(algo, _kernels.conv2d_grad_input, y, wt, gx, shape, code)
            if "weight" in needs:
                conv._call(algo, _kernels.conv2d_grad_weight, y, x, gw, shape, code)
    return run


def _measure(op, shape, dtype, needs, candidates, threads, repeats):
    """{algo: median seconds} over interleaved rounds (see the module docstring)."""
    run = _calls(op, shape, dtype, needs)
    clock = time.thread_time if threads == 1 else time.perf_counter
    first = {}
    for a in candidates:          # warm-up; drops a candidate whose kernel declines the shape
        try:
            run(a)
            t0 = clock()
            run(a)
            first[a] = clock() - t0
        except (ValueError, MemoryError):   # declines the shape, or its workspace cannot be had
            continue
    if not first:
        return {}
    fastest = min(first.values())
    times = {a: [t] for a, t in first.items()}
    live = [a for a in first if first[a] <= _DROP_FACTOR * fastest]
    for r in range(max(1, int(repeats)) - 1 if len(live) > 1 else 0):
        order = live[r % len(live):] + live[:r % len(live)]
        for a in order:
            # a short call is repeated and its fastest run kept: another
            # process taking the core only ever makes a call slower
            best = float("inf")
            for _ in range(max(1, min(_INNER_MAX, int(_INNER_SECONDS / max(first[a], 1e-9))))):
                t0 = clock()
                run(a)
                best = min(best, clock() - t0)
            times[a].append(best)
    return {a: statistics.median(t) for a, t in times.items()}


def choose(op, shape, dtype, needs, available, refresh=False):
    """The algorithm for one ``algo="auto"`` call with tuning on (conv.py's hook).

    Parameters as ``_auto.choose``; `dtype` is the NumPy dtype name, `needs`
    the backward's requested gradients (ignored for other ops).
    """
    from . import config
    isa, threads, limit = config.isa(), config.get_num_threads(), config.get_workspace_limit()
    needs = tuple(needs or ())
    heuristic = _auto.choose(op, shape, available, isa, dtype=dtype, threads=threads, needs=needs)
    key = _key(op, shape, dtype, needs, threads, isa, limit)
    cands = [a for a in available if a != "auto"]
    trivial = (len(cands) < 2 or min(shape[:9]) == 0
               or (op == "conv2d_backward" and not ({"input", "weight"} & set(needs))))
    refresh = refresh or getattr(_local, "refresh", False)
    path, table = _table()
    entry = None if trivial else table.get(key)
    if entry is not None and entry["algo"] in cands and not refresh:
        _note(key, entry["algo"], "cache")
        _local.last = TuneResult(key, entry["algo"], entry.get("times", {}), "cache", path)
        return entry["algo"]
    if trivial or (_mode == "cached" and not refresh):
        _note(key, heuristic, "heuristic")
        _local.last = TuneResult(key, heuristic, {}, "heuristic", None)
        return heuristic
    itemsize = np.dtype(dtype).itemsize
    fit = [a for a in cands if _workspace_ok(a, op, shape, itemsize, needs, threads, limit)]
    times = _measure(op, shape, dtype, needs, fit or cands, threads, getattr(_local, "repeats", DEFAULT_REPEATS))
    if not times:
        _note(key, heuristic, "heuristic")
        _local.last = TuneResult(key, heuristic, {}, "heuristic", None)
        return heuristic
    best = min(times, key=times.get)
    entry = {"algo": best, "times": times, "heuristic": heuristic,
             "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with _lock:
        table[key] = entry
    written = _tune_cache.store(key, entry, path)
    _note(key, best, "measured")
    _local.last = TuneResult(key, best, times, "measured", written)
    return best


# ---------------------------------------------------------------- public entry point

class _Mode(contextlib.ContextDecorator):
    """``with tune(...)``: a tuning mode for the block (process-wide, nestable)."""

    def __init__(self, mode):
        self.mode = mode

    def __enter__(self):
        with _lock:
            _stack.append(self.mode)
            _set_mode()
        return self

    def __exit__(self, *exc):
        with _lock:
            _stack.pop()
            _set_mode()
        return False

    def __repr__(self):
        return f"<fastconv.tune mode={self.mode!r}>"


def tune(input_shape=None, weight_shape=None, stride=1, padding=0, dilation=1, groups=1, *,
         op="conv2d", dtype="float32", output_padding=0, needs=("input", "weight", "bias"),
         refresh=False, repeats=DEFAULT_REPEATS, mode="on"):
    """Tune ``algo="auto"``: enable tuning for a block, or tune one configuration now.

    Called without shapes, returns a context manager (also usable as a
    decorator) under which every ``algo="auto"`` convolution uses tuned
    winners, timing the candidates the first time a configuration is seen
    (``mode="on"``) or only reusing cached winners (``mode="cached"``), or
    using the heuristic (``mode="off"``, e.g. to switch off ``FASTCONV_TUNE=1``
    in a block).  The mode is process-wide while the block runs.

    Called with shapes, times every algorithm for that configuration now,
    stores the winner in the cache, and returns the timings.  Later
    ``algo="auto"`` calls with the same key use that winner whenever tuning
    is ``"on"`` or ``"cached"`` (``FASTCONV_TUNE=cached`` in production: use
    what was tuned, never time); with tuning off (the default) ``auto`` stays
    the deterministic heuristic.

    Parameters
    ----------
    input_shape, weight_shape : tuple of 4 int, optional
        As the ``x`` and ``w`` of the op (``conv_transpose2d``'s weight is
        ``(C_in, C_out/groups, kH, kW)``).
    stride, padding, dilation, groups, output_padding
        As for the op (``output_padding`` only for ``conv_transpose2d``).
    op : str
        ``"conv2d"``, ``"conv2d_backward"`` or ``"conv_transpose2d"``.
    dtype : str or numpy dtype
        ``"float32"`` or ``"float64"``.
    needs : sequence of str
        For ``conv2d_backward``: the gradients the calls will ask for.
    refresh : bool
        Re-time even if the cache already has a winner for this key.
    repeats : int
        Interleaved rounds per candidate (the median counts).
    mode : str
        For the context manager: ``"on"``, ``"cached"`` or ``"off"``.

    Returns
    -------
    TuneResult or context manager
        ``TuneResult`` (``best``, ``timings``, ``key``, ``source``,
        ``cache_file``) when shapes are given.

    Notes
    -----
    The key includes the thread count, ISA and workspace limit in force, so
    tune under the settings the program will run with.  ``tune.clear()``
    deletes the cache, ``tune.cache_file()`` gives its path,
    ``tune.entries()`` its contents and ``tune.decisions()`` the source
    (heuristic, cache, measured) of this process's recent ``auto`` choices;
    ``fastconv.show_config()`` prints the mode and counts.
    """
    if input_shape is None and weight_shape is None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        return _Mode(mode)
    if input_shape is None or weight_shape is None:
        raise TypeError("tune() needs both input_shape and weight_shape (or neither, for a context manager)")
    from . import conv
    ops = ("conv2d", "conv2d_backward", "conv_transpose2d")
    if op not in ops:
        raise ValueError(f"op must be one of {ops}, got {op!r}")
    dt = np.dtype(dtype) if isinstance(dtype, (str, type, np.dtype)) else None
    if dt is None or dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}")
    shapes = []
    for name, s in (("input_shape", input_shape), ("weight_shape", weight_shape)):
        try:
            s = tuple(int(v) for v in s)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a tuple of 4 ints, got {s!r}") from None
        if len(s) != 4 or min(s) < 0:
            raise ValueError(f"{name} must be 4 non-negative ints (NCHW / weight layout), got {s}")
        shapes.append(s)
    # Run the op itself on placeholder arrays with tuning forced on: the same
    # validation, geometry and key as a real call (the hook stores the winner).
    x = np.zeros(shapes[0], dt)
    w = np.zeros(shapes[1], dt)
    _local.last = None
    _local.repeats = repeats
    _local.refresh = refresh
    try:
        with _Mode("on"):
            if op == "conv2d":
                conv.conv2d(x, w, None, stride, padding, dilation, groups)
            elif op == "conv_transpose2d":
                conv.conv_transpose2d(x, w, None, stride, padding, output_padding, groups, dilation)
            else:
                geo = conv._Conv(x.shape, w.shape, stride, padding, dilation, groups)
                conv.conv2d_backward(np.zeros(geo.y_shape, dt), x, w, stride, padding, dilation, groups,
                                     needs=needs)
    finally:
        _local.repeats = DEFAULT_REPEATS
        _local.refresh = False
    return _local.last


tune.clear = clear
tune.cache_file = cache_file
tune.entries = entries
tune.decisions = decisions
tune.mode = mode
