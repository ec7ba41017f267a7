"""Coverage-guided fuzzing of fastconv's public API with atheris (issue 9).

Every input is decoded by a FuzzedDataProvider into one call of one public
op: the op, dtype, array shapes (small, zero, or huge zero-stride arrays),
memory layouts, the geometry arguments (small ints, zero, negative, values
near 2**31, 2**32, 2**40, 2**62, 2**63, or values of the wrong type) and
the algorithm.  The call may raise ValueError, TypeError or MemoryError;
anything else (or a crash or sanitizer report in the C kernels) is a
finding.  When the call succeeds on small inputs, the result is checked
against fastconv.reference, and max-pool indices are fed back into
max_pool2d_backward.

Run it through fuzz/run.sh, which builds the extension with
-fsanitize=address,undefined,fuzzer-no-link and preloads the runtimes.
Directly (no sanitizers, Python coverage only):

    python fuzz/fuzz_api.py -max_total_time=60 fuzz/corpus
"""
import os
import sys
import warnings

import atheris

with atheris.instrument_imports(include=["fastconv"]):
    import numpy as np
    from fastconv import conv, pool
    from fastconv import reference as ref

OPS = ("conv2d", "conv2d_backward", "conv_transpose2d", "compose", "max_pool2d",
       "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward")
ALLOWED = (ValueError, TypeError, MemoryError)
SPECIAL = (0, 1, 2, 3, -1, -2, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 1, 2 ** 40, 2 ** 62 - 1, 2 ** 62,
           2 ** 63 - 1, 2 ** 63, -2 ** 63)
JUNK = (None, 1.5, "1", True, (1, 2, 3), (), [2], 1j, np.float32(2), np.int64(2))
SMALL_ELEMS = 20000           # results this small are checked against the reference


class Decoder:
    """Turns fuzzer bytes into arguments; biased towards valid small values."""

    def __init__(self, data):
        self.f = atheris.FuzzedDataProvider(data)
        self.huge = False       # a parameter or dim outside the small range was drawn

    def int(self, lo, hi):
        return self.f.ConsumeIntInRange(lo, hi)

    def size(self, lo=0, hi=6):
        """Mostly lo..hi, sometimes an extreme value."""
        if self.int(0, 15) == 0:
            v = SPECIAL[self.int(0, len(SPECIAL) - 1)]
            if not lo <= v <= hi:
                self.huge = True
            return v
        return self.int(lo, hi)

    def param(self, lo, hi, pair_ok=True):
        """An int-or-pair argument, occasionally junk."""
        k = self.int(0, 19)
        if k == 0:
            self.huge = True
            return JUNK[self.int(0, len(JUNK) - 1)]
        if pair_ok and k < 7:
            return (self.size(lo, hi), self.size(lo, hi))
        return self.size(lo, hi)

    def dtype(self):
        k = self.int(0, 19)
        if k == 0:
            self.huge = True
            return (np.int32, np.complex64, object, np.bool_, np.float16)[self.int(0, 4)]
        return np.float32 if k < 11 else np.float64

    def array(self, shape, dtype, int_values=None, nonfinite=False):
        """An array of `shape` in a drawn layout; huge shapes are zero-stride.

        With `nonfinite`, one element may be NaN or +-inf.  Only inputs whose
        every product the kernels really form get them: fastconv skips taps
        that land on padding, where the reference (like PyTorch) multiplies
        0 * NaN, so a NaN weight or gradient on a padding-only tap differs.
        """
        shape = tuple(shape)
        if any(d < 0 for d in shape):
            self.huge = True
            return np.zeros((1,), dtype)           # a wrong rank / shape instead
        n = 1
        for d in shape:
            n *= d
        if n > 1 << 16 or max(shape, default=0) > 1 << 16:
            self.huge = True
            try:
                return np.broadcast_to(np.zeros((), dtype), shape)
            except ValueError:                     # numpy cannot even describe it
                return np.zeros((1,) * len(shape), dtype)
        seed = self.int(0, 2 ** 16)
        rng = np.random.default_rng(seed)
        if int_values is not None:
            a = int_values.astype(np.int64) if isinstance(int_values, np.ndarray) else \
                rng.integers(-2, 64, size=shape)
        else:
            a = rng.uniform(-1, 1, size=shape)
            if nonfinite and self.int(0, 9) == 0 and a.size:
                a.flat[self.int(0, a.size - 1)] = (np.nan, np.inf, -np.inf, 0.0)[self.int(0, 3)]
        try:
            a = a.astype(dtype)
        except (TypeError, ValueError):
            a = a.astype(object)
        layout = self.int(0, 6)
        if layout == 1 and a.ndim:
            big = np.zeros(a.shape + (2,), a.dtype)
            big[..., 1] = a
            a = big[..., 1]
        elif layout == 2:
            a = np.flip(np.flip(a).copy())
        elif layout == 3:
            a = np.asfortranarray(a)
        elif layout == 4:
            a = a.copy()
            a.flags.writeable = False
        elif layout == 5 and a.ndim and a.shape[0]:
            a = np.broadcast_to(a[:1], a.shape)
        return a

    def maybe_rank(self, shape):
        """Occasionally a wrong rank."""
        k = self.int(0, 29)
        if k == 0:
            self.huge = True
            return shape[1:]
        if k == 1:
            self.huge = True
            return (1,) + tuple(shape)
        return shape


