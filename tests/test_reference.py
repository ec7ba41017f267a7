"""The oracle itself: fastconv.reference against PyTorch (float64) on random configurations."""
import random

import numpy as np
import pytest

from fastconv import reference as R

torch = pytest.importorskip("torch")
F = torch.nn.functional


def T(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def _conv_configs(count, seed):
    rnd = random.Random(seed)
    for _ in range(count):
        g = rnd.choice([1, 1, 2, 3])
        kh, kw = rnd.randint(1, 4), rnd.randint(1, 4)
        dh, dw = rnd.randint(1, 3), rnd.randint(1, 3)
        sh, sw = rnd.randint(1, 3), rnd.randint(1, 3)
        pad = rnd.choice([0, 1, (2, 1), "same", "valid"])
        if pad == "same":
            sh = sw = 1
        yield dict(n=rnd.randint(1, 2), cin=g * rnd.randint(1, 3), cout=g * rnd.randint(1, 3), g=g,
                   k=(kh, kw), d=(dh, dw), s=(sh, sw), pad=pad,
                   H=rnd.randint(dh * (kh - 1) + 1, 11), W=rnd.randint(dw * (kw - 1) + 1, 11),
                   op=(rnd.randint(0, max(sh, dh) - 1), rnd.randint(0, max(sw, dw) - 1)))


@pytest.mark.parametrize("cfg", list(_conv_configs(60, 0)), ids=str)
def test_conv_forward_backward_transpose(cfg):
    rng = np.random.default_rng(1)
    c = cfg
    x = rng.uniform(-1, 1, (c["n"], c["cin"], c["H"], c["W"]))
    w = rng.uniform(-1, 1, (c["cout"], c["cin"] // c["g"]) + c["k"])
    b = rng.uniform(-1, 1, c["cout"])
    y = R.conv2d(x, w, b, c["s"], c["pad"], c["d"], c["g"])
    xt, wt, bt = (T(a).requires_grad_() for a in (x, w, b))
    yt = F.conv2d(xt, wt, bt, c["s"], c["pad"], c["d"], c["g"])
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    gy = rng.uniform(-1, 1, y.shape)
    yt.backward(T(gy))
    gx, gw, gb = R.conv2d_backward(gy, x, w, c["s"], c["pad"], c["d"], c["g"])
    for mine, theirs in ((gx, xt.grad), (gw, wt.grad), (gb, bt.grad)):
        np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-12, atol=1e-12)
    _, gw_only, _ = R.conv2d_backward(gy, x, w, c["s"], c["pad"], c["d"], c["g"], needs=("weight",))
    np.testing.assert_array_equal(gw_only, gw)
    if not isinstance(c["pad"], str):
        wt2 = rng.uniform(-1, 1, (c["cin"], c["cout"] // c["g"]) + c["k"])
        y2 = R.conv_transpose2d(x, wt2, b, c["s"], c["pad"], c["op"], c["g"], c["d"])
        try:
            yt2 = F.conv_transpose2d(T(x), T(wt2), T(b), c["s"], c["pad"], c["op"], c["g"], c["d"])
        except RuntimeError:  # torch rejects this combination (negative output size)
            return
        assert y2.shape == tuple(yt2.shape)
        np.testing.assert_allclose(y2, yt2.numpy(), rtol=1e-12, atol=1e-12)


def test_compose_equals_two_convolutions():
    rng = np.random.default_rng(2)
    w1 = rng.uniform(-1, 1, (4, 3, 3, 2))
    w2 = rng.uniform(-1, 1, (5, 4, 2, 3))
    x = rng.uniform(-1, 1, (2, 3, 10, 9))
    np.testing.assert_allclose(R.conv2d(R.conv2d(x, w1), w2), R.conv2d(x, R.compose(w1, w2)),
                               rtol=1e-12, atol=1e-12)


def _pool_configs(count, seed):
    rnd = random.Random(seed)
    for _ in range(count):
        kh, kw = rnd.randint(1, 4), rnd.randint(1, 4)
        dh, dw = rnd.randint(1, 2), rnd.randint(1, 2)
        ph, pw = rnd.randint(0, kh // 2), rnd.randint(0, kw // 2)
        yield dict(k=(kh, kw), s=(rnd.randint(1, 4), rnd.randint(1, 4)), p=(ph, pw), d=(dh, dw),
                   ceil=rnd.random() < 0.5, cip=rnd.random() < 0.5, dov=rnd.choice([None, None, 3]),
                   H=rnd.randint(max(1, dh * (kh - 1) + 1 - 2 * ph), 11),
                   W=rnd.randint(max(1, dw * (kw - 1) + 1 - 2 * pw), 11))


@pytest.mark.parametrize("cfg", list(_pool_configs(80, 3)), ids=str)
def test_pooling(cfg):
    c = cfg
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (2, 3, c["H"], c["W"]))
    x[0, 0, 0, 0] = np.nan        # NaN propagates
    x[1, 1] = np.round(x[1, 1])   # ties: first maximum wins
    x[1, 2, -1, -1] = np.inf
    try:
        yt, it = F.max_pool2d(T(x), c["k"], c["s"], c["p"], c["d"], c["ceil"], True)
    except RuntimeError:
        pytest.skip("torch rejects this configuration")
    y, idx = R.max_pool2d(x, c["k"], c["s"], c["p"], c["d"], c["ceil"], True)
    np.testing.assert_array_equal(y, yt.numpy())
    np.testing.assert_array_equal(idx, it.numpy())
    if not np.isneginf(y).any():
        # A window wholly in the padding (possible with dilation) gets -inf and an index past the
        # plane; torch's backward then writes into the next plane, so compare only without those.
        xt = T(x).requires_grad_()
        F.max_pool2d(xt, c["k"], c["s"], c["p"], c["d"], c["ceil"]).backward(T(np.ones(y.shape)))
        gx = R.max_pool2d_backward(np.ones(y.shape), x, c["k"], c["s"], c["p"], c["d"], c["ceil"])
        np.testing.assert_allclose(gx, xt.grad.numpy())
        gx2 = R.max_pool2d_backward(np.ones(y.shape), x, c["k"], c["s"], c["p"], c["d"], c["ceil"], indices=idx)
        np.testing.assert_array_equal(gx2, gx)
    x = rng.uniform(-1, 1, (2, 3, c["H"], c["W"]))
    xt = T(x).requires_grad_()
    try:
        yt = F.avg_pool2d(xt, c["k"], c["s"], c["p"], c["ceil"], c["cip"], c["dov"])
    except RuntimeError:
        return
    y = R.avg_pool2d(x, c["k"], c["s"], c["p"], c["ceil"], c["cip"], c["dov"])
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-14)
    gy = rng.uniform(-1, 1, y.shape)
    yt.backward(T(gy))
    gx = R.avg_pool2d_backward(gy, x.shape, c["k"], c["s"], c["p"], c["ceil"], c["cip"], c["dov"])
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_output_size_formulas():
    assert R.pool_output_size(5, 2, 2, 0, 1, False) == 2
    assert R.pool_output_size(5, 2, 2, 0, 1, True) == 3
    # ceil_mode window that would start in the right padding is dropped
    assert R.pool_output_size(4, 2, 2, 1, 1, True) == 3
    assert R.conv_output_size(7, 3, 2, 1, 1, 1) == 4
    assert R.same_padding(4, 1) == (1, 2)
