"""CPU kernels for the textbook models, applied by one function: :func:`accelerate`.

``accelerate(model)`` swaps modules in place for subclasses that hold the same parameters
(state_dict keys unchanged) and compute the same function faster on the CPU:

- ``nn.Linear`` -> :class:`FusedLinear`: the product, the bias and a following LeakyReLU,
  Sigmoid or GELU (which the swap replaces by ``nn.Identity``) in one oneDNN fp32 call;
- ``nn.Dropout`` -> :class:`FastDropout`: a keep mask drawn from 8- or 16-bit chunks of random
  words instead of one Bernoulli variate per element.

On other devices, in bf16 autocast and under torch.compile both fall back to the plain
torch computation. MODEL.CPU_KERNELS switches the swap off.

Why oneDNN: torch's dense fp32 ``F.linear`` calls MKL's GEMM on x86. On CPUs where MKL does not
pick its widest kernels (AMD EPYC among them) oneDNN, which ships inside torch, runs the same
fp32 product about twice as fast, and applies the bias and activation while the output is
still in cache. It is used on CPU fp32 tensors, outside autocast and torch.compile, while
``torch.backends.mkldnn.enabled`` is True.

The op, ``torch.ops.mkldnn._linear_pointwise``, is the one torch's inductor emits for CPU
linear layers; it is not public API, and this is the only file that uses it. It is checked
once per process against ``F.linear`` on a small product, and if it is missing, fails or
disagrees (a future torch), the plain path is used with a warning.
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
ACTIVATIONS = ("none", "leaky_relu", "sigmoid", "gelu")
# Random bits per element of a CPU dropout mask when 8 bits cannot represent p exactly.
_MASK_BITS = 16
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
            fused_gelu = _LINEAR_OP(x, weight, bias, "gelu", [], "none")
        plain = F.linear(x, weight, bias)
        works = (torch.allclose(fused, F.leaky_relu(plain, 0.1), atol=1e-5)
                 and torch.allclose(fused_gelu, F.gelu(plain), atol=1e-5))
    except (RuntimeError, TypeError) as err:
        logger.warning("oneDNN linear op unusable (%s); Linear layers run on F.linear", err)
        return False
    if not works:
        logger.warning("oneDNN linear op disagrees with F.linear; Linear layers run on F.linear")
    return works


def onednn_usable(*tensors: torch.Tensor) -> bool:
    """Whether :func:`linear_activation` takes the oneDNN path for these operands."""
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
    if activation == "gelu":  # the exact (erf) GELU, as nn.GELU()
        return _LINEAR_OP(x, weight, bias, "gelu", [], "none")
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
        wants_weight, wants_bias = ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]
        if wants_weight and wants_bias and grad_out.shape[1] > x.shape[1]:  # N > K
            grad_weight, grad_bias = _weight_and_bias_gradients(grad_out, x)
        else:
            if wants_weight:
                grad_weight = _transposed_product(grad_out, x)  # (N, K)
            if wants_bias:
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


def _weight_and_bias_gradients(grad_out: torch.Tensor,
                               x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``grad_out.T @ x`` and ``grad_out.sum(0)`` from one product, for ``N > K``.

    ``x`` is copied once, transposed, into rows with a row of ones below them: the product with
    ``grad_out`` then yields the bias gradient as one more row of the (transposed) weight
    gradient instead of a separate pass over ``grad_out``, and oneDNN, which would copy the
    transposed operand itself, reads a contiguous one (about 4 % of a training step at the
    released size). For ``N <= K`` the extra row would become an extra output column, an odd
    row stride that measured slower; there the bias is summed apart.

    Shape:
        grad_out: (M, N); x: (M, K); returns (N, K) and (N,).
    """
    rows, features = x.shape
    extended = x.new_empty(features + 1, rows)
    extended[:features].copy_(x.t())
    extended[features].fill_(1.0)
    both = _product(extended, grad_out.t(), None, "none", 0.0)  # (K + 1, N)
    return both[:features].t(), both[features]


def _plain(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str,
           slope: float) -> torch.Tensor:
    out = F.linear(x, weight, bias)
    if activation == "leaky_relu":
        return F.leaky_relu(out, slope)
    if activation == "sigmoid":
        return torch.sigmoid(out)
    if activation == "gelu":
        return F.gelu(out)
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
    if (activation == "gelu" and torch.is_grad_enabled()
            and any(t.requires_grad for t in operands)):
        # GELU's derivative needs its input, which the fused product does not keep: fuse it
        # only where no gradient is taken (inference), else apply it after the product.
        return F.gelu(linear_activation(x, weight, bias))
    rows = x.reshape(-1, x.shape[-1])  # a view whenever the leading axes merge
    out = _OneDNNLinear.apply(rows, weight, bias, activation, float(slope))
    return out.view(*x.shape[:-1], weight.shape[0])


