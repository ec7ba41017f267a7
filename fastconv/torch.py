"""PyTorch adapter: run ``torch.nn`` convolutions and poolings on fastconv.

Three lines put fastconv under an existing model::

    import fastconv.torch
    model = fastconv.torch.patch(model)   # every nn.Conv2d/ConvTranspose2d/MaxPool2d/AvgPool2d
    loss = model(x).sum(); loss.backward()  # forward and backward now run fastconv's kernels

What is here:

- ``Conv2dFunction``, ``ConvTranspose2dFunction``, ``MaxPool2dFunction``,
  ``AvgPool2dFunction``: ``torch.autograd.Function``s whose forward and
  backward call fastconv's public NumPy API (``fastconv.conv``,
  ``fastconv.pool``), so every call shows up in ``fastconv.profile()``.
  Their backward is not itself differentiable (double backward raises).
- ``conv2d``, ``conv_transpose2d``, ``max_pool2d``, ``avg_pool2d``: drop-ins
  for the ``torch.nn.functional`` functions of the same name.
- ``Conv2d``, ``ConvTranspose2d``, ``MaxPool2d``, ``AvgPool2d``: subclasses of
  the ``torch.nn`` modules (same constructor, parameters, ``state_dict`` keys,
  ``reset_parameters`` and repr) whose forward runs on fastconv.
- ``patch(model)`` / ``unpatch(model)``.

Tensors cross to NumPy without a copy when they are CPU tensors
(``t.detach().numpy()`` is a view; fastconv copies only what is not
C-contiguous) and results come back with ``torch.from_numpy`` (no copy).
What fastconv does not serve -- tensors off the CPU, dtypes other than
float32/float64, channels_last inputs, tensor subclasses, sparse layouts,
``padding_mode`` other than ``"zeros"``, TorchScript tracing and
``torch.compile`` -- runs on PyTorch's own implementation instead, with a
:class:`FallbackWarning` issued once per (layer class or function, reason).
Arguments fastconv rejects are handed to PyTorch the same way, so the user
gets PyTorch's result or PyTorch's error, never a different answer.

This is the only fastconv module that imports torch.
"""
# Absolute imports: inside this file ``torch`` is PyTorch, not fastconv.torch.
import os
import sys
import threading
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import forward_ad as _fwad
from torch.autograd.function import once_differentiable

from fastconv import conv as _conv
from fastconv import pool as _pool

__all__ = [
    "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "patch", "unpatch",
    "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d",
    "Conv2dFunction", "ConvTranspose2dFunction", "MaxPool2dFunction", "AvgPool2dFunction",
    "FallbackWarning",
]


class FallbackWarning(UserWarning):
    """A layer or function ran on PyTorch's implementation instead of fastconv."""


_FLOATS = (torch.float32, torch.float64)
# torch.compiler.is_compiling appeared in torch 2.3; the "torch" extra allows 2.1
_is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None) or (lambda: False)
_PLAIN_TENSORS = (torch.Tensor, nn.Parameter)
_MIXED = "mixed dtypes"
_warned = set()
_warned_lock = threading.Lock()


def _warn_once(name, reason):
    key = (name, reason)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(f"fastconv.torch.{name}: {reason} is not served by fastconv; using PyTorch's "
                  "implementation (this warning is shown once)", FallbackWarning,
                  stacklevel=_user_stacklevel())


_INTERNAL_DIRS = (os.path.dirname(os.path.abspath(__file__)) + os.sep,
                  os.path.dirname(os.path.abspath(torch.__file__)) + os.sep)


def _user_stacklevel():
    """warnings.warn stacklevel of the first caller outside fastconv and torch."""
    frame, level = sys._getframe(1), 1  # the frame of _warn_once is level 1 for warn()
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL_DIRS):
        frame, level = frame.f_back, level + 1
    return level


def _reset_warnings():
    """Forget which fallbacks were warned about (for tests)."""
    with _warned_lock:
        _warned.clear()


# ---------------------------------------------------------------- tensors <-> NumPy

def _np(t):
    """NumPy view of a CPU tensor: no copy (fastconv copies non-contiguous input itself)."""
    return t.detach().resolve_neg().numpy()


