/* Register-blocked direct convolution, AVX2+FMA, written once for both
 * dtypes.  Included by conv_direct_avx2.c after it defines:
 *   T, V, VL (lanes per vector), SFX(name), and the vector ops below.
 *
 * Micro-tile: NC (<= 6) output channels x NV (<= 2) vectors of VL output
 * pixels of one output row, i.e. up to 12 ymm accumulators (6x16 for f32,
 * 6x8 for f64).  The inner step broadcasts the NC packed weights of one tap
 * and FMAs each with the NV input vectors of that tap.
 *
 * Input vectors for a tap come from one of three load modes:
 *   MODE_S1   stride 1: contiguous loads,
 *   MODE_S2   stride 2: two contiguous loads de-interleaved with shuffles,
 *   MODE_SG   any other stride: masked gathers.
 * Blocks whose taps all stay inside the row use plain loads; blocks touching
 * the left/right padding or the row's tail use per-lane masks (masked-out
 * lanes read nothing and load 0, which is what zero padding contributes).
 *
 * Summation order of every output element is fixed by the shape alone
 * (ci ascending, then kh, then kw; y holds the partial sum exactly between
 * input-channel blocks), so results do not depend on the thread count.
 */

/* Raw vectors per block: NV (s1), 2*NV (s2), NV (gather). */
#define FC_MAXRAW 4

/* Per-block lane masks for every kw tap (raw load masks) and the output lanes. */
typedef struct {
    MASK in[FC_DIRECT_MAX_KW][FC_MAXRAW];
    MASK out[2];
} SFX(masks);

/* Build the masks of a block starting at output column ow0 with `nvalid`
 * output lanes (<= NV*VL), input start iw0 = ow0*sw - pw. */
static void SFX(build_masks)(SFX(masks) *m, int mode, int nv, int64_t iw0, int64_t nvalid,
                             int64_t kw_n, int64_t dw, int64_t sw, int64_t w_in) {
    MASKINT lanes[VL];
    int64_t kw, q, r;
    for (q = 0; q < nv; q++) {
        for (r = 0; r < VL; r++) lanes[r] = (q * VL + r < nvalid) ? (MASKINT)-1 : 0;
        m->out[q] = MASK_LOAD(lanes);
    }
    for (kw = 0; kw < kw_n; kw++) {
        int64_t base = iw0 + kw * dw;
        int nraw = mode == MODE_S2 ? 2 * nv : nv;
        for (q = 0; q < nraw; q++) {
            for (r = 0; r < VL; r++) {
                int64_t out_lane, addr;
                if (mode == MODE_S1) { out_lane = q * VL + r; addr = base + out_lane; }
                else if (mode == MODE_S2) { out_lane = (q * VL + r) / 2; addr = base + q * VL + r; }
                else { out_lane = q * VL + r; addr = base + out_lane * sw; }
                lanes[r] = (out_lane < nvalid && addr >= 0 && addr < w_in) ? (MASKINT)-1 : 0;
            }
            m->in[kw][q] = MASK_LOAD(lanes);
        }
    }
}

/* Everything a block needs that is fixed for one (image, group, co-block,
 * ci-block). */
typedef struct {
    const T *x;        /* input plane of the block's first input channel */
    const T *wp;       /* packed weights [ci][kh][kw][nc] */
    const T *bias;     /* bias of the co-block's first channel, or NULL */
    T *y;              /* output plane of the co-block's first channel */
    int64_t plane_in;  /* h_in*w_in */
    int64_t plane_out; /* h_out*w_out */
    int64_t w_in, w_out;
    int64_t cib;       /* input channels in this block */
    int64_t kh_n, kw_n, dh, dw, sw;
    int first;         /* first ci-block: initialise from bias/zero instead of y */
    VIDX gidx;         /* gather indices: lane*sw */
} SFX(blk);

/* Accumulators are named scalars (a<c><j>), not an array: GCC keeps an
 * array of vectors in memory across the loop, which halves the speed. */
#define FC_FOR_ACC(X) X(0) X(1) X(2) X(3) X(4) X(5)

/* One micro-tile: NC channels x NV vectors at output (oh, ow0).  All of
 * nc, nv, mode, masked, kwc are compile-time constants at each call site. */
