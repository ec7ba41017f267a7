/* Machine measurement loops (stub). */
#include "fc_internal.h"
fc_status fc_measure_fma_peak(fc_context *ctx, int dtype_size, double seconds, double *gflops) { *gflops = 0; return FC_ERR_UNSUPPORTED; }
fc_status fc_measure_copy_bandwidth(fc_context *ctx, int64_t bytes, double seconds, double *gbps) { *gbps = 0; return FC_ERR_UNSUPPORTED; }
