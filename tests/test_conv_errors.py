"""Bad input to the convolution API: a ValueError/TypeError naming the argument
and the value, never a crash or a silent wrong answer; inputs untouched."""
import numpy as np
import pytest

from fastconv import _kernels, conv

F32, F64 = np.float32, np.float64


def X(shape=(2, 3, 8, 8), dtype=F64):
    return np.ones(shape, dtype)


def W(shape=(4, 3, 3, 3), dtype=F64):
    return np.ones(shape, dtype)


# ---------------------------------------------------------------- conv2d

@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: conv.conv2d(X((3, 8, 8)), W()), ValueError, r"x must be 4-D.*\(3, 8, 8\)"),
    (lambda: conv.conv2d(X(), W((4, 3, 3))), ValueError, r"w must be 4-D.*\(4, 3, 3\)"),
    (lambda: conv.conv2d(X().astype(np.int32), W()), TypeError, "x must have dtype float32 or float64, got int32"),
    (lambda: conv.conv2d(X().astype(np.complex128), W()), TypeError, "x must have dtype .* got complex128"),
    (lambda: conv.conv2d(X(dtype=F32), W()), TypeError, "w has dtype float64 but the other inputs are float32"),
    (lambda: conv.conv2d(None, W()), TypeError, "x must be an array, got None"),
    (lambda: conv.conv2d("abc", W()), TypeError, "x must be a NumPy array, got str"),
    (lambda: conv.conv2d(X(), W((4, 2, 3, 3))), ValueError, r"w has shape \(4, 2, 3, 3\): expected C_in/groups = 3/1 = 3 in dim 1, got 2"),
    (lambda: conv.conv2d(X(), W((4, 1, 3, 3)), groups=2), ValueError, "x has 3 channels, not divisible by groups=2"),
    (lambda: conv.conv2d(X((1, 4, 5, 5)), W((3, 2, 3, 3)), groups=2), ValueError, "w has 3 output channels, not divisible by groups=2"),
    (lambda: conv.conv2d(X(), W(), groups=0), ValueError, "groups must be >= 1, got 0"),
    (lambda: conv.conv2d(X(), W(), groups=1.0), TypeError, r"groups must be an int, got 1\.0"),
    (lambda: conv.conv2d(X(), W(), stride=0), ValueError, "stride must be >= 1, got 0"),
    (lambda: conv.conv2d(X(), W(), stride=(1, -2)), ValueError, "stride must be >= 1, got -2"),
    (lambda: conv.conv2d(X(), W(), stride=(1, 2, 3)), ValueError, r"stride must be an int or a pair of ints, got \(1, 2, 3\)"),
    (lambda: conv.conv2d(X(), W(), dilation=0), ValueError, "dilation must be >= 1, got 0"),
    (lambda: conv.conv2d(X(), W(), padding=-1), ValueError, "padding must be >= 0, got -1"),
    (lambda: conv.conv2d(X(), W(), padding=1.5), TypeError, r"padding must be an int or a pair of ints, got 1\.5"),
    (lambda: conv.conv2d(X(), W(), padding="full"), ValueError, "padding must be an int, a pair, 'same' or 'valid', got 'full'"),
    (lambda: conv.conv2d(X(), W(), padding="same", stride=2), ValueError, r"padding='same' needs stride=1.*\(2, 2\)"),
    (lambda: conv.conv2d(X(), W((4, 3, 0, 3))), ValueError, r"w: kernel size must be >= 1, got 0x3"),
    (lambda: conv.conv2d(X(), W((4, 3, 9, 3))), ValueError, "kernel height 9 with dilation 1 spans 9, more than the padded input height 8"),
    (lambda: conv.conv2d(X(), W(), dilation=(1, 4)), ValueError, "kernel width 3 with dilation 4 spans 9, more than the padded input width 8"),
    (lambda: conv.conv2d(X(), W(), padding="valid", dilation=5), ValueError, "spans 11"),
    (lambda: conv.conv2d(X(), W(), np.ones(3)), ValueError, r"bias must have shape \(4,\).*got \(3,\)"),
    (lambda: conv.conv2d(X(), W(), np.ones((4, 1))), ValueError, r"bias must be 1-D"),
    (lambda: conv.conv2d(X(), W(), np.ones(4, F32)), TypeError, "bias has dtype float32"),
    (lambda: conv.conv2d(X(), W(), algo="fft"), ValueError, r"algo='fft' is unknown; choose from \['auto', 'direct'"),
    (lambda: conv.conv2d(X(), W(), algo=None), TypeError, "algo must be a string, got None"),
    (lambda: conv.conv2d(X(), W(), padding=2 ** 61), ValueError, r"output of shape .* is too large"),
    (lambda: conv.conv2d(X(), W(), stride=2 ** 63), ValueError, r"stride=\d+ is too large"),
    (lambda: conv.conv2d(X(), W(), dilation=2 ** 61), ValueError, "spans"),
])
def test_conv2d_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_unavailable_algorithms_are_value_errors():
    for algo in ("im2col", "dilated"):
        if algo in conv.algorithms("conv2d"):
            continue
        with pytest.raises(ValueError, match=f"algo='{algo}' is not available for conv2d"):
            conv.conv2d(X(), W(), algo=algo)
    if "dilated" in conv.algorithms("conv2d"):
        # the space-to-batch decomposition serves every stride/dilation, dilation 1 included
        np.testing.assert_allclose(conv.conv2d(X(), W(), algo="dilated"),
                                   conv.conv2d(X(), W(), algo="direct"), rtol=1e-12, atol=1e-12)


