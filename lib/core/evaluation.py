"""Evaluation of the input, classical filters and checkpoints on SmoothNet-format splits."""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from yacs.config import CfgNode

from lib.core.acceleration import maybe_compile, resolve_amp
from lib.core.builders import (
    UNIT_SCALE,
    build_filters,
    build_test_time_mirror,
    load_sets,
    metric_roots,
)
from lib.core.evaluator import Evaluator
from lib.core.inference import refine_sequences
from lib.core.smpl_eval import score_smpl
from lib.data.kinematics import rot6d_positions
from lib.data.normalize import WindowNormalizer
from lib.data.smoothnet_io import SequenceSet
from lib.errors import CheckpointError, ConfigError
from lib.models import MODELS, create_model
from lib.models.body_model import SmplBodyModel, load_body_model
from lib.models.cpu_fast import accelerate
from lib.models.smoothnet_weights import (
    read_model_checkpoint,
    released_normalizer,
    released_smoothnet,
)

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
                   amp: bool = False,
                   wrap: Callable[[nn.Module], nn.Module] | None = None
                   ) -> Callable[[nn.Module], dict]:
    """A function that scores a model on held-out sequences (used by the trainer).

    ``wrap`` is applied to the model before it refines (e.g. test-time mirroring).
    """
    scorer = scorer or functools.partial(score, seq_set)

    def validate(model: nn.Module) -> dict:
        model = wrap(model) if wrap is not None else model
        preds = refine_sequences(model, normalizer, seq_set.detected, window, step, batch_size,
                                 device, amp=amp)
        return scorer(preds)
    return validate


def model_from_checkpoint(path: str, device: torch.device | str = "cpu",
                          normalizer_if_released: WindowNormalizer | None = None,
                          cpu_kernels: bool = True):
    """Rebuild a model from the arguments stored in its checkpoint.

    A released SmoothNet file (``checkpoint_32.pth.tar``) is accepted too; it stores no
    normaliser, so the caller passes the one of the data it is applied to
    (:func:`lib.models.smoothnet_weights.released_normalizer`).

    With ``cpu_kernels`` (MODEL.CPU_KERNELS) the model's layers are swapped for the CPU kernels
    of :func:`lib.models.cpu_fast.accelerate` (same parameters and results).

    Returns (model in eval mode on ``device``, normaliser, window size, checkpoint dict).
    """
    kind, state = read_model_checkpoint(path)
    if kind == "released":
        if normalizer_if_released is None:
            raise CheckpointError(f"{path} is a released SmoothNet checkpoint without the "
                                  "data's normalisation; evaluate it with eval.py on a dataset")
        model, kwargs = released_smoothnet(state, path)
        state = {"model_name": "smoothnet_released", "model_kwargs": kwargs}
        return model.to(device).eval(), normalizer_if_released, kwargs["window_size"], state
    model = _checkpoint_model(path, state)
    if cpu_kernels:
        accelerate(model)
    normalizer = _construct(WindowNormalizer, state["normalizer_kwargs"], path,
                            "normalizer_kwargs")
    return model.to(device).eval(), normalizer, state["model_kwargs"]["window_size"], state


def _construct(cls: type, kwargs, path: str, key: str, factory: Callable | None = None):
    """``factory(**kwargs)`` (default ``cls``) with arguments from checkpoint ``path``.

    A misfit is a CheckpointError. The arguments are bound to the signature first, so that a
    TypeError from inside the constructor (a bug) is not mistaken for a bad file.
    """
    if not isinstance(kwargs, dict):
        raise CheckpointError(f"checkpoint {path}: {key!r} is a {type(kwargs).__name__}, not "
                              "a dict of constructor arguments; the file is damaged")
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as err:
        raise CheckpointError(f"checkpoint {path}: {key!r} do not fit {cls.__name__} ({err}); "
                              "it was written by another version of this project") from None
    try:
        return (factory or cls)(**kwargs)
    except ValueError as err:  # argument validation of the constructor
        raise CheckpointError(f"checkpoint {path}: {key!r} rejected by {cls.__name__} ({err})") \
            from None


def _checkpoint_model(path: str, state: dict) -> nn.Module:
    """The model a checkpoint describes, with its weights; any misfit names file and keys."""
    name = state["model_name"]
    if name not in MODELS:
        raise CheckpointError(f"checkpoint {path}: model {name!r} is not one of "
                              f"{sorted(MODELS)}; it was written by another project or version")
    model = _construct(MODELS[name], state["model_kwargs"], path, "model_kwargs",
                       functools.partial(create_model, name))
    load_weights(model, state["model"], path)
    return model


