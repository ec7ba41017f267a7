"""The layer grammar used by ``fastconv.summary`` and ``fastconv summary``.

A network is a whitespace- (or comma/semicolon-) separated list of layers::

    conv(out, k, s=1, p=0, d=1, g=1, bias=1)
    maxpool(k, s=k, p=0)
    avgpool(k, s=k, p=0)
    flatten
    fc(out, bias=1)

``k``, ``s``, ``p`` and ``d`` take an int or ``AxB`` (height x width);
conv's ``p`` also takes ``same`` or ``valid``.  Arguments may be given by
position (in the order shown) or by name; the long names ``kernel``,
``stride``, ``padding``, ``dilation``, ``groups`` are accepted too.

`parse` turns a string into layer objects (`Conv`, `Pool`, `Flatten`, `FC`);
`as_layers` also accepts a list mixing layer objects, spec strings and
tuples such as ``("conv", 64, 5, {"s": 2})``.  Bad specs raise ValueError
naming the offending token.
"""
import re
from dataclasses import dataclass
from typing import Tuple, Union

__all__ = ["Conv", "Pool", "Flatten", "FC", "parse", "as_layers"]

Pair = Tuple[int, int]


def _fmt_pair(v):
    return str(v[0]) if v[0] == v[1] else f"{v[0]}x{v[1]}"


@dataclass(frozen=True)
class Conv:
    """2-D convolution layer: `out` channels, kernel/stride/padding/dilation pairs."""
    out: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Union[Pair, str] = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True

    kind = "conv"

    def __str__(self):
        s = f"conv({self.out},{_fmt_pair(self.kernel)}"
        if self.stride != (1, 1):
            s += f",s={_fmt_pair(self.stride)}"
        if self.padding != (0, 0):
            s += f",p={self.padding if isinstance(self.padding, str) else _fmt_pair(self.padding)}"
        if self.dilation != (1, 1):
            s += f",d={_fmt_pair(self.dilation)}"
        if self.groups != 1:
            s += f",g={self.groups}"
        if not self.bias:
            s += ",bias=0"
        return s + ")"


@dataclass(frozen=True)
class Pool:
    """Max or average pooling layer (`mode` is ``"max"`` or ``"avg"``)."""
    mode: str
    kernel: Pair
    stride: Pair
    padding: Pair = (0, 0)

    @property
    def kind(self):
        return self.mode + "pool"

    def __str__(self):
        s = f"{self.kind}({_fmt_pair(self.kernel)}"
        if self.stride != self.kernel:
            s += f",s={_fmt_pair(self.stride)}"
        if self.padding != (0, 0):
            s += f",p={_fmt_pair(self.padding)}"
        return s + ")"


@dataclass(frozen=True)
class Flatten:
    """Flattens C x H x W to one feature vector per sample."""
    kind = "flatten"

    def __str__(self):
        return "flatten"


@dataclass(frozen=True)
class FC:
    """Fully connected layer with `out` features (flattens its input first)."""
    out: int
    bias: bool = True

    kind = "fc"

    def __str__(self):
        return f"fc({self.out})" if self.bias else f"fc({self.out},bias=0)"


# name -> (positional parameter order, aliases of long names, required count)
_PARAMS = {
    "conv": (("out", "k", "s", "p", "d", "g", "bias"), 2),
    "maxpool": (("k", "s", "p"), 1),
    "avgpool": (("k", "s", "p"), 1),
    "flatten": ((), 0),
    "fc": (("out", "bias"), 1),
}
_ALIASES = {"kernel": "k", "kernel_size": "k", "stride": "s", "padding": "p", "dilation": "d",
            "groups": "g", "out_channels": "out", "out_features": "out"}
_INT = re.compile(r"^\d+$")
_PAIR = re.compile(r"^(\d+)\s*[xX]\s*(\d+)$")


def _bad(token, why):
    return ValueError(f"bad layer spec {token!r}: {why}")


def _value(token, key, raw, pair_ok, minimum, words=()):
    raw = raw.strip() if isinstance(raw, str) else raw
    if isinstance(raw, str):
        if raw in words:
            return raw
        m = _PAIR.match(raw)
        if m and pair_ok:
            v = (int(m.group(1)), int(m.group(2)))
        elif _INT.match(raw):
            v = int(raw)
        else:
            kinds = "an int or AxB" if pair_ok else "an int"
            if words:
                kinds += " or " + "/".join(words)
            raise _bad(token, f"{key}={raw!r} is not {kinds}")
    elif isinstance(raw, bool) and key == "bias":
        v = int(raw)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        v = raw
    elif pair_ok and isinstance(raw, (tuple, list)) and len(raw) == 2 and all(
            isinstance(e, int) and not isinstance(e, bool) for e in raw):
        v = tuple(raw)
    else:
        raise _bad(token, f"{key}={raw!r} has the wrong type")
    if isinstance(v, str):
        return v
    pair = v if isinstance(v, tuple) else (v, v)
    if min(pair) < minimum:
        raise _bad(token, f"{key} must be >= {minimum}, got {raw!r}")
    return pair if pair_ok else v


