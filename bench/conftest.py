"""pytest-benchmark suite for fastconv: shared fixtures and a GFLOP/s report.

Every benchmark stores ``flops`` (cost-model flops of one call), ``bytes``
(input + weight + output bytes), ``algo`` and ``impl`` in
``benchmark.extra_info``; at the end of the run a table turns the medians
into GFLOP/s and GB/s.  Run from the repository root against the installed
package:  python -P -m pytest bench [--benchmark-autosave]
"""
import os

# fastconv and PyTorch each bring an OpenMP runtime whose idle threads spin;
# on a machine without spare cores they steal each other's cores.  Passive
# waiting (set before either runtime loads) keeps the comparison fair.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _uniform(rng, shape, dtype):
    """Inputs in [-1, 1]: no denormals (benchmark protocol)."""
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


def _record(benchmark, cost, impl, algo):
    """Put the cost model's numbers and the implementation into extra_info."""
    mem = sum(v for k, v in cost.bytes.items() if k != "workspace")
    benchmark.extra_info.update({
        "flops": int(cost.flops), "bytes": int(mem),
        "workspace": int(cost.bytes.get("workspace", 0)),
        "algo": algo, "impl": impl,
    })


@pytest.fixture
def uniform():
    """uniform(rng, shape, dtype): inputs in [-1, 1]."""
    return _uniform


@pytest.fixture
def record():
    """record(benchmark, cost, impl, algo): fill benchmark.extra_info."""
    return _record


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    bs = getattr(config, "_benchmarksession", None)
    rows = []
    for b in getattr(bs, "benchmarks", None) or []:
        info = getattr(b, "extra_info", {}) or {}
        stats = getattr(b, "stats", None)
        med = getattr(stats, "median", None) if stats else None
        if not med or "flops" not in info:
            continue
        rows.append((b.group or "", info.get("impl", "?"), f"{med * 1e3:.3f}",
                     f"{info['flops'] / med / 1e9:.2f}", f"{info['bytes'] / med / 1e9:.2f}"))
    if not rows:
        return
    rows.sort()
    head = ("group", "impl", "median ms", "GFLOP/s", "GB/s")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    tr = terminalreporter
    tr.write_sep("-", "fastconv throughput (cost-model flops / median time)")
    tr.write_line("  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths))))
    for r in rows:
        tr.write_line("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
