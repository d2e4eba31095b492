"""The smpl representation: 6D loading, the body model on a synthetic SMPL file, end to end."""

import json
import os

import numpy as np
import pytest
from torch import nn

import eval as eval_entry
import train as train_entry
from lib.core.evaluation import score
from lib.core.inference import refine_sequences
from lib.data.normalize import WindowNormalizer
from lib.data.smoothnet_io import load_split
from lib.models.body_model import find_smpl_file, load_body_model
from tests.conftest import make_pairs, write_split
from tests.synthetic_smpl import write_smpl_split, write_synthetic_smpl, write_synthetic_smpl_pickle


@pytest.fixture(scope="module")
def smpl_data(tmp_path_factory):
    """Synthetic SMPL model plus tiny aist (trans, scaling) and pw3d (shape) smpl splits."""
    root = tmp_path_factory.mktemp("smpl")
    rng = np.random.default_rng(7)
    model_dir = str(root / "smpl_model")
    write_synthetic_smpl(model_dir)
    base = str(root / "poses")
    for dataset, estimator in (("aist", "vibe"), ("pw3d", "spin")):
        write_smpl_split(base, dataset, estimator, "train", [40, 36, 30, 20], rng)
        write_smpl_split(base, dataset, estimator, "test", [30, 12], rng)
    return base, model_dir


def test_loader_gives_6d_rotations_and_betas(smpl_data):
    base, _ = smpl_data
    seq_set = load_split(base, "aist", "vibe", "smpl", "test")
    assert seq_set.skeleton.name == "smpl24"
    assert seq_set.detected[0].shape == (30, 24, 6)
    assert seq_set.side["det_shape"][1].shape == (12, 10)
    assert not seq_set.side["gt_shape"][0].any()  # aist: trans + scaling, mean body


def test_missing_model_says_which_file_and_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="SMPL_NEUTRAL.npz.*smpl.is.tue.mpg.de"):
        find_smpl_file(str(tmp_path))


def test_estimate_without_shape_is_a_clear_error(tmp_path, rng):
    dets, gts = make_pairs(rng, [20], 24, 3)
    write_split(str(tmp_path), "pw3d", "spin", "smpl", "test", dets, gts)
    with pytest.raises(ValueError, match="no key 'shape'"):
        load_split(str(tmp_path), "pw3d", "spin", "smpl", "test")


def test_identity_refinement_keeps_the_input_metrics(smpl_data):
    base, model_dir = smpl_data
    body = load_body_model(model_dir)
    seq_set = load_split(base, "pw3d", "spin", "smpl", "test")
    normalizer = WindowNormalizer(24, 6, mode="fixed")
    refined = refine_sequences(nn.Identity(), normalizer, seq_set.detected, window=16, step=4)
    before, after = score(seq_set, seq_set.detected, body_model=body), \
        score(seq_set, refined, body_model=body)
    for key in ("mpjpe", "pa_mpjpe", "accel", "mpvpe"):
        assert after[key] == pytest.approx(before[key], rel=1e-4), key
    assert before["mpjpe"] > 1.0 and before["mpvpe"] > 1.0
    perfect = score(seq_set, seq_set.groundtruth, body_model=body)  # same betas in both files
    assert perfect["mpjpe"] < 1e-3 and perfect["mpvpe"] < 1e-3


def test_smpl_training_and_evaluation_end_to_end(smpl_data, tmp_path):
    base, model_dir = smpl_data
    common = ["--cfg", "configs/smoke.yaml", "--dataset_name", "aist", "--estimator", "vibe",
              "--body_representation", "smpl"]
    opts = ["DATASET.BASE_DIR", base, "SMPL_MODEL_DIR", model_dir]
    assert train_entry.main(common + opts + ["OUTPUT_DIR", str(tmp_path), "EXP_NAME", "s"]) == 0
    checkpoint = os.path.join(str(tmp_path), "s", "checkpoints", "best.pth")
    out = str(tmp_path / "smpl.json")
    assert eval_entry.main(common + ["--checkpoint", checkpoint, "--json", out] + opts) == 0
    rows = json.load(open(out))["aist_vibe_smpl"]
    assert set(rows) == {"input", "motionrefinenet"}
    assert rows["motionrefinenet"]["frames"] == 42
    assert np.isfinite(rows["motionrefinenet"]["mpvpe"])


def test_lsp14_regressor_takes_13_smpl_joints_and_the_extra_head_top(rng):
    from lib.models.body_model import lsp14_regressor

    smpl, extra = rng.random((24, 50)), rng.random((9, 50))
    lsp = lsp14_regressor(smpl, extra)
    assert lsp.shape == (14, 50)
    assert np.allclose(lsp[0], smpl[8]) and np.allclose(lsp[13], extra[3])  # r-ankle, head top


def test_body_model_from_a_chumpy_free_pickle_matches_the_npz(tmp_path):
    pytest.importorskip("scipy")
    npz_model = load_body_model(os.path.dirname(write_synthetic_smpl(str(tmp_path / "a"))))
    pkl_model = load_body_model(write_synthetic_smpl_pickle(str(tmp_path / "b")))
    rng = np.random.default_rng(1)
    pose, betas = rng.normal(0, 0.2, (5, 72)), rng.normal(0, 1, (5, 10))
    for from_npz, from_pkl in zip(npz_model.sequence(pose, betas),
                                  pkl_model.sequence(pose, betas)):
        np.testing.assert_allclose(from_pkl, from_npz, atol=1e-6)
