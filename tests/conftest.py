"""Shared fixtures: both ISA paths, 1 and 2 threads, both dtypes."""
import numpy as np
import pytest

import fastconv
from fastconv import config

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:  # torch is an optional oracle
    HAVE_TORCH = False


@pytest.fixture(params=config._available_isas())
def isa(request):
    """Run the test once per ISA path this machine and build can execute."""
    with config._forced_runtime(isa_name=request.param):
        yield request.param


@pytest.fixture(params=[1, 2])
def threads(request):
    with config._forced_runtime(threads=request.param):
        yield request.param


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


def tol(dtype):
    """(rtol, atol) for comparing a kernel in `dtype` with the float64 reference."""
    return (2e-4, 2e-5) if np.dtype(dtype) == np.float32 else (1e-10, 1e-12)


def rand(rng, shape, dtype):
    """Inputs in [-1, 1] (no denormals), as the benchmark protocol asks."""
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
