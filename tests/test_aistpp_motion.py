"""AIST++ dance slices mapped onto bandai21 (tools/aistpp_motion.py) and built as an unseen set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lib.data.skeletons import get_skeleton
from lib.errors import InputFileError
from tests.bandai_source import REPO_ROOT, SOURCE, needs_shared
from tools import aistpp_motion, unseen_protocol

AISTPP = (REPO_ROOT / aistpp_motion.AISTPP_SOURCE).resolve()
needs_aistpp = pytest.mark.skipif(not (AISTPP.is_file() and SOURCE.is_file()),
                                  reason="needs ../shared/data/real (AIST++ slices and Bandai)")
BANDAI21 = get_skeleton("bandai21")


def _joint(name: str) -> int:
    return BANDAI21.joint_names.index(name)


def _left_is_left(motion: np.ndarray) -> float:
    """Share of frames whose left hip lies on the body's left of its forward (toes) direction."""
    forward = (motion[:, _joint("Toes_L")] + motion[:, _joint("Toes_R")]
               - motion[:, _joint("Foot_L")] - motion[:, _joint("Foot_R")])
    forward[:, 1] = 0
    hips = motion[:, _joint("UpperLeg_L")] - motion[:, _joint("UpperLeg_R")]
    return float(np.mean(np.einsum("ti,ti->t", hips, np.cross([0.0, 1.0, 0.0], forward)) > 0))


def test_retarget_sets_lengths_and_keeps_directions_and_root():
    rng = np.random.default_rng(0)
    motion = rng.normal(size=(6, 21, 3))
    lengths = rng.uniform(0.05, 0.5, 21)
    moved = aistpp_motion.retarget(motion, BANDAI21.parents, lengths)
    np.testing.assert_allclose(moved[:, 0], motion[:, 0])
    for joint, parent in enumerate(BANDAI21.parents):
        if parent < 0:
            continue
        before, after = motion[:, joint] - motion[:, parent], moved[:, joint] - moved[:, parent]
        # One factor per bone (the mean length over frames is set): directions kept.
        ratio = np.linalg.norm(after, axis=-1) / np.linalg.norm(before, axis=-1)
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)
        np.testing.assert_allclose(after / np.linalg.norm(after, axis=-1, keepdims=True),
                                   before / np.linalg.norm(before, axis=-1, keepdims=True),
                                   atol=1e-9)
    np.testing.assert_allclose(aistpp_motion.bone_lengths(moved, BANDAI21.parents)[1:],
                               lengths[1:], rtol=1e-9)


def test_to_bandai21_turns_z_up_into_y_up_and_keeps_left_left():
    smpl = np.zeros((2, 24, 3))
    index = aistpp_motion.SMPL24_JOINTS.index
    smpl[:, index("head"), 2] = 1.6    # z up: the head high
    smpl[:, index("l_hip"), 0] = 0.1   # left hip towards +x
    smpl[:, index("l_ankle"), 2] = 0.1
    smpl[:, index("r_ankle"), 2] = 0.1
    motion = aistpp_motion.to_bandai21(smpl)
    assert motion.shape == (2, 21, 3)
    # The head is the highest joint along y; the lowest ankle or foot sits at y 0.
    assert motion[0, _joint("Head"), 1] == pytest.approx(1.6)
    assert motion[:, [_joint("Foot_L"), _joint("Toes_L"), _joint("Foot_R"),
                      _joint("Toes_R")], 1].min() == 0
    np.testing.assert_allclose(motion[0, _joint("UpperLeg_L")], [0.1, 0.0, 0.0])  # a rotation


@needs_aistpp
def test_slices_map_onto_bandai_bodies_facing_as_bandai_does():
    motions, fps = aistpp_motion.aistpp_motions(AISTPP, SOURCE)
    assert fps == 30 and len(motions) == 5
    assert all(motion.shape == (150, 21, 3) for motion in motions.values())
    bandai = np.load(SOURCE)
    walk = np.asarray(bandai["dataset-1_walk_normal_001"], dtype=np.float64)
    assert _left_is_left(walk) > 0.9  # the convention the check reads
    lengths = aistpp_motion.bandai_bone_lengths(SOURCE)
    for motion in motions.values():
        assert _left_is_left(motion) > 0.9  # z up -> y up did not mirror the body
        head_height = motion[:, _joint("Head"), 1] - motion[:, _joint("Hips"), 1]
        assert 0.3 < head_height.mean() < 0.8
        np.testing.assert_allclose(aistpp_motion.bone_lengths(motion, BANDAI21.parents)[1:],
                                   lengths[1:], rtol=1e-6)


def test_a_file_without_slices_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, fps=np.float32(30), walk=np.zeros((5, 24, 3)))
    with pytest.raises(InputFileError, match="other.npz.*_slice"):
        aistpp_motion.aistpp_motions(path, SOURCE)
    np.savez(path, fps=np.float32(30), a_slice0=np.zeros((5, 17, 3)))
    with pytest.raises(InputFileError, match="'a_slice0' has shape \\(5, 17, 3\\)"):
        aistpp_motion.aistpp_motions(path, SOURCE)


def build_aistpp_set(out: Path, *args: str) -> dict:
    """Run the unseen-protocol builder on the AIST++ slices into ``out``; its 3D manifest."""
    assert unseen_protocol.main(["--motion", "aistpp", "--out", str(out), *args]) == 0
    return json.loads((out / "sample_unseen_3D" / "manifest.json").read_text())


@needs_aistpp
@needs_shared
def test_unseen_protocol_builds_the_aistpp_set(tmp_path):
    out = tmp_path / "aistpp"
    manifest = build_aistpp_set(out, "--max-frames", "40", "--seed", "3")
    assert manifest["motion"].startswith("AIST++") and manifest["split_seed"] is None
    assert [entry["frames"] for entry in manifest["sequences"]] == [40] * 5
    assert manifest["input_error"]["mpjpe"] > 20  # errors were drawn (mm)
    for rep in ("3D", "2D"):
        assert Path(out / f"sample_unseen_{rep}" / "detected" /
                    f"sample_unseen_{rep}_test.npz").is_file()


@needs_aistpp
@needs_shared
def test_unseen_protocol_keeps_the_first_aistpp_slices(tmp_path):
    manifest = build_aistpp_set(tmp_path / "aistpp", "--max-frames", "20", "--max-sequences", "2")
    every_slice = sorted(key for key in np.load(AISTPP).files if "_slice" in key)
    assert [entry["stem"] for entry in manifest["sequences"]] == every_slice[:2]
