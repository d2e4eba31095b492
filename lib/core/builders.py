"""The only place where the config becomes typed arguments for models, data and filters."""

from __future__ import annotations

import functools
import logging

import numpy as np
from torch import nn
from yacs.config import CfgNode

from lib.data.dataset import PoseWindowDataset
from lib.data.error_model import simulate_estimate_batch
from lib.data.normalize import WindowNormalizer
from lib.data.skeletons import DATASET_FPS, Skeleton
from lib.data.smoothnet_io import POSE_KEYS, SequenceSet, load_split
from lib.models import create_model
from lib.models.filters import build_filter

logger = logging.getLogger(__name__)

# Metres in the data files, millimetres in every report; pixels stay pixels.
UNIT_SCALE = {"3D": 1000.0, "2D": 1.0}
UNIT_NAME = {"3D": "mm", "2D": "px"}


def dataset_entries(cfg: CfgNode) -> list[tuple[str, str, str]]:
    """(dataset, estimator, representation) for every configured dataset."""
    return list(zip(cfg.DATASET.NAMES, cfg.DATASET.ESTIMATORS, cfg.DATASET.BODY_REPRESENTATIONS))


def load_sets(cfg: CfgNode, split: str) -> list[SequenceSet]:
    """Load one split of every configured dataset; they must share one joint layout."""
    sets = [load_split(cfg.DATASET.BASE_DIR, ds, est, rep, split)
            for ds, est, rep in dataset_entries(cfg)]
    layouts = {(s.skeleton.name, s.representation) for s in sets}
    if len(layouts) > 1:
        raise ValueError(f"datasets {[s.name for s in sets]} mix joint layouts {sorted(layouts)}; "
                         "joint training needs one skeleton and one representation")
    return sets


def coord_dim(rep: str) -> int:
    return POSE_KEYS[rep][1]


def model_kwargs(cfg: CfgNode, skeleton: Skeleton, rep: str) -> dict:
    """Constructor arguments of the configured model for this skeleton and representation."""
    common = {"window_size": cfg.MODEL.SLIDE_WINDOW_SIZE, "hidden_size": cfg.MODEL.HIDDEN_SIZE,
              "res_hidden_size": cfg.MODEL.RES_HIDDEN_SIZE, "num_blocks": cfg.MODEL.NUM_BLOCKS,
              "dropout": cfg.MODEL.DROPOUT}
    if cfg.MODEL.NAME == "smoothnet":
        return common
    low_dof, _ = skeleton.dof_joints()
    return {**common, "num_joints": skeleton.num_joints, "coord_dim": coord_dim(rep),
            "low_dof_joints": tuple(low_dof), "freq_transform": cfg.MODEL.FREQ_TRANSFORM,
            "low_band_init": tuple(cfg.MODEL.LOW_BAND_INIT),
            "joint_expansion": cfg.MODEL.JOINT_EXPANSION, "residual": cfg.MODEL.RESIDUAL}


def build_model(cfg: CfgNode, skeleton: Skeleton, rep: str) -> tuple[nn.Module, dict]:
    """The configured network and the kwargs that rebuild it (stored in checkpoints)."""
    kwargs = model_kwargs(cfg, skeleton, rep)
    return create_model(cfg.MODEL.NAME, **kwargs), kwargs


def build_normalizer(cfg: CfgNode, skeleton: Skeleton, rep: str) -> WindowNormalizer:
    """Centre on the root joints; scale pixels by the image size, keep metres."""
    scale = cfg.DATASET.IMAGE_SIZE if rep == "2D" else 1.0
    return WindowNormalizer(skeleton.num_joints, coord_dim(rep), skeleton.root_joints, scale)


def metric_roots(skeleton: Skeleton, rep: str) -> tuple[int, ...]:
    """3D errors are root-aligned (SmoothNet protocol); 2D errors are absolute pixels."""
    return skeleton.root_joints if rep == "3D" else ()


def build_augmenter(cfg: CfgNode, skeleton: Skeleton, rep: str, dataset: str):
    """Fresh simulated estimator errors on ground-truth windows, or None when off."""
    if cfg.TRAIN.AUGMENT == "none":
        return None
    if rep != "3D":
        raise ValueError(f"TRAIN.AUGMENT {cfg.TRAIN.AUGMENT!r} needs 3D ground truth; "
                         f"{dataset} is {rep}: set TRAIN.AUGMENT none")
    simulate = functools.partial(simulate_estimate_batch, parents=skeleton.parents,
                                 fps=DATASET_FPS.get(dataset, skeleton.fps),
                                 strength=cfg.TRAIN.AUGMENT_STRENGTH,
                                 left_right=skeleton.left_right)
    return lambda gt, rng: simulate(gt, rng=rng)


def split_train_val(sets: list[SequenceSet], fraction: float,
                    seed: int) -> tuple[list[np.ndarray], ...]:
    """Hold out a seeded fraction of each set's training sequences for validation.

    Returns (train detected, train ground truth, val detected, val ground truth).
    """
    rng = np.random.default_rng(seed)
    train_det, train_gt, val_det, val_gt = [], [], [], []
    for seq_set in sets:
        count = len(seq_set.groundtruth)
        num_val = int(round(fraction * count)) if count > 1 else 0
        is_val = np.zeros(count, dtype=bool)
        is_val[rng.permutation(count)[:min(num_val, count - 1)]] = True
        for det, gt, val in zip(seq_set.detected, seq_set.groundtruth, is_val):
            (val_det if val else train_det).append(det)
            (val_gt if val else train_gt).append(gt)
    return train_det, train_gt, val_det, val_gt


def build_train_dataset(cfg: CfgNode, sets: list[SequenceSet], detected: list[np.ndarray],
                        groundtruth: list[np.ndarray]) -> PoseWindowDataset:
    """Training windows with the configured stride and augmentation."""
    first = sets[0]
    augmenter = build_augmenter(cfg, first.skeleton, first.representation, first.name)
    return PoseWindowDataset(detected, groundtruth, cfg.MODEL.SLIDE_WINDOW_SIZE,
                             cfg.TRAIN.STRIDE, augmenter, cfg.TRAIN.AUGMENT)


def build_filters(cfg: CfgNode) -> dict:
    """The classical filters named by EVAL.TRADITION, as functions of a (T, J, D) array."""
    choice = cfg.EVAL.TRADITION
    names = ["savgol", "gaussian", "oneeuro"] if choice == "all" else [choice] if choice else []
    kwargs = {
        "savgol": {"window": cfg.FILTERS.SAVGOL_WINDOW, "order": cfg.FILTERS.SAVGOL_ORDER},
        "gaussian": {"window": cfg.FILTERS.GAUSSIAN_WINDOW, "sigma": cfg.FILTERS.GAUSSIAN_SIGMA},
        "oneeuro": {"min_cutoff": cfg.FILTERS.ONEEURO_MIN_CUTOFF,
                    "beta": cfg.FILTERS.ONEEURO_BETA},
    }
    return {name: build_filter(name, **kwargs[name]) for name in names}
