"""Building blocks and input checks shared by the pose-refinement networks."""

from __future__ import annotations

import torch
from torch import nn

from lib.models.fused_linear import add_to_fresh, fused_linear, is_compiling, left_matmul

# Negative slope of the LeakyReLU inside residual blocks (SmoothNet's choice).
_BLOCK_NEGATIVE_SLOPE = 0.2
# Columns per slab when the joint mixing runs without gradients (see _forward_in_chunks):
# the slab's hidden layer (2 C x 8192 floats, 2.75 MB at C = 42) stays in the CPU cache.
_INFERENCE_SLAB_COLUMNS = 8192
# Random bits per element of a CPU dropout mask when 8 bits cannot represent p exactly.
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
        # The forward pass runs each Linear with its LeakyReLU fused (see fused_linear); the
        # modules stay in this order so that parameter names match SmoothNet's.
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
        expand, expand_dropout, activation, project, project_dropout, _ = self.mlp
        slope = activation.negative_slope
        # LeakyReLU commutes with dropout (a mask scaled by a positive number), so it is fused
        # into the product and the dropout follows; the masks are drawn as before.
        hidden = expand_dropout(fused_linear(expand, x, "leaky_relu", slope))
        out = project_dropout(fused_linear(project, hidden, "leaky_relu", slope))
        return add_to_fresh(out, x)


class JointMixingBlock(nn.Module):
    """Pre-norm residual MLP across the channel (joint x coordinate) axis.

    LayerNorm over C, Linear(C -> expansion * C), GELU, Linear back to C, Dropout, plus the skip
    connection. It mixes joints, which per-channel temporal layers never do.

    The layers are stored as ``norm`` and ``mlp`` (a Sequential in that order), but the forward
    pass works channels-first, on (C, ...) as it comes: each Linear is one left-multiplication
    ``W @ x`` of the whole (C, N) matrix (see :func:`left_matmul`), the normalisation is taken
    along axis 0, LayerNorm's affine is folded into the first weight, and its
    bias rides on a row of ones appended to the normalised input.

    Args:
        channels: C, the size of axis 0.
        expansion: hidden width as a multiple of C.
        dropout: dropout probability on the residual branch.

    Shape:
        x: (C, ...) -> (C, ...)
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

    def _normalize_with_ones(self, x: torch.Tensor) -> torch.Tensor:
        """LayerNorm's standardisation along axis 0 (no affine), then a row of ones.

        Shape:
            x: (C, ...) -> (C + 1, ...)
        """
        # (torch.var_mean along axis 0 is ~50x slower on the CPU than these three passes.)
        centred = x - x.mean(dim=0, keepdim=True)
        scale = torch.rsqrt(centred.square().mean(dim=0, keepdim=True) + self.norm.eps)
        if torch.is_grad_enabled():
            return torch.cat([centred * scale, torch.ones_like(scale)])
        out = x.new_empty((x.shape[0] + 1, *x.shape[1:]))
        torch.mul(centred, scale, out=out[:-1])
        out[-1] = 1.0
        return out

    def _folded_expand_weight(self) -> torch.Tensor:
        """The first Linear with LayerNorm's affine folded in, its bias as a last column.

        W (g * n + b) + c = (W * g) n + (W b + c); the bias multiplies the row of ones.

        Shape:
            returns (E, C + 1)
        """
        expand = self.mlp[0]
        return torch.cat([expand.weight * self.norm.weight,
                          torch.addmv(expand.bias, expand.weight, self.norm.bias)[:, None]],
                         dim=1)

    def _mixed(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The residual branch before its bias and dropout. Shape: (C, ...) -> (C, ...)."""
        _, activation, project, _ = self.mlp
        hidden = left_matmul(weight, self._normalize_with_ones(x))  # (E, ...)
        return left_matmul(project.weight, activation(hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[0] != self.channels:
            raise ValueError(f"expected ({self.channels}, ...), got shape {tuple(x.shape)}")
        dropout = self.mlp[3]
        weight = self._folded_expand_weight()
        if x.device.type == "cpu" and not (torch.is_grad_enabled()
                                           or (dropout.training and dropout.p > 0)):
            return self._forward_in_chunks(x, weight)
        bias = self.mlp[2].bias.view(-1, *([1] * (x.dim() - 1)))
        return x + dropout(self._mixed(x, weight) + bias)

    def _forward_in_chunks(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Without gradients on the CPU: the same block, a slab of columns at a time.

        Every column (one frame of one window) is mixed on its own, so cutting the columns
        into slabs changes nothing but the memory traffic: a slab's intermediates (the
        normalised input, the hidden layer twice the input's size) stay in the CPU cache
        instead of streaming through memory (1.05-1.1x faster inference of the aist model).

        Shape:
            x: (C, ...) -> (C, ...)
        """
        columns = x.reshape(self.channels, -1)  # (C, N)
        out = torch.empty_like(columns)
        bias = self.mlp[2].bias[:, None]
        for start in range(0, columns.shape[1], _INFERENCE_SLAB_COLUMNS):
            stop = start + _INFERENCE_SLAB_COLUMNS
            part = columns[:, start:stop]
            torch.add(part, self._mixed(part, weight), out=out[:, start:stop]).add_(bias)
        return out.view(x.shape)
