"""Per-call performance records: ``fastconv.profile()``.

Every public op does ``if _profile._active: ... _record(...)``, so with no
profile active the cost is one branch per call.  Inside ``with
fastconv.profile() as prof:`` each call appends one :class:`Record` (op,
algorithm actually used, shapes, dtype, threads, wall seconds, workspace the
kernel allocated) to every active profile; the theoretical cost is computed
lazily from ``fastconv.cost`` when first read.  Profiles may be nested (each
sees the calls made while it is active) and used from several threads.
"""
import json
import threading

_active = []
_lock = threading.Lock()


def _record(op, algo, cost_kwargs, seconds, workspace_bytes):
    """Called by every op when a profile is active.

    Parameters
    ----------
    op : str
        Name of the public function, e.g. ``"conv2d"``; ``fastconv.cost``
        has a function of the same name taking ``cost_kwargs``.
    algo : str
        Algorithm actually used.
    cost_kwargs : dict
        Arguments for ``getattr(fastconv.cost, op)(**cost_kwargs)``.
    seconds : float
        Wall time of the call.
    workspace_bytes : int
        Bytes of workspace the kernel reported allocating.
    """
    for prof in list(_active):
        prof._add(op, algo, cost_kwargs, seconds, workspace_bytes)


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):   # NumPy scalars
        return v.item()
    if hasattr(v, "name") and not isinstance(v, (int, float, str, bool)):  # np.dtype
        return v.name
    return v


class Record:
    """One profiled call.

    Attributes
    ----------
    op, algo : str
        Public function and the algorithm that actually ran.
    cost_kwargs : dict
        Arguments of the matching ``fastconv.cost`` function.
    shapes : dict
        The ``*_shape`` entries of `cost_kwargs` (input, weight, ...).
    dtype : str or None
    seconds : float
        Wall time of the call.
    workspace : int
        Bytes of workspace the kernel allocated.
    threads : int
        fastconv threads at the time of the call.
    isa : str
        Kernel ISA in use.
    cost : fastconv.cost.Cost
        Theoretical cost (computed on first access).
    """

    __slots__ = ("op", "algo", "cost_kwargs", "seconds", "workspace", "threads", "isa", "_cost")

    def __init__(self, op, algo, cost_kwargs, seconds, workspace, threads, isa):
        self.op, self.algo, self.cost_kwargs = op, algo, cost_kwargs
        self.seconds, self.workspace, self.threads, self.isa = seconds, workspace, threads, isa
        self._cost = None

    @property
    def shapes(self):
        return {k[:-6]: tuple(v) for k, v in self.cost_kwargs.items()
                if k.endswith("_shape") and v is not None}

    @property
    def dtype(self):
        d = self.cost_kwargs.get("dtype")
        if d is None or isinstance(d, str):
            return d
        import numpy as np
        return np.dtype(d).name

    @property
    def cost(self):
        if self._cost is None:
            from . import cost as _cost
            self._cost = getattr(_cost, self.op)(**self.cost_kwargs)
        return self._cost

    @property
    def gflop(self):
        return self.cost.flops / 1e9

    @property
    def gflops(self):
        """Achieved GFLOP/s (theoretical flops over wall time)."""
        return self.cost.flops / self.seconds / 1e9 if self.seconds > 0 else float("nan")

    def percent_of_peak(self, measure=True):
        """Achieved GFLOP/s as % of the machine's peak for this dtype and thread count, or None."""
        from .peak import peak_gflops
        try:
            p = peak_gflops(self.dtype or "float32", self.threads, measure=measure)
        except Exception:
            return None
        return None if not p else 100.0 * self.gflops / p

    def as_dict(self):
        """Plain-JSON view: call description, cost-model numbers and measurements."""
        c = self.cost
        cost = {}
        for name in ("output_shape", "params", "mults", "adds", "comparisons", "flops",
                     "effective_mults", "effective_adds", "bytes", "footprint", "intensity"):
            if hasattr(c, name):
                cost[name] = _jsonable(getattr(c, name))
        return {
            "op": self.op, "algo": self.algo, "dtype": self.dtype, "shapes": _jsonable(self.shapes),
            "args": _jsonable(self.cost_kwargs), "threads": self.threads, "isa": self.isa,
            "seconds": self.seconds, "workspace": self.workspace, "cost": cost,
            "gflops": self.gflops,
        }

    def __repr__(self):
        return (f"Record(op={self.op!r}, algo={self.algo!r}, shapes={self.shapes}, "
                f"dtype={self.dtype!r}, seconds={self.seconds:.6g}, workspace={self.workspace})")


def _fmt_bytes(n):
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