def _tensor(a):
    """Tensor sharing memory with a fresh NumPy result (None stays None)."""
    if a is None:
        return None
    if not (a.flags.writeable and a.flags.c_contiguous):
        a = np.array(a, order="C")
    return torch.from_numpy(a)


def _pair(v):
    """(a, b) from an int or a 1- or 2-sequence, as torch's IntArrayRef arguments."""
    if isinstance(v, (tuple, list, torch.Size)):
        if len(v) == 1:
            return int(v[0]), int(v[0])
        if len(v) == 2:
            return int(v[0]), int(v[1])
        raise ValueError(f"expected an int or a pair, got {v!r}")
    return int(v), int(v)


def _pool_stride(stride, kernel_size):
    # torch.nn.functional treats None and [] both as "stride = kernel_size"
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        return _pair(kernel_size)
    return _pair(stride)


def _conv_geometry(stride, padding, dilation):
    """Normalised geometry for fastconv ('same'/'valid' padding passes through)."""
    pad = padding if isinstance(padding, str) else _pair(padding)
    return _pair(stride), pad, _pair(dilation)


def _is_functorch(t):
    check = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return check is not None and check(t)


def _is_dual(t):
    # forward-mode AD tangents exist only inside a dual_level() context
    if getattr(_fwad, "_current_level", -1) < 0:
        return False
    return _fwad.unpack_dual(t).tangent is not None


def _why_not(tensors):
    """Why fastconv cannot serve these tensors, or None when it can."""
    if torch.jit.is_tracing():
        return "TorchScript tracing"
    if _is_compiling():
        return "torch.compile"
    dtype = tensors[0].dtype
    for t in tensors:
        if t is None:
            continue
        if type(t) not in _PLAIN_TENSORS:
            return f"tensor subclass {type(t).__name__}"
        if t.layout != torch.strided:
            return f"layout {t.layout}"
        if t.device.type != "cpu":
            return f"device {t.device.type}"
        if t.dtype not in _FLOATS:
            return f"dtype {t.dtype}"
        if t.dtype != dtype:
            return _MIXED
        if _is_functorch(t):
            return "torch.func transform (vmap, grad, ...)"
        if _is_dual(t):
            return "forward-mode AD"
    x = tensors[0]
    # fastconv is NCHW: a channels_last input would cost two layout copies
    # and the caller expects a channels_last result, so PyTorch keeps it.
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return "channels_last memory format"
    return None


def _needs_graph(*tensors):
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _dispatch(name, tensors, fast, slow, geometry):
    """Run `fast` on fastconv when it can serve `tensors`, else `slow` (PyTorch).

    `fast(*tensors, *geometry)` gets a 4-D input (a 3-D unbatched input is
    given a batch of one and the result squeezed back); `slow()` is the
    PyTorch call with the caller's original arguments.
    """
    x = tensors[0]
    if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4):
        return slow()  # PyTorch raises its own error for these
    reason = _why_not(tensors)
    if reason == _MIXED:
        return slow()  # PyTorch raises its own error for these
    if reason is None:
        unbatched = x.dim() == 3
        if unbatched:
            tensors = (x.unsqueeze(0),) + tuple(tensors[1:])
        try:
            out = fast(*tensors, *geometry)
        except (ValueError, TypeError) as e:
            # fastconv's argument checks differ in wording (and may differ in
            # scope) from PyTorch's: let PyTorch answer or raise.
            reason = f"these arguments ({e})"
        else:
            if unbatched:
                out = tuple(o.squeeze(0) for o in out) if isinstance(out, tuple) else out.squeeze(0)
            return out
    _warn_once(name, reason)
    return slow()


# ---------------------------------------------------------------- autograd Functions

