"""fastconv on Dask arrays: convolution stacks over NCHW arrays larger than memory.

Install with ``pip install fastconv[dask]``.  ``import fastconv`` never
imports dask; this module does.

::

    import dask.array as da, numpy as np, fastconv.dask as fcd
    x = da.random.default_rng(0).random((8, 3, 4096, 4096), chunks=(2, 3, 1024, 1024), dtype=np.float32)
    w1, b1, w2 = (np.random.rand(*s).astype(np.float32) for s in [(16, 3, 3, 3), (16,), (32, 16, 3, 3)])
    y = fcd.sequential("conv(16,3,p=1) maxpool(2) conv(32,3,s=2,p=1,bias=0)", x, [(w1, b1), w2])
    print(fcd.cost(y)); y[0, :, :4, :4].compute()

Every function returns a lazy ``dask.array.Array`` equal to what the
in-memory fastconv op (or stack) gives on the whole array: the spatial axes
are cut into blocks, each block receives from its neighbours exactly the
halo its outputs read (the stack's receptive field,
``fastconv.cost.receptive_field``; ``dask.array.overlap.overlap`` moves
it), padding is applied only at the array's true borders, and every task
runs the in-memory kernels (which release the GIL, so the threaded
scheduler scales; ``dask.distributed`` works too).  Strided stacks need
input chunk boundaries on multiples of the stack's total stride, and
every chunk at least as large as the halo it lends; other chunkings are
rechunked to the nearest such boundaries (``rechunk=False`` raises
ValueError instead).  Channels are gathered into one chunk for
convolutions (pooling keeps channel chunks).

`cost` reports the chunked computation: total FLOPs including the work
redone on halos, halo bytes moved, and the peak memory of one task.

Threads: dask runs tasks in parallel and every task calls fastconv, so with
the threaded scheduler set ``fastconv.set_num_threads(1)`` (or dask's
``num_workers`` x fastconv's threads <= cores), and hold the BLAS at one
thread for the whole computation::

    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, user_api="blas"):
        y.compute()

(fastconv's im2col kernels lower the BLAS to one thread per call and
restore it after; from several threads at once those switches were measured
to slow concurrent calls by up to 30x.)
"""
from dataclasses import dataclass, field
import numpy as np
import dask.array as da

from . import _args, _blas_threads, _blocks, _halo, _layers
from . import cost as _cost

__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "sequential", "cost", "ChunkedCost"]


# ---------------------------------------------------------------- programs

@dataclass(eq=False)
class _Stage:
    """Spatial layers run in one pass of overlap + map_blocks."""
    layers: list
    in_shape: tuple
    in_chunks: tuple          # the chunks the stage runs on (after any rechunk)
    given_chunks: tuple       # the chunks it was handed
    plans: tuple              # (AxisPlan for H, AxisPlan for W)
    out_shape: tuple
    out_chunks: tuple

    @property
    def rechunked(self):
        return self.in_chunks != self.given_chunks


@dataclass(eq=False)
class _Head:
    """flatten / fc layers: per batch chunk, on whole samples."""
    fcs: list                 # [(w (out, F), b or None)]
    in_shape: tuple
    in_chunks: tuple
    given_chunks: tuple
    out_shape: tuple
    out_chunks: tuple


@dataclass(eq=False)
class _Program:
    stages: list
    head: object
    in_shape: tuple
    in_chunks: tuple
    dtype: np.dtype
    out_shape: tuple = ()
    out_chunks: tuple = ()


