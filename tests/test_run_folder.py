"""Run folders: inside OUTPUT_DIR, marked, replaced only when ours, no leftovers, no traces."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import train as train_entry
from lib.core.config import get_cfg_defaults, validate
from lib.core.setup import (
    RUN_MARKER,
    claim_run_dir,
    holds_results,
    is_run_folder,
    prepare_run_dir,
    resolve_device,
    run_lock_path,
)
from lib.errors import (
    ConfigError,
    MissingFileError,
    OutputExistsError,
    OutputFileError,
    RunFolderError,
    UserError,
)
from lib.utils.io import atomic_write, check_output_file, save_text

REPO = Path(__file__).resolve().parents[1]


def train_argv(base: str, out: Path, name: str = "smoke", *extra: str) -> list[str]:
    return ["--cfg", "configs/smoke.yaml", "--dataset_name", "aist", "--estimator", "vibe",
            "--body_representation", "3D", "DATASET.BASE_DIR", base, "OUTPUT_DIR", str(out),
            "EXP_NAME", name, *extra]


def run_cfg(out: Path, name: str = "run"):
    cfg = get_cfg_defaults()
    cfg.merge_from_list(["OUTPUT_DIR", str(out), "EXP_NAME", name])
    return cfg


def make_run(folder: Path, marked: bool = True, results: bool = True) -> None:
    """A run folder as train.py leaves it (optionally without marker or results)."""
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.yaml").write_text("SEED: 1\n")
    if marked:
        (folder / RUN_MARKER).write_text(json.dumps({"project": "MotionRefineNet"}))
    if results:
        (folder / "checkpoints" / "best.pth").write_bytes(b"weights")


@pytest.fixture
def victim(tmp_path) -> Path:
    """A folder outside OUTPUT_DIR that no run may touch."""
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me\n")
    return folder


# ---------------------------------------------------------------------------------------------
# EXP_NAME is one plain folder name inside OUTPUT_DIR
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../victim", "VICTIM_ABS", ".", "..", "a/b", "a\\b", ".hidden",
                                  "x\0y"])
def test_exp_name_that_is_not_a_plain_folder_name_is_refused(tmp_path, victim, name):
    name = str(victim) if name == "VICTIM_ABS" else name
    out = tmp_path / "results"
    make_run(out / "other_run")
    with pytest.raises(ConfigError, match="EXP_NAME .*plain folder name"):
        train_entry.main(train_argv(str(tmp_path), out, name, "--overwrite"))
    assert (victim / "precious.txt").read_text() == "keep me\n"
    assert (out / "other_run" / "checkpoints" / "best.pth").is_file()


def test_derived_exp_name_is_checked_too():
    cfg = get_cfg_defaults()
    cfg.merge_from_list(["DATASET.ESTIMATORS", "['../../x']"])
    with pytest.raises(ConfigError, match="derived"):
        validate(cfg)


def test_run_folder_linked_outside_output_dir_is_refused(tmp_path, victim):
    out = tmp_path / "results"
    out.mkdir()
    (out / "linked").symlink_to(victim)
    with pytest.raises(RunFolderError, match="not inside OUTPUT_DIR"):
        prepare_run_dir(run_cfg(out, "linked"), overwrite=True)
    assert (victim / "precious.txt").read_text() == "keep me\n"


# ---------------------------------------------------------------------------------------------
# The run marker: only our run folders are reused or replaced
# ---------------------------------------------------------------------------------------------
def test_new_run_folder_is_marked(tmp_path):
    run = prepare_run_dir(run_cfg(tmp_path / "results"))
    marker = json.loads((Path(run.path) / RUN_MARKER).read_text())
    assert run.created and marker["project"] == "MotionRefineNet" and marker["created"]
    assert os.path.isdir(os.path.join(run.path, "checkpoints"))


@pytest.mark.parametrize("flags", [{}, {"overwrite": True}, {"resume": True}])
def test_folder_without_marker_is_left_untouched(tmp_path, flags):
    out = tmp_path / "results"
    mine = out / "run"
    mine.mkdir(parents=True)
    (mine / "thesis.tex").write_text("years of work\n")
    with pytest.raises(UserError, match="not a run folder of train.py"):
        prepare_run_dir(run_cfg(out), **flags)
    assert (mine / "thesis.tex").read_text() == "years of work\n"
    assert not (mine / RUN_MARKER).exists()


def test_overwrite_replaces_a_marked_run(tmp_path):
    out = tmp_path / "results"
    make_run(out / "run")
    run = prepare_run_dir(run_cfg(out), overwrite=True)
    assert run.created and not holds_results(run.path)
    assert (out / "run" / RUN_MARKER).is_file()


def test_run_of_an_older_version_without_marker_can_be_replaced(tmp_path):
    out = tmp_path / "results"
    make_run(out / "run", marked=False)
    assert is_run_folder(str(out / "run"))
    run = prepare_run_dir(run_cfg(out), overwrite=True)
    assert not holds_results(run.path)


def test_existing_run_is_refused_without_a_flag(tmp_path):
    out = tmp_path / "results"
    make_run(out / "run")
    with pytest.raises(FileExistsError, match="--resume"):
        prepare_run_dir(run_cfg(out))


# ---------------------------------------------------------------------------------------------
# Interrupted writes: removed on start, never a result
# ---------------------------------------------------------------------------------------------
def test_stale_temp_files_are_removed_and_never_count(tmp_path):
    out = tmp_path / "results"
    make_run(out / "run", results=False)
    stale = [out / "run" / "checkpoints" / ".tmp_1a2b3c_last.pth",
             out / "run" / "checkpoints" / ".tmp_k3j4best.pth",  # as tempfile.mkstemp named it
             out / "run" / ".tmp_4d5e6f_metrics.jsonl", out / "run" / ".tmp_77_config.yaml"]
    for path in stale:
        path.write_bytes(b"half")
    assert not holds_results(str(out / "run"))
    run = prepare_run_dir(run_cfg(out))  # no FileExistsError: the folder holds no run
    assert not run.created
    assert not any(path.exists() for path in stale)


def test_atomic_write_failure_leaves_no_temp_file(tmp_path):
    def fail(tmp: str) -> None:
        Path(tmp).write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(str(tmp_path / "a.json"), fail)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        save_text(str(tmp_path / "a.txt"), "x")
        prepare_run_dir(run_cfg(tmp_path / "results"))
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == mode
    assert (tmp_path / "results" / "run" / RUN_MARKER).stat().st_mode & 0o777 == mode


def test_atomic_write_flushes_file_and_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd")
                      else fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    save_text(str(tmp_path / "a.txt"), "x")
    assert len(synced) == 2
    if isinstance(synced[0], str):
        assert os.path.basename(synced[0]).startswith(".tmp_") and synced[1] == str(tmp_path)


# ---------------------------------------------------------------------------------------------
# Unusable OUTPUT_DIR, DEVICE, output files: one clear error, before any work
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["file", "file/sub"])
def test_output_dir_that_cannot_be_created_is_a_run_folder_error(aist_3d, tmp_path, where):
    (tmp_path / "file").write_text("a file, not a folder\n")
    out = tmp_path / where
    with pytest.raises(RunFolderError, match=f"OUTPUT_DIR {out}.*set OUTPUT_DIR"):
        train_entry.main(train_argv(aist_3d, out))


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_device_without_cuda_is_a_config_error(aist_3d, tmp_path):
    with pytest.raises(ConfigError, match="DEVICE 'cuda'.*use DEVICE cpu"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        train_entry.main(train_argv(aist_3d, tmp_path / "results", "smoke", "DEVICE", "cuda"))
    assert not (tmp_path / "results" / "smoke").exists()


def test_check_output_file(tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OutputFileError, match="is a folder"):
        check_output_file(str(tmp_path), flag="--json")
    with pytest.raises(OutputExistsError, match="--json .*a_file exists; pass --overwrite"):
        check_output_file(str(tmp_path / "a_file"), flag="--json")
    with pytest.raises(OutputFileError, match="is a file, not a folder"):
        check_output_file(str(tmp_path / "a_file" / "out.json"), flag="--json")
    check_output_file(str(tmp_path / "a_file"), overwrite=True)
    check_output_file(str(tmp_path / "new" / "out.json"))


# ---------------------------------------------------------------------------------------------
# A run that fails before any result leaves no run folder (and no lock file)
# ---------------------------------------------------------------------------------------------
def test_failed_start_leaves_no_run_folder(tmp_path):
    out = tmp_path / "results"
    with pytest.raises(MissingFileError):
        train_entry.main(train_argv(str(tmp_path / "no_data"), out))
    assert os.listdir(out) == []


def test_card_command_without_data_leaves_no_run_folder(tmp_path, monkeypatch):
    """The paper's command where no aist data is: no results/aist_vibe_3D_... afterwards."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingFileError, match="aist_vibe_3D"):
        train_entry.main(["--cfg", str(REPO / "configs/aist_vibe_3D.yaml"), "--dataset_name",
                          "aist", "--estimator", "vibe", "--body_representation", "3D",
                          "--slide_window_size", "32"])
    assert not (tmp_path / "results" / "aist_vibe_3D_motionrefinenet_T32").exists()


