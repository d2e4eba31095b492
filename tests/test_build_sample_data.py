"""The sample builder's segment lengths: a longer training split leaves the test split alone."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lib.data.smoothnet_io import load_split
from tests.bandai_source import SOURCE, needs_shared

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_FILES = ("sample_sim_3D/detected/sample_sim_3D_test.npz",
              "sample_sim_3D/groundtruth/sample_gt_3D_test.npz",
              "sample_sim_2D/detected/sample_sim_2D_test.npz",
              "sample_sim_2D/groundtruth/sample_gt_2D_test.npz")


def build(out: Path, *options: str) -> Path:
    subprocess.run([sys.executable, "tools/build_sample_data.py", "--source", str(SOURCE),
                    "--out", str(out), *options], cwd=REPO_ROOT, check=True,
                   capture_output=True)
    return out


@pytest.fixture(scope="module")
def default_and_longer(tmp_path_factory):
    root = tmp_path_factory.mktemp("built")
    return build(root / "default"), build(root / "longer", "--train-max-frames", "120")


@needs_shared
def test_train_max_frames_leaves_the_test_split_byte_identical(default_and_longer):
    default, longer = default_and_longer
    for name in TEST_FILES:
        assert (default / name).read_bytes() == (longer / name).read_bytes(), name


@needs_shared
@pytest.mark.parametrize("representation", ["3D", "2D"])
def test_train_max_frames_lengthens_the_same_training_clips(default_and_longer,
                                                            representation):
    default, longer = (load_split(str(root), "sample", "sim", representation, "train")
                       for root in default_and_longer)
    assert longer.sequence_names == default.sequence_names
    lengths = np.array([len(s) for s in longer.groundtruth])
    default_lengths = np.array([len(s) for s in default.groundtruth])
    assert default_lengths.max() == 76 and lengths.max() == 120
    # a clip shorter than either limit is kept whole by both; every other one grows
    assert np.all(lengths >= default_lengths)
    assert np.all((lengths == default_lengths) == (default_lengths < 76))
