"""The error-type stress test (tools/error_stress.py): its error families and its table."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from lib.errors import ConfigError, MissingFileError, OutputExistsError
from tests.conftest import random_walk, write_split
from tests.refine_fixtures import tiny_checkpoint
from tools import error_stress


@pytest.fixture
def walks() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [random_walk(rng, frames, 21, 3) for frames in (400, 300)]


@pytest.fixture
def walks_2d() -> list[np.ndarray]:
    """Pixel-scale 2D motions: about 200 px per metre around the middle of a 1000-px image."""
    rng = np.random.default_rng(1)
    return [500 + 200 * random_walk(rng, frames, 21, 2) for frames in (400, 300)]


def _errors(family: str, walks: list[np.ndarray], seed: int = 7,
            representation: str = "3D") -> np.ndarray:
    spoiled = error_stress.spoil(walks, family, seed, representation)
    assert all(s.dtype == np.float32 and s.shape == w.shape for s, w in zip(spoiled, walks))
    return np.concatenate([s - w for s, w in zip(spoiled, walks)])


def test_clean_is_the_ground_truth(walks):
    assert np.abs(_errors("clean", walks)).max() == 0


@pytest.mark.parametrize("family, std", (("white_20mm", 0.02), ("white_50mm", 0.05),
                                         ("smooth_50mm", 0.05)))
def test_noise_families_have_their_size(family, std, walks):
    errors = _errors(family, walks)
    assert errors.std() == pytest.approx(std, rel=0.05)
    # White noise is uncorrelated from frame to frame; smoothed noise nearly repeats itself.
    lag_one = np.corrcoef(errors[1:400].ravel(), errors[:399].ravel())[0, 1]
    assert (lag_one > 0.9) if family.startswith("smooth") else abs(lag_one) < 0.05


def test_spikes_move_a_few_joints_by_their_size(walks):
    norms = np.linalg.norm(_errors("spikes", walks), axis=-1)
    moved = norms > 1e-6
    assert 0.02 < moved.mean() < 0.06  # 2 % of the pairs start a jump of 1-3 frames
    assert np.median(norms[moved]) == pytest.approx(0.2, rel=1e-3)


def test_offsets_are_constant_over_time(walks):
    for spoiled, walk in zip(error_stress.spoil(walks, "offset_40mm", 7), walks):
        error = spoiled - walk
        np.testing.assert_allclose(error, np.broadcast_to(error[:1], error.shape), atol=1e-6)
        assert 0.01 < error[0].std() < 0.08


def test_lag_repeats_the_ground_truth_three_frames_late(walks):
    spoiled = error_stress.spoil(walks, "lag_3", 7)[0]
    late = spoiled[3:] - walks[0][:-3]
    assert late.std() == pytest.approx(0.01, rel=0.05) and abs(late.mean()) < 1e-3


def test_draws_depend_on_seed_family_and_sequence_only(walks):
    again = error_stress.spoil(walks[::-1], "mixed", 7)[::-1]
    first = error_stress.spoil(walks, "mixed", 7)
    # Reversing the sequences changes their indices, hence their draws; the same call repeats.
    np.testing.assert_array_equal(first[0], error_stress.spoil(walks, "mixed", 7)[0])
    assert not np.array_equal(first[0], again[0])
    assert not np.array_equal(first[0], error_stress.spoil(walks, "mixed", 8)[0])


def test_unknown_family_is_refused():
    with pytest.raises(ConfigError, match="'wobble'"):
        error_stress.check_families("clean,wobble")
    assert error_stress.check_families(None, "2D") == list(error_stress.FAMILIES["2D"])
    with pytest.raises(ConfigError, match=r"\['white_20mm'\] not among the 2D families.*white_4px"):
        error_stress.check_families("clean,white_20mm", "2D")


def test_2d_families_are_the_3d_ones_in_pixels(walks_2d):
    # Same families in the same order (so the same seeding), sizes at 0.2 px per mm.
    def stems(representation):
        return [re.sub(r"_\d+(mm|px)$", "", name) for name in error_stress.FAMILIES[representation]]

    assert stems("2D") == stems("3D") and len(stems("2D")) == 8
    for family, std in (("white_4px", 4.0), ("white_10px", 10.0), ("smooth_10px", 10.0)):
        errors = _errors(family, walks_2d, representation="2D")
        assert errors.shape[-1] == 2 and errors.std() == pytest.approx(std, rel=0.05)
    norms = np.linalg.norm(_errors("spikes", walks_2d, representation="2D"), axis=-1)
    assert np.median(norms[norms > 1e-3]) == pytest.approx(40.0, rel=1e-3)
    offsets = _errors("offset_8px", walks_2d, representation="2D")
    assert 4 < offsets.std() < 12 and np.abs(np.diff(offsets[:400], axis=0)).max() < 1e-3


def _stress_set(tmp_path, walks) -> str:
    base = str(tmp_path / "poses")
    write_split(base, "sample", "sim", "3D", "test", walks, walks)
    return base


def test_tool_scores_input_filters_and_checkpoints(tmp_path, walks):
    base = _stress_set(tmp_path, walks)
    checkpoint = tiny_checkpoint(str(tmp_path / "tiny.pth"))
    out = tmp_path / "stress.json"
    args = ["--base-dir", base, "--checkpoint", checkpoint, "--filter", "gaussian",
            "--families", "clean,white_20mm", "--json", str(out),
            "--markdown", str(tmp_path / "stress.md")]
    assert error_stress.main(args) == 0
    results = json.loads(out.read_text())["results"]
    assert list(results) == ["clean", "white_20mm"]
    assert list(results["clean"]) == ["input", "gaussian", "motionrefinenet"]
    assert results["clean"]["input"]["mpjpe"] == 0
    noisy = results["white_20mm"]
    assert 25 < noisy["input"]["mpjpe"] < 60  # mm: 1.6 sigma per joint, more once root-aligned
    assert noisy["gaussian"]["mpjpe"] < noisy["input"]["mpjpe"]
    assert noisy["gaussian"]["accel"] < noisy["input"]["accel"] / 2
    table = (tmp_path / "stress.md").read_text()
    assert "| white_20mm |" in table and "motionrefinenet" in table
    with pytest.raises(OutputExistsError, match="--json"):
        error_stress.main(args)


def test_tool_scores_2d_sets_in_pixels(tmp_path, walks_2d):
    base = str(tmp_path / "poses")
    write_split(base, "sample", "sim", "2D", "test", walks_2d, walks_2d)
    checkpoint = tiny_checkpoint(str(tmp_path / "tiny2d.pth"), rep="2D")
    out = tmp_path / "stress2d.json"
    assert error_stress.main(["--body-representation", "2D", "--base-dir", base,
                              "--checkpoint", checkpoint, "--filter", "oneeuro",
                              "--families", "white_4px", "--json", str(out),
                              "--markdown", str(tmp_path / "stress2d.md")]) == 0
    stored = json.loads(out.read_text())
    assert stored["unit"] == "px" and stored["representation"] == "2D"
    noisy = stored["results"]["white_4px"]
    assert list(noisy) == ["input", "oneeuro", "motionrefinenet"]
    assert 4 < noisy["input"]["mpjpe"] < 6  # px: 4 px per axis, 1.25 sigma per joint in 2D
    # The 2D config's One-Euro (beta for pixels) smooths; the 3D default would hardly touch it.
    assert noisy["oneeuro"]["accel"] < noisy["input"]["accel"] / 3
    assert "in px, Accel in px/frame^2" in (tmp_path / "stress2d.md").read_text()


def test_missing_set_names_this_tools_flags(tmp_path):
    with pytest.raises(MissingFileError, match="not found.*--base-dir"):
        error_stress.main(["--base-dir", str(tmp_path / "none"), "--families", "clean"])
