"""A small training loop: epochs, validation, atomic checkpoints, exact resume, TensorBoard.

Each epoch ends by writing its checkpoint and then logging its metrics; a resume truncates
metrics.jsonl to the checkpoint's epoch and restores every RNG stream, so a run killed at any
point and resumed logs every epoch once and ends with the weights of an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from lib.core.acceleration import autocast, unwrap
from lib.core.resume import check_resume_model, sync_metrics_log
from lib.core.weight_average import WeightAverage
from lib.data.normalize import WindowNormalizer
from lib.errors import CheckpointError, TrainingDivergedError
from lib.utils.checkpoint import save_checkpoint

logger = logging.getLogger(__name__)
# Checkpoint keys that only a resume reads (from last.pth); best.pth leaves them out.
_RESUME_ONLY = ("trained_model", "average_updates")


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
        validate_fn: metrics of the current model on the validation sequences; None trains
            without validation (best.pth is then every epoch's last.pth).
        settings: run folder, epochs, device, logging.
        checkpoint_meta: model name and kwargs, normaliser kwargs and config text.
        writer: optional TensorBoard SummaryWriter.
        weight_average: optional moving average of the weights (TRAIN.EMA_DECAY), updated
            after every step; validation and the checkpoints' ``model`` then use it.
    """

    def __init__(self, model: nn.Module, normalizer: WindowNormalizer, loader,
                 optimizer: torch.optim.Optimizer, scheduler, loss_fn: nn.Module,
                 validate_fn: Callable[[nn.Module], dict] | None, settings: TrainerSettings,
                 checkpoint_meta: dict, writer=None,
                 weight_average: WeightAverage | None = None) -> None:
        self.model, self.normalizer, self.loader = model, normalizer, loader
        self.optimizer, self.scheduler, self.loss_fn = optimizer, scheduler, loss_fn
        self.validate_fn, self.settings, self.meta, self.writer = (validate_fn, settings,
                                                                   checkpoint_meta, writer)
        self.weight_average = weight_average
        self.start_epoch = 0
        self.best_metric = math.inf
        self.iteration = 0

    def _checkpoint_path(self, name: str) -> str:
        return os.path.join(self.settings.run_dir, "checkpoints", name)

    def fit(self) -> float:
        """Train from ``start_epoch`` to the last epoch; return the best validation MPJPE.

        Without validation the result is inf and every epoch counts as the best.
        """
        for epoch in range(self.start_epoch, self.settings.epochs):
            if hasattr(self.loader.sampler, "set_epoch"):
                self.loader.sampler.set_epoch(epoch)
            train_loss = self.train_epoch(epoch)
            metrics = self.validate_fn(self._eval_model()) if self.validate_fn else {}
            self.scheduler.step()
            is_best = not metrics or metrics["mpjpe"] < self.best_metric
            self.best_metric = min(self.best_metric, metrics.get("mpjpe", math.inf))
            record = self._record(epoch, train_loss, metrics)
            if self.settings.is_main:
                self.save(epoch, is_best, record)
                _test_kill_point(epoch, "after_checkpoint")
            self._report(record, is_best)
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
            raise TrainingDivergedError(f"non-finite training loss {loss.item()} at iteration "
                                        f"{self.iteration}; lower TRAIN.LR or set TRAIN.GRAD_CLIP. "
                                        f"The last good checkpoint is {last}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.settings.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.optimizer.step()
        if self.weight_average is not None:
            self.weight_average.update(self._unwrapped())
        return loss.item()

    def _record(self, epoch: int, train_loss: float, metrics: dict) -> dict:
        """The epoch's metrics.jsonl line (plain types: it also goes into the checkpoint)."""
        return {"epoch": epoch + 1, "train_loss": float(train_loss),
                "lr": float(self.optimizer.param_groups[0]["lr"]),
                **{f"val_{k}": _plain(v) for k, v in metrics.items()
                   if not isinstance(v, dict)}}

    def _report(self, record: dict, is_best: bool) -> None:
        """Log the epoch, add its TensorBoard scalars and its metrics.jsonl line (rank 0)."""
        if not self.settings.is_main:
            return
        logger.info("epoch %d/%d train loss %.5f | %s", record["epoch"], self.settings.epochs,
                    record["train_loss"], _val_summary(record, is_best))
        self._epoch_scalars(record)
        if self.writer is not None:
            self.writer.flush()  # a kill loses no finished epoch's scalars
        with open(self._metrics_path(), "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _epoch_scalars(self, record: dict) -> None:
        for key in ("mpjpe", "pa_mpjpe", "accel"):
            if f"val_{key}" in record:
                self._scalar(f"val/{key}", record[f"val_{key}"], record["epoch"])

    def _metrics_path(self) -> str:
        return os.path.join(self.settings.run_dir, "metrics.jsonl")

    def _scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None and self.settings.is_main:
            self.writer.add_scalar(tag, value, step)

    def _unwrapped(self) -> nn.Module:
        return unwrap(self.model)

    def _eval_model(self) -> nn.Module:
        """The model without DistributedDataParallel: every rank validates on its own, with
        no collective calls, and gets the same metrics (the weights are identical). With a
        weight average, the average."""
        if self.weight_average is not None:
            return self.weight_average.model
        if isinstance(self.model, nn.parallel.DistributedDataParallel):
            return self.model.module
        return self.model

    def save(self, epoch: int, is_best: bool, record: dict | None = None) -> None:
        """Write best.pth when validation improved, then last.pth.

        best.pth goes first: a kill between the two leaves last.pth at the previous epoch,
        whose resume recomputes this epoch identically and writes both again. With a weight
        average, ``model`` is the average (what evaluation loads); ``trained_model`` and
        ``average_updates`` hold what a resume needs besides, in last.pth only.
        """
        _test_kill_point(epoch, "before_checkpoint")
        state = {**self.meta, **self._weights(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "epoch": epoch,
                 "iteration": self.iteration, "best_metric": float(self.best_metric),
                 "rng": _rng_state(), "record": record}
        if is_best:  # resumes read last.pth: best.pth needs the weights evaluation loads
            best = {key: value for key, value in state.items() if key not in _RESUME_ONLY}
            save_checkpoint(self._checkpoint_path("best.pth"), best)
        _test_kill_point(epoch, "during_checkpoint")
        save_checkpoint(self._checkpoint_path("last.pth"), state)

    def _weights(self) -> dict:
        """A checkpoint's weights: ``model``, and the trained weights beside an average."""
        trained = self._unwrapped().state_dict()
        if self.weight_average is None:
            return {"model": trained}
        average = self.weight_average.state_dict()
        return {"model": average["model"], "trained_model": trained,
                "average_updates": average["updates"]}

    def _load_weights(self, state: dict, path: str) -> None:
        """Restore the trained weights (and the average) that :meth:`save` wrote."""
        if self.weight_average is None:
            self._unwrapped().load_state_dict(state["model"])
            return
        if "trained_model" not in state:
            raise CheckpointError(f"{path} holds no weight average to continue (written without "
                                  "TRAIN.EMA_DECAY): resume it with the config it was trained "
                                  "with, or start a new run")
        self._unwrapped().load_state_dict(state["trained_model"])
        self.weight_average.load_state_dict({"model": state["model"],
                                             "updates": state["average_updates"]})

    def resume(self, state: dict) -> None:
        """Continue from last.pth at the next epoch with optimizer, scheduler and RNG states.

        Args:
            state: last.pth as :func:`lib.core.resume.check_resume_run` read it, after checking
                its config against the run's (see :data:`lib.core.resume.RESUME_MAY_CHANGE`).

        Raises:
            ConfigError: when the checkpoint holds another network than this trainer's.
        """
        path = self._checkpoint_path("last.pth")
        if "model_kwargs" in self.meta:
            check_resume_model(state, self.meta, path)
        self._load_weights(state, path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.start_epoch = state["epoch"] + 1
        self.iteration = state.get("iteration", 0)
        self.best_metric = state["best_metric"]
        # The checkpoint holds rank 0's RNG streams; other ranks keep their own seeding
        # (SEED + rank), so their dropout masks stay independent.
        if "rng" in state and self.settings.is_main:
            _set_rng_state(state["rng"])
        if self.settings.is_main:
            self._sync_logs(state)
        logger.info("resumed from epoch %d (best val mpjpe %.2f)", self.start_epoch,
                    self.best_metric)

    def _sync_logs(self, state: dict) -> None:
        """metrics.jsonl up to the checkpoint's epoch, once each; TensorBoard likewise."""
        record = state.get("record")
        if self.writer is not None:
            _purge_tensorboard(self.writer, self.iteration + 1)
        if sync_metrics_log(self._metrics_path(), self.start_epoch, record):
            logger.info("epoch %d was checkpointed but not logged: logged now", self.start_epoch)
            self._epoch_scalars(record)


def _purge_tensorboard(writer, step: int) -> None:
    """Drop the TensorBoard events at ``step`` and later that the interrupted process wrote.

    Epoch scalars (val/*) use epoch numbers as steps, always below ``step``, and stay. The
    writer must offer ``purge_from`` (train.py's does); a plain SummaryWriter made before the
    resume cannot purge, and TensorBoard then shows the cut-short epoch's scalars twice.
    """
    purge_from = getattr(writer, "purge_from", None)
    if purge_from is None:
        logger.warning("TensorBoard: %s cannot purge the events after step %d; the resumed "
                       "epoch's scalars appear twice", type(writer).__name__, step)
        return
    purge_from(step)


def _val_summary(record: dict, is_best: bool) -> str:
    """The validation part of an epoch's log line."""
    if "val_mpjpe" not in record:
        return "no validation"
    return "val mpjpe {:.2f} pa_mpjpe {:.2f} accel {:.2f}{}".format(
        record["val_mpjpe"], record.get("val_pa_mpjpe", math.nan),
        record.get("val_accel", math.nan), " (best)" if is_best else "")


def _plain(value):
    """numpy scalars as Python numbers (checkpoints hold plain types only)."""
    return value.item() if isinstance(value, np.generic) else value


def _test_kill_point(epoch: int, phase: str) -> None:
    """Test hook: MRN_TEST_KILL_AFTER=EPOCH:PHASE kills this process with SIGKILL there.

    EPOCH counts from 1; PHASE is before_checkpoint, during_checkpoint (best.pth written,
    last.pth not) or after_checkpoint (checkpoint written, metrics not logged). For the
    hard-kill resume tests only.
    """
    if os.environ.get("MRN_TEST_KILL_AFTER") == f"{epoch + 1}:{phase}":
        os.kill(os.getpid(), signal.SIGKILL)


def _rng_state() -> dict:
    """Every RNG stream of this process, as tensors and plain types (weights_only-safe)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)),
                       "pos": int(pos), "has_gauss": int(has_gauss),
                       "cached_gaussian": float(cached)},
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    """Restore :func:`_rng_state`; CUDA streams only where this machine has the same GPUs."""
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state((numpy["name"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