def _plan_stage(layers, shape, chunks, rechunk):
    """Blocks, halos and target chunks of one stage over an array of `shape`/`chunks`."""
    n, c, h, w = shape
    for l in layers:
        _check_layer(l, (n, c, h, w))
        c = l.channels(c)
        h, w = _halo.out_size(l.step(0), h), _halo.out_size(l.step(1), w)
    plans = tuple(_halo.AxisPlan([l.step(a) for l in layers], shape[2 + a], chunks[2 + a])
                  for a in (0, 1))
    conv = any(l.kind == "conv" for l in layers)
    chan = (shape[1],) if conv and shape[1] else chunks[1]
    target = (chunks[0], chan, plans[0].chunks, plans[1].chunks)
    if target != tuple(chunks) and not rechunk:
        raise ValueError(
            f"chunks {tuple(chunks)} do not fit the stack {[_describe(l) for l in layers]}: "
            f"it needs chunk boundaries on multiples of its stride (H {plans[0].jump}, "
            f"W {plans[1].jump}), chunks of at least the halo (H {max(plans[0].before, plans[0].after)}, "
            f"W {max(plans[1].before, plans[1].after)}) and "
            f"{'one channel chunk' if conv else 'any channel chunks'}; nearest fit: {target}. "
            "Pass rechunk=True (the default) to rechunk automatically")
    out_c = c if conv else None
    out_chunks = (chunks[0], (out_c,) if conv else chan, plans[0].out_chunks, plans[1].out_chunks)
    out_shape = (n, c, plans[0].sizes[-1], plans[1].sizes[-1])
    return _Stage(list(layers), tuple(shape), target, tuple(chunks), plans, out_shape, out_chunks)


def _describe(layer):
    if layer.kind == "conv":
        return f"conv(k={layer.kernel}, s={layer.stride}, d={layer.dilation}, pads={layer.pads})"
    return f"{layer.kind}pool(k={layer.kernel}, s={layer.stride}, p={layer.pads[0][0], layer.pads[1][0]})"


def _check_layer(layer, shape):
    """Whole-array validation (the same errors the in-memory op raises), before any graph."""
    if layer.kind == "conv":
        if shape[1] != layer.w.shape[1] * layer.groups:
            raise ValueError(f"conv weight of shape {layer.w.shape} with groups={layer.groups} needs "
                             f"{layer.w.shape[1] * layer.groups} input channels, got {shape[1]}")
        pad = (layer.pads[0][0], layer.pads[1][0])
        if any(lo != hi for lo, hi in layer.pads):
            pad = "same"
        _cost.conv2d(shape, layer.w.shape, layer.stride, pad, layer.dilation, layer.groups)
    elif layer.kind == "max":
        _cost.max_pool2d(shape, layer.kernel, layer.stride, (layer.pads[0][0], layer.pads[1][0]),
                         layer.dilation, layer.ceil_mode)
    else:
        _cost.avg_pool2d(shape, layer.kernel, layer.stride, (layer.pads[0][0], layer.pads[1][0]),
                         layer.ceil_mode, layer.count_include_pad, layer.divisor_override)
    if shape[2] < 1 or shape[3] < 1:
        raise ValueError(f"{_describe(layer)}: input height and width must be >= 1, got {shape}")


def _program(layers, head, shape, chunks, dtype, fuse, rechunk):
    """Plan every stage (one per layer unless `fuse`) and the head."""
    stages = []
    groups = ([layers] if layers else []) if fuse else [[l] for l in layers]
    cur_shape, cur_chunks = tuple(shape), tuple(tuple(c) for c in chunks)
    for g in groups:
        st = _plan_stage(g, cur_shape, cur_chunks, rechunk)
        stages.append(st)
        cur_shape, cur_chunks = st.out_shape, st.out_chunks
    hd = None
    if head is not None:
        feats = int(np.prod(cur_shape[1:]))
        target = (cur_chunks[0],) + tuple((s,) for s in cur_shape[1:])
        f = feats
        for w, b in head:
            if w.shape[1] != f:
                raise ValueError(f"fc weight has shape {w.shape}: expected (out, {f}) "
                                 f"({f} features reach it)")
            f = w.shape[0]
        hd = _Head(head, cur_shape, target, cur_chunks, (cur_shape[0], f),
                   (cur_chunks[0], (f,)))
        cur_shape, cur_chunks = hd.out_shape, hd.out_chunks
    return _Program(stages, hd, tuple(shape), tuple(chunks), np.dtype(dtype), cur_shape, cur_chunks)


# ---------------------------------------------------------------- graphs

# Tasks hold SciPy's BLAS at one thread for their whole run (dask parallelises
# across tasks), so the im2col calls inside a task do not each lower and
# restore the BLAS thread count.  Those toggles, from several scheduler threads
# at once, made concurrent im2col calls up to ~30x slower on the test machine;
# holding the count at 1 for the whole compute (threadpoolctl, see the module
# docstring) removes the remaining toggles between tasks.

