"""``fastconv.summary``: a textbook table of a small CNN's costs.

For every layer: input and output shape, kernel, parameters, multiplications
and additions (exact, the conventions of ``fastconv.cost``: dense, padding
taps counted), comparisons (max pooling), and the receptive field after the
layer (size, jump, start; see ``fastconv.cost.receptive_field``), plus a
totals row.
"""
import re

from . import cost as _cost
from . import _layers
from . import _args

__all__ = ["summary", "Summary"]


def _parse_shape(input_shape):
    if isinstance(input_shape, str):
        parts = re.split(r"\s*[xX,]\s*", input_shape.strip())
        if not all(re.fullmatch(r"\d+", p) for p in parts):
            raise ValueError(f"input_shape must look like '3x256x256', got {input_shape!r}")
        input_shape = tuple(int(p) for p in parts)
    if not hasattr(input_shape, "__len__"):
        raise TypeError(f"input_shape must be (C, H, W) or (N, C, H, W), got {input_shape!r}")
    shape = tuple(_args.as_int(v, "input_shape", minimum=0) for v in input_shape)
    if len(shape) not in (3, 4):
        raise ValueError(f"input_shape must be (C, H, W) or (N, C, H, W), got {shape!r}")
    return shape


def _dims(v):
    return str(v[0]) if v[0] == v[1] else f"{v[0]}x{v[1]}"


def _num(v):
    return f"{v:,}" if isinstance(v, int) else str(v)


def _start(v):
    return ",".join(str(int(e)) if e == int(e) else str(e) for e in ((v[0],) if v[0] == v[1] else v))


def _shape_str(shape):
    return "x".join(str(s) for s in shape)


class Summary:
    """Result of `summary`: ``str()`` is the table; ``rows`` and ``totals`` are data.

    Attributes
    ----------
    rows : list of dict
        One per layer with keys ``layer``, ``type``, ``input_shape``,
        ``output_shape``, ``kernel`` (pair or None), ``stride`` (pair or
        None), ``params``, ``mults``, ``adds``, ``comparisons``, ``flops``,
        ``effective_mults``, ``effective_adds``, ``rf_size``, ``rf_jump``,
        ``rf_start`` (pairs, height then width).
    totals : dict
        Sums of ``params``, ``mults``, ``adds``, ``comparisons``, ``flops``,
        ``effective_mults``, ``effective_adds``.
    input_shape, output_shape : tuple
        Batch dimension included only when the input had one.
    """

    _COLUMNS = ("#", "layer", "input", "output", "kernel", "params", "mults", "adds", "cmps",
                "rf size", "rf jump", "rf start")
    _NUMERIC = {"params", "mults", "adds", "cmps", "rf size", "rf jump", "rf start", "#"}

    def __init__(self, rows, input_shape):
        self.rows = rows
        self.input_shape = input_shape
        self.output_shape = rows[-1]["output_shape"] if rows else input_shape
        keys = ("params", "mults", "adds", "comparisons", "flops", "effective_mults",
                "effective_adds")
        self.totals = {k: sum(r[k] for r in rows) for k in keys}

    def _cells(self):
        body = []
        for i, r in enumerate(self.rows, 1):
            body.append([
                str(i), r["layer"], _shape_str(r["input_shape"]), _shape_str(r["output_shape"]),
                f"{r['kernel'][0]}x{r['kernel'][1]}" if r["kernel"] else "-", _num(r["params"]), _num(r["mults"]),
                _num(r["adds"]), _num(r["comparisons"]), _dims(r["rf_size"]),
                _dims(r["rf_jump"]), _start(r["rf_start"])])
        t = self.totals
        body.append(["", "total", "", "", "", _num(t["params"]), _num(t["mults"]), _num(t["adds"]),
                     _num(t["comparisons"]), "", "", ""])
        return body

    def __str__(self):
        body = self._cells()
        head = list(self._COLUMNS)
        widths = [max(len(row[i]) for row in body + [head]) for i in range(len(head))]

        def line(cells):
            out = []
            for name, cell, w in zip(head, cells, widths):
                out.append(cell.rjust(w) if name in self._NUMERIC else cell.ljust(w))
            return "  ".join(out).rstrip()

        rule = "-" * len(line(head))
        lines = [line(head), rule] + [line(c) for c in body[:-1]] + [rule, line(body[-1])]
        lines.append(f"flops (mults + adds + cmps): {self.totals['flops']:,}; input "
                     f"{_shape_str(self.input_shape)}, output {_shape_str(self.output_shape)}")
        return "\n".join(lines)

    def __repr__(self):
        return str(self)


