"""Per-call performance records: ``fastconv.profile()``.

(Placeholder interface used by conv.py and pool.py; the measurement issue
fills in the report.)  Ops call ``_record`` only when ``_active`` is
non-empty, so the cost with no profile active is one branch per call.
"""
_active = []


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
    for prof in _active:
        prof._add(op, algo, cost_kwargs, seconds, workspace_bytes)
