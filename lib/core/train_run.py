"""Assembles a training run from a frozen config: data, model, optimiser, trainer."""

from __future__ import annotations

import logging

import torch
from torch.utils.data import DataLoader
from yacs.config import CfgNode

from lib.core.builders import (
    build_model,
    build_normalizer,
    build_train_dataset,
    load_sets,
    split_train_val,
)
from lib.core.evaluation import make_validator
from lib.core.losses import RefinementLoss
from lib.core.trainer import Trainer, TrainerSettings
from lib.data.dataset import collate_batch
from lib.data.smoothnet_io import SequenceSet
from lib.models import count_parameters

logger = logging.getLogger(__name__)


def _validation_set(template: SequenceSet, detected: list, groundtruth: list) -> SequenceSet:
    names = [f"val{i:04d}" for i in range(len(groundtruth))]
    return SequenceSet(f"{template.name}_val", "val", template.skeleton, template.representation,
                       detected, groundtruth, names)


def _loader(dataset, batch_size: int, workers: int, seed: int, sampler=None) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
                      num_workers=workers, collate_fn=collate_batch, generator=generator,
                      pin_memory=torch.cuda.is_available(), drop_last=False)


def build_trainer(cfg: CfgNode, run_dir: str, device: torch.device, writer=None,
                  rank: int = 0, sampler_factory=None) -> Trainer:
    """Everything a training run needs, translated from the config."""
    sets = load_sets(cfg, "train")
    skeleton, rep = sets[0].skeleton, sets[0].representation
    train_det, train_gt, val_det, val_gt = split_train_val(sets, cfg.DATASET.VAL_FRACTION,
                                                           cfg.SEED)
    if not val_gt:
        raise ValueError("no validation sequences: raise DATASET.VAL_FRACTION or add sequences")
    dataset = build_train_dataset(cfg, sets, train_det, train_gt)
    sampler = sampler_factory(dataset) if sampler_factory else None
    loader = _loader(dataset, cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.NUM_WORKERS, cfg.SEED, sampler)
    model, kwargs = build_model(cfg, skeleton, rep)
    logger.info("%s: %d parameters; %d training windows from %d sequences, %d validation "
                "sequences", cfg.MODEL.NAME, count_parameters(model), len(dataset),
                len(train_gt), len(val_gt))
    model = model.to(device)
    normalizer = build_normalizer(cfg, skeleton, rep)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.TRAIN.LR, amsgrad=True,
                                 weight_decay=cfg.TRAIN.WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=cfg.TRAIN.LR_DECAY)
    validate = make_validator(_validation_set(sets[0], val_det, val_gt), normalizer,
                              cfg.MODEL.SLIDE_WINDOW_SIZE, cfg.EVAL.SLIDE_STEP,
                              cfg.EVAL.BATCH_SIZE, device)
    settings = TrainerSettings(run_dir, cfg.TRAIN.EPOCHS, device, cfg.LOG_PERIOD,
                               cfg.TRAIN.GRAD_CLIP, is_main=rank == 0)
    meta = {"model_name": cfg.MODEL.NAME, "model_kwargs": kwargs,
            "normalizer_kwargs": normalizer.kwargs(), "cfg": cfg.dump(),
            "skeleton": skeleton.name, "representation": rep}
    return Trainer(model, normalizer, loader, optimizer, scheduler,
                   RefinementLoss(cfg.LOSS.W_POS, cfg.LOSS.W_ACCEL), validate, settings, meta,
                   writer)
