/* The portable direct kernels (conv_direct_impl.h) compiled with AVX2+FMA:
 * the compiler's 8-wide (float) / 4-wide (double) vectorisation of the same
 * loops.  Used on the AVX2 path for the backward passes, the per-channel
 * bias, and as the forward fallback when the register-blocked AVX2 kernel
 * (conv_direct_avx2.c) declines a configuration.  Same summation order per
 * element for any thread count, so results stay thread-count independent. */
#include "conv_direct.h"

#define T float
#define FC_TW 8
#define SFX f32__avx2_generic
#include "conv_direct_impl.h"
#undef T
#undef FC_TW
#undef SFX

#define T double
#define FC_TW 4
#define SFX f64__avx2_generic
#include "conv_direct_impl.h"
#undef T
#undef FC_TW
#undef SFX