def test_algorithms_unknown_op():
    with pytest.raises(ValueError, match="op must be one of .* got 'conv3d'"):
        conv.algorithms("conv3d")


@pytest.mark.parametrize("make_out,exc,pattern", [
    (lambda: np.empty((2, 4, 6, 7)), ValueError, r"out has shape \(2, 4, 6, 7\), expected \(2, 4, 6, 6\)"),
    (lambda: np.empty((2, 4, 6, 6), F32), TypeError, "out has dtype float32, expected float64"),
    (lambda: np.empty((2, 4, 6, 12))[..., ::2], ValueError, "out must be C-contiguous"),
    (lambda: [[0.0]], TypeError, "out must be a NumPy array, got list"),
])
def test_bad_out(make_out, exc, pattern):
    with pytest.raises(exc, match=pattern):
        conv.conv2d(X(), W(), out=make_out())


def test_read_only_out():
    out = np.zeros((2, 4, 6, 6))
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        conv.conv2d(X(), W(), out=out)
    assert np.all(out == 0)


def test_out_overlapping_an_input_is_rejected_and_input_untouched():
    buf = np.random.default_rng(0).uniform(-1, 1, 2 * 4 * 8 * 8)
    x = buf[:2 * 3 * 64].reshape(2, 3, 8, 8)
    out = buf[-2 * 4 * 36:].reshape(2, 4, 6, 6)
    before = buf.copy()
    with pytest.raises(ValueError, match="out overlaps an input"):
        conv.conv2d(x, W(), out=out)
    assert np.array_equal(buf, before)


def test_error_leaves_out_untouched():
    out = np.full((2, 4, 6, 6), np.nan)
    with pytest.raises(ValueError):
        conv.conv2d(X(), W(), np.ones(3), out=out)
    assert np.isnan(out).all()


# ---------------------------------------------------------------- backward

