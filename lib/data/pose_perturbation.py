"""New poses from the training clips' poses, an augmentation (``TRAIN.PERTURB_POSES``).

A perturbed window is the same motion with other joint angles: each bone, and everything
below it in the kinematic chain, is turned about its parent joint by a rotation of its own
(a uniformly random axis, an angle drawn normal with std ``sigma``), the same in every frame of
the window. Bone lengths and the motion's timing are kept; the poses are ones the clips never
hold (an arm raised higher, a knee bent further, a torso leaning). As with body reshaping, the
input keeps its estimator error: each joint's displacement in the target is added to the input,
and fresh simulated errors (``TRAIN.AUGMENT``) are drawn afterwards, on the new ground truth.
3D joint positions only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lib.data.error_model import tree_order


def random_rotations(rng: np.random.Generator, count: int, sigma: float) -> np.ndarray:
    """Rotation matrices about uniformly random axes by angles drawn normal(0, ``sigma``).

    Shape:
        -> (count, 3, 3).
    """
    axes = rng.normal(size=(count, 3))
    axes /= np.maximum(np.linalg.norm(axes, axis=1, keepdims=True), 1e-12)
    angles = rng.normal(0.0, sigma, count)
    cross = np.zeros((count, 3, 3))  # the cross-product matrix of each axis
    cross[:, 0, 1], cross[:, 0, 2], cross[:, 1, 2] = -axes[:, 2], axes[:, 1], -axes[:, 0]
    cross -= cross.transpose(0, 2, 1)
    sin, cos = np.sin(angles)[:, None, None], np.cos(angles)[:, None, None]
    return np.eye(3) + sin * cross + (1.0 - cos) * cross @ cross  # Rodrigues


def perturb_poses(inputs: np.ndarray, targets: np.ndarray, parents: Sequence[int],
                  rng: np.random.Generator, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Give every window joint angles of its own; return (inputs, targets) moved alike.

    Args:
        inputs: detected windows.
        targets: ground-truth windows.
        parents: parent index per joint, -1 for a root (roots stay where they are).
        rng: draws one rotation per bone and window.
        sigma: std of the rotation angles, radians.

    Shape:
        inputs, targets (B, T, J, 3) -> (B, T, J, 3), (B, T, J, 3).
    """
    if targets.ndim != 4 or targets.shape[-1] != 3 or inputs.shape != targets.shape:
        raise ValueError(f"pose perturbation needs 3D windows (B, T, J, 3) of one shape, got "
                         f"{inputs.shape} and {targets.shape}")
    windows, joints = targets.shape[0], targets.shape[2]
    order = tree_order(parents, joints)
    turns = random_rotations(rng, windows * joints, sigma).reshape(windows, joints, 3, 3)
    moved = np.empty_like(targets)
    total = np.empty((windows, joints, 3, 3))  # each bone's rotation, its ancestors' included
    for joint in order:
        parent = parents[joint]
        if parent < 0:
            moved[:, :, joint], total[:, joint] = targets[:, :, joint], np.eye(3)
            continue
        total[:, joint] = total[:, parent] @ turns[:, joint]
        bone = targets[:, :, joint] - targets[:, :, parent]
        moved[:, :, joint] = moved[:, :, parent] + np.einsum("bij,btj->bti", total[:, joint],
                                                             bone)
    return inputs + (moved - targets), moved
