"""Bad input on the real command lines: one error line naming the culprit, exit code 2.

Most cases call an entry point's ``main(argv)`` in-process under :func:`lib.errors.run_main`
(importing torch once); a few run the scripts as subprocesses to prove the whole path: exit
code 2, one line on stderr, no traceback. A programming error must keep its traceback.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import eval as eval_entry
import train as train_entry
from lib.core.cli import build_eval_parser, build_train_parser
from lib.core.evaluation import row_names
from lib.data.skeletons import get_skeleton
from lib.errors import USER_ERROR_EXIT_CODE, UserError, one_line, run_main
from tests.conftest import make_pairs, object_array, write_split
from tests.refine_fixtures import tiny_checkpoint, write_creature_bvh
from tools import prepare_data as prepare_entry
from tools import refine as refine_entry

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def console_logging_of_this_test_only():
    """eval.py installs console handlers on stderr; drop them after the test, whose captured
    stderr is closed then (pytest's own handlers are subclasses and stay)."""
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) in (logging.StreamHandler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()


def refused(main: Callable[[list[str]], int], argv: list[str], capsys) -> str:
    """Run ``main(argv)`` under run_main; assert exit code 2 and return the one error line."""
    caught: list[UserError] = []

    def entry() -> int:
        try:
            return main([str(arg) for arg in argv])
        except UserError as err:
            caught.append(err)
            raise

    with pytest.raises(SystemExit) as exit_info:
        run_main(entry, "test")
    assert exit_info.value.code == USER_ERROR_EXIT_CODE
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if not caught:  # argparse refused the command line: usage line + one error line
        assert "error:" in err
        return err.strip().splitlines()[-1]
    return one_line(caught[0])


def run_script(script: str, *argv: str, cwd: str | Path = REPO) -> subprocess.CompletedProcess:
    """One real process, one thread (tests share two cores)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / script), *argv], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def assert_one_line_refusal(proc: subprocess.CompletedProcess, *culprits: str) -> None:
    assert proc.returncode == USER_ERROR_EXIT_CODE, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line or "error:" in line]
    assert len(errors) == 1, proc.stderr
    for culprit in culprits:
        assert culprit in errors[0], (culprit, errors[0])


@pytest.fixture
def aist_checkpoint(tmp_path) -> str:
    """A tiny untrained checkpoint for the 14-joint aist 3D data of ``aist_3d``."""
    path = tmp_path / "run" / "checkpoints" / "best.pth"
    return tiny_checkpoint(str(path), get_skeleton("lsp14"), "3D")


def eval_argv(base: str, tmp_path, *extra: str) -> list[str]:
    return ["--cfg", "configs/smoke.yaml", "--dataset_name", "aist", "--estimator", "vibe",
            "--body_representation", "3D", "DATASET.BASE_DIR", base,
            "OUTPUT_DIR", str(tmp_path / "results"), *extra]


# ---------------------------------------------------------------------------------------------
# Real processes: exit code 2, one line, no traceback
# ---------------------------------------------------------------------------------------------
def test_process_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("TRAIN:\n  EPOCHS: 2\nMODEL: [1\n  NAME: smoothnet\n")
    assert_one_line_refusal(run_script("train.py", "--cfg", str(bad)), "bad.yaml", "line 4")


def test_process_train_refuses_checkpoint_flag():
    proc = run_script("train.py", "--cfg", "configs/smoke.yaml", "--checkpoint", "x.pth")
    assert_one_line_refusal(proc, "--checkpoint", "eval.py")


def test_process_card_command_without_aist_data_names_the_file(tmp_path):
    """The paper's exact command, run where no aist data is (cwd without data/poses)."""
    proc = run_script("train.py", "--cfg", str(REPO / "configs/aist_vibe_3D.yaml"),
                      "--dataset_name", "aist", "--estimator", "vibe", "--body_representation",
                      "3D", "--slide_window_size", "32", cwd=tmp_path)
    assert_one_line_refusal(proc, "aist_vibe_3D", "not found", "SmoothNet")


def test_process_refine_param_not_a_number(tmp_path, rng):
    np.save(tmp_path / "a.npy", rng.normal(size=(20, 3, 2)))
    proc = run_script("tools/refine.py", "--filter", "savgol", "--param", "window=abc",
                      "--input", str(tmp_path / "a.npy"), "--output", str(tmp_path / "o.npy"))
    assert_one_line_refusal(proc, "window=abc", "not a number")


def test_process_programming_error_keeps_its_traceback(tmp_path):
    code = ("from lib.errors import run_main\n"
            "def main():\n    return 1 // 0\n"
            "run_main(main, 'bug')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ZeroDivisionError" in proc.stderr


# ---------------------------------------------------------------------------------------------
# Command lines
# ---------------------------------------------------------------------------------------------
def test_flag_appended_after_overrides_is_parsed():
    args = build_train_parser().parse_args(["--cfg", "configs/smoke.yaml", "TRAIN.EPOCHS", "4",
                                            "--resume"])
    assert args.resume and args.opts == ["TRAIN.EPOCHS", "4"] and args.cfg == "configs/smoke.yaml"


def test_negative_values_and_flags_between_pairs():
    args = build_eval_parser().parse_args(["LOSS.W_ACCEL", "-1", "--checkpoint", "a.pth",
                                           "TRAIN.LR", "-1e-3", "--tradition", "all"])
    assert args.opts == ["LOSS.W_ACCEL", "-1", "TRAIN.LR", "-1e-3"]
    assert args.checkpoint == ["a.pth"] and args.tradition == "all"


@pytest.mark.parametrize("flag", ["--checkpoint", "--tradition", "--json", "--markdown",
                                  "--visualize"])
def test_train_refuses_eval_flags(flag, capsys):
    message = refused(train_entry.main, ["--cfg", "configs/smoke.yaml", flag, "1"], capsys)
    assert flag in message and "eval.py" in message


def test_eval_refuses_resume(capsys):
    message = refused(eval_entry.main, ["--cfg", "configs/smoke.yaml", "--resume"], capsys)
    assert "--resume" in message and "train.py" in message


def test_key_followed_by_a_flag_lacks_its_value(capsys):
    message = refused(train_entry.main, ["--cfg", "configs/smoke.yaml", "EXP_NAME", "--resume"],
                      capsys)
    assert "EXP_NAME has no value before --resume" in message


def test_abbreviated_flag_is_refused(capsys):
    message = refused(train_entry.main, ["--cfg", "configs/smoke.yaml", "--res"], capsys)
    assert "--res" in message


# ---------------------------------------------------------------------------------------------
# Config files and keys
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, culprits", [
    ("- TRAIN\n- MODEL\n", ["top.yaml", "line 1", "mapping"]),
    ("TRAIN:\n  EPOCS: 3\n", ["top.yaml", "TRAIN.EPOCS", "TRAIN.EPOCHS"]),
    ("TRAIN: 3\n", ["top.yaml", "TRAIN is a section"]),
    ("TRAIN:\n  LR: fast\n", ["top.yaml", "TRAIN.LR"]),
])
def test_bad_config_file(tmp_path, capsys, text, culprits):
    path = tmp_path / "top.yaml"
    path.write_text(text)
    message = refused(train_entry.main, ["--cfg", path], capsys)
    for culprit in culprits:
        assert culprit in message