def _build(token, name, args, kwargs):
    """Make a layer object from positional/keyword raw values (strings or ints)."""
    if name not in _PARAMS:
        raise _bad(token, f"unknown layer {name!r} (expected one of {', '.join(_PARAMS)})")
    order, required = _PARAMS[name]
    if len(args) > len(order):
        raise _bad(token, f"{name} takes at most {len(order)} arguments ({', '.join(order)}), "
                          f"got {len(args)}")
    vals = dict(zip(order, args))
    for key, raw in kwargs.items():
        key = _ALIASES.get(key, key)
        if key not in order:
            raise _bad(token, f"{name} has no argument {key!r} (expected {', '.join(order) or 'none'})")
        if key in vals:
            raise _bad(token, f"argument {key!r} given twice")
        vals[key] = raw
    missing = [k for k in order[:required] if k not in vals]
    if missing:
        raise _bad(token, f"{name} needs {', '.join(missing)}")

    def get(key, pair_ok, minimum, default, words=()):
        if key not in vals:
            return default
        return _value(token, key, vals[key], pair_ok, minimum, words)

    if name == "conv":
        bias = get("bias", False, 0, 1)
        if bias not in (0, 1):
            raise _bad(token, f"bias must be 0 or 1, got {vals['bias']!r}")
        return Conv(out=get("out", False, 1, None), kernel=get("k", True, 1, None),
                    stride=get("s", True, 1, (1, 1)),
                    padding=get("p", True, 0, (0, 0), words=("same", "valid")),
                    dilation=get("d", True, 1, (1, 1)), groups=get("g", False, 1, 1),
                    bias=bool(bias))
    if name in ("maxpool", "avgpool"):
        k = get("k", True, 1, None)
        return Pool(mode=name[:3], kernel=k, stride=get("s", True, 1, k),
                    padding=get("p", True, 0, (0, 0)))
    if name == "fc":
        bias = get("bias", False, 0, 1)
        if bias not in (0, 1):
            raise _bad(token, f"bias must be 0 or 1, got {vals['bias']!r}")
        return FC(out=get("out", False, 1, None), bias=bool(bias))
    return Flatten()


_LAYER = re.compile(r"([A-Za-z_][A-Za-z_0-9]*)(?:\s*\(([^()]*)\))?")
_SEP = re.compile(r"[\s,;]*")


def _parse_one(token, name, body):
    args, kwargs = [], {}
    if body is not None and body.strip():
        for part in body.split(","):
            part = part.strip()
            if not part:
                raise _bad(token, "empty argument")
            if "=" in part:
                key, _, raw = part.partition("=")
                key = key.strip()
                if not re.match(r"^[A-Za-z_]\w*$", key):
                    raise _bad(token, f"bad argument name {key!r}")
                if key in kwargs:
                    raise _bad(token, f"argument {key!r} given twice")
                kwargs[key] = raw.strip()
            else:
                if kwargs:
                    raise _bad(token, f"positional argument {part!r} after a keyword argument")
                args.append(part)
    return _build(token, name.lower(), args, kwargs)


def parse(spec):
    """Parse a layer-grammar string into a list of layer objects.

    Parameters
    ----------
    spec : str
        For example ``"conv(64,5,s=2,p=2) conv(128,7,s=2) maxpool(2) flatten fc(10)"``.

    Returns
    -------
    list of Conv, Pool, Flatten, FC

    Raises
    ------
    ValueError
        Naming the offending token, for unknown layers, bad or missing
        arguments, or unparsable text.
    """
    if not isinstance(spec, str):
        raise TypeError(f"layers spec must be a string, got {type(spec).__name__}")
    layers = []
    pos = _SEP.match(spec, 0).end()
    while pos < len(spec):
        m = _LAYER.match(spec, pos)
        end = m.end() if m else pos
        if not m or (end < len(spec) and spec[end] not in " \t\r\n,;"):
            chunk = re.split(r"[\s;]", spec[pos:].strip(), maxsplit=1)[0]
            raise _bad(chunk, "cannot parse (expected name or name(args))")
        layers.append(_parse_one(m.group(0), m.group(1), m.group(2)))
        pos = _SEP.match(spec, end).end()
    if not layers:
        raise ValueError("layers spec is empty")
    return layers


def as_layers(layers):
    """Normalise `layers` (a spec string or a list of layers) to layer objects.

    List elements may be layer objects, spec strings (one or more layers) or
    tuples ``(name, *args)`` whose last element may be a dict of keyword
    arguments, e.g. ``("conv", 64, 5, {"s": 2, "p": 2})`` or ``("flatten",)``.
    """
    if isinstance(layers, str):
        return parse(layers)
    if isinstance(layers, (Conv, Pool, Flatten, FC)):
        return [layers]
    try:
        items = list(layers)
    except TypeError:
        raise TypeError(f"layers must be a spec string or a list of layers, got "
                        f"{type(layers).__name__}") from None
    out = []
    for item in items:
        if isinstance(item, (Conv, Pool, Flatten, FC)):
            out.append(item)
        elif isinstance(item, str):
            out.extend(parse(item))
        elif isinstance(item, (tuple, list)) and item and isinstance(item[0], str):
            args = list(item[1:])
            kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
            out.append(_build(repr(tuple(item)), item[0].lower(), args, dict(kwargs)))
        else:
            raise TypeError(f"layers: cannot interpret {item!r} as a layer "
                            f"(use a layer object, a spec string or a tuple ('conv', 64, 3, ...))")
    if not out:
        raise ValueError("layers is empty")
    return out
