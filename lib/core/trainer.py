"""A small training loop: epochs, validation, atomic checkpoints, resume, TensorBoard."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from lib.core.acceleration import autocast, unwrap
from lib.data.normalize import WindowNormalizer
from lib.utils.checkpoint import load_checkpoint, save_checkpoint

logger = logging.getLogger(__name__)


@dataclass
class TrainerSettings:
    """Plain settings of a training run (the config is translated by the caller)."""

    run_dir: str
    epochs: int
    device: torch.device
    log_period: int = 50
    grad_clip: float = 0.0
    is_main: bool = True  # rank 0 writes logs, TensorBoard and checkpoints
    amp: bool = False  # bf16 autocast of the forward pass (TRAIN.AMP, already resolved)


class Trainer:
    """Trains a window model; ``validate_fn(model)`` returns metrics with an ``mpjpe`` key.

    Args:
        model: the network, already on the device.
        normalizer: per-window centring shared with evaluation.
        loader: yields dicts with input, target (B, T, C) and mask (B, T).
        optimizer, scheduler: stepped per iteration and per epoch.
        loss_fn: loss(pred, target, mask) in normalised units.
        validate_fn: metrics of the current model on the validation sequences.
        settings: run folder, epochs, device, logging.
        checkpoint_meta: model name and kwargs, normaliser kwargs and config text.
        writer: optional TensorBoard SummaryWriter.
    """

    def __init__(self, model: nn.Module, normalizer: WindowNormalizer, loader,
                 optimizer: torch.optim.Optimizer, scheduler, loss_fn: nn.Module,
                 validate_fn: Callable[[nn.Module], dict], settings: TrainerSettings,
                 checkpoint_meta: dict, writer=None) -> None:
        self.model, self.normalizer, self.loader = model, normalizer, loader
        self.optimizer, self.scheduler, self.loss_fn = optimizer, scheduler, loss_fn
        self.validate_fn, self.settings, self.meta, self.writer = (validate_fn, settings,
                                                                   checkpoint_meta, writer)
        self.start_epoch = 0
        self.best_metric = math.inf
        self.iteration = 0

    def _checkpoint_path(self, name: str) -> str:
        return os.path.join(self.settings.run_dir, "checkpoints", name)

    def fit(self) -> float:
        """Train from ``start_epoch`` to the last epoch; return the best validation MPJPE."""
        for epoch in range(self.start_epoch, self.settings.epochs):
            if hasattr(self.loader.sampler, "set_epoch"):
                self.loader.sampler.set_epoch(epoch)
            train_loss = self.train_epoch(epoch)
            metrics = self.validate_fn(self._eval_model())
            self.scheduler.step()
            is_best = metrics["mpjpe"] < self.best_metric
            self.best_metric = min(self.best_metric, metrics["mpjpe"])
            self._report(epoch, train_loss, metrics, is_best)
            if self.settings.is_main:
                self.save(epoch, is_best)
        return self.best_metric

    def train_epoch(self, epoch: int) -> float:
        """One pass over the loader; raise on a non-finite loss (last.pth stays the last good)."""
        self.model.train()
        total, count = 0.0, 0
        bar = tqdm(self.loader, desc=f"epoch {epoch + 1}", leave=False,
                   disable=not (self.settings.is_main and sys.stderr.isatty()))
        for batch in bar:
            loss = self.train_step(batch)
            total, count = total + loss, count + 1
            self.iteration += 1
            if self.iteration % self.settings.log_period == 0:
                lr = self.optimizer.param_groups[0]["lr"]
                logger.info("epoch %d iter %d loss %.5f lr %.2e", epoch + 1, self.iteration,
                            loss, lr)
                self._scalar("train/loss", loss, self.iteration)
                self._scalar("train/lr", lr, self.iteration)
        return total / max(count, 1)

    def train_step(self, batch: dict[str, torch.Tensor]) -> float:
        """Forward, loss, backward and update on one batch; returns the loss value."""
        device = self.settings.device
        inputs = batch["input"].to(device, non_blocking=True)
        targets = batch["target"].to(device, non_blocking=True)
        mask = batch["mask"].to(device, non_blocking=True)
        centre = self.normalizer.centre(inputs)
        with autocast(device, self.settings.amp):
            pred = self.model(self.normalizer.normalize(inputs, centre))
        loss = self.loss_fn(pred.float(), self.normalizer.normalize(targets, centre), mask)
        if not torch.isfinite(loss):
            last = self._checkpoint_path("last.pth")
            raise FloatingPointError(f"non-finite training loss {loss.item()} at iteration "
                                     f"{self.iteration}; lower TRAIN.LR or set TRAIN.GRAD_CLIP. "
                                     f"The last good checkpoint is {last}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.settings.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.optimizer.step()
        return loss.item()

    def _report(self, epoch: int, train_loss: float, metrics: dict, is_best: bool) -> None:
        if not self.settings.is_main:
            return
        logger.info("epoch %d/%d train loss %.5f | val mpjpe %.2f pa_mpjpe %.2f accel %.2f%s",
                    epoch + 1, self.settings.epochs, train_loss, metrics["mpjpe"],
                    metrics.get("pa_mpjpe", float("nan")), metrics.get("accel", float("nan")),
                    " (best)" if is_best else "")
        for key in ("mpjpe", "pa_mpjpe", "accel"):
            if key in metrics:
                self._scalar(f"val/{key}", metrics[key], epoch + 1)
        record = {"epoch": epoch + 1, "train_loss": train_loss,
                  "lr": self.optimizer.param_groups[0]["lr"],
                  **{f"val_{k}": v for k, v in metrics.items() if not isinstance(v, dict)}}
        with open(os.path.join(self.settings.run_dir, "metrics.jsonl"), "a",
                  encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None and self.settings.is_main:
            self.writer.add_scalar(tag, value, step)

    def _unwrapped(self) -> nn.Module:
        return unwrap(self.model)

    def _eval_model(self) -> nn.Module:
        """The model without DistributedDataParallel: every rank validates on its own, with
        no collective calls, and gets the same metrics (the weights are identical)."""
        if isinstance(self.model, nn.parallel.DistributedDataParallel):
            return self.model.module
        return self.model

    def save(self, epoch: int, is_best: bool) -> None:
        """Write last.pth, and best.pth when validation improved."""
        state = {**self.meta, "model": self._unwrapped().state_dict(),
                 "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "epoch": epoch,
                 "iteration": self.iteration, "best_metric": self.best_metric,
                 "rng": _rng_state()}
        save_checkpoint(self._checkpoint_path("last.pth"), state)
        if is_best:
            save_checkpoint(self._checkpoint_path("best.pth"), state)

    def resume(self) -> None:
        """Continue from last.pth at the next epoch with optimizer, scheduler and RNG states."""
        state = load_checkpoint(self._checkpoint_path("last.pth"))
        self._unwrapped().load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.start_epoch = state["epoch"] + 1
        self.iteration = state.get("iteration", 0)
        self.best_metric = state["best_metric"]
        # The checkpoint holds rank 0's RNG streams; other ranks keep their own seeding
        # (SEED + rank), so their dropout masks and augmentations stay independent.
        if "rng" in state and self.settings.is_main:
            _set_rng_state(state["rng"])
        logger.info("resumed from epoch %d (best val mpjpe %.2f)", self.start_epoch,
                    self.best_metric)


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "python": random.getstate()}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
