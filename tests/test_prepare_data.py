"""Your own skeleton end to end: BVH folder -> prepare_data -> train.py -> eval.py."""

import json
import os

import numpy as np
import pytest
import yaml

import eval as eval_entry
import train as train_entry
from lib.data.smoothnet_io import load_split
from tests.refine_fixtures import CREATURE, single_thread, write_creature_bvh  # noqa: F401
from tools import prepare_data


@pytest.fixture
def bvh_folder(tmp_path, rng):
    folder = tmp_path / "bvh"
    folder.mkdir()
    for index in range(6):
        write_creature_bvh(str(folder / f"clip{index}.bvh"), 20 + 3 * index, rng)
    return str(folder)


def test_bvh_folder_trains_and_evaluates(bvh_folder, tmp_path):
    base = str(tmp_path / "poses")
    assert prepare_data.main(["--bvh-dir", bvh_folder, "--dataset", "creature",
                              "--out", base]) == 0
    spec = yaml.safe_load(open(os.path.join(base, "creature_sim_3D", "skeleton.yaml")))
    assert spec["joint_names"] == CREATURE["names"] and spec["fps"] == 30.0
    train_set = load_split(base, "creature", "sim", "3D", "train")
    test_set = load_split(base, "creature", "sim", "3D", "test")
    assert len(train_set.detected) == 5 and len(test_set.detected) == 1
    assert 0.05 < np.abs(train_set.groundtruth[0]).max() < 3.0  # centimetres became metres
    assert not np.allclose(train_set.detected[0], train_set.groundtruth[0])
    flags = ["--dataset_name", "creature", "--estimator", "sim", "--body_representation", "3D"]
    opts = ["DATASET.BASE_DIR", base, "MODEL.SLIDE_WINDOW_SIZE", "8", "MODEL.HIDDEN_SIZE", "16",
            "MODEL.RES_HIDDEN_SIZE", "8", "TRAIN.EPOCHS", "1", "TRAIN.STRIDE", "4",
            "DATASET.VAL_FRACTION", "0.3", "DEVICE", "cpu"]
    out = str(tmp_path / "results")
    assert train_entry.main(flags + opts + ["OUTPUT_DIR", out, "EXP_NAME", "mine"]) == 0
    ckpt = os.path.join(out, "mine", "checkpoints", "best.pth")
    out_json = str(tmp_path / "eval.json")
    assert eval_entry.main(flags + ["--checkpoint", ckpt, "--json", out_json] + opts) == 0
    rows = json.load(open(out_json))["creature_sim_3D"]
    assert set(rows) == {"input", "motionrefinenet"}
    assert rows["input"]["frames"] == len(test_set.detected[0])


def test_pairs_with_a_skeleton_file(tmp_path, rng):
    spec = tmp_path / "skeleton.yaml"
    spec.write_text(yaml.safe_dump({"joint_names": ["root", "l_knee", "r_knee"],
                                    "parents": [-1, 0, 0], "fps": 25}))
    gt = {f"s{i}": rng.normal(size=(12 + i, 3, 2)).astype(np.float32) for i in range(4)}
    est = {key: value + 0.1 for key, value in gt.items()}
    np.savez(tmp_path / "est.npz", **est)
    np.savez(tmp_path / "gt.npz", **gt)
    base = str(tmp_path / "poses")
    argv = ["--estimates", str(tmp_path / "est.npz"), "--groundtruth", str(tmp_path / "gt.npz"),
            "--skeleton", str(spec), "--dataset", "mine", "--estimator", "det", "--out", base,
            "--test-fraction", "0.5", "--seed", "3"]
    assert prepare_data.main(argv) == 0
    test_set = load_split(base, "mine", "det", "2D", "test")
    train_set = load_split(base, "mine", "det", "2D", "train")
    assert len(test_set.detected) == len(train_set.detected) == 2
    name = test_set.sequence_names[0]
    np.testing.assert_allclose(test_set.detected[0], est[name])
    assert test_set.skeleton.fps == 25.0
    with pytest.raises(FileExistsError, match="--overwrite"):
        prepare_data.main(argv)
    with pytest.raises(ValueError, match="--skeleton is required"):
        prepare_data.main(argv[:4] + ["--dataset", "other", "--out", base])