def _pair(v):
    """An int-or-pair as a pair of ints, or TypeError."""
    if isinstance(v, (tuple, list)) and len(v) == 2:
        return int(v[0]), int(v[1])
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v), int(v)
    raise TypeError(v)


def _conv_args(d, op):
    dtype = d.dtype()
    groups = d.param(1, 3, pair_ok=False) if d.int(0, 3) == 0 else d.int(1, 3)
    g = groups if isinstance(groups, int) and 1 <= groups <= 3 else 1
    cg, og = d.size(0, 3), d.size(1, 3)
    kh, kw = d.size(1, 4), d.size(1, 4)
    n, h, w = d.size(0, 3), d.size(0, 9), d.size(0, 9)
    stride = d.param(1, 3)
    dilation = d.param(1, 3)
    padding = d.param(0, 2)
    kw_ = dict(stride=stride, dilation=dilation, groups=groups)
    algo_k = d.int(0, 9)
    algos = conv.algorithms(op if op != "compose" else "conv2d")
    algo = algos[algo_k % len(algos)] if algo_k < 9 else ("bogus", None, 3)[d.int(0, 2)]
    if algo is not None or algo_k < 9:
        kw_["algo"] = algo
    if op == "conv_transpose2d":
        kw_["padding"] = padding
        kw_["output_padding"] = d.param(0, 2)
        x = d.array(d.maybe_rank((n, cg * g, h, w)), dtype, nonfinite=True)
        wt = d.array(d.maybe_rank((cg * g, og, kh, kw)), dtype if d.int(0, 15) else np.float64)
        bias = d.array((og * g,), dtype) if d.int(0, 1) else None
        return (x, wt, bias), kw_, dtype
    if d.int(0, 4) == 0:
        padding = ("same", "valid", "full")[d.int(0, 2)]
    kw_["padding"] = padding
    x = d.array(d.maybe_rank((n, cg * g, h, w)), dtype, nonfinite=True)
    wt = d.array(d.maybe_rank((og * g, cg, kh, kw)), dtype if d.int(0, 15) else np.float64)
    if op == "conv2d":
        bias = d.array((og * g + (d.int(0, 15) == 0),), dtype) if d.int(0, 1) else None
        return (x, wt, bias), kw_, dtype
    # backward: grad_out of the right shape when the geometry is valid
    try:
        st, dl = _pair(stride), _pair(dilation)
        kh_, kw_k = wt.shape[2], wt.shape[3]
        if padding == "same":
            pads = [ref.same_padding(kh_, dl[0]), ref.same_padding(kw_k, dl[1])]
        elif padding in ("valid", "full"):
            pads = [(0, 0), (0, 0)]
        else:
            pads = [(p, p) for p in _pair(padding)]
        gshape = (x.shape[0], wt.shape[0]) + tuple(
            ref.conv_output_size(x.shape[2 + i], wt.shape[2 + i], st[i], pads[i][0], pads[i][1], dl[i])
            for i in range(2))
    except Exception:
        gshape = (n, og * g, d.size(0, 9), d.size(0, 9))
    if d.int(0, 9) == 0:
        gshape = tuple(s + d.int(-1, 1) for s in gshape)
    gy = d.array(gshape, dtype)
    needs = [("input", "weight", "bias"), ("input",), ("weight",), ("bias",), (), ("bogus",)][d.int(0, 5)]
    kw_["needs"] = needs
    return (gy, x, wt), kw_, dtype


def _pool_args(d, op):
    dtype = d.dtype()
    n, c, h, w = d.size(0, 3), d.size(0, 3), d.size(0, 9), d.size(0, 9)
    kw_ = dict(kernel_size=d.param(1, 4), padding=d.param(0, 2), ceil_mode=bool(d.int(0, 1)))
    if d.int(0, 1):
        kw_["stride"] = d.param(1, 3)
    if op.startswith("max"):
        kw_["dilation"] = d.param(1, 3)
    else:
        kw_["count_include_pad"] = bool(d.int(0, 1))
        if d.int(0, 2) == 0:
            kw_["divisor_override"] = d.size(1, 5)
    shape = d.maybe_rank((n, c, h, w))
    if op in ("max_pool2d", "avg_pool2d"):
        return (d.array(shape, dtype, nonfinite=True),), kw_, dtype
    # backward: grad_out the shape of the forward output (when it is valid)
    try:
        k = _pair(kw_["kernel_size"])
        st = k if "stride" not in kw_ else _pair(kw_["stride"])
        p, dl = _pair(kw_["padding"]), _pair(kw_.get("dilation", 1))
        gshape = tuple(shape[:-2]) + tuple(
            ref.pool_output_size(shape[-2 + i], k[i], st[i], p[i], dl[i], kw_["ceil_mode"]) for i in range(2))
    except Exception:
        gshape = (n, c, d.size(0, 5), d.size(0, 5))
    if d.int(0, 9) == 0:
        gshape = tuple(max(0, s + d.int(-1, 1)) for s in gshape)
    gy = d.array(gshape, dtype)
    if op == "avg_pool2d_backward":
        return (gy, shape), kw_, dtype
    x = d.array(shape, dtype, nonfinite=True)
    if d.int(0, 1):
        try:
            _, idx = pool.max_pool2d(x, return_indices=True, **kw_)
            idx = np.array(idx)
            if d.int(0, 3) == 0 and idx.size:          # corrupt one index
                v = SPECIAL[d.int(0, len(SPECIAL) - 1)]
                idx.flat[d.int(0, idx.size - 1)] = v if -2 ** 63 <= v < 2 ** 63 else -1
            kw_["indices"] = idx if d.int(0, 9) else idx.astype(np.int32)
        except ALLOWED:
            kw_["indices"] = d.array(gshape, np.int64, int_values=True)
    return (gy, x), kw_, dtype