@pytest.mark.parametrize("opts, culprits", [
    (["TRAIN.EPOCS", "3"], ["TRAIN.EPOCS", "did you mean TRAIN.EPOCHS"]),
    (["TRAIN.EPOCHS"], ["TRAIN.EPOCHS", "KEY VALUE"]),
    (["MODEL.NAME", "transformer"], ["MODEL.NAME", "transformer"]),
    (["FILTERS.SAVGOL_WINDOW", "30"], ["FILTERS.SAVGOL_WINDOW", "odd"]),
])
def test_bad_override(capsys, opts, culprits):
    message = refused(train_entry.main, ["--cfg", "configs/smoke.yaml", *opts], capsys)
    for culprit in culprits:
        assert culprit in message


def test_missing_config_file(capsys, tmp_path):
    message = refused(train_entry.main, ["--cfg", tmp_path / "nope.yaml"], capsys)
    assert "nope.yaml" in message and "not found" in message


# ---------------------------------------------------------------------------------------------
# Checkpoints and evaluation rows
# ---------------------------------------------------------------------------------------------
def test_tampered_checkpoint(aist_3d, tmp_path, capsys):
    bad = tmp_path / "tampered.pth"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    message = refused(eval_entry.main, eval_argv(aist_3d, tmp_path, "--checkpoint", bad), capsys)
    assert "tampered.pth" in message


