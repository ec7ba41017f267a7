"""compose(w1, w2): one kernel equal to two convolutions in sequence."""
import numpy as np
import pytest

from conftest import tol
from fastconv import conv, reference

SHAPES = [  # (w1 shape (C1, C0, k1h, k1w), w2 shape (C2, C1, k2h, k2w))
    ((4, 3, 3, 3), (5, 4, 3, 3)),
    ((2, 1, 1, 1), (3, 2, 1, 1)),
    ((3, 2, 2, 5), (1, 3, 4, 1)),
    ((7, 5, 1, 3), (2, 7, 3, 2)),
]


@pytest.mark.parametrize("w1_shape,w2_shape", SHAPES)
def test_composed_kernel_equals_two_convolutions(w1_shape, w2_shape, dtype, isa):
    rng = np.random.default_rng(0)
    w1 = rng.uniform(-1, 1, w1_shape).astype(dtype)
    w2 = rng.uniform(-1, 1, w2_shape).astype(dtype)
    x = rng.uniform(-1, 1, (2, w1_shape[1], 9, 10)).astype(dtype)
    k = conv.compose(w1, w2)
    assert k.shape == (w2_shape[0], w1_shape[1], w1_shape[2] + w2_shape[2] - 1,
                       w1_shape[3] + w2_shape[3] - 1)
    assert k.dtype == dtype
    two = conv.conv2d(conv.conv2d(x, w1), w2)
    one = conv.conv2d(x, k)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(one, two, rtol=rtol * 10, atol=atol * 10)
    # and the same identity in exact float64 arithmetic of the reference
    np.testing.assert_allclose(reference.conv2d(x, reference.compose(w1, w2)),
                               reference.conv2d(reference.conv2d(x, w1), w2), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("w1_shape,w2_shape", SHAPES)
def test_matches_reference(w1_shape, w2_shape, dtype):
    rng = np.random.default_rng(1)
    w1 = rng.uniform(-1, 1, w1_shape).astype(dtype)
    w2 = rng.uniform(-1, 1, w2_shape).astype(dtype)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(conv.compose(w1, w2), reference.compose(w1, w2), rtol=rtol, atol=atol)


def test_composition_of_impulse_is_identity(dtype):
    """A 1x1 identity kernel composed with w gives w back, on either side."""
    w = np.random.default_rng(2).uniform(-1, 1, (3, 2, 3, 2)).astype(dtype)
    eye_in = np.eye(2, dtype=dtype)[:, :, None, None]
    eye_out = np.eye(3, dtype=dtype)[:, :, None, None]
    np.testing.assert_array_equal(conv.compose(eye_in, w), w)
    np.testing.assert_array_equal(conv.compose(w, eye_out), w)


def test_inputs_unchanged_and_noncontiguous():
    rng = np.random.default_rng(3)
    w1 = rng.uniform(-1, 1, (3, 2, 2, 3))[:, :, ::-1]
    w2 = np.asfortranarray(rng.uniform(-1, 1, (4, 3, 3, 2)))
    s1, s2 = w1.copy(), w2.copy()
    k = conv.compose(w1, w2)
    np.testing.assert_allclose(k, reference.compose(s1, s2), rtol=1e-12, atol=1e-12)
    assert np.array_equal(w1, s1) and np.array_equal(w2, s2)


def test_errors():
    w = np.zeros((3, 2, 3, 3))
    with pytest.raises(ValueError, match=r"w2 .*dim 1.*must equal w1's 3 output channels, got 2"):
        conv.compose(w, np.zeros((4, 2, 3, 3)))
    with pytest.raises(TypeError, match="w2 has dtype float32"):
        conv.compose(w, np.zeros((4, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="w1 must be 4-D"):
        conv.compose(np.zeros((3, 2, 3)), w)
    with pytest.raises(TypeError, match="w1 must have dtype float32 or float64, got int64"):
        conv.compose(np.zeros((3, 2, 3, 3), np.int64), w)
    with pytest.raises(ValueError, match="w1: kernel size must be >= 1"):
        conv.compose(np.zeros((2, 2, 0, 3)), w)
