"""Max/avg pooling forward and backward, PyTorch as a comparison group."""
import pytest

import fastconv as fc
from fastconv import _suites, cost

try:
    import torch
except ImportError:
    torch = None

pytest.importorskip("pytest_benchmark")

LAYERS = [l for _, l in _suites.QUICK if not l.is_conv] + [_suites.SUITES["pool"][0]]
DTYPES = ["float32", "float64"]


def _args(L):
    return (L.kernel, L.stride, L.padding)


def _cost(L, pas, dtype):
    op = L.op if pas == "fwd" else L.op + "_backward"
    return getattr(cost, op)(L.input, L.kernel, stride=L.stride, padding=L.padding, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pas", ["fwd", "bwd"])
@pytest.mark.parametrize("layer", LAYERS, ids=lambda L: L.name)
def test_pool_fastconv(benchmark, rng, uniform, record, layer, pas, dtype):
    x = uniform(rng, layer.input, dtype)
    c = _cost(layer, pas, dtype)
    benchmark.group = f"{layer.op} {pas} {layer.name} {dtype}"
    record(benchmark, c, "fastconv", "direct")
    if pas == "fwd":
        benchmark(getattr(fc, layer.op), x, *_args(layer))
    elif layer.op == "max_pool2d":
        y, ind = fc.max_pool2d(x, *_args(layer), return_indices=True)
        gy = uniform(rng, y.shape, dtype)
        benchmark(fc.max_pool2d_backward, gy, x, *_args(layer), indices=ind)
    else:
        y = fc.avg_pool2d(x, *_args(layer))
        gy = uniform(rng, y.shape, dtype)
        benchmark(fc.avg_pool2d_backward, gy, layer.input, *_args(layer))


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pas", ["fwd", "bwd"])
@pytest.mark.parametrize("layer", LAYERS, ids=lambda L: L.name)
def test_pool_torch(benchmark, rng, uniform, record, layer, pas, dtype):
    torch.set_num_threads(fc.get_num_threads())
    x = uniform(rng, layer.input, dtype)
    k, s, p = _args(layer)
    tx = torch.from_numpy(x)
    c = _cost(layer, pas, dtype)
    benchmark.group = f"{layer.op} {pas} {layer.name} {dtype}"
    record(benchmark, c, "torch", "torch")
    f = getattr(torch.nn.functional, layer.op)
    if pas == "fwd":
        def run():
            with torch.inference_mode():
                return f(tx, k, s, p)
    elif layer.op == "max_pool2d":
        with torch.inference_mode():
            y, ti = torch.nn.functional.max_pool2d(tx, k, s, p, return_indices=True)
        tg = torch.from_numpy(uniform(rng, tuple(y.shape), dtype))

        def run():
            with torch.inference_mode():
                return torch.ops.aten.max_pool2d_with_indices_backward(tg, tx, [k, k], [s, s], [p, p],
                                                                      [1, 1], False, ti)
    else:
        with torch.inference_mode():
            y = f(tx, k, s, p)
        tg = torch.from_numpy(uniform(rng, tuple(y.shape), dtype))

        def run():
            with torch.inference_mode():
                return torch.ops.aten.avg_pool2d_backward(tg, tx, [k, k], [s, s], [p, p], False, True, None)
    benchmark(run)
