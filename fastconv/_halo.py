"""Halo arithmetic for running layer stacks block by block (no dask here).

`fastconv.dask` cuts an NCHW array into blocks along H and W, gives every
block a halo (the neighbours' rows and columns its outputs read) and runs
the in-memory kernels on each block.  This module holds the arithmetic,
one spatial axis at a time, so it can be reasoned about (and tested)
without a scheduler:

* `Step` is one layer along one axis: kernel ``k``, stride ``s``, dilation
  ``d``, padding before ``lo`` (and after ``hi``: only the output size
  uses it) and pooling's ``ceil_mode``.  Output ``o`` reads the inputs
  ``[o*s - lo, o*s - lo + (k-1)*d + 1)``; positions outside ``[0, n)`` are
  padding.
* `AxisPlan` maps a stack of steps over an axis of length ``n`` to output
  blocks ``[out[i], out[i+1])`` and stride-aligned input chunks
  ``[cuts[i], cuts[i+1])`` (``cuts[i] = out[i] * jump``), with one halo
  ``(before, after)`` for every chunk taken from
  ``fastconv.cost.receptive_field``: a block of outputs ``[a, b)`` reads
  inputs ``[a*J - P, (b-1)*J - P + S)`` where ``S``, ``J`` are the
  receptive field's size and jump and ``P`` the padding it spans.
* `AxisPlan.windows(i)` walks the stack backwards for block ``i``: per
  layer, the range of that layer's outputs the block needs and the
  explicit padding to add at the true borders (never at a chunk edge).

Chunks are realigned to multiples of the stack's jump and merged until
every chunk is at least as large as the halo (dask's overlap only reaches
the next neighbour).
"""
from dataclasses import dataclass
from . import cost as _cost

__all__ = ["Step", "AxisPlan", "out_size"]


@dataclass(frozen=True)
class Step:
    """One layer along one axis."""
    k: int
    s: int
    d: int
    lo: int
    hi: int
    ceil_mode: bool = False

    @property
    def ext(self):
        """Span of one window: ``(k-1)*d + 1``."""
        return (self.k - 1) * self.d + 1


