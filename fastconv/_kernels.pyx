# cython: language_level=3
"""The only boundary between Python and fastconv's C kernels.

Every function takes flat C-contiguous buffers (1-D typed memoryviews of the
caller's contiguous arrays) and a tuple of sizes, checks that each buffer has
exactly the length the sizes imply, fills an fc_context from the runtime
settings, releases the GIL, calls one C entry point and turns its status
into an exception.  Argument validation with user-facing messages lives in
conv.py / pool.py; the checks here are the last line of defence so that C
can never be handed a buffer shorter than it will touch.
"""
from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer, PyCapsule_IsValid
from libc.stdint cimport int64_t

cimport cython
from cython cimport floating

cdef extern from "fastconv.h" nogil:
    ctypedef enum fc_status:
        FC_OK
        FC_ERR_SHAPE
        FC_ERR_OVERFLOW
        FC_ERR_NOMEM
        FC_ERR_INDEX
        FC_ERR_ARG
        FC_ERR_UNSUPPORTED
        FC_NOT_HANDLED

    ctypedef void (*fc_sgemm_fn)(char *, char *, int *, int *, int *, float *, float *, int *,
                                 float *, int *, float *, float *, int *)
    ctypedef void (*fc_dgemm_fn)(char *, char *, int *, int *, int *, double *, double *, int *,
                                 double *, int *, double *, double *, int *)

    ctypedef struct fc_context:
        int num_threads
        int isa
        int64_t workspace_limit
        fc_sgemm_fn sgemm
        fc_dgemm_fn dgemm
        int64_t workspace_bytes

    ctypedef struct fc_conv_shape:
        int64_t n, c_in, h_in, w_in
        int64_t c_out, kh, kw
        int64_t h_out, w_out
        int64_t stride_h, stride_w
        int64_t pad_h, pad_w
        int64_t dil_h, dil_w
        int64_t groups

    ctypedef struct fc_pool_shape:
        int64_t n, c, h_in, w_in
        int64_t h_out, w_out
        int64_t kh, kw
        int64_t stride_h, stride_w
        int64_t pad_h, pad_w
        int64_t dil_h, dil_w
        int count_include_pad
        int64_t divisor_override

    int fc_cpu_has_avx2_fma()
    int fc_cpu_has_avx512()
    int fc_openmp_enabled()
    int fc_openmp_max_threads()
    const char *fc_build_info()
    int fc_checked_mul(int64_t a, int64_t b, int64_t *out)
    int fc_checked_add(int64_t a, int64_t b, int64_t *out)
    fc_status fc_conv_check(const fc_conv_shape *s)
    fc_status fc_pool_check(const fc_pool_shape *s)
    fc_status fc_conv2d_workspace(const fc_context *ctx, const fc_conv_shape *s, int algo,
                                  int elem_size, int pass_, int64_t *nbytes)

    fc_status fc_conv2d_f32(fc_context *ctx, const fc_conv_shape *s, int algo,
                            const float *x, const float *w, const float *bias, float *y)
    fc_status fc_conv2d_f64(fc_context *ctx, const fc_conv_shape *s, int algo,
                            const double *x, const double *w, const double *bias, double *y)
    fc_status fc_conv2d_grad_input_f32(fc_context *ctx, const fc_conv_shape *s, int algo,
                                       const float *gy, const float *w, float *gx)
    fc_status fc_conv2d_grad_input_f64(fc_context *ctx, const fc_conv_shape *s, int algo,
                                       const double *gy, const double *w, double *gx)
    fc_status fc_conv2d_grad_weight_f32(fc_context *ctx, const fc_conv_shape *s, int algo,
                                        const float *gy, const float *x, float *gw)
    fc_status fc_conv2d_grad_weight_f64(fc_context *ctx, const fc_conv_shape *s, int algo,
                                        const double *gy, const double *x, double *gw)
    fc_status fc_conv2d_grad_bias_f32(fc_context *ctx, const fc_conv_shape *s,
                                      const float *gy, float *gb)
    fc_status fc_conv2d_grad_bias_f64(fc_context *ctx, const fc_conv_shape *s,
                                      const double *gy, double *gb)
    fc_status fc_add_channel_bias_f32(fc_context *ctx, int64_t n, int64_t c, int64_t hw,
                                      const float *bias, float *y)
    fc_status fc_add_channel_bias_f64(fc_context *ctx, int64_t n, int64_t c, int64_t hw,
                                      const double *bias, double *y)

    fc_status fc_max_pool2d_f32(fc_context *ctx, const fc_pool_shape *s,
                                const float *x, float *y, int64_t *indices)
    fc_status fc_max_pool2d_f64(fc_context *ctx, const fc_pool_shape *s,
                                const double *x, double *y, int64_t *indices)
    fc_status fc_max_pool2d_backward_f32(fc_context *ctx, const fc_pool_shape *s, const float *gy,
                                         const int64_t *indices, const float *x, float *gx)
    fc_status fc_max_pool2d_backward_f64(fc_context *ctx, const fc_pool_shape *s, const double *gy,
                                         const int64_t *indices, const double *x, double *gx)
    fc_status fc_avg_pool2d_f32(fc_context *ctx, const fc_pool_shape *s, const float *x, float *y)
    fc_status fc_avg_pool2d_f64(fc_context *ctx, const fc_pool_shape *s, const double *x, double *y)
    fc_status fc_avg_pool2d_backward_f32(fc_context *ctx, const fc_pool_shape *s,
                                         const float *gy, float *gx)
    fc_status fc_avg_pool2d_backward_f64(fc_context *ctx, const fc_pool_shape *s,
                                         const double *gy, double *gx)

    fc_status fc_measure_fma_peak(fc_context *ctx, int dtype_size, double seconds, double *gflops)
    fc_status fc_measure_copy_bandwidth(fc_context *ctx, int64_t nbytes, double seconds, double *gbps)


