"""fastconv.summary: the DESIGN example checked by hand, data access, errors."""
import pytest

import fastconv.summary  # noqa: F401  (the submodule; fastconv.summary is the function)
import sys
summary_mod = sys.modules["fastconv.summary"]
from fastconv import _layers
from fastconv import cost

summary = summary_mod.summary

DESIGN = "conv(64,5,s=2,p=2) conv(128,7,s=2) maxpool(2) flatten fc(10)"


def test_design_example_by_hand():
    s = summary(DESIGN, (3, 256, 256))
    r = s.rows
    assert [row["layer"] for row in r] == ["conv(64,5,s=2,p=2)", "conv(128,7,s=2)", "maxpool(2)",
                                           "flatten", "fc(10)"]
    # conv1: (256 + 2*2 - 5)//2 + 1 = 128; weights 64*3*5*5 + 64 bias; 75 mults per output,
    # 74 adds + 1 for the bias
    assert r[0]["input_shape"] == (3, 256, 256) and r[0]["output_shape"] == (64, 128, 128)
    assert r[0]["params"] == 4800 + 64 == 4864
    assert r[0]["mults"] == 64 * 128 * 128 * 75 == 78_643_200
    assert r[0]["adds"] == 64 * 128 * 128 * (74 + 1)
    # conv2: (128 - 7)//2 + 1 = 61; 64*49 = 3136 mults per output
    assert r[1]["output_shape"] == (128, 61, 61)
    assert r[1]["params"] == 128 * 64 * 49 + 128 == 401_536
    assert r[1]["mults"] == r[1]["adds"] == 128 * 61 * 61 * 3136 == 1_493_639_168
    # maxpool 2: 61//2 = 30; 3 comparisons per output
    assert r[2]["output_shape"] == (128, 30, 30)
    assert r[2]["comparisons"] == 128 * 30 * 30 * 3 == 345_600
    assert r[2]["params"] == r[2]["mults"] == r[2]["adds"] == 0
    assert r[3]["output_shape"] == (115_200,) and r[3]["flops"] == 0
    # fc: 115200 -> 10, with bias
    assert r[4]["output_shape"] == (10,)
    assert r[4]["params"] == 1_152_000 + 10
    assert r[4]["mults"] == r[4]["adds"] == 1_152_000
    t = s.totals
    assert t["params"] == 4864 + 401_536 + 1_152_010 == 1_558_410
    assert t["mults"] == 78_643_200 + 1_493_639_168 + 1_152_000 == 1_573_434_368
    assert t["adds"] == t["mults"]
    assert t["comparisons"] == 345_600
    assert t["flops"] == 2 * 1_573_434_368 + 345_600
    # receptive field: 5 (jump 2, start 0); 5+6*2 = 17 (jump 4, start 0+3*2 = 6);
    # 17+1*4 = 21 (jump 8, start 6+0.5*4 = 8); flatten keeps it; fc covers the 30x30 grid:
    # 21+29*8 = 253, start 8+14.5*8 = 124
    assert [(x["rf_size"][0], x["rf_jump"][0], x["rf_start"][0]) for x in r] == \
        [(5, 2, 0), (17, 4, 6), (21, 8, 8), (21, 8, 8), (253, 8, 124)]
    assert s.output_shape == (10,) and s.input_shape == (3, 256, 256)


def test_table_text():
    text = str(summary(DESIGN, "3x256x256"))
    lines = text.splitlines()
    header = lines[0]
    for col in ("layer", "input", "output", "kernel", "params", "mults", "adds", "rf size",
                "rf jump", "rf start"):
        assert col in header
    assert "1,493,639,168" in text and "1,558,410" in text and "1,573,434,368" in text
    assert "64x128x128" in text and "5x5" in text and "253" in text
    total = [ln for ln in lines if ln.split()[:1] == ["total"]]
    assert len(total) == 1 and "1,558,410" in total[0]
    assert repr(summary(DESIGN, (3, 256, 256))) == text