def _small(args):
    return all(not isinstance(a, np.ndarray) or a.size <= SMALL_ELEMS for a in args)


class RefFailed(Exception):
    """The reference itself cannot compute this (e.g. zero-width inputs): no verdict."""


def _ref(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except Exception as e:
        raise RefFailed(f"{fn.__name__}: {e!r}") from None


def _check(op, args, kw, got, dtype):
    """Compare a successful small call with the reference."""
    rkw = {k: v for k, v in kw.items() if k != "algo"}
    tol = dict(rtol=2e-4, atol=2e-5) if np.dtype(dtype) == np.float32 else dict(rtol=1e-9, atol=1e-11)
    if op == "max_pool2d" or op == "avg_pool2d":
        x = args[0]
        x4 = x[None] if x.ndim == 3 else x
        want = _ref(getattr(ref, op), x4, **rkw)
        want = want[0] if x.ndim == 3 else want
        np.testing.assert_allclose(got, want, **tol)
        return
    if op == "max_pool2d_backward":
        gy, x = args
        if x.size == 0 or "indices" in kw:
            assert got.shape == x.shape
            return
        x4, g4 = (x[None], gy[None]) if x.ndim == 3 else (x, gy)
        want = _ref(ref.max_pool2d_backward, g4, x4, **rkw)
        np.testing.assert_allclose(got, want[0] if x.ndim == 3 else want, **tol)
        return
    if op == "avg_pool2d_backward":
        gy, shape = args
        g4, s4 = (gy[None], (1,) + tuple(shape)) if len(shape) == 3 else (gy, shape)
        want = _ref(ref.avg_pool2d_backward, g4, s4, **rkw)
        np.testing.assert_allclose(got, want[0] if len(shape) == 3 else want, **tol)
        return
    if op == "compose":
        np.testing.assert_allclose(got, _ref(ref.compose, *args), **tol)
        return
    want = _ref(getattr(ref, op), *args, **rkw)
    if op == "conv2d_backward":
        for g, w_ in zip(got, want):
            assert (g is None) == (w_ is None)
            if g is not None:
                np.testing.assert_allclose(g, w_, **tol)
        return
    np.testing.assert_allclose(got, want, **tol)


def TestOneInput(data):
    d = Decoder(data)
    op = OPS[d.int(0, len(OPS) - 1)]
    if op == "compose":
        dtype = d.dtype()
        c0, c1, c2 = d.size(0, 3), d.size(1, 3), d.size(0, 3)
        w1 = d.array(d.maybe_rank((c1, c0, d.size(1, 3), d.size(1, 3))), dtype)
        w2 = d.array(d.maybe_rank((c2, c1 + (d.int(0, 15) == 0), d.size(1, 3), d.size(1, 3))), dtype)
        args, kw = (w1, w2), {}
    elif op.startswith("conv"):
        args, kw, dtype = _conv_args(d, op)
    else:
        args, kw, dtype = _pool_args(d, op)
    snaps = [(a, np.array(a)) for a in args if isinstance(a, np.ndarray) and a.size <= SMALL_ELEMS]
    try:
        got = getattr(conv if op.startswith("conv") or op == "compose" else pool, op)(*args, **kw)
    except ALLOWED:
        return
    for a, before in snaps:
        if a.dtype != object:
            np.testing.assert_array_equal(a, before, err_msg=f"{op} modified an input")
    if op == "max_pool2d" and isinstance(got, tuple):
        got = got[0]
    if not d.huge and _small(args) and all(isinstance(a, np.ndarray) or a is None or isinstance(a, tuple)
                                           for a in args):
        with np.errstate(all="ignore"):
            try:
                _check(op, args, kw, got, dtype)
            except RefFailed:
                pass


def _limit_memory():
    """Without ASan's allocation cap (see run.sh), bound the address space so a
    valid multi-GiB request fails with MemoryError instead of paging."""
    if "asan" not in os.environ.get("LD_PRELOAD", ""):
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


def main():
    _limit_memory()
    warnings.simplefilter("ignore")      # casts of NaN to int etc. are part of the game
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
