"""SmoothNet (ECCV 2022): a per-channel temporal MLP, the baseline refiner."""

from __future__ import annotations

import torch
from torch import nn

from lib.models.layers import TemporalResidualBlock, check_window

# Negative slope of the encoder's LeakyReLU (SmoothNet's choice).
_ENCODER_NEGATIVE_SLOPE = 0.1


class SmoothNet(nn.Module):
    """Encode each channel's T frames to H features, refine with residual MLPs, decode to T.

    Every channel (joint coordinate) is processed independently along time, so the same model
    accepts any number of channels.

    Args:
        window_size: T, frames per window.
        hidden_size: H, width of the encoded time axis.
        res_hidden_size: R, hidden width inside each residual block.
        num_blocks: number of residual blocks (at least 1).
        dropout: dropout probability inside the residual blocks.

    Shape:
        x: (B, T, C) -> (B, T, C)
    """

    def __init__(self, window_size: int, hidden_size: int = 512, res_hidden_size: int = 256,
                 num_blocks: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        if window_size < 1 or hidden_size < 1 or res_hidden_size < 1 or num_blocks < 1:
            raise ValueError("window_size, hidden_size, res_hidden_size and num_blocks must be "
                             f"positive, got {window_size}, {hidden_size}, {res_hidden_size}, "
                             f"{num_blocks}")
        self.window_size = window_size
        self.encoder = nn.Sequential(nn.Linear(window_size, hidden_size),
                                     nn.LeakyReLU(_ENCODER_NEGATIVE_SLOPE))
        self.blocks = nn.Sequential(*(TemporalResidualBlock(hidden_size, res_hidden_size, dropout)
                                      for _ in range(num_blocks)))
        self.decoder = nn.Linear(hidden_size, window_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Refine a batch of windows.

        Args:
            x: noisy windows.

        Returns:
            Refined windows.

        Shape:
            x: (B, T, C) -> (B, T, C)
        """
        check_window(x, self.window_size)
        per_channel = x.transpose(1, 2)  # (B, C, T): Linear layers act along time
        refined = self.decoder(self.blocks(self.encoder(per_channel)))  # (B, C, T)
        return refined.transpose(1, 2)
