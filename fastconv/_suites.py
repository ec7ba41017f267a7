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


def _conv(name, c_in, hw, c_out, k, s=1, p=None, d=1, g=1, n=1):
    if p is None:
        p = d * (k - 1) // 2     # "same" padding for odd kernels at stride 1
    return Layer(name, "conv2d", (n, c_in, hw, hw), k, c_out, s, p, d, g)


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


# ---------------------------------------------------------------- suites of ``algo="auto"``
# bench/bench_auto.py fits fastconv/_auto.py's thresholds on AUTO["train"] and
# measures them on the held-out suites; they are defined here, once, next to
# the networks they come from.  No training layer has a held-out layer's
# geometry (tests/test_auto.py checks it).

def _from(suite, *names):
    """Layers of ``SUITES[suite]`` (all, or those named), renamed ``suite.name``."""
    pick = [l for l in SUITES[suite] if not names or l.name in names]
    assert not names or len(pick) == len(names), (suite, names)
    return [replace(l, name=f"{suite}.{l.name}") for l in pick]


#: Held-out A: ResNet-18 (all), ResNet-50 bottleneck 1x1s, VGG-16, MobileNet-V2
#: stem, depthwise and pointwise, DeepLab-v3 (ResNet-101 widths) dilated + ASPP.
HELDOUT_A = (
    _from("resnet18")
    + _from("resnet50", "layer1.conv1", "layer2.conv1", "layer3.conv1", "layer4.conv1")
    + [_conv("resnet50.layer1.conv3", 64, 56, 256, 1),
       _conv("resnet50.layer2.conv3", 128, 28, 512, 1),
       _conv("resnet50.layer3.ds.s2", 512, 28, 1024, 1, 2, 0),
       _conv("resnet50.layer4.conv3", 512, 7, 2048, 1)]
    + _from("vgg16")
    + _from("first", "mobilenet.conv.s2")
    + _from("mobilenet_v2", *[l.name for l in SUITES["mobilenet_v2"] if l.groups > 1])
    + [_conv("mobilenet_v2.pw 32-16@112", 32, 112, 16, 1),
       _conv("mobilenet_v2.pw 16-96@112", 16, 112, 96, 1),
       _conv("mobilenet_v2.pw 24-144@56", 24, 56, 144, 1),
       _conv("mobilenet_v2.pw 144-24@56", 144, 56, 24, 1),
       _conv("mobilenet_v2.pw 192-32@28", 192, 28, 32, 1),
       _conv("mobilenet_v2.pw 384-64@14", 384, 14, 64, 1),
       _conv("mobilenet_v2.pw 576-96@14", 576, 14, 96, 1),
       _conv("mobilenet_v2.pw 960-160@7", 960, 7, 160, 1),
       _conv("mobilenet_v2.pw 320-1280@7", 320, 7, 1280, 1),
       # DeepLab-v3 on ResNet-101 (output stride 8 / 16) and its ASPP
       _conv("deeplab.r101.layer3.d2", 256, 65, 256, 3, d=2),
       _conv("deeplab.r101.layer4.d4", 512, 65, 512, 3, d=4),
       _conv("deeplab.r101.aspp.d6", 2048, 33, 256, 3, d=6),
       _conv("deeplab.r101.aspp.d12", 2048, 33, 256, 3, d=12),
       _conv("deeplab.r101.aspp.d18", 2048, 33, 256, 3, d=18)]
)

