"""Other joint angles for training windows (TRAIN.PERTURB_POSES, lib/data/pose_perturbation.py)."""

import numpy as np
import pytest

from lib.core.builders import build_train_dataset
from lib.core.config import get_cfg_defaults
from lib.data import pose_perturbation
from lib.data.dataset import PoseWindowDataset
from lib.data.pose_perturbation import perturb_poses, random_rotations
from lib.data.skeletons import get_skeleton
from lib.data.smoothnet_io import SequenceSet
from tests.test_body_reshaping import _bones
from tests.test_mirroring import _raw

BANDAI = get_skeleton("bandai21")


def test_rotations_are_proper_with_angles_of_the_given_spread():
    turns = random_rotations(np.random.default_rng(0), 4000, 0.3)
    np.testing.assert_allclose(turns @ turns.transpose(0, 2, 1), np.broadcast_to(np.eye(3),
                               turns.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(turns), 1.0, atol=1e-12)
    angles = np.arccos(np.clip((np.trace(turns, axis1=1, axis2=2) - 1) / 2, -1, 1))
    assert np.median(angles) == pytest.approx(0.6745 * 0.3, rel=0.05)  # median of |N(0, s)|
    np.testing.assert_allclose(random_rotations(np.random.default_rng(0), 3, 0.0),
                               np.broadcast_to(np.eye(3), (3, 3, 3)))


def test_each_window_turns_every_bone_rigidly_and_keeps_lengths_root_and_error():
    det, gt = _raw(4, 16)
    inputs, targets = np.stack(det), np.stack(gt)
    new_inputs, new_targets = perturb_poses(inputs, targets, BANDAI.parents,
                                            np.random.default_rng(0), 0.25)
    old, new = _bones(targets), _bones(new_targets)  # (B, T, bones, 3)
    np.testing.assert_allclose(np.linalg.norm(new, axis=-1), np.linalg.norm(old, axis=-1),
                               rtol=1e-9)
    np.testing.assert_allclose(new_targets[:, :, 0], targets[:, :, 0])
    np.testing.assert_allclose(new_inputs - new_targets, inputs - targets, atol=1e-12)
    # One rotation per bone and window, the same in every frame: new = R old for all frames.
    for window in range(len(targets)):
        for bone in range(old.shape[2]):
            fitted, *_ = np.linalg.lstsq(old[window, :, bone], new[window, :, bone], rcond=None)
            np.testing.assert_allclose(old[window, :, bone] @ fitted, new[window, :, bone],
                                       atol=1e-9)
    moved = np.linalg.norm(new_targets - targets, axis=-1).mean(axis=(1, 2))
    assert np.all(moved > 0.02) and np.ptp(moved) > 0.005  # new poses, each window its own


def test_a_turned_bone_carries_its_subtree(monkeypatch):
    """Turn only the upper arm (the bone into UpperArm_L): the whole arm turns with it."""
    det, gt = _raw(1, 4)
    targets = np.stack(gt)
    upper = BANDAI.joint_names.index("UpperArm_L")
    turn = random_rotations(np.random.default_rng(1), 1, 0.5)[0]

    def only_the_upper_arm(rng, count, sigma):
        turns = np.broadcast_to(np.eye(3), (count, 3, 3)).copy()
        turns[upper] = turn  # window 0, joint `upper`
        return turns

    monkeypatch.setattr(pose_perturbation, "random_rotations", only_the_upper_arm)
    _, moved = perturb_poses(targets, targets, BANDAI.parents, np.random.default_rng(0), 0.5)
    arm = [BANDAI.joint_names.index(name) for name in ("UpperArm_L", "LowerArm_L", "Hand_L")]
    for joint in arm:  # every bone of the arm turned by the same rotation
        parent = BANDAI.parents[joint]
        np.testing.assert_allclose(moved[0, :, joint] - moved[0, :, parent],
                                   (targets[0, :, joint] - targets[0, :, parent]) @ turn.T,
                                   atol=1e-12)
    others = [j for j in range(BANDAI.num_joints) if j not in arm]
    np.testing.assert_allclose(moved[..., others, :], targets[..., others, :], atol=1e-12)


def test_sigma_zero_moves_nothing():
    cfg = get_cfg_defaults()
    cfg.merge_from_list(["TRAIN.PERTURB_POSES", "1.0", "TRAIN.PERTURB_POSES_SIGMA", "0.0"])
    det, gt = _raw()
    sets = [SequenceSet("sample_sim_3D", "train", BANDAI, "3D", det, gt, ["a", "b"])]
    keys = [(0, i) for i in range(18)]
    # Every window picked and turned by the identity.
    np.testing.assert_allclose(build_train_dataset(cfg, sets, det, gt).__getitems__(keys)["target"],
                               PoseWindowDataset(det, gt, 32).__getitems__(keys)["target"],
                               atol=1e-6)
