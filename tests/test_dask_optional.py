"""``import fastconv`` must not import dask (it is an optional extra)."""
import os
import subprocess
import sys

import pytest

import fastconv

# Run beside the fastconv these tests import (the installed one in CI), not the source tree.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastconv.__file__)))


def test_import_fastconv_does_not_import_dask():
    code = ("import sys, fastconv, fastconv.cost, fastconv.summary, fastconv._halo, fastconv._blocks\n"
            "bad = sorted(m for m in sys.modules if m == 'dask' or m.startswith(('dask.', 'distributed')))\n"
            "print(','.join(bad))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"importing fastconv imported {r.stdout.strip()}"


def test_fastconv_dask_imports_dask():
    pytest.importorskip("dask.array")
    code = "import sys, fastconv.dask\nprint('dask.array' in sys.modules)\n"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"