class Profile:
    """Records of the fastconv calls made while it was active.

    Use through :func:`profile`.  ``records`` lists one :class:`Record` per
    call; ``str(prof)`` is a table (op, algo, GFLOP, footprint, ms, GFLOP/s,
    % of peak); :meth:`to_json` serialises everything.
    """

    def __init__(self):
        self.records = []
        self._rlock = threading.Lock()

    def _add(self, op, algo, cost_kwargs, seconds, workspace_bytes):
        """Append one call (the interface ``_record`` uses on every active profile)."""
        from . import config
        rec = Record(op, algo, dict(cost_kwargs), float(seconds), int(workspace_bytes),
                     config.get_num_threads(), config.isa())
        with self._rlock:
            self.records.append(rec)

    def __enter__(self):
        with _lock:
            globals()["_active"].append(self)
        return self

    def __exit__(self, *exc):
        with _lock:
            act = globals()["_active"]
            for i, p in enumerate(act):
                if p is self:
                    del act[i]
                    break
        return False

    def __len__(self):
        return len(self.records)

    @property
    def seconds(self):
        """Total wall time of the recorded calls."""
        return sum(r.seconds for r in self.records)

    @property
    def flops(self):
        """Total theoretical flops of the recorded calls."""
        return sum(r.cost.flops for r in self.records)

    def to_json(self, **kwargs):
        """JSON text ``{"records": [...], "total": {...}}``; `kwargs` go to ``json.dumps``."""
        recs = [r.as_dict() for r in self.records]
        return json.dumps({"records": recs,
                           "total": {"calls": len(recs), "seconds": self.seconds, "flops": self.flops}},
                          **kwargs)

    def table(self, measure_peak=True):
        """The report as text (what ``str(prof)`` prints)."""
        head = ("op", "algo", "dtype", "GFLOP", "footprint", "workspace", "ms", "GFLOP/s", "% peak")
        rows = []
        for r in self.records:
            pct = r.percent_of_peak(measure=measure_peak)
            rows.append((r.op, r.algo, r.dtype or "-", f"{r.gflop:.4f}", _fmt_bytes(r.cost.footprint),
                         _fmt_bytes(r.workspace), f"{r.seconds * 1e3:.3f}", f"{r.gflops:.2f}",
                         "-" if pct is None else f"{pct:.1f}"))
        if self.records:
            tot_s = self.seconds
            rows.append(("total", "", "", f"{self.flops / 1e9:.4f}", "", "", f"{tot_s * 1e3:.3f}",
                         f"{self.flops / tot_s / 1e9:.2f}" if tot_s > 0 else "-", ""))
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
                  for i, h in enumerate(head)]
        left = {0, 1, 2}

        def line(cells):
            return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
        out = [line(head), line(["-" * w for w in widths])]
        out += [line(r) for r in rows[:-1]]
        if rows:
            out += [line(["-" * w for w in widths]), line(rows[-1])]
        else:
            out.append("(no calls recorded)")
        return "\n".join(out)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"<fastconv.Profile: {len(self.records)} calls, {self.seconds * 1e3:.3f} ms>"


class _ProfileEntry:
    """``fastconv.profile``: call it for a :class:`Profile` context manager.

    Record every fastconv call made inside a ``with`` block.

    Returns
    -------
    Profile
        Context manager; after the block ``prof.records`` holds one record
        per call (op, algo, shapes, dtype, threads, cost, seconds,
        workspace), ``print(prof)`` shows a table with GFLOP, footprint, ms,
        GFLOP/s and % of the machine's measured peak (``fastconv peak``),
        and ``prof.to_json()`` gives the same as JSON.

    Examples
    --------
    >>> with fastconv.profile() as prof:            # doctest: +SKIP
    ...     y = fastconv.conv2d(x, w, padding=1)
    >>> print(prof)                                 # doctest: +SKIP

    Notes
    -----
    ``fastconv/__init__.py`` re-exports this object as ``fastconv.profile``,
    which shadows this module as a package attribute, so code doing
    ``from fastconv import profile as _profile`` may get either.  This
    object therefore also carries the module's hooks: ``_active`` (a
    property reading and *writing* the module's list, so monkeypatching
    either is seen by every op) and ``_record``.
    """

    __slots__ = ()
    __name__ = "profile"
    __qualname__ = "profile"

    def __call__(self):
        return Profile()

    @property
    def _active(self):
        return globals()["_active"]

    @_active.setter
    def _active(self, value):
        globals()["_active"] = value

    @property
    def _record(self):
        return globals()["_record"]

    @property
    def Profile(self):
        return Profile

    @property
    def Record(self):
        return Record

    def __repr__(self):
        return "<fastconv.profile(): returns a Profile context manager>"


profile = _ProfileEntry()
