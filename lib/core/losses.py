"""Training loss: masked L1 on positions plus weighted masked L1 on accelerations."""

from __future__ import annotations

import torch


def masked_l1(diff: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute value over the frames where ``mask`` is true.

    Shape:
        diff: (B, T, C); mask: (B, T) bool; returns a scalar.
    """
    weights = mask.to(diff.dtype).unsqueeze(-1)  # (B, T, 1)
    count = weights.sum() * diff.shape[-1]
    return (diff.abs() * weights).sum() / count.clamp_min(1.0)


def second_difference(x: torch.Tensor) -> torch.Tensor:
    """Acceleration x[t-1] - 2 x[t] + x[t+1].

    Shape:
        x: (B, T, C); returns (B, T-2, C).
    """
    return x[:, :-2] - 2 * x[:, 1:-1] + x[:, 2:]


class RefinementLoss(torch.nn.Module):
    """L1 position error plus ``w_accel`` x L1 acceleration error, real frames only.

    An acceleration term counts only where all three frames it spans are real.

    Args:
        w_pos: weight of the position term.
        w_accel: weight of the acceleration term.
    """

    def __init__(self, w_pos: float = 1.0, w_accel: float = 0.1) -> None:
        super().__init__()
        self.w_pos = w_pos
        self.w_accel = w_accel

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """Shape: pred, target (B, T, C); mask (B, T) bool; returns a scalar."""
        if pred.shape != target.shape or mask.shape != pred.shape[:2]:
            raise ValueError(f"pred {tuple(pred.shape)}, target {tuple(target.shape)} and mask "
                             f"{tuple(mask.shape)} must be (B, T, C), (B, T, C), (B, T)")
        position = masked_l1(pred - target, mask)
        accel_mask = mask[:, :-2] & mask[:, 1:-1] & mask[:, 2:]
        accel = masked_l1(second_difference(pred) - second_difference(target), accel_mask)
        return self.w_pos * position + self.w_accel * accel