def G(shape=(2, 4, 6, 6), dtype=F64):
    return np.ones(shape, dtype)


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: conv.conv2d_backward(G((2, 4, 6, 5)), X(), W()), ValueError,
     r"grad_out has shape \(2, 4, 6, 5\), but conv2d of x \(2, 3, 8, 8\) with w \(4, 3, 3, 3\) gives \(2, 4, 6, 6\)"),
    (lambda: conv.conv2d_backward(G(), X(), W(), padding=1), ValueError, r"gives \(2, 4, 8, 8\)"),
    (lambda: conv.conv2d_backward(G((4, 6, 6)), X(), W()), ValueError, "grad_out must be 4-D"),
    (lambda: conv.conv2d_backward(G(dtype=F32), X(), W()), TypeError, "grad_out has dtype float32"),
    (lambda: conv.conv2d_backward(G(), X(), W(), needs=("input", "bias_")), ValueError,
     r"needs entries must be among \('input', 'weight', 'bias'\), got 'bias_'"),
    (lambda: conv.conv2d_backward(G(), X(), W(), needs=5), TypeError, "needs must be a sequence"),
    (lambda: conv.conv2d_backward(G(), X(), W(), needs=(1,)), ValueError, "got 1 in"),
    (lambda: conv.conv2d_backward(G(), X(), W(), algo="winograd"), ValueError, "algo='winograd' is unknown"),
    (lambda: conv.conv2d_backward(G(), X(), W((4, 2, 3, 3))), ValueError, "expected C_in/groups"),
    (lambda: conv.conv2d_backward(G(), X(), W(), stride=0), ValueError, "stride must be >= 1, got 0"),
])
def test_backward_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


# ---------------------------------------------------------------- transposed

def WT(shape=(3, 2, 3, 3), dtype=F64):
    return np.ones(shape, dtype)


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: conv.conv_transpose2d(X(), WT((4, 2, 3, 3))), ValueError,
     r"w has shape \(4, 2, 3, 3\): dim 0 must equal the 3 input channels of x"),
    (lambda: conv.conv_transpose2d(X(), WT(), groups=2), ValueError, "x has 3 channels, not divisible by groups=2"),
    (lambda: conv.conv_transpose2d(X(), WT(), output_padding=1), ValueError,
     r"output_padding=\(1, 1\) must be smaller than either stride=\(1, 1\) or dilation=\(1, 1\)"),
    (lambda: conv.conv_transpose2d(X(), WT(), stride=2, output_padding=(1, 2)), ValueError, "output_padding=\\(1, 2\\)"),
    (lambda: conv.conv_transpose2d(X(), WT(), output_padding=-1), ValueError, "output_padding must be >= 0, got -1"),
    (lambda: conv.conv_transpose2d(X(), WT(), padding="same"), TypeError, "padding must be an int or a pair"),
    (lambda: conv.conv_transpose2d(X((1, 3, 1, 1)), WT(), padding=2), ValueError, r"output height would be -1 \(< 1\)"),
    (lambda: conv.conv_transpose2d(X(), WT(), np.ones(3)), ValueError, r"bias must have shape \(2,\)"),
    (lambda: conv.conv_transpose2d(X(), WT(dtype=F32)), TypeError, "w has dtype float32"),
    (lambda: conv.conv_transpose2d(X(), WT((3, 2, 3, 0))), ValueError, "kernel size must be >= 1"),
    (lambda: conv.conv_transpose2d(X(), WT(), dilation=0), ValueError, "dilation must be >= 1, got 0"),
    (lambda: conv.conv_transpose2d(X(), WT(), algo="fft"), ValueError, "algo='fft' is unknown"),
    (lambda: conv.conv_transpose2d(X(), WT(), stride=2 ** 60), ValueError, "too large"),
])
def test_transpose_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


# ---------------------------------------------------------------- C boundary

def test_c_shape_overflow_is_a_value_error():
    shape = (2 ** 40, 2 ** 20, 2 ** 10, 1, 1, 1, 1, 2 ** 10, 1, 1, 1, 0, 0, 1, 1, 1)
    with pytest.raises(ValueError, match="overflow"):
        _kernels.conv2d_workspace(shape, 0, 4, 0)
    bad = (1, 1, 3, 3, 1, 1, 1, 3, 3, 0, 1, 0, 0, 1, 1, 1)  # zero stride
    with pytest.raises(ValueError, match="invalid sizes"):
        _kernels.conv2d(np.zeros(9), np.zeros(1), None, np.zeros(9), bad, 0)
