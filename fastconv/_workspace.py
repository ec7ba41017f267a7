"""Workspace bytes each convolution algorithm allocates, in pure Python.

The cost model (cost.py) reports these numbers and the tests check them
against the bytes the C kernels really allocate (returned by every
_kernels call), so the two must agree exactly.
"""


def conv2d(algo, pass_, input_shape, weight_shape, output_shape, stride, padding, dilation,
           groups, itemsize, threads=None, limit=None):
    """Bytes of workspace for one conv call.

    Parameters
    ----------
    algo : str
        ``"direct"``, ``"im2col"`` or ``"dilated"``.
    pass_ : str
        ``"forward"``, ``"input"`` (grad input / transposed conv) or ``"weight"``.
    input_shape, weight_shape, output_shape : tuple of int
        The forward convolution's NCHW input, weight and output shapes.
    stride, padding, dilation : tuple of (int, int)
    groups, itemsize : int
    threads, limit : int or None
        Kernel threads and workspace limit in bytes; None means the current
        ``fastconv.config`` settings.
    """
    if algo == "direct":
        if pass_ != "input":
            return 0
        return _direct_input(input_shape, weight_shape, output_shape, stride, padding, dilation,
                             groups, itemsize, threads, limit)
    if algo == "im2col":
        return _im2col(pass_, input_shape, weight_shape, output_shape, stride, padding,
                       groups, itemsize, threads, limit)
    if algo == "dilated":
        return _dilated(pass_, input_shape, weight_shape, output_shape, stride, padding, dilation,
                        groups, itemsize, threads, limit)
    raise ValueError(f"algo={algo!r}: no workspace model for this algorithm")


_GIN_PAD_WASTE = 16   # csrc/conv_bwd.c FC_GIN_PAD_WASTE


def _gin_axis(size_in, size_out, k, s, p, d, r):
    """One phase r of one axis (csrc/conv_bwd.c gin_axis): (m, taps, window
    length, tap spacing, symmetric padding, dropped leading outputs)."""
    from math import gcd

    m = (size_in - r + s - 1) // s if r < size_in else 0
    kstep, dil = s // gcd(s, d), d // gcd(s, d)
    for kk in range(k - 1, -1, -1):
        if (r + p - kk * d) % s == 0:
            t = kk // kstep + 1
            c0 = (r + p - kk * d) // s
            length = m + (t - 1) * dil
            pad = max(0, -c0, c0 + length - size_out)
            return m, t, length, dil, pad, c0 + pad
    return m, 0, 0, dil, 0, 0


