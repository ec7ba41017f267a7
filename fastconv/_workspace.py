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
        return 0
    if algo == "im2col":
        return _im2col(pass_, input_shape, weight_shape, output_shape, stride, padding,
                       groups, itemsize, threads, limit)
    raise ValueError(f"algo={algo!r}: no workspace model for this algorithm")


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
