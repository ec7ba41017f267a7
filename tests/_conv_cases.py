"""Awkward convolution configurations shared by the conv test files.

Each case: x shape, w shape (conv2d layout), stride, padding, dilation,
groups, bias.  Small enough that the whole grid runs in seconds; chosen to
hit every edge of the kernels: odd sizes, channels not a multiple of 8, 1x1,
kernel as large as the (padded) input, stride > kernel, dilation, groups incl.
depthwise, asymmetric pairs, "same" (with asymmetric padding) / "valid",
padding wider than the kernel, empty batch / channels, rows long enough for
the vector main loop plus a tail.
"""
import numpy as np
import pytest

from fastconv import config

CASES = {
    "basic_odd": ((2, 3, 7, 9), (5, 3, 3, 3), 1, 1, 1, 1, True),
    "asym_pairs_groups": ((1, 4, 8, 8), (6, 2, 3, 2), (2, 1), (1, 2), (2, 1), 2, False),
    "depthwise_kernel_eq_input": ((2, 6, 5, 5), (6, 1, 5, 5), 3, 0, 1, 6, True),
    "one_by_one": ((1, 3, 4, 4), (2, 3, 1, 1), 1, 0, 1, 1, False),
    "kernel_eq_input": ((1, 5, 6, 7), (3, 5, 6, 7), 1, 0, 1, 1, True),
    "stride_gt_kernel": ((2, 3, 9, 10), (4, 3, 2, 2), 3, 0, 1, 1, False),
    "same_dilated": ((1, 2, 11, 9), (3, 2, 3, 3), 1, "same", (2, 3), 1, True),
    "same_even_kernel": ((1, 3, 6, 5), (2, 3, 4, 2), 1, "same", 1, 1, False),
    "valid": ((1, 3, 6, 5), (2, 3, 3, 3), 1, "valid", 1, 1, True),
    "empty_batch": ((0, 3, 5, 5), (4, 3, 3, 3), 1, 1, 1, 1, True),
    "depthwise_stride2": ((2, 4, 5, 5), (4, 1, 3, 3), 2, 1, 1, 4, False),
    "groups3_odd_channels": ((1, 9, 7, 5), (12, 3, 3, 1), 1, (0, 1), 1, 3, True),
    "pad_wider_than_kernel": ((1, 4, 5, 5), (2, 4, 3, 3), 1, 3, 1, 1, False),
    "stride_pad_dil_pairs": ((1, 2, 13, 17), (3, 2, 3, 3), (2, 3), (2, 1), (3, 2), 1, True),
    "kernel_eq_padded_input": ((1, 2, 3, 4), (2, 2, 5, 6), 1, 1, 1, 1, False),
    "trivial": ((1, 1, 1, 1), (1, 1, 1, 1), 1, 0, 1, 1, True),
    "long_rows": ((1, 2, 3, 41), (2, 2, 1, 3), (1, 5), (0, 2), 1, 1, False),
    "long_rows_unit_stride": ((2, 3, 2, 37), (5, 3, 2, 3), 1, (1, 1), (1, 2), 1, True),
    "empty_out_channels": ((2, 3, 5, 5), (0, 3, 3, 3), 1, 1, 1, 1, False),
    "empty_in_channels": ((2, 0, 5, 5), (3, 0, 3, 3), 1, 1, 1, 1, True),
    # register tiles: 2-vector interior tiles, 1-vector tiles, borders, a 2-channel tail block
    "tiles_wide": ((1, 5, 4, 45), (6, 5, 3, 3), 1, (1, 2), 1, 1, True),
    "tiles_strided": ((1, 3, 5, 40), (8, 3, 2, 3), (1, 2), 1, 1, 1, False),
    "tiles_groups_dilated": ((1, 4, 3, 50), (10, 2, 1, 3), 1, (0, 3), (1, 3), 2, True),
    "gin_tiles_groups": ((2, 8, 6, 19), (6, 4, 3, 2), 1, (2, 1), (1, 2), 2, False),
    "zero_height_input_padded": ((1, 2, 0, 4), (3, 2, 3, 3), 1, 2, 1, 1, True),
}

# Big enough that the kernels really use 2 threads (bit-identity checks).
THREADED = {
    "threaded_3x3": ((2, 8, 16, 16), (8, 8, 3, 3), 1, 1, 1, 1, True),
    "threaded_groups_stride": ((3, 6, 17, 15), (9, 2, 3, 5), (2, 1), (1, 2), (1, 2), 3, False),
}

# PyTorch rejects zero channels; the reference handles them.
NO_TORCH = {"empty_out_channels", "empty_in_channels", "zero_height_input_padded"}


def unpack(case):
    return CASES[case] if case in CASES else THREADED[case]


def make(case, dtype, seed=0):
    """(x, w, bias-or-None, kwargs) for a case."""
    x_shape, w_shape, stride, padding, dilation, groups, has_bias = unpack(case)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, x_shape).astype(dtype)
    w = rng.uniform(-1, 1, w_shape).astype(dtype)
    b = rng.uniform(-1, 1, w_shape[0]).astype(dtype) if has_bias else None
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return x, w, b, kw


def conv_algos(op):
    """Every concrete algorithm name available for `op`, plus "auto"."""
    import fastconv.conv as conv
    return conv.algorithms(op)


def both_thread_counts(fn):
    """fn() under 1 and 2 threads: (result_1, result_2)."""
    with config._forced_runtime(threads=1):
        r1 = fn()
    with config._forced_runtime(threads=2):
        r2 = fn()
    return r1, r2


def assert_bit_identical(a, b):
    if a is None or b is None:
        assert a is None and b is None
        return
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes(), "results differ between thread counts"


class Recorder:
    """Stands in for a fastconv.profile() session: collects _record calls."""

    def __init__(self):
        self.records = []

    def _add(self, op, algo, cost_kwargs, seconds, workspace_bytes):
        self.records.append(dict(op=op, algo=algo, cost_kwargs=cost_kwargs, seconds=seconds,
                                 workspace_bytes=workspace_bytes))


@pytest.fixture
def recorder(monkeypatch):
    from fastconv import profile as _profile
    rec = Recorder()
    monkeypatch.setattr(_profile, "_active", [rec])
    return rec