class Conv2dFunction(torch.autograd.Function):
    """conv2d through fastconv: ``apply(x, w, bias, stride, padding, dilation, groups)``.

    Backward computes only the gradients autograd asks for
    (``ctx.needs_input_grad`` becomes ``conv2d_backward``'s ``needs``).
    """

    @staticmethod
    def forward(ctx, x, w, bias, stride, padding, dilation, groups):
        ctx.geometry = (stride, padding, dilation, groups)
        ctx.save_for_backward(x, w)
        b = None if bias is None else _np(bias)
        return _tensor(_conv.conv2d(_np(x), _np(w), b, stride, padding, dilation, groups))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, w = ctx.saved_tensors
        needs = tuple(n for n, want in zip(("input", "weight", "bias"), ctx.needs_input_grad) if want)
        grads = (None, None, None)
        if needs:
            grads = _conv.conv2d_backward(_np(grad_out), _np(x), _np(w), *ctx.geometry, needs=needs)
        return tuple(_tensor(g) for g in grads) + (None,) * 4


def _conv_out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


class ConvTranspose2dFunction(torch.autograd.Function):
    """conv_transpose2d through fastconv:
    ``apply(x, w, bias, stride, padding, output_padding, groups, dilation)``
    with int pairs for the geometry.

    A transposed convolution is the input gradient of the convolution
    (``w``, stride, padding, dilation, groups) whose input has the transposed
    convolution's output shape, so its input gradient is that convolution's
    forward (``fastconv.conv.conv2d``) and its weight gradient is that
    convolution's weight gradient with the roles of input and output swapped
    (``fastconv.conv.conv2d_backward``).
    """

    @staticmethod
    def forward(ctx, x, w, bias, stride, padding, output_padding, groups, dilation):
        stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
        ctx.geometry = (stride, padding, dilation, groups)
        ctx.save_for_backward(x, w)
        b = None if bias is None else _np(bias)
        return _tensor(_conv.conv_transpose2d(_np(x), _np(w), b, stride, padding, output_padding,
                                              groups, dilation))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, w = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.geometry
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gy = _np(grad_out)
        h, wd = x.shape[2], x.shape[3]
        # With output_padding >= stride (allowed when dilation > stride) the
        # convolution of grad_out has more rows/columns than x: the extra
        # ones belong to no input element.
        ho = _conv_out_size(gy.shape[2], w.shape[2], stride[0], padding[0], dilation[0])
        wo = _conv_out_size(gy.shape[3], w.shape[3], stride[1], padding[1], dilation[1])
        gx = gw = gb = None
        if need_x:
            gx = _conv.conv2d(gy, _np(w), None, stride, padding, dilation, groups)
            if (ho, wo) != (h, wd):
                gx = gx[:, :, :h, :wd]
        if need_w:
            xs = _np(x)
            if (ho, wo) != (h, wd):
                # outputs past x's extent get zero gradient, adding nothing to grad_w
                padded = np.zeros(xs.shape[:2] + (ho, wo), xs.dtype)
                padded[:, :, :h, :wd] = xs
                xs = padded
            gw = _conv.conv2d_backward(xs, gy, _np(w), stride, padding, dilation, groups,
                                       needs=("weight",))[1]
        if need_b:
            gb = gy.sum(axis=(0, 2, 3))
        return _tensor(gx), _tensor(gw), _tensor(gb), None, None, None, None, None


class MaxPool2dFunction(torch.autograd.Function):
    """max_pool2d through fastconv:
    ``apply(x, kernel_size, stride, padding, dilation, ceil_mode) -> (y, indices)``.

    The indices (int64, non-differentiable) are kept for backward, which
    scatters the gradient with ``fastconv.pool.max_pool2d_backward``.
    """

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):
        ctx.geometry = (kernel_size, stride, padding, dilation, ceil_mode)
        y, idx = _pool.max_pool2d(_np(x), kernel_size, stride, padding, dilation, ceil_mode,
                                  return_indices=True)
        y, idx = _tensor(y), _tensor(idx)
        ctx.mark_non_differentiable(idx)
        ctx.save_for_backward(x, idx)
        return y, idx

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, _grad_indices):
        x, idx = ctx.saved_tensors
        gx = None
        if ctx.needs_input_grad[0]:
            gx = _tensor(_pool.max_pool2d_backward(_np(grad_out), _np(x), *ctx.geometry,
                                                   indices=_np(idx)))
        return gx, None, None, None, None, None