def _key_list(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_weights(model: nn.Module, weights, path: str) -> None:
    """Load a state dict into ``model``; a wrong architecture is a CheckpointError.

    The message names the checkpoint and the missing, unexpected and wrongly shaped keys, so a
    checkpoint of another architecture (or a damaged one) is refused in one line.
    """
    if not isinstance(weights, dict):
        raise CheckpointError(f"checkpoint {path}: 'model' is a {type(weights).__name__}, not a "
                              "state dict; the file is damaged")
    own = model.state_dict()
    missing = [key for key in own if key not in weights]
    unexpected = [key for key in weights if key not in own]
    wrong = [f"{key} {tuple(getattr(weights[key], 'shape', ()))} vs {tuple(own[key].shape)}"
             for key in own if key in weights and
             (not isinstance(weights[key], torch.Tensor) or weights[key].shape != own[key].shape)]
    problems = [f"{label}: {_key_list(keys)}" for label, keys in
                (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                if keys]
    if problems:
        raise CheckpointError(f"checkpoint {path} does not fit the {type(model).__name__} its "
                              f"model_kwargs describe ({'; '.join(problems)}); it is damaged or "
                              "from another architecture or version")
    model.load_state_dict(weights)


def check_fits(path: str, normalizer: WindowNormalizer, seq_set: SequenceSet) -> None:
    """A checkpoint must match the data's joint count and coordinates per joint."""
    joints, dims = seq_set.groundtruth[0].shape[1:]
    if (normalizer.num_joints, normalizer.coord_dim) != (joints, dims):
        raise CheckpointError(f"checkpoint {path} was trained on {normalizer.num_joints} "
                              f"joints x {normalizer.coord_dim} coordinates but {seq_set.name} "
                              f"has {joints} x {dims} ({seq_set.skeleton.name}); evaluate it on "
                              "data with the same skeleton and representation, or train a "
                              "model for this one")


def evaluate_checkpoint(path: str, seq_set: SequenceSet, cfg: CfgNode, device: torch.device,
                        scorer: Scorer | None = None) -> tuple[str, dict]:
    """Results row of one checkpoint: (row name, metrics)."""
    data_normalizer = released_normalizer(seq_set.skeleton, seq_set.representation,
                                          cfg.DATASET.IMAGE_SIZE)
    model, normalizer, window, state = model_from_checkpoint(path, device, data_normalizer,
                                                             cfg.MODEL.CPU_KERNELS)
    check_fits(path, normalizer, seq_set)
    shortest = min(len(seq) for seq in seq_set.detected)
    if shortest < window:
        logger.info("%s: sequences as short as %d frames are padded to the window of %d",
                    seq_set.name, shortest, window)
    model = build_test_time_mirror(cfg, seq_set.skeleton, seq_set.representation)(model)
    preds = refine_sequences(maybe_compile(model, cfg.MODEL.COMPILE), normalizer,
                             seq_set.detected, window, min(cfg.EVAL.SLIDE_STEP, window),
                             cfg.EVAL.BATCH_SIZE, device, amp=resolve_amp(cfg.TRAIN.AMP, device))
    scorer = scorer or build_scorer(cfg, seq_set)
    return state["model_name"], scorer(preds)


def _check_distinct(paths: list[str]) -> None:
    """One results row per checkpoint: the same file listed twice is refused."""
    seen: dict[str, str] = {}
    for path in paths:
        real = os.path.realpath(path)
        if real in seen:
            raise ConfigError(f"TEST.WEIGHTS lists {seen[real]} twice (also as {path}); each "
                              "checkpoint gives one results row, list it once")
        seen[real] = path


def _run_and_stem(path: str) -> str:
    """``<run>/<file stem>`` of ``results/<run>/checkpoints/<stem>.pth``."""
    run = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path))))
    stem = os.path.basename(path).split(".")[0]
    return f"{run}/{stem}"


def row_names(model_names: list[str], paths: list[str], taken: set[str]) -> list[str]:
    """One distinct row name per checkpoint, never overwriting another row.

    A model name used by one checkpoint only is the row name (``motionrefinenet``); several
    checkpoints of one model are told apart by run folder and file stem
    (``motionrefinenet:demo/best``, ``motionrefinenet:demo/last``), else by path.
    """
    names = []
    for name, path in zip(model_names, paths):
        candidates = [f"{name}:{_run_and_stem(path)}", f"{name}:{path}"]
        if model_names.count(name) == 1:
            candidates.insert(0, name)
        chosen = next((c for c in candidates if c not in taken and c not in names),
                      f"{name}:{len(names)}")
        names.append(chosen)
    return names


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
        _check_distinct(list(cfg.TEST.WEIGHTS))
        evaluated = [evaluate_checkpoint(path, seq_set, cfg, device, scorer)
                     for path in cfg.TEST.WEIGHTS]
        names = row_names([name for name, _ in evaluated], list(cfg.TEST.WEIGHTS), set(rows))
        for name, (_, metrics) in zip(names, evaluated):
            rows[name] = metrics
        results[seq_set.name] = rows
    return results
