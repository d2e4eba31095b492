"""Linear layers with bias and activation fused into one oneDNN fp32 product on the CPU.

torch's dense fp32 ``F.linear`` calls MKL's GEMM on x86. On CPUs where MKL does not pick its
widest kernels (AMD EPYC among them) oneDNN, which ships inside torch, runs the same fp32
product about twice as fast, and it applies the bias and the activation while the output is
still in cache. :func:`fused_linear` uses it when it can and ``F.linear`` otherwise, with the
same result up to float rounding (both are fp32 products with fp32 accumulation).

oneDNN is used on CPU fp32 tensors, outside autocast (bf16 autocast already routes products
to oneDNN) and outside ``torch.compile`` (inductor fuses its own kernels), while
``torch.backends.mkldnn.enabled`` is True; set it to False (``torch.backends.mkldnn.flags(
enabled=False)``) to get the plain path everywhere. Its backward pass runs on oneDNN too.

The op, ``torch.ops.mkldnn._linear_pointwise``, is the one torch's inductor emits for CPU
linear layers; it is not public API. It is checked once per process against ``F.linear`` on a
small product, and if it is missing, fails or disagrees (a future torch), the plain path is
used with a warning.
"""

from __future__ import annotations

import functools
import logging
import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torch.utils import flop_counter

logger = logging.getLogger(__name__)

# The activations that can be fused into the product.
ACTIVATIONS = ("none", "leaky_relu", "sigmoid")
_LINEAR_OP = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)


