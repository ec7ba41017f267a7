/* Pooling entry points for one dtype (instantiated twice by pool.c, with
 * FC_T / FC_SFX defined and pool_generic.h included).
 *
 * Each entry point re-checks the shape, returns at once when there is no
 * work, offers the call to the AVX2 fast paths (which decline with
 * FC_NOT_HANDLED), and otherwise runs the generic kernels with OpenMP over
 * the n*c independent planes.  Results do not depend on the thread count:
 * every plane is computed by one thread in a fixed order. */

static fc_status FC_SFX(pool_precheck)(const fc_context *ctx, const fc_pool_shape *s, int64_t *planes) {
    fc_status st;
    if (!ctx || !s) return FC_ERR_ARG;
    if ((st = fc_pool_check(s)) != FC_OK) return st;
    *planes = s->n * s->c;   /* fc_pool_check proved the products fit */
    return FC_OK;
}

fc_status FC_SFX(fc_max_pool2d)(fc_context *ctx, const fc_pool_shape *s, const FC_T *x, FC_T *y,
                                int64_t *indices) {
    int64_t planes, p, hw_in, hw_out;
    fc_status st = FC_SFX(pool_precheck)(ctx, s, &planes);
    if (st != FC_OK) return st;
    hw_in = s->h_in * s->w_in;
    hw_out = s->h_out * s->w_out;
    if (planes == 0 || hw_out == 0) return FC_OK;
    if (!y || (hw_in > 0 && !x)) return FC_ERR_ARG;
#ifdef FC_WITH_AVX2
    if (ctx->isa >= FC_ISA_AVX2) {
        st = FC_SFXA(fc_max_pool2d)(ctx, s, x, y, indices);
        if (st != FC_NOT_HANDLED) return st;
    }
#endif
    /* No FTZ/DAZ here: max pooling does no arithmetic, and DAZ would make
     * comparisons of subnormal inputs differ from PyTorch's. */
#pragma omp parallel for schedule(static) num_threads(fc_pool_threads(ctx, planes, FC_MAX(hw_in, hw_out)))
    for (p = 0; p < planes; p++)
        FC_SFX(fc_pool_max_rect)(s, x + p * hw_in, y + p * hw_out, indices ? indices + p * hw_out : NULL,
                                 0, s->h_out, 0, s->w_out);
    return FC_OK;
}

fc_status FC_SFX(fc_max_pool2d_backward)(fc_context *ctx, const fc_pool_shape *s, const FC_T *gy,
                                         const int64_t *indices, const FC_T *x, FC_T *gx) {
    int64_t planes, p, hw_in, hw_out;
    int bad = 0;
    fc_status st = FC_SFX(pool_precheck)(ctx, s, &planes);
    if (st != FC_OK) return st;
    hw_in = s->h_in * s->w_in;
    hw_out = s->h_out * s->w_out;
    if (planes == 0 || hw_in == 0) return FC_OK;
    if (!gx || (hw_out > 0 && (!gy || (!indices && !x)))) return FC_ERR_ARG;
#ifdef FC_WITH_AVX512
    if (ctx->isa == FC_ISA_AVX512) {
        st = FC_SFXZ(fc_max_pool2d_backward)(ctx, s, gy, indices, x, gx);
        if (st != FC_NOT_HANDLED) return st;
    }
#endif
#ifdef FC_WITH_AVX2
    if (ctx->isa >= FC_ISA_AVX2) {
        st = FC_SFXA(fc_max_pool2d_backward)(ctx, s, gy, indices, x, gx);
        if (st != FC_NOT_HANDLED) return st;
    }
#endif
#pragma omp parallel num_threads(fc_pool_threads(ctx, planes, FC_MAX(hw_in, hw_out)))
    {
        /* No FTZ/DAZ: the argmax recomputed from x must compare subnormals
         * exactly as the forward pass (and PyTorch) did. */
#pragma omp for schedule(static)
        for (p = 0; p < planes; p++) {
            if (FC_SFX(fc_pool_max_backward_plane)(s, gy + p * hw_out, indices ? indices + p * hw_out : NULL,
                                                   indices ? NULL : x + p * hw_in, gx + p * hw_in)) {
#pragma omp atomic write
                bad = 1;
            }
        }
    }
    return bad ? FC_ERR_INDEX : FC_OK;
}

fc_status FC_SFX(fc_avg_pool2d)(fc_context *ctx, const fc_pool_shape *s, const FC_T *x, FC_T *y) {
    int64_t planes, p, hw_in, hw_out;
    fc_status st = FC_SFX(pool_precheck)(ctx, s, &planes);
    if (st != FC_OK) return st;
    hw_in = s->h_in * s->w_in;
    hw_out = s->h_out * s->w_out;
    if (planes == 0 || hw_out == 0) return FC_OK;
    if (!y || (hw_in > 0 && !x)) return FC_ERR_ARG;
#ifdef FC_WITH_AVX2
    if (ctx->isa >= FC_ISA_AVX2) {
        st = FC_SFXA(fc_avg_pool2d)(ctx, s, x, y);
        if (st != FC_NOT_HANDLED) return st;
    }
#endif
#pragma omp parallel num_threads(fc_pool_threads(ctx, planes, FC_MAX(hw_in, hw_out)))
    {
        fc_fpmode fm = fc_fpmode_enter();
#pragma omp for schedule(static)
        for (p = 0; p < planes; p++)
            FC_SFX(fc_pool_avg_rect)(s, x + p * hw_in, y + p * hw_out, 0, s->h_out, 0, s->w_out);
        fc_fpmode_leave(fm);
    }
    return FC_OK;
}

fc_status FC_SFX(fc_avg_pool2d_backward)(fc_context *ctx, const fc_pool_shape *s, const FC_T *gy, FC_T *gx) {
    int64_t planes, p, hw_in, hw_out;
    fc_status st = FC_SFX(pool_precheck)(ctx, s, &planes);
    if (st != FC_OK) return st;
    hw_in = s->h_in * s->w_in;
    hw_out = s->h_out * s->w_out;
    if (planes == 0 || hw_in == 0) return FC_OK;
    if (!gx || (hw_out > 0 && !gy)) return FC_ERR_ARG;
#ifdef FC_WITH_AVX2
    if (ctx->isa >= FC_ISA_AVX2) {
        st = FC_SFXA(fc_avg_pool2d_backward)(ctx, s, gy, gx);
        if (st != FC_NOT_HANDLED) return st;
    }
#endif
#pragma omp parallel num_threads(fc_pool_threads(ctx, planes, FC_MAX(hw_in, hw_out)))
    {
        fc_fpmode fm = fc_fpmode_enter();
#pragma omp for schedule(static)
        for (p = 0; p < planes; p++)
            FC_SFX(fc_pool_avg_backward_plane)(s, gy + p * hw_out, gx + p * hw_in);
        fc_fpmode_leave(fm);
    }
    return FC_OK;
}