# ---- runtime settings (set by fastconv.config; read by every call) --------
ISA_BASELINE = 0
ISA_AVX2 = 1
ISA_AVX512 = 2
ALGO_DIRECT = 0
ALGO_IM2COL = 1
ALGO_DILATED = 2

cdef int _num_threads = 1
cdef int _isa = 0
cdef int64_t _workspace_limit = 32 * 1024 * 1024
cdef fc_sgemm_fn _sgemm = NULL
cdef fc_dgemm_fn _dgemm = NULL


def cpu_has_avx2_fma():
    return bool(fc_cpu_has_avx2_fma())


def cpu_has_avx512():
    return bool(fc_cpu_has_avx512())


def openmp_enabled():
    return bool(fc_openmp_enabled())


def openmp_max_threads():
    return fc_openmp_max_threads()


def build_info():
    return fc_build_info().decode("utf-8", "replace")


def set_runtime(int num_threads, int isa, int64_t workspace_limit):
    """Set the threads, ISA and workspace limit used by every later call."""
    global _num_threads, _isa, _workspace_limit
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    if isa not in (ISA_BASELINE, ISA_AVX2, ISA_AVX512):
        raise ValueError(f"isa must be 0 (baseline), 1 (avx2) or 2 (avx512), got {isa}")
    if isa == ISA_AVX2 and not (fc_cpu_has_avx2_fma() and avx2_compiled()):
        raise ValueError("isa=avx2 requested but the CPU or this build lacks AVX2+FMA")
    if isa == ISA_AVX512 and not (fc_cpu_has_avx512() and avx512_compiled()):
        raise ValueError("isa=avx512 requested but the CPU or this build lacks AVX-512 F/BW/VL")
    if workspace_limit < 0:
        raise ValueError(f"workspace_limit must be >= 0, got {workspace_limit}")
    _num_threads = num_threads
    _isa = isa
    _workspace_limit = workspace_limit


def get_runtime():
    return {"num_threads": _num_threads, "isa": _isa, "workspace_limit": _workspace_limit,
            "blas": _sgemm != NULL and _dgemm != NULL}


