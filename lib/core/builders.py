"""The only place where the config becomes typed arguments for models, data and filters."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from yacs.config import CfgNode

from lib.core.mirror_test import MirrorAveraged
from lib.data.body_reshaping import reshape_bodies
from lib.data.dataset import JointMover, PoseWindowDataset
from lib.data.error_model import simulate_estimate_batch
from lib.data.error_model_2d import simulate_estimate_batch_2d
from lib.data.error_scaling import shrink_errors
from lib.data.mirroring import left_right_permutation
from lib.data.normalize import CONVENTIONS, WindowNormalizer
from lib.data.pose_perturbation import perturb_poses
from lib.data.representations import REPRESENTATIONS
from lib.data.rotation_errors import simulate_rotation_batch
from lib.data.skeletons import DATASET_FPS, Skeleton
from lib.data.smoothnet_io import SequenceSet, load_split
from lib.errors import ConfigError
from lib.models import create_model
from lib.models.cpu_fast import accelerate
from lib.models.filters import build_filter

logger = logging.getLogger(__name__)

# Metres in the data files (and from SMPL or kinematics), millimetres in every report; pixels
# stay pixels.
UNIT_SCALE = {name: rep.unit_scale for name, rep in REPRESENTATIONS.items()}
UNIT_NAME = {name: rep.unit for name, rep in REPRESENTATIONS.items()}


def dataset_entries(cfg: CfgNode) -> list[tuple[str, str, str]]:
    """(dataset, estimator, representation) for every configured dataset."""
    return list(zip(cfg.DATASET.NAMES, cfg.DATASET.ESTIMATORS, cfg.DATASET.BODY_REPRESENTATIONS))


def load_sets(cfg: CfgNode, split: str) -> list[SequenceSet]:
    """Load one split of every configured dataset; they must share one joint layout."""
    sets = [load_split(cfg.DATASET.BASE_DIR, ds, est, rep, split)
            for ds, est, rep in dataset_entries(cfg)]
    layouts = {(s.skeleton.name, s.representation) for s in sets}
    if len(layouts) > 1:
        raise ConfigError(f"datasets {[s.name for s in sets]} mix joint layouts {sorted(layouts)}; "
                          "joint training needs one skeleton and one representation")
    return sets


def coord_dim(rep: str) -> int:
    """Numbers per joint the model sees (6 for rotations)."""
    return REPRESENTATIONS[rep].coord_dim


def model_kwargs(cfg: CfgNode, skeleton: Skeleton, rep: str) -> dict:
    """Constructor arguments of the configured model for this skeleton and representation."""
    common = {"window_size": cfg.MODEL.SLIDE_WINDOW_SIZE, "hidden_size": cfg.MODEL.HIDDEN_SIZE,
              "res_hidden_size": cfg.MODEL.RES_HIDDEN_SIZE, "num_blocks": cfg.MODEL.NUM_BLOCKS,
              "dropout": cfg.MODEL.DROPOUT}
    if cfg.MODEL.NAME == "smoothnet":
        return common
    low_dof = {"skeleton": skeleton.dof_joints()[0], "all_high": (),
               "all_low": range(skeleton.num_joints)}[cfg.MODEL.DOF_SPLIT]
    return {**common, "num_joints": skeleton.num_joints, "coord_dim": coord_dim(rep),
            "low_dof_joints": tuple(low_dof), "freq_transform": cfg.MODEL.FREQ_TRANSFORM,
            "low_band_init": tuple(cfg.MODEL.LOW_BAND_INIT),
            "joint_expansion": cfg.MODEL.JOINT_EXPANSION, "residual": cfg.MODEL.RESIDUAL,
            "use_temporal_branch": cfg.MODEL.TEMPORAL_BRANCH,
            "use_frequency_branch": cfg.MODEL.FREQ_BRANCH,
            **{key.lower(): cfg.MODEL[key] for key in _ARCHITECTURE_KEYS}}


# MODEL keys that are MotionRefineNet constructor arguments of the same (lower-case) name.
_ARCHITECTURE_KEYS = ("JOINT_HIDDEN_SIZE", "FREQ_STACKED", "LOW_BAND_PROJECTION",
                      "LEARN_BAND_WEIGHTS", "FREQ_JOINT_MIXING", "FREQ_IDENTITY", "TIME_LAYERNORM",
                      "HALVE_RES_HIDDEN", "UP_PATH_MIXING", "FREQ_NUM_BLOCKS")


def build_model(cfg: CfgNode, skeleton: Skeleton, rep: str) -> tuple[nn.Module, dict]:
    """The configured network and the kwargs that rebuild it (stored in checkpoints).

    With MODEL.CPU_KERNELS its layers are swapped for the CPU kernels of
    :func:`lib.models.cpu_fast.accelerate` (same parameters; plain torch off the CPU).
    """
    kwargs = model_kwargs(cfg, skeleton, rep)
    model = create_model(cfg.MODEL.NAME, **kwargs)
    return (accelerate(model) if cfg.MODEL.CPU_KERNELS else model), kwargs


def make_normalizer(skeleton: Skeleton, rep: str, norm_2d: str = "image",
                    image_size: float = 1000.0) -> WindowNormalizer:
    """The window normalisation of a representation.

    Positions are centred on the window's mean root; 2D pixels are divided by the image size
    (``norm_2d`` 'image') or by the input window's keypoint extent ('box'); rotations are left
    as they are (identity).
    """
    joints, dims = skeleton.num_joints, coord_dim(rep)
    if REPRESENTATIONS[rep].is_rotation:
        return WindowNormalizer(joints, dims, mode="fixed")
    if rep == "2D" and norm_2d == "box":
        return WindowNormalizer(joints, dims, skeleton.root_joints, mode="box")
    scale = image_size if rep == "2D" else 1.0
    return WindowNormalizer(joints, dims, skeleton.root_joints, scale)


def build_normalizer(cfg: CfgNode, skeleton: Skeleton, rep: str) -> WindowNormalizer:
    """The configured normalisation.

    DATASET.INPUT_CONVENTION 'centred' is :func:`make_normalizer` (DATASET.NORM_2D,
    DATASET.IMAGE_SIZE); 'released' feeds raw 3D metres and rotations, and 2D pixels as
    ``(x - IMAGE_SIZE / 2) / (IMAGE_SIZE / 2)``, as SmoothNet's released models do (NORM_2D is
    then unused).
    """
    convention = cfg.DATASET.INPUT_CONVENTION
    if convention not in CONVENTIONS:
        raise ConfigError(f"DATASET.INPUT_CONVENTION = {convention!r} is not one of "
                          f"{list(CONVENTIONS)}")
    if convention == "released":
        image_size = cfg.DATASET.IMAGE_SIZE if rep == "2D" else None
        return WindowNormalizer.released(skeleton.num_joints, coord_dim(rep), image_size)
    return make_normalizer(skeleton, rep, cfg.DATASET.NORM_2D, cfg.DATASET.IMAGE_SIZE)


def metric_roots(skeleton: Skeleton, rep: str) -> tuple[int, ...]:
    """3D and kinematic errors are root-aligned (SmoothNet protocol); 2D errors are absolute."""
    return () if rep == "2D" else skeleton.root_joints


def build_augmenter(cfg: CfgNode, skeleton: Skeleton, rep: str, dataset: str):
    """Fresh simulated estimator errors on ground-truth windows, or None when off."""
    if cfg.TRAIN.AUGMENT == "none":
        if cfg.TRAIN.AUGMENT_WEAK:
            raise ConfigError("TRAIN.AUGMENT_WEAK shrinks simulated errors, which TRAIN.AUGMENT "
                              "none does not draw: set TRAIN.AUGMENT replace or mix, or "
                              "TRAIN.AUGMENT_WEAK 0")
        return None
    fps = DATASET_FPS.get(dataset, skeleton.fps)
    if rep == "rot":
        if cfg.TRAIN.AUGMENT_WEAK:
            raise ConfigError("TRAIN.AUGMENT_WEAK scales position errors (2D, 3D); the data is "
                              "rot: set TRAIN.AUGMENT_WEAK 0")
        simulate = functools.partial(simulate_rotation_batch, parents=skeleton.parents, fps=fps,
                                     strength=cfg.TRAIN.AUGMENT_STRENGTH,
                                     breadth=cfg.TRAIN.AUGMENT_BREADTH)
        return lambda gt, rng: simulate(gt, rng=rng)
    if rep not in ("2D", "3D"):
        raise ConfigError(f"TRAIN.AUGMENT {cfg.TRAIN.AUGMENT!r} needs 2D, 3D or rot ground truth; "
                          f"{dataset} is {rep}: set TRAIN.AUGMENT none")
    simulate_fn = simulate_estimate_batch_2d if rep == "2D" else simulate_estimate_batch
    simulate = functools.partial(simulate_fn, parents=skeleton.parents, fps=fps,
                                 strength=cfg.TRAIN.AUGMENT_STRENGTH,
                                 left_right=skeleton.left_right,
                                 breadth=cfg.TRAIN.AUGMENT_BREADTH)
    share, floor = cfg.TRAIN.AUGMENT_WEAK, cfg.TRAIN.AUGMENT_WEAK_FLOOR
    # At share 0, shrink_errors returns the estimates as they are and draws nothing.
    return lambda gt, rng: shrink_errors(simulate(gt, rng=rng), gt, rng, share, floor)


def _validation_flags(sets: list[SequenceSet], fraction: float, seed: int) -> list[np.ndarray]:
    """Per set, True for the sequences held out for validation (seeded; one always trains)."""
    rng = np.random.default_rng(seed)
    flags = []
    for seq_set in sets:
        count = len(seq_set.groundtruth)
        num_val = int(round(fraction * count)) if count > 1 else 0
        is_val = np.zeros(count, dtype=bool)
        is_val[rng.permutation(count)[:min(num_val, count - 1)]] = True
        flags.append(is_val)
    return flags


def split_train_val(sets: list[SequenceSet], fraction: float,
                    seed: int) -> tuple[list[np.ndarray], ...]:
    """Hold out a seeded fraction of each set's training sequences for validation.

    Returns (train detected, train ground truth, val detected, val ground truth).
    """
    train_det, train_gt, val_det, val_gt = [], [], [], []
    for seq_set, is_val in zip(sets, _validation_flags(sets, fraction, seed)):
        for det, gt, val in zip(seq_set.detected, seq_set.groundtruth, is_val):
            (val_det if val else train_det).append(det)
            (val_gt if val else train_gt).append(gt)
    return train_det, train_gt, val_det, val_gt


def validation_set(sets: list[SequenceSet], fraction: float, seed: int) -> SequenceSet:
    """The held-out sequences of :func:`split_train_val` as one set, with their side data."""
    flags = _validation_flags(sets, fraction, seed)
    picked = [(seq_set, index) for seq_set, is_val in zip(sets, flags)
              for index in np.flatnonzero(is_val)]
    first = sets[0]
    boxes = [None if s.bboxes is None else s.bboxes[i] for s, i in picked]
    side = {key: [s.side[key][i] for s, i in picked] for key in first.side}
    return SequenceSet(f"{first.name}_val", "val", first.skeleton, first.representation,
                       [s.detected[i] for s, i in picked], [s.groundtruth[i] for s, i in picked],
                       [f"{s.name}/{s.sequence_names[i]}" for s, i in picked],
                       boxes if boxes and all(b is not None for b in boxes) else None, side,
                       first.bone_offsets)


def build_mirror_permutation(cfg: CfgNode, skeleton: Skeleton, rep: str) -> torch.Tensor | None:
    """The mirror image's joint order for ``TRAIN.MIRROR``, or None when it is off."""
    if cfg.TRAIN.MIRROR == 0:
        return None
    return mirror_permutation(skeleton, rep, "TRAIN.MIRROR", "set TRAIN.MIRROR 0")


