/* AVX-512 max pooling backward with saved indices, 3x3 stride 2 pad 1 and
 * exactly tiled 2x2 stride 2, for one dtype (included twice by
 * pool_avx512.c with FC_T, FC_SFX and the Z* macros defined).
 *
 * Gather in the "slot" domain: a vector holds NS = 2*ZL consecutive
 * grad_input columns 2q .. 2q+NS-1 of one row, slots 2j and 2j+1 belonging
 * to output q+j (its tap columns c = 1 and c = 2 for 3x3/2 p1, c = 0 and 1
 * for 2x2/2).  Each output's window-relative index code (idx - window
 * origin = r*W + c) and gradient are duplicated into both of its slots, so
 * one compare against a vector alternating the two taps' codes gives the
 * mask of every slot that receives that output's gradient, and a masked
 * add puts it there -- no interleaving shuffles.  Row starts and ends are
 * masked lanes of the same code (no scalar border loop).
 *
 * Sums are formed as the zero-filled in-order scatter forms them (see
 * pool_avx2_max3bwd.h): fresh elements 0 + g (+0 for -0), then + g of the
 * next output (3x3: column 2q+1 is c = 2 of q, then c = 0 of q+1); row
 * 2p-1 of the 3x3 gets row p's c-row-0 taps added to what row p-1 stored.
 * A masked add that does not fire leaves the element as it is, which
 * equals adding +0: no element here is ever -0.
 *
 * Index check: an output whose code matches none of its valid taps is a
 * bad index; the matches are counted (see z_max3_block) and a plane is
 * valid when they equal its outputs.  The codes are compared in ZCMP's
 * lane width (int32 for float32); a code outside [0, 2^31) -- negative, or
 * with high bits that the int32 compare would drop -- is caught by OR-ing
 * every code into `acc` and testing bits 31..63 once per plane. */

/* The first n slots (or lanes) of a block: n clamped to [0, NS]. */
static FC_AI uint32_t FC_SFX(zfirst)(int64_t n) {
    return n >= NS ? (uint32_t)ZALLSLOTS : n <= 0 ? 0u : (((uint32_t)1 << n) - 1);
}

/* Software prefetch, ZPF_ROWS output rows ahead (past the plane: the next
 * plane's, a hint that never faults): that row's gradients and indices
 * into L2, and its `in_rows` grad_input rows (from `gxrow`), which are
 * written next (their read for ownership).  Only for rows of at least a
 * cache line of gradients: on 14x14 planes (7 outputs a row) it measured
 * 1.1-1.2x slower, on 56- and 112-wide planes 1.2-1.4x faster (2x2/2). */
#ifndef ZPF_ROWS
#define ZPF_ROWS 6
#endif
static FC_AI void FC_SFX(z_prefetch)(const FC_T *gyrow, const int64_t *irow, const FC_T *gxrow, int64_t wo,
                                     int64_t W, const int in_rows) {
    const uintptr_t g = (uintptr_t)(gyrow + ZPF_ROWS * wo), i = (uintptr_t)(irow + ZPF_ROWS * wo);
    const uintptr_t x = (uintptr_t)(gxrow + ZPF_ROWS * in_rows * W);
    int64_t b;
    if (ZPF_ROWS <= 0 || wo * (int64_t)sizeof(FC_T) < 64) return;
    for (b = 0; b < wo * (int64_t)sizeof(FC_T); b += 64) _mm_prefetch((const char *)(g + (uintptr_t)b), _MM_HINT_T1);
    for (b = 0; b < wo * 8; b += 64) _mm_prefetch((const char *)(i + (uintptr_t)b), _MM_HINT_T1);
    for (b = 0; b < in_rows * W * (int64_t)sizeof(FC_T); b += 64)
        _mm_prefetch((const char *)(x + (uintptr_t)b), _MM_HINT_T1);
}

/* Tap codes of one window row r: c = 1 | c = 2 in alternating slots (e),
 * c = 0 in every slot (b). */
typedef struct { ZI e[3], b[3]; } FC_SFX(z_taps3);

/* 3x3/2 p1: the block of outputs q.. of output row p; mo / mo1 = outputs
 * q+j / q+1+j that exist, so1 the slots of the latter (odd slots only),
 * sc = the former's slots inside the row.  Rows r with has[r] exist.
 * Accumulates the codes into *acc and the matched taps into *hits: every
 * mask bit is one (output, valid tap) pair -- slot 2j / 2j+1 of e: output
 * j's c = 1 / c = 2, slot 2j+1 of b: output j+1's c = 0 -- and the taps of
 * one window have distinct codes, so an output matches at most once and
 * the row is valid exactly when the hits equal its outputs. */