#: Held-out B (other networks; added after A had been looked at once).
HELDOUT_B = [
    # EfficientNet-B0 (depthwise 3x3/5x5, projections)
    _conv("effb0.dw5 s2 144@56", 144, 56, 144, 5, 2, 2, g=144),
    _conv("effb0.dw5 240@28", 240, 28, 240, 5, g=240),
    _conv("effb0.dw3 480@14", 480, 14, 480, 3, g=480),
    _conv("effb0.dw5 672@14", 672, 14, 672, 5, g=672),
    _conv("effb0.dw5 1152@7", 1152, 7, 1152, 5, g=1152),
    _conv("effb0.pw 480-80@14", 480, 14, 80, 1),
    _conv("effb0.pw 80-480@14", 80, 14, 480, 1),
    _conv("effb0.pw 1152-320@7", 1152, 7, 320, 1),
    _conv("effb0.pw 16-96@112", 16, 112, 96, 1),
    # ResNeXt-50 32x4d grouped 3x3
    _conv("resnext.g32 128@56", 128, 56, 128, 3, g=32),
    _conv("resnext.g32 256@28", 256, 28, 256, 3, g=32),
    _conv("resnext.g32 512@14", 512, 14, 512, 3, g=32),
    _conv("resnext.g32 1024@7", 1024, 7, 1024, 3, g=32),
    # Inception-v3 and AlexNet
    _conv("incv3.conv 32-64@147", 32, 147, 64, 3),
    _conv("incv3.1x1 64-80@73", 64, 73, 80, 1, p=0),
    _conv("incv3.conv 80-192@71", 80, 71, 192, 3, p=0),
    _conv("incv3.5x5 48-64@35", 48, 35, 64, 5),
    _conv("incv3.3x3 s2 288-384@35", 288, 35, 384, 3, 2, 0),
    _conv("alexnet.conv2 5x5 64-192@27", 64, 27, 192, 5),
    _conv("alexnet.conv3 192-384@13", 192, 13, 384, 3),
    # dilated: ESPNet-like pyramid, DeepLab-v3 MobileNet head
    _conv("esp.d2 32@128", 32, 128, 32, 3, d=2),
    _conv("esp.d8 32@128", 32, 128, 32, 3, d=8),
    _conv("esp.d16 64@64", 64, 64, 64, 3, d=16),
    _conv("dlv3mb.dw d2 960@33", 960, 33, 960, 3, d=2, g=960),
    _conv("dlv3mb.aspp d12 320-256@33", 320, 33, 256, 3, d=12),
]

