"""AIST++ dance slices as bandai21 motion: another capture, another kind of motion.

``../shared/data/real/aistpp_edge_gt_slices`` holds five 5-second AIST++ dance slices (30 fps,
SMPL 24-joint positions from a fixed neutral body, metres, z up; CC BY 4.0, Li et al., "AI
Choreographer", ICCV 2021). The embedded sample and its unseen-motion protocol use Bandai
Namco's actions and styles only; these slices are the one other motion in reach. This module
maps them onto the bandai21 skeleton, so that checkpoints trained on the sample can refine
them:

- joints: the SMPL joint at the same place in the chain (pelvis, spine1, spine3, neck, head,
  collars, shoulders, elbows, wrists, hips, knees, ankles, feet); SMPL's spine2 and hand
  joints are dropped;
- axes: z up -> y up (a rotation, so left stays left), feet on the floor (each clip's lowest
  ankle or foot at y 0);
- bone lengths: Bandai's mean bone lengths, directions kept (``retarget``). SMPL places some
  joints elsewhere than Bandai's rig (collar to shoulder 2.4 x as long, chest bone 2.2 x);
  without this the test would mix new motion with a new joint definition. The unseen set's
  random bodies are drawn on top, as for the Bandai clips.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lib.data.error_model import rescale_bones  # noqa: E402
from lib.data.skeletons import get_skeleton  # noqa: E402
from lib.errors import InputFileError  # noqa: E402
from lib.utils.safe_load import load_npz  # noqa: E402
from tools.build_sample_data import SEQUENCE_PREFIX  # noqa: E402

AISTPP_SOURCE = "../shared/data/real/aistpp_edge_gt_slices/derived_joints3d_smpl24.npz"
SMPL24_JOINTS = ("pelvis", "l_hip", "r_hip", "spine1", "l_knee", "r_knee", "spine2", "l_ankle",
                 "r_ankle", "spine3", "l_foot", "r_foot", "neck", "l_collar", "r_collar",
                 "head", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
                 "l_hand", "r_hand")
#: The SMPL joint of each bandai21 joint, in bandai21's order.
BANDAI21_FROM_SMPL24 = {
    "Hips": "pelvis", "Spine": "spine1", "Chest": "spine3", "Neck": "neck", "Head": "head",
    "Shoulder_L": "l_collar", "UpperArm_L": "l_shoulder", "LowerArm_L": "l_elbow",
    "Hand_L": "l_wrist", "Shoulder_R": "r_collar", "UpperArm_R": "r_shoulder",
    "LowerArm_R": "r_elbow", "Hand_R": "r_wrist", "UpperLeg_L": "l_hip",
    "LowerLeg_L": "l_knee", "Foot_L": "l_ankle", "Toes_L": "l_foot", "UpperLeg_R": "r_hip",
    "LowerLeg_R": "r_knee", "Foot_R": "r_ankle", "Toes_R": "r_foot",
}
SMPL24_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
                  20, 21)


def bone_lengths(motion: np.ndarray, parents: tuple[int, ...]) -> np.ndarray:
    """Mean length over frames of the bone from each joint's parent to it (root: 0).

    Shape:
        motion (T, J, 3) -> (J,).
    """
    lengths = np.zeros(len(parents))
    for joint, parent in enumerate(parents):
        if parent >= 0:
            lengths[joint] = np.linalg.norm(motion[:, joint] - motion[:, parent], axis=-1).mean()
    return lengths


def retarget(motion: np.ndarray, parents: tuple[int, ...], lengths: np.ndarray) -> np.ndarray:
    """The motion with every bone at ``lengths``, directions and root kept.

    Shape:
        motion (T, J, 3), lengths (J,) -> (T, J, 3).
    """
    scales = lengths / np.maximum(bone_lengths(motion, parents), 1e-9)
    scales[np.asarray(parents) < 0] = 1.0
    return rescale_bones(motion, parents, scales)


def to_bandai21(smpl24_z_up: np.ndarray) -> np.ndarray:
    """SMPL 24-joint positions, z up -> bandai21 joints, y up, lowest ankle or foot at y 0.

    Shape:
        (T, 24, 3) -> (T, 21, 3).
    """
    skeleton = get_skeleton("bandai21")
    order = [SMPL24_JOINTS.index(BANDAI21_FROM_SMPL24[name]) for name in skeleton.joint_names]
    x, y, z = np.moveaxis(np.asarray(smpl24_z_up, dtype=np.float64)[:, order], -1, 0)
    motion = np.stack([x, z, -y], axis=-1)  # a rotation about x: z up becomes y up
    feet = [skeleton.joint_names.index(name) for name in ("Foot_L", "Toes_L", "Foot_R", "Toes_R")]
    motion[..., 1] -= motion[:, feet, 1].min()
    return motion


def aistpp_motions(source: Path, bandai_source: Path) -> tuple[dict[str, np.ndarray], float]:
    """Every slice of ``source`` as bandai21 motion with Bandai's mean bone lengths, and the fps.

    Shape:
        -> {slice name: (T, 21, 3) metres, y up}.
    """
    data = load_npz(str(source))
    names = sorted(key for key in data if "_slice" in key)
    if "fps" not in data or not names:
        raise InputFileError(f"{source}: expected AIST++ slices '<sequence>_slice<k>' of shape "
                             "(T, 24, 3) and 'fps' (--source, see ../shared/data/real)")
    for name in names:
        if data[name].ndim != 3 or data[name].shape[1:] != (24, 3):
            raise InputFileError(f"{source}: slice {name!r} has shape {data[name].shape}, "
                                 "expected (T, 24, 3) SMPL joint positions")
    lengths = bandai_bone_lengths(bandai_source)
    parents = get_skeleton("bandai21").parents
    motions = {name: retarget(to_bandai21(data[name]), parents, lengths) for name in names}
    return motions, float(data["fps"])


def bandai_bone_lengths(bandai_source: Path) -> np.ndarray:
    """Mean bone lengths of the Bandai clips (over clips of their per-clip means).

    Shape:
        -> (21,).
    """
    data = load_npz(str(bandai_source))
    parents = get_skeleton("bandai21").parents
    clips = [key for key in data if key.startswith(SEQUENCE_PREFIX)]
    return np.mean([bone_lengths(np.asarray(data[key], dtype=np.float64), parents)
                    for key in clips], axis=0)
