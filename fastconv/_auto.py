"""``algo="auto"``: pick a convolution algorithm from the layer's geometry.

A cost-model heuristic: a short decision list per pass over shape features:
channels per group ``cg``/``og``, taps ``k = kH*kW``, GEMM depth
``K = cg*k``, stride, output pixels ``P = N*H_out*W_out``, a group's weight
bytes (``og*cg*k*itemsize``: does it stay in L2?), the GEMM's thinness
(``cg*og`` of a 1x1 layer: how memory-bound the BLAS call is) and the
fraction of dense taps that read padding (``_pad_fraction``; what the
space-to-batch ``dilated`` algorithm skips).  Every number the lists compare
against lives in a table fitted per kernel ISA (``FITTED``; ``RULE_DOCS``
says what each one means), with float64 and baseline-ISA overrides.

The tables are fitted, never edited by hand: ``bench/bench_auto.py --suite
train --fit --write`` times every algorithm on the TRAIN suite of
``fastconv/_suites.py`` (1 thread, CPU-time clock, seeded inputs, median of
interleaved rounds), searches ``FIT_GRID`` by coordinate descent from
``FIT_START`` and rewrites the block between ``BEGIN FITTED`` and
``END FITTED`` (``FIT_INFO`` records the command, data and result).  The
held-out suites (ResNet/VGG/MobileNet/DeepLab; EfficientNet/ResNeXt/
Inception/ESPNet) are only measured: ``bench/bench_auto.py --suite heldout_all``.

What the measurements say (the why behind the rules; 1 thread, float32,
the kernels the tables were fitted on -- see ``FIT_INFO``):

* forward: the output-channel-vectorised direct kernels (AVX2 16, AVX-512
  32 channels x 6 pixels, no workspace) win on most 3x3-7x7 layers, stride 1
  or 2; with AVX2 only while one group's weights stay within
  ``fwd_direct_max_wkib`` (stride 1: 6 MiB) / ``fwd_direct_s2_max_wkib``
  (strided: 1 MiB) -- beyond, the BLAS's cache blocking of a GEMM with
  K = cg*k wins --, with AVX-512 at every width measured.  Depthwise and
  few-channel layers go direct (a GEMM with 1-4 rows or columns is
  memory-bound), except large depthwise kernels (``fwd_dw_dilated_min_k``:
  ``dilated``) and dilated depthwise layers (``fwd_dw_im2col_min_d``:
  im2col).  A 1x1 layer is a plain GEMM (im2col needs no column buffer):
  the BLAS wins unless the GEMM has few rows (``og <=
  fwd_1x1_direct_max_og``), the image's plane is small (im2col packs small
  images into one GEMM) or the reduction is deep (``cg >=
  fwd_1x1_direct_min_cg``, or ``cg >= fwd_1x1_direct_min_ratio * og``
  -- AVX-512: 144-24 and 112-32 go direct, 24-16 and 128-512 to the BLAS),
  and, with AVX-512, when strided (``fwd_1x1_s2_direct_max_og``: im2col
  then gathers a column buffer).
  Grouped layers go direct, except (``_grouped_gemm_wins``) a band of
  output channels per group that leave the direct tile's vectors partly
  empty (8-15 with both ISAs; AVX-512 runs them on the AVX2 tile) on planes
  from ``fwd_grouped_band_pixels`` outputs, and, with AVX-512, wide groups
  on tiny planes (``fwd_grouped_small_*``: 32 channels per group on <= 100
  outputs); the grad input alone (``gin_grouped_*``) the same on cg.
  ``dilated`` wins when many taps read padding (``fwd_dilated_pad``: the
  taps it skips, ``1 - effective_mults/mults``).
* backward (grad input + grad weight) and grad input alone
  (``conv_transpose2d``; its own ``gin_*`` limits): grad input runs the
  forward direct kernels on the flipped weights (polyphase when strided) and
  grad weight a register-blocked kernel, so direct wins the same way as
  forward -- weights within ``*_direct_max_wkib`` -- once the plane has
  ``*_direct_min_pixels`` outputs (tiny planes: the BLAS); a 1x1 layer goes
  direct when the pass's output channels are few (grad input makes ``cg``,
  grad weight ``og x cg``) or when ``og`` -- the grad input's reduction, the
  grad weight's rows -- reaches ``*_1x1_direct_min_og`` on a plane of
  ``*_1x1_direct_min_pixels`` (with AVX-512: og >= 32 / 48 from 196 / 400
  pixels; narrower layers and tiny planes: the BLAS); the grad input of a
  strided stem (cg < 4) with a large kernel (``gin_few_s2_im2col_min_k``)
  goes to im2col (the direct one makes 3 channels with a kernel vectorised
  over channels); depthwise layers by plane size and stride (strided 3x3
  depthwise backward: im2col below ``bwd_dw_s2_direct_pixels`` -- the
  direct one loses 1.2-1.4x on 200-1000 outputs and ties from ~2300).
  ``dilated``'s GEMM path (one GEMM per tap, no column buffer) wins for
  padding-heavy dilations (``bwd_dilated_pad``), narrow ungrouped layers and
  stride-1 kernels on mid-sized planes; im2col serves the rest (wide and
  strided layers on small planes).

``threads`` is an input but no rule uses it (two-thread timings on the
shared development machine are too noisy to fit); tuning mode keys on it.
"""

#: A threshold no layer reaches: "never" (or "always") in the tables.
_NEVER = 1 << 20

