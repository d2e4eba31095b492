"""Multi-process training with torchrun: process group, per-rank device, sampler, DDP wrapper.

``torchrun`` sets RANK, WORLD_SIZE and LOCAL_RANK (plus MASTER_ADDR / MASTER_PORT) in every
process it starts; without them a run is a single process and nothing here changes it.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

from lib.errors import ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How long a collective waits for the other ranks before it fails (instead of hanging).
_TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs, TensorBoard and checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_info_from_env(env: Mapping[str, str] | None = None) -> DistInfo:
    """Read RANK, WORLD_SIZE and LOCAL_RANK as torchrun sets them; absent = one process."""
    env = os.environ if env is None else env
    world_size = int(env.get("WORLD_SIZE", "1"))
    rank = int(env.get("RANK", "0"))
    local_rank = int(env.get("LOCAL_RANK", str(rank)))
    if not 0 <= rank < world_size:
        raise ConfigError(f"RANK {rank} must lie in [0, WORLD_SIZE = {world_size}); launch "
                         "with torchrun, which sets both")
    return DistInfo(rank, world_size, local_rank)


def rank_device(device: torch.device, info: DistInfo) -> torch.device:
    """One GPU per process on its node (cuda:LOCAL_RANK); CPU ranks share the CPU.

    An explicit index (DEVICE cuda:1) is kept for a single process only.
    """
    if device.type != "cuda" or not info.enabled:
        return device
    if info.local_rank >= torch.cuda.device_count():
        raise ConfigError(f"LOCAL_RANK {info.local_rank} has no GPU: this node has "
                          f"{torch.cuda.device_count()}; lower --nproc_per_node")
    return torch.device("cuda", info.local_rank)


def init_distributed(info: DistInfo, device: torch.device) -> None:
    """Join the process group: NCCL for CUDA devices, gloo for CPU. No-op for one process."""
    if not info.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=info.rank, world_size=info.world_size,
                            timeout=_TIMEOUT)
    logger.info("process group: backend %s, rank %d of %d, device %s", backend, info.rank,
                info.world_size, device)


def shutdown_distributed() -> None:
    """Leave the process group if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank; no-op for one process."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def per_rank_batch_size(global_batch: int, world_size: int) -> int:
    """TRAIN.BATCH_SIZE is the global batch; each rank takes an equal share of it."""
    if global_batch % world_size:
        raise ConfigError(f"TRAIN.BATCH_SIZE {global_batch} is the global batch and must be "
                          f"divisible by the {world_size} processes; choose a multiple of "
                          f"{world_size}")
    return global_batch // world_size


def epoch_sampler(dataset: Dataset, info: DistInfo, seed: int,
                  shuffle: bool = True) -> DistributedSampler:
    """Each rank's share of a permutation drawn from ``seed + epoch``.

    Rank r takes every world_size-th index of the permutation starting at r, so with per-rank
    batches of BATCH_SIZE / world_size the ranks' i-th batches together are exactly the
    single-process run's i-th batch: a run sees the same global batches on any number of
    processes (up to the padding of the last batch to a multiple of world_size), and a resumed
    run continues the permutation of its epoch.
    """
    return DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank,
                              shuffle=shuffle, seed=seed, drop_last=False)


def wrap_ddp(model: nn.Module, device: torch.device, info: DistInfo) -> nn.Module:
    """DistributedDataParallel around ``model`` when there are several processes.

    Buffers are constants here (channel orders, band masks), so they are not re-broadcast on
    every forward.
    """
    if not info.enabled:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids,
                                               broadcast_buffers=False)


def run_on_main(fn: Callable[[], T], info: DistInfo) -> T:
    """Call ``fn`` on rank 0 only and give every rank its result, or raise its error on all.

    For steps with side effects that must happen once (creating or replacing the run folder)
    but whose failure must stop every rank rather than leave them waiting in a collective.
    """
    if not info.enabled:
        return fn()
    shared: list = [None, None]
    if info.is_main:
        try:
            shared = [fn(), None]
        except Exception as err:  # noqa: BLE001 -- re-raised on every rank below
            shared = [None, err]
    dist.broadcast_object_list(shared, src=0)
    if shared[1] is not None:
        raise shared[1]
    return shared[0]
