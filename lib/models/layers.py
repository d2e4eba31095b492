"""Building blocks and input checks shared by the pose-refinement networks."""

from __future__ import annotations

import torch
from torch import nn

# Negative slope of the LeakyReLU inside residual blocks (SmoothNet's choice).
_BLOCK_NEGATIVE_SLOPE = 0.2


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


class TemporalResidualBlock(nn.Module):
    """SmoothNet's residual MLP acting on the last axis, optionally pre-normalised.

    [LayerNorm], Linear(size -> hidden), Dropout, LeakyReLU(0.2), Linear(hidden -> size),
    Dropout, LeakyReLU(0.2), plus the skip connection.

    Args:
        size: length of the last axis (input and output).
        hidden: width of the hidden layer.
        dropout: dropout probability after each Linear.
        norm: LayerNorm over the last axis before the MLP (MotionRefineNet's time mixing);
            without it, parameter names match SmoothNet's.

    Shape:
        x: (..., size) -> (..., size)
    """

    def __init__(self, size: int, hidden: int, dropout: float = 0.5, norm: bool = False) -> None:
        super().__init__()
        self.size = size
        self.norm = nn.LayerNorm(size) if norm else nn.Identity()
        self.mlp = nn.Sequential(
            nn.Linear(size, hidden),
            nn.Dropout(dropout),
            nn.LeakyReLU(_BLOCK_NEGATIVE_SLOPE),
            nn.Linear(hidden, size),
            nn.Dropout(dropout),
            nn.LeakyReLU(_BLOCK_NEGATIVE_SLOPE),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size:
            raise ValueError(f"expected last axis {self.size}, got shape {tuple(x.shape)}")
        return x + self.mlp(self.norm(x))


class JointMixingBlock(nn.Module):
    """Pre-norm residual MLP across the channel (joint x coordinate) axis.

    LayerNorm over C, Linear(C -> hidden), GELU, Linear back to C, Dropout, plus the skip
    connection. It mixes joints, which per-channel temporal layers never do.

    Args:
        channels: C.
        hidden: width of the hidden layer.
        dropout: dropout probability on the residual branch.

    Shape:
        x: (B, C, L) -> (B, C, L); channels on axis 1, as the time layers want them.
    """

    def __init__(self, channels: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.channels = channels
        self.norm = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.GELU(),
            nn.Linear(hidden, channels),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.channels:
            raise ValueError(f"expected (B, {self.channels}, L), got shape {tuple(x.shape)}")
        per_frame = x.transpose(1, 2)  # (B, L, C)
        return x + self.mlp(self.norm(per_frame)).transpose(1, 2)
