"""The layer grammar of DESIGN.md: parse, print back, reject bad specs by name."""
import pytest

from fastconv._layers import Conv, FC, Flatten, Pool, as_layers, parse


def test_design_example():
    layers = parse("conv(64,5,s=2,p=2) conv(128,7,s=2) maxpool(2) flatten fc(10)")
    assert layers == [
        Conv(64, (5, 5), (2, 2), (2, 2)),
        Conv(128, (7, 7), (2, 2)),
        Pool("max", (2, 2), (2, 2)),
        Flatten(),
        FC(10),
    ]


def test_defaults_pairs_and_keywords():
    (c,) = parse("conv(32, 3x5, s=2x1, p=1x2, d=2, g=4, bias=0)")
    assert c == Conv(32, (3, 5), (2, 1), (1, 2), (2, 2), 4, False)
    (c,) = parse("conv(32,3)")
    assert (c.stride, c.padding, c.dilation, c.groups, c.bias) == ((1, 1), (0, 0), (1, 1), 1, True)
    # positional in the documented order, and long names
    assert parse("conv(8,3,2,1,1,1,0)") == parse("conv(out=8, kernel=3, stride=2, padding=1, bias=0)")
    assert parse("conv(8,3,p=same)")[0].padding == "same"
    assert parse("avgpool(3, s=2, p=1)") == [Pool("avg", (3, 3), (2, 2), (1, 1))]
    assert parse("maxpool(3x2)")[0].stride == (3, 2)          # stride defaults to the kernel
    assert parse("fc(10, bias=0)") == [FC(10, False)]


def test_separators_and_case():
    a = parse("conv(8,3) maxpool(2) flatten fc(10)")
    assert parse(" conv(8, 3),maxpool(2);\n flatten ,fc(10) ") == a
    assert parse("CONV(8,3) MaxPool(2) Flatten FC(10)") == a


@pytest.mark.parametrize("spec", [
    "conv(64,5,s=2,p=2)", "conv(128,7,s=2)", "maxpool(2)", "avgpool(3,s=2,p=1)", "flatten",
    "fc(10)", "fc(10,bias=0)", "conv(32,3x5,s=2x1,p=same,d=2,g=4,bias=0)", "maxpool(3x2,s=1,p=1x0)",
])
def test_str_round_trip(spec):
    (layer,) = parse(spec)
    assert str(layer) == spec
    assert parse(str(layer)) == [layer]


@pytest.mark.parametrize("spec,token,why", [
    ("conv(64", "conv(64", "cannot parse"),
    ("conv(64) maxpool(2)", "conv(64)", "needs k"),
    ("conv(64,0)", "conv(64,0)", "k must be >= 1"),
    ("conv(64,3,s=0)", "conv(64,3,s=0)", "s must be >= 1"),
    ("conv(64,3,d=0)", "conv(64,3,d=0)", "d must be >= 1"),
    ("conv(64,3,g=0)", "conv(64,3,g=0)", "g must be >= 1"),
    ("conv(64,3,p=-1)", "conv(64,3,p=-1)", "p="),
    ("conv(0,3)", "conv(0,3)", "out must be >= 1"),
    ("conv(a,3)", "conv(a,3)", "out='a'"),
    ("conv(8,3,q=1)", "conv(8,3,q=1)", "no argument 'q'"),
    ("conv(8,3,s=1,s=2)", "conv(8,3,s=1,s=2)", "given twice"),
    ("conv(8,k=3,3)", "conv(8,k=3,3)", "after a keyword"),
    ("conv(8,3,1,0,1,1,1,9)", "conv(8,3,1,0,1,1,1,9)", "at most 7"),
    ("conv(8,,3)", "conv(8,,3)", "empty argument"),
    ("pool(2)", "pool(2)", "unknown layer 'pool'"),
    ("maxpool(2,d=2)", "maxpool(2,d=2)", "no argument 'd'"),
    ("maxpool(2,p=same)", "maxpool(2,p=same)", "p='same'"),
    ("fc(10,bias=2)", "fc(10,bias=2)", "bias must be 0 or 1"),
    ("flatten(1)", "flatten(1)", "at most 0"),
    ("conv(8,3)x", "conv(8,3)x", "cannot parse"),
    ("conv(8,3) 12", "12", "cannot parse"),
    ("conv(8,3x)", "conv(8,3x)", "k='3x'"),
])
def test_bad_specs_name_the_token(spec, token, why):
    with pytest.raises(ValueError) as info:
        parse(spec)
    msg = str(info.value)
    assert repr(token) in msg and why in msg


def test_as_layers():
    objs = parse("conv(8,3) flatten")
    assert as_layers(objs) == objs
    assert as_layers("conv(8,3) flatten") == objs
    assert as_layers([("conv", 8, 3), ("flatten",)]) == objs
    assert as_layers([("conv", 8, 3, {"s": 2, "p": (1, 0)})]) == [Conv(8, (3, 3), (2, 2), (1, 0))]
    assert as_layers(objs[0]) == [objs[0]]
    with pytest.raises(ValueError, match="empty"):
        as_layers([])
    with pytest.raises(ValueError, match="needs k"):
        as_layers([("conv", 8)])
    with pytest.raises(TypeError):
        as_layers([3.5])
    with pytest.raises(TypeError):
        parse(None)
    with pytest.raises(ValueError, match="empty"):
        parse("   ")
