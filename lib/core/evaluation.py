"""Evaluation of the input, classical filters and checkpoints on SmoothNet-format splits."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from yacs.config import CfgNode

from lib.core.acceleration import maybe_compile, resolve_amp
from lib.core.builders import UNIT_SCALE, build_filters, load_sets, metric_roots
from lib.core.evaluator import Evaluator
from lib.core.inference import refine_sequences
from lib.core.smpl_eval import score_smpl
from lib.data.kinematics import rot6d_positions
from lib.data.normalize import WindowNormalizer
from lib.data.smoothnet_io import SequenceSet
from lib.models import create_model
from lib.models.body_model import SmplBodyModel, load_body_model
from lib.models.smoothnet_weights import read_released, released_normalizer, released_smoothnet
from lib.utils.checkpoint import load_checkpoint

logger = logging.getLogger(__name__)

# Metrics of per-sequence predictions (in the model's representation) of one set.
Scorer = Callable[[list[np.ndarray]], dict[str, float]]


def _score_positions(seq_set: SequenceSet, predictions: list[np.ndarray],
                     groundtruth: list[np.ndarray], hard_fraction: float) -> dict[str, float]:
    evaluator = Evaluator(metric_roots(seq_set.skeleton, seq_set.representation),
                          UNIT_SCALE[seq_set.representation], seq_set.skeleton.joint_names,
                          hard_fraction, with_pck=seq_set.bboxes is not None)
    boxes = seq_set.bboxes or [None] * len(predictions)
    for pred, gt, box, name in zip(predictions, groundtruth, boxes, seq_set.sequence_names):
        evaluator.process(pred, gt, bbox=box, name=name)
    return {**evaluator.summarize(), "per_joint": evaluator.per_joint()}


def score(seq_set: SequenceSet, predictions: list[np.ndarray], hard_fraction: float = 0.01,
          body_model: SmplBodyModel | None = None) -> dict[str, float]:
    """Frame-weighted metrics of per-sequence predictions against the set's ground truth.

    Positions (2D, 3D) are scored directly; rot (6D rotations) through the skeleton's forward
    kinematics; smpl through ``body_model`` (joints and vertices).

    Shape:
        predictions: list of (T_i, J, D) in the representation the model sees.
    """
    if seq_set.representation == "smpl":
        if body_model is None:
            raise ValueError(f"{seq_set.name}: scoring SMPL poses needs the body model; set "
                             "SMPL_MODEL_DIR (see lib/models/body_model.py)")
        return score_smpl(seq_set, predictions, body_model, hard_fraction)
    if seq_set.representation == "rot":
        def positions(seqs: list[np.ndarray]) -> list[np.ndarray]:
            return [rot6d_positions(seq, seq_set.bone_offsets, seq_set.skeleton) for seq in seqs]
        return _score_positions(seq_set, positions(predictions), positions(seq_set.groundtruth),
                                hard_fraction)
    return _score_positions(seq_set, predictions, seq_set.groundtruth, hard_fraction)


def build_scorer(cfg: CfgNode, seq_set: SequenceSet) -> Scorer:
    """:func:`score` bound to a set, with the SMPL body model loaded when the set needs it."""
    body_model = None
    if seq_set.representation == "smpl":
        body_model = load_body_model(cfg.SMPL_MODEL_DIR, cfg.DATASET.SMPL_JOINT_REGRESSOR)
    return functools.partial(score, seq_set, hard_fraction=cfg.EVAL.HARD_FRACTION,
                             body_model=body_model)


def make_validator(seq_set: SequenceSet, normalizer: WindowNormalizer, window: int, step: int,
                   batch_size: int, device: torch.device, scorer: Scorer | None = None,
                   amp: bool = False) -> Callable[[nn.Module], dict]:
    """A function that scores a model on held-out sequences (used by the trainer)."""
    scorer = scorer or functools.partial(score, seq_set)

    def validate(model: nn.Module) -> dict:
        preds = refine_sequences(model, normalizer, seq_set.detected, window, step, batch_size,
                                 device, amp=amp)
        return scorer(preds)
    return validate


def model_from_checkpoint(path: str, device: torch.device | str = "cpu",
                          normalizer_if_released: WindowNormalizer | None = None):
    """Rebuild a model from the arguments stored in its checkpoint.

    A released SmoothNet file (``checkpoint_32.pth.tar``) is accepted too; it stores no
    normaliser, so the caller passes the one of the data it is applied to
    (:func:`lib.models.smoothnet_weights.released_normalizer`).

    Returns (model in eval mode on ``device``, normaliser, window size, checkpoint dict).
    """
    released = read_released(path)
    if released is not None:
        if normalizer_if_released is None:
            raise ValueError(f"{path} is a released SmoothNet checkpoint without the data's "
                             "normalisation; evaluate it with eval.py on a dataset")
        model, kwargs = released_smoothnet(released, path)
        state = {"model_name": "smoothnet_released", "model_kwargs": kwargs}
        return model.to(device).eval(), normalizer_if_released, kwargs["window_size"], state
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


def evaluate_checkpoint(path: str, seq_set: SequenceSet, cfg: CfgNode, device: torch.device,
                        scorer: Scorer | None = None) -> tuple[str, dict]:
    """Results row of one checkpoint: (row name, metrics)."""
    data_normalizer = released_normalizer(seq_set.skeleton, seq_set.representation,
                                          cfg.DATASET.IMAGE_SIZE)
    model, normalizer, window, state = model_from_checkpoint(path, device, data_normalizer)
    check_fits(path, normalizer, seq_set)
    shortest = min(len(seq) for seq in seq_set.detected)
    if shortest < window:
        logger.info("%s: sequences as short as %d frames are padded to the window of %d",
                    seq_set.name, shortest, window)
    preds = refine_sequences(maybe_compile(model, cfg.MODEL.COMPILE), normalizer,
                             seq_set.detected, window, min(cfg.EVAL.SLIDE_STEP, window),
                             cfg.EVAL.BATCH_SIZE, device, amp=resolve_amp(cfg.TRAIN.AMP, device))
    scorer = scorer or build_scorer(cfg, seq_set)
    return state["model_name"], scorer(preds)


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
        scorer = build_scorer(cfg, seq_set)
        rows = {"input": scorer(seq_set.detected)}
        for name, filt in filters.items():
            rows[name] = scorer([filt(seq) for seq in seq_set.detected])
        for path in cfg.TEST.WEIGHTS:
            name, metrics = evaluate_checkpoint(path, seq_set, cfg, device, scorer)
            rows[_unique(name, rows, path)] = metrics
        results[seq_set.name] = rows
    return results