def test_wrong_architecture_checkpoint_names_file_and_keys(aist_3d, aist_checkpoint, tmp_path,
                                                           capsys):
    state = torch.load(aist_checkpoint, map_location="cpu", weights_only=False)
    dropped = sorted(state["model"])[0]
    reshaped = sorted(state["model"])[-1]
    del state["model"][dropped]
    state["model"][reshaped] = torch.zeros(3, 3, 3)
    state["model"]["extra.weight"] = torch.zeros(1)
    bad = tmp_path / "other_arch.pth"
    torch.save(state, bad)
    message = refused(eval_entry.main, eval_argv(aist_3d, tmp_path, "--checkpoint", bad), capsys)
    for culprit in ("other_arch.pth", dropped, reshaped, "extra.weight"):
        assert culprit in message


def test_two_checkpoints_of_one_run_give_two_rows(aist_3d, aist_checkpoint, tmp_path):
    last = tiny_checkpoint(aist_checkpoint.replace("best.pth", "last.pth"),
                           get_skeleton("lsp14"), "3D", seed=1)
    out = tmp_path / "rows.json"
    argv = eval_argv(aist_3d, tmp_path, "--checkpoint", aist_checkpoint, "--checkpoint", last,
                     "--json", str(out))
    assert eval_entry.main(argv) == 0
    rows = json.loads(out.read_text())["aist_vibe_3D"]
    assert {"motionrefinenet:run/best", "motionrefinenet:run/last"} <= set(rows)
    assert rows["motionrefinenet:run/best"] != rows["motionrefinenet:run/last"]


def test_row_names_never_collide():
    names = row_names(["m", "m", "m", "s"], ["a/r/checkpoints/best.pth",
                                             "a/r/checkpoints/last.pth",
                                             "b/r/checkpoints/best.pth", "x.pth"], {"input"})
    assert len(set(names)) == 4 and names[3] == "s"


def test_same_checkpoint_twice_is_refused(aist_3d, aist_checkpoint, tmp_path, capsys):
    argv = eval_argv(aist_3d, tmp_path, "--checkpoint", f"{aist_checkpoint},{aist_checkpoint}")
    message = refused(eval_entry.main, argv, capsys)
    assert "best.pth" in message and "twice" in message


# ---------------------------------------------------------------------------------------------
# Data: boxes must cover every sequence and frame
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cut, culprits", [
    ("sequences", ["'bbox'", "boxes for 2 sequences", "has 3"]),
    ("frames", ["'bbox'", "sequence 1", "(16, 4)"]),
])
def test_jhmdb_boxes_that_do_not_cover_the_data(tmp_path, rng, capsys, cut, culprits):
    base = str(tmp_path / "poses")
    dets, gts = make_pairs(rng, [20, 17, 12], 15, 2)
    boxes = [np.concatenate([gt.min(axis=1), gt.max(axis=1)], axis=1) for gt in gts]
    boxes = boxes[:2] if cut == "sequences" else [boxes[0], boxes[1][:16], boxes[2]]
    write_split(base, "jhmdb", "simplepose", "2D", "test", dets, gts,
                gt_extra={"bbox": object_array(boxes)})
    argv = ["--cfg", "configs/smoke.yaml", "--dataset_name", "jhmdb", "--estimator",
            "simplepose", "--body_representation", "2D", "--tradition", "savgol",
            "DATASET.BASE_DIR", base, "OUTPUT_DIR", str(tmp_path / "results")]
    message = refused(eval_entry.main, argv, capsys)
    for culprit in ["jhmdb_gt_2D_test.npz", *culprits]:
        assert culprit in message


