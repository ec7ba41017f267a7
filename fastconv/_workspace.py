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
    raise ValueError(f"algo={algo!r}: no workspace model for this algorithm")