class _Shared:
    """What every task of a stage shares (layers with their weights, plans).

    Passed as one delayed graph key, so ``dask.distributed`` ships the weights
    to each worker once instead of inside every task.
    """

    def __init__(self, *items):
        self.items = items

    def __dask_tokenize__(self):
        from dask.base import tokenize
        return tokenize(*[(l.kind, l.kernel, l.stride, l.dilation, l.pads, l.ceil_mode,
                           l.count_include_pad, l.divisor_override, l.groups, l.c_out, l.w, l.b,
                           l.algo) if isinstance(l, _blocks.Layer) else l
                          for l in self.items[0]], *self.items[1:])


def _share(*items):
    import dask
    return dask.delayed(_Shared(*items), pure=True, traverse=False)


def _stage_block(block, shared, block_id=None):
    layers, plans = shared.items
    with _blas_threads.single_threaded():
        return _blocks.run_block(block, layers, plans, (block_id[2], block_id[3]))


def _head_block(block, shared):
    import fastconv as fc
    fcs, = shared.items
    y = block.reshape(block.shape[0], -1)
    with _blas_threads.single_threaded():
        for w, b in fcs:
            f = y.shape[1]
            y = fc.conv2d(np.ascontiguousarray(y).reshape(y.shape[0], f, 1, 1),
                          w.reshape(w.shape[0], f, 1, 1), b).reshape(y.shape[0], w.shape[0])
    return y


def _build(prog, x):
    y = x
    for st in prog.stages:
        if st.rechunked:
            y = y.rechunk(st.in_chunks)
        ph, pw = st.plans
        depth = {2: ph.depth, 3: pw.depth}
        if any(v for pair in depth.values() for v in pair):
            y = da.overlap.overlap(y, depth=depth, boundary="none", allow_rechunk=False)
        y = da.map_blocks(_stage_block, y, shared=_share(st.layers, st.plans),
                          chunks=st.out_chunks, dtype=prog.dtype,
                          meta=np.empty((0, 0, 0, 0), prog.dtype),
                          token="fastconv-" + "-".join(l.kind for l in st.layers))
    if prog.head is not None:
        y = y.rechunk(prog.head.in_chunks)
        y = da.map_blocks(_head_block, y, shared=_share(prog.head.fcs), chunks=prog.head.out_chunks,
                          drop_axis=[2, 3], dtype=prog.dtype,
                          meta=np.empty((0, 0), prog.dtype), token="fastconv-fc")
    y._fastconv_program = prog
    return y


# ---------------------------------------------------------------- inputs

def _as_dask(x):
    if isinstance(x, da.Array):
        a = x
    elif hasattr(x, "__array__") or isinstance(x, (list, tuple)):
        a = da.asarray(x)
    else:
        raise TypeError(f"x must be a dask array (or an array-like), got {type(x).__name__}")
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must have dtype float32 or float64, got {a.dtype}")
    if a.ndim != 4:
        raise ValueError(f"x must be 4-D (NCHW), got shape {a.shape}")
    if any(np.isnan(s) for s in a.shape):
        raise ValueError(f"x has unknown chunk sizes {a.chunks}; call x.compute_chunk_sizes() first")
    return a


def _param(a, name, dtype, shape):
    if isinstance(a, da.Array):
        a = a.compute()
    if not (isinstance(a, np.ndarray) or hasattr(a, "__array__")):
        raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
    a = np.asarray(a)
    if a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype} but x is {np.dtype(dtype)}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {a.shape}")
    return np.ascontiguousarray(a)


def _conv_pads(padding, kernel, dilation, stride):
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            if tuple(stride) != (1, 1):
                raise ValueError(f"padding='same' needs stride=1 (as PyTorch), got stride={stride}")
            tot = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in tot)
        raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    p = _args.pair(padding, "padding", 0)
    return ((p[0], p[0]), (p[1], p[1]))