# ---------------------------------------------------------------------------------------------
# tools/refine.py
# ---------------------------------------------------------------------------------------------
def refine_argv(source: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["--filter", "savgol", "--param", "window=5", "--input", str(source),
            "--output", str(tmp_path / "out.npy"), *extra]


_BVH_HEAD = "HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0 0\n  CHANNELS 3 Xposition Yposition Zposition\n"
_BAD_FILES = {
    "ends_after_root.bvh": ("HIERARCHY\nROOT", ["ends_after_root.bvh", "ROOT", "truncated"]),
    "frames_two.bvh": (_BVH_HEAD + "}\nMOTION\nFrames: two\nFrame Time: 0.033\n1 2 3\n",
                       ["frames_two.bvh", "'Frames:'", "'two'"]),
    "frames_not_objects.json": (json.dumps({"instance_info": [[1, 2], [3, 4]]}),
                                ["frames_not_objects.json", "frame 0", "JSON object"]),
    "entries_not_objects.json": (json.dumps([{"keypoints": [1, 2, 0.9]}, 5]),
                                 ["entries_not_objects.json", "entry 1", "JSON object"]),
    "no_keypoints.json": (json.dumps({"instance_info": [
        {"frame_id": 0, "instances": [{"keypoint_scores": [1.0]}]}]}),
        ["no_keypoints.json", "frame 0, instance 0", "no 'keypoints' key"]),
    "long_rows.csv": ("a_x,a_y\n1,2\n3,4,5\n", ["long_rows.csv", "line 3", "3 cells", "header"]),
    "short_rows.csv": ("1,2,3\n4,5,6\n\n7,8\n", ["short_rows.csv", "line 4", "2 cells"]),
    "corrupt.npz": ("PK\x03\x04 not a zip archive", ["corrupt.npz", "not a readable"]),
}


@pytest.mark.parametrize("name", sorted(_BAD_FILES))
def test_refine_bad_input_file(tmp_path, capsys, name):
    text, culprits = _BAD_FILES[name]
    (tmp_path / name).write_text(text)
    message = refused(refine_entry.main, refine_argv(tmp_path / name, tmp_path), capsys)
    for culprit in culprits:
        assert culprit in message


@pytest.mark.parametrize("params, culprits", [
    (["window=abc"], ["window=abc", "not a number"]),
    (["window=4"], ["window=4", "odd"]),
    (["windw=5"], ["windw", "takes window, order"]),
    (["window"], ["'window'", "KEY=VALUE"]),
])
def test_refine_bad_filter_parameter(tmp_path, rng, capsys, params, culprits):
    np.save(tmp_path / "a.npy", rng.normal(size=(20, 3, 2)))
    argv = ["--filter", "savgol", "--input", tmp_path / "a.npy", "--output", tmp_path / "o.npy"]
    for param in params:
        argv += ["--param", param]
    message = refused(refine_entry.main, argv, capsys)
    for culprit in culprits:
        assert culprit in message


def test_refine_unwritable_output(tmp_path, rng, capsys):
    np.save(tmp_path / "a.npy", rng.normal(size=(20, 3, 2)))
    (tmp_path / "plain_file").write_text("x")
    target = tmp_path / "plain_file" / "sub" / "out.npy"
    argv = ["--filter", "gaussian", "--input", tmp_path / "a.npy", "--output", target]
    message = refused(refine_entry.main, argv, capsys)
    assert str(target) in message and "is a file" in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_refine_cuda_device_on_a_cpu_build(tmp_path, aist_checkpoint, capsys):
    np.save(tmp_path / "a.npy", np.zeros((20, 14, 3)))
    argv = ["--checkpoint", aist_checkpoint, "--device", "cuda", "--input", tmp_path / "a.npy",
            "--output", tmp_path / "o.npy"]
    message = refused(refine_entry.main, argv, capsys)
    assert "--device cuda" in message and "CUDA is not available" in message


def test_refine_missing_input(tmp_path, capsys):
    message = refused(refine_entry.main, refine_argv(tmp_path / "nope.csv", tmp_path), capsys)
    assert "nope.csv" in message and "not found" in message


def test_integer_npy_is_written_as_float(tmp_path, rng):
    poses = (rng.normal(size=(30, 4, 2)) * 100).astype(np.int32)
    np.save(tmp_path / "int.npy", poses)
    assert refine_entry.main(refine_argv(tmp_path / "int.npy", tmp_path)) == 0
    refined = np.load(tmp_path / "out.npy")
    assert refined.dtype == np.float32 and refined.shape == poses.shape
    assert not np.allclose(refined, np.round(refined))  # fractions survived


# ---------------------------------------------------------------------------------------------
# tools/prepare_data.py
# ---------------------------------------------------------------------------------------------
def test_prepare_data_corrupt_npz(tmp_path, capsys):
    (tmp_path / "est.npz").write_bytes(b"PK\x03\x04 broken")
    np.savez(tmp_path / "gt.npz", a=np.zeros((5, 2, 3)))
    argv = ["--estimates", tmp_path / "est.npz", "--groundtruth", tmp_path / "gt.npz",
            "--skeleton", tmp_path / "skeleton.yaml", "--dataset", "x", "--out", tmp_path / "o"]
    message = refused(prepare_entry.main, argv, capsys)
    assert "est.npz" in message and "not a readable" in message


def test_prepare_data_bvh_ending_after_root(tmp_path, rng, capsys):
    folder = tmp_path / "bvh"
    folder.mkdir()
    write_creature_bvh(str(folder / "good.bvh"), 12, rng)
    (folder / "short.bvh").write_text("HIERARCHY\nROOT")
    argv = ["--bvh-dir", folder, "--dataset", "x", "--out", tmp_path / "o"]
    message = refused(prepare_entry.main, argv, capsys)
    assert "short.bvh" in message and "truncated" in message


def test_prepare_data_output_under_a_file(tmp_path, rng, capsys):
    folder = tmp_path / "bvh"
    folder.mkdir()
    for name in ("a", "b"):
        write_creature_bvh(str(folder / f"{name}.bvh"), 12, rng)
    (tmp_path / "plain_file").write_text("x")
    argv = ["--bvh-dir", folder, "--dataset", "x", "--out", tmp_path / "plain_file"]
    message = refused(prepare_entry.main, argv, capsys)
    assert "--out" in message and "plain_file" in message


# ---------------------------------------------------------------------------------------------
# Bugs are not user errors
# ---------------------------------------------------------------------------------------------
def test_programming_error_propagates_through_run_main(monkeypatch):
    def broken(*_args, **_kwargs):
        return 1 / 0

    monkeypatch.setattr(train_entry, "load_config", broken)
    with pytest.raises(ZeroDivisionError):
        run_main(lambda: train_entry.main(["--cfg", "configs/smoke.yaml"]), "train")


def test_value_error_of_a_bug_is_not_caught(monkeypatch, tmp_path):
    """A plain ValueError (not a UserError) is a bug: it keeps its traceback too."""
    def broken(*_args, **_kwargs):
        raise ValueError("internal invariant broken")

    monkeypatch.setattr(refine_entry, "read_poses", broken)
    argv = ["--filter", "savgol", "--input", __file__, "--output", str(tmp_path / "o.npy")]
    with pytest.raises(ValueError, match="internal invariant"):
        run_main(lambda: refine_entry.main(argv), "refine")
