"""Building blocks and input checks shared by the pose-refinement networks."""

from __future__ import annotations

import torch
from torch import nn

# Negative slope of the LeakyReLU inside residual blocks (SmoothNet's choice).
_BLOCK_NEGATIVE_SLOPE = 0.2
# Random bits per element of a CPU dropout mask: the drop probability is rounded to 2**-16.
_MASK_BITS = 16


def check_window(x: torch.Tensor, window_size: int, channels: int | None = None) -> None:
    """Raise a ValueError unless ``x`` is a (B, T, C) window batch of the expected size.

    Args:
        x: input of a model's ``forward``.
        window_size: the T the model was built for.
        channels: the C the model was built for, or None when any C is accepted.

    Shape:
        x: (B, T, C)
    """
    if x.dim() != 3:
        raise ValueError(f"expected a (B, T, C) tensor, got shape {tuple(x.shape)}")
    if x.shape[1] != window_size:
        raise ValueError(f"expected T = {window_size} frames on axis 1, got shape "
                         f"{tuple(x.shape)}; pass windows of the model's window_size")
    if channels is not None and x.shape[2] != channels:
        raise ValueError(f"expected C = {channels} channels (joints x coords) on axis 2, got "
                         f"shape {tuple(x.shape)}")


def accumulates_in_place(*tensors: torch.Tensor) -> bool:
    """Whether a GEMM may add its product into a fresh tensor in place.

    Only without autograd (evaluation; with gradients the graph needs the separate sum) and
    with one dtype (under autocast the product's dtype differs from its fp32 addend).
    """
    return not torch.is_grad_enabled() and len({tensor.dtype for tensor in tensors}) == 1


def linear_plus(linear: nn.Linear, x: torch.Tensor, addend: torch.Tensor) -> torch.Tensor:
    """``linear(x) + addend``; without gradients the GEMM accumulates into ``addend + bias``.

    That saves one pass over the output, which for the wide, cheap layers of these models is a
    few percent of an evaluation.

    Shape:
        x: (..., in); addend: (..., out); returns (..., out).
    """
    if not accumulates_in_place(x, addend, linear.weight):
        return linear(x) + addend
    out = (addend + linear.bias).contiguous()
    flat = out.view(-1, out.shape[-1])
    torch.addmm(flat, x.reshape(-1, x.shape[-1]), linear.weight.t(), out=flat)
    return out


def _is_compiling() -> bool:
    """Whether torch.compile is tracing (torch.compiler.is_compiling is torch >= 2.3)."""
    check = getattr(torch.compiler, "is_compiling", None)
    return bool(check()) if check is not None else torch._dynamo.is_compiling()


def dropout_keep_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """A Bernoulli(1 - p) keep mask drawn from 16-bit chunks of 64-bit random words.

    torch's CPU dropout draws one Bernoulli variate per element; slicing each 64-bit draw of
    the default generator into four 16-bit integers and comparing them with a threshold costs
    about a sixth of that. The drop probability is rounded to a multiple of 2**-16.

    Shape:
        returns ``shape``, bool.
    """
    count = shape.numel()
    words = torch.randint(-2**63, 2**63 - 1, ((count + 3) // 4,), dtype=torch.int64)
    chunks = words.view(torch.int16)[:count].view(shape)  # uniform on [-2**15, 2**15)
    threshold = round(p * 2**_MASK_BITS) - 2**(_MASK_BITS - 1)
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
                or _is_compiling()):
            return super().forward(x)
        noise = dropout_keep_mask(x.shape, self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * noise


class TemporalResidualBlock(nn.Module):
    """SmoothNet's residual MLP acting on the last axis.

    Linear(size -> hidden), Dropout, LeakyReLU(0.2), Linear(hidden -> size), Dropout,
    LeakyReLU(0.2), plus the skip connection.

    Args:
        size: length of the last axis (input and output).
        hidden: width of the hidden layer.
        dropout: dropout probability after each Linear.

    Shape:
        x: (..., size) -> (..., size)
    """

    def __init__(self, size: int, hidden: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.size = size
        # In-place activations: they act on fresh outputs and save an allocation each.
        self.mlp = nn.Sequential(
            nn.Linear(size, hidden),
            FastDropout(dropout),
            nn.LeakyReLU(_BLOCK_NEGATIVE_SLOPE, inplace=True),
            nn.Linear(hidden, size),
            FastDropout(dropout),
            nn.LeakyReLU(_BLOCK_NEGATIVE_SLOPE, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size:
            raise ValueError(f"expected last axis {self.size}, got shape {tuple(x.shape)}")
        return x + self.mlp(x)


class JointMixingBlock(nn.Module):
    """Pre-norm residual MLP across the channel (joint x coordinate) axis.

    LayerNorm over C, Linear(C -> expansion * C), GELU, Linear back to C, Dropout, plus the skip
    connection. It mixes joints, which per-channel temporal layers never do.

    The layers are stored as ``norm`` and ``mlp`` (a Sequential in that order), but the forward
    pass works channels-first, on (B, C, L) as it comes: the Linear layers become one batched
    left-multiplication ``W @ x`` (about 1.5x faster on CPU than (B * L, C) rows with C = 42,
    and no transposed copies), the normalisation is taken along axis 1, and LayerNorm's affine
    is folded into the first weight and bias.

    Args:
        channels: C, the size of axis 1.
        expansion: hidden width as a multiple of C.
        dropout: dropout probability on the residual branch.

    Shape:
        x: (B, C, L) -> (B, C, L)
    """

    def __init__(self, channels: int, expansion: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.channels = channels
        self.norm = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(
            nn.Linear(channels, expansion * channels),
            nn.GELU(),
            nn.Linear(expansion * channels, channels),
            FastDropout(dropout),
        )

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        """LayerNorm's standardisation along axis 1 (biased variance), without the affine."""
        centred = x - x.mean(dim=1, keepdim=True)
        variance = centred.square().mean(dim=1, keepdim=True)  # (B, 1, L)
        return centred * torch.rsqrt(variance + self.norm.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.channels:
            raise ValueError(f"expected (B, {self.channels}, L), got shape {tuple(x.shape)}")
        expand, activation, project, dropout = self.mlp
        batch = x.shape[0]
        # W (g * n + b) + c = (W * g) n + (W b + c): the affine costs nothing on (B, C, L).
        weight = expand.weight * self.norm.weight  # (E, C)
        bias = torch.addmv(expand.bias, expand.weight, self.norm.bias)  # (E,)
        hidden = activation(torch.baddbmm(bias[:, None], weight.expand(batch, -1, -1),
                                          self._normalize(x)))  # (B, E, L)
        project_weight = project.weight.expand(batch, -1, -1)  # (B, C, E)
        if not (dropout.training and dropout.p > 0) and accumulates_in_place(x, hidden,
                                                                          project_weight):
            out = x + project.bias[:, None]  # the product is added in place, see linear_plus
            return torch.baddbmm(out, project_weight, hidden, out=out)
        mixed = torch.baddbmm(project.bias[:, None], project_weight, hidden)  # (B, C, L)
        return x + dropout(mixed)
