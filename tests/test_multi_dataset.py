"""Joint training on several datasets and cross-dataset evaluation of a checkpoint."""

import json
import os

import numpy as np
import pytest
import torch

import eval as eval_entry
import train as train_entry
from lib.core.builders import build_train_dataset, load_sets, split_train_val
from lib.core.cli import build_parser, load_config
from lib.core.train_run import _loader
from lib.data.windows import window_starts
from tests.conftest import make_pairs, write_split

# Two lsp14 datasets of very different sizes; pw3d values are shifted by +100 to tell them apart.
_SIZES = {("aist", "vibe"): [80, 64, 50, 17], ("pw3d", "spin"): [30]}
_WINDOW, _STRIDE = 16, 2


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    rng = np.random.default_rng(11)
    base = str(tmp_path_factory.mktemp("multi") / "poses")
    for (dataset, estimator), lengths in _SIZES.items():
        shift = 100.0 if dataset == "pw3d" else 0.0
        for split in ("train", "test"):
            dets, gts = make_pairs(rng, lengths, 14, 3)
            write_split(base, dataset, estimator, "3D", split, [d + shift for d in dets],
                        [g + shift for g in gts])
    return base


def _cfg(base: str, *extra: str):
    argv = ["--cfg", "configs/smoke.yaml", "--dataset_name", "aist,pw3d", "--estimator",
            "vibe,spin", "--body_representation", "3D,3D", "DATASET.BASE_DIR", base, *extra]
    return load_config(build_parser("test").parse_args(argv))


def test_one_epoch_visits_every_window_of_every_dataset_once(two_datasets):
    cfg = _cfg(two_datasets, "DATASET.VAL_FRACTION", "0.0")
    sets = load_sets(cfg, "train")
    train_det, train_gt, _, _ = split_train_val(sets, 0.0, cfg.SEED)
    dataset = build_train_dataset(cfg, sets, train_det, train_gt)
    expected = {name[0]: sum(len(window_starts(max(n, _WINDOW), _WINDOW, _STRIDE)) for n in sizes)
                for name, sizes in _SIZES.items()}
    assert len(dataset) == sum(expected.values())  # nothing truncated, nothing repeated
    torch.manual_seed(0)
    seen = {"aist": 0, "pw3d": 0}
    covered = np.zeros(len(dataset.detected), dtype=bool)
    for batch in _loader(dataset, 8, 0, cfg.SEED):
        for window in batch["input"]:
            seen["pw3d" if window.mean() > 50 else "aist"] += 1
    for start in dataset.starts.numpy():
        covered[start:start + _WINDOW] = True
    # every window once per epoch: each dataset is drawn in proportion to its window count
    assert seen == expected
    assert covered.all()  # the last frames of every sequence are in some window


def test_checkpoint_evaluates_on_another_dataset_and_estimator(two_datasets, tmp_path):
    out = str(tmp_path / "results")
    argv = ["--cfg", "configs/smoke.yaml", "--dataset_name", "aist", "--estimator", "vibe",
            "--body_representation", "3D", "DATASET.BASE_DIR", two_datasets, "OUTPUT_DIR", out,
            "EXP_NAME", "aist_only"]
    assert train_entry.main(argv) == 0
    checkpoint = os.path.join(out, "aist_only", "checkpoints", "best.pth")
    result = str(tmp_path / "cross.json")
    argv = ["--cfg", "configs/smoke.yaml", "--dataset_name", "pw3d", "--estimator", "spin",
            "--body_representation", "3D", "--checkpoint", checkpoint, "--json", result,
            "DATASET.BASE_DIR", two_datasets]
    assert eval_entry.main(argv) == 0
    rows = json.load(open(result))["pw3d_spin_3D"]
    assert rows["motionrefinenet"]["frames"] == rows["input"]["frames"] == 30
    joint = _cfg(two_datasets)
    assert [s.name for s in load_sets(joint, "test")] == ["aist_vibe_3D", "pw3d_spin_3D"]


def test_estimator_layouts_follow_the_files(tmp_path, rng):
    """h36m VIBE output is 14 LSP joints (hip roots), its FCN output 17 Human3.6M joints."""
    from lib.data.smoothnet_io import load_split

    for estimator, joints in (("vibe", 14), ("fcn", 17), ("tcmr", 17)):
        write_split(str(tmp_path), "h36m", estimator, "3D", "test",
                    *make_pairs(rng, [20], joints, 3))
    assert load_split(str(tmp_path), "h36m", "vibe", "3D", "test").skeleton.name == "lsp14"
    assert load_split(str(tmp_path), "h36m", "fcn", "3D", "test").skeleton.name == "h36m17"
    # a 17-joint tcmr file still loads with the dataset's default layout
    assert load_split(str(tmp_path), "h36m", "tcmr", "3D", "test").skeleton.name == "h36m17"
