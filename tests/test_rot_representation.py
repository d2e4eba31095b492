"""The rot representation: 6D joint rotations scored through forward kinematics."""

import json
import os

import numpy as np
import pytest
import yaml

import eval as eval_entry
import train as train_entry
from lib.core.evaluation import score
from lib.data.error_model import sample_error_params
from lib.data.kinematics import rot6d_positions
from lib.data.rotation_errors import (
    leaf_joints,
    simulate_rotation_batch,
    simulate_rotation_estimate,
)
from lib.data.rotations import axis_angle_to_rot6d_np
from lib.data.smoothnet_io import load_split
from tests.conftest import write_split

_CHAIN = {"joint_names": ["hips", "spine", "neck", "l_elbow", "l_wrist"],
          "parents": [-1, 0, 1, 1, 3], "root_joints": [0], "fps": 30.0,
          "offsets": [[0, 0, 0], [0, 0.3, 0], [0, 0.3, 0], [0.2, 0.2, 0], [0.25, 0, 0]]}


def _motion(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Smooth local rotations as 6D. Shape: (T, 5, 6)."""
    rotvec = rng.normal(0, 0.3, (1, 5, 3)) + np.cumsum(rng.normal(0, 0.02, (frames, 5, 3)), 0)
    return axis_angle_to_rot6d_np(rotvec).astype(np.float32)


@pytest.fixture(scope="module")
def rot_data(tmp_path_factory):
    rng = np.random.default_rng(5)
    base = str(tmp_path_factory.mktemp("rot") / "poses")
    for split, lengths in (("train", [60, 50, 40, 45, 12]), ("test", [40, 10])):
        gts = [_motion(rng, n) for n in lengths]
        dets = [simulate_rotation_estimate(g, _CHAIN["parents"], 30.0,
                                           sample_error_params(rng), rng) for g in gts]
        write_split(base, "toy", "sim", "rot", split, dets, gts)
    with open(os.path.join(base, "toy_sim_rot", "skeleton.yaml"), "w") as handle:
        yaml.safe_dump(_CHAIN, handle)
    return base


def test_rotation_errors_keep_bone_lengths_and_scale_with_strength(rot_data, rng):
    seq_set = load_split(rot_data, "toy", "sim", "rot", "test")
    offsets = seq_set.bone_offsets
    positions = rot6d_positions(seq_set.detected[0].astype(np.float64), offsets, seq_set.skeleton)
    bones = np.linalg.norm(positions[:, 1:] - positions[:, list(_CHAIN["parents"][1:])], axis=-1)
    assert np.allclose(bones, np.linalg.norm(offsets[1:], axis=-1), atol=1e-5)
    gt = np.stack([seq_set.groundtruth[0][:32]] * 16)
    weak = simulate_rotation_batch(gt, _CHAIN["parents"], 30.0, rng, strength=0.2)
    strong = simulate_rotation_batch(gt, _CHAIN["parents"], 30.0, rng, strength=1.0)
    assert weak.shape == gt.shape
    assert np.abs(weak - gt).mean() < np.abs(strong - gt).mean()


def test_simulated_rotation_errors_leave_the_leaf_joints_exact(rng):
    """A leaf's rotation moves no joint: the augmenter leaves it true, as the sample data does
    (errors there would only make training inputs differ from the data's)."""
    assert leaf_joints(_CHAIN["parents"]) == [2, 4]
    gt = _motion(rng, 32)
    batch = simulate_rotation_batch(np.stack([gt] * 4), _CHAIN["parents"], 30.0, rng)
    single = simulate_rotation_estimate(gt, _CHAIN["parents"], 30.0, sample_error_params(rng), rng)
    for estimate in (*batch, single):
        np.testing.assert_array_equal(estimate[:, [2, 4]], gt[:, [2, 4]])
        assert np.abs(estimate[:, [0, 1, 3]] - gt[:, [0, 1, 3]]).min(axis=(0, 2)).max() > 0


def test_scoring_goes_through_forward_kinematics(rot_data):
    seq_set = load_split(rot_data, "toy", "sim", "rot", "test")
    assert seq_set.detected[0].shape == (40, 5, 6)
    perfect = score(seq_set, seq_set.groundtruth)
    noisy = score(seq_set, seq_set.detected)
    assert perfect["mpjpe"] < 1e-3 and noisy["mpjpe"] > 1.0  # mm through FK
    assert perfect["frames"] == noisy["frames"] == 50


def test_missing_skeleton_file_is_a_clear_error(tmp_path, rng):
    gts = [_motion(rng, 20)]
    write_split(str(tmp_path), "sample", "sim", "rot", "test", gts, gts)
    with pytest.raises(FileNotFoundError, match="skeleton.yaml.*bone offsets"):
        load_split(str(tmp_path), "sample", "sim", "rot", "test")


def test_rot_training_with_augmentation_and_evaluation(rot_data, tmp_path):
    common = ["--cfg", "configs/smoke.yaml", "--dataset_name", "toy", "--estimator", "sim",
              "--body_representation", "rot"]
    opts = ["DATASET.BASE_DIR", rot_data]
    assert train_entry.main(common + opts + ["OUTPUT_DIR", str(tmp_path), "EXP_NAME", "r",
                                             "TRAIN.AUGMENT", "mix"]) == 0
    checkpoint = os.path.join(str(tmp_path), "r", "checkpoints", "best.pth")
    out = str(tmp_path / "rot.json")
    argv = common + ["--checkpoint", checkpoint, "--tradition", "gaussian", "--json", out] + opts
    assert eval_entry.main(argv) == 0
    rows = json.load(open(out))["toy_sim_rot"]
    assert set(rows) == {"input", "gaussian", "motionrefinenet"}
    assert rows["motionrefinenet"]["frames"] == 50


def test_committed_rotation_sample_loads_and_matches_its_readme():
    seq_set = load_split("data/poses", "sample", "sim", "rot", "test")
    assert len(seq_set.detected) == 36 and seq_set.detected[0].shape[1:] == (21, 6)
    assert seq_set.bone_offsets.shape == (21, 3)
    metrics = score(seq_set, seq_set.detected)
    assert metrics["frames"] == 2266
    assert metrics["mpjpe"] == pytest.approx(109.2, abs=0.1)
