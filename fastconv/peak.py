"""Machine peak: floating-point FMA throughput and streaming-copy bandwidth.

``fastconv.peak()`` measures, with small C loops (csrc/peak.c), the fp32 and
fp64 multiply-add peak on one thread and on all threads, and the copy
bandwidth of a buffer much larger than the last-level cache on one and on
all threads.  The result is cached as JSON per machine (hostname, CPU model
and the kernel ISA in use) in ``$FASTCONV_CACHE_DIR``, else
``$XDG_CACHE_HOME/fastconv``, else ``~/.cache/fastconv``; later calls read
the cache.  ``fastconv peak --refresh`` re-measures.

The peak is that of the ISA fastconv runs (``fastconv.config.isa()``), so
"% of peak" is honest for the kernels actually executed: with
``FASTCONV_ISA=baseline`` the peak is the baseline (SSE2, no FMA) one.
"""
import datetime
import hashlib
import json
import os
import platform
import socket
import tempfile

from . import _kernels, config

__all__ = ["peak", "cached_peak", "peak_gflops", "peak_bandwidth", "cache_dir"]

#: Seconds each measurement runs for by default.
DEFAULT_DURATION = 0.3

_SCHEMA = 2   # 2: the AVX-512 level measures a zmm FMA loop (1 measured the AVX2 one)
_quick = {}   # in-process memo of quick (uncached) measurements


def cache_dir():
    """Directory holding the per-machine peak cache.

    ``FASTCONV_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/fastconv``, else
    ``~/.cache/fastconv``.
    """
    d = os.environ.get("FASTCONV_CACHE_DIR")
    if d:
        return d
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fastconv")


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown-cpu"


def _all_threads():
    if not _kernels.openmp_enabled():
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _machine_key():
    return {"hostname": socket.gethostname(), "cpu": _cpu_model(), "isa": config.isa()}


def _cache_path(key):
    text = json.dumps(key, sort_keys=True)
    digest = hashlib.sha1(text.encode()).hexdigest()[:16]
    return os.path.join(cache_dir(), f"peak-{digest}.json")


def _sysfs_cache_bytes():
    """Largest cache of CPU 0 listed in Linux sysfs (its last-level cache), or 0."""
    best = 0
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        names = os.listdir(base)
    except OSError:
        return 0
    for name in names:
        try:
            with open(os.path.join(base, name, "size")) as f:
                text = f.read().strip().upper()
        except OSError:
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        try:
            best = max(best, int(text.rstrip("KMG")) * mult)
        except ValueError:
            pass
    return best


def _llc_bytes():
    """Last-level cache size in bytes: sysconf where Python knows the name
    (glibc), else Linux sysfs, else 32 MiB."""
    for name in ("SC_LEVEL3_CACHE_SIZE", "SC_LEVEL2_CACHE_SIZE"):
        try:
            v = os.sysconf(name)
            if v and v > 0:
                return int(v)
        except (ValueError, OSError, AttributeError):
            pass
    return _sysfs_cache_bytes() or 32 << 20


def _default_copy_bytes():
    # Four times the last-level cache so the copy streams from memory;
    # bounded so the measurement stays cheap on huge-cache machines.
    return int(min(max(4 * _llc_bytes(), 64 << 20), 1 << 30))


def _measure(duration, copy_bytes, repeats=3):
    if not duration > 0:
        raise ValueError(f"duration must be > 0 seconds, got {duration!r}")
    copy_bytes = _default_copy_bytes() if copy_bytes is None else int(copy_bytes)
    if copy_bytes < 4096:
        raise ValueError(f"copy_bytes must be >= 4096, got {copy_bytes!r}")
    n = _all_threads()
    result = dict(_machine_key())
    result.update({
        "schema": _SCHEMA,
        "threads_all": n,
        "duration": float(duration),
        "copy_bytes": copy_bytes,
        "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "fma_gflops": {},
        "copy_gbps": {},
    })
    # Best of `repeats` short runs: a peak is the best rate the machine
    # sustains, and on a shared machine a single run is easily disturbed.
    repeats = max(1, int(repeats))

    def best(fn, *args):
        return max(fn(*args, duration / repeats) for _ in range(repeats))

    def fma(size, t):
        return best(lambda d, s=size, t=t: _kernels.measure_fma_peak(s, d, t))

    def copy(t):
        return best(lambda d, t=t: _kernels.measure_copy_bandwidth(copy_bytes, d, t))
    for dtype, size in (("float32", 4), ("float64", 8)):
        result["fma_gflops"][dtype] = {"1": fma(size, 1), "all": fma(size, n)}
    result["copy_gbps"] = {"1": copy(1), "all": copy(n)}
    return result