def test_failed_start_keeps_a_folder_it_did_not_create(tmp_path):
    out = tmp_path / "results"
    (out / "smoke").mkdir(parents=True)
    with pytest.raises(MissingFileError):
        train_entry.main(train_argv(str(tmp_path / "no_data"), out))
    assert (out / "smoke").is_dir()
    make_run(out / "resumed")
    (out / "resumed" / "checkpoints" / "last.pth").write_bytes(b"weights")
    with pytest.raises(UserError):  # the unreadable checkpoint or the missing data
        train_entry.main(train_argv(str(tmp_path / "no_data"), out, "resumed", "--resume"))
    assert (out / "resumed" / "checkpoints" / "last.pth").is_file()


def test_claim_removes_only_what_it_created_and_releases_the_lock(tmp_path):
    out = tmp_path / "results"
    with pytest.raises(KeyboardInterrupt):
        with claim_run_dir(run_cfg(out)) as run:
            assert os.path.isfile(run_lock_path(run.path))
            raise KeyboardInterrupt
    assert os.listdir(out) == []
    with claim_run_dir(run_cfg(out)) as run:
        save_text(os.path.join(run.path, "metrics.jsonl"), "{}\n")
    assert holds_results(str(out / "run")) and os.listdir(out) == ["run"]


# ---------------------------------------------------------------------------------------------
# --overwrite keeps the earlier run until the new one has results
# ---------------------------------------------------------------------------------------------
def test_failed_overwrite_puts_the_earlier_run_back(tmp_path):
    out = tmp_path / "results"
    make_run(out / "smoke")
    # No data under this BASE_DIR: the new run fails before its first result.
    with pytest.raises(UserError):
        train_entry.main(train_argv(str(tmp_path / "no_data"), out, "smoke", "--overwrite"))
    assert (out / "smoke" / "checkpoints" / "best.pth").read_bytes() == b"weights"
    assert not (out / ".smoke.replaced").exists()