def test_batched_input_and_layer_list():
    one = summary(DESIGN, (3, 256, 256))
    four = summary(_layers.parse(DESIGN), (4, 3, 256, 256))
    assert four.rows[0]["input_shape"] == (4, 3, 256, 256)
    assert four.rows[-1]["output_shape"] == (4, 10)
    assert four.totals["mults"] == 4 * one.totals["mults"]
    assert four.totals["params"] == one.totals["params"]
    tuples = summary([("conv", 64, 5, {"s": 2, "p": 2}), ("conv", 128, 7, {"s": 2}),
                      ("maxpool", 2), "flatten", ("fc", 10)], (3, 256, 256))
    assert tuples.rows == one.rows


def test_rows_agree_with_cost_model():
    spec = "conv(8,3,p=same) avgpool(3,s=2,p=1) conv(16,3x1,d=2x1,g=8,bias=0) maxpool(1x2,s=1)"
    s = summary(spec, (2, 4, 9, 9))
    expected = [cost.conv2d((2, 4, 9, 9), (8, 4, 3, 3), padding="same", bias=True),
                cost.avg_pool2d((2, 8, 9, 9), 3, 2, 1),
                cost.conv2d((2, 8, 5, 5), (16, 1, 3, 1), dilation=(2, 1), groups=8),
                cost.max_pool2d((2, 16, 1, 5), (1, 2), 1)]
    assert len(s.rows) == len(expected)
    for row, c in zip(s.rows, expected):
        assert row["output_shape"] == c.output_shape
        assert (row["params"], row["mults"], row["adds"], row["comparisons"]) == \
            (c.params, c.mults, c.adds, c.comparisons)
        assert (row["effective_mults"], row["effective_adds"]) == (c.effective_mults, c.effective_adds)
    assert s.totals["flops"] == sum(c.flops for c in expected)
    # the dilated 3x1 conv leaves a 1x5 grid: a 2x2 max pool does not fit
    with pytest.raises(ValueError, match="layer 4"):
        summary(spec.replace("maxpool(1x2,s=1)", "maxpool(2,s=1)"), (2, 4, 9, 9))


def test_fc_without_flatten_and_rf_pairs():
    s = summary("conv(4,3x1,s=2x1) fc(5)", (1, 7, 6))
    assert s.rows[0]["output_shape"] == (4, 3, 6)
    assert s.rows[1]["output_shape"] == (5,)
    assert s.rows[1]["mults"] == 5 * 4 * 3 * 6
    # conv: H size 3 jump 2 start 1; W size 1 jump 1 start 0. fc over the 3x6 grid:
    # H 3+2*2 = 7, start 1+1*2 = 3; W 1+5 = 6, start 0+2.5 = 2.5
    assert s.rows[1]["rf_size"] == (7, 6)
    assert s.rows[1]["rf_start"] == (3, 2.5)
    assert "2.5" in str(s) and "7x6" in str(s)


def test_same_padding_receptive_field_start():
    s = summary("conv(4,3,p=same) conv(4,4,p=same)", (1, 8, 8))
    # 'same' pads d*(k-1)//2 on the top/left: starts stay 0 for k=3, then +0.5 for k=4
    assert [r["rf_start"] for r in s.rows] == [(0, 0), (0.5, 0.5)]
    assert [r["output_shape"] for r in s.rows] == [(4, 8, 8), (4, 8, 8)]


@pytest.mark.parametrize("spec,shape,word", [
    ("conv(8,3) flatten conv(8,3)", (3, 8, 8), "layer 3"),
    ("conv(8,9)", (3, 8, 8), "layer 1"),
    ("conv(8,3,g=2)", (3, 8, 8), "divisible"),
    ("maxpool(4,p=3)", (3, 8, 8), "padding"),
    ("flatten maxpool(2)", (3, 8, 8), "layer 2"),
    ("conv(8,3) pool(2)", (3, 8, 8), "pool"),
    ("conv(8,3)", (3, 8), "input_shape"),
    ("conv(8,3)", "3x8xa", "input_shape"),
    ("", (3, 8, 8), "empty"),
])
def test_bad_specs(spec, shape, word):
    with pytest.raises(ValueError, match=word):
        summary(spec, shape)


def test_bad_types():
    with pytest.raises(TypeError):
        summary(42, (3, 8, 8))
    with pytest.raises(TypeError):
        summary([object()], (3, 8, 8))
    with pytest.raises(TypeError, match="input_shape"):
        summary("conv(8,3)", 5)