class FusedLinear(nn.Linear):
    """``nn.Linear`` followed by an optional activation, as one oneDNN call on the CPU.

    Created by :func:`accelerate` from an ``nn.Linear`` (same parameters, same state_dict).

    Shape:
        x: (..., in_features) -> (..., out_features)
    """

    activation: str = "none"
    slope: float = 0.01

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear_activation(x, self.weight, self.bias, self.activation, self.slope)

    def extra_repr(self) -> str:
        fused = "" if self.activation == "none" else f", fused={self.activation}"
        return super().extra_repr() + fused


def dropout_keep_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """A Bernoulli(1 - p) keep mask drawn from 8- or 16-bit chunks of 64-bit random words.

    torch's CPU dropout draws one Bernoulli variate per element; slicing each 64-bit draw of
    the default generator into eight 8-bit (or four 16-bit) integers and comparing them with a
    threshold costs a sixth (16-bit) to a tenth (8-bit) of that. 8-bit chunks are used when
    they represent ``p`` exactly (multiples of 1/256: 0.25, 0.5, ...); otherwise the drop
    probability is rounded to a multiple of 2**-16.

    Shape:
        returns ``shape``, bool.
    """
    bits = 8 if float(p * 256).is_integer() else _MASK_BITS
    count, per_word = shape.numel(), 64 // bits
    words = torch.randint(-2**63, 2**63 - 1, (-(-count // per_word),), dtype=torch.int64)
    chunk_type = torch.int8 if bits == 8 else torch.int16
    chunks = words.view(chunk_type)[:count].view(shape)  # uniform on [-2**(bits-1), 2**(bits-1))
    threshold = round(p * 2**bits) - 2**(bits - 1)
    return chunks >= threshold


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper mask on CPU (see :func:`dropout_keep_mask`).

    On other devices, in eval mode, for p = 0 or 1 and under torch.compile (whose generated
    code draws its own random numbers cheaply) it is exactly ``nn.Dropout``.

    Shape:
        x: any -> same.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (not self.training or x.device.type != "cpu" or self.p in (0.0, 1.0)
                or is_compiling()):
            return super().forward(x)
        noise = dropout_keep_mask(x.shape, self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * noise


def accelerate(model: nn.Module) -> nn.Module:
    """Swap ``model``'s layers in place for their CPU-kernel subclasses; returns ``model``.

    In every ``nn.Sequential`` a Linear directly followed by a LeakyReLU, a Sigmoid or an exact
    GELU (for LeakyReLU also with dropout in between, which commutes with it: a mask times a
    positive scale) takes that activation into its product and the activation becomes
    ``nn.Identity``. (GELU is fused without autograd only: its derivative needs its input.)
    Every remaining ``nn.Linear`` and ``nn.Dropout`` becomes a :class:`FusedLinear` /
    :class:`FastDropout`. Parameters, buffers and state_dict keys are unchanged.
    """
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            _fuse_activations(module)
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = FusedLinear
        elif type(module) is nn.Dropout:
            module.__class__ = FastDropout
    return model


def _fuse_activations(sequence: nn.Sequential) -> None:
    """Fuse each Linear -> [Dropout ->] LeakyReLU / Linear -> Sigmoid run of ``sequence``."""
    layers = list(sequence)
    for index, layer in enumerate(layers):
        if type(layer) is not nn.Linear:
            continue
        after = index + 1
        while after < len(layers) and type(layers[after]) is nn.Dropout:
            after += 1
        if after == len(layers):
            continue
        follower = layers[after]
        if type(follower) is nn.LeakyReLU and follower.negative_slope > 0:
            layer.activation, layer.slope = "leaky_relu", float(follower.negative_slope)
        elif type(follower) is nn.Sigmoid and after == index + 1:
            layer.activation = "sigmoid"
        elif (type(follower) is nn.GELU and follower.approximate == "none"
              and after == index + 1):
            layer.activation = "gelu"
        else:
            continue
        layer.__class__ = FusedLinear
        sequence[after] = nn.Identity()
