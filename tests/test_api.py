"""The Python API: Refiner from a checkpoint, a filter or a function, and its input checks."""

import numpy as np
import pytest

from lib.api import Refiner, fill_low_scores
from lib.data.smoothnet_io import load_split
from lib.models.filters import savgol
from tests.refine_fixtures import single_thread, tiny_checkpoint  # noqa: F401


@pytest.fixture(scope="module")
def refiner(tmp_path_factory):
    path = tiny_checkpoint(str(tmp_path_factory.mktemp("ckpt") / "tiny.pth"))
    return Refiner.from_checkpoint(path)


@pytest.fixture(scope="module")
def sample():
    return load_split("data/poses", "sample", "sim", "3D", "test")


def test_refines_sample_sequences_of_any_length(refiner, sample):
    sequences = sample.detected[:3] + [sample.detected[0][:3]]  # the last is shorter than T=8
    refined = refiner.refine(sequences)
    assert isinstance(refined, list) and len(refined) == 4
    for seq, out in zip(sequences, refined):
        assert out.shape == seq.shape and out.dtype == np.float32 and np.isfinite(out).all()
    single = refiner.refine(sequences[1])
    np.testing.assert_allclose(single, refined[1], atol=1e-5)
    assert refiner.window == 8 and refiner.info["skeleton"] == "bandai21"


@pytest.mark.parametrize("shape, match", [
    ((20, 17, 3), "expects 21 joints, got 17"),
    ((20, 21, 2), "expects 3 coordinates per joint, got 2"),
    ((20, 63), "expected a \\(T, 21, 3\\) array"),
    ((0, 21, 3), "T >= 1"),
])
def test_shape_errors_name_expected_and_got(refiner, shape, match):
    with pytest.raises(ValueError, match=match):
        refiner.refine(np.zeros(shape, dtype=np.float32))


def test_nan_is_an_error_naming_the_frame(refiner):
    poses = np.zeros((12, 21, 3), dtype=np.float32)
    poses[5, 2, 1] = np.nan
    with pytest.raises(ValueError, match=r"poses\[1\]: 1 NaN/Inf values, first at frame 5"):
        refiner.refine([np.zeros((12, 21, 3)), poses])


def test_filter_refiner_runs_the_filter_on_whole_sequences(rng):
    poses = rng.normal(size=(50, 5, 2))
    refined = Refiner.from_filter("savgol", window=11, order=2).refine(poses)
    np.testing.assert_allclose(refined, savgol(poses, 11, 2))
    assert refined.dtype == np.float64
    with pytest.raises(KeyError, match="unknown filter"):
        Refiner.from_filter("median")


def test_function_refiner_identity_is_exact(rng):
    poses = rng.normal(size=(9, 4, 3))
    out = Refiner.from_function(lambda x: x).refine(poses)
    assert out.dtype == poses.dtype and np.array_equal(out, poses)


def test_low_scores_and_nan_keypoints_are_interpolated():
    poses = np.zeros((5, 2, 2))
    poses[:, 0, 0] = [0.0, 1.0, 50.0, 3.0, 4.0]  # frame 2 is an outlier with a low score
    poses[3, 1] = np.nan
    scores = np.ones((5, 2))
    scores[2, 0] = 0.1
    filled = fill_low_scores(poses, scores, 0.3)
    assert filled[2, 0, 0] == pytest.approx(2.0)
    out = Refiner.from_function(lambda x: x).refine(poses, scores=scores)
    assert out[2, 0, 0] == pytest.approx(2.0) and np.isfinite(out).all()
    with pytest.raises(ValueError, match="scores of shape"):
        Refiner.from_function(lambda x: x).refine(poses, scores=scores[:, :1])