#: What each threshold of the decision lists means (also the order of the tables).
RULE_DOCS = {
    # forward (conv2d)
    "fwd_dw_dilated_min_k": "depthwise, stride 1, this many taps: dilated (else direct) ...",
    "fwd_dw_im2col_min_d": "... and depthwise with this dilation: im2col",
    "fwd_few_channels": "min(cg, og) below this: direct, except ...",
    "fwd_first_im2col_K": "... GEMM depth K = cg*k this deep with og >= 32: im2col",
    "fwd_few_dilated_min_k": "... strided stems with this many taps: dilated",
    "fwd_dilated_pad": "dilated when this fraction of dense taps reads padding ...",
    "fwd_dilated_wide_pixels": "... or from 2, with weights over fwd_direct_max_wkib and this many outputs",
    "fwd_grouped_direct_max_cg": "grouped, not depthwise: im2col above this cg",
    "fwd_grouped_band_min_c": "grouped: im2col when og is from this ...",
    "fwd_grouped_band_max_c": "... to below this (tiles partly empty; AVX-512 runs 8-15 on the AVX2 tile) ...",
    "fwd_grouped_band_pixels": "... on N*H_out*W_out >= this",
    "fwd_grouped_small_min_c": "grouped: im2col when og >= this ...",
    "fwd_grouped_small_pixels": "... on N*H_out*W_out <= this (wide groups on tiny planes)",
    "fwd_direct_max_wkib": "kxk, stride 1: direct while a group's weights (KiB) are at most this ...",
    "fwd_direct_s2_max_wkib": "... (strided: this) ...",
    "fwd_direct_max_pixels": "... and N*H_out*W_out <= this; else im2col",
    "fwd_direct_wide_pixels": "wider weights: direct still on N*H_out*W_out >= this (the BLAS wins on few pixels)",
    "fwd_1x1_direct_max_og": "1x1: direct when og <= this (a GEMM with this few rows is memory-bound) ...",
    "fwd_1x1_small_pixels": "... or H_out*W_out <= this (one image's plane: im2col packs small images) ...",
    "fwd_1x1_direct_min_cg": "... or cg >= this (a deep reduction keeps the direct kernel's accumulators busy) ...",
    "fwd_1x1_direct_min_ratio": "... or cg >= this * og (a reduction this many times deeper than the outputs) ...",
    "fwd_1x1_s2_direct_max_og": "... or, strided (im2col then gathers a column buffer), og <= this; else im2col",
    # backward (grad input + grad weight) and conv_transpose2d (grad input)
    "bwd_dw_im2col_min_d": "depthwise with this dilation: im2col; else ...",
    "bwd_dw_direct_pixels": "depthwise: direct on planes of N*H_out*W_out >= this ...",
    "bwd_dw_small_pixels": "... or, at stride 1, <= this; im2col in between",
    "bwd_dw_s2_direct_pixels": "... strided: direct from this many, or ...",
    "bwd_dw_s2_direct_min_k": "... with this many taps",
    "gin_dw_direct_pixels": "conv_transpose2d, depthwise: the same three limits",
    "gin_dw_small_pixels": "...",
    "gin_dw_s2_direct_pixels": "...",
    "gin_dw_s2_direct_min_k": "...",
    "bwd_dilated_pad": "dilated when this fraction of dense taps reads padding",
    "bwd_grouped_direct_min_cg": "grouped, not depthwise: direct only with cg >= this",
    "gin_grouped_direct_min_cg": "(grad input alone: this)",
    "gin_grouped_band_min_c": "conv_transpose2d, grouped: the forward's two im2col rules on cg",
    "gin_grouped_band_max_c": "(the grad input's output channels per group; it runs the",
    "gin_grouped_band_pixels": "forward direct kernels)",
    "gin_grouped_small_min_c": "",
    "gin_grouped_small_pixels": "",
    "bwd_direct_max_wkib": "kxk, not depthwise: direct while a group's weights (KiB) <= this ...",
    "bwd_direct_s2_max_wkib": "... (strided: this) ...",
    "bwd_direct_min_pixels": "... and, over bwd_direct_free_wkib, on N*H_out*W_out >= this",
    "bwd_direct_free_wkib": "(see above)",
    "bwd_1x1_direct_max_c": "1x1: direct when og <= this, or ...",
    "bwd_1x1_direct_min_og": "... when og >= this (grad weight og x cg and grad input's reduction deep enough) ...",
    "bwd_1x1_direct_min_pixels": "... on N*H_out*W_out >= this (smaller planes: the BLAS)",
    "gin_direct_max_wkib": "conv_transpose2d (grad input alone): the same five limits (1x1: on cg,",
    "gin_direct_s2_max_wkib": "the grad input's own output channels; grad input runs the forward",
    "gin_direct_min_pixels": "direct kernels on the flipped weights)",
    "gin_direct_free_wkib": "",
    "gin_1x1_direct_max_c": "",
    "gin_1x1_direct_min_og": "",
    "gin_1x1_direct_min_pixels": "",
    "gin_few_s2_im2col_min_k": "grad input alone, strided, cg < 4 (stems): im2col from this many taps",
    "bwd_sparse_max_stride": "stride > kernel (1x1 s2): direct a candidate up to this stride, else im2col",
    "bwd_dilated_max_cg": "narrow, ungrouped layers (8 <= min(cg, og), grad input alone: cg, <= this): dilated",
    "bwd_dilated_min_k": "stride-1 kernels with this many taps ...",
    "bwd_dilated_k_pixels": "... on N*H_out*W_out from this ...",
    "bwd_dilated_k_max_pixels": "... to this ...",
    "bwd_dilated_k_max_wkib": "... with a group's weights (KiB) at most this: dilated (one GEMM per tap)",
}

