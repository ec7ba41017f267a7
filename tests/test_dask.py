"""fastconv.dask: chunked ops equal the in-memory ops and the reference; the cost model is exact."""
import tracemalloc

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as hst

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import fastconv as fc                                  # noqa: E402
from fastconv import _blocks, _halo, _layers, reference  # noqa: E402
import fastconv.dask as fcd                            # noqa: E402

from conftest import rand, tol                         # noqa: E402


@pytest.fixture(autouse=True)
def _sync():
    with dask.config.set(scheduler="synchronous"):
        yield


def close(dtype):
    """dask vs in-memory fastconv: same kernels, so only summation-order noise."""
    return (1e-5, 1e-6) if np.dtype(dtype) == np.float32 else (1e-12, 1e-13)


def random_chunks(rng, n, small=False):
    """Random chunk sizes summing to n (sizes from 1 up)."""
    out, left = [], n
    top = 3 if small else max(2, n // 2)
    while left:
        c = int(min(left, rng.integers(1, top + 1)))
        out.append(c)
        left -= c
    return tuple(out)


# ---------------------------------------------------------------- in-memory oracle

def run_in_memory(spec, x, params, ops=fc):
    """The stack run on the whole array with `ops` (fastconv or fastconv.reference)."""
    pi = 0
    for layer in _layers.as_layers(spec):
        if isinstance(layer, _layers.Conv):
            p = params[pi]
            pi += 1
            w, b = (p if isinstance(p, tuple) else (p, None))
            pad = layer.padding
            x = ops.conv2d(x, w, b, layer.stride, pad, layer.dilation, layer.groups)
        elif isinstance(layer, _layers.Pool):
            fn = ops.max_pool2d if layer.mode == "max" else ops.avg_pool2d
            x = fn(x, layer.kernel, layer.stride, layer.padding)
        elif isinstance(layer, _layers.Flatten):
            x = x.reshape(x.shape[0], -1)
        else:
            p = params[pi]
            pi += 1
            w, b = (p if isinstance(p, tuple) else (p, None))
            x = x.reshape(x.shape[0], -1) @ w.T + (0 if b is None else b)
    return x


def random_stack(rng, c_in, dtype, n_layers=None):
    """A random layer-grammar string and its params."""
    parts, params = [], []
    c = c_in
    for _ in range(n_layers or int(rng.integers(1, 4))):
        kind = rng.choice(["conv", "conv", "maxpool", "avgpool"])
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        ks = f"{k[0]}x{k[1]}"
        if kind == "conv":
            s = (int(rng.integers(1, 3)), int(rng.integers(1, 4)))
            d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            r = rng.random()
            if r < 0.2 and s == (1, 1):
                p = "same"
            elif r < 0.3:
                p = "valid"
            else:
                p = f"{int(rng.integers(0, 4))}x{int(rng.integers(0, 3))}"
            g = int(rng.choice([g for g in (1, 2, 3) if c % g == 0]))
            out = g * int(rng.integers(1, 4))
            bias = int(rng.integers(0, 2))
            parts.append(f"conv({out},{ks},s={s[0]}x{s[1]},p={p},d={d[0]}x{d[1]},g={g},bias={bias})")
            w = rand(rng, (out, c // g) + k, dtype)
            params.append((w, rand(rng, (out,), dtype)) if bias else w)
            c = out
        else:
            s = (int(rng.integers(1, 4)), int(rng.integers(1, 3)))
            p = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))
            parts.append(f"{kind}({ks},s={s[0]}x{s[1]},p={p[0]}x{p[1]})")
    return " ".join(parts), params


def draw_case(rng, dtype, n_layers=None, small_chunks=False):
    while True:
        n, c = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        h, w = int(rng.integers(5, 34)), int(rng.integers(5, 34))
        spec, params = random_stack(rng, c, dtype, n_layers)
        x = rand(rng, (n, c, h, w), dtype)
        try:
            want = run_in_memory(spec, x, params)
        except ValueError:
            continue                       # output too small: draw again
        chunks = (random_chunks(rng, n), c, random_chunks(rng, h, small_chunks),
                  random_chunks(rng, w, small_chunks))
        return spec, params, x, chunks, want


# ---------------------------------------------------------------- single ops

def _alt_dtype(*case):
    """float32 or float64 by the case (both dtypes covered without doubling the cases)."""
    return np.dtype("float32" if sum(map(ord, repr(case))) % 2 else "float64")


CONV_CASES = [
    dict(),
    dict(padding=1),
    dict(stride=2, padding=1),
    dict(stride=(3, 2), padding=(2, 0), dilation=(2, 3)),
    dict(padding="same", dilation=(2, 1)),
    dict(padding="same"),                # even kernel below: asymmetric "same"
    dict(stride=2, padding=3),           # outputs past the input read padding only
    dict(groups=3, padding=1),
]


@pytest.mark.parametrize("kw", CONV_CASES)
@pytest.mark.parametrize("chunks", [(1, 3, 7, 5), (2, 3, 4, 9), (1, 3, 3, 2)])
def test_conv2d_matches_in_memory_and_reference(kw, chunks):
    dtype = _alt_dtype(kw, chunks)
    rng = np.random.default_rng(10)
    x = rand(rng, (2, 3, 23, 19), dtype)
    kshape = (2, 4) if kw.get("padding") == "same" and "dilation" not in kw else (3, 3)
    w = rand(rng, (6, 3 // kw.get("groups", 1)) + kshape, dtype)
    b = rand(rng, (6,), dtype)
    y = fcd.conv2d(da.from_array(x, chunks=chunks), w, b, **kw)
    want = fc.conv2d(x, w, b, **kw)
    assert y.shape == want.shape
    got = y.compute()
    np.testing.assert_allclose(got, want, *close(dtype))
    np.testing.assert_allclose(got, reference.conv2d(x, w, b, **kw), *tol(dtype))


POOL_CASES = [
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(2, 3), stride=(3, 1), padding=(1, 1), ceil_mode=True),
    dict(kernel_size=2),
    dict(kernel_size=5, stride=3, padding=2, ceil_mode=True),
]


@pytest.mark.parametrize("kw", POOL_CASES + [dict(kernel_size=2, dilation=2, stride=1),
                                             dict(kernel_size=3, dilation=(2, 1), stride=2,
                                                  padding=1, ceil_mode=True)])
@pytest.mark.parametrize("chunks", [(1, 1, 7, 5), (2, 2, 4, 9), (1, 3, 2, 1)])
def test_max_pool2d_matches(kw, chunks):
    dtype = _alt_dtype(kw, chunks)
    rng = np.random.default_rng(11)
    x = rand(rng, (2, 3, 23, 19), dtype)
    y = fcd.max_pool2d(da.from_array(x, chunks=chunks), **kw)
    want = fc.max_pool2d(x, **kw)
    got = y.compute()
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got, reference.max_pool2d(x, **kw), *tol(dtype))


@pytest.mark.parametrize("kw", POOL_CASES + [dict(kernel_size=2, padding=1, divisor_override=3)])
@pytest.mark.parametrize("chunks", [(1, 1, 7, 5), (2, 2, 4, 9), (1, 3, 2, 1)])
def test_avg_pool2d_matches(kw, chunks):
    dtype = _alt_dtype(kw, chunks)
    cip = chunks != (2, 2, 4, 9)      # count_include_pad both ways, with both dtypes, across cases
    rng = np.random.default_rng(12)
    x = rand(rng, (2, 3, 23, 19), dtype)
    kw = dict(kw, count_include_pad=cip)
    y = fcd.avg_pool2d(da.from_array(x, chunks=chunks), **kw)
    want = fc.avg_pool2d(x, **kw)
    got = y.compute()
    np.testing.assert_allclose(got, want, *close(dtype))
    np.testing.assert_allclose(got, reference.avg_pool2d(x, **kw), *tol(dtype))


def test_pool_keeps_channel_chunks_conv_gathers_them():
    x = da.zeros((2, 6, 16, 16), chunks=(1, 2, 8, 8), dtype=np.float32)
    assert fcd.max_pool2d(x, 2).chunks[1] == (2, 2, 2)
    assert fcd.conv2d(x, np.zeros((4, 6, 3, 3), np.float32)).chunks[1] == (4,)


# ---------------------------------------------------------------- stacks

@pytest.mark.parametrize("seed", range(24))
def test_random_stacks_match_in_memory_and_reference(seed):
    rng = np.random.default_rng(1000 + seed)
    dtype = np.dtype("float32" if seed % 2 else "float64")
    spec, params, x, chunks, want = draw_case(rng, dtype, small_chunks=seed % 3 == 0)
    xd = da.from_array(x, chunks=chunks)
    for fuse in (True, False):
        got = fcd.sequential(spec, xd, params, fuse=fuse).compute()
        assert got.shape == want.shape, (spec, chunks)
        np.testing.assert_allclose(got, want, *close(dtype), err_msg=f"{spec} {chunks} fuse={fuse}")
    x64 = x.astype(np.float64)
    p64 = [tuple(a.astype(np.float64) for a in p) if isinstance(p, tuple) else p.astype(np.float64)
           for p in params]
    np.testing.assert_allclose(got, run_in_memory(spec, x64, p64, reference), *tol(dtype),
                               err_msg=f"{spec} {chunks}")


def test_stack_with_fc_head_and_batch_only_chunks():
    rng = np.random.default_rng(5)
    x = rand(rng, (7, 3, 20, 18), np.float64)
    spec = "conv(4,3,s=2,p=1) maxpool(2) conv(5,3,p=1,bias=0) avgpool(2,p=1) flatten fc(6) fc(3,bias=0)"
    w1, b1 = rand(rng, (4, 3, 3, 3), np.float64), rand(rng, (4,), np.float64)
    w2 = rand(rng, (5, 4, 3, 3), np.float64)
    feats = run_in_memory(spec.split(" flatten")[0], x, [(w1, b1), w2]).reshape(7, -1).shape[1]
    w3, b3 = rand(rng, (6, feats), np.float64), rand(rng, (6,), np.float64)
    w4 = rand(rng, (3, 6), np.float64)
    params = [(w1, b1), w2, (w3, b3), w4]
    want = run_in_memory(spec, x, params)
    xd = da.from_array(x, chunks=(2, 3, 20, 18))                 # batch-only chunking
    y = fcd.sequential(spec, xd, params)
    assert y.shape == (7, 3) and y.chunks == ((2, 2, 2, 1), (3,))
    np.testing.assert_allclose(y.compute(), want, 1e-12, 1e-12)
    c = fcd.cost(y)
    assert c.halo_bytes == 0 and c.rechunk_bytes == 0
    # blocks skip the last column of layer 1 (maxpool(2) never reads it): 7*4*10 outputs
    # of 2*27 flops fewer than the whole-array run
    assert c.redundant_flops == -7 * 4 * 10 * 54
    assert c.in_memory_flops == fc.summary(spec, x.shape).totals["flops"]
    # spatially chunked too
    y2 = fcd.sequential(spec, da.from_array(x, chunks=(3, 3, 6, 7)), params)
    np.testing.assert_allclose(y2.compute(), want, 1e-12, 1e-12)


def test_batch_only_chunking_no_halo(dtype):
    rng = np.random.default_rng(6)
    x = rand(rng, (5, 2, 17, 13), dtype)
    w = rand(rng, (3, 2, 3, 3), dtype)
    y = fcd.conv2d(da.from_array(x, chunks=(1, 2, 17, 13)), w, padding=1, stride=2)
    assert y.chunks == ((1,) * 5, (3,), (9,), (7,))
    np.testing.assert_allclose(y.compute(), fc.conv2d(x, w, padding=1, stride=2), *close(dtype))
    c = fcd.cost(y)
    assert c.halo_bytes == 0 and c.redundant_flops == 0 and c.tasks == 5


def test_threaded_scheduler():
    rng = np.random.default_rng(7)
    spec, params, x, chunks, want = draw_case(rng, np.float32, n_layers=3)
    y = fcd.sequential(spec, da.from_array(x, chunks=chunks), params)
    np.testing.assert_allclose(y.compute(scheduler="threads", num_workers=2), want, *close(np.float32))


# ---------------------------------------------------------------- chunk alignment

def test_aligned_chunks_are_kept():
    x = da.zeros((1, 2, 64, 48), chunks=(1, 2, 16, 16), dtype=np.float32)
    w = np.zeros((2, 2, 3, 3), np.float32)
    y = fcd.sequential("conv(2,3,s=2,p=1) maxpool(2)", x, [(w, np.zeros(2, np.float32))], rechunk=False)
    assert y.chunks[2:] == ((4, 4, 4, 4), (4, 4, 4))
    assert fcd.cost(y).rechunk_bytes == 0


def test_misaligned_chunks_rechunk_or_raise(dtype):
    rng = np.random.default_rng(8)
    x = rand(rng, (1, 2, 30, 30), dtype)
    w = rand(rng, (2, 2, 3, 3), dtype)
    xd = da.from_array(x, chunks=(1, 2, 7, 11))                 # not multiples of the stride 4
    spec = "conv(2,3,s=2,p=1,bias=0) maxpool(2)"
    with pytest.raises(ValueError, match=r"multiples of its stride \(H 4, W 4\)"):
        fcd.sequential(spec, xd, [w], rechunk=False)
    y = fcd.sequential(spec, xd, [w])
    # boundaries 7, 14, 21, 28 -> nearest multiples of 4: 8, 16, 20 (28 would start an empty block)
    assert fcd.cost(y).stages[0]["chunks"][2] == (8, 8, 4, 10)
    np.testing.assert_allclose(y.compute(), run_in_memory(spec, x, [w]), *close(dtype))


def test_chunks_smaller_than_halo(dtype):
    rng = np.random.default_rng(9)
    x = rand(rng, (1, 1, 20, 20), dtype)
    w = rand(rng, (1, 1, 7, 7), dtype)
    xd = da.from_array(x, chunks=(1, 1, 2, 1))
    with pytest.raises(ValueError, match=r"at least the halo \(H 3, W 3\)"):
        fcd.conv2d(xd, w, padding=3, rechunk=False)
    y = fcd.conv2d(xd, w, padding=3)
    assert min(y.chunks[2]) >= 3 and min(y.chunks[3]) >= 3
    np.testing.assert_allclose(y.compute(), fc.conv2d(x, w, padding=3), *close(dtype))


def test_halo_is_exact():
    """The halo is the most any block reads beyond its chunk: no smaller halo would do."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        steps = []
        for _ in range(int(rng.integers(1, 4))):
            k, s, d = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
            p = int(rng.integers(0, 3))
            steps.append(_halo.Step(k, s, d, p, p))
        n = int(rng.integers(40, 200))
        try:
            plan = _halo.AxisPlan(steps, n, random_chunks(rng, n))
        except Exception:
            raise
        if plan.sizes[-1] < 1 or plan.nblocks < 3:
            continue
        reads_before, reads_after = 0, 0
        for i in range(1, plan.nblocks - 1):              # interior blocks: no border clipping
            src = plan.windows(i)[0].src
            reads_before = max(reads_before, plan.cuts[i] - src[0])
            reads_after = max(reads_after, src[1] - plan.cuts[i + 1])
        # blocks far from the borders read exactly the receptive field's reach
        if all(min(plan.windows(i)[li].need0 for li in range(len(steps))) >= 0 and
               all(wn.need1 <= wn.n_in for wn in plan.windows(i)) for i in range(1, plan.nblocks - 1)):
            assert reads_before == plan.before, (steps, n)
            assert reads_after == plan.after, (steps, n)
        assert all(c % plan.jump == 0 for c in plan.cuts[:-1])


# ---------------------------------------------------------------- cost model

def _profile_flops(y):
    """FLOPs of the kernel calls the computation really makes (fastconv.profile records)."""
    with fc.profile() as prof:
        y.compute()
    return sum(r.cost.flops for r in prof.records), prof.records


def _fixup_mults(prog):
    """Avg-pool outputs whose divisor differs from kH*kW, counted from the geometry directly."""
    total = 0
    for st in prog.stages:
        chans = st.in_shape[1]
        for li, layer in enumerate(st.layers):
            chans = layer.channels(chans)
            if layer.kind != "avg" or layer.divisor_override:
                continue
            for i in range(st.plans[0].nblocks):
                for j in range(st.plans[1].nblocks):
                    wh, ww = st.plans[0].windows(i)[li], st.plans[1].windows(j)[li]
                    if wh.q1 <= wh.q0 or ww.q1 <= ww.q0:
                        continue
                    odd = False
                    for win, a in ((wh, 0), (ww, 1)):
                        k, s, p = layer.kernel[a], layer.stride[a], layer.pads[a][0]
                        for o in range(win.q0, win.q1):
                            start = o * s - p
                            end = min(start + k, win.n_in + p)
                            div = end - start if layer.count_include_pad else \
                                min(end, win.n_in) - max(start, 0)
                            odd |= div != k
                    if odd:
                        total += st.in_shape[0] * chans * (wh.q1 - wh.q0) * (ww.q1 - ww.q0)
    return total


@pytest.mark.parametrize("seed", range(12))
def test_cost_flops_equal_profiled_kernel_calls(seed):
    rng = np.random.default_rng(2000 + seed)
    spec, params, x, chunks, want = draw_case(rng, np.float32)
    for fuse in (True, False):
        y = fcd.sequential(spec, da.from_array(x, chunks=chunks), params, fuse=fuse)
        c = fcd.cost(y)
        flops, records = _profile_flops(y)
        assert c.flops == flops + _fixup_mults(y._fastconv_program), (spec, chunks, fuse)
        assert c.in_memory_flops == fc.summary(spec, x.shape).totals["flops"]
        if not fuse:
            # one exchange per layer: nothing is recomputed except the divisor fix-ups
            assert c.redundant_flops == _fixup_mults(y._fastconv_program)
        # cost(spec, x) plans the same computation without building it
        c2 = fcd.cost(spec, da.from_array(x, chunks=chunks), fuse=fuse)
        assert (c2.flops, c2.halo_bytes, c2.peak_task_bytes) == (c.flops, c.halo_bytes, c.peak_task_bytes)


@pytest.mark.parametrize("seed", range(8))
def test_cost_halo_bytes_equal_blocks_received(seed, monkeypatch):
    rng = np.random.default_rng(3000 + seed)
    spec, params, x, chunks, want = draw_case(rng, np.float64)
    y = fcd.sequential(spec, da.from_array(x, chunks=chunks), params)     # fused: one stage
    seen = []
    real = _blocks.run_block

    def spy(block, layers, plans, index):
        seen.append(block.nbytes)
        return real(block, layers, plans, index)

    monkeypatch.setattr(_blocks, "run_block", spy)
    y.compute()
    c = fcd.cost(y)
    assert c.halo_bytes == sum(seen) - x.nbytes
    assert c.tasks == len(seen)


def test_cost_hand_counted_single_conv():
    # conv 3x3, pad 1, 2 -> 4 channels with bias, 1x2x16x16 float32 in 8x8 chunks
    x = da.zeros((1, 2, 16, 16), chunks=(1, 2, 8, 8), dtype=np.float32)
    w, b = np.zeros((4, 2, 3, 3), np.float32), np.zeros(4, np.float32)
    c = fcd.cost(fcd.conv2d(x, w, b, padding=1))
    # every output: 2*9 mults + 17 adds + 1 bias add = 36 flops; 4*16*16 outputs, none redone
    assert c.flops == c.in_memory_flops == 4 * 16 * 16 * 36
    # each of the 4 blocks gets 1 row and 1 column (and the corner) from its neighbours:
    # 9*9 - 8*8 = 17 pixels * 2 channels * 4 bytes
    assert c.halo_bytes == 4 * 17 * 2 * 4
    # a block: its 9x9x2 input (648 B) and the params (72+4 floats = 304 B) stay; the padded
    # 10x10x2 copy (800 B) and the 8x8x4 output (1024 B) live together; direct: no workspace
    assert c.peak_task_bytes == 648 + 304 + 800 + 1024
    assert c.tasks == 4 and c.rechunk_bytes == 0


def test_cost_hand_counted_fused_recompute():
    # two 3x3 pad-1 convs (1 -> 1 channel, no bias) on 1x1x16x16 in 8x8 chunks, fused
    x = da.zeros((1, 1, 16, 16), chunks=(1, 1, 8, 8), dtype=np.float64)
    w = np.zeros((1, 1, 3, 3))
    spec = "conv(1,3,p=1,bias=0) conv(1,3,p=1,bias=0)"
    fused = fcd.cost(fcd.sequential(spec, x, [w, w]))
    # halo 2: each block holds 10x10; layer 1 computes 9x9 outputs (its 8x8 + 1 row/col of the
    # neighbour's), so 4*81 - 256 = 68 layer-1 outputs are recomputed at 9 + 8 = 17 flops each
    assert fused.in_memory_flops == 2 * 256 * 17
    assert fused.redundant_flops == 68 * 17
    assert fused.halo_bytes == 4 * (100 - 64) * 8
    # peak: block 10x10 (800 B) + 2 weights (144 B); layer 1: 11x11 padded copy (968 B) + 9x9
    # output (648 B); layer 2: 9x9 input + 10x10 padded copy (800 B), then copy + 8x8 out (512 B)
    assert fused.peak_task_bytes == 800 + 144 + max(968 + 648, 648 + 800, 800 + 512)
    split = fcd.cost(fcd.sequential(spec, x, [w, w], fuse=False))
    assert split.redundant_flops == 0
    assert split.halo_bytes == 2 * 4 * (81 - 64) * 8


def test_cost_footprint_matches_traced_allocations():
    """The modelled peak equals the NumPy memory a block really allocates (tracemalloc)."""
    rng = np.random.default_rng(4)
    x = rand(rng, (2, 3, 72, 60), np.float64)
    spec = "conv(4,3,p=1) maxpool(3,s=2,p=1) conv(2,3,s=2,p=2,d=2,bias=0) avgpool(2,p=1)"
    params = [(rand(rng, (4, 3, 3, 3), np.float64), rand(rng, (4,), np.float64)),
              rand(rng, (2, 4, 3, 3), np.float64)]
    y = fcd.sequential(spec, da.from_array(x, chunks=(2, 3, 32, 24)), params)
    y.compute()            # warm up: first calls import and probe (allocations not per block)
    prog = y._fastconv_program
    st = prog.stages[0]
    xr = da.from_array(x, chunks=st.in_chunks)
    ph, pw = st.plans
    for i in range(ph.nblocks):
        for j in range(pw.nblocks):
            (h0, h1), (w0, w1) = ph.received(i), pw.received(j)
            block = np.ascontiguousarray(x[:, :, h0:h1, w0:w1])
            bc = _blocks.block_cost(st.layers, st.plans, (i, j), 2, 3, np.float64)
            assert bc.peak_bytes - block.nbytes > 20000
            tracemalloc.start()
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            out = _blocks.run_block(block, st.layers, st.plans, (i, j))
            peak = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
            held = block.nbytes + sum(l.param_bytes for l in st.layers)
            assert bc.workspace_bytes == 0                 # few channels: direct kernels
            # arrays of 20-100 KB; Python objects of the calls add ~2 KB
            assert abs((bc.peak_bytes - held) - peak) <= 4096, (i, j, bc.peak_bytes - held, peak)
            del out
    del xr


def test_cost_of_shape_and_chunks():
    c = fcd.cost("conv(8,3,p=1) maxpool(2)", (4, 3, 64, 64), chunks=(1, 3, 32, 32))
    assert c.in_memory_flops == fc.summary("conv(8,3,p=1) maxpool(2)", (4, 3, 64, 64)).totals["flops"]
    assert c.tasks == 16 and c.halo_bytes > 0
    assert "halo bytes" in str(c)


# ---------------------------------------------------------------- errors

def test_bad_input_errors():
    x = da.zeros((1, 3, 8, 8), chunks=4, dtype=np.float32)
    w = np.zeros((2, 3, 3, 3), np.float32)
    with pytest.raises(TypeError, match="dtype"):
        fcd.conv2d(x, w.astype(np.float64))
    with pytest.raises(TypeError, match="float32 or float64"):
        fcd.conv2d(da.zeros((1, 3, 8, 8), dtype=np.int32), w)
    with pytest.raises(ValueError, match="4-D"):
        fcd.max_pool2d(da.zeros((3, 8, 8), dtype=np.float32), 2)
    with pytest.raises(ValueError, match="channels"):
        fcd.conv2d(x, np.zeros((2, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="padding"):
        fcd.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError):
        fcd.conv2d(x, np.zeros((2, 3, 9, 9), np.float32))        # kernel larger than input
    with pytest.raises(ValueError, match="params has 0 entries"):
        fcd.sequential("conv(2,3)", x, [])
    with pytest.raises(ValueError, match=r"bias=1\): pass params\[0\] = \(w, b\)"):
        fcd.sequential("conv(2,3)", x, [w])
    with pytest.raises(ValueError, match="bias=0 but"):
        fcd.sequential("conv(2,3,bias=0)", x, [(w, np.zeros(2, np.float32))])
    with pytest.raises(ValueError, match="the layers use 1"):
        fcd.sequential("conv(2,3,bias=0)", x, [w, w])
    with pytest.raises(ValueError, match="must have shape"):
        fcd.sequential("conv(4,3,bias=0)", x, [w])
    with pytest.raises(ValueError, match="cannot follow flatten"):
        fcd.sequential("flatten conv(2,3,bias=0)", x, [w])
    with pytest.raises(ValueError, match="bad layer spec"):
        fcd.sequential("conv(2,3,q=1)", x, [w])
    with pytest.raises(ValueError, match="returned by fastconv.dask"):
        fcd.cost(fcd.max_pool2d(x, 2) + 1)
    with pytest.raises(TypeError, match="chunks="):
        fcd.cost("maxpool(2)", (1, 3, 8, 8))


def test_inputs_not_modified():
    rng = np.random.default_rng(1)
    x = rand(rng, (1, 2, 9, 9), np.float32)
    w = rand(rng, (2, 2, 3, 3), np.float32)
    x0, w0 = x.copy(), w.copy()
    fcd.conv2d(da.from_array(x, chunks=(1, 2, 4, 4)), w, padding=1).compute()
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)


# ---------------------------------------------------------------- distributed

@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    # 2 worker processes on loopback, one thread each; 200 MB each (the memory test relies on it)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  host="127.0.0.1", dashboard_address=None,
                                  memory_limit="200MB") as cl, distributed.Client(cl) as client:
        yield cl, client


@pytest.mark.slow
def test_local_cluster_two_processes(cluster):
    cl, client = cluster
    rng = np.random.default_rng(21)
    spec, params, x, chunks, want = draw_case(rng, np.float32, n_layers=3)
    y = fcd.sequential(spec, da.from_array(x, chunks=chunks), params)
    got = client.compute(y).result()
    np.testing.assert_allclose(got, want, *close(np.float32))
    assert len(client.scheduler_info()["workers"]) == 2


@pytest.mark.slow
def test_input_larger_than_worker_memory(cluster):
    """An 805 MB input (4x a worker's 200 MB limit), generated on the workers, completes."""
    cl, client = cluster
    limit = 200e6
    # 4 MB chunks: a worker's peak measured ~150 MB (85 MB of it the idle process)
    x = da.random.default_rng(0).random((4, 1, 8192, 6144), chunks=(1, 1, 1024, 1024),
                                        dtype=np.float32)
    assert x.nbytes >= 4 * limit
    w = np.random.default_rng(1).uniform(-1, 1, (1, 1, 3, 3)).astype(np.float32)
    y = fcd.sequential("maxpool(2) conv(1,3,p=1,bias=0)", x, [w])
    c = fcd.cost(y)
    assert c.peak_task_bytes < limit / 10
    def peak_rss(reset=False):
        # a worker's peak resident memory, VmHWM (ru_maxrss would include the forking parent's);
        # defined here so it is pickled by value (importing this test module on a worker would
        # import torch through conftest)
        try:
            if reset:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None

    if None in client.run(peak_rss, True).values():
        pytest.skip("no /proc/self/status VmHWM (Linux only)")
    total = client.compute(y.sum()).result()
    assert np.isfinite(total) and total != 0
    peaks = client.run(peak_rss)
    assert len(peaks) == 2 and max(peaks.values()) < limit, peaks
    # a corner, computed through the same lazy graph, equals the in-memory stack on that corner
    corner = client.compute(y[:1, :, :64, :64]).result()
    xs = client.compute(x[:1, :, :140, :140]).result()
    np.testing.assert_allclose(corner, run_in_memory("maxpool(2) conv(1,3,p=1,bias=0)", xs, [w])[:, :, :64, :64],
                               *close(np.float32))


def test_weights_enter_the_graph_once():
    """Every task references one shared key: the graph holds the weights once, not per task."""
    cloudpickle = pytest.importorskip("cloudpickle")
    x = da.zeros((4, 64, 64, 64), chunks=(1, 64, 16, 16), dtype=np.float32)
    w1 = np.ones((64, 64, 3, 3), np.float32)                    # 147 KB each
    w2 = np.full((64, 64, 3, 3), 2, np.float32)
    y = fcd.sequential("conv(64,3,p=1,bias=0) conv(64,3,p=1,bias=0)", x, [w1, w2])
    assert y.npartitions == 64
    size = len(cloudpickle.dumps(dict(y.__dask_graph__())))
    # once: ~295 KB + the graph; per task it would be 64 x 295 KB = 19 MB
    assert 2 * w1.nbytes < size < 2 * w1.nbytes + 500_000, size


# ---------------------------------------------------------------- halo plans (1-D, hypothesis)



def _op1d(x, step, wts, n_in, offset=0):
    """Whole-axis 1-D weighted-sum layer: out[o] = sum_t w[t] * x[o*s - lo + t*d] (0 outside)."""
    n_out = _halo.out_size(step, n_in)
    out = np.zeros(n_out)
    for o in range(n_out):
        for t in range(step.k):
            i = o * step.s - step.lo + t * step.d
            if 0 <= i < n_in:
                out[o] += wts[t] * x[i - offset]
    return out


@settings(max_examples=100, deadline=None)
@given(hst.data())
def test_axis_plan_blocks_reproduce_the_whole_axis(data):
    """Per block, the plan's windows (clipped reads + border padding only) give exactly the
    whole-axis outputs, for random 1-D stacks and chunkings."""
    n_layers = data.draw(hst.integers(1, 4))
    steps = []
    for _ in range(n_layers):
        k, s, d = (data.draw(hst.integers(1, 5)), data.draw(hst.integers(1, 3)),
                   data.draw(hst.integers(1, 3)))
        lo = data.draw(hst.integers(0, 3))
        hi = data.draw(hst.sampled_from([lo, lo + 1, max(lo - 1, 0)]))
        steps.append(_halo.Step(k, s, d, lo, hi, data.draw(hst.booleans())))
    n = data.draw(hst.integers(1, 80))
    sizes = [n]
    for stp in steps:
        sizes.append(_halo.out_size(stp, sizes[-1]))
    assume(min(sizes) >= 1)
    cuts = sorted(set(data.draw(hst.lists(hst.integers(1, max(1, n - 1)), max_size=8))))
    chunks = [b - a for a, b in zip([0] + cuts, cuts + [n]) if b > a]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n)
    wts = [rng.standard_normal(stp.k) for stp in steps]
    want = x
    for stp, w, m in zip(steps, wts, sizes):
        want = _op1d(want, stp, w, m)
    plan = _halo.AxisPlan(steps, n, chunks)
    assert all(c % plan.jump == 0 for c in plan.cuts[:-1])
    assert plan.nblocks == 1 or min(plan.chunks) >= max(plan.before, plan.after, 1)
    got = []
    for i in range(plan.nblocks):
        r0, r1 = plan.received(i)
        cur, off = x[r0:r1], r0
        for stp, w, win in zip(steps, wts, plan.windows(i)):
            s0, s1 = win.src
            assert off <= s0 and s1 <= off + len(cur) or s0 == s1
            buf = np.concatenate([np.zeros(win.pad_before), cur[s0 - off:s1 - off],
                                  np.zeros(win.pad_after)])
            assert len(buf) == win.length
            local = _halo.Step(stp.k, stp.s, stp.d, 0, 0)
            cur = _op1d(buf, local, w, len(buf))[:max(0, win.q1 - win.q0)]
            assert len(cur) == max(0, win.q1 - win.q0)
            off = win.q0
        got.append(cur)
    assert [len(g) for g in got] == list(plan.out_chunks)
    np.testing.assert_allclose(np.concatenate(got), want, 1e-12, 1e-12)
