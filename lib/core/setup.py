"""Run set-up shared by train.py and eval.py: run folder (locked, marked), logging, seed, device."""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from yacs.config import CfgNode

from lib.core.config import exp_name
from lib.errors import ConfigError, MissingFileError, RunFolderError
from lib.utils.host_memory import keep_freed_memory
from lib.utils.io import is_temp_file, remove_temp_files, save_json, save_text
from lib.utils.run_lock import RunLock

logger = logging.getLogger(__name__)


class RunExistsError(RunFolderError, FileExistsError):
    """A run folder that holds results already, without --resume or --overwrite."""


_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(log_file: str = "", rank: int = 0) -> None:
    """Console logging (rank 0 only) plus an optional log file; replaces earlier handlers."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file and rank == 0:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT, "%Y-%m-%d %H:%M:%S"))
        root.addHandler(handler)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; an unavailable CUDA request is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"DEVICE {name!r} requested but CUDA is not available; use DEVICE cpu")
    return device


def git_commit() -> str:
    """The current commit hash, or 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=os.path.dirname(__file__), check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


# A run folder of this project holds this file from its creation on: only such a folder (or
# one laid out as train.py laid runs out before the file existed) is ever replaced or reused.
RUN_MARKER = "run.json"
_PROJECT = "MotionRefineNet"
# What train.py wrote into a run folder before RUN_MARKER existed (run_ablation_done: by
# tools/run_ablation.py); a folder holding config.yaml and nothing else is such an older run.
_LEGACY_RUN_NAMES = frozenset({"config.yaml", "log.txt", "metrics.jsonl", "checkpoints",
                               "tensorboard", "run_ablation_done"})


@dataclass(frozen=True)
class RunFolder:
    """A prepared run folder and whether this call created it (then it may remove it again).

    ``replaced`` is where --overwrite set the earlier run aside ('' when nothing was replaced).
    """

    path: str
    created: bool
    replaced: str = ""


def holds_results(run_dir: str) -> bool:
    """Whether a run folder has results worth keeping (a run that failed at start has none).

    The temporary files of interrupted writes (``.tmp_*``) never count.
    """
    checkpoints = os.path.join(run_dir, "checkpoints")
    return os.path.isfile(os.path.join(run_dir, "metrics.jsonl")) or (
        os.path.isdir(checkpoints) and any(n.endswith(".pth") and not is_temp_file(n)
                                           for n in os.listdir(checkpoints)))


def run_dir_path(cfg: CfgNode) -> str:
    """``OUTPUT_DIR/EXP_NAME``, refused unless it resolves (symlinks too) to inside OUTPUT_DIR."""
    run_dir = os.path.join(cfg.OUTPUT_DIR, exp_name(cfg))
    output_dir = os.path.realpath(cfg.OUTPUT_DIR)
    resolved = os.path.realpath(run_dir)
    if resolved == output_dir or os.path.commonpath([output_dir, resolved]) != output_dir:
        raise RunFolderError(f"run folder {run_dir} resolves to {resolved}, which is not inside "
                             f"OUTPUT_DIR {output_dir}; set EXP_NAME to one plain folder name "
                             "(and do not link run folders elsewhere)")
    return run_dir


def replaced_run_path(run_dir: str) -> str:
    """Where --overwrite keeps the earlier run until the new one ends: a hidden sibling."""
    parent, name = os.path.split(run_dir)
    return os.path.join(parent, f".{name}.replaced")


def run_lock_path(run_dir: str) -> str:
    """The lock file of a run folder: a hidden file beside it, so it outlives --overwrite."""
    parent, name = os.path.split(run_dir)
    return os.path.join(parent, f".{name}.lock")


def _read_marker(run_dir: str) -> dict:
    """The run marker's content; {} when missing or not this project's."""
    try:
        with open(os.path.join(run_dir, RUN_MARKER), encoding="utf-8") as handle:
            marker = json.load(handle)
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) and marker.get("project") == _PROJECT else {}


def _write_marker(run_dir: str) -> None:
    """Mark a folder as a run folder of this project."""
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    save_json(os.path.join(run_dir, RUN_MARKER),
              {"project": _PROJECT, "exp_name": os.path.basename(run_dir), "created": created})


def is_run_folder(run_dir: str) -> bool:
    """Whether ``run_dir`` is a run folder of this project (marked, older layout, or empty)."""
    if _read_marker(run_dir):
        return True
    names = {n for n in os.listdir(run_dir) if not is_temp_file(n)}
    return not names or ("config.yaml" in names and names <= _LEGACY_RUN_NAMES)


def _check_run_folder(run_dir: str) -> None:
    """Refuse to use, and above all to replace, a folder that train.py did not make."""
    if not os.path.isdir(run_dir) or os.path.islink(run_dir):
        raise RunFolderError(f"{run_dir} exists and is a file or a link, not a folder; set "
                             "EXP_NAME to another name or move it away")
    if not is_run_folder(run_dir):
        raise RunFolderError(f"{run_dir} exists but is not a run folder of train.py (it has no "
                             f"{RUN_MARKER}); it is left untouched, --overwrite included: set "
                             "EXP_NAME (or OUTPUT_DIR) to another name, or move it away yourself")