# BEGIN FITTED (written by bench/bench_auto.py --fit --write; do not edit by hand)
#: Fitted thresholds per kernel ISA (float32, 1 thread).
FITTED = {
    'avx2': {
        'fwd_dw_dilated_min_k': 49,  # depthwise, stride 1, this many taps: dilated (else direct) ...
        'fwd_dw_im2col_min_d': _NEVER,  # ... and depthwise with this dilation: im2col
        'fwd_few_channels': 4,  # min(cg, og) below this: direct, except ...
        'fwd_first_im2col_K': _NEVER,  # ... GEMM depth K = cg*k this deep with og >= 32: im2col
        'fwd_few_dilated_min_k': _NEVER,  # ... strided stems with this many taps: dilated
        'fwd_dilated_pad': 0.15,  # dilated when this fraction of dense taps reads padding ...
        'fwd_dilated_wide_pixels': _NEVER,  # ... or from 2, with weights over fwd_direct_max_wkib and this many outputs
        'fwd_grouped_direct_max_cg': _NEVER,  # grouped, not depthwise: im2col above this cg
        'fwd_grouped_band_min_c': 8,  # grouped: im2col when og is from this ...
        'fwd_grouped_band_max_c': 16,  # ... to below this (tiles partly empty; AVX-512 runs 8-15 on the AVX2 tile) ...
        'fwd_grouped_band_pixels': 576,  # ... on N*H_out*W_out >= this
        'fwd_grouped_small_min_c': _NEVER,  # grouped: im2col when og >= this ...
        'fwd_grouped_small_pixels': 0,  # ... on N*H_out*W_out <= this (wide groups on tiny planes)
        'fwd_direct_max_wkib': 384,  # kxk, stride 1: direct while a group's weights (KiB) are at most this ...
        'fwd_direct_s2_max_wkib': 1024,  # ... (strided: this) ...
        'fwd_direct_max_pixels': _NEVER,  # ... and N*H_out*W_out <= this; else im2col
        'fwd_direct_wide_pixels': _NEVER,  # wider weights: direct still on N*H_out*W_out >= this (the BLAS wins on few pixels)
        'fwd_1x1_direct_max_og': 32,  # 1x1: direct when og <= this (a GEMM with this few rows is memory-bound) ...
        'fwd_1x1_small_pixels': 0,  # ... or H_out*W_out <= this (one image's plane: im2col packs small images) ...
        'fwd_1x1_direct_min_cg': _NEVER,  # ... or cg >= this (a deep reduction keeps the direct kernel's accumulators busy) ...
        'fwd_1x1_direct_min_ratio': 8,  # ... or cg >= this * og (a reduction this many times deeper than the outputs) ...
        'fwd_1x1_s2_direct_max_og': 0,  # ... or, strided (im2col then gathers a column buffer), og <= this; else im2col
        'bwd_dw_im2col_min_d': _NEVER,  # depthwise with this dilation: im2col; else ...
        'bwd_dw_direct_pixels': 0,  # depthwise: direct on planes of N*H_out*W_out >= this ...
        'bwd_dw_small_pixels': 0,  # ... or, at stride 1, <= this; im2col in between
        'bwd_dw_s2_direct_pixels': 8192,  # ... strided: direct from this many, or ...
        'bwd_dw_s2_direct_min_k': 25,  # ... with this many taps
        'gin_dw_direct_pixels': 0,  # conv_transpose2d, depthwise: the same three limits
        'gin_dw_small_pixels': 0,  # ...
        'gin_dw_s2_direct_pixels': 8192,  # ...
        'gin_dw_s2_direct_min_k': 25,  # ...
        'bwd_dilated_pad': 0.15,  # dilated when this fraction of dense taps reads padding
        'bwd_grouped_direct_min_cg': 8,  # grouped, not depthwise: direct only with cg >= this
        'gin_grouped_direct_min_cg': 1,  # (grad input alone: this)
        'gin_grouped_band_min_c': 8,  # conv_transpose2d, grouped: the forward's two im2col rules on cg
        'gin_grouped_band_max_c': 16,  # (the grad input's output channels per group; it runs the
        'gin_grouped_band_pixels': 576,  # forward direct kernels)
        'gin_grouped_small_min_c': _NEVER,  # 
        'gin_grouped_small_pixels': 0,  # 
        'bwd_direct_max_wkib': 256,  # kxk, not depthwise: direct while a group's weights (KiB) <= this ...
        'bwd_direct_s2_max_wkib': 192,  # ... (strided: this) ...
        'bwd_direct_min_pixels': 0,  # ... and, over bwd_direct_free_wkib, on N*H_out*W_out >= this
        'bwd_direct_free_wkib': 0,  # (see above)
        'bwd_1x1_direct_max_c': 8,  # 1x1: direct when og <= this, or ...
        'bwd_1x1_direct_min_og': _NEVER,  # ... when og >= this (grad weight og x cg and grad input's reduction deep enough) ...
        'bwd_1x1_direct_min_pixels': 0,  # ... on N*H_out*W_out >= this (smaller planes: the BLAS)
        'gin_direct_max_wkib': 256,  # conv_transpose2d (grad input alone): the same five limits (1x1: on cg,
        'gin_direct_s2_max_wkib': 96,  # the grad input's own output channels; grad input runs the forward
        'gin_direct_min_pixels': 0,  # direct kernels on the flipped weights)
        'gin_direct_free_wkib': 0,  # 
        'gin_1x1_direct_max_c': 16,  # 
        'gin_1x1_direct_min_og': _NEVER,  # 
        'gin_1x1_direct_min_pixels': 0,  # 
        'gin_few_s2_im2col_min_k': 49,  # grad input alone, strided, cg < 4 (stems): im2col from this many taps
        'bwd_sparse_max_stride': 1,  # stride > kernel (1x1 s2): direct a candidate up to this stride, else im2col
        'bwd_dilated_max_cg': 12,  # narrow, ungrouped layers (8 <= min(cg, og), grad input alone: cg, <= this): dilated
        'bwd_dilated_min_k': 25,  # stride-1 kernels with this many taps ...
        'bwd_dilated_k_pixels': 512,  # ... on N*H_out*W_out from this ...
        'bwd_dilated_k_max_pixels': _NEVER,  # ... to this ...
        'bwd_dilated_k_max_wkib': _NEVER,  # ... with a group's weights (KiB) at most this: dilated (one GEMM per tap)
    },
    'avx512': {
        'fwd_dw_dilated_min_k': 49,  # depthwise, stride 1, this many taps: dilated (else direct) ...
        'fwd_dw_im2col_min_d': _NEVER,  # ... and depthwise with this dilation: im2col
        'fwd_few_channels': 4,  # min(cg, og) below this: direct, except ...
        'fwd_first_im2col_K': _NEVER,  # ... GEMM depth K = cg*k this deep with og >= 32: im2col
        'fwd_few_dilated_min_k': _NEVER,  # ... strided stems with this many taps: dilated
        'fwd_dilated_pad': 0.28,  # dilated when this fraction of dense taps reads padding ...
        'fwd_dilated_wide_pixels': 1024,  # ... or from 2, with weights over fwd_direct_max_wkib and this many outputs
        'fwd_grouped_direct_max_cg': _NEVER,  # grouped, not depthwise: im2col above this cg
        'fwd_grouped_band_min_c': 8,  # grouped: im2col when og is from this ...
        'fwd_grouped_band_max_c': 16,  # ... to below this (tiles partly empty; AVX-512 runs 8-15 on the AVX2 tile) ...
        'fwd_grouped_band_pixels': 576,  # ... on N*H_out*W_out >= this
        'fwd_grouped_small_min_c': 32,  # grouped: im2col when og >= this ...
        'fwd_grouped_small_pixels': 100,  # ... on N*H_out*W_out <= this (wide groups on tiny planes)
        'fwd_direct_max_wkib': _NEVER,  # kxk, stride 1: direct while a group's weights (KiB) are at most this ...
        'fwd_direct_s2_max_wkib': _NEVER,  # ... (strided: this) ...
        'fwd_direct_max_pixels': _NEVER,  # ... and N*H_out*W_out <= this; else im2col
        'fwd_direct_wide_pixels': _NEVER,  # wider weights: direct still on N*H_out*W_out >= this (the BLAS wins on few pixels)
        'fwd_1x1_direct_max_og': 16,  # 1x1: direct when og <= this (a GEMM with this few rows is memory-bound) ...
        'fwd_1x1_small_pixels': 1024,  # ... or H_out*W_out <= this (one image's plane: im2col packs small images) ...
        'fwd_1x1_direct_min_cg': 192,  # ... or cg >= this (a deep reduction keeps the direct kernel's accumulators busy) ...
        'fwd_1x1_direct_min_ratio': 2,  # ... or cg >= this * og (a reduction this many times deeper than the outputs) ...
        'fwd_1x1_s2_direct_max_og': _NEVER,  # ... or, strided (im2col then gathers a column buffer), og <= this; else im2col
        'bwd_dw_im2col_min_d': _NEVER,  # depthwise with this dilation: im2col; else ...
        'bwd_dw_direct_pixels': 0,  # depthwise: direct on planes of N*H_out*W_out >= this ...
        'bwd_dw_small_pixels': 0,  # ... or, at stride 1, <= this; im2col in between
        'bwd_dw_s2_direct_pixels': 8192,  # ... strided: direct from this many, or ...
        'bwd_dw_s2_direct_min_k': 25,  # ... with this many taps
        'gin_dw_direct_pixels': 0,  # conv_transpose2d, depthwise: the same three limits
        'gin_dw_small_pixels': 0,  # ...
        'gin_dw_s2_direct_pixels': 8192,  # ...
        'gin_dw_s2_direct_min_k': 25,  # ...
        'bwd_dilated_pad': 0.28,  # dilated when this fraction of dense taps reads padding
        'bwd_grouped_direct_min_cg': 8,  # grouped, not depthwise: direct only with cg >= this
        'gin_grouped_direct_min_cg': 1,  # (grad input alone: this)
        'gin_grouped_band_min_c': 8,  # conv_transpose2d, grouped: the forward's two im2col rules on cg
        'gin_grouped_band_max_c': 16,  # (the grad input's output channels per group; it runs the
        'gin_grouped_band_pixels': 576,  # forward direct kernels)
        'gin_grouped_small_min_c': 32,  # 
        'gin_grouped_small_pixels': 100,  # 
        'bwd_direct_max_wkib': _NEVER,  # kxk, not depthwise: direct while a group's weights (KiB) <= this ...
        'bwd_direct_s2_max_wkib': 1024,  # ... (strided: this) ...
        'bwd_direct_min_pixels': 128,  # ... and, over bwd_direct_free_wkib, on N*H_out*W_out >= this
        'bwd_direct_free_wkib': 1536,  # (see above)
        'bwd_1x1_direct_max_c': 8,  # 1x1: direct when og <= this, or ...
        'bwd_1x1_direct_min_og': 24,  # ... when og >= this (grad weight og x cg and grad input's reduction deep enough) ...
        'bwd_1x1_direct_min_pixels': 196,  # ... on N*H_out*W_out >= this (smaller planes: the BLAS)
        'gin_direct_max_wkib': _NEVER,  # conv_transpose2d (grad input alone): the same five limits (1x1: on cg,
        'gin_direct_s2_max_wkib': 1024,  # the grad input's own output channels; grad input runs the forward
        'gin_direct_min_pixels': 128,  # direct kernels on the flipped weights)
        'gin_direct_free_wkib': 96,  # 
        'gin_1x1_direct_max_c': 0,  # 
        'gin_1x1_direct_min_og': 32,  # 
        'gin_1x1_direct_min_pixels': 196,  # 
        'gin_few_s2_im2col_min_k': 49,  # grad input alone, strided, cg < 4 (stems): im2col from this many taps
        'bwd_sparse_max_stride': 2,  # stride > kernel (1x1 s2): direct a candidate up to this stride, else im2col
        'bwd_dilated_max_cg': 12,  # narrow, ungrouped layers (8 <= min(cg, og), grad input alone: cg, <= this): dilated
        'bwd_dilated_min_k': 25,  # stride-1 kernels with this many taps ...
        'bwd_dilated_k_pixels': 512,  # ... on N*H_out*W_out from this ...
        'bwd_dilated_k_max_pixels': _NEVER,  # ... to this ...
        'bwd_dilated_k_max_wkib': _NEVER,  # ... with a group's weights (KiB) at most this: dilated (one GEMM per tap)
    },
}
#: How each table was fitted (the command, data and result).
FIT_INFO = {
    'avx2': {'clock': 'cpu', 'command': 'bench/bench_auto.py --fit train_avx2_s6e.json train_avx2_s6f.json --write', 'commit': 'dfeb5f6', 'data': 'bench/data/auto_train_avx2.json', 'date': '2026-12-07 12:20 UTC', 'files': ['train_avx2_s6e.json', 'train_avx2_s6f.json'], 'geomean': 1.0102, 'max': 2.15, 'over': 17, 'rows': 423},
    'avx512': {'clock': 'cpu', 'command': 'bench/bench_auto.py --fit train_avx512_s6g.json train_avx512_s6h.json --write', 'commit': 'bde82ed', 'data': 'bench/data/auto_train_avx512.json', 'date': '2026-12-07 12:45 UTC', 'files': ['train_avx512_s6g.json', 'train_avx512_s6h.json'], 'geomean': 1.0039, 'max': 1.23, 'over': 4, 'rows': 429},
}
# END FITTED

