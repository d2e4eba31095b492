"""Assembles a training run from a frozen config: data, model, optimiser, trainer."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import random

import numpy as np
import torch
from torch.utils.data import DataLoader
from yacs.config import CfgNode

from lib.core.acceleration import maybe_compile, resolve_amp, unwrap
from lib.core.builders import (
    build_model,
    build_normalizer,
    build_test_time_mirror,
    build_train_dataset,
    load_sets,
    split_train_val,
    validation_set,
)
from lib.core.evaluation import build_scorer, make_validator
from lib.core.losses import RefinementLoss
from lib.core.resume import check_resume_run
from lib.core.setup import claim_run_dir, resolve_device, setup_run
from lib.core.trainer import Trainer, TrainerSettings
from lib.core.weight_average import WeightAverage
from lib.data.dataset import EpochKeySampler, collate_batch
from lib.errors import ConfigError
from lib.models import count_parameters
from lib.utils.distributed import (
    DistInfo,
    dist_info_from_env,
    epoch_sampler,
    init_distributed,
    per_rank_batch_size,
    rank_device,
    run_on_main,
    shutdown_distributed,
    wrap_ddp,
)

logger = logging.getLogger(__name__)


def _seed_worker(seed: int, rank: int, worker_id: int) -> None:
    """Seed a worker's Python, NumPy and torch RNGs from (SEED, rank, worker id).

    Nothing in a worker draws from them (augmentation is keyed by (SEED, epoch, indices), see
    :mod:`lib.data.dataset`); seeding them keeps any future use reproducible too.
    """
    worker_seed = int(np.random.SeedSequence([seed % 2**64, rank, worker_id]).generate_state(1)[0])
    random.seed(worker_seed)
    np.random.seed(worker_seed)
    torch.manual_seed(worker_seed)


def _loader(dataset, batch_size: int, workers: int, seed: int, sampler=None,
            rank: int = 0) -> DataLoader:
    """Whole batches from ``__getitems__``; workers (for augmentation) live across epochs.

    A given sampler is wrapped in :class:`EpochKeySampler`, so every batch carries its epoch
    and its augmentation does not depend on the worker that draws it.
    """
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=sampler is None,
                      sampler=None if sampler is None else EpochKeySampler(sampler),
                      num_workers=workers, collate_fn=collate_batch, generator=generator,
                      worker_init_fn=functools.partial(_seed_worker, seed, rank),
                      pin_memory=torch.cuda.is_available(), drop_last=False,
                      persistent_workers=workers > 0)


def _model_and_optimizer(cfg: CfgNode, model: torch.nn.Module, device: torch.device,
                         dist_info: DistInfo) -> tuple:
    """The model on its device (compiled, DDP-wrapped as configured), Adam and its schedule.

    The optimiser holds the bare model's parameters, which the wrappers share.
    """
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.TRAIN.LR, amsgrad=True,
                                 weight_decay=cfg.TRAIN.WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=cfg.TRAIN.LR_DECAY)
    model = wrap_ddp(maybe_compile(model, cfg.MODEL.COMPILE), device, dist_info)
    return model, optimizer, scheduler


def build_trainer(cfg: CfgNode, run_dir: str, device: torch.device, writer=None,
                  dist_info: DistInfo | None = None, sampler_factory=None) -> Trainer:
    """Everything a training run needs, translated from the config.

    ``dist_info`` places this process in a torchrun launch (default: a single process); the
    default sampler shuffles with ``SEED + epoch`` so every world size sees the same global
    batches (see :func:`lib.utils.distributed.epoch_sampler`). ``DATASET.VAL_FRACTION 0``
    trains on every sequence without validation.
    """
    dist_info = dist_info or DistInfo()
    sets = load_sets(cfg, "train")
    skeleton, rep = sets[0].skeleton, sets[0].representation
    train_det, train_gt, _, val_gt = split_train_val(sets, cfg.DATASET.VAL_FRACTION, cfg.SEED)
    if not val_gt and cfg.DATASET.VAL_FRACTION > 0:
        raise ConfigError(f"DATASET.VAL_FRACTION {cfg.DATASET.VAL_FRACTION} holds out no "
                          "sequence: raise it, add sequences, or set it to 0 to train on every "
                          "sequence without validation")
    dataset = build_train_dataset(cfg, sets, train_det, train_gt)
    sampler = (sampler_factory(dataset) if sampler_factory
               else epoch_sampler(dataset, dist_info, cfg.SEED))
    batch_size = per_rank_batch_size(cfg.TRAIN.BATCH_SIZE, dist_info.world_size)
    loader = _loader(dataset, batch_size, cfg.TRAIN.NUM_WORKERS, cfg.SEED, sampler,
                     dist_info.rank)
    model, kwargs = build_model(cfg, skeleton, rep)
    logger.info("%s: %d parameters; %d training windows from %d sequences, %d validation "
                "sequences", cfg.MODEL.NAME, count_parameters(model), len(dataset),
                len(train_gt), len(val_gt))
    model, optimizer, scheduler = _model_and_optimizer(cfg, model, device, dist_info)
    amp = resolve_amp(cfg.TRAIN.AMP, device)
    normalizer = build_normalizer(cfg, skeleton, rep)
    validate = _validator(cfg, sets, normalizer, device, amp) if val_gt else None
    settings = TrainerSettings(run_dir, cfg.TRAIN.EPOCHS, device, cfg.LOG_PERIOD,
                               cfg.TRAIN.GRAD_CLIP, is_main=dist_info.is_main, amp=amp)
    meta = {"model_name": cfg.MODEL.NAME, "model_kwargs": kwargs,
            "normalizer_kwargs": normalizer.kwargs(), "cfg": cfg.dump(),
            "skeleton": skeleton.name, "representation": rep}
    average = (WeightAverage(unwrap(model), cfg.TRAIN.EMA_DECAY) if cfg.TRAIN.EMA_DECAY > 0
               else None)
    return Trainer(model, normalizer, loader, optimizer, scheduler,
                   RefinementLoss(cfg.LOSS.W_POS, cfg.LOSS.W_ACCEL), validate, settings, meta,
                   writer, weight_average=average)


class _LazySummaryWriter:
    """A TensorBoard SummaryWriter made on its first use, so that a run which stops while
    loading its data leaves no event files."""

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self._writer = None
        self._purge_step = None

    def purge_from(self, step: int) -> None:
        """Have TensorBoard drop the events at ``step`` and later that an earlier process wrote.

        A resumed run logs again the iteration scalars of an epoch that a kill cut short; this
        is SummaryWriter's ``purge_step``, applied by the writer made next.
        """
        self.close()
        self._writer, self._purge_step = None, step

    def __getattr__(self, name: str):
        # Only for names this class lacks (add_scalar, flush, ...): they need the real writer.
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(self.log_dir, purge_step=self._purge_step)
        return getattr(self._writer, name)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> _LazySummaryWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _validator(cfg: CfgNode, sets: list, normalizer, device: torch.device, amp: bool):
    """Scores a model on the held-out validation sequences."""
    val_set = validation_set(sets, cfg.DATASET.VAL_FRACTION, cfg.SEED)
    wrap = build_test_time_mirror(cfg, val_set.skeleton, val_set.representation)
    return make_validator(val_set, normalizer, cfg.MODEL.SLIDE_WINDOW_SIZE, cfg.EVAL.SLIDE_STEP,
                          cfg.EVAL.BATCH_SIZE, device, build_scorer(cfg, val_set), amp=amp,
                          wrap=wrap)


def _writer(run_dir: str, is_main: bool):
    """TensorBoard writer of rank 0, made when first written to; other ranks write nothing."""
    if not is_main:
        return contextlib.nullcontext()
    return _LazySummaryWriter(os.path.join(run_dir, "tensorboard"))


def run_training(cfg: CfgNode, resume: bool = False, overwrite: bool = False) -> float:
    """A whole training run, as one process or as one rank of a torchrun launch.

    The run folder is locked for the whole run (rank 0 holds the lock); a folder made by this
    call is removed again if the run fails before its first checkpoint or metrics line.
    Returns the best validation MPJPE.
    """
    dist_info = dist_info_from_env()
    device = rank_device(resolve_device(cfg.DEVICE), dist_info)
    init_distributed(dist_info, device)
    try:
        with contextlib.ExitStack() as held:
            run = run_on_main(lambda: held.enter_context(claim_run_dir(cfg, resume, overwrite)),
                              dist_info)
            # Read and checked before setup_run rewrites config.yaml.
            resume_state = check_resume_run(cfg, run.path) if resume else None
            setup_run(cfg, run.path, dist_info.rank)
            with _writer(run.path, dist_info.is_main) as writer:
                trainer = build_trainer(cfg, run.path, device, writer, dist_info)
                if resume_state is not None:
                    trainer.resume(resume_state)
                best = trainer.fit()
    finally:
        shutdown_distributed()
    if math.isfinite(best):
        logger.info("done: best validation MPJPE %.2f; checkpoints in %s/checkpoints", best,
                    run.path)
    else:
        logger.info("done: no validation (DATASET.VAL_FRACTION 0), best.pth is the last "
                    "epoch's; checkpoints in %s/checkpoints", run.path)
    return best
