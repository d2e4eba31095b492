"""Per-window normalisation of poses before the network, and its exact inverse."""

from __future__ import annotations

import torch

# How a window's offset and scale are chosen (see WindowNormalizer).
MODES = ("centre", "box", "fixed")
# Input conventions (DATASET.INPUT_CONVENTION): 'centred' = this repository's per-window
# normalisation (``centre``/``box`` modes for positions); 'released' = the input convention of
# SmoothNet's released models: raw metres (and rotations) for 3D, ``(x - 500) / 500`` for 2D
# pixels of a 1000-pixel image, the same for every window (``fixed`` mode).
CONVENTIONS = ("centred", "released")


class WindowNormalizer:
    """Maps each window to ``(x - offset) / scale`` and back, from the input window only.

    The statistics come from the input window alone (ground truth is unknown at test time), so
    the same statistics normalise the training target and invert the model's output exactly.

    Modes:
        ``centre``: offset = the window's mean root position, scale = ``scale`` (metres stay
            metres; pixels divided by the image size, e.g. Human3.6M's 1000-pixel image).
            Makes the model translation invariant while it still refines the trajectory.
        ``box``: offset = the window's mean root position, scale = the largest extent of the
            input window's keypoints along any axis (over all its frames and joints), at least
            ``min_scale`` data units. For 2D data of varying image and person size.
        ``fixed``: offset = ``offset`` and scale = ``scale`` for every window (``offset`` 0 and
            ``scale`` 1 is the identity, used for rotations; offset = scale = 500 is SmoothNet's
            Human3.6M 2D normalisation).

    Args:
        num_joints: J.
        coord_dim: D.
        root_joints: joints whose mean is the offset in ``centre`` and ``box`` modes; empty =
            mean of all joints.
        scale: divisor in ``centre`` and ``fixed`` modes.
        mode: one of ``centre``, ``box``, ``fixed``.
        offset: subtracted in ``fixed`` mode (data units).
        min_scale: smallest box extent in ``box`` mode (data units), so a degenerate window
            (all keypoints equal) is not divided by zero.
        convention: which input convention this normaliser implements, one of
            :data:`CONVENTIONS`; a label stored in checkpoints (checkpoints written before it
            existed load as ``centred``). ``released`` needs ``fixed`` mode; build it with
            :meth:`released`.
    """

    def __init__(self, num_joints: int, coord_dim: int, root_joints: tuple[int, ...] = (),
                 scale: float = 1.0, mode: str = "centre", offset: float = 0.0,
                 min_scale: float = 1.0, convention: str = "centred") -> None:
        if mode not in MODES:
            raise ValueError(f"normaliser mode {mode!r} is not one of {list(MODES)}")
        if scale <= 0 or min_scale <= 0:
            raise ValueError(f"scale and min_scale must be positive, got {scale}, {min_scale}")
        if convention not in CONVENTIONS:
            raise ValueError(f"input convention {convention!r} is not one of {list(CONVENTIONS)}")
        if convention == "released" and mode != "fixed":
            raise ValueError(f"the released input convention uses fixed mode, not {mode!r}")
        self.num_joints = num_joints
        self.coord_dim = coord_dim
        self.root_joints = tuple(root_joints) or tuple(range(num_joints))
        self.scale = float(scale)
        self.mode = mode
        self.offset = float(offset)
        self.min_scale = float(min_scale)
        self.convention = convention

    @classmethod
    def released(cls, num_joints: int, coord_dim: int,
                 image_size: float | None = None) -> WindowNormalizer:
        """The released SmoothNet models' input convention, the same for every window.

        Args:
            num_joints: J.
            coord_dim: D.
            image_size: for pixel coordinates, the image size in pixels: values become
                ``(x - image_size / 2) / (image_size / 2)`` (``(x - 500) / 500`` for 1000);
                None keeps the values as they are (3D metres, rotations).
        """
        if image_size is None:
            return cls(num_joints, coord_dim, mode="fixed", convention="released")
        half = float(image_size) / 2.0
        return cls(num_joints, coord_dim, mode="fixed", offset=half, scale=half,
                   convention="released")

    def kwargs(self) -> dict:
        """Constructor arguments, stored in checkpoints."""
        return {"num_joints": self.num_joints, "coord_dim": self.coord_dim,
                "root_joints": list(self.root_joints), "scale": self.scale, "mode": self.mode,
                "offset": self.offset, "min_scale": self.min_scale,
                "convention": self.convention}

    def _joints(self, window: torch.Tensor) -> torch.Tensor:
        batch, frames, channels = window.shape
        if channels != self.num_joints * self.coord_dim:
            raise ValueError(f"expected C = {self.num_joints} x {self.coord_dim} channels, got "
                             f"window shape {tuple(window.shape)}")
        return window.reshape(batch, frames, self.num_joints, self.coord_dim)

    def _per_joint(self, values: torch.Tensor) -> torch.Tensor:
        """Repeat per-coordinate values for every joint. Shape: (B, D) -> (B, 1, C)."""
        return values.repeat(1, self.num_joints).unsqueeze(1)

    def centre(self, window: torch.Tensor) -> torch.Tensor:
        """The window's statistics: offset and scale per channel, from the input window only.

        Shape:
            window: (B, T, C); returns (B, 2, C): row 0 the offset, row 1 the scale.
        """
        joints = self._joints(window)  # (B, T, J, D)
        batch = window.shape[0]
        if self.mode == "fixed":
            offset = window.new_full((batch, 1, window.shape[2]), self.offset)
        else:
            offset = self._per_joint(joints[:, :, list(self.root_joints)].mean(dim=(1, 2)))
        if self.mode == "box":
            flat = joints.reshape(batch, -1, self.coord_dim)  # (B, T*J, D)
            extent = (flat.amax(dim=1) - flat.amin(dim=1)).amax(dim=1)  # (B,)
            scale = extent.clamp_min(self.min_scale)[:, None, None].expand_as(offset)
        else:
            scale = torch.full_like(offset, self.scale)
        return torch.cat([offset, scale], dim=1)

    def normalize(self, window: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        """Shape: window (B, T, C), stats (B, 2, C) from :meth:`centre`; returns (B, T, C)."""
        return (window - stats[:, :1]) / stats[:, 1:]

    def denormalize(self, window: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        """Exact inverse of :meth:`normalize`. Shape: as :meth:`normalize`."""
        return window * stats[:, 1:] + stats[:, :1]