#: An ISA without a fitted table of its own uses this one's.
_FALLBACK = {"avx512": "avx2", "baseline": "avx2"}

#: float64 overrides (fitted on float64 training timings of the AVX2 kernels:
#: the column buffers of im2col move twice the bytes, the direct kernels
#: have half the lanes).
RULES_F64 = {
    "fwd_few_dilated_min_k": 81,
    "fwd_direct_max_wkib": 512,
    "fwd_1x1_direct_max_og": 0,         # float64 1x1: im2col (the BLAS) at every size
    "fwd_1x1_small_pixels": 0,
    "bwd_dw_direct_pixels": 1024,
    "bwd_dw_small_pixels": 64,
    "bwd_dw_s2_direct_pixels": 1024,
    "gin_dw_direct_pixels": 1024,
    "gin_dw_small_pixels": 64,
    "gin_dw_s2_direct_pixels": 1024,
    "bwd_dilated_pad": 0.1,
}

#: Overrides for the portable baseline kernels (``FASTCONV_ISA=baseline``),
#: applied on top of the dtype's table (fitted on one baseline forward TRAIN run).
RULES_ISA = {"baseline": {
    "fwd_grouped_direct_max_cg": 1,    # the baseline grouped direct kernel is 4-16x slower than GEMM
    "fwd_first_im2col_K": 128,
    "fwd_dilated_pad": 0.1,
    "fwd_direct_max_wkib": 96,
    "fwd_direct_max_pixels": 4096,
    "fwd_direct_s2_max_wkib": 0,
    "fwd_1x1_direct_max_og": 0,
    "fwd_1x1_small_pixels": 0,
    # the fast direct backward (register-blocked grad weight, grad input on
    # the forward kernels) is AVX2/AVX-512 only: the baseline keeps the old
    # rule, direct backward for depthwise layers only
    "bwd_direct_max_wkib": 0, "bwd_direct_s2_max_wkib": 0, "bwd_1x1_direct_max_c": 0,
    "gin_direct_max_wkib": 0, "gin_direct_s2_max_wkib": 0, "gin_1x1_direct_max_c": 0,
}}