def out_size(step, n):
    """Output length of `step` over an input of length `n` (PyTorch's formulas).

    Floor mode: ``(n + lo + hi - ext) // s + 1``.  Ceil mode (pooling):
    rounds up, but the last window must start inside the input or the left
    padding.
    """
    num = n + step.lo + step.hi - step.ext
    if not step.ceil_mode:
        return num // step.s + 1 if num >= 0 else 0
    out = -(-num // step.s) + 1
    if (out - 1) * step.s >= n + step.lo:
        out -= 1
    return out


@dataclass(frozen=True)
class Window:
    """What block ``i`` computes for one layer along one axis.

    The layer's outputs ``[q0, q1)`` read inputs ``[need0, need1)``: the
    part inside ``[0, n_in)`` comes from the previous layer (or the input),
    ``pad_before``/``pad_after`` positions are the true border's padding.
    """
    q0: int
    q1: int
    need0: int
    need1: int
    n_in: int

    @property
    def src(self):
        """Range of real inputs read, clipped to ``[0, n_in]`` (empty if all padding)."""
        lo = min(max(0, self.need0), self.n_in)
        return lo, max(min(self.n_in, self.need1), lo)

    @property
    def pad_before(self):
        return max(0, min(self.need1, 0) - self.need0)

    @property
    def pad_after(self):
        return max(0, self.need1 - max(self.need0, self.n_in))

    @property
    def length(self):
        """Padded input length handed to the kernel (``need1 - need0``)."""
        return self.need1 - self.need0


class AxisPlan:
    """Blocks, chunks and halos of a stack of `steps` along one axis.

    Parameters
    ----------
    steps : sequence of Step
    n : int
        Input length along the axis.
    chunks : sequence of int
        The input's chunk sizes along the axis (they sum to `n`).

    Attributes
    ----------
    sizes : list of int
        ``[n, n_1, ..., n_L]``: input and every layer's output length.
    jump, size, pad : int
        Receptive field of the stack: stride product ``J``, size ``S`` and
        the padding it spans ``P`` (inputs ``[o*J - P, o*J - P + S)`` feed
        output ``o``).
    before, after : int
        Halo taken from the previous / next chunk (``P`` and
        ``max(0, S - J - P)``).
    out : tuple of int
        Output block boundaries ``0 = out[0] < ... < out[-1] = n_L``.
    cuts : tuple of int
        Input chunk boundaries ``0 = cuts[0] < ... < cuts[-1] = n``;
        ``cuts[i] = out[i] * J`` inside.
    chunks : tuple of int
        ``diff(cuts)``: the input chunking the plan needs.
    out_chunks : tuple of int
        ``diff(out)``.
    """

    def __init__(self, steps, n, chunks):
        self.steps = tuple(steps)
        self.n = int(n)
        sizes = [self.n]
        for st in self.steps:
            sizes.append(out_size(st, sizes[-1]))
        self.sizes = sizes
        n_out = sizes[-1]
        if self.steps:
            rf = _cost.receptive_field([(st.k, st.s, st.d, st.lo) for st in self.steps])[-1]
            size, jump, start = int(rf.size), int(rf.jump), rf.start
            pad2 = (size - 1) - int(round(2 * start))   # P = (S-1)/2 - start, kept exact
            assert pad2 % 2 == 0
            pad = pad2 // 2
        else:
            size, jump, pad = 1, 1, 0
        self.size, self.jump, self.pad = size, jump, pad
        self.before = pad
        self.after = max(0, size - jump - pad)
        self.out = self._blocks(chunks, n_out)
        self.cuts = (0,) + tuple(o * jump for o in self.out[1:-1]) + (self.n,)
        self.chunks = tuple(b - a for a, b in zip(self.cuts, self.cuts[1:]))
        self.out_chunks = tuple(b - a for a, b in zip(self.out, self.out[1:]))

    def _blocks(self, chunks, n_out):
        """Output boundaries nearest the input's chunk boundaries, merged until big enough."""
        jump = self.jump
        bounds = []
        edge = 0
        for c in list(chunks)[:-1]:
            edge += int(c)
            o = (2 * edge + jump) // (2 * jump)         # nearest multiple of the jump
            if 0 < o < n_out and 0 < o * jump < self.n and (not bounds or o > bounds[-1]):
                bounds.append(o)
        need = max(self.before, self.after, 1)
        kept, prev = [], 0
        for o in bounds:                                # every chunk >= the halo it lends
            if o * jump - prev >= need:
                kept.append(o)
                prev = o * jump
        while kept and self.n - kept[-1] * jump < need:
            kept.pop()
        return (0,) + tuple(kept) + (n_out,)

    @property
    def nblocks(self):
        return len(self.out) - 1

    @property
    def depth(self):
        """``(before, after)`` for ``dask.array.overlap.overlap`` (none with one block)."""
        return (self.before, self.after) if self.nblocks > 1 else (0, 0)

    def halo(self, i):
        """``(before, after)`` halo block `i` receives (none past the true borders)."""
        return (self.before if i > 0 else 0, self.after if i < self.nblocks - 1 else 0)

    def received(self, i):
        """Global input range ``[r0, r1)`` that block `i` holds (its chunk plus halo)."""
        b, a = self.halo(i)
        return self.cuts[i] - b, min(self.n, self.cuts[i + 1] + a)

    def signature(self, i):
        """Block `i`'s plan up to translation: blocks with equal signatures cost the same."""
        r0, r1 = self.received(i)
        sig, off = [r1 - r0], r0
        for w in self.windows(i):
            s0, s1 = w.src
            sig.append((w.q1 - w.q0, w.length, w.pad_before, w.pad_after, s0 - off, s1 - s0))
            off = w.q0
        return tuple(sig)

    def windows(self, i):
        """Per layer (first to last), the `Window` block `i` computes."""
        q0, q1 = self.out[i], self.out[i + 1]
        wins = []
        for st, n_in in zip(reversed(self.steps), reversed(self.sizes[:-1])):
            need0 = q0 * st.s - st.lo
            need1 = (q1 - 1) * st.s - st.lo + st.ext if q1 > q0 else need0
            wins.append(Window(q0, q1, need0, need1, n_in))
            q0, q1 = Window(q0, q1, need0, need1, n_in).src
        wins.reverse()
        r0, r1 = self.received(i)
        first = wins[0].src if wins else (r0, r1)
        assert r0 <= first[0] and first[1] <= r1 or first[0] >= first[1], (i, r0, r1, first)
        return wins
