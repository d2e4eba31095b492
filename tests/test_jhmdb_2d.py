"""2D end to end on a tiny generated jhmdb set: box normalisation, 2D augmentation, PCK and
padded frames."""

import json
import os

import numpy as np
import pytest

import eval as eval_entry
import train as train_entry
from lib.utils.checkpoint import load_checkpoint
from tests.conftest import make_pairs, object_array, write_split

# jhmdb 2D with sequences shorter than the smoke window (16) that are padded and masked.
_LENGTHS = {"train": [40, 30, 12, 35, 28], "test": [25, 9, 18]}


def _pixels(seqs: list[np.ndarray]) -> list[np.ndarray]:
    return [(160.0 + 200.0 * seq).astype(np.float32) for seq in seqs]


def _boxes(gts: list[np.ndarray]) -> np.ndarray:
    return object_array([np.concatenate([gt.min(axis=1), gt.max(axis=1)], axis=1)
                         for gt in gts])  # (T, 4) x1, y1, x2, y2


@pytest.fixture(scope="module")
def jhmdb_run(tmp_path_factory):
    rng = np.random.default_rng(3)
    root = tmp_path_factory.mktemp("jhmdb")
    base = str(root / "poses")
    for split, lengths in _LENGTHS.items():
        dets, gts = (_pixels(s) for s in make_pairs(rng, lengths, 15, 2, noise=0.01))
        write_split(base, "jhmdb", "simplepose", "2D", split, dets, gts,
                    gt_extra={"bbox": _boxes(gts)})
    out = str(root / "results")
    argv = ["--cfg", "configs/smoke.yaml", "--dataset_name", "jhmdb", "--estimator", "simplepose",
            "--body_representation", "2D", "DATASET.BASE_DIR", base, "DATASET.NORM_2D", "box",
            "TRAIN.AUGMENT", "mix", "OUTPUT_DIR", out, "EXP_NAME", "jhmdb"]
    assert train_entry.main(argv) == 0
    return base, os.path.join(out, "jhmdb", "checkpoints", "best.pth")


def test_checkpoint_stores_the_box_normaliser(jhmdb_run):
    _, checkpoint = jhmdb_run
    kwargs = load_checkpoint(checkpoint)["normalizer_kwargs"]
    assert (kwargs["mode"], kwargs["num_joints"], kwargs["coord_dim"]) == ("box", 15, 2)


def test_eval_reports_pck_on_real_frames_only(jhmdb_run, tmp_path):
    base, checkpoint = jhmdb_run
    out = str(tmp_path / "res.json")
    argv = ["--cfg", "configs/smoke.yaml", "--dataset_name", "jhmdb", "--estimator", "simplepose",
            "--body_representation", "2D", "--checkpoint", checkpoint, "--tradition", "savgol",
            "--json", out, "DATASET.BASE_DIR", base]
    assert eval_entry.main(argv) == 0
    rows = json.load(open(out))["jhmdb_simplepose_2D"]
    assert set(rows) == {"input", "savgol", "motionrefinenet"}
    for metrics in rows.values():
        assert metrics["frames"] == sum(_LENGTHS["test"])  # padded frames never counted
        assert 0.0 <= metrics["pck_0.05"] <= metrics["pck_0.1"] <= metrics["pck_0.2"] <= 100.0
        assert np.isfinite(metrics["mpjpe"])