def rules_for(dtype="float32", isa="avx2"):
    """The threshold table ``choose`` uses for `dtype` and `isa` (a new dict).

    The ISA's fitted table (``FITTED[isa]``, else the fallback ISA's), then
    the float64 overrides for float64, then the ISA's overrides.
    """
    base = FITTED.get(isa) or FITTED[_FALLBACK.get(isa, "avx2")]
    r = dict(base)
    if str(dtype) == "float64":
        r.update(RULES_F64)
    r.update(RULES_ISA.get(isa, {}))
    return r


_tables = {}


def _rules(dtype, isa):
    """``rules_for`` memoised for ``choose`` (it runs on every ``algo="auto"`` call)."""
    key = (str(dtype), isa)
    r = _tables.get(key)
    if r is None:
        r = _tables[key] = rules_for(dtype, isa)
    return r



#: Where every fit starts (the coordinate descent is deterministic: the fitted
#: table depends only on the timings and this).  Fixed; never rewritten.
FIT_START = {
    "fwd_dw_dilated_min_k": 1 << 20, "fwd_dw_im2col_min_d": 2, "fwd_few_channels": 8,
    "fwd_first_im2col_K": 256, "fwd_few_dilated_min_k": 49, "fwd_dilated_pad": 0.2,
    "fwd_dilated_wide_pixels": 1600, "fwd_grouped_direct_max_cg": 1 << 20,
    "fwd_grouped_band_min_c": _NEVER, "fwd_grouped_band_max_c": 16, "fwd_grouped_band_pixels": 1024,
    "fwd_grouped_small_min_c": _NEVER, "fwd_grouped_small_pixels": 0,
    "gin_grouped_band_min_c": _NEVER, "gin_grouped_band_max_c": 16, "gin_grouped_band_pixels": 1024,
    "gin_grouped_small_min_c": _NEVER, "gin_grouped_small_pixels": 0, "fwd_1x1_direct_min_ratio": _NEVER,
    "fwd_1x1_s2_direct_max_og": 0,
    "fwd_direct_max_wkib": 192, "fwd_direct_s2_max_wkib": 0, "fwd_direct_max_pixels": 8192, "fwd_direct_wide_pixels": _NEVER,
    "fwd_1x1_direct_max_og": 0, "fwd_1x1_small_pixels": 0, "fwd_1x1_direct_min_cg": _NEVER,
    "bwd_dw_im2col_min_d": _NEVER, "bwd_grouped_direct_min_cg": 1,
    "gin_grouped_direct_min_cg": 1,
    "bwd_dw_direct_pixels": 2048, "bwd_dw_small_pixels": 64,
    "gin_dw_direct_pixels": 2048, "gin_dw_small_pixels": 64,
    "bwd_dw_s2_direct_pixels": 2048, "gin_dw_s2_direct_pixels": 2048,
    "bwd_dw_s2_direct_min_k": _NEVER, "gin_dw_s2_direct_min_k": _NEVER, "bwd_dilated_pad": 0.05,
    "bwd_direct_max_wkib": 0, "gin_direct_max_wkib": 0,
    "bwd_direct_min_pixels": 0, "gin_direct_min_pixels": 0, "bwd_direct_s2_max_wkib": 0,
    "gin_direct_s2_max_wkib": 0, "bwd_direct_free_wkib": 0, "gin_direct_free_wkib": 0, "bwd_1x1_direct_max_c": 0,
    "gin_1x1_direct_max_c": 0, "bwd_dilated_max_cg": 12,
    "bwd_1x1_direct_min_og": _NEVER, "gin_1x1_direct_min_og": _NEVER,
    "bwd_1x1_direct_min_pixels": 0, "gin_1x1_direct_min_pixels": 0, "gin_few_s2_im2col_min_k": _NEVER, "bwd_sparse_max_stride": 1,
    "bwd_dilated_min_k": 25, "bwd_dilated_k_pixels": 512,
    "bwd_dilated_k_max_pixels": _NEVER, "bwd_dilated_k_max_wkib": _NEVER,
}