def _conv_layer(w, b, stride, padding, dilation, groups, algo, c_in, dtype, name="w"):
    if isinstance(w, da.Array):
        w = w.compute()
    w = np.asarray(w) if hasattr(w, "__array__") else w
    if not isinstance(w, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(w).__name__}")
    if w.ndim != 4:
        raise ValueError(f"{name} must be 4-D (C_out, C_in/groups, kH, kW), got shape {w.shape}")
    w = _param(w, name, dtype, w.shape)
    groups = _args.as_int(groups, "groups", 1)
    stride = _args.pair(stride, "stride", 1)
    dilation = _args.pair(dilation, "dilation", 1)
    kernel = tuple(int(v) for v in w.shape[2:])
    if not isinstance(algo, str):
        raise TypeError(f"algo must be a string, got {algo!r}")
    if b is not None:
        b = _param(b, "bias" if name == "w" else name.replace("weight", "bias"), dtype, (w.shape[0],))
    if c_in != w.shape[1] * groups:
        raise ValueError(f"x has {c_in} channels but {name} of shape {w.shape} with groups={groups} "
                         f"expects {w.shape[1] * groups}")
    if w.shape[0] % groups:
        raise ValueError(f"{name} has {w.shape[0]} output channels, not divisible by groups={groups}")
    return _blocks.Layer("conv", kernel, stride, dilation, _conv_pads(padding, kernel, dilation, stride),
                         groups=groups, c_out=int(w.shape[0]), w=w, b=b, algo=algo)


def _pool_layer(mode, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad=True,
                divisor_override=None):
    k = _args.pair(kernel_size, "kernel_size", 1)
    s = k if stride is None else _args.pair(stride, "stride", 1)
    p = _args.pair(padding, "padding", 0)
    d = _args.pair(dilation, "dilation", 1)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r}")
    if divisor_override is not None:
        divisor_override = _args.as_int(divisor_override, "divisor_override")
        if divisor_override == 0:
            raise ValueError("divisor_override must be non-zero, got 0")
    return _blocks.Layer(mode, k, s, d, ((p[0], p[0]), (p[1], p[1])), bool(ceil_mode),
                         bool(count_include_pad), divisor_override)


def _run(layers, x, head=None, fuse=True, rechunk=True):
    prog = _program(layers, head, x.shape, x.chunks, x.dtype, fuse, rechunk)
    return _build(prog, x)


# ---------------------------------------------------------------- public ops

def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algo="auto",
           rechunk=True):
    """``fastconv.conv2d`` over a Dask array, block by block with exact halos.

    Parameters
    ----------
    x : dask.array.Array, shape (N, C_in, H, W), float32 or float64
        Chunked over batch and/or H and W (channels are gathered into one
        chunk).  A NumPy array is wrapped with ``dask.array.asarray``.
    w : ndarray, shape (C_out, C_in/groups, kH, kW), same dtype
    bias : ndarray, shape (C_out,), optional
    stride, padding, dilation, groups, algo
        As ``fastconv.conv2d`` (padding: int, pair, ``"same"``, ``"valid"``).
    rechunk : bool, default True
        Rechunk H/W to boundaries on multiples of the stride (and chunks at
        least as large as the halo) when needed; False raises ValueError.

    Returns
    -------
    dask.array.Array, shape (N, C_out, H_out, W_out)
        Equal to ``fastconv.conv2d`` on the whole array.  ``cost(result)``
        gives the chunked computation's FLOPs, halo bytes and peak task memory.

    Raises
    ------
    TypeError, ValueError
        As ``fastconv.conv2d``, raised when the graph is built; ValueError for
        unfit chunks with ``rechunk=False``.
    """
    x = _as_dask(x)
    layer = _conv_layer(w, bias, stride, padding, dilation, groups, algo, x.shape[1], x.dtype)
    return _run([layer], x, rechunk=rechunk)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
               rechunk=True):
    """``fastconv.max_pool2d`` over a Dask array, block by block with exact halos.

    Parameters
    ----------
    x : dask.array.Array, shape (N, C, H, W), float32 or float64
        Chunked over any axes (channel chunks are kept).
    kernel_size, stride, padding, dilation, ceil_mode
        As ``fastconv.max_pool2d`` (``return_indices`` is not offered: the
        indices of a block would be local to it).
    rechunk : bool, default True
        See `conv2d`.

    Returns
    -------
    dask.array.Array, shape (N, C, H_out, W_out)
    """
    x = _as_dask(x)
    return _run([_pool_layer("max", kernel_size, stride, padding, dilation, ceil_mode)], x,
                rechunk=rechunk)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, rechunk=True):
    """``fastconv.avg_pool2d`` over a Dask array, block by block with exact halos.

    Border windows divide exactly as the whole-array op does (padding,
    ``count_include_pad``, ``ceil_mode`` overhang, ``divisor_override``):
    such blocks sum with the kernel and multiply by the reciprocal of the
    whole-array divisor, as the kernel does.

    Parameters
    ----------
    x : dask.array.Array, shape (N, C, H, W), float32 or float64
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As ``fastconv.avg_pool2d``.
    rechunk : bool, default True
        See `conv2d`.

    Returns
    -------
    dask.array.Array, shape (N, C, H_out, W_out)
    """
    x = _as_dask(x)
    if not isinstance(count_include_pad, (bool, np.bool_)):
        raise TypeError(f"count_include_pad must be a bool, got {count_include_pad!r}")
    return _run([_pool_layer("avg", kernel_size, stride, padding, 1, ceil_mode, count_include_pad,
                             divisor_override)], x, rechunk=rechunk)