static FC_AI void FC_SFX(z_max3_block)(const FC_SFX(z_taps3) *t, const FC_T *gyrow, const int64_t *irow,
                                       FC_T *const rows[3], int64_t q, ZB base, uint32_t mo, uint32_t mo1,
                                       uint32_t so1, uint32_t sc, const int has0, const int has1,
                                       const int has2, ZB *acc, int64_t *hits) {
    const ZT zero = ZZERO();
    const ZB c = ZB_CODES(irow + q, mo, base), c1 = ZB_CODES(irow + q + 1, mo1, ZB_STEP(base, 2));
    const ZI cc = ZDUPC(c), cc1 = ZDUPC(c1);
    const ZT g = ZDUPG(gyrow + q, mo), g1 = ZDUPG(gyrow + q + 1, mo1);
    ZM e = 0, b = 0;
    *acc = ZB_ACC(*acc, mo, c);
    *acc = ZB_ACC(*acc, mo1, c1);
    if (has0) {
        const ZM me = ZCMP(sc, cc, t->e[0]), mb = ZCMP(so1, cc1, t->b[0]);
        ZT v = ZLOADC(sc, rows[0] + 2 * q);
        v = ZMASK_ADD(v, me, v, g);
        v = ZMASK_ADD(v, mb, v, g1);
        ZSTOREC(rows[0] + 2 * q, sc, v);
        e = ZKOR(e, me); b = ZKOR(b, mb);
    }
    if (has1) {
        const ZM me = ZCMP(sc, cc, t->e[1]), mb = ZCMP(so1, cc1, t->b[1]);
        ZSTOREC(rows[1] + 2 * q, sc, ZMASK_ADD(ZMASKZ_ADD(me, zero, g), mb, ZMASKZ_ADD(me, zero, g), g1));
        e = ZKOR(e, me); b = ZKOR(b, mb);
    }
    if (has2) {
        const ZM me = ZCMP(sc, cc, t->e[2]), mb = ZCMP(so1, cc1, t->b[2]);
        ZSTOREC(rows[2] + 2 * q, sc, ZMASK_ADD(ZMASKZ_ADD(me, zero, g), mb, ZMASKZ_ADD(me, zero, g), g1));
        e = ZKOR(e, me); b = ZKOR(b, mb);
    }
    *hits += __builtin_popcount((uint32_t)e | ((uint32_t)b << NS));
}

/* 3x3/2 p1: output row p.  rows[r] = input row 2p-1+r (for the rows that
 * exist).  Adds the row's matched taps to *hits. */
static FC_AI void FC_SFX(z_max3_row)(const FC_SFX(z_taps3) *t, const fc_pool_shape *s, const FC_T *gyrow,
                                     const int64_t *irow, FC_T *const rows[3], int64_t p, const int has0,
                                     const int has1, const int has2, ZB *acc, int64_t *hits) {
    const int64_t W = s->w_in, wo = s->w_out;
    ZB base = ZB_INIT((2 * p - 1) * W - 1);
    int64_t q = 0;
    /* whole blocks (outputs q+1 .. q+ZL exist too, all slots inside) */
    for (; q + ZL < wo && 2 * (q + ZL) <= W; q += ZL) {
        FC_SFX(z_max3_block)(t, gyrow, irow, rows, q, base, ZALLLANES, ZALLLANES, ZODD, ZALLSLOTS,
                             has0, has1, has2, acc, hits);
        base = ZB_STEP(base, 2 * ZL);
    }
    for (; q < wo; q += ZL) {
        FC_SFX(z_max3_block)(t, gyrow, irow, rows, q, base, FC_SFX(zfirst)(wo - q), FC_SFX(zfirst)(wo - q - 1),
                             FC_SFX(zfirst)(2 * (wo - q - 1)) & ZODD,
                             FC_SFX(zfirst)(2 * (wo - q)) & FC_SFX(zfirst)(W - 2 * q), has0, has1, has2, acc, hits);
        base = ZB_STEP(base, 2 * ZL);
    }
}

/* Returns 1 on a bad index (checked once, at the plane's end). */
static int FC_SFX(z_max3_plane)(const fc_pool_shape *s, const FC_T *gy, const int64_t *ind, FC_T *gx) {
    const int64_t wo = s->w_out, W = s->w_in, H = s->h_in;
    FC_SFX(z_taps3) t;
    ZB acc = ZB_ZERO();
    int64_t p, hits = 0;
    int r;
    for (r = 0; r < 3; r++) {
        t.e[r] = ZPAIR(r * W + 1, r * W + 2);
        t.b[r] = ZSET1I(r * W);
    }
    for (p = 0; p < s->h_out; p++) {
        const int64_t ih0 = 2 * p - 1;
        const FC_T *gyrow = gy + p * wo;
        const int64_t *irow = ind + p * wo;
        FC_T *rows[3];
        rows[0] = gx + ih0 * W; rows[1] = rows[0] + W; rows[2] = rows[1] + W;
        FC_SFX(z_prefetch)(gyrow, irow, rows[1], wo, W, 2);
        /* interior rows with all three window rows, then the edges */
        if (ih0 >= 0 && ih0 + 2 < H) FC_SFX(z_max3_row)(&t, s, gyrow, irow, rows, p, 1, 1, 1, &acc, &hits);
        else FC_SFX(z_max3_row)(&t, s, gyrow, irow, rows, p, ih0 >= 0, ih0 + 1 < H, ih0 + 2 < H, &acc, &hits);
    }
    return hits != s->h_out * wo || ZB_OUTSIDE(acc);
}