def _direct_input(input_shape, weight_shape, output_shape, stride, padding, dilation, groups,
                  itemsize, threads, limit):
    """Direct grad input (csrc/conv_bwd.c): forward convolutions of grad_out.

    Each stride phase is a stride-1 convolution of grad_out padded
    symmetrically whose first e outputs per axis are dropped, unless the
    dropped outputs exceed 1/16 of the real ones: then of a zero-filled copy
    of the phase's grad_out window.  Workspace: the rearranged weights (the
    size of w), plus the window (c_out x max window rows x max window
    columns per image) in the copy form, plus, for stride > 1 or dropped
    outputs, a phase's result (c_in x max rows x max columns it computes per
    image), for as many images at once as the workspace limit allows (at
    least one); plus what the forward direct calls themselves allocate.
    """
    if limit is None:
        from . import config
        limit = config.get_workspace_limit()
    n, c_in, h_in, w_in = (int(v) for v in input_shape)
    c_out, cig, kh, kw = (int(v) for v in weight_shape)
    h_out, w_out = int(output_shape[2]), int(output_shape[3])
    (sh, sw), (ph, pw), (dh, dw) = ((int(a), int(b)) for a, b in (stride, padding, dilation))
    elem, groups = int(itemsize), int(groups)
    if min(c_out, h_out, w_out, n, cig, h_in, w_in) <= 0:
        return 0
    wt = c_out * cig * kh * kw
    axes_h = [_gin_axis(h_in, h_out, kh, sh, ph, dh, r) for r in range(min(sh, h_in))]
    axes_w = [_gin_axis(w_in, w_out, kw, sw, pw, dw, r) for r in range(min(sw, w_in))]
    live_h = [a for a in axes_h if a[1] > 0 and a[0] > 0]
    live_w = [a for a in axes_w if a[1] > 0 and a[0] > 0]
    real = sum(a[0] * b[0] for a in live_h for b in live_w)
    extra = sum((a[0] + a[5]) * (b[0] + b[5]) - a[0] * b[0] for a in live_h for b in live_w)
    drop = any(a[5] > 0 for a in live_h) or any(b[5] > 0 for b in live_w)
    copy = extra * _GIN_PAD_WASTE > real
    scatter = sh > 1 or sw > 1 or (not copy and drop)
    lh = max([a[2] for a in live_h], default=0)
    lw = max([a[2] for a in live_w], default=0)
    if copy:
        mh, mw = max(a[0] for a in axes_h), max(a[0] for a in axes_w)
    else:
        mh = max([a[0] + a[5] for a in live_h], default=0)
        mw = max([a[0] + a[5] for a in live_w], default=0)
    win = c_out * lh * lw if copy else 0
    out = c_in * mh * mw if scatter else 0
    per = (win + out) * elem
    budget = int(limit) - wt * elem
    nb = n if per == 0 else max(1, min(n, budget // per if budget > 0 else 0))
    total = (wt + nb * (win + out)) * elem
    # the forward direct calls (one per phase with taps and chunk of nb images)
    for m_h, t_h, l_h, d_h, p_h, e_h in live_h:
        for m_w, t_w, l_w, d_w, p_w, e_w in live_w:
            for n0 in range(0, n, nb):
                b = min(nb, n - n0)
                if copy:
                    src, pad, res = (b, c_out, l_h, l_w), (0, 0), (b, c_in, m_h, m_w)
                else:
                    src, pad, res = (b, c_out, h_out, w_out), (p_h, p_w), (b, c_in, m_h + e_h, m_w + e_w)
                total += conv2d("direct", "forward", src, (c_in, c_out // groups, t_h, t_w),
                                res, (1, 1), pad, (d_h, d_w), groups, elem, threads, limit)
    return total


# Mirrors csrc/conv_im2col.c (im2col_plan_make); keep the two in step.
_I2C_TARGET_BYTES = 1 << 20
_I2C_P_MIN = 256
_I2C_MIN_TASKS = 4
_I2C_KB_MIN = 64
_I2C_MAX_THREADS = 256
_I2C_FWD_FORM_MAX_COG = 128
_PASSES = {"forward": 0, "input": 1, "weight": 2}


def _im2col(pass_, input_shape, weight_shape, output_shape, stride, padding, groups, itemsize,
            threads, limit):
    """Per-thread column (+ staging) buffers times the threads used (plus, for
    grad input in forward form, the rearranged weight); see conv_im2col.c."""
    if pass_ not in _PASSES:
        raise ValueError(f"pass_={pass_!r}: expected 'forward', 'input' or 'weight'")
    pas = _PASSES[pass_]
    if threads is None or limit is None:
        from . import config
        threads = config.get_num_threads() if threads is None else threads
        limit = config.get_workspace_limit() if limit is None else limit
    n, c_in, h_in, w_in = (int(v) for v in input_shape)
    c_out, _, kh, kw = (int(v) for v in weight_shape)
    h_out, w_out = int(output_shape[2]), int(output_shape[3])
    stride, padding = tuple(int(v) for v in stride), tuple(int(v) for v in padding)
    elem, groups, limit, threads = int(itemsize), int(groups), max(0, int(limit)), int(threads)
    plan = _plan(pas, n, c_in, h_in, w_in, c_out, kh, kw, h_out, w_out, stride, padding,
                 groups, elem, limit, threads)
    if plan is None:
        return 0
    identity, t, per_thread = plan
    if pas == 1 and not identity and stride == (1, 1) and c_out // groups < _I2C_FWD_FORM_MAX_COG:
        # grad input in forward form: conv of grad_out with the flipped weight
        wbytes = c_out * (c_in // groups) * kh * kw * elem
        if wbytes <= limit // 2 and wbytes + (c_out // groups) * kh * kw * w_in * elem <= limit:
            fwd = _plan(0, n, c_out, h_out, w_out, c_in, kh, kw, h_in, w_in, (1, 1),
                        (None, None), groups, elem, limit - wbytes, threads)
            if fwd is not None:
                return wbytes + fwd[1] * fwd[2]
    return t * per_thread


def _plan(pas, n, c_in, h_in, w_in, c_out, kh, kw, h_out, w_out, stride, padding, groups, elem,
          limit, threads):
    """(identity, threads used, bytes per thread) as im2col_plan_core, or None if trivial.

    padding (None, None) marks the derived forward-form conv, never the identity."""
    cig, cog = c_in // groups, c_out // groups
    khkw = kh * kw
    K, HW = cig * khkw, h_out * w_out
    if n == 0 or cig == 0 or cog == 0 or HW == 0:
        return None
    identity = (kh == 1 and kw == 1 and stride == (1, 1) and padding == (0, 0)
                and h_in == h_out and w_in == w_out)
    B = min(_I2C_TARGET_BYTES, limit)
    if pas == 0:
        cb = cig
    else:
        nsplit = (_I2C_MIN_TASKS + groups - 1) // groups
        nsplit = min(nsplit, max(1, K // _I2C_KB_MIN), cig)
        nsplit = max(nsplit, 1)
        cb = (cig + nsplit - 1) // nsplit
        if cb * khkw * _I2C_P_MIN * elem > B:
            cb = max(1, min(cb, B // (khkw * _I2C_P_MIN * elem)))
    nkb = (cig + cb - 1) // cb
    Kb = cb * khkw
    pcap = B // (Kb * elem)
    pcap = max(pcap, min(_I2C_P_MIN, limit // (Kb * elem)), 1)
    nb = 1
    if pcap >= 2 * HW and n > 1:
        t = max(B, min(_I2C_P_MIN * (Kb + cog) * elem, limit))
        t = t // ((Kb + cog) * elem) // HW
        nb = min(t, n)
        if nb < 2:
            nb = 1
    R = h_out if nb > 1 else min(max(pcap // w_out, 1), h_out)
    Pc = nb * R * w_out
    rchunks = (h_out + R - 1) // R
    nchunks = (n + nb - 1) // nb if nb > 1 else n * rchunks
    ntasks = groups * (nchunks if pas == 0 else nkb)
    col = 0 if (identity and nb == 1) else Kb * Pc
    stage = cog * Pc if nb > 1 else 0
    per_thread = (col + stage) * elem
    t = max(1, threads)
    t = min(t, ntasks)
    if per_thread > 0:
        t = min(t, max(1, limit // per_thread))
    t = max(1, min(t, _I2C_MAX_THREADS))
    return identity, t, per_thread


def _dilated(pass_, input_shape, weight_shape, output_shape, stride, padding, dilation, groups,
             itemsize, threads, limit):
    """Workspace of the space-to-batch dilated convolution (csrc/conv_dilated.c).

    Per axis, P = dilation / gcd(stride, dilation) classes of q = ceil(out / P)
    outputs, each reading a sub-image of (q - 1) * (stride / gcd) + k positions.
    The stacked sub-inputs (n*Ph*Pw, c_in, hs, ws) and sub-outputs
    (n*Ph*Pw, c_out, qh, qw) are allocated for every pass, plus whatever the
    dense convolution over them allocates.  Nothing is allocated when the
    result is empty or when n, c_in, c_out or the output size is zero.
    """
    n, c_in, h_in, w_in = (int(v) for v in input_shape)
    c_out, _, kh, kw = (int(v) for v in weight_shape)
    h_out, w_out = int(output_shape[2]), int(output_shape[3])
    result = {"forward": n * c_out * h_out * w_out,
              "input": n * c_in * h_in * w_in,
              "weight": c_out * (c_in // groups) * kh * kw}[pass_]
    result_w = c_out * (c_in // groups) * kh * kw
    if result == 0 or min(n, c_in, c_out, h_out, w_out) == 0:
        return 0
    row = _dilated_row(pass_, input_shape, weight_shape, output_shape, stride, padding, groups,
                       itemsize)
    if row is not None:
        return row * itemsize
    gemm = None
    if not _dilated_prefer_split(pass_, weight_shape, output_shape, stride, dilation, groups,
                                 padding):
        gemm = _dilated_gemm(input_shape, weight_shape, output_shape, stride, padding, dilation,
                             groups, pass_, threads)
    if gemm is not None:
        return gemm * itemsize
    if pass_ == "input" and tuple(int(v) for v in stride) == (1, 1) and \
            int(padding[0]) <= int(dilation[0]) * (kh - 1) and int(padding[1]) <= int(dilation[1]) * (kw - 1):
        # grad input as the forward convolution of grad_out with the flipped kernel
        # (fc_dil_gin_as_fwd): rearranged weights + the forward's split buffers
        return result_w * itemsize + _dilated_split(
            "forward", (n, c_out, h_out, w_out), (c_in, c_out // groups, kh, kw), (n, c_in, h_in, w_in),
            stride, dilation, groups, itemsize, threads, limit)
    return _dilated_split(pass_, input_shape, weight_shape, output_shape, stride, dilation, groups,
                          itemsize, threads, limit)


def _dilated_split(pass_, input_shape, weight_shape, output_shape, stride, dilation, groups,
                   itemsize, threads, limit):
    """Bytes of the sub-image path: stacked sub-inputs and sub-outputs + the dense call's."""
    from math import gcd

    n, c_in = int(input_shape[0]), int(input_shape[1])
    c_out, _, kh, kw = (int(v) for v in weight_shape)
    h_out, w_out = int(output_shape[2]), int(output_shape[3])
    axes = []
    for out, k, s, d in ((h_out, kh, stride[0], dilation[0]), (w_out, kw, stride[1], dilation[1])):
        g = gcd(int(s), int(d))
        p, ds = int(d) // g, int(s) // g
        q = -(-out // p)
        axes.append((p, q, (q - 1) * ds + k, ds))
    (ph, qh, hs, sh2), (pw, qw, ws, sw2) = axes
    b = n * ph * pw
    nested = conv2d("direct", pass_, (b, c_in, hs, ws), weight_shape, (b, c_out, qh, qw),
                    (sh2, sw2), (0, 0), (1, 1), groups, itemsize, threads, limit)
    return (b * c_in * hs * ws + b * c_out * qh * qw) * itemsize + nested


_INT_MAX = 2**31 - 1
# FC_DIL_SPLIT_MIN_PIX_{FWD,GIN,GW} in csrc/conv_dilated.c, per pass
_DIL_SPLIT_MIN_PIX = {"forward": 256, "input": 100, "weight": 1024}


def _dilated_prefer_split(pass_, weight_shape, output_shape, stride, dilation, groups,
                          padding=None):
    """Whether `pass_` takes the sub-image path (stacked sub-images through the
    direct dispatcher) instead of the GEMM path: AVX2 path or better, stride 1,
    >= 16 output channels per group (grad input: also >= 16 input channels and
    padding <= dilation*(k-1)), and at least _DIL_SPLIT_MIN_PIX[pass_] outputs
    per sub-image (fc_dil_prefer_split)."""
    from . import config

    if config.isa() == "baseline" or tuple(int(v) for v in stride) != (1, 1):
        return False
    if int(weight_shape[0]) // int(groups) < 16:
        return False
    if pass_ == "input":
        kh, kw = int(weight_shape[2]), int(weight_shape[3])
        if int(weight_shape[1]) < 16 or int(padding[0]) > int(dilation[0]) * (kh - 1) or \
                int(padding[1]) > int(dilation[1]) * (kw - 1):
            return False
    qh = -(-int(output_shape[2]) // int(dilation[0]))
    qw = -(-int(output_shape[3]) // int(dilation[1]))
    return qh * qw >= _DIL_SPLIT_MIN_PIX[pass_]


# FC_DRK_* in csrc/conv_dilated_row.h: (MR, GMR, GNC, vector bytes) per ISA
_DRK_GEOM = {"avx2": (4, 4, 3, 32), "avx512": (8, 4, 6, 64)}
_DRK_MAXKW = 64


def _dilated_row(pass_, input_shape, weight_shape, output_shape, stride, padding, groups,
                 itemsize):
    """Elements the row kernels allocate, or None when they are not used.

    They serve one-row convolutions (h_in = 1, kh = 1, no row padding, unit
    column stride, >= 8 channels per group, kw <= 64) on the AVX2 path
    (csrc/conv_dilated_row.h, fc_drk_plan): forward and grad input allocate
    the packed weights (output rows padded to a multiple of MR), grad weight
    GMR x GNC vector accumulators per (output x input channels, tap) tile.
    """
    from . import config

    if config.isa() == "baseline":
        return None
    mr, gmr, gnc, vbytes = _DRK_GEOM["avx512" if config.isa() == "avx512" else "avx2"]
    n, c_in, h_in, w_in = (int(v) for v in input_shape)
    c_out, cig, kh, kw = (int(v) for v in weight_shape)
    groups = int(groups)
    cog = c_out // groups
    if (h_in != 1 or int(output_shape[2]) != 1 or kh != 1 or int(padding[0]) != 0
            or int(stride[1]) != 1):
        return None
    if cig < 8 or cog < 8 or kw > _DRK_MAXKW:
        return None
    if pass_ == "weight":
        vl = vbytes // int(itemsize)
        return groups * -(-cog // gmr) * kw * -(-cig // gnc) * gmr * gnc * vl
    nout, nin = (cog, cig) if pass_ == "forward" else (cig, cog)
    return groups * -(-nout // mr) * mr * kw * nin


_DIL_ROW_ELEMS = 65536   # FC_DIL_ROW_ELEMS in csrc/conv_dilated.c
_DIL_ROW_PARTS = 4       # FC_DIL_ROW_PARTS


def _dilated_gemm(input_shape, weight_shape, output_shape, stride, padding, dilation, groups,
                  pass_="input", threads=None):
    """Elements the dilated algorithm's GEMM path allocates, or None when it is not used.

    The GEMM path (a BLAS is loaded, at least 8 channels per group, BLAS
    int sizes) keeps, per kernel column b, the band of C_b output columns
    whose tap reads real input: a column-shifted copy of one image
    (c_in * stride_h * ceil(h_in / stride_h) * C_b elements) and, when the
    band is not the whole row, a
    (c_out, h_out, C_b) temporary; plus one weight-sized buffer.  A
    single-row input with unit column stride is used in place (no copies),
    and its backward passes need no temporaries; with kh = 1 and no row
    padding every pass copies chunks of rpc columns instead (kw * c_in * rpc
    elements forward and grad weight, kw * c_out * rpc for grad input, one
    buffer per thread used) besides the weight buffer (grad weight: one per
    partial sum, min(chunks, 4) of them).
    """
    from . import _kernels

    if not _kernels.get_runtime()["blas"]:
        return None
    n, c_in, h_in, w_in = (int(v) for v in input_shape)
    c_out, cig, kh, kw = (int(v) for v in weight_shape)
    h_out, w_out = int(output_shape[2]), int(output_shape[3])
    cog = c_out // groups
    if cig < 8 or cog < 8:
        return None
    sh, sw = int(stride[0]), int(stride[1])
    pw, dw = int(padding[1]), int(dilation[1])
    rows = sh * (-(-h_in // sh))
    if max(rows * w_out, h_out * w_out, w_in, cog, kw * cig) > _INT_MAX:
        return None
    view = h_in == 1 and sw == 1
    if view and kh == 1 and int(padding[0]) == 0 and h_out == 1:
        # row paths: one (kw * chans, rpc) chunk copy per thread used; grad weight
        # sums min(chunks, 4) partial weight-sized accumulators
        chans, span = (c_out, w_in) if pass_ == "input" else (c_in, w_out)
        if kw * chans <= _DIL_ROW_ELEMS // 64:
            target = max(64, min(4096, _DIL_ROW_ELEMS // (kw * chans)))
            nch = -(-span // target)
            rpc = -(-span // nch)
            if threads is None:
                from . import config
                threads = config.get_num_threads()
            parts = min(nch, _DIL_ROW_PARTS) if pass_ == "weight" else nch
            accs = parts if pass_ == "weight" else 1
            return kw * chans * rpc * max(1, min(int(threads), parts)) + accs * c_out * cig * kh * kw
    copies = temps = 0
    for b in range(kw):
        lo = max(0, -((b * dw - pw) // sw))              # first column reading x
        hi = min(w_out, -((b * dw - pw - w_in) // sw))   # one past the last
        cb = max(0, hi - lo)
        copies += c_in * rows * cb
        if cb != w_out:
            temps += c_out * h_out * cb
    if view:   # x used in place; backward reads grad_out rows in place
        copies = 0
        if pass_ != "forward":
            temps = 0
    return copies + temps + c_out * cig * kh * kw
