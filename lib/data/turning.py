"""Turning training windows about the vertical axis, an augmentation (``TRAIN.TURN``).

A turned window is the same motion performed facing another way: every point of input and
target is rotated by one angle about the vertical line through the target window's mean
position. The vertical axis is y, as in the embedded sample's y-up world frame (and, near
enough, in the coordinates of an upright camera); data whose vertical axis is another must not
use this. The input's estimator error turns with the window. 3D joint positions only.
"""

from __future__ import annotations

import torch


def turn_windows(inputs: torch.Tensor, targets: torch.Tensor,
                 angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate input and target windows together about the target's vertical mean line.

    Args:
        inputs, targets: flat windows, the last axis joint-major (J * 3 values: x, y, z).
        angles: one angle per window in radians (counter-clockwise seen from above).

    Shape:
        inputs, targets: (B, T, J * 3); angles: (B,); returns two (B, T, J * 3).
    """
    count, frames = targets.shape[:2]
    joints = targets.reshape(count, frames, -1, 3)
    centre = joints.mean(dim=(1, 2))[:, None, None, :]  # (B, 1, 1, 3)
    cos, sin = torch.cos(angles)[:, None, None], torch.sin(angles)[:, None, None]

    def turn(windows: torch.Tensor) -> torch.Tensor:
        points = windows.reshape(count, frames, -1, 3) - centre
        x, z = points[..., 0], points[..., 2]
        turned = torch.stack((cos * x + sin * z, points[..., 1], cos * z - sin * x), dim=-1)
        return (turned + centre).reshape(count, frames, -1).to(windows.dtype)

    return turn(inputs), turn(targets)
