"""End to end on generated data: train 2 epochs, checkpoint, resume, evaluate."""

import json
import os

import pytest
import torch

import eval as eval_entry
import train as train_entry
from lib.utils.checkpoint import load_checkpoint


def run_train(base: str, out: str, *extra: str) -> None:
    argv = ["--cfg", "configs/smoke.yaml", "--dataset_name", "aist", "--estimator", "vibe",
            "--body_representation", "3D"]
    flags = [e for e in extra if e.startswith("--")]
    opts = [e for e in extra if not e.startswith("--")]
    argv += flags + ["DATASET.BASE_DIR", base, "OUTPUT_DIR", out, "EXP_NAME", "smoke", *opts]
    assert train_entry.main(argv) == 0


@pytest.fixture
def trained(aist_3d, tmp_path):
    out = str(tmp_path / "results")
    run_train(aist_3d, out)
    return aist_3d, out, os.path.join(out, "smoke")


def test_training_writes_run_folder(trained):
    _, _, run_dir = trained
    for name in ("config.yaml", "log.txt", "metrics.jsonl", "checkpoints/last.pth",
                 "checkpoints/best.pth"):
        assert os.path.isfile(os.path.join(run_dir, name)), name
    lines = open(os.path.join(run_dir, "metrics.jsonl")).read().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    state = load_checkpoint(os.path.join(run_dir, "checkpoints", "last.pth"))
    assert state["epoch"] == 1 and state["model_kwargs"]["num_joints"] == 14


def test_refuses_to_overwrite_a_run(trained):
    base, out, _ = trained
    with pytest.raises(FileExistsError, match="--resume"):
        run_train(base, out)


def test_overwrite_replaces_the_earlier_run(trained):
    base, out, run_dir = trained
    run_train(base, out, "--overwrite", "TRAIN.EPOCHS", "1")
    lines = open(os.path.join(run_dir, "metrics.jsonl")).read().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1]


def test_resume_restores_epoch_and_lr(trained):
    base, out, run_dir = trained
    before = load_checkpoint(os.path.join(run_dir, "checkpoints", "last.pth"))
    run_train(base, out, "--resume", "TRAIN.EPOCHS", "4")
    after = load_checkpoint(os.path.join(run_dir, "checkpoints", "last.pth"))
    assert after["epoch"] == 3
    lr_before = before["scheduler"]["_last_lr"][0]
    assert after["scheduler"]["_last_lr"][0] == pytest.approx(lr_before * 0.95 ** 2)
    epochs = [json.loads(x)["epoch"] for x in open(os.path.join(run_dir, "metrics.jsonl"))]
    assert epochs == [1, 2, 3, 4]


def test_eval_on_checkpoint_writes_rows(trained, tmp_path, capsys):
    base, _, run_dir = trained
    out_json = str(tmp_path / "out.json")
    argv = ["--cfg", "configs/smoke.yaml", "--dataset_name", "aist", "--estimator", "vibe",
            "--body_representation", "3D", "--tradition", "all", "--json", out_json,
            "--checkpoint", os.path.join(run_dir, "checkpoints", "best.pth"),
            "DATASET.BASE_DIR", base]
    assert eval_entry.main(argv) == 0
    results = json.load(open(out_json))
    rows = results["aist_vibe_3D"]
    assert set(rows) == {"input", "savgol", "gaussian", "oneeuro", "motionrefinenet"}
    assert rows["motionrefinenet"]["frames"] == rows["input"]["frames"] == 125
    assert "| motionrefinenet |" in capsys.readouterr().out
    with pytest.raises(FileExistsError):
        eval_entry.main(argv)


def test_checkpoint_that_does_not_fit_the_data(trained, tmp_path, rng):
    from tests.conftest import make_pairs, write_split
    _, _, run_dir = trained
    base = str(tmp_path / "h36m")
    write_split(base, "h36m", "fcn", "3D", "test", *make_pairs(rng, [40], 17, 3))
    argv = ["--cfg", "configs/smoke.yaml", "--dataset_name", "h36m", "--estimator", "fcn",
            "--body_representation", "3D",
            "--checkpoint", os.path.join(run_dir, "checkpoints", "best.pth"),
            "DATASET.BASE_DIR", base]
    with pytest.raises(ValueError, match="trained on 14 joints x 3 .* has 17 x 3"):
        eval_entry.main(argv)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(trained, monkeypatch):
    from lib.core.losses import RefinementLoss
    base, out, run_dir = trained
    # A resume may not change the loss weights, so the divergence is patched in.
    monkeypatch.setattr(RefinementLoss, "forward",
                        lambda self, pred, target, mask: pred.sum() * float("inf"))
    with pytest.raises(FloatingPointError, match="non-finite training loss.*last.pth"):
        run_train(base, out, "--resume", "TRAIN.EPOCHS", "4")
    assert load_checkpoint(os.path.join(run_dir, "checkpoints", "last.pth"))["epoch"] == 1


def test_missing_data_says_where_it_comes_from(tmp_path):
    with pytest.raises(FileNotFoundError, match="SmoothNet's README"):
        run_train(str(tmp_path), str(tmp_path / "out"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda(aist_3d, tmp_path):
    run_train(aist_3d, str(tmp_path / "results"), "DEVICE", "cuda")


def test_run_folder_is_marked_and_left_clean(trained):
    """The marker is written, TensorBoard events exist, and no lock or temporary file stays."""
    _, out, run_dir = trained
    marker = json.load(open(os.path.join(run_dir, "run.json")))
    assert marker["project"] == "MotionRefineNet" and marker["exp_name"] == "smoke"
    assert any(name.startswith("events.") for name in os.listdir(os.path.join(run_dir,
                                                                              "tensorboard")))
    assert sorted(os.listdir(out)) == ["smoke"], "the lock file .smoke.lock is removed"
    leftovers = [name for _, _, names in os.walk(run_dir) for name in names
                 if name.startswith(".tmp_")]
    assert leftovers == []
