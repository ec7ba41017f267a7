"""Convolution forward and backward per algorithm, PyTorch as a comparison group."""
import pytest

import fastconv as fc
from fastconv import _suites, cost

try:
    import torch
except ImportError:
    torch = None

pytest.importorskip("pytest_benchmark")

LAYERS = [l for _, l in _suites.QUICK if l.is_conv] + [
    _suites.SUITES["resnet18"][3],    # 128 -> 128, 3x3 at 28x28
    _suites.SUITES["resnet50"][5],    # 1x1, 1024 -> 256 at 14x14
]
DTYPES = ["float32", "float64"]


def _algos(op):
    return [a for a in fc.algorithms(op) if a != "auto"] + ["auto"]


def _kw(L):
    return dict(stride=L.stride, padding=L.padding, dilation=L.dilation, groups=L.groups)


def _ids(L):
    return L.name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo", _algos("conv2d"))
@pytest.mark.parametrize("layer", LAYERS, ids=_ids)
def test_conv2d_forward(benchmark, rng, uniform, record, layer, algo, dtype):
    x, w = uniform(rng, layer.input, dtype), uniform(rng, layer.weight, dtype)
    try:
        fc.conv2d(x, w, **_kw(layer), algo=algo)
    except ValueError as e:
        pytest.skip(f"{algo} does not serve this layer: {e}")
    c = cost.conv2d(layer.input, layer.weight, **_kw(layer), dtype=dtype,
                       algo="direct" if algo == "auto" else algo)
    benchmark.group = f"conv2d fwd {layer.name} {dtype}"
    record(benchmark, c, f"fastconv:{algo}", algo)
    benchmark(fc.conv2d, x, w, **_kw(layer), algo=algo)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo", _algos("conv2d_backward"))
@pytest.mark.parametrize("layer", LAYERS, ids=_ids)
def test_conv2d_backward(benchmark, rng, uniform, record, layer, algo, dtype):
    x, w = uniform(rng, layer.input, dtype), uniform(rng, layer.weight, dtype)
    c = cost.conv2d_backward(layer.input, layer.weight, **_kw(layer), dtype=dtype,
                                needs=("input", "weight"), algo="direct" if algo == "auto" else algo)
    gy = uniform(rng, cost.conv2d(layer.input, layer.weight, **_kw(layer)).output_shape, dtype)
    try:
        fc.conv2d_backward(gy, x, w, **_kw(layer), needs=("input", "weight"), algo=algo)
    except ValueError as e:
        pytest.skip(f"{algo} does not serve this layer: {e}")
    benchmark.group = f"conv2d bwd {layer.name} {dtype}"
    record(benchmark, c, f"fastconv:{algo}", algo)
    benchmark(fc.conv2d_backward, gy, x, w, **_kw(layer), needs=("input", "weight"), algo=algo)


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pas", ["fwd", "bwd"])
@pytest.mark.parametrize("layer", LAYERS, ids=_ids)
def test_conv2d_torch(benchmark, rng, uniform, record, layer, pas, dtype):
    torch.set_num_threads(fc.get_num_threads())
    x, w = uniform(rng, layer.input, dtype), uniform(rng, layer.weight, dtype)
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    L = layer
    if pas == "fwd":
        c = cost.conv2d(L.input, L.weight, **_kw(L), dtype=dtype)

        def run():
            with torch.inference_mode():
                return torch.nn.functional.conv2d(tx, tw, None, L.stride, L.padding, L.dilation, L.groups)
    else:
        c = cost.conv2d_backward(L.input, L.weight, **_kw(L), dtype=dtype, needs=("input", "weight"))
        tg = torch.from_numpy(uniform(rng, cost.conv2d(L.input, L.weight, **_kw(L)).output_shape, dtype))

        def run():
            with torch.inference_mode():
                return torch.ops.aten.convolution_backward(
                    tg, tx, tw, None, [L.stride] * 2, [L.padding] * 2, [L.dilation] * 2,
                    False, [0, 0], L.groups, [True, True, False])
    benchmark.group = f"conv2d {pas} {L.name} {dtype}"
    record(benchmark, c, "torch", "torch")
    benchmark(run)
