"""The per-machine JSON file holding tuned ``algo="auto"`` winners.

One file per machine (hostname and CPU model) in the directory
``fastconv.peak.cache_dir()`` uses (``$FASTCONV_CACHE_DIR``, else
``$XDG_CACHE_HOME/fastconv``, else ``~/.cache/fastconv``)::

    {"schema": 1, "machine": {...}, "entries": {KEY: {"algo": ..., "times": {...}, ...}}}

Reads tolerate a missing, unreadable, truncated or foreign file (it counts as
empty and is replaced on the next write); writes go to a temporary file that
is renamed over the old one, so a concurrent reader never sees half a file.
Two processes tuning at once may each lose the other's newest entries (the
last rename wins); the loser's configurations are simply tuned again.
"""
import hashlib
import json
import os
import socket
import tempfile
import threading

_SCHEMA = 1
_lock = threading.Lock()


_machine = None


def machine():
    """What identifies this machine in the cache file name (computed once per process)."""
    global _machine
    if _machine is None:
        from .peak import _cpu_model
        _machine = {"hostname": socket.gethostname(), "cpu": _cpu_model()}
    return dict(_machine)


def path():
    """Path of this machine's tuning cache file (it may not exist yet)."""
    from .peak import cache_dir
    digest = hashlib.sha1(json.dumps(machine(), sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(cache_dir(), f"tune-{digest}.json")


def _valid_entry(e):
    return (isinstance(e, dict) and isinstance(e.get("algo"), str)
            and isinstance(e.get("times", {}), dict))


def load(file=None):
    """``{key: entry}`` from the cache file; ``{}`` if it is missing or unusable."""
    file = file or path()
    try:
        with open(file) as f:
            d = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(d, dict) or d.get("schema") != _SCHEMA or not isinstance(d.get("entries"), dict):
        return {}
    return {k: e for k, e in d["entries"].items() if isinstance(k, str) and _valid_entry(e)}


def store(key, entry, file=None):
    """Add one entry (re-reading the file first, so other processes' entries are kept).

    Returns the file written, or None when the directory is not writable (the
    winner is then remembered for this process only).
    """
    file = file or path()
    with _lock:
        entries = load(file)
        entries[key] = entry
        d = {"schema": _SCHEMA, "machine": machine(), "entries": entries}
        try:
            os.makedirs(os.path.dirname(file), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(file), prefix=".tune-", suffix=".json")
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(d, f, indent=1, sort_keys=True)
                os.replace(tmp, file)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
            return file
        except OSError:
            return None


def clear(file=None):
    """Delete the cache file; True if a file was removed (other OS errors propagate)."""
    file = file or path()
    with _lock:
        try:
            os.unlink(file)
            return True
        except (FileNotFoundError, NotADirectoryError):
            return False
