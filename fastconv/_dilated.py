"""What the space-to-batch dilated convolution (``algo="dilated"``) can serve.

Along one axis with stride s and dilation d, let g = gcd(s, d): the outputs
o = r + (d/g)*q of residue class r read only the padded positions s*r + d*m,
on which they form a dense convolution with stride s/g.  So every positive
(stride, dilation) pair decomposes exactly into (d_h/g_h) x (d_w/g_w)
sub-images, for any padding and groups; see csrc/conv_dilated.c.
"""


def can_serve(stride, dilation):
    """Whether ``algo="dilated"`` serves this stride and dilation.

    Parameters
    ----------
    stride, dilation : tuple of (int, int)

    Returns
    -------
    (bool, str)
        ``(True, "")`` when served, else ``(False, reason)`` naming the argument.
    """
    for name, pair in (("stride", stride), ("dilation", dilation)):
        if any(int(v) < 1 for v in pair):
            return False, f"{name}={tuple(pair)} must be positive"
    return True, ""


def classes(stride, dilation):
    """Sub-images per axis (d / gcd(s, d)) and the stride of their dense convolution (s / gcd)."""
    from math import gcd
    out = []
    for s, d in zip(stride, dilation):
        g = gcd(int(s), int(d))
        out.append((int(d) // g, int(s) // g))
    return tuple(out)
