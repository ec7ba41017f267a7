"""Built-in layer suites for ``fastconv bench`` and the pytest-benchmark suite.

Each layer is a real layer of a well-known network at batch 1 (inference
sizes; the CLI's ``--batch`` scales them).  Shapes are NCHW; convolution
weights follow PyTorch, ``(C_out, C_in/groups, kH, kW)``.
"""
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Layer:
    """One benchmark layer.

    ``op`` is ``"conv2d"``, ``"max_pool2d"`` or ``"avg_pool2d"``.  For a
    convolution, ``out_channels``/``kernel``/``stride``/``padding``/
    ``dilation``/``groups`` have PyTorch's meaning; for a pool, ``kernel``,
    ``stride`` and ``padding`` do.
    """
    name: str
    op: str
    input: tuple
    kernel: int
    out_channels: int = 0
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    tags: tuple = field(default=())

    @property
    def is_conv(self):
        return self.op == "conv2d"

    @property
    def weight(self):
        """Weight shape of a convolution layer (None for pools)."""
        if not self.is_conv:
            return None
        return (self.out_channels, self.input[1] // self.groups, self.kernel, self.kernel)

    def with_batch(self, n):
        return replace(self, input=(int(n),) + tuple(self.input[1:]))

    def describe(self):
        n, c, h, w = self.input
        s = f"x {n}x{c}x{h}x{w}"
        if self.is_conv:
            s += " w " + "x".join(map(str, self.weight))
        else:
            s += f" k={self.kernel}"
        s += f" s={self.stride} p={self.padding}"
        if self.dilation != 1:
            s += f" d={self.dilation}"
        if self.groups != 1:
            s += f" g={self.groups}"
        return s


def _conv(name, c_in, hw, c_out, k, s=1, p=None, d=1, g=1):
    if p is None:
        p = d * (k - 1) // 2     # "same" padding for odd kernels at stride 1
    return Layer(name, "conv2d", (1, c_in, hw, hw), k, c_out, s, p, d, g)


def _dw(name, c, hw, s=1):
    return _conv(name, c, hw, c, 3, s, 1, 1, c)


def _pool(name, op, c, hw, k, s=None, p=0):
    return Layer(name, op, (1, c, hw, hw), k, 0, k if s is None else s, p)


SUITES = {
    "resnet18": [
        _conv("conv1", 3, 224, 64, 7, 2, 3),
        _conv("layer1.conv", 64, 56, 64, 3),
        _conv("layer2.conv1", 64, 56, 128, 3, 2),
        _conv("layer2.conv2", 128, 28, 128, 3),
        _conv("layer2.downsample", 64, 56, 128, 1, 2, 0),
        _conv("layer3.conv1", 128, 28, 256, 3, 2),
        _conv("layer3.conv2", 256, 14, 256, 3),
        _conv("layer4.conv1", 256, 14, 512, 3, 2),
        _conv("layer4.conv2", 512, 7, 512, 3),
    ],
    "resnet50": [
        _conv("layer1.conv1", 256, 56, 64, 1),
        _conv("layer1.conv2", 64, 56, 64, 3),
        _conv("layer1.conv3", 64, 56, 256, 1),
        _conv("layer2.conv1", 512, 28, 128, 1),
        _conv("layer2.conv2", 128, 28, 128, 3),
        _conv("layer3.conv1", 1024, 14, 256, 1),
        _conv("layer3.conv2", 256, 14, 256, 3),
        _conv("layer4.conv1", 2048, 7, 512, 1),
        _conv("layer4.conv2", 512, 7, 512, 3),
    ],
    "vgg16": [
        _conv("conv1_2", 64, 224, 64, 3),
        _conv("conv2_2", 128, 112, 128, 3),
        _conv("conv3_3", 256, 56, 256, 3),
        _conv("conv4_3", 512, 28, 512, 3),
        _conv("conv5_3", 512, 14, 512, 3),
    ],
    "mobilenet_v2": [
        _dw("dw1", 32, 112),
        _dw("dw2.s2", 96, 112, 2),
        _dw("dw3", 144, 56),
        _dw("dw4.s2", 144, 56, 2),
        _dw("dw5", 192, 28),
        _dw("dw8", 384, 14),
        _dw("dw12", 576, 14),
        _dw("dw15", 960, 7),
        _conv("expand.1x1", 24, 56, 144, 1),
    ],
    "deeplab": [
        _conv("layer3.d2", 128, 65, 128, 3, d=2),
        _conv("layer4.d4", 256, 33, 256, 3, d=4),
        _conv("aspp.d6", 256, 33, 256, 3, d=6),
        _conv("aspp.d12", 256, 33, 256, 3, d=12),
        _conv("aspp.d18", 256, 33, 256, 3, d=18),
    ],
    "first": [
        _conv("resnet.conv1.7x7s2", 3, 224, 64, 7, 2, 3),
        _conv("vgg.conv1_1", 3, 224, 64, 3),
        _conv("mobilenet.conv.s2", 3, 224, 32, 3, 2, 1),
        _conv("alexnet.conv1.11x11s4", 3, 224, 64, 11, 4, 2),
    ],
    "pool": [
        _pool("resnet.maxpool.3x3s2", "max_pool2d", 64, 112, 3, 2, 1),
        _pool("vgg.maxpool.2x2", "max_pool2d", 64, 224, 2),
        _pool("densenet.avgpool.2x2", "avg_pool2d", 256, 56, 2),
        _pool("resnet.global.avgpool", "avg_pool2d", 512, 7, 7),
    ],
}

#: ``fastconv bench --quick``: one small layer of each kind (seconds, not minutes).
QUICK = [
    ("resnet18", _conv("layer2.conv2@28", 64, 28, 64, 3)),
    ("resnet50", _conv("layer2.conv1x1@28", 128, 28, 64, 1)),
    ("first", _conv("mobilenet.conv.s2@112", 3, 112, 32, 3, 2, 1)),
    ("mobilenet_v2", _dw("dw@28", 144, 28)),
    ("deeplab", _conv("d2@33", 64, 33, 64, 3, d=2)),
    ("pool", _pool("maxpool.3x3s2@56", "max_pool2d", 64, 56, 3, 2, 1)),
    ("pool", _pool("avgpool.2x2@28", "avg_pool2d", 64, 28, 2)),
]


def names():
    """Suite names accepted by ``fastconv bench --suite``."""
    return list(SUITES)


def layers(suites=None, quick=False):
    """``[(suite, Layer), ...]`` for the given suite names (all when None)."""
    if suites is None:
        suites = names()
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise ValueError(f"unknown suite {unknown[0]!r}; choose from {', '.join(names())}")
    if quick:
        return [(s, l) for s, l in QUICK if s in suites]
    return [(s, l) for s in suites for l in SUITES[s]]