def _joint_mover(key: str, probability: float, rep: str,
                 move: Callable[..., tuple[np.ndarray, np.ndarray]]) -> JointMover | None:
    """``move`` as the dataset calls it, None when ``probability`` is 0; 3D positions only."""
    if probability == 0:
        return None
    if rep != "3D":
        raise ConfigError(f"{key} needs 3D joint positions; the data is {rep}: set {key} 0")
    return lambda inputs, targets, rng: move(inputs, targets, rng=rng)


def build_body_reshaper(cfg: CfgNode, skeleton: Skeleton, rep: str) -> JointMover | None:
    """Other bodies for ``TRAIN.RESHAPE_BODIES`` windows, or None when it is off."""
    return _joint_mover("TRAIN.RESHAPE_BODIES", cfg.TRAIN.RESHAPE_BODIES, rep,
                        functools.partial(reshape_bodies, parents=skeleton.parents,
                                          left_right=skeleton.left_right))


def build_pose_perturber(cfg: CfgNode, skeleton: Skeleton, rep: str) -> JointMover | None:
    """Other joint angles for ``TRAIN.PERTURB_POSES`` windows, or None when it is off."""
    return _joint_mover("TRAIN.PERTURB_POSES", cfg.TRAIN.PERTURB_POSES, rep,
                        functools.partial(perturb_poses, parents=skeleton.parents,
                                          sigma=cfg.TRAIN.PERTURB_POSES_SIGMA))


