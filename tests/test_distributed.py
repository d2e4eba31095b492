"""Multi-process training: helpers, and two gloo processes training exactly like one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

import train as train_entry
from lib.core.builders import build_train_dataset, load_sets, split_train_val
from lib.core.cli import build_parser, load_config
from lib.utils.checkpoint import load_checkpoint
from lib.utils.distributed import (
    DistInfo,
    dist_info_from_env,
    epoch_sampler,
    per_rank_batch_size,
    run_on_main,
)

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_dist_info_from_env() -> None:
    assert dist_info_from_env({}) == DistInfo(0, 1, 0)
    info = dist_info_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (info.rank, info.world_size, info.local_rank, info.is_main) == (3, 4, 1, False)
    with pytest.raises(ValueError, match="RANK"):
        dist_info_from_env({"RANK": "2", "WORLD_SIZE": "2"})


def test_global_batch_must_split_evenly() -> None:
    assert per_rank_batch_size(128, 4) == 32
    with pytest.raises(ValueError, match="divisible by the 3 processes"):
        per_rank_batch_size(128, 3)


def test_run_on_main_without_process_group() -> None:
    assert run_on_main(lambda: 7, DistInfo()) == 7


def test_ranks_together_see_the_single_process_batches() -> None:
    """Rank r's i-th per-rank batch, over all r, is the single process's i-th global batch."""
    dataset, global_batch, world = list(range(50)), 8, 2
    single = list(epoch_sampler(dataset, DistInfo(), seed=3))
    per_rank = [list(epoch_sampler(dataset, DistInfo(rank, world), seed=3))
                for rank in range(world)]
    share = global_batch // world
    for start in range(0, len(dataset), global_batch):
        step = start // global_batch
        together = sorted(i for indices in per_rank
                          for i in indices[step * share:(step + 1) * share])
        assert together == sorted(single[start:start + global_batch])


def _argv(base: str, out: str, epochs: int, *extra: str) -> list[str]:
    return ["--cfg", "configs/smoke.yaml", "--dataset_name", "aist", "--estimator", "vibe",
            "--body_representation", "3D", *extra, "DATASET.BASE_DIR", base, "OUTPUT_DIR", out,
            "EXP_NAME", "run", "TRAIN.EPOCHS", str(epochs), "MODEL.DROPOUT", "0.0",
            "TRAIN.BATCH_SIZE", "16"]


def _torchrun(argv: list[str]) -> None:
    """``torchrun --standalone --nproc_per_node 2 train.py ...`` as a user runs it."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "train.py", *argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=_REPO, env=env, capture_output=True, text=True,
                          timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _rank_worker(rank: int, argv: list[str], port: int) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    assert train_entry.main(argv) == 0


def _forked_ranks(argv: list[str]) -> None:
    """The same two ranks, forked from this process: no second import of torch (seconds)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torch.multiprocessing.start_processes(_rank_worker, args=(argv, port), nprocs=2,
                                          start_method="fork")


def _training_windows(argv: list[str]) -> int:
    cfg = load_config(build_parser("").parse_args(argv))
    sets = load_sets(cfg, "train")
    detected, groundtruth, _, _ = split_train_val(sets, cfg.DATASET.VAL_FRACTION, cfg.SEED)
    return len(build_train_dataset(cfg, sets, detected, groundtruth))


def test_two_processes_train_like_one_and_resume(aist_3d, tmp_path) -> None:
    """DDP on 2 CPU processes (gloo, via torchrun) ends with the single-process weights.

    Dropout is off and the epoch sampler gives both runs the same global batches; an even
    window count keeps the two ranks' shares of every batch equal, so the averaged gradients
    are those of the whole batch. The DDP run stops after one epoch and resumes for the second.
    """
    single_out, ddp_out = str(tmp_path / "single"), str(tmp_path / "ddp")
    assert _training_windows(_argv(aist_3d, single_out, 2)) % 2 == 0
    assert train_entry.main(_argv(aist_3d, single_out, 2)) == 0
    _torchrun(_argv(aist_3d, ddp_out, 1))
    _forked_ranks(_argv(aist_3d, ddp_out, 2, "--resume"))
    single = load_checkpoint(os.path.join(single_out, "run", "checkpoints", "last.pth"))
    ddp = load_checkpoint(os.path.join(ddp_out, "run", "checkpoints", "last.pth"))
    assert ddp["epoch"] == single["epoch"] == 1
    for name, value in single["model"].items():
        torch.testing.assert_close(ddp["model"][name], value, atol=1e-5, rtol=1e-4, msg=name)
    assert ddp["best_metric"] == pytest.approx(single["best_metric"], rel=1e-4)
    lines = open(os.path.join(ddp_out, "run", "metrics.jsonl")).read().splitlines()
    assert len(lines) == 2  # rank 0 alone writes
