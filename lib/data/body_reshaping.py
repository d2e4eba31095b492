"""Body reshaping of training windows, an augmentation (``TRAIN.RESHAPE_BODIES``).

A reshaped window is the same motion performed by another body: each bone's length is
multiplied by a factor (a global size times a factor per bone, left and right alike, drawn as
the sample's builder draws its bodies: :func:`lib.data.error_model.sample_bone_scales`), its
direction kept, the skeleton rebuilt from the root down. The input keeps its estimator error:
each joint's displacement in the target is added to the input, so the input's error about the
new ground truth is the one it had. Fresh simulated errors (``TRAIN.AUGMENT``) are drawn after
reshaping, on the new ground truth. 3D joint positions only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lib.data.error_model import rescale_bones, sample_bone_scales

# Ranges of the global size factor and of each bone's own factor (the sample builder's).
BODY_RANGE = (0.85, 1.15)
BONE_RANGE = (0.9, 1.1)


def reshape_bodies(inputs: np.ndarray, targets: np.ndarray, parents: Sequence[int],
                   left_right: Sequence[tuple[int, int]],
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Give every window a body of its own; return (inputs, targets) reshaped alike.

    Args:
        inputs: detected windows.
        targets: ground-truth windows.
        parents: parent index per joint, -1 for a root.
        left_right: (left, right) joint pairs that share a bone factor.
        rng: draws one body per window.

    Shape:
        inputs, targets (B, T, J, 3) -> (B, T, J, 3), (B, T, J, 3).
    """
    if targets.ndim != 4 or targets.shape[-1] != 3 or inputs.shape != targets.shape:
        raise ValueError(f"body reshaping needs 3D windows (B, T, J, 3) of one shape, got "
                         f"{inputs.shape} and {targets.shape}")
    num_joints = targets.shape[2]
    scales = np.stack([sample_bone_scales(rng, num_joints, parents, left_right, BODY_RANGE,
                                          BONE_RANGE) for _ in range(len(targets))])
    reshaped = rescale_bones(targets, parents, scales[:, None, :])
    return inputs + (reshaped - targets), reshaped