class AvgPool2dFunction(torch.autograd.Function):
    """avg_pool2d through fastconv: ``apply(x, kernel_size, stride, padding, ceil_mode,
    count_include_pad, divisor_override)``."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
        ctx.geometry = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        ctx.input_shape = tuple(x.shape)
        return _tensor(_pool.avg_pool2d(_np(x), *ctx.geometry))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        gx = None
        if ctx.needs_input_grad[0]:
            gx = _tensor(_pool.avg_pool2d_backward(_np(grad_out), ctx.input_shape, *ctx.geometry))
        return gx, None, None, None, None, None, None


# ---------------------------------------------------------------- fast paths (4-D, served tensors)

def _conv2d_fast(x, w, b, stride, padding, dilation, groups):
    stride, padding, dilation = _conv_geometry(stride, padding, dilation)
    groups = int(groups)
    if _needs_graph(x, w, b):
        return Conv2dFunction.apply(x, w, b, stride, padding, dilation, groups)
    b = None if b is None else _np(b)
    return _tensor(_conv.conv2d(_np(x), _np(w), b, stride, padding, dilation, groups))


def _conv_transpose2d_fast(x, w, b, stride, padding, output_padding, groups, dilation):
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    output_padding, groups = _pair(output_padding), int(groups)
    if _needs_graph(x, w, b):
        return ConvTranspose2dFunction.apply(x, w, b, stride, padding, output_padding, groups, dilation)
    b = None if b is None else _np(b)
    return _tensor(_conv.conv_transpose2d(_np(x), _np(w), b, stride, padding, output_padding,
                                          groups, dilation))


def _max_pool2d_fast(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    geometry = (_pair(kernel_size), _pool_stride(stride, kernel_size), _pair(padding),
                _pair(dilation), bool(ceil_mode))
    if _needs_graph(x):
        y, idx = MaxPool2dFunction.apply(x, *geometry)
        return (y, idx) if return_indices else y
    out = _pool.max_pool2d(_np(x), *geometry, return_indices=bool(return_indices))
    return (_tensor(out[0]), _tensor(out[1])) if return_indices else _tensor(out)


def _avg_pool2d_fast(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    geometry = (_pair(kernel_size), _pool_stride(stride, kernel_size), _pair(padding),
                bool(ceil_mode), bool(count_include_pad),
                None if divisor_override is None else int(divisor_override))
    if _needs_graph(x):
        return AvgPool2dFunction.apply(x, *geometry)
    return _tensor(_pool.avg_pool2d(_np(x), *geometry))


# ---------------------------------------------------------------- functional drop-ins

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``torch.nn.functional.conv2d`` computed by fastconv (PyTorch fallback, see module doc)."""
    return _dispatch("conv2d", (input, weight, bias), _conv2d_fast,
                     lambda: F.conv2d(input, weight, bias, stride, padding, dilation, groups),
                     (stride, padding, dilation, groups))


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """``torch.nn.functional.conv_transpose2d`` computed by fastconv."""
    return _dispatch("conv_transpose2d", (input, weight, bias), _conv_transpose2d_fast,
                     lambda: F.conv_transpose2d(input, weight, bias, stride, padding, output_padding,
                                                groups, dilation),
                     (stride, padding, output_padding, groups, dilation))


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """``torch.nn.functional.max_pool2d`` computed by fastconv."""
    return _dispatch("max_pool2d", (input,), _max_pool2d_fast,
                     lambda: F.max_pool2d(input, kernel_size, stride, padding, dilation,
                                          ceil_mode=ceil_mode, return_indices=return_indices),
                     (kernel_size, stride, padding, dilation, ceil_mode, return_indices))


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """``torch.nn.functional.avg_pool2d`` computed by fastconv."""
    return _dispatch("avg_pool2d", (input,), _avg_pool2d_fast,
                     lambda: F.avg_pool2d(input, kernel_size, stride, padding, ceil_mode,
                                          count_include_pad, divisor_override),
                     (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override))


# ---------------------------------------------------------------- drop-in modules

