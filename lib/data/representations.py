"""Body representations as data: npz key, numbers per joint in the file and in the model, units."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Representation:
    """How one body representation is stored, refined and reported.

    Attributes:
        name: the ``rep`` of the SmoothNet layout (2D, 3D, smpl), or rot.
        pose_key: npz key of the per-sequence pose arrays.
        file_dim: numbers per joint in the file (3 for SMPL axis-angle).
        coord_dim: numbers per joint the model sees (6 for rotations).
        unit: unit of the reported position errors.
        unit_scale: factor from position units (metres or pixels) to ``unit``.
        is_rotation: poses are joint rotations, scored through a body model or kinematics.
    """

    name: str
    pose_key: str
    file_dim: int
    coord_dim: int
    unit: str
    unit_scale: float
    is_rotation: bool = False


REPRESENTATIONS: dict[str, Representation] = {
    "3D": Representation("3D", "joints_3d", 3, 3, "mm", 1000.0),
    "2D": Representation("2D", "keypoints_2d", 2, 2, "px", 1.0),
    # SMPL: 24 axis-angle joint rotations in the file, refined as 6D rotations, scored on the
    # body model's joints and vertices (metres -> mm).
    "smpl": Representation("smpl", "pose", 3, 6, "mm", 1000.0, is_rotation=True),
    # 6D local joint rotations of a kinematic tree (npz key rot6d), scored through forward
    # kinematics of the folder's skeleton.yaml (bone offsets in metres -> mm).
    "rot": Representation("rot", "rot6d", 6, 6, "mm", 1000.0, is_rotation=True),
}


def get_representation(name: str) -> Representation:
    """Look up a representation; an unknown name lists the valid ones."""
    if name not in REPRESENTATIONS:
        raise KeyError(f"unknown body representation {name!r}; valid: {sorted(REPRESENTATIONS)}")
    return REPRESENTATIONS[name]