#: The float32 AVX2 table.
RULES = FITTED["avx2"]


#: Candidate values ``bench_auto.py --fit`` searches for each threshold
#: (forward ones on the forward rows, the others on the backward rows).
FIT_GRID = {
    "fwd_dw_dilated_min_k": [25, 49, 81, _NEVER],
    "fwd_dw_im2col_min_d": [2, _NEVER],
    "fwd_few_channels": [4, 8, 16],
    "fwd_first_im2col_K": [128, 256, _NEVER],
    "fwd_few_dilated_min_k": [25, 49, 81, _NEVER],
    "fwd_dilated_pad": [0.1, 0.15, 0.2, 0.25, 0.28, 0.3, 0.32, 0.35],
    "fwd_dilated_wide_pixels": [1024, 1600, 2304, 4096, _NEVER],
    "fwd_grouped_direct_max_cg": [1, 4, 16, _NEVER],
    "fwd_grouped_band_min_c": [4, 8, 16, _NEVER],
    "fwd_grouped_band_max_c": [8, 16, 32],
    "fwd_grouped_band_pixels": [256, 400, 576, 784, 1024, 1600],
    "fwd_grouped_small_min_c": [8, 16, 32, 64, _NEVER],
    "fwd_grouped_small_pixels": [0, 25, 49, 64, 100, 144, 196],
    "gin_grouped_band_min_c": [4, 8, 16, _NEVER],
    "gin_grouped_band_max_c": [8, 16, 32],
    "gin_grouped_band_pixels": [256, 400, 576, 784, 1024, 1600],
    "gin_grouped_small_min_c": [8, 16, 32, 64, _NEVER],
    "gin_grouped_small_pixels": [0, 25, 49, 64, 100, 144, 196],
    "fwd_1x1_direct_min_ratio": [2, 3, 4, 6, 8, _NEVER],
    "fwd_1x1_s2_direct_max_og": [0, 64, 96, 128, 192, 256, 384, 512, _NEVER],
    "fwd_direct_max_wkib": [96, 192, 384, 768, 1536, 3072, 6144, _NEVER],
    "fwd_direct_s2_max_wkib": [0, 96, 192, 384, 768, 1024, 1536, 3072, _NEVER],
    "fwd_direct_max_pixels": [4096, 8192, 16384, 32768, _NEVER],
    "fwd_direct_wide_pixels": [1024, 1600, 2304, 3136, 4096, _NEVER],
    "fwd_1x1_direct_max_og": [0, 8, 16, 24, 32, 48, 64],
    "fwd_1x1_small_pixels": [0, 49, 100, 196, 400, 784, 1024, 1600],
    "fwd_1x1_direct_min_cg": [32, 64, 96, 128, 192, 256, 512, _NEVER],
    "bwd_dw_im2col_min_d": [2, _NEVER],
    "bwd_dw_direct_pixels": [0, 256, 512, 1024, 1536, 2048, 4096, _NEVER],
    "bwd_dw_small_pixels": [0, 64, 128, 256],
    "bwd_dw_s2_direct_pixels": [256, 512, 1024, 2048, 4096, 8192, _NEVER],
    "bwd_dw_s2_direct_min_k": [9, 25, 49, _NEVER],
    "gin_dw_direct_pixels": [0, 256, 512, 1024, 1536, 2048, 4096, 8192, _NEVER],
    "gin_dw_small_pixels": [0, 64, 128, 256],
    "gin_dw_s2_direct_pixels": [256, 512, 1024, 2048, 4096, 8192, _NEVER],
    "gin_dw_s2_direct_min_k": [9, 25, 49, _NEVER],
    "bwd_dilated_pad": [0.05, 0.1, 0.15, 0.2, 0.25, 0.28, 0.3, 0.35, 0.4],
    "bwd_grouped_direct_min_cg": [1, 4, 8, 16],
    "gin_grouped_direct_min_cg": [1, 4, 8, 16],
    "bwd_direct_max_wkib": [0, 16, 64, 256, 1024, 2048, 4096, 8192, _NEVER],
    "bwd_direct_s2_max_wkib": [0, 96, 192, 384, 768, 1024, 1536, 3072, _NEVER],
    "bwd_direct_min_pixels": [0, 64, 128, 256, 512, 1024],
    "bwd_direct_free_wkib": [0, 96, 192, 384, 768, 1536, _NEVER],
    "bwd_1x1_direct_max_c": [0, 8, 16, 32, 48, 64, 96, 128],
    "gin_direct_max_wkib": [0, 16, 64, 256, 1024, 2048, 4096, 8192, _NEVER],
    "gin_direct_s2_max_wkib": [0, 96, 192, 384, 768, 1024, 1536, 3072, _NEVER],
    "gin_direct_min_pixels": [0, 64, 128, 256, 512, 1024],
    "gin_direct_free_wkib": [0, 96, 192, 384, 768, 1536, _NEVER],
    "gin_1x1_direct_max_c": [0, 8, 16, 32, 48, 64, 96, 128],
    "bwd_1x1_direct_min_og": [8, 16, 24, 32, 48, 64, 96, _NEVER],
    "gin_1x1_direct_min_og": [8, 16, 24, 32, 48, 64, 96, _NEVER],
    "bwd_1x1_direct_min_pixels": [0, 49, 100, 196, 400],
    "gin_1x1_direct_min_pixels": [0, 49, 100, 196, 400],
    "gin_few_s2_im2col_min_k": [25, 49, 81, _NEVER],
    "bwd_sparse_max_stride": [1, 2],
    "bwd_dilated_max_cg": [8, 12, 16, 24],
    "bwd_dilated_min_k": [9, 25, 49, _NEVER],
    "bwd_dilated_k_pixels": [0, 64, 128, 256, 512, 1024],
    "bwd_dilated_k_max_pixels": [1024, 2304, 4096, 8192, _NEVER],
    "bwd_dilated_k_max_wkib": [1024, 2048, 4096, 8192, _NEVER],
}