def mirror_permutation(skeleton: Skeleton, rep: str, key: str, off: str) -> torch.Tensor:
    """The mirror image's joint order; a ConfigError naming ``key`` where there is none."""
    if rep not in ("2D", "3D"):
        raise ConfigError(f"{key} needs 2D or 3D joint positions; the data is {rep}: {off}")
    if not skeleton.left_right:
        raise ConfigError(f"{key}: skeleton {skeleton.name!r} has no left/right joint pairs to "
                          f"exchange; {off} or name its joints with a left/right marker "
                          "(l_/r_, _L/_R, Left/Right) in skeleton.yaml")
    return left_right_permutation(skeleton.num_joints, skeleton.left_right)


def mirror_averager(skeleton: Skeleton, rep: str, key: str, off: str) -> Callable:
    """``model -> MirrorAveraged(model)`` for this skeleton; errors name ``key`` and ``off``."""
    order = mirror_permutation(skeleton, rep, key, off)
    return functools.partial(MirrorAveraged, permutation=order, coords=int(rep[0]))


def build_test_time_mirror(cfg: CfgNode, skeleton: Skeleton, rep: str) -> Callable:
    """``model -> model`` averaged with its mirror image under ``EVAL.MIRROR_TEST``, else as is."""
    if not cfg.EVAL.MIRROR_TEST:
        return lambda model: model
    return mirror_averager(skeleton, rep, "EVAL.MIRROR_TEST", "set EVAL.MIRROR_TEST False")


