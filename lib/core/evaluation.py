"""Evaluation of the input, classical filters and checkpoints on SmoothNet-format splits."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from yacs.config import CfgNode

from lib.core.builders import UNIT_SCALE, build_filters, load_sets, metric_roots
from lib.core.evaluator import Evaluator
from lib.core.inference import refine_sequences
from lib.data.normalize import WindowNormalizer
from lib.data.smoothnet_io import SequenceSet
from lib.models import create_model
from lib.utils.checkpoint import load_checkpoint

logger = logging.getLogger(__name__)


def score(seq_set: SequenceSet, predictions: list[np.ndarray],
          hard_fraction: float = 0.01) -> dict[str, float]:
    """Frame-weighted metrics of per-sequence predictions against the set's ground truth."""
    evaluator = Evaluator(metric_roots(seq_set.skeleton, seq_set.representation),
                          UNIT_SCALE[seq_set.representation], seq_set.skeleton.joint_names,
                          hard_fraction, with_pck=seq_set.bboxes is not None)
    boxes = seq_set.bboxes or [None] * len(predictions)
    for pred, gt, box, name in zip(predictions, seq_set.groundtruth, boxes,
                                   seq_set.sequence_names):
        evaluator.process(pred, gt, bbox=box, name=name)
    return evaluator.summarize()


def make_validator(seq_set: SequenceSet, normalizer: WindowNormalizer, window: int, step: int,
                   batch_size: int, device: torch.device) -> Callable[[nn.Module], dict]:
    """A function that scores a model on held-out sequences (used by the trainer)."""
    def validate(model: nn.Module) -> dict:
        preds = refine_sequences(model, normalizer, seq_set.detected, window, step, batch_size,
                                 device)
        return score(seq_set, preds)
    return validate


def model_from_checkpoint(path: str, device: torch.device | str = "cpu"):
    """Rebuild a model from the arguments stored in its checkpoint.

    Returns (model in eval mode on ``device``, normaliser, window size, checkpoint dict).
    """
    state = load_checkpoint(path)
    model = create_model(state["model_name"], **state["model_kwargs"])
    model.load_state_dict(state["model"])
    normalizer = WindowNormalizer(**state["normalizer_kwargs"])
    return model.to(device).eval(), normalizer, state["model_kwargs"]["window_size"], state


def check_fits(path: str, normalizer: WindowNormalizer, seq_set: SequenceSet) -> None:
    """A checkpoint must match the data's joint count and coordinates per joint."""
    joints, dims = seq_set.groundtruth[0].shape[1:]
    if (normalizer.num_joints, normalizer.coord_dim) != (joints, dims):
        raise ValueError(f"checkpoint {path} was trained on {normalizer.num_joints} joints x "
                         f"{normalizer.coord_dim} coordinates but {seq_set.name} has {joints} x "
                         f"{dims} ({seq_set.skeleton.name}); evaluate it on data with the same "
                         "skeleton and representation, or train a model for this one")


def evaluate_checkpoint(path: str, seq_set: SequenceSet, cfg: CfgNode,
                        device: torch.device) -> tuple[str, dict]:
    """Results row of one checkpoint: (row name, metrics)."""
    model, normalizer, window, state = model_from_checkpoint(path, device)
    check_fits(path, normalizer, seq_set)
    shortest = min(len(seq) for seq in seq_set.detected)
    if shortest < window:
        logger.info("%s: sequences as short as %d frames are padded to the window of %d",
                    seq_set.name, shortest, window)
    preds = refine_sequences(model, normalizer, seq_set.detected, window,
                             min(cfg.EVAL.SLIDE_STEP, window), cfg.EVAL.BATCH_SIZE, device)
    return state["model_name"], score(seq_set, preds, cfg.EVAL.HARD_FRACTION)


def _unique(name: str, rows: dict, path: str) -> str:
    if name not in rows:
        return name
    run = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path))))
    return f"{name}:{run}"


def evaluate_all(cfg: CfgNode, device: torch.device) -> dict[str, dict[str, dict]]:
    """Rows input, filters and checkpoints for every configured test split.

    Returns ``{"<ds>_<est>_<rep>": {"input": {...}, "savgol": {...}, "<model>": {...}}}``.
    """
    filters = build_filters(cfg)
    results = {}
    for seq_set in load_sets(cfg, "test"):
        rows = {"input": score(seq_set, seq_set.detected, cfg.EVAL.HARD_FRACTION)}
        for name, filt in filters.items():
            rows[name] = score(seq_set, [filt(seq) for seq in seq_set.detected],
                               cfg.EVAL.HARD_FRACTION)
        for path in cfg.TEST.WEIGHTS:
            name, metrics = evaluate_checkpoint(path, seq_set, cfg, device)
            rows[_unique(name, rows, path)] = metrics
        results[seq_set.name] = rows
    return results