def _valid(d, key):
    try:
        return (d.get("schema") == _SCHEMA and all(d.get(k) == v for k, v in key.items())
                and all(d["fma_gflops"][t]["1"] > 0 for t in ("float32", "float64")))
    except (AttributeError, KeyError, TypeError):
        return False


def cached_peak():
    """The cached peak for this machine and ISA, or None (never measures)."""
    key = _machine_key()
    try:
        with open(_cache_path(key)) as f:
            d = json.load(f)
    except (OSError, ValueError):
        return None
    return d if _valid(d, key) else None


def _write_cache(d):
    path = _cache_path(_machine_key())
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # Atomic replace so concurrent processes never read half a file.
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".peak-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(d, f, indent=2, sort_keys=True)
        os.replace(tmp, path)
        return path
    except OSError:
        return None   # an unwritable cache must not break measurement


def peak(refresh=False, *, duration=DEFAULT_DURATION, copy_bytes=None, repeats=3):
    """Measured FMA peak and copy bandwidth of this machine (cached).

    Parameters
    ----------
    refresh : bool
        Re-measure even when a cached result exists.
    duration : float
        Seconds each of the six measurements runs (only when measuring).
    copy_bytes : int, optional
        Size of each of the copy's source and destination buffers; default
        four times the last-level cache, at least 64 MiB.
    repeats : int
        Each figure is the best of this many runs of ``duration / repeats``.

    Returns
    -------
    dict
        ``hostname``, ``cpu``, ``isa``, ``threads_all``, ``measured_at``,
        ``fma_gflops = {"float32": {"1": GFLOP/s, "all": GFLOP/s}, "float64": {...}}``
        (a multiply-add counts as two flops), ``copy_gbps = {"1": GB/s, "all": GB/s}``
        (bytes read plus bytes written), ``cache_file`` and ``cached``
        (True when read from the cache).
    """
    if not refresh:
        d = cached_peak()
        if d is not None:
            d["cached"] = True
            d["cache_file"] = _cache_path(_machine_key())
            return d
    d = _measure(duration, copy_bytes, repeats)
    d["cache_file"] = _write_cache(d)
    d["cached"] = False
    return d


def _scale(table, threads, n_all):
    """Rate for `threads` threads from the 1-thread and all-thread figures."""
    one, allt = float(table["1"]), float(table["all"])
    if threads <= 1:
        return one
    if threads >= n_all:
        return allt
    return min(allt, one * threads)


def peak_gflops(dtype="float32", threads=None, *, measure=True):
    """Peak GFLOP/s for `dtype` on `threads` threads (default: fastconv's threads).

    Uses the cached peak when present; otherwise, if `measure`, a short
    uncached measurement (about 30 ms, remembered for this process);
    otherwise None.
    """
    import numpy as np
    name = np.dtype(dtype).name
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    threads = config.get_num_threads() if threads is None else int(threads)
    d = cached_peak()
    if d is not None:
        return _scale(d["fma_gflops"][name], threads, d["threads_all"])
    if not measure:
        return None
    key = (config.isa(), name, threads)
    if key not in _quick:
        _quick[key] = _kernels.measure_fma_peak(4 if name == "float32" else 8, 0.03, max(1, threads))
    return _quick[key]


def peak_bandwidth(threads=None):
    """Cached copy bandwidth in GB/s for `threads` threads, or None if not measured yet."""
    threads = config.get_num_threads() if threads is None else int(threads)
    d = cached_peak()
    if d is None:
        return None
    return _scale(d["copy_gbps"], threads, d["threads_all"])
