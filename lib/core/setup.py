"""Run set-up shared by train.py and eval.py: folder, logging, seed, device, config dump."""

from __future__ import annotations

import logging
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import torch
from yacs.config import CfgNode

from lib.core.config import exp_name
from lib.utils.io import save_text

logger = logging.getLogger(__name__)

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
        raise RuntimeError(f"DEVICE {name!r} requested but CUDA is not available; use DEVICE cpu")
    return device


def git_commit() -> str:
    """The current commit hash, or 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=os.path.dirname(__file__), check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def holds_results(run_dir: str) -> bool:
    """Whether a run folder has results worth keeping (a run that failed at start has none)."""
    checkpoints = os.path.join(run_dir, "checkpoints")
    return os.path.isfile(os.path.join(run_dir, "metrics.jsonl")) or (
        os.path.isdir(checkpoints) and any(n.endswith(".pth") for n in os.listdir(checkpoints)))


def prepare_run_dir(cfg: CfgNode, resume: bool = False, overwrite: bool = False) -> str:
    """The run folder ``OUTPUT_DIR/EXP_NAME``; refuse to reuse it unless resuming or asked."""
    run_dir = os.path.join(cfg.OUTPUT_DIR, exp_name(cfg))
    if holds_results(run_dir) and not (resume or overwrite):
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it, "
                              "--overwrite to replace it, or set EXP_NAME to a new name")
    if overwrite and not resume and os.path.isdir(run_dir):
        logger.warning("--overwrite: removing the earlier run in %s", run_dir)
        shutil.rmtree(run_dir)
    if resume and not os.path.isfile(os.path.join(run_dir, "checkpoints", "last.pth")):
        raise FileNotFoundError(f"--resume: {run_dir}/checkpoints/last.pth does not exist")
    os.makedirs(os.path.join(run_dir, "checkpoints"), exist_ok=True)
    return run_dir


def setup_run(cfg: CfgNode, run_dir: str = "", rank: int = 0) -> torch.device:
    """Configure logging, seed and device; dump the config into ``run_dir`` when given."""
    configure_logging(os.path.join(run_dir, "log.txt") if run_dir else "", rank)
    seed_everything(cfg.SEED + rank)
    device = resolve_device(cfg.DEVICE)
    logger.info("python %s, torch %s, numpy %s, device %s, commit %s", sys.version.split()[0],
                torch.__version__, np.__version__, device, git_commit())
    logger.info("config:\n%s", cfg.dump())
    if run_dir and rank == 0:
        save_text(os.path.join(run_dir, "config.yaml"), cfg.dump())
    return device