#: Thresholds that act together and are searched jointly by the fit.
FIT_GROUPS = [
    ("fwd_dw_dilated_min_k", "fwd_dw_im2col_min_d"),
    ("fwd_few_channels", "fwd_first_im2col_K", "fwd_few_dilated_min_k"),
    ("fwd_dilated_pad", "fwd_dilated_wide_pixels"),
    # (jointly: alone, the cg limit sends wide groups to im2col for their tiny planes)
    ("fwd_grouped_direct_max_cg", "fwd_grouped_small_min_c", "fwd_grouped_small_pixels"),
    ("fwd_grouped_band_min_c", "fwd_grouped_band_max_c", "fwd_grouped_band_pixels"),
    ("fwd_direct_max_wkib", "fwd_direct_s2_max_wkib", "fwd_direct_max_pixels"),
    ("fwd_direct_wide_pixels",),
    ("fwd_1x1_s2_direct_max_og",),
    ("fwd_1x1_direct_max_og", "fwd_1x1_small_pixels", "fwd_1x1_direct_min_cg", "fwd_1x1_direct_min_ratio"),
    ("bwd_dw_im2col_min_d", "bwd_dw_direct_pixels", "bwd_dw_small_pixels"),
    ("bwd_dw_s2_direct_pixels", "bwd_dw_s2_direct_min_k"),
    ("gin_dw_direct_pixels", "gin_dw_small_pixels"),
    ("gin_dw_s2_direct_pixels", "gin_dw_s2_direct_min_k"),
    ("bwd_dilated_pad",),
    ("bwd_grouped_direct_min_cg",),
    ("gin_grouped_direct_min_cg",),
    ("gin_grouped_band_min_c", "gin_grouped_band_max_c", "gin_grouped_band_pixels"),
    ("bwd_direct_max_wkib", "bwd_direct_min_pixels", "bwd_direct_free_wkib"),
    ("bwd_direct_s2_max_wkib",),
    ("bwd_sparse_max_stride",),
    ("bwd_1x1_direct_max_c", "bwd_1x1_direct_min_og", "bwd_1x1_direct_min_pixels"),
    ("gin_direct_max_wkib",),
    # (jointly: the dense small-plane limit and the grouped one reach the same rows)
    ("gin_direct_min_pixels", "gin_direct_free_wkib", "gin_grouped_small_min_c", "gin_grouped_small_pixels"),
    ("gin_direct_s2_max_wkib", "gin_few_s2_im2col_min_k"),
    ("gin_1x1_direct_max_c", "gin_1x1_direct_min_og", "gin_1x1_direct_min_pixels"),
    ("bwd_dilated_max_cg",),
    ("bwd_dilated_min_k", "bwd_dilated_k_pixels", "bwd_dilated_k_max_pixels"),
    ("bwd_dilated_k_max_wkib",),
]