#: Training suite: other widths, sizes, kernels, strides, groups, dilation
#: rates and batches than the held-out suites'.
TRAIN = [
    # few input channels / first layers of other nets
    _conv("t.first 3-16 3x3 @96", 3, 96, 16, 3),
    _conv("t.first 3-24 5x5s2 @128", 3, 128, 24, 5, 2),
    _conv("t.first 3-32 3x3s2 @160", 3, 160, 32, 3, 2, 1),
    _conv("t.first 4-32 3x3 @64", 4, 64, 32, 3),
    _conv("t.alexnet 3-64 11x11s4 @127", 3, 127, 64, 11, 4, 2),
    _conv("t.narrow 8-8 3x3 @64", 8, 64, 8, 3),
    _conv("t.narrow 8-32 3x3 @48", 8, 48, 32, 3),
    _conv("t.narrow 16-16 3x3 @80", 16, 80, 16, 3),
    _conv("t.narrow 12-48 3x3 @40", 12, 40, 48, 3),
    _conv("t.narrow 32-8 3x3 @40", 32, 40, 8, 3),
    # dense 3x3 / 5x5 / 7x7, various widths
    _conv("t.3x3 32 @64", 32, 64, 32, 3),
    _conv("t.3x3 48 @40", 48, 40, 48, 3),
    _conv("t.3x3 96 @20", 96, 20, 96, 3),
    _conv("t.3x3 160 @10", 160, 10, 160, 3),
    _conv("t.3x3 384 @5", 384, 5, 384, 3),
    _conv("t.3x3 s2 48-96 @40", 48, 40, 96, 3, 2),
    _conv("t.3x3 s2 192-384 @12", 192, 12, 384, 3, 2),
    _conv("t.3x3 64 b4 @20", 64, 20, 64, 3, n=4),
    _conv("t.5x5 32-64 @27", 32, 27, 64, 5),
    _conv("t.5x5 96-128 @13", 96, 13, 128, 5),
    _conv("t.7x7 24-24 @32", 24, 32, 24, 7),
    _conv("t.1x7 like 7x7 s2 64 @33", 64, 33, 64, 7, 2),
    # pointwise 1x1 (inception / efficientnet / shufflenet widths)
    _conv("t.1x1 40-240 @28", 40, 28, 240, 1),
    _conv("t.1x1 240-40 @28", 240, 28, 40, 1),
    _conv("t.1x1 112-672 @14", 112, 14, 672, 1),
    _conv("t.1x1 672-112 @14", 672, 14, 112, 1),
    _conv("t.1x1 1152-192 @7", 1152, 7, 192, 1),
    _conv("t.1x1 8-64 @64", 8, 64, 64, 1),
    _conv("t.1x1 64-8 @64", 64, 64, 8, 1),
    _conv("t.1x1 s2 96-192 @30", 96, 30, 192, 1, 2, 0),
    _conv("t.1x1 128 b4 @16", 128, 16, 128, 1, n=4),
    # grouped (ResNeXt, ShuffleNet) and depthwise of other sizes / kernels
    _conv("t.group32 3x3 128 @28", 128, 28, 128, 3, g=32),
    _conv("t.group8 3x3 256 @14", 256, 14, 256, 3, g=8),
    _conv("t.group4 1x1 240 @28", 240, 28, 240, 1, g=4),
    _conv("t.group2 3x3 64 @32", 64, 32, 64, 3, g=2),
    _conv("t.dw3 64 @80", 64, 80, 64, 3, g=64),
    _conv("t.dw3 s2 240 @28", 240, 28, 240, 3, 2, 1, g=240),
    _conv("t.dw5 120 @28", 120, 28, 120, 5, g=120),
    _conv("t.dw5 s2 480 @14", 480, 14, 480, 5, 2, 2, g=480),
    _conv("t.dw3 1280 @5", 1280, 5, 1280, 3, g=1280),
    _conv("t.dw7 96 @32", 96, 32, 96, 7, g=96),
    # dilated, rates and widths unlike DeepLab's
    _conv("t.dil3 64 @48", 64, 48, 64, 3, d=3),
    _conv("t.dil5 128 @29", 128, 29, 128, 3, d=5),
    _conv("t.dil8 96 @40", 96, 40, 96, 3, d=8),
    _conv("t.dil16 128 @33", 128, 33, 128, 3, d=16),
    _conv("t.dil2 32-64 @56", 32, 56, 64, 3, d=2),
    _conv("t.dil2 s2 64 @40", 64, 40, 64, 3, 2, d=2),
    _conv("t.dil24 512 @24", 512, 24, 128, 3, d=24),
    _conv("t.dil4 8-16 @48", 8, 48, 16, 3, d=4),
    _conv("t.dil3 dw 96 @40", 96, 40, 96, 3, d=3, g=96),
    _conv("t.dil2 1024-256 @20", 1024, 20, 256, 3, d=2),
    # wide layers on large images (weights far beyond L2), 3x3 and strided
    _conv("t.3x3 96 @96", 96, 96, 96, 3),
    _conv("t.3x3 192 @48", 192, 48, 192, 3),
    _conv("t.3x3 320 @24", 320, 24, 320, 3),
    _conv("t.3x3 448 @20", 448, 20, 448, 3),
    _conv("t.3x3 768 @10", 768, 10, 768, 3),
    _conv("t.3x3 48 @160", 48, 160, 48, 3),
    _conv("t.3x3 s2 96-192 @80", 96, 80, 192, 3, 2),
    _conv("t.3x3 s2 384-768 @20", 384, 20, 768, 3, 2),
    # first layers with large kernels / strides
    _conv("t.first 3-48 7x7s2 @128", 3, 128, 48, 7, 2, 3),
    _conv("t.first 3-96 7x7s2 @96", 3, 96, 96, 7, 2, 3),
    _conv("t.first 3-64 5x5 @64", 3, 64, 64, 5),
    _conv("t.first 3-64 3x3 @128", 3, 128, 64, 3),
    _conv("t.first 3-24 3x3s2 @192", 3, 192, 24, 3, 2, 1),
    # 1x1 with few channels on large images, and wide 1x1 on small ones
    _conv("t.1x1 16-64 @96", 16, 96, 64, 1),
    _conv("t.1x1 64-16 @96", 64, 96, 16, 1),
    _conv("t.1x1 24-96 @64", 24, 64, 96, 1),
    _conv("t.1x1 96-24 @64", 96, 64, 24, 1),
    _conv("t.1x1 32-192 @48", 32, 48, 192, 1),
    _conv("t.1x1 192-32 @48", 192, 48, 32, 1),
    _conv("t.1x1 128-512 @40", 128, 40, 512, 1),
    _conv("t.1x1 768-192 @20", 768, 20, 192, 1),
    _conv("t.1x1 1536-384 @10", 1536, 10, 384, 1),
    _conv("t.1x1 384-1536 @5", 384, 5, 1536, 1),
    _conv("t.1x1 s2 256-512 @40", 256, 40, 512, 1, 2, 0),
    # depthwise: more sizes, strides
    _conv("t.dw3 48 @150", 48, 150, 48, 3, g=48),
    _conv("t.dw3 s2 64 @150", 64, 150, 64, 3, 2, 1, g=64),
    _conv("t.dw3 240 @40", 240, 40, 240, 3, g=240),
    _conv("t.dw3 s2 288 @40", 288, 40, 288, 3, 2, 1, g=288),
    _conv("t.dw3 672 @10", 672, 10, 672, 3, g=672),
    # dilated: wide layers, rates between DeepLab's
    _conv("t.dil3 384 @40", 384, 40, 384, 3, d=3),
    _conv("t.dil9 1024-128 @30", 1024, 30, 128, 3, d=9),
    _conv("t.dil2 192 @80", 192, 80, 192, 3, d=2),
    _conv("t.dil5 768 @40", 768, 40, 256, 3, d=5),
    # added (session 4) to cover regions the held-out suites reach and the
    # layers above did not: large images (N*H*W 40k-58k), wide 3x3 at
    # 1.3k-2.3k pixels, depthwise dilated, 1x1 with og ~ cg
    _conv("t.3x3 40 @200", 40, 200, 40, 3),
    _conv("t.3x3 24-48 @240", 24, 240, 48, 3),
    _conv("t.3x3 288 @48", 288, 48, 288, 3),
    _conv("t.3x3 384 @36", 384, 36, 384, 3),
    _conv("t.dil2 dw 576 @20", 576, 20, 576, 3, d=2, g=576),
    _conv("t.dil4 dw 128 @48", 128, 48, 128, 3, d=4, g=128),
    _conv("t.1x1 48-64 @64", 48, 64, 64, 1),
    _conv("t.1x1 256-48 @20", 256, 20, 48, 1),
    # depthwise planes of 200-400 outputs (only dilated ones were there), strided 5x5
    _conv("t.dw3 320 @18", 320, 18, 320, 3, g=320),
    _conv("t.dw5 200 @16", 200, 16, 200, 5, g=200),
    _conv("t.dw5 s2 192 @40", 192, 40, 192, 5, 2, 2, g=192),
    # strided 3x3 with 1.7-4.2 MiB of weights on 169-289 outputs (the strided
    # weight limit had only 2.5 MiB on 36 and 10 MiB on 100 outputs to go by)
    _conv("t.3x3 s2 160-320 @30", 160, 30, 320, 3, 2),
    _conv("t.3x3 s2 224-448 @34", 224, 34, 448, 3, 2),
    _conv("t.3x3 s2 320-384 @26", 320, 26, 384, 3, 2),
    # added (session 6) for families the held-out suites have and TRAIN lacked:
    # grouped 3x3 with 6-32 channels per group on 25-1600 outputs (only cg 4
    # @28 and cg 32 @14 were there), pointwise layers with 16-32 output
    # channels and wide-output 1x1s on 400-1000 pixels, strided depthwise 3x3
    # on 300-2300 outputs, dilated layers with 27-32% of the taps in padding
    _conv("t.group16 3x3 128 @20", 128, 20, 128, 3, g=16),
    _conv("t.group24 3x3 192 @36", 192, 36, 192, 3, g=24),
    _conv("t.group40 3x3 320 @10", 320, 10, 320, 3, g=40),
    _conv("t.group8 3x3 64 @40", 64, 40, 64, 3, g=8),
    _conv("t.group48 3x3 288 @20", 288, 20, 288, 3, g=48),
    _conv("t.group16 3x3 256 @10", 256, 10, 256, 3, g=16),
    _conv("t.group30 3x3 480 @12", 480, 12, 480, 3, g=30),
    _conv("t.group12 3x3 384 @6", 384, 6, 384, 3, g=12),
    _conv("t.group20 3x3 640 @9", 640, 9, 640, 3, g=20),
    _conv("t.group24 3x3 768 @5", 768, 5, 768, 3, g=24),
    _conv("t.1x1 128-24 @48", 128, 48, 24, 1),
    _conv("t.1x1 160-24 @40", 160, 40, 24, 1),
    _conv("t.1x1 112-32 @36", 112, 36, 32, 1),
    _conv("t.1x1 48-16 @80", 48, 80, 16, 1),
    _conv("t.1x1 24-16 @96", 24, 96, 16, 1),
    _conv("t.1x1 96-384 @26", 96, 26, 384, 1),
    _conv("t.1x1 160-640 @24", 160, 24, 640, 1),
    _conv("t.1x1 80-320 @30", 80, 30, 320, 1),
    _conv("t.dw3 s2 120 @64", 120, 64, 120, 3, 2, 1, g=120),
    _conv("t.dw3 s2 160 @48", 160, 48, 160, 3, 2, 1, g=160),
    _conv("t.dw3 s2 72 @96", 72, 96, 72, 3, 2, 1, g=72),
    _conv("t.dw3 s2 200 @36", 200, 36, 200, 3, 2, 1, g=200),
    _conv("t.dil12 48 @48", 48, 48, 48, 3, d=12),
    _conv("t.dil20 96 @80", 96, 80, 96, 3, d=20),
    _conv("t.dil16 80 @60", 80, 60, 80, 3, d=16),
    _conv("t.dil10 96 @44", 96, 44, 96, 3, d=10),
    _conv("t.dil8 64 @36", 64, 36, 64, 3, d=8),
    # the same padding fraction on planes of a multiple of 4 KB
    _conv("t.dil8 96 @32", 96, 32, 96, 3, d=8),
    _conv("t.dil24 48 @96", 48, 96, 48, 3, d=24),
    # grouped with 4 channels per group on large planes and 8 on 500-1000
    # outputs; strided 1x1 (im2col needs a column buffer) of more widths
    _conv("t.group16 3x3 64 @64", 64, 64, 64, 3, g=16),
    _conv("t.group24 3x3 96 @48", 96, 48, 96, 3, g=24),
    _conv("t.group20 3x3 160 @26", 160, 26, 160, 3, g=20),
    _conv("t.group32 3x3 256 @24", 256, 24, 256, 3, g=32),
    _conv("t.group10 3x3 80 @30", 80, 30, 80, 3, g=10),
    _conv("t.1x1 s2 48-96 @64", 48, 64, 96, 1, 2, 0),
    _conv("t.1x1 s2 160-320 @36", 160, 36, 320, 1, 2, 0),
    _conv("t.1x1 s2 320-640 @20", 320, 20, 640, 1, 2, 0),
    _conv("t.pw s2 32-64 @60", 32, 60, 64, 1, 2, 0),
    _conv("t.pw s2 96-192 @52", 96, 52, 192, 1, 2, 0),
    _conv("t.pw s2 48-96 @72", 48, 72, 96, 1, 2, 0),
    _conv("t.pw s2 128-256 @50", 128, 50, 256, 1, 2, 0),
    # narrow 3x3 on 10k-21k outputs (the AVX2 pixel limit had only 40-96
    # channels on 9k-58k to go by)
    _conv("t.big 3x3 32 @112", 32, 112, 32, 3),
    _conv("t.big 3x3 24 @144", 24, 144, 24, 3),
    _conv("t.big 3x3 16-32 @128", 16, 128, 32, 3),
    _conv("t.big 3x3 48 @104", 48, 104, 48, 3),
]

#: ``bench/bench_auto.py --suite``: the split between fitting and measuring.
AUTO = {"train": TRAIN, "heldout": HELDOUT_A, "heldout_b": HELDOUT_B}
