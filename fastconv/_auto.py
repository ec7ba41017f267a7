"""``algo="auto"``: pick a convolution algorithm from the layer's geometry (provisional)."""

RULES = {"gemm_min_channels": 8}
FIT_GRID = {"gemm_min_channels": [4, 8, 16]}


def choose(op, shape, available, isa, dtype="float32", threads=1, rules=None):
    r = RULES if rules is None else rules
    c_in, c_out = shape[1], shape[4]
    dh, dw, g = shape[13], shape[14], shape[15]
    cg, og = c_in // g, c_out // g
    m = r["gemm_min_channels"]
    gemm_ok = "im2col" in available and cg >= m and og >= m
    if not gemm_ok:
        return "direct"
    if (dh, dw) != (1, 1) and "dilated" in available:
        return "dilated"
    return "im2col"