def summary(layers, input_shape):
    """Per-layer table of shapes, parameters, exact op counts and receptive field.

    Parameters
    ----------
    layers : str or list
        A layer-grammar string, e.g.
        ``"conv(64,5,s=2,p=2) conv(128,7,s=2) maxpool(2) flatten fc(10)"``
        (``conv(out, k, s=1, p=0, d=1, g=1, bias=1)``, ``maxpool(k, s=k, p=0)``,
        ``avgpool(k, s=k, p=0)``, ``flatten``, ``fc(out, bias=1)``; ``k, s, p, d``
        take an int or ``AxB``), or a list of layer objects / spec strings /
        tuples like ``("conv", 64, 5, {"s": 2})``.
    input_shape : tuple or str
        ``(C, H, W)`` or ``(N, C, H, W)``, or a string such as ``"3x256x256"``.

    Returns
    -------
    Summary
        ``str()`` is the table; ``.rows`` (list of dict) and ``.totals`` the data.

    Notes
    -----
    Counts follow ``fastconv.cost`` (dense: padding taps counted): a conv or
    fc output costs ``C_in/groups*kH*kW`` mults and as many adds with a bias
    (one fewer without); avg pooling ``k*k - 1`` adds and 1 mult per output,
    max pooling ``k*k - 1`` comparisons.  Receptive field: ``size``,
    ``jump`` and ``start`` (input coordinate of the centre of the first
    output's field; pixel i has centre i).  An ``fc`` layer sees its whole
    input, so it acts on the receptive field as a kernel the size of the last
    spatial grid.
    """
    specs = _layers.as_layers(layers)
    shape = _parse_shape(input_shape)
    batched = len(shape) == 4
    cur = shape if batched else (1,) + shape        # (N, C, H, W) or (N, F) after flatten
    grid = cur[2:]                                   # spatial grid the next fc would cover
    rf_layers = []
    rows = []
    for i, layer in enumerate(specs):
        where = f"layer {i + 1} ({layer})"
        kernel = stride = None
        c = None
        try:
            if isinstance(layer, _layers.Conv):
                if len(cur) != 4:
                    raise ValueError("a conv layer needs a C x H x W input (it follows a flatten or fc)")
                if cur[1] % layer.groups:
                    raise ValueError(f"{cur[1]} input channels are not divisible by g={layer.groups}")
                c = _cost.conv2d(cur, (layer.out, cur[1] // layer.groups) + layer.kernel,
                                 stride=layer.stride, padding=layer.padding,
                                 dilation=layer.dilation, groups=layer.groups, bias=layer.bias)
                kernel, stride = layer.kernel, layer.stride
                if isinstance(layer.padding, str):
                    span = [(k - 1) * d for k, d in zip(layer.kernel, layer.dilation)]
                    pad = (span[0] // 2, span[1] // 2) if layer.padding == "same" else (0, 0)
                else:
                    pad = layer.padding
                rf_layers.append((layer.kernel, layer.stride, layer.dilation, pad))
            elif isinstance(layer, _layers.Pool):
                if len(cur) != 4:
                    raise ValueError("a pooling layer needs a C x H x W input")
                fn = _cost.max_pool2d if layer.mode == "max" else _cost.avg_pool2d
                c = fn(cur, layer.kernel, layer.stride, layer.padding)
                kernel, stride = layer.kernel, layer.stride
                rf_layers.append((layer.kernel, layer.stride, (1, 1), layer.padding))
            elif isinstance(layer, _layers.Flatten):
                out = (cur[0], _prod(cur[1:]))
            elif isinstance(layer, _layers.FC):
                feats = _prod(cur[1:])
                c = _cost.conv2d((cur[0], feats, 1, 1), (layer.out, feats, 1, 1), bias=layer.bias)
                # one output sees the whole grid: a kernel the size of the grid, stride 1
                rf_layers.append((tuple(grid), (1, 1), (1, 1), (0, 0)))
                grid = (1, 1)
            else:  # as_layers only returns the four kinds
                raise TypeError(f"unknown layer {layer!r}")
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        if c is not None:
            out = c.output_shape if not isinstance(layer, _layers.FC) else (cur[0], layer.out)
            if len(out) == 4:
                grid = out[2:]
        rf = _cost.receptive_field(rf_layers)[-1] if rf_layers else \
            _cost.ReceptiveField((1, 1), (1, 1), (0, 0))
        if not isinstance(rf.size, tuple):   # receptive_field gives scalars for all-int input
            rf = _cost.ReceptiveField(*((v, v) for v in rf))
        rows.append({
            "layer": str(layer), "type": layer.kind,
            "input_shape": cur if batched else cur[1:],
            "output_shape": tuple(out) if batched else tuple(out)[1:],
            "kernel": kernel, "stride": stride,
            "params": c.params if c else 0, "mults": c.mults if c else 0,
            "adds": c.adds if c else 0, "comparisons": c.comparisons if c else 0,
            "flops": c.flops if c else 0,
            "effective_mults": c.effective_mults if c else 0,
            "effective_adds": c.effective_adds if c else 0,
            "rf_size": rf.size, "rf_jump": rf.jump, "rf_start": rf.start,
        })
        cur = tuple(out)
    return Summary(rows, shape)


def _prod(shape):
    p = 1
    for v in shape:
        p *= v
    return p