/* 2x2/2: outputs q.. (mo: those that exist, so: their slots) of a row. */
static FC_AI void FC_SFX(z_max2_block)(ZI e0, ZI e1, const FC_T *gyrow, const int64_t *irow, FC_T *r0, FC_T *r1,
                                       int64_t q, ZB base, uint32_t mo, uint32_t so, ZB *acc, int64_t *hits) {
    const ZT zero = ZZERO();
    const ZB c = ZB_CODES(irow + q, mo, base);
    const ZI cc = ZDUPC(c);
    const ZT g = ZDUPG(gyrow + q, mo);
    const ZM m0 = ZCMP(so, cc, e0), m1 = ZCMP(so, cc, e1);
    *acc = ZB_ACC(*acc, mo, c);
    ZSTOREC(r0 + 2 * q, so, ZMASKZ_ADD(m0, zero, g));
    ZSTOREC(r1 + 2 * q, so, ZMASKZ_ADD(m1, zero, g));
    *hits += __builtin_popcount((uint32_t)m0 | ((uint32_t)m1 << NS));   /* as z_max3_block */
}

/* Whole blocks, then one masked block (its masks the same for every row);
 * the plane's indices checked once at its end. */
static int FC_SFX(z_max2_plane)(const fc_pool_shape *s, const FC_T *gy, const int64_t *ind, FC_T *gx) {
    const int64_t W = s->w_in, wo = s->w_out, q_tail = wo - wo % ZL;
    const ZI e0 = ZPAIR(0, 1), e1 = ZPAIR(W, W + 1);
    const uint32_t mo_tail = FC_SFX(zfirst)(wo - q_tail), so_tail = FC_SFX(zfirst)(2 * (wo - q_tail));
    ZB acc = ZB_ZERO();
    int64_t oh, q, hits = 0;
    for (oh = 0; oh < s->h_out; oh++) {
        const FC_T *gyrow = gy + oh * wo;
        const int64_t *irow = ind + oh * wo;
        FC_T *r0 = gx + 2 * oh * W, *r1 = r0 + W;
        ZB base = ZB_INIT(2 * oh * W);
        FC_SFX(z_prefetch)(gyrow, irow, r0, wo, W, 2);
        for (q = 0; q < q_tail; q += ZL) {
            FC_SFX(z_max2_block)(e0, e1, gyrow, irow, r0, r1, q, base, ZALLLANES, ZALLSLOTS, &acc, &hits);
            base = ZB_STEP(base, 2 * ZL);
        }
        if (q < wo) FC_SFX(z_max2_block)(e0, e1, gyrow, irow, r0, r1, q, base, mo_tail, so_tail, &acc, &hits);
    }
    return hits != s->h_out * wo || ZB_OUTSIDE(acc);
}

/* 1: 3x3/2 p1 whose every window has a valid row and column (PyTorch's
 * output sizes always do); 2: exactly tiled 2x2/2; 0: not served.  Tap
 * codes (up to 2W+2) must fit the int32 compares. */
static int FC_SFX(z_maxbwd_kind)(const fc_pool_shape *s) {
    if (s->kh != s->kw || s->stride_h != 2 || s->stride_w != 2 || s->pad_h != s->pad_w) return 0;
    if (s->dil_h != 1 || s->dil_w != 1 || s->w_in > ((int64_t)1 << 28) || s->h_out < 1 || s->w_out < 1) return 0;
    if (s->kh == 3 && s->pad_h == 1 && 2 * (s->h_out - 1) - 1 <= s->h_in - 1 && 2 * (s->w_out - 1) - 1 <= s->w_in - 1)
        return 1;
    if (s->kh == 2 && s->pad_h == 0 && s->w_in == 2 * s->w_out && s->h_in == 2 * s->h_out) return 2;
    return 0;
}

/* grad_input is written with normal stores, every element once per plane
 * (3x3: row 2p-1 twice, in L1): see the AVX2 entry for why not streamed. */
fc_status FC_SFXZ(fc_max_pool2d_backward)(fc_context *ctx, const fc_pool_shape *s, const FC_T *gy,
                                          const int64_t *indices, const FC_T *x, FC_T *gx) {
    const int kind = FC_SFX(z_maxbwd_kind)(s);
    const int64_t planes = s->n * s->c, hw_in = s->h_in * s->w_in, hw_out = s->h_out * s->w_out;
    int64_t p;
    int bad = 0;
    (void)x;
    if (!kind || !indices || hw_out == 0) return FC_NOT_HANDLED;
#pragma omp parallel for schedule(static) num_threads(fc_pool_threads(ctx, planes, FC_MAX(hw_in, hw_out)))
    for (p = 0; p < planes; p++) {
        const int r = kind == 1 ? FC_SFX(z_max3_plane)(s, gy + p * hw_out, indices + p * hw_out, gx + p * hw_in)
                                : FC_SFX(z_max2_plane)(s, gy + p * hw_out, indices + p * hw_out, gx + p * hw_in);
        if (r) {
#pragma omp atomic write
            bad = 1;
        }
    }
    return bad ? FC_ERR_INDEX : FC_OK;
}