def _pad_fraction(shape):
    """Fraction of the dense (output, tap) pairs whose tap reads padding.

    The space-to-batch algorithm skips those taps; the other algorithms
    multiply by the zeros (cost.py's effective vs dense mults).
    """
    (_, _, h, w, _, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw, _) = shape
    useful = 1.0
    for size, k, out, s, p, d in ((h, kh, ho, sh, ph, dh), (w, kw, wo, sw, pw, dw)):
        if out <= 0 or k <= 0:
            return 0.0
        valid = 0
        for t in range(k):
            lo = max(0, -((t * d - p) // s))                 # ceil((p - t*d) / s)
            hi = min(out - 1, (size - 1 + p - t * d) // s)
            valid += max(0, hi - lo + 1)
        useful *= valid / (k * out)
    return 1.0 - useful


# Fewer input channels than this: a stem layer (RGB, RGBA).
_FEW_CHANNELS = 4

# The GEMM-based paths need this many channels per group (below it, BLAS
# micro-tiles run mostly empty and conv_dilated.c falls back to direct).
_GEMM_MIN_CHANNELS = 8


def _grouped_gemm_wins(c, pixels, band_min, band_max, band_pixels, small_c, small_pixels):
    """Grouped layers (not depthwise) where the BLAS beats the direct kernel.

    `c` is the pass's output channels per group (the direct kernels vectorise
    over them): a band of them that leaves the tile's vectors partly empty
    (AVX-512: 8-15 fall to the 8-lane AVX2 tile) on planes large enough for
    the GEMM to stream, or wide groups on tiny planes (few pixel tiles per
    group).
    """
    return band_min <= c < band_max and pixels >= band_pixels or c >= small_c and pixels <= small_pixels


def choose(op, shape, available, isa, dtype="float32", threads=1, needs=None, rules=None):
    """Algorithm name for one call.

    Parameters
    ----------
    op : str
        ``"conv2d"``, ``"conv2d_backward"`` or ``"conv_transpose2d"``.
    shape : tuple
        The C conv shape tuple of the forward convolution
        ``(n, c_in, h_in, w_in, c_out, kh, kw, h_out, w_out, sh, sw, ph, pw, dh, dw, groups)``.
    available : sequence of str
        Algorithms usable for ``op`` in this process.
    isa : str
        ``"avx512"``, ``"avx2"`` or ``"baseline"`` (an ISA without a fitted
        table uses its fallback's).
    dtype : str
        ``"float32"`` or ``"float64"``.
    threads : int
        fastconv's kernel threads.
    needs : sequence of str, optional
        For ``conv2d_backward``, the gradients asked for.
    rules : dict, optional
        Thresholds to use instead of ``rules_for(dtype, isa)`` (for fitting).

    Returns
    -------
    str
        One of `available` (never ``"auto"``).
    """
    r = _rules(dtype, isa) if rules is None else rules
    (n, c_in, _, _, c_out, kh, kw, ho, wo, sh, sw, _, _, dh, dw, g) = shape
    g = max(int(g), 1)
    cg, og = c_in // g, c_out // g
    k = kh * kw
    stride, dil = max(sh, sw), max(dh, dw)
    pixels = n * ho * wo
    itemsize = 8 if str(dtype) == "float64" else 4
    wkib = og * cg * k * itemsize / 1024          # one group's weights
    has_dil = "dilated" in available
    if "im2col" not in available:       # no BLAS: the GEMM paths are gone
        return "direct"
    depthwise = g > 1 and cg == 1

    if op == "conv2d":
        if depthwise:
            if dil >= r["fwd_dw_im2col_min_d"]:
                return "im2col"
            if has_dil and stride == 1 and k >= r["fwd_dw_dilated_min_k"]:
                return "dilated"
            return "direct"
        if min(cg, og) < r["fwd_few_channels"]:
            if cg * k >= r["fwd_first_im2col_K"] and og >= 32:
                return "im2col"
            if has_dil and stride > 1 and k >= r["fwd_few_dilated_min_k"]:
                return "dilated"
            return "direct"
        wide = wkib > r["fwd_direct_max_wkib"]
        if has_dil and dil > 1 and (_pad_fraction(shape) >= r["fwd_dilated_pad"]
                                    or wide and pixels >= r["fwd_dilated_wide_pixels"]):
            return "dilated"
        if g > 1 and (cg > r["fwd_grouped_direct_max_cg"] or _grouped_gemm_wins(
                og, pixels, r["fwd_grouped_band_min_c"], r["fwd_grouped_band_max_c"],
                r["fwd_grouped_band_pixels"], r["fwd_grouped_small_min_c"], r["fwd_grouped_small_pixels"])):
            return "im2col"
        if k == 1:
            ok = (og <= r["fwd_1x1_direct_max_og"] or ho * wo <= r["fwd_1x1_small_pixels"]
                  or cg >= r["fwd_1x1_direct_min_cg"] or cg >= r["fwd_1x1_direct_min_ratio"] * og
                  or stride > 1 and og <= r["fwd_1x1_s2_direct_max_og"])
        else:
            limit = r["fwd_direct_max_wkib"] if stride == 1 else r["fwd_direct_s2_max_wkib"]
            ok = (wkib <= limit or pixels >= r["fwd_direct_wide_pixels"]) and pixels <= r["fwd_direct_max_pixels"]
        return "direct" if ok else "im2col"

    # conv2d_backward, conv_transpose2d (grad input)
    p = "gin_" if op == "conv_transpose2d" else "bwd_"
    if stride > max(kh, kw) and stride > r["bwd_sparse_max_stride"]:
        # the direct grad input is polyphase: stride_h*stride_w sub-convolutions,
        # most of them empty when the stride exceeds the kernel (and a hang for
        # a stride near 2**62); at stride 2 the empty phases only zero their
        # positions
        return "im2col"
    if op == "conv_transpose2d" and cg < _FEW_CHANNELS and stride > 1 and k >= r["gin_few_s2_im2col_min_k"]:
        # stems: the polyphase direct grad input makes cg (3) channels of a
        # kernel vectorised over output channels; the BLAS col2im wins
        return "im2col"
    if depthwise:
        if dil >= r["bwd_dw_im2col_min_d"]:
            return "im2col"
        if stride == 1:
            ok = pixels >= r[p + "dw_direct_pixels"] or pixels <= r[p + "dw_small_pixels"]
        else:
            ok = pixels >= r[p + "dw_s2_direct_pixels"] or k >= r[p + "dw_s2_direct_min_k"]
        return "direct" if ok else "im2col"
    gemm_ok = has_dil and cg >= _GEMM_MIN_CHANNELS and og >= _GEMM_MIN_CHANNELS
    if gemm_ok and dil > 1 and _pad_fraction(shape) >= r["bwd_dilated_pad"]:
        return "dilated"
    # dilated's per-tap GEMMs: narrow ungrouped layers (grad input alone makes
    # cg channels; with grad weight (og x cg per tap) either side narrow
    # counts), and stride-1 kernels on mid-sized planes with not too wide weights
    narrow = cg if op == "conv_transpose2d" else min(cg, og)
    per_tap = gemm_ok and (
        g == 1 and narrow <= r["bwd_dilated_max_cg"]
        or (stride == 1 and k >= r["bwd_dilated_min_k"]
            and r["bwd_dilated_k_pixels"] <= pixels <= r["bwd_dilated_k_max_pixels"]
            and wkib <= r["bwd_dilated_k_max_wkib"] and (g == 1 or cg > r["bwd_dilated_max_cg"])))
    if g > 1 and cg < r[p + "grouped_direct_min_cg"]:
        direct = False
    elif g > 1 and op == "conv_transpose2d" and _grouped_gemm_wins(
            cg, pixels, r["gin_grouped_band_min_c"], r["gin_grouped_band_max_c"],
            r["gin_grouped_band_pixels"], r["gin_grouped_small_min_c"], r["gin_grouped_small_pixels"]):
        direct = False
    elif k == 1:    # the pass's output channels: grad input makes cg, grad weight og x cg
        # direct when they are few, or when og (grad input's reduction, grad
        # weight's rows) is deep enough on a plane that is not tiny
        direct = ((cg if op == "conv_transpose2d" else og) <= r[p + "1x1_direct_max_c"]
                  or og >= r[p + "1x1_direct_min_og"] and pixels >= r[p + "1x1_direct_min_pixels"])
    else:
        limit = r[p + "direct_max_wkib"] if stride == 1 else r[p + "direct_s2_max_wkib"]
        # wide weights on a small plane: the BLAS's blocking wins
        direct = wkib <= limit and (wkib <= r[p + "direct_free_wkib"] or pixels >= r[p + "direct_min_pixels"])
    if direct:
        return "direct"
    return "dilated" if per_tap else "im2col"