def avx2_compiled():
    """True when the AVX2 kernel files were compiled into this build."""
    return bool(_avx2_compiled())


cdef extern from *:
    """
    #ifdef FC_WITH_AVX2
    static int _fc_avx2_compiled(void) { return 1; }
    #else
    static int _fc_avx2_compiled(void) { return 0; }
    #endif
    """
    int _fc_avx2_compiled()


cdef int _avx2_compiled():
    return _fc_avx2_compiled()


def avx512_compiled():
    """True when the AVX-512 kernel files were compiled into this build."""
    return bool(_fc_avx512_compiled())


cdef extern from *:
    """
    #ifdef FC_WITH_AVX512
    static int _fc_avx512_compiled(void) { return 1; }
    #else
    static int _fc_avx512_compiled(void) { return 0; }
    #endif
    """
    int _fc_avx512_compiled()


cdef void *_capsule_pointer(object capsule) except NULL:
    cdef const char *name = PyCapsule_GetName(capsule)
    if not PyCapsule_IsValid(capsule, name):
        raise TypeError("not a valid PyCapsule")
    return PyCapsule_GetPointer(capsule, name)


def set_blas(sgemm_capsule, dgemm_capsule):
    """Install BLAS gemm pointers taken from scipy.linalg.cython_blas.__pyx_capi__."""
    global _sgemm, _dgemm
    _sgemm = <fc_sgemm_fn>_capsule_pointer(sgemm_capsule)
    _dgemm = <fc_dgemm_fn>_capsule_pointer(dgemm_capsule)


cdef inline fc_context _ctx() noexcept:
    """A context carrying the current runtime settings and BLAS, no workspace yet."""
    cdef fc_context ctx
    ctx.num_threads = _num_threads
    ctx.isa = _isa
    ctx.workspace_limit = _workspace_limit
    ctx.sgemm = _sgemm
    ctx.dgemm = _dgemm
    ctx.workspace_bytes = 0
    return ctx


_MESSAGES = {
    FC_ERR_SHAPE: (ValueError, "inconsistent or invalid sizes"),
    FC_ERR_OVERFLOW: (ValueError, "sizes too large: 64-bit size arithmetic would overflow"),
    FC_ERR_NOMEM: (MemoryError, "could not allocate the workspace"),
    FC_ERR_INDEX: (ValueError, "indices: an index lies outside its own pooling window"),
    FC_ERR_ARG: (ValueError, "invalid argument"),
    FC_ERR_UNSUPPORTED: (ValueError, "the algorithm cannot serve this configuration"),
}


cdef int _raise(fc_status st, str where) except -1:
    exc, msg = _MESSAGES.get(st, (RuntimeError, "internal error (status %d)" % <int>st))
    raise exc(f"{where}: {msg}")


# ---- checked size helpers (exposed for tests of 64-bit arithmetic) --------

def checked_mul(int64_t a, int64_t b):
    """a*b in int64, or OverflowError."""
    cdef int64_t out = 0
    if fc_checked_mul(a, b, &out):
        raise OverflowError("int64 multiplication overflows")
    return out


def checked_add(int64_t a, int64_t b):
    cdef int64_t out = 0
    if fc_checked_add(a, b, &out):
        raise OverflowError("int64 addition overflows")
    return out


# ---- shapes ---------------------------------------------------------------

cdef fc_conv_shape _conv_shape(tuple s) except *:
    """s = (n, c_in, h_in, w_in, c_out, kh, kw, h_out, w_out,
            stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups)"""
    cdef fc_conv_shape cs
    if len(s) != 16:
        raise ValueError("conv shape tuple must have 16 entries")
    (cs.n, cs.c_in, cs.h_in, cs.w_in, cs.c_out, cs.kh, cs.kw, cs.h_out, cs.w_out,
     cs.stride_h, cs.stride_w, cs.pad_h, cs.pad_w, cs.dil_h, cs.dil_w, cs.groups) = s
    cdef fc_status st = fc_conv_check(&cs)
    if st != FC_OK:
        _raise(st, "conv2d")
    return cs


