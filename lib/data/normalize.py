"""Per-window centring and scaling of poses before the network, and its exact inverse."""

from __future__ import annotations

import torch


class WindowNormalizer:
    """Moves each window to its mean root position and divides by a fixed scale.

    The centre comes from the input window only (ground truth is unknown at test time), so the
    same centre normalises the target during training. Centring makes the model translation
    invariant while it still refines the global trajectory; the scale brings pixels and metres to
    a similar range.

    Args:
        num_joints: J.
        coord_dim: D.
        root_joints: joints whose mean is the centre; empty = mean of all joints.
        scale: divide centred coordinates by this (1 for metres, the image size for pixels).
    """

    def __init__(self, num_joints: int, coord_dim: int, root_joints: tuple[int, ...] = (),
                 scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.num_joints = num_joints
        self.coord_dim = coord_dim
        self.root_joints = tuple(root_joints) or tuple(range(num_joints))
        self.scale = float(scale)

    def kwargs(self) -> dict:
        """Constructor arguments, stored in checkpoints."""
        return {"num_joints": self.num_joints, "coord_dim": self.coord_dim,
                "root_joints": list(self.root_joints), "scale": self.scale}

    def centre(self, window: torch.Tensor) -> torch.Tensor:
        """Mean root position over the window's frames.

        Shape:
            window: (B, T, C); returns (B, 1, C), the centre repeated for every joint.
        """
        batch, frames, channels = window.shape
        joints = window.reshape(batch, frames, self.num_joints, self.coord_dim)
        root = joints[:, :, list(self.root_joints)].mean(dim=(1, 2))  # (B, D)
        return root.repeat(1, self.num_joints).unsqueeze(1)

    def normalize(self, window: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        """Shape: window (B, T, C), centre (B, 1, C); returns (B, T, C)."""
        return (window - centre) / self.scale

    def denormalize(self, window: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        """Shape: window (B, T, C), centre (B, 1, C); returns (B, T, C)."""
        return window * self.scale + centre