def build_train_dataset(cfg: CfgNode, sets: list[SequenceSet], detected: list[np.ndarray],
                        groundtruth: list[np.ndarray]) -> PoseWindowDataset:
    """Training windows with the configured stride, augmentation and mirroring."""
    first = sets[0]
    augmenter = build_augmenter(cfg, first.skeleton, first.representation, first.name)
    permutation = build_mirror_permutation(cfg, first.skeleton, first.representation)
    reshaper = build_body_reshaper(cfg, first.skeleton, first.representation)
    perturber = build_pose_perturber(cfg, first.skeleton, first.representation)
    if cfg.TRAIN.TURN > 0 and first.representation != "3D":
        raise ConfigError(f"TRAIN.TURN needs 3D joint positions; the data is "
                          f"{first.representation}: set TRAIN.TURN 0")
    return PoseWindowDataset(detected, groundtruth, cfg.MODEL.SLIDE_WINDOW_SIZE,
                             cfg.TRAIN.STRIDE, augmenter, cfg.TRAIN.AUGMENT, seed=cfg.SEED,
                             mirror_probability=cfg.TRAIN.MIRROR,
                             mirror_permutation=permutation,
                             turn_probability=cfg.TRAIN.TURN,
                             reshape_probability=cfg.TRAIN.RESHAPE_BODIES,
                             body_reshaper=reshaper,
                             pose_probability=cfg.TRAIN.PERTURB_POSES,
                             pose_perturber=perturber,
                             reverse_probability=cfg.TRAIN.REVERSE)


def filter_params(cfg: CfgNode) -> dict[str, dict]:
    """Each classical filter's keyword parameters from ``FILTERS.*``."""
    return {
        "savgol": {"window": cfg.FILTERS.SAVGOL_WINDOW, "order": cfg.FILTERS.SAVGOL_ORDER},
        "gaussian": {"window": cfg.FILTERS.GAUSSIAN_WINDOW, "sigma": cfg.FILTERS.GAUSSIAN_SIGMA},
        "oneeuro": {"min_cutoff": cfg.FILTERS.ONEEURO_MIN_CUTOFF,
                    "beta": cfg.FILTERS.ONEEURO_BETA},
    }


def build_filters(cfg: CfgNode) -> dict:
    """The classical filters named by EVAL.TRADITION, as functions of a (T, J, D) array."""
    choice = cfg.EVAL.TRADITION
    names = ["savgol", "gaussian", "oneeuro"] if choice == "all" else [choice] if choice else []
    params = filter_params(cfg)
    return {name: build_filter(name, **params[name]) for name in names}
