"""Assembles a training run from a frozen config: data, model, optimiser, trainer."""

from __future__ import annotations

import contextlib
import logging
import os

import torch
from torch.utils.data import DataLoader
from yacs.config import CfgNode

from lib.core.acceleration import maybe_compile, resolve_amp
from lib.core.builders import (
    build_model,
    build_normalizer,
    build_train_dataset,
    load_sets,
    split_train_val,
    validation_set,
)
from lib.core.evaluation import build_scorer, make_validator
from lib.core.losses import RefinementLoss
from lib.core.setup import prepare_run_dir, resolve_device, setup_run
from lib.core.trainer import Trainer, TrainerSettings
from lib.data.dataset import collate_batch
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


def _loader(dataset, batch_size: int, workers: int, seed: int, sampler=None) -> DataLoader:
    """Whole batches from ``__getitems__``; workers (for augmentation) live across epochs."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
                      num_workers=workers, collate_fn=collate_batch, generator=generator,
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
    batches (see :func:`lib.utils.distributed.epoch_sampler`).
    """
    dist_info = dist_info or DistInfo()
    sets = load_sets(cfg, "train")
    skeleton, rep = sets[0].skeleton, sets[0].representation
    train_det, train_gt, val_det, val_gt = split_train_val(sets, cfg.DATASET.VAL_FRACTION,
                                                           cfg.SEED)
    if not val_gt:
        raise ValueError("no validation sequences: raise DATASET.VAL_FRACTION or add sequences")
    dataset = build_train_dataset(cfg, sets, train_det, train_gt)
    sampler = (sampler_factory(dataset) if sampler_factory
               else epoch_sampler(dataset, dist_info, cfg.SEED))
    batch_size = per_rank_batch_size(cfg.TRAIN.BATCH_SIZE, dist_info.world_size)
    loader = _loader(dataset, batch_size, cfg.TRAIN.NUM_WORKERS, cfg.SEED, sampler)
    model, kwargs = build_model(cfg, skeleton, rep)
    logger.info("%s: %d parameters; %d training windows from %d sequences, %d validation "
                "sequences", cfg.MODEL.NAME, count_parameters(model), len(dataset),
                len(train_gt), len(val_gt))
    model, optimizer, scheduler = _model_and_optimizer(cfg, model, device, dist_info)
    amp = resolve_amp(cfg.TRAIN.AMP, device)
    normalizer = build_normalizer(cfg, skeleton, rep)
    val_set = validation_set(sets, cfg.DATASET.VAL_FRACTION, cfg.SEED)
    validate = make_validator(val_set, normalizer, cfg.MODEL.SLIDE_WINDOW_SIZE,
                              cfg.EVAL.SLIDE_STEP, cfg.EVAL.BATCH_SIZE, device,
                              build_scorer(cfg, val_set), amp=amp)
    settings = TrainerSettings(run_dir, cfg.TRAIN.EPOCHS, device, cfg.LOG_PERIOD,
                               cfg.TRAIN.GRAD_CLIP, is_main=dist_info.is_main, amp=amp)
    meta = {"model_name": cfg.MODEL.NAME, "model_kwargs": kwargs,
            "normalizer_kwargs": normalizer.kwargs(), "cfg": cfg.dump(),
            "skeleton": skeleton.name, "representation": rep}
    return Trainer(model, normalizer, loader, optimizer, scheduler,
                   RefinementLoss(cfg.LOSS.W_POS, cfg.LOSS.W_ACCEL), validate, settings, meta,
                   writer)


def _writer(run_dir: str, is_main: bool):
    """TensorBoard writer of rank 0; other ranks write nothing."""
    if not is_main:
        return contextlib.nullcontext()
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(os.path.join(run_dir, "tensorboard"))


def run_training(cfg: CfgNode, resume: bool = False, overwrite: bool = False) -> float:
    """A whole training run, as one process or as one rank of a torchrun launch.

    Returns the best validation MPJPE.
    """
    dist_info = dist_info_from_env()
    device = rank_device(resolve_device(cfg.DEVICE), dist_info)
    init_distributed(dist_info, device)
    try:
        run_dir = run_on_main(lambda: prepare_run_dir(cfg, resume, overwrite), dist_info)
        setup_run(cfg, run_dir, dist_info.rank)
        with _writer(run_dir, dist_info.is_main) as writer:
            trainer = build_trainer(cfg, run_dir, device, writer, dist_info)
            if resume:
                trainer.resume()
            best = trainer.fit()
    finally:
        shutdown_distributed()
    logger.info("done: best validation MPJPE %.2f; checkpoints in %s/checkpoints", best, run_dir)
    return best
