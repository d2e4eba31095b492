"""Left/right mirroring of pose windows, a training augmentation (``TRAIN.MIRROR``).

A mirrored window is the same motion performed by the body's mirror image: every point is
reflected through a vertical plane and the left and right joints exchange their names. The
reflection negates the horizontal x axis about the window's own mean x (of the ground truth),
so the window stays where it was and any input convention (window centring, image pixels,
raw metres) sees a plausible pose. x is horizontal in camera coordinates, in image
coordinates and in the embedded sample's y-up world frame; a dataset whose x axis is vertical
must not use this. Input and target windows are mirrored together, so a detected window's
estimator errors are mirrored with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def left_right_permutation(num_joints: int,
                           pairs: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Joint order of the mirror image: each (left, right) pair swapped, others in place.

    Raises:
        ValueError: when a joint occurs in two pairs or a pair names a joint out of range.

    Shape:
        returns (num_joints,), int64.
    """
    order = list(range(num_joints))
    seen: set[int] = set()
    for left, right in pairs:
        if not (0 <= left < num_joints and 0 <= right < num_joints) or left == right:
            raise ValueError(f"left/right pair ({left}, {right}) is not two joints of "
                             f"0..{num_joints - 1}")
        if {left, right} & seen:
            raise ValueError(f"joint {left} or {right} occurs in two left/right pairs")
        seen |= {left, right}
        order[left], order[right] = right, left
    return torch.tensor(order, dtype=torch.int64)


def mirror_about(windows: torch.Tensor, centre: torch.Tensor, permutation: torch.Tensor,
                 coords: int) -> torch.Tensor:
    """The mirror image of each window: x reflected about its ``centre``, left/right exchanged.

    Its own inverse for the same centre.

    Args:
        windows: flat windows, the last axis joint-major (J * coords values).
        centre: the x of each window's mirror plane.
        permutation: joint order of the mirror image (:func:`left_right_permutation`).
        coords: values per joint (2 or 3); the first is x.

    Shape:
        windows: (B, T, J * coords); centre: (B,); returns (B, T, J * coords).
    """
    count, frames = windows.shape[:2]
    joints = windows.reshape(count, frames, -1, coords)[:, :, permutation].clone()
    joints[..., 0] = 2 * centre[:, None, None] - joints[..., 0]
    return joints.reshape(count, frames, -1)


def window_centre_x(windows: torch.Tensor, coords: int) -> torch.Tensor:
    """Mean x of each window over its frames and joints.

    Shape:
        windows: (B, T, J * coords); returns (B,).
    """
    count, frames = windows.shape[:2]
    return windows.reshape(count, frames, -1, coords)[..., 0].mean(dim=(1, 2))


def mirror_windows(inputs: torch.Tensor, targets: torch.Tensor, permutation: torch.Tensor,
                   coords: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror input and target windows together about the target's mean x.

    Args:
        inputs, targets: flat windows, the last axis joint-major (J * coords values).
        permutation: joint order of the mirror image (:func:`left_right_permutation`).
        coords: values per joint (2 or 3); the first is x.

    Shape:
        inputs, targets: (B, T, J * coords); returns two tensors of that shape.
    """
    centre = window_centre_x(targets, coords)
    return (mirror_about(inputs, centre, permutation, coords),
            mirror_about(targets, centre, permutation, coords))
