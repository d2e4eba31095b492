"""Skeletons as data: joint names, parents, root joints, frame rate and degree-of-freedom groups."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import yaml

from lib.errors import InputFileError, UnknownNameError

logger = logging.getLogger(__name__)

# Name fragments of joints that mostly follow the body's overall motion (torso, hips, shoulders,
# neck, head). Everything else (elbows, wrists, knees, ankles, hands, feet, fingers) is high-DoF.
# Checked in order: the first fragment found in a lower-cased joint name decides.
_HIGH_DOF_FRAGMENTS = (
    "elbow", "wrist", "hand", "knee", "ankle", "foot", "feet", "toe", "finger", "thumb",
    "index", "middle", "ring", "pinky", "lowerarm", "forearm", "lowerleg", "shin", "calf",
    "heel",
)
_LOW_DOF_FRAGMENTS = (
    "hip", "pelvis", "root", "spine", "chest", "torso", "thorax", "belly", "neck", "head",
    "nose", "face", "eye", "ear", "shoulder", "clavicle", "collar", "upperarm", "upperleg",
    "thigh", "jaw",
)


def dof_group(joint_name: str) -> str:
    """Return ``"low"`` or ``"high"`` for a joint name; unknown names are treated as high-DoF."""
    name = joint_name.lower().replace("_", "").replace("-", "").replace(" ", "")
    for fragment in _HIGH_DOF_FRAGMENTS:
        if fragment in name:
            return "high"
    for fragment in _LOW_DOF_FRAGMENTS:
        if fragment in name:
            return "low"
    logger.warning("joint %r matches no DoF keyword; treating it as high-DoF", joint_name)
    return "high"


@dataclass(frozen=True)
class Skeleton:
    """A kinematic tree described by data.

    Attributes:
        name: table key.
        joint_names: one name per joint, in the order of the data files.
        parents: parent index per joint, -1 for a tree root.
        root_joints: joints whose mean is the root for root-aligned metrics.
        fps: frame rate of the data.
        left_right: pairs (left, right) used by left/right swaps.
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    root_joints: tuple[int, ...]
    fps: float
    left_right: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if len(self.joint_names) != len(self.parents):
            raise ValueError(f"skeleton {self.name}: {len(self.joint_names)} names but "
                             f"{len(self.parents)} parents")
        self.topological_order()  # raises on a cycle or a bad parent index

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def topological_order(self) -> list[int]:
        """Joint indices ordered so that every parent comes before its children."""
        order: list[int] = []
        placed: set[int] = set()
        while len(order) < self.num_joints:
            ready = [j for j, p in enumerate(self.parents)
                     if j not in placed and (p == -1 or p in placed)]
            if not ready:
                raise ValueError(f"skeleton {self.name}: parents {self.parents} contain a cycle "
                                 "or an index out of range")
            order.extend(ready)
            placed.update(ready)
        return order

    def dof_joints(self) -> tuple[list[int], list[int]]:
        """Return (low-DoF joint indices, high-DoF joint indices), derived from the names."""
        groups = [dof_group(name) for name in self.joint_names]
        low = [j for j, group in enumerate(groups) if group == "low"]
        high = [j for j, group in enumerate(groups) if group == "high"]
        return low, high


def _pairs(names: tuple[str, ...], left: str, right: str) -> tuple[tuple[int, int], ...]:
    """Pair joints whose names differ only in a left/right marker."""
    index = {name: j for j, name in enumerate(names)}
    pairs = []
    for name, j in index.items():
        if left in name:
            mirror = name.replace(left, right)
            if mirror in index:
                pairs.append((j, index[mirror]))
    return tuple(pairs)


_LSP14 = ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow",
          "r_shoulder", "l_shoulder", "l_elbow", "l_wrist", "neck", "head_top")
# LSP has no pelvis joint: the hips hang from the neck through a virtual torso bone.
_LSP14_PARENTS = (1, 2, 12, 12, 3, 4, 7, 8, 12, 12, 9, 10, -1, 12)

_H36M17 = ("pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine",
           "thorax", "neck_nose", "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder",
           "r_elbow", "r_wrist")
_H36M17_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

_MPI17 = ("head_top", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow",
          "l_wrist", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "pelvis",
          "spine", "head")

_MPI17_PARENTS = (16, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1)

_JHMDB15 = ("neck", "belly", "face", "r_shoulder", "l_shoulder", "r_hip", "l_hip", "r_elbow",
            "l_elbow", "r_knee", "l_knee", "r_wrist", "l_wrist", "r_ankle", "l_ankle")
_JHMDB15_PARENTS = (-1, 0, 0, 0, 0, 1, 1, 3, 4, 5, 6, 7, 8, 9, 10)

_SMPL24 = ("pelvis", "l_hip", "r_hip", "spine1", "l_knee", "r_knee", "spine2", "l_ankle",
           "r_ankle", "spine3", "l_foot", "r_foot", "neck", "l_collar", "r_collar", "head",
           "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hand",
           "r_hand")
_SMPL24_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
                   20, 21)

_BANDAI21 = ("Hips", "Spine", "Chest", "Neck", "Head", "Shoulder_L", "UpperArm_L", "LowerArm_L",
             "Hand_L", "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R", "UpperLeg_L",
             "LowerLeg_L", "Foot_L", "Toes_L", "UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R")