def _linear_flops(x_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of one oneDNN linear call (either overload): 2 M K N, as for ``aten.addmm``."""
    return 2 * math.prod(x_shape) * out_shape[-1]


# Teach torch's FlopCounterMode the fused op, so that counted FLOPs do not depend on the path.
if (_LINEAR_OP is not None and hasattr(flop_counter, "register_flop_formula")
        and _LINEAR_OP not in flop_counter.flop_registry):
    flop_counter.register_flop_formula(_LINEAR_OP)(_linear_flops)


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` (its signature changed in torch 2.4)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no argument, CUDA only; the CPU has its own query
        return (torch.is_autocast_cpu_enabled() if device_type == "cpu"
                else torch.is_autocast_enabled())


def is_compiling() -> bool:
    """Whether torch.compile is tracing (torch.compiler.is_compiling is torch >= 2.3)."""
    check = getattr(torch.compiler, "is_compiling", None)
    return bool(check()) if check is not None else torch._dynamo.is_compiling()


@functools.cache
def _op_works() -> bool:
    """Whether this torch has the oneDNN linear op and it computes what ``F.linear`` does."""
    if _LINEAR_OP is None or not torch.backends.mkldnn.is_available():
        return False
    generator = torch.Generator().manual_seed(0)  # leaves the global random state alone
    x, weight, bias = (torch.randn(shape, generator=generator) for shape in ((5, 7), (3, 7), 3))
    try:
        with torch.no_grad():
            fused = _LINEAR_OP(x.t().contiguous().t(), weight, bias, "leaky_relu", [0.1], "")
        works = torch.allclose(fused, F.leaky_relu(F.linear(x, weight, bias), 0.1), atol=1e-5)
    except (RuntimeError, TypeError) as err:
        logger.warning("oneDNN linear op unusable (%s); Linear layers run on F.linear", err)
        return False
    if not works:
        logger.warning("oneDNN linear op disagrees with F.linear; Linear layers run on F.linear")
    return works


def onednn_usable(*tensors: torch.Tensor) -> bool:
    """Whether :func:`fused_linear` takes the oneDNN path for these operands."""
    if is_compiling():  # first: torch.compile traces this to a constant, with no graph break
        return False
    return (torch.backends.mkldnn.enabled
            and all(t.device.type == "cpu" and t.dtype == torch.float32 and t.numel() > 0
                    for t in tensors)
            and not autocast_enabled("cpu") and _op_works())


def _product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
             activation: str, slope: float) -> torch.Tensor:
    """``activation(x @ weight.T + bias)`` in one oneDNN call; strided operands are read as is.

    Shape:
        x: (M, K); weight: (N, K); bias: (N,) or None; returns (M, N), contiguous.
    """
    if activation == "leaky_relu":
        return _LINEAR_OP(x, weight, bias, "leaky_relu", [slope], "")
    return _LINEAR_OP(x, weight, bias, activation, [], "")


class _OneDNNLinear(torch.autograd.Function):
    """Autograd for :func:`_product`; the activation's derivative is read off its output."""

    @staticmethod
    def forward(ctx, x, weight, bias, activation, slope):
        out = _product(x, weight, bias, activation, slope)
        ctx.activation, ctx.slope, ctx.has_bias = activation, slope, bias is not None
        ctx.save_for_backward(x, weight, out if activation != "none" else None)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, out = ctx.saved_tensors
        # Both derivatives are read off the output in one pass (for leaky_relu, out > 0
        # exactly where its input was, as the slope is positive).
        if ctx.activation == "leaky_relu":
            grad_out = torch.ops.aten.leaky_relu_backward(grad_out, out, ctx.slope, True)
        elif ctx.activation == "sigmoid":
            grad_out = torch.ops.aten.sigmoid_backward(grad_out, out)
        grad_out = grad_out.contiguous()
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = _product(grad_out, weight.t(), None, "none", 0.0)  # (M, K)
        if ctx.needs_input_grad[1]:
            grad_weight = _transposed_product(grad_out, x)  # (N, K)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_out.sum(dim=0)
        return grad_x, grad_weight, grad_bias, None, None


def _transposed_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a.T @ b``, a reduction over the long shared axis, as a weight gradient needs it.

    oneDNN reads both operands through transposed views; it is fastest (1.3-1.8x in
    measurements) when the operand with fewer columns comes first, so the product is taken
    in that order and the result transposed back as a view.

    Shape:
        a: (M, N); b: (M, K); returns (N, K).
    """
    if a.shape[1] <= b.shape[1]:
        return _product(a.t(), b.t(), None, "none", 0.0)
    return _product(b.t(), a.t(), None, "none", 0.0).t()


class _OneDNNLeftMatmul(torch.autograd.Function):
    """Autograd for ``weight @ x`` with a small weight and a wide, contiguous x.

    Every product reads the wide operands as they lie (no transposed copies): the forward
    pass and the input gradient take the wide matrix as oneDNN's weight operand through a
    transposed view, and the weight gradient reduces over the wide axis directly.
    """

    @staticmethod
    def forward(ctx, weight, x):
        ctx.save_for_backward(weight, x)
        return _product(weight, x.t(), None, "none", 0.0)  # (E, N)

    @staticmethod
    def backward(ctx, grad_out):
        weight, x = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_weight = grad_x = None
        if ctx.needs_input_grad[0]:
            grad_weight = _product(grad_out, x, None, "none", 0.0)  # (E, K)
        if ctx.needs_input_grad[1]:
            grad_x = _product(weight.t().contiguous(), grad_out.t(), None, "none", 0.0)
        return grad_weight, grad_x


def _plain(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str,
           slope: float) -> torch.Tensor:
    out = F.linear(x, weight, bias)
    if activation == "leaky_relu":
        return F.leaky_relu(out, slope)
    if activation == "sigmoid":
        return torch.sigmoid(out)
    return out


def linear_activation(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                      activation: str = "none", slope: float = 0.01) -> torch.Tensor:
    """``activation(x @ weight.T + bias)``, fused on oneDNN where :func:`onednn_usable`.

    Args:
        x: input rows; any leading axes.
        weight, bias: as in ``nn.Linear``.
        activation: one of :data:`ACTIVATIONS`.
        slope: negative slope of ``leaky_relu`` (must be positive).

    Shape:
        x: (..., K); weight: (N, K); returns (..., N).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: {ACTIVATIONS}")
    if activation == "leaky_relu" and slope <= 0:
        raise ValueError(f"leaky_relu needs a positive slope, got {slope}")
    operands = (x, weight) if bias is None else (x, weight, bias)
    if not onednn_usable(*operands):
        return _plain(x, weight, bias, activation, slope)
    rows = x.reshape(-1, x.shape[-1])  # a view whenever the leading axes merge
    out = _OneDNNLinear.apply(rows, weight, bias, activation, float(slope))
    return out.view(*x.shape[:-1], weight.shape[0])


def left_matmul(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``weight @ x`` over the first axis of a channels-first ``x`` (one GEMM, no copies).

    On oneDNN the small weight is the row operand and the wide ``x`` is read through a
    transposed view, which oneDNN takes as it is (about 3x MKL's speed for K = 42).

    Shape:
        weight: (E, K); x: (K, ...) -> (E, ...)
    """
    columns = x.reshape(x.shape[0], -1)  # (K, N), a view for contiguous x
    if onednn_usable(weight, columns):
        product = _OneDNNLeftMatmul.apply(weight, columns.contiguous())
    else:
        product = torch.mm(weight, columns)
    return product.view(weight.shape[0], *x.shape[1:])


def fused_linear(linear: nn.Linear, x: torch.Tensor, activation: str = "none",
                 slope: float = 0.01) -> torch.Tensor:
    """:func:`linear_activation` with an ``nn.Linear``'s weight and bias.

    Shape:
        x: (..., in_features) -> (..., out_features)
    """
    return linear_activation(x, linear.weight, linear.bias, activation, slope)


def add_to_fresh(fresh: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``fresh + other``, summed in place into ``fresh`` where that is safe.

    ``fresh`` must be a tensor nothing else holds (a layer's new output). The sum is in place
    only without autograd (the graph needs the separate sum) and when the dtypes agree (under
    autocast a product may be bf16 while ``other`` is fp32).

    Shape:
        fresh, other: the same shape -> that shape.
    """
    if torch.is_grad_enabled() or fresh.dtype != other.dtype:
        return fresh + other
    return fresh.add_(other)


def linear_add(linear: nn.Linear, x: torch.Tensor, addend: torch.Tensor) -> torch.Tensor:
    """``linear(x) + addend``, the sum in place on the product where that is safe.

    (oneDNN's fused-sum variant measured slower than a product followed by an in-place add.)

    Shape:
        x: (..., in); addend: (..., out); returns (..., out).
    """
    return add_to_fresh(fused_linear(linear, x), addend)