cdef fc_pool_shape _pool_shape(tuple s) except *:
    """s = (n, c, h_in, w_in, h_out, w_out, kh, kw, stride_h, stride_w,
            pad_h, pad_w, dil_h, dil_w, count_include_pad, divisor_override)"""
    cdef fc_pool_shape ps
    if len(s) != 16:
        raise ValueError("pool shape tuple must have 16 entries")
    (ps.n, ps.c, ps.h_in, ps.w_in, ps.h_out, ps.w_out, ps.kh, ps.kw, ps.stride_h, ps.stride_w,
     ps.pad_h, ps.pad_w, ps.dil_h, ps.dil_w, ps.count_include_pad, ps.divisor_override) = s
    cdef fc_status st = fc_pool_check(&ps)
    if st != FC_OK:
        _raise(st, "pool2d")
    return ps


def conv_check(tuple s):
    """Validate a conv shape tuple in C (raises on failure)."""
    _conv_shape(s)


def pool_check(tuple s):
    _pool_shape(s)


cdef inline void _need(Py_ssize_t have, object want, str name) except *:
    if have != want:
        raise ValueError(f"{name}: buffer has {have} elements, the shape needs {want}")


cdef inline const floating *_cptr(const floating[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] > 0 else NULL


cdef inline floating *_ptr(floating[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] > 0 else NULL


# Element counts of the buffers a shape describes (fc_conv_check /
# fc_pool_check have bounded every product).
cdef inline int64_t _conv_x(const fc_conv_shape *s) noexcept:
    return s.n * s.c_in * s.h_in * s.w_in


cdef inline int64_t _conv_w(const fc_conv_shape *s) noexcept:
    return s.c_out * (s.c_in // s.groups) * s.kh * s.kw


cdef inline int64_t _conv_y(const fc_conv_shape *s) noexcept:
    return s.n * s.c_out * s.h_out * s.w_out


cdef inline int64_t _pool_x(const fc_pool_shape *s) noexcept:
    return s.n * s.c * s.h_in * s.w_in


cdef inline int64_t _pool_y(const fc_pool_shape *s) noexcept:
    return s.n * s.c * s.h_out * s.w_out


cdef object _done(fc_status st, str where, const fc_context *ctx):
    """The workspace bytes a finished kernel call allocated, or its status raised."""
    if st != FC_OK:
        _raise(st, where)
    return ctx.workspace_bytes


def conv2d_workspace(tuple s, int algo, int elem_size, int pass_):
    """Bytes of workspace `algo` allocates for this shape (pass_: 0 fwd, 1 grad input, 2 grad weight)."""
    cdef fc_context ctx = _ctx()
    cdef fc_conv_shape cs = _conv_shape(s)
    cdef int64_t nbytes = 0
    cdef fc_status st = fc_conv2d_workspace(&ctx, &cs, algo, elem_size, pass_, &nbytes)
    if st != FC_OK:
        _raise(st, "conv2d_workspace")
    return nbytes


# ---- convolution ------------------------------------------------------------

def conv2d(const floating[::1] x, const floating[::1] w, const floating[::1] bias,
           floating[::1] y, tuple shape, int algo):
    """y = conv(x, w) + bias.  Returns the workspace bytes allocated."""
    cdef fc_conv_shape s = _conv_shape(shape)
    _need(x.shape[0], _conv_x(&s), "x")
    _need(w.shape[0], _conv_w(&s), "w")
    _need(y.shape[0], _conv_y(&s), "y")
    if bias is not None:
        _need(bias.shape[0], s.c_out, "bias")
    cdef fc_context ctx = _ctx()
    cdef fc_status st
    cdef const floating *bp = _cptr(bias) if bias is not None else NULL
    with nogil:
        if floating is float:
            st = fc_conv2d_f32(&ctx, &s, algo, _cptr(x), _cptr(w), bp, _ptr(y))
        else:
            st = fc_conv2d_f64(&ctx, &s, algo, _cptr(x), _cptr(w), bp, _ptr(y))
    return _done(st, "conv2d", &ctx)


def conv2d_grad_input(const floating[::1] gy, const floating[::1] w, floating[::1] gx,
                      tuple shape, int algo):
    """gx = input gradient of conv2d (also the transposed convolution)."""
    cdef fc_conv_shape s = _conv_shape(shape)
    _need(gy.shape[0], _conv_y(&s), "grad_out")
    _need(w.shape[0], _conv_w(&s), "w")
    _need(gx.shape[0], _conv_x(&s), "grad_input")
    cdef fc_context ctx = _ctx()
    cdef fc_status st
    with nogil:
        if floating is float:
            st = fc_conv2d_grad_input_f32(&ctx, &s, algo, _cptr(gy), _cptr(w), _ptr(gx))
        else:
            st = fc_conv2d_grad_input_f64(&ctx, &s, algo, _cptr(gy), _cptr(w), _ptr(gx))
    return _done(st, "conv2d_grad_input", &ctx)


def conv2d_grad_weight(const floating[::1] gy, const floating[::1] x, floating[::1] gw,
                       tuple shape, int algo):
    cdef fc_conv_shape s = _conv_shape(shape)
    _need(gy.shape[0], _conv_y(&s), "grad_out")
    _need(x.shape[0], _conv_x(&s), "x")
    _need(gw.shape[0], _conv_w(&s), "grad_weight")
    cdef fc_context ctx = _ctx()
    cdef fc_status st
    with nogil:
        if floating is float:
            st = fc_conv2d_grad_weight_f32(&ctx, &s, algo, _cptr(gy), _cptr(x), _ptr(gw))
        else:
            st = fc_conv2d_grad_weight_f64(&ctx, &s, algo, _cptr(gy), _cptr(x), _ptr(gw))
    return _done(st, "conv2d_grad_weight", &ctx)


def conv2d_grad_bias(const floating[::1] gy, floating[::1] gb, tuple shape):
    cdef fc_conv_shape s = _conv_shape(shape)
    _need(gy.shape[0], _conv_y(&s), "grad_out")
    _need(gb.shape[0], s.c_out, "grad_bias")
    cdef fc_context ctx = _ctx()
    cdef fc_status st
    with nogil:
        if floating is float:
            st = fc_conv2d_grad_bias_f32(&ctx, &s, _cptr(gy), _ptr(gb))
        else:
            st = fc_conv2d_grad_bias_f64(&ctx, &s, _cptr(gy), _ptr(gb))
    return _done(st, "conv2d_grad_bias", &ctx)


def add_channel_bias(floating[::1] y, const floating[::1] bias, int64_t n, int64_t c, int64_t hw):
    """y[n, c, :] += bias[c] in place."""
    _need(y.shape[0], n * c * hw, "y")
    _need(bias.shape[0], c, "bias")
    cdef fc_context ctx = _ctx()
    cdef fc_status st
    with nogil:
        if floating is float:
            st = fc_add_channel_bias_f32(&ctx, n, c, hw, _cptr(bias), _ptr(y))
        else:
            st = fc_add_channel_bias_f64(&ctx, n, c, hw, _cptr(bias), _ptr(y))
    if st != FC_OK:
        _raise(st, "add_channel_bias")


# ---- pooling ------------------------------------------------------------------

def max_pool2d(const floating[::1] x, floating[::1] y, int64_t[::1] indices, tuple shape):
    """indices may be None."""
    cdef fc_pool_shape s = _pool_shape(shape)
    _need(x.shape[0], _pool_x(&s), "x")
    _need(y.shape[0], _pool_y(&s), "y")
    cdef int64_t *ip = NULL
    if indices is not None:
        _need(indices.shape[0], _pool_y(&s), "indices")
        if indices.shape[0] > 0:
            ip = &indices[0]
    cdef fc_context ctx = _ctx()
    cdef fc_status st
    with nogil:
        if floating is float:
            st = fc_max_pool2d_f32(&ctx, &s, _cptr(x), _ptr(y), ip)
        else:
            st = fc_max_pool2d_f64(&ctx, &s, _cptr(x), _ptr(y), ip)
    return _done(st, "max_pool2d", &ctx)


def max_pool2d_backward(const floating[::1] gy, const int64_t[::1] indices, const floating[::1] x,
                        floating[::1] gx, tuple shape):
    """Exactly one of indices / x is used (indices when not None)."""
    cdef fc_pool_shape s = _pool_shape(shape)
    _need(gy.shape[0], _pool_y(&s), "grad_out")
    _need(gx.shape[0], _pool_x(&s), "grad_input")
    cdef const int64_t *ip = NULL
    cdef const floating *xp = NULL
    if indices is not None:
        _need(indices.shape[0], _pool_y(&s), "indices")
        if indices.shape[0] > 0:
            ip = &indices[0]
    elif x is not None:
        _need(x.shape[0], _pool_x(&s), "x")
        xp = _cptr(x)
    else:
        raise ValueError("max_pool2d_backward needs indices or x")
    cdef fc_context ctx = _ctx()
    cdef fc_status st
    with nogil:
        if floating is float:
            st = fc_max_pool2d_backward_f32(&ctx, &s, _cptr(gy), ip, xp, _ptr(gx))
        else:
            st = fc_max_pool2d_backward_f64(&ctx, &s, _cptr(gy), ip, xp, _ptr(gx))
    return _done(st, "max_pool2d_backward", &ctx)


def avg_pool2d(const floating[::1] x, floating[::1] y, tuple shape):
    cdef fc_pool_shape s = _pool_shape(shape)
    _need(x.shape[0], _pool_x(&s), "x")
    _need(y.shape[0], _pool_y(&s), "y")
    cdef fc_context ctx = _ctx()
    cdef fc_status st
    with nogil:
        if floating is float:
            st = fc_avg_pool2d_f32(&ctx, &s, _cptr(x), _ptr(y))
        else:
            st = fc_avg_pool2d_f64(&ctx, &s, _cptr(x), _ptr(y))
    return _done(st, "avg_pool2d", &ctx)


def avg_pool2d_backward(const floating[::1] gy, floating[::1] gx, tuple shape):
    cdef fc_pool_shape s = _pool_shape(shape)
    _need(gy.shape[0], _pool_y(&s), "grad_out")
    _need(gx.shape[0], _pool_x(&s), "grad_input")
    cdef fc_context ctx = _ctx()
    cdef fc_status st
    with nogil:
        if floating is float:
            st = fc_avg_pool2d_backward_f32(&ctx, &s, _cptr(gy), _ptr(gx))
        else:
            st = fc_avg_pool2d_backward_f64(&ctx, &s, _cptr(gy), _ptr(gx))
    return _done(st, "avg_pool2d_backward", &ctx)


# ---- machine measurement ----------------------------------------------------------

def measure_fma_peak(int dtype_size, double seconds, int threads):
    """GFLOP/s of a register-resident FMA loop on `threads` threads."""
    cdef fc_context ctx = _ctx()
    ctx.num_threads = threads
    cdef double g = 0
    cdef fc_status st
    with nogil:
        st = fc_measure_fma_peak(&ctx, dtype_size, seconds, &g)
    if st != FC_OK:
        _raise(st, "measure_fma_peak")
    return g


def measure_copy_bandwidth(int64_t nbytes, double seconds, int threads):
    """GB/s (bytes read + bytes written) of a streaming copy on `threads` threads."""
    cdef fc_context ctx = _ctx()
    ctx.num_threads = threads
    cdef double g = 0
    cdef fc_status st
    with nogil:
        st = fc_measure_copy_bandwidth(&ctx, nbytes, seconds, &g)
    if st != FC_OK:
        _raise(st, "measure_copy_bandwidth")
    return g