# ---------------------------------------------------------------- stacks

def _unpack(item, i, spec):
    """(w, b) from a params entry: ``w``, ``(w,)`` or ``(w, b)``."""
    if isinstance(item, (tuple, list)):
        if len(item) == 1:
            return item[0], None
        if len(item) == 2:
            return item[0], item[1]
        raise ValueError(f"params[{i}] for {spec} must be w or (w, b), got a sequence of {len(item)}")
    return item, None


def _stack_layers(layers, x_shape, dtype, params, algo, need_arrays=True):
    """Layer objects (spatial part) and the fc head from a spec and its params."""
    specs = _layers.as_layers(layers)
    params = list(params) if params is not None else None
    spatial, head = [], None
    c = x_shape[1]
    pi = 0
    feats = None

    def take(spec, shape, has_bias):
        nonlocal pi
        where = f"layer {specs.index(spec) + 1} ({spec})"
        if params is None:                       # cost only: shapes, no values
            w = np.broadcast_to(np.zeros((), dtype), shape)
            return w, (np.broadcast_to(np.zeros((), dtype), shape[:1]) if has_bias else None)
        if pi >= len(params):
            raise ValueError(f"params has {len(params)} entries but {where} needs weights "
                             "(one entry per conv/fc layer: w or (w, b))")
        w, b = _unpack(params[pi], pi, where)
        pi += 1
        w = _param(w, f"params[{pi - 1}] weight of {where}", dtype, shape)
        if has_bias and b is None:
            raise ValueError(f"{where} has a bias (bias=1): pass params[{pi - 1}] = (w, b)")
        if not has_bias and b is not None:
            raise ValueError(f"{where} has bias=0 but params[{pi - 1}] gives a bias")
        if b is not None:
            b = _param(b, f"params[{pi - 1}] bias of {where}", dtype, shape[:1])
        return w, b

    for spec in specs:
        where = f"layer {specs.index(spec) + 1} ({spec})"
        if isinstance(spec, (_layers.Conv, _layers.Pool)):
            if head is not None:
                raise ValueError(f"{where}: a spatial layer cannot follow flatten/fc")
            if isinstance(spec, _layers.Conv):
                if c % spec.groups or spec.out % spec.groups:
                    raise ValueError(f"{where}: {c} input channels and {spec.out} outputs must be "
                                     f"divisible by g={spec.groups}")
                w, b = take(spec, (spec.out, c // spec.groups) + tuple(spec.kernel), spec.bias)
                try:
                    layer = _blocks.Layer(
                        "conv", tuple(spec.kernel), tuple(spec.stride), tuple(spec.dilation),
                        _conv_pads(spec.padding, spec.kernel, spec.dilation, spec.stride),
                        groups=spec.groups, c_out=spec.out, w=w, b=b, algo=algo)
                except ValueError as e:
                    raise ValueError(f"{where}: {e}") from None
                c = spec.out
            else:
                layer = _pool_layer(spec.mode, spec.kernel, spec.stride, spec.padding, 1, False)
            spatial.append(layer)
        elif isinstance(spec, _layers.Flatten):
            head = head if head is not None else []
        else:  # FC
            head = head if head is not None else []
            if feats is None:
                feats = _feature_count(spatial, x_shape)
            w, b = take(spec, (spec.out, feats), spec.bias)
            head.append((w, b))
            feats = spec.out
    if params is not None and pi != len(params):
        raise ValueError(f"params has {len(params)} entries but the layers use {pi} "
                         "(one per conv/fc layer)")
    return spatial, head


def _feature_count(spatial, shape):
    n, c, h, w = shape
    for l in spatial:
        _check_layer(l, (n, c, h, w))
        c = l.channels(c)
        h = _halo.out_size(l.step(0), h)
        w = _halo.out_size(l.step(1), w)
    return c * h * w


def sequential(layers, x, params=(), *, fuse=True, algo="auto", rechunk=True):
    """Run a stack of layers over a Dask array, block by block with exact halos.

    Parameters
    ----------
    layers : str or list
        The grammar of ``fastconv summary`` / ``fastconv.summary``:
        ``conv(out, k, s=1, p=0, d=1, g=1, bias=1)``, ``maxpool(k, s=k, p=0)``,
        ``avgpool(k, s=k, p=0)``, ``flatten``, ``fc(out, bias=1)`` (a string,
        or a list of layer objects / strings / tuples).  Conv and pooling
        layers come first; ``flatten``/``fc`` only at the end (they run per
        batch chunk on whole samples).
    x : dask.array.Array, shape (N, C, H, W), float32 or float64
        Chunked over batch and/or H and W.
    params : sequence
        One entry per ``conv``/``fc`` layer, in order: ``w`` for a layer with
        ``bias=0``, else ``(w, b)``.  Conv weights are ``(out, C_in/g, kH, kW)``,
        fc weights ``(out, features)`` (features = C*H*W in C order, as
        ``torch.flatten``), biases ``(out,)``; all of x's dtype.
    fuse : bool, default True
        True: one halo exchange for the whole spatial stack (the halo is the
        stack's receptive field; intermediate activations near block edges
        are recomputed by both neighbours).  False: one exchange per layer
        (more data movement, no recomputation).
    algo : str
        ``algo=`` for every convolution (``"auto"`` picks per call).
    rechunk : bool, default True
        Rechunk H/W to boundaries on multiples of the stack's total stride
        (and chunks at least as large as the halo) when needed; False raises
        ValueError for unfit chunks.

    Returns
    -------
    dask.array.Array
        ``(N, C_out, H_out, W_out)``, or ``(N, features)`` after flatten/fc;
        equal to running the layers in memory with fastconv.  ``cost(result)``
        describes the chunked computation.

    Raises
    ------
    TypeError, ValueError
        Bad specs, params of the wrong number, shape or dtype, geometry the
        in-memory ops refuse, unfit chunks with ``rechunk=False`` -- all when
        the graph is built, naming the layer.
    """
    x = _as_dask(x)
    spatial, head = _stack_layers(layers, x.shape, x.dtype, params, algo)
    return _run(spatial, x, head, fuse=fuse, rechunk=rechunk)


# ---------------------------------------------------------------- cost

@dataclass
class ChunkedCost:
    """Cost of a chunked computation (see `cost`).

    Attributes
    ----------
    flops : int
        Total FLOPs of every task's kernel calls (``fastconv.cost``
        conventions; dense: padding taps counted) including the work redone
        on halos, plus one multiplication per avg-pool output whose border
        divisor is fixed up.
    in_memory_flops : int
        FLOPs of the same layers run once on the whole array.
    redundant_flops : int
        ``flops - in_memory_flops``: the price of the halos (fused stacks
        recompute intermediate activations near block edges).  It can be
        negative: blocks compute only the activations the final output
        reads, while the whole-array run also computes floor-mode leftovers
        the next layer never reads.
    halo_bytes : int
        Bytes the overlaps copy into blocks from their neighbours (summed
        over blocks and stages).
    rechunk_bytes : int
        Bytes of the arrays rechunked for stride alignment, channel
        gathering or the fc head (0 when the chunks already fit).
    peak_task_bytes : int
        Largest footprint of one task: its input block with halo, the
        parameters, padded copies, activations and kernel workspace alive at
        once (Python object headers not counted).
    tasks : int
        Number of compute tasks (blocks x stages, plus head tasks).
    output_shape, output_chunks : tuple
    stages : list of dict
        Per stage: ``layers``, ``chunks`` (the input chunking it runs on),
        ``halo`` (``(before, after)`` along H and W), ``jump`` and ``rf_size``
        (H, W), ``blocks``, ``flops``, ``halo_bytes``, ``peak_task_bytes``.
    """
    flops: int = 0
    in_memory_flops: int = 0
    halo_bytes: int = 0
    rechunk_bytes: int = 0
    peak_task_bytes: int = 0
    tasks: int = 0
    output_shape: tuple = ()
    output_chunks: tuple = ()
    stages: list = field(default_factory=list)

    @property
    def redundant_flops(self):
        return self.flops - self.in_memory_flops

    def __str__(self):
        red = self.redundant_flops / self.in_memory_flops if self.in_memory_flops else 0.0
        lines = [f"chunked: {self.tasks} tasks in {len(self.stages)} stage(s), output "
                 f"{'x'.join(map(str, self.output_shape))}",
                 f"  flops            {self.flops:,} (in memory {self.in_memory_flops:,}, "
                 f"halo recompute +{red:.2%})",
                 f"  halo bytes       {self.halo_bytes:,}",
                 f"  rechunk bytes    {self.rechunk_bytes:,}",
                 f"  peak task bytes  {self.peak_task_bytes:,}"]
        for i, s in enumerate(self.stages):
            lines.append(f"  stage {i + 1}: {s['layers']}: {s['blocks']} blocks, halo H {s['halo'][0]} "
                         f"W {s['halo'][1]}, rf {s['rf_size']}, jump {s['jump']}")
        return "\n".join(lines)


def _nbytes(shape, itemsize):
    return int(np.prod(shape, dtype=object)) * itemsize


def _in_memory_flops(layer, shape, dtype):
    if layer.kind == "conv":
        pad = "same" if any(lo != hi for lo, hi in layer.pads) else (layer.pads[0][0], layer.pads[1][0])
        c = _cost.conv2d(shape, layer.w.shape, layer.stride, pad, layer.dilation, layer.groups,
                         bias=layer.b is not None, dtype=dtype)
    elif layer.kind == "max":
        c = _cost.max_pool2d(shape, layer.kernel, layer.stride, (layer.pads[0][0], layer.pads[1][0]),
                             layer.dilation, layer.ceil_mode, dtype=dtype)
    else:
        c = _cost.avg_pool2d(shape, layer.kernel, layer.stride, (layer.pads[0][0], layer.pads[1][0]),
                             layer.ceil_mode, layer.count_include_pad, layer.divisor_override,
                             dtype=dtype)
    return c.flops, c.output_shape


def _program_cost(prog):
    isz = prog.dtype.itemsize
    total = ChunkedCost(output_shape=prog.out_shape, output_chunks=prog.out_chunks)
    for st in prog.stages:
        ph, pw = st.plans
        s = dict(layers=" ".join(_describe(l) for l in st.layers), chunks=st.in_chunks,
                 halo=((ph.before, ph.after), (pw.before, pw.after)), jump=(ph.jump, pw.jump),
                 rf_size=(ph.size, pw.size), blocks=0, flops=0, halo_bytes=0, peak_task_bytes=0)
        if st.rechunked:
            total.rechunk_bytes += _nbytes(st.in_shape, isz)
        cchunks = st.in_chunks[1]
        cache = {}                                  # blocks equal up to translation cost the same
        sig_h = [ph.signature(i) for i in range(ph.nblocks)]
        sig_w = [pw.signature(j) for j in range(pw.nblocks)]
        for nb in st.in_chunks[0]:
            for cc in cchunks:
                for i in range(ph.nblocks):
                    for j in range(pw.nblocks):
                        key = (nb, cc, sig_h[i], sig_w[j])
                        if key not in cache:
                            cache[key] = _blocks.block_cost(st.layers, st.plans, (i, j), nb, cc,
                                                            prog.dtype)
                        bc = cache[key]
                        own = nb * cc * ph.chunks[i] * pw.chunks[j] * isz
                        s["blocks"] += 1
                        s["flops"] += bc.flops
                        s["halo_bytes"] += bc.received_bytes - own
                        s["peak_task_bytes"] = max(s["peak_task_bytes"], bc.peak_bytes)
        shape = st.in_shape
        for l in st.layers:
            f, shape = _in_memory_flops(l, shape, prog.dtype)
            total.in_memory_flops += f
        total.flops += s["flops"]
        total.halo_bytes += s["halo_bytes"]
        total.peak_task_bytes = max(total.peak_task_bytes, s["peak_task_bytes"])
        total.tasks += s["blocks"]
        total.stages.append(s)
    hd = prog.head
    if hd is not None:
        if hd.in_chunks != hd.given_chunks:
            total.rechunk_bytes += _nbytes(hd.in_shape, isz)
        feats = int(np.prod(hd.in_shape[1:]))
        params = sum(a.nbytes for w, b in hd.fcs for a in (w, b) if a is not None)
        for nb in hd.in_chunks[0]:
            # the block and the parameters stay; each fc allocates its output while the
            # previous fc's output (not the block) is still referenced
            held = nb * feats * isz + params
            f, prev, peak = feats, 0, 0
            for w, b in hd.fcs:
                c = _cost.conv2d((nb, f, 1, 1), (w.shape[0], f, 1, 1), bias=b is not None,
                                 dtype=prog.dtype)
                total.flops += c.flops
                out = nb * w.shape[0] * isz
                peak = max(peak, held + prev + out)
                prev, f = out, w.shape[0]
            total.peak_task_bytes = max(total.peak_task_bytes, peak)
            total.tasks += 1
        f = feats
        n = hd.in_shape[0]
        for w, b in hd.fcs:
            total.in_memory_flops += _cost.conv2d((n, f, 1, 1), (w.shape[0], f, 1, 1),
                                                  bias=b is not None, dtype=prog.dtype).flops
            f = w.shape[0]
    return total


def cost(layers, x=None, *, chunks=None, dtype=None, fuse=True, algo="auto", rechunk=True):
    """Cost of a chunked computation: FLOPs incl. halo recompute, halo bytes, peak task memory.

    Parameters
    ----------
    layers : dask.array.Array or str or list
        Either an array returned by this module (its computation is
        described), or a layer spec as for `sequential` (then `x` is needed).
    x : dask.array.Array or tuple, optional
        The input, or its shape ``(N, C, H, W)`` together with `chunks`.
    chunks : tuple, optional
        Chunks of the input when `x` is a shape (anything
        ``dask.array.core.normalize_chunks`` accepts).
    dtype : str or numpy dtype, optional
        Defaults to x's dtype, or float32 for a shape.
    fuse, algo, rechunk
        As `sequential`.

    Returns
    -------
    ChunkedCost
        ``flops``, ``in_memory_flops``, ``redundant_flops``, ``halo_bytes``,
        ``rechunk_bytes``, ``peak_task_bytes``, ``tasks``, ``stages``;
        ``str()`` is a short report.
    """
    if isinstance(layers, da.Array):
        prog = getattr(layers, "_fastconv_program", None)
        if prog is None:
            raise ValueError("cost(array) needs an array returned by fastconv.dask "
                             "(not one derived from it); or pass (layers, x)")
        return _program_cost(prog)
    if x is None:
        raise TypeError("cost(layers, x): x (a dask array or a shape with chunks=) is required")
    if isinstance(x, da.Array):
        shape, chunks_, dt = x.shape, x.chunks, x.dtype if dtype is None else np.dtype(dtype)
    else:
        shape = tuple(_args.as_int(v, "x shape", 0) for v in x)
        if len(shape) != 4:
            raise ValueError(f"x must be an NCHW shape, got {shape}")
        if chunks is None:
            raise TypeError("cost(layers, shape) needs chunks=")
        dt = np.dtype(dtype or "float32")
        chunks_ = da.core.normalize_chunks(chunks, shape, dtype=dt)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    spatial, head = _stack_layers(layers, shape, dt, None, algo)
    prog = _program(spatial, head, shape, chunks_, dt, fuse, rechunk)
    return _program_cost(prog)