def _make_dirs(path: str, what: str) -> None:
    """``os.makedirs`` with a RunFolderError naming the folder and the fix."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise RunFolderError(f"cannot create {what} {path}: {err.strerror}; set OUTPUT_DIR to a "
                             "folder you can write") from None


def _reuse_existing(run_dir: str, resume: bool, overwrite: bool) -> bool:
    """Check an existing run folder against the flags; True when it is kept, False if removed."""
    _check_run_folder(run_dir)
    for path in remove_temp_files(run_dir):
        logger.warning("removed %s, left by an interrupted write", path)
    if holds_results(run_dir) and not (resume or overwrite):
        raise RunExistsError(f"{run_dir} already holds a run; pass --resume to continue it, "
                             "--overwrite to replace it, or set EXP_NAME to a new name")
    if resume and not os.path.isfile(os.path.join(run_dir, "checkpoints", "last.pth")):
        raise MissingFileError(f"--resume: {run_dir}/checkpoints/last.pth does not exist; "
                               "train without --resume")
    if overwrite and not resume:
        aside = replaced_run_path(run_dir)
        logger.warning("--overwrite: the earlier run in %s is kept as %s until the new run "
                       "ends; it is deleted then, or put back if the new run fails before its "
                       "first result", run_dir, aside)
        os.replace(run_dir, aside)
        return False
    return True


def _settle_replaced_run(run_dir: str) -> None:
    """Finish an --overwrite that a killed process left half done (a set-aside earlier run).

    When the new run holds results it replaced the earlier one, which is deleted; otherwise the
    earlier run is put back in place of the result-less new folder.
    """
    aside = replaced_run_path(run_dir)
    if not os.path.isdir(aside) or os.path.islink(aside):
        return
    if os.path.lexists(run_dir):
        _check_run_folder(run_dir)
        if holds_results(run_dir):
            shutil.rmtree(aside)
            return
        shutil.rmtree(run_dir)
    os.replace(aside, run_dir)
    logger.warning("put back the earlier run in %s: the --overwrite run ended (or was killed) "
                   "before writing any result", run_dir)


def prepare_run_dir(cfg: CfgNode, resume: bool = False, overwrite: bool = False) -> RunFolder:
    """The run folder ``OUTPUT_DIR/EXP_NAME``; refuse to reuse it unless resuming or asked.

    Call it while holding the folder's lock (:func:`claim_run_dir` does both).
    """
    run_dir = run_dir_path(cfg)
    _settle_replaced_run(run_dir)
    if resume and not os.path.lexists(run_dir):
        raise MissingFileError(f"--resume: there is no run folder {run_dir}; train without "
                               "--resume, or set EXP_NAME / OUTPUT_DIR to the run to continue")
    existed = os.path.lexists(run_dir)
    kept = existed and _reuse_existing(run_dir, resume, overwrite)
    replaced = replaced_run_path(run_dir) if existed and not kept else ""
    _make_dirs(os.path.join(run_dir, "checkpoints"), "the run folder")
    if not _read_marker(run_dir):
        _write_marker(run_dir)
    return RunFolder(run_dir, created=not kept, replaced=replaced)


def _remove_if_without_results(run: RunFolder) -> None:
    """Remove a run folder this invocation created when the run ended without any result."""
    if run.created and os.path.isdir(run.path) and not holds_results(run.path):
        logger.info("removing %s: the run stopped before writing any result", run.path)
        shutil.rmtree(run.path, ignore_errors=True)


@contextlib.contextmanager
def claim_run_dir(cfg: CfgNode, resume: bool = False,
                  overwrite: bool = False) -> Iterator[RunFolder]:
    """Lock and prepare the run folder for the whole ``with`` block (one run per folder).

    A second run into the same folder is refused at once, naming the holder's PID. When the
    block raises before any checkpoint or metrics line exists, a folder that this call created
    is removed again (a pre-existing one, or a resumed one, never), and a run that --overwrite
    set aside is put back; otherwise the set-aside run is deleted when the block ends.
    """
    run_dir = run_dir_path(cfg)
    _make_dirs(cfg.OUTPUT_DIR, "OUTPUT_DIR")
    with RunLock(run_lock_path(run_dir), f"run folder {run_dir}"):
        run = prepare_run_dir(cfg, resume, overwrite)
        try:
            yield run
        except BaseException:
            _remove_if_without_results(run)
            raise
        finally:
            _settle_replaced_run(run_dir)


def setup_run(cfg: CfgNode, run_dir: str = "", rank: int = 0) -> torch.device:
    """Configure logging, seed, device and allocator; dump the config into ``run_dir`` if given."""
    configure_logging(os.path.join(run_dir, "log.txt") if run_dir else "", rank)
    seed_everything(cfg.SEED + rank)
    device = resolve_device(cfg.DEVICE)
    kept = keep_freed_memory() if cfg.KEEP_FREED_MEMORY else False
    logger.info("python %s, torch %s, numpy %s, device %s, commit %s, freed memory kept: %s",
                sys.version.split()[0], torch.__version__, np.__version__, device, git_commit(),
                kept)
    logger.info("config:\n%s", cfg.dump())
    if run_dir and rank == 0:
        save_text(os.path.join(run_dir, "config.yaml"), cfg.dump())
    return device
