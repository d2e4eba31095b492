"""Forward kinematics of a skeleton from local joint rotations, and its bone offsets on disk."""

from __future__ import annotations

import numpy as np
import yaml

from lib.data.rotations import rot6d_to_matrix_np
from lib.data.skeletons import Skeleton
from lib.errors import InputFileError

# Key of the bone offsets in a dataset's skeleton.yaml.
OFFSETS_KEY = "offsets"


def load_bone_offsets(path: str, skeleton: Skeleton) -> np.ndarray:
    """The ``offsets`` of a skeleton.yaml: each joint's position in its parent's frame.

    Returns:
        Offsets in metres, one row per joint (the root's row is ignored by the kinematics).

    Shape:
        returns (J, 3).
    """
    with open(path, encoding="utf-8") as handle:
        spec = yaml.safe_load(handle) or {}
    if OFFSETS_KEY not in spec:
        raise InputFileError(f"{path}: the rot representation needs '{OFFSETS_KEY}', one "
                             "[x, y, z] per joint in metres (the joint's position in its parent's "
                             "frame); see tools/build_rot_sample.py")
    offsets = np.asarray(spec[OFFSETS_KEY], dtype=np.float64)
    if offsets.shape != (skeleton.num_joints, 3):
        raise InputFileError(f"{path}: '{OFFSETS_KEY}' has shape {offsets.shape}, expected "
                             f"({skeleton.num_joints}, 3) for the {skeleton.num_joints} joints")
    return offsets


def forward_kinematics(rotations: np.ndarray, offsets: np.ndarray,
                       skeleton: Skeleton) -> np.ndarray:
    """Joint positions from local rotations, with the root at the origin.

    A joint's global rotation is its parent's global rotation times its local rotation; its
    position is its parent's position plus the parent's global rotation applied to its offset.

    Args:
        rotations: local rotation matrix of every joint (the root's is the global orientation).
        offsets: each joint's position in its parent's frame (metres).
        skeleton: the kinematic tree (parents).

    Returns:
        Root-relative joint positions in the offsets' units.

    Shape:
        rotations: (T, J, 3, 3); offsets: (J, 3) -> (T, J, 3).
    """
    frames, joints = rotations.shape[:2]
    if rotations.shape[2:] != (3, 3) or offsets.shape != (joints, 3) or \
            skeleton.num_joints != joints:
        raise ValueError(f"rotations {rotations.shape}, offsets {offsets.shape} and skeleton "
                         f"{skeleton.name} ({skeleton.num_joints} joints) do not agree on J")
    global_rot = np.empty_like(rotations)
    positions = np.zeros((frames, joints, 3), dtype=rotations.dtype)
    for joint in skeleton.topological_order():
        parent = skeleton.parents[joint]
        if parent < 0:
            global_rot[:, joint] = rotations[:, joint]
            continue
        global_rot[:, joint] = global_rot[:, parent] @ rotations[:, joint]
        positions[:, joint] = positions[:, parent] + global_rot[:, parent] @ offsets[joint]
    return positions


def rot6d_positions(rot6d: np.ndarray, offsets: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Forward kinematics of 6D local rotations (projected onto rotations first).

    Shape:
        rot6d: (T, J, 6); offsets: (J, 3) -> (T, J, 3).
    """
    return forward_kinematics(rot6d_to_matrix_np(rot6d), offsets, skeleton)