class Conv2d(nn.Conv2d):
    """``torch.nn.Conv2d`` whose forward runs on fastconv.

    Same constructor, parameters, ``state_dict`` keys and repr as
    ``torch.nn.Conv2d``. ``padding_mode`` other than ``"zeros"`` and inputs
    fastconv does not serve run on ``torch.nn.Conv2d``'s forward (one
    :class:`FallbackWarning` per reason).
    """

    def _conv_forward(self, input, weight, bias):
        # nn.Conv2d.forward calls this with self.weight and self.bias
        name = type(self).__name__
        parent = super(Conv2d, self)._conv_forward
        if self.padding_mode != "zeros":
            _warn_once(name, f"padding_mode={self.padding_mode!r}")
            return parent(input, weight, bias)
        return _dispatch(name, (input, weight, bias), _conv2d_fast,
                         lambda: parent(input, weight, bias),
                         (self.stride, self.padding, self.dilation, self.groups))


class ConvTranspose2d(nn.ConvTranspose2d):
    """``torch.nn.ConvTranspose2d`` whose forward runs on fastconv.

    ``forward(input, output_size=None)`` as in PyTorch (``output_size``
    chooses ``output_padding`` the same way).
    """

    def forward(self, input, output_size=None):
        parent = super(ConvTranspose2d, self).forward
        if self.padding_mode != "zeros" or not isinstance(input, torch.Tensor) \
                or input.dim() not in (3, 4):
            return parent(input, output_size)  # PyTorch raises its own error
        output_padding = self._output_padding(input, output_size, self.stride, self.padding,
                                              self.kernel_size, 2, self.dilation)
        return _dispatch(type(self).__name__, (input, self.weight, self.bias), _conv_transpose2d_fast,
                         lambda: parent(input, output_size),
                         (self.stride, self.padding, output_padding, self.groups, self.dilation))


class MaxPool2d(nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` whose forward runs on fastconv (``return_indices`` included)."""

    def forward(self, input):
        parent = super(MaxPool2d, self).forward
        return _dispatch(type(self).__name__, (input,), _max_pool2d_fast, lambda: parent(input),
                         (self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode, self.return_indices))


class AvgPool2d(nn.AvgPool2d):
    """``torch.nn.AvgPool2d`` whose forward runs on fastconv."""

    def forward(self, input):
        parent = super(AvgPool2d, self).forward
        return _dispatch(type(self).__name__, (input,), _avg_pool2d_fast, lambda: parent(input),
                         (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override))


# ---------------------------------------------------------------- patch / unpatch

_TO_FAST = {nn.Conv2d: Conv2d, nn.ConvTranspose2d: ConvTranspose2d,
            nn.MaxPool2d: MaxPool2d, nn.AvgPool2d: AvgPool2d}
_TO_TORCH = {fast: plain for plain, fast in _TO_FAST.items()}


def _swap(model, table, what):
    if not isinstance(model, nn.Module):
        raise TypeError(f"{what} expects a torch.nn.Module, got {type(model).__name__}")
    for m in model.modules():  # each module once, even if it appears several times
        cls = table.get(type(m))
        if cls is not None:
            m.__class__ = cls
    return model


def patch(model):
    """Run every ``nn.Conv2d``, ``nn.ConvTranspose2d``, ``nn.MaxPool2d`` and
    ``nn.AvgPool2d`` of `model` on fastconv, in place.

    Parameters
    ----------
    model : torch.nn.Module
        Searched recursively; `model` itself is converted too if it is one of
        those layers.

    Returns
    -------
    torch.nn.Module
        `model`, for chaining.

    Notes
    -----
    Only modules whose type is exactly one of the four ``torch.nn`` classes
    are converted; user subclasses (which may override ``forward``) and
    parametrized modules are left alone. Each module object is kept and its
    class switched to the fastconv subclass (the technique
    ``torch.nn.utils.parametrize`` uses), so parameters, buffers, hooks,
    ``state_dict`` keys, optimizers created before patching and any other
    reference to the module stay valid, and a module that appears several
    times in the tree is converted once. A pickled patched model (``torch.save(model)``)
    names the fastconv classes; ``unpatch`` it first if the loader lacks fastconv
    (``state_dict`` files are unaffected).
    """
    return _swap(model, _TO_FAST, "patch")


def unpatch(model):
    """Undo :func:`patch`: turn the fastconv modules of `model` back into the
    ``torch.nn`` classes, in place, and return `model`."""
    return _swap(model, _TO_TORCH, "unpatch")