_BANDAI21_PARENTS = (-1, 0, 1, 2, 3, 2, 5, 6, 7, 2, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)


def _make(name: str, names: tuple[str, ...], parents: tuple[int, ...], roots: tuple[int, ...],
          fps: float, left: str = "l_", right: str = "r_") -> Skeleton:
    return Skeleton(name, names, parents, roots, fps, _pairs(names, left, right))


SKELETONS: dict[str, Skeleton] = {
    "lsp14": _make("lsp14", _LSP14, _LSP14_PARENTS, (2, 3), 30.0),
    "h36m17": _make("h36m17", _H36M17, _H36M17_PARENTS, (0,), 50.0),
    "mpi17": _make("mpi17", _MPI17, _MPI17_PARENTS, (14,), 25.0),
    "jhmdb15": _make("jhmdb15", _JHMDB15, _JHMDB15_PARENTS, (), 30.0),
    "smpl24": _make("smpl24", _SMPL24, _SMPL24_PARENTS, (0,), 30.0),
    "bandai21": _make("bandai21", _BANDAI21, _BANDAI21_PARENTS, (0,), 30.0, "_L", "_R"),
}

# Which skeleton each dataset's position files use (SmoothNet convention).
DATASET_SKELETONS: dict[str, str] = {
    "aist": "lsp14",
    "pw3d": "lsp14",
    "h36m": "h36m17",
    "mpiinf3dhp": "mpi17",
    "mupots": "mpi17",
    "jhmdb": "jhmdb15",
    "sample": "bandai21",
}

# Estimators whose files use another layout than their dataset's default: SmoothNet evaluates
# Human3.6M's VIBE and TCMR 3D output root-aligned on joints (2, 3), the hips of the LSP order.
ESTIMATOR_SKELETONS: dict[tuple[str, str], str] = {
    ("h36m", "vibe"): "lsp14",
    ("h36m", "tcmr"): "lsp14",
}

# Frame rates that differ from the skeleton's default.
DATASET_FPS: dict[str, float] = {"aist": 60.0, "pw3d": 30.0, "h36m": 50.0, "mpiinf3dhp": 25.0,
                                 "mupots": 30.0, "jhmdb": 30.0, "sample": 30.0}


def get_skeleton(name: str) -> Skeleton:
    """Look up a skeleton by table key; unknown names list the valid ones."""
    if name not in SKELETONS:
        raise UnknownNameError(f"unknown skeleton {name!r}; valid: {sorted(SKELETONS)}")
    return SKELETONS[name]


def skeleton_for_dataset(dataset: str, estimator: str = "", num_joints: int = 0) -> Skeleton:
    """The skeleton of a SmoothNet dataset name (aist, h36m, ...) and optionally estimator.

    An estimator's special layout (ESTIMATOR_SKELETONS) gives way to the dataset's default
    when ``num_joints`` (the files' joint count, 0 if unknown) fits only the default.
    """
    if dataset not in DATASET_SKELETONS:
        raise UnknownNameError(f"unknown dataset {dataset!r}; valid: {sorted(DATASET_SKELETONS)}")
    default = get_skeleton(DATASET_SKELETONS[dataset])
    special = ESTIMATOR_SKELETONS.get((dataset, estimator))
    if special is None:
        return default
    chosen = get_skeleton(special)
    if num_joints and chosen.num_joints != num_joints == default.num_joints:
        return default
    return chosen


# Left/right name markers tried, in order, when a skeleton file lists no pairs.
_SIDE_MARKERS = (("l_", "r_"), ("_L", "_R"), ("Left", "Right"), ("left_", "right_"),
                 ("_l", "_r"))


def skeleton_from_yaml(path: str) -> Skeleton:
    """A user skeleton from YAML: ``joint_names``, ``parents``, ``fps``, optional ``root_joints``.

    Root joints default to the joints without a parent; left/right pairs are found from common
    name markers (l_/r_, _L/_R, Left/Right).
    """
    with open(path, encoding="utf-8") as handle:
        spec = yaml.safe_load(handle) or {}
    missing = [key for key in ("joint_names", "parents", "fps") if key not in spec]
    if missing:
        raise InputFileError(f"{path}: skeleton file lacks {missing}; it needs joint_names (list), "
                             "parents (list, -1 for the root) and fps")
    names, parents = tuple(spec["joint_names"]), tuple(int(p) for p in spec["parents"])
    roots = tuple(spec.get("root_joints", [j for j, p in enumerate(parents) if p == -1]))
    pairs: tuple[tuple[int, int], ...] = ()
    for left, right in _SIDE_MARKERS:
        pairs = pairs or _pairs(names, left, right)
    try:
        return Skeleton(os.path.basename(os.path.dirname(os.path.abspath(path))), names, parents,
                        roots, float(spec["fps"]), pairs)
    except ValueError as err:
        raise InputFileError(f"{path}: {err}") from None


def skeleton_to_yaml(skeleton: Skeleton, path: str) -> None:
    """Write a skeleton in the format that :func:`skeleton_from_yaml` reads."""
    spec = {"joint_names": list(skeleton.joint_names), "parents": list(skeleton.parents),
            "root_joints": list(skeleton.root_joints), "fps": skeleton.fps}
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(spec, handle, sort_keys=False)