def test_overwrite_deletes_the_earlier_run_once_the_new_one_has_results(tmp_path):
    out = tmp_path / "results"
    make_run(out / "run")
    with claim_run_dir(run_cfg(out), overwrite=True) as run:
        assert run.replaced == str(out / ".run.replaced")
        assert (out / ".run.replaced" / "checkpoints" / "best.pth").is_file()
        save_text(os.path.join(run.path, "metrics.jsonl"), "{}\n")
    assert not (out / ".run.replaced").exists()
    assert (out / "run" / "metrics.jsonl").is_file()
    assert not (out / "run" / "checkpoints" / "best.pth").exists()


def test_overwrite_that_fails_after_its_first_result_keeps_the_new_run(tmp_path):
    out = tmp_path / "results"
    make_run(out / "run")
    with pytest.raises(KeyboardInterrupt), claim_run_dir(run_cfg(out), overwrite=True) as run:
        save_text(os.path.join(run.path, "metrics.jsonl"), "{}\n")
        raise KeyboardInterrupt
    assert (out / "run" / "metrics.jsonl").is_file()
    assert not (out / ".run.replaced").exists()


@pytest.mark.parametrize("new_run_has_results", (False, True))
def test_overwrite_killed_midway_is_settled_by_the_next_run(tmp_path, new_run_has_results):
    out = tmp_path / "results"
    make_run(out / ".run.replaced")  # what a kill -9 during an --overwrite run leaves
    make_run(out / "run", results=new_run_has_results)
    if new_run_has_results:
        (out / "run" / "checkpoints" / "best.pth").write_bytes(b"new weights")
    with pytest.raises(FileExistsError, match="--resume"):
        prepare_run_dir(run_cfg(out))  # settled first, then refused as an existing run
    assert not (out / ".run.replaced").exists()
    want = b"new weights" if new_run_has_results else b"weights"
    assert (out / "run" / "checkpoints" / "best.pth").read_bytes() == want