static FC_AI void SFX(tile)(const SFX(blk) *b, const SFX(masks) *m, const int nc, const int nv,
                            const int mode, const int masked, const int kwc,
                            int64_t oh, int64_t ow0, int64_t ih0, int64_t kh_lo, int64_t kh_hi,
                            int64_t iw0) {
    V a00, a01, a10, a11, a20, a21, a30, a31, a40, a41, a50, a51;
    const int64_t kw_n = kwc ? kwc : b->kw_n;
    const int64_t po = b->plane_out;
    T *yp = b->y + oh * b->w_out + ow0;
    const MASK mo0 = masked ? m->out[0] : _mm256_setzero_si256();
    const MASK mo1 = masked ? m->out[nv > 1 ? 1 : 0] : _mm256_setzero_si256();
    a00 = a01 = a10 = a11 = a20 = a21 = a30 = a31 = a40 = a41 = a50 = a51 = V_ZERO();
#define FC_INIT(c)                                                                           \
    if (nc > c) {                                                                            \
        if (!b->first) {                                                                     \
            a##c##0 = masked ? V_MASKLOAD(yp + c * po, mo0) : V_LOADU(yp + c * po);          \
            if (nv > 1) a##c##1 = masked ? V_MASKLOAD(yp + c * po + VL, mo1) : V_LOADU(yp + c * po + VL); \
        } else if (b->bias) {                                                                \
            a##c##0 = a##c##1 = V_SET1(b->bias[c]);                                          \
        }                                                                                    \
    }
    FC_FOR_ACC(FC_INIT)
#undef FC_INIT
    {
        const T *xc = b->x + iw0;
        const T *wc = b->wp;
        const int64_t khkw = b->kh_n * kw_n;
        const int64_t plane_in = b->plane_in, w_in = b->w_in, dh = b->dh, dw = b->dw;
        const int64_t cib = b->cib;
        int64_t ci, kh, kw;
        for (ci = 0; ci < cib; ci++, xc += plane_in, wc += khkw * nc) {
            for (kh = kh_lo; kh < kh_hi; kh++) {
                const T *xr = xc + (ih0 + kh * dh) * w_in;
                const T *wk = wc + kh * kw_n * nc;
                for (kw = 0; kw < kw_n; kw++) {
                    const T *p = xr + kw * dw;
                    const T *wt = wk + kw * nc;
                    V v0, v1 = V_ZERO();
                    if (mode == MODE_S1) {
                        v0 = masked ? V_MASKLOAD(p, m->in[kw][0]) : V_LOADU(p);
                        if (nv > 1) v1 = masked ? V_MASKLOAD(p + VL, m->in[kw][1]) : V_LOADU(p + VL);
                    } else if (mode == MODE_S2) {
                        if (masked) {
                            v0 = V_DEINT2(V_MASKLOAD(p, m->in[kw][0]), V_MASKLOAD(p + VL, m->in[kw][1]));
                            if (nv > 1)
                                v1 = V_DEINT2(V_MASKLOAD(p + 2 * VL, m->in[kw][2]),
                                              V_MASKLOAD(p + 3 * VL, m->in[kw][3]));
                        } else {
                            v0 = V_DEINT2(V_LOADU(p), V_LOADU(p + VL));
                            if (nv > 1) v1 = V_DEINT2(V_LOADU(p + 2 * VL), V_LOADU(p + 3 * VL));
                        }
                    } else {
                        v0 = V_GATHER(p, b->gidx, m->in[kw][0]);
                        if (nv > 1) v1 = V_GATHER(p + VL * b->sw, b->gidx, m->in[kw][1]);
                    }
#define FC_STEP(c)                                                                           \
                    if (nc > c) {                                                            \
                        V wv = V_SET1(wt[c]);                                                \
                        a##c##0 = V_FMA(wv, v0, a##c##0);                                    \
                        if (nv > 1) a##c##1 = V_FMA(wv, v1, a##c##1);                        \
                    }
                    FC_FOR_ACC(FC_STEP)
#undef FC_STEP
                }
            }
        }
    }
#define FC_STORE(c)                                                                          \
    if (nc > c) {                                                                            \
        if (masked) {                                                                        \
            V_MASKSTORE(yp + c * po, mo0, a##c##0);                                          \
            if (nv > 1) V_MASKSTORE(yp + c * po + VL, mo1, a##c##1);                         \
        } else {                                                                             \
            V_STOREU(yp + c * po, a##c##0);                                                  \
            if (nv > 1) V_STOREU(yp + c * po + VL, a##c##1);                                 \
        }                                                                                    \
    }
    FC_FOR_ACC(FC_STORE)
#undef FC_STORE
}

/* Instantiate the tile for one (nc, nv, masked) over the three modes. */
#define FC_TILE_MODES(NC, NV, MSK, KWC)                                                         \
    do {                                                                                          \
        if (mode == MODE_S1) SFX(tile)(b, m, NC, NV, MODE_S1, MSK, KWC, oh, ow0, ih0, kh_lo, kh_hi, iw0); \
        else if (mode == MODE_S2) SFX(tile)(b, m, NC, NV, MODE_S2, MSK, KWC, oh, ow0, ih0, kh_lo, kh_hi, iw0); \
        else SFX(tile)(b, m, NC, NV, MODE_SG, 1, 0, oh, ow0, ih0, kh_lo, kh_hi, iw0);            \
    } while (0)

#define FC_TILE_NV(NC, KWC)                                                                       \
    do {                                                                                          \
        if (nv == 2) { if (masked) FC_TILE_MODES(NC, 2, 1, KWC); else FC_TILE_MODES(NC, 2, 0, KWC); } \
        else { if (masked) FC_TILE_MODES(NC, 1, 1, KWC); else FC_TILE_MODES(NC, 1, 0, KWC); }      \
    } while (0)

static FC_NOINLINE void SFX(tile_dispatch)(const SFX(blk) *b, const SFX(masks) *m, int nc, int nv,
                                          int mode, int masked, int64_t oh, int64_t ow0, int64_t ih0,
                                          int64_t kh_lo, int64_t kh_hi, int64_t iw0) {
    switch (nc) {
    case 6:
        if (b->kw_n == 3) FC_TILE_NV(6, 3);
        else if (b->kw_n == 1) FC_TILE_NV(6, 1);
        else FC_TILE_NV(6, 0);
        break;
    case 5: FC_TILE_NV(5, 0); break;
    case 4: FC_TILE_NV(4, 0); break;
    case 3: FC_TILE_NV(3, 0); break;
    case 2: FC_TILE_NV(2, 0); break;
    default: FC_TILE_NV(1, 0); break;
    }
}

/* One output row (oh) of a (co-block, ci-block), columns [c0, c1). */
static void SFX(row)(const SFX(blk) *b, const fc_conv_shape *s, int nc, int mode,
                     int64_t oh, int64_t c0, int64_t c1) {
    const int64_t ih0 = oh * s->stride_h - s->pad_h;
    int64_t kh_lo = 0, kh_hi = s->kh, ow0;
    SFX(masks) m;
    /* rows of taps inside [0, h_in): a contiguous range of kh */
    while (kh_lo < kh_hi && ih0 + kh_lo * s->dil_h < 0) kh_lo++;
    while (kh_hi > kh_lo && ih0 + (kh_hi - 1) * s->dil_h >= s->h_in) kh_hi--;
    for (ow0 = c0; ow0 < c1; ow0 += 2 * VL) {
        const int64_t nvalid = FC_MIN(2 * VL, c1 - ow0);
        const int nv = nvalid > VL ? 2 : 1;
        const int64_t iw0 = ow0 * s->stride_w - s->pad_w;
        int masked = 1;
        if (mode != MODE_SG && nvalid == nv * VL) {
            /* last raw element any tap of this block loads */
            int64_t last = iw0 + (s->kw - 1) * s->dil_w +
                           (mode == MODE_S1 ? nv * VL - 1 : 2 * nv * VL - 1);
            masked = !(iw0 >= 0 && last < s->w_in);
        }
        if (masked) SFX(build_masks)(&m, mode, nv, iw0, nvalid, s->kw, s->dil_w, s->stride_w, s->w_in);
        SFX(tile_dispatch)(b, &m, nc, nv, mode, masked, oh, ow0, ih0, kh_lo, kh_hi, iw0);
    }
}

/* Pack weights of channels [co0, co0+nc) x [ci0, ci0+cib) of group g as
 * [ci][kh][kw][nc]. */
static void SFX(pack)(T *wp, const T *w, const fc_conv_shape *s, int64_t cig, int64_t co_abs,
                      int nc, int64_t ci0, int64_t cib) {
    const int64_t khkw = s->kh * s->kw;
    int64_t ci, t;
    int c;
    for (ci = 0; ci < cib; ci++)
        for (t = 0; t < khkw; t++)
            for (c = 0; c < nc; c++)
                wp[(ci * khkw + t) * nc + c] = w[((co_abs + c) * cig + ci0 + ci) * khkw + t];
}

static fc_status SFX(direct)(fc_context *ctx, const fc_conv_shape *s0, const T *x, const T *w,
                             const T *bias, T *y) {
    fc_conv_shape sh = *s0;
    const fc_conv_shape *s = &sh;
    int64_t cig, cog, ncob, khkw, cib_max, ncib, rows_per, nrc, col_chunk, ncc, ntask, t64;
    int mode, nthr;

    if (s->n == 0 || s->c_out == 0 || s->h_out == 0 || s->w_out == 0) return FC_OK;
    if (s->kw > FC_DIRECT_MAX_KW) return FC_NOT_HANDLED;
    khkw = s->kh * s->kw;
    if (6 * khkw > FC_DIRECT_WP) return FC_NOT_HANDLED;
    /* 1x1, stride 1, no padding: the image is one long row of h*w pixels */
    if (s->kh == 1 && s->kw == 1 && s->stride_h == 1 && s->stride_w == 1 &&
        s->pad_h == 0 && s->pad_w == 0) {
        sh.w_in = s->h_in * s->w_in; sh.h_in = 1;
        sh.w_out = s->h_out * s->w_out; sh.h_out = 1;
        sh.dil_h = sh.dil_w = 1;
    }
    mode = s->stride_w == 1 ? MODE_S1 : s->stride_w == 2 ? MODE_S2 : MODE_SG;
    if (mode == MODE_SG && (s->stride_w * VL * 2 > INT32_MAX / 2)) return FC_NOT_HANDLED;
    cig = s->c_in / s->groups;
    cog = s->c_out / s->groups;
    ncob = (cog + 5) / 6;
    /* input-channel block: packed weights of one block stay ~8-16 KB */
    cib_max = FC_MAX(1, FC_DIRECT_WP_BUDGET / (6 * khkw));
    ncib = cig == 0 ? 1 : (cig + cib_max - 1) / cib_max;
    if (cig > 0) cib_max = (cig + ncib - 1) / ncib;  /* even blocks */
    /* spatial tasks: about 512 output pixels each */
    if (s->w_out > 1024) { col_chunk = 512; rows_per = 1; }
    else { col_chunk = s->w_out; rows_per = FC_MAX(1, 512 / s->w_out); }
    rows_per = FC_MIN(rows_per, s->h_out);
    nrc = (s->h_out + rows_per - 1) / rows_per;
    ncc = (s->w_out + col_chunk - 1) / col_chunk;
    FC_MUL(s->n, s->groups, &t64);
    FC_MUL(t64, ncob, &t64);
    FC_MUL(t64, nrc, &t64);
    FC_MUL(t64, ncc, &ntask);
    nthr = fc_threads_for(ctx, ntask);

#pragma omp parallel num_threads(nthr)
    {
        fc_fpmode fpm = fc_fpmode_enter();
        FC_ALIGNED(32) T wp[FC_DIRECT_WP];
        SFX(blk) b;
        int64_t task;
        b.gidx = V_GIDX(s->stride_w);
#pragma omp for schedule(static)
        for (task = 0; task < ntask; task++) {
            int64_t rest = task;
            const int64_t cc = rest % ncc; rest /= ncc;
            const int64_t rc = rest % nrc; rest /= nrc;
            const int64_t cob = rest % ncob; rest /= ncob;
            const int64_t g = rest % s->groups; rest /= s->groups;
            const int64_t n = rest;
            const int64_t co0 = cob * 6;
            const int nc = (int)FC_MIN(6, cog - co0);
            const int64_t co_abs = g * cog + co0;
            const int64_t r0 = rc * rows_per, r1 = FC_MIN(s->h_out, r0 + rows_per);
            const int64_t c0 = cc * col_chunk, c1 = FC_MIN(s->w_out, c0 + col_chunk);
            int64_t kb, oh;
            b.plane_in = s->h_in * s->w_in;
            b.plane_out = s->h_out * s->w_out;
            b.w_in = s->w_in; b.w_out = s->w_out;
            b.kh_n = s->kh; b.kw_n = s->kw; b.dh = s->dil_h; b.dw = s->dil_w; b.sw = s->stride_w;
            b.bias = bias ? bias + co_abs : NULL;
            b.y = y + (n * s->c_out + co_abs) * b.plane_out;
            for (kb = 0; kb < ncib; kb++) {
                const int64_t ci0 = kb * cib_max;
                b.cib = FC_MIN(cib_max, cig - ci0);
                if (b.cib < 0) b.cib = 0;
                b.first = kb == 0;
                b.x = x ? x + (n * s->c_in + g * cig + ci0) * b.plane_in : x;
                b.wp = wp;
                SFX(pack)(wp, w, s, cig, co_abs, nc, ci0, b.cib);
                for (oh = r0; oh < r1; oh++) SFX(row)(&b, s, nc, mode, oh, c0, c1);
            }
        }
        fc_fpmode_leave(fpm);
    }
    return FC_OK;
}
