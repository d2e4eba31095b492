"""All configuration defaults, the command-line merge and validation of a run's config."""

from __future__ import annotations

import difflib
import os

from yacs.config import CfgNode

_C = CfgNode()

# ---------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------
# Name of the run folder under OUTPUT_DIR; '' derives it from dataset, estimator, model, window.
_C.EXP_NAME = ""
# Folder that holds one sub-folder per run.
_C.OUTPUT_DIR = "results"
# 'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N'.
_C.DEVICE = "auto"
# Seed for Python, NumPy and torch.
_C.SEED = 1
# Log the training loss every LOG_PERIOD iterations.
_C.LOG_PERIOD = 50

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
_C.DATASET = CfgNode()
# Root of the SmoothNet layout: {BASE_DIR}/{ds}_{est}_{rep}/detected|groundtruth/...
_C.DATASET.BASE_DIR = "data/poses"
# Dataset names (aist, h36m, pw3d, mpiinf3dhp, mupots, jhmdb, sample); several = joint training.
_C.DATASET.NAMES = ["sample"]
# Estimator per dataset entry (vibe, spin, tcmr, fcn, cpn, sim, ...).
_C.DATASET.ESTIMATORS = ["sim"]
# Body representation per dataset entry: 2D, 3D, smpl (axis-angle SMPL pose, refined as 6D
# rotations) or rot (6D joint rotations, key rot6d, scored through forward kinematics).
_C.DATASET.BODY_REPRESENTATIONS = ["3D"]
# Fraction of the training sequences held out for validation (picks best.pth).
_C.DATASET.VAL_FRACTION = 0.1
# Divide 2D pixel coordinates by this before the model (SmoothNet uses a 1000-pixel image).
_C.DATASET.IMAGE_SIZE = 1000.0
# 2D normalisation before the model, inverted exactly after it: 'image' centres each window on
# its mean root and divides by IMAGE_SIZE (Human3.6M); 'box' divides by the input window's
# keypoint extent instead (data of other or varying image and person sizes, e.g. jhmdb).
_C.DATASET.NORM_2D = "image"
# SMPL representation: a (J, 6890) .npy joint regressor applied to the mesh vertices for MPJPE
# (14 rows = LSP order, 17 = Human3.6M order); '' uses the 24 SMPL joints of the model.
_C.DATASET.SMPL_JOINT_REGRESSOR = ""

# Folder with the licensed SMPL body model, SMPL_NEUTRAL.npz (or a chumpy-free .pkl), used to
# evaluate the smpl representation; register at https://smpl.is.tue.mpg.de to obtain it.
_C.SMPL_MODEL_DIR = "data/smpl"

# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
_C.MODEL = CfgNode()
# Network: motionrefinenet or smoothnet.
_C.MODEL.NAME = "motionrefinenet"
# Window length T in frames (the card's --slide_window_size).
_C.MODEL.SLIDE_WINDOW_SIZE = 32
# Width H of the encoded time axis.
_C.MODEL.HIDDEN_SIZE = 512
# Width R of the residual MLPs along time.
_C.MODEL.RES_HIDDEN_SIZE = 128
# Number of hierarchical (MotionRefineNet) or residual (SmoothNet) blocks.
_C.MODEL.NUM_BLOCKS = 5
# Dropout probability inside the blocks.
_C.MODEL.DROPOUT = 0.25
# Band transform of the frequency branch: fft or haar.
_C.MODEL.FREQ_TRANSFORM = "fft"
# Initial weights of the (low, mid, high) bands for low-DoF joints.
_C.MODEL.LOW_BAND_INIT = [0.8, 0.1, 0.1]
# Hidden-size multiplier of the joint-mixing MLP.
_C.MODEL.JOINT_EXPANSION = 2
# Predict a correction added to the input window (True) or the window itself (False). On the
# sample the residual form keeps the input's jitter (Accel unchanged), so it is off by default.
_C.MODEL.RESIDUAL = False
# torch.compile the model for training and evaluation (falls back to eager, with a warning, if
# compiling fails). Compiling takes minutes on a CPU; it pays off on long runs.
_C.MODEL.COMPILE = False

# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
_C.TRAIN = CfgNode()
# Number of epochs.
_C.TRAIN.EPOCHS = 70
# Windows per batch.
_C.TRAIN.BATCH_SIZE = 128
# Adam (amsgrad) learning rate.
_C.TRAIN.LR = 1e-3
# Multiply the learning rate by this after every epoch.
_C.TRAIN.LR_DECAY = 0.95
# Adam weight decay.
_C.TRAIN.WEIGHT_DECAY = 0.0
# Frames between the starts of consecutive training windows (1 = every window).
_C.TRAIN.STRIDE = 1
# Simulated-error augmentation on ground-truth windows (2D, 3D or rot ground truth): none,
# replace (fresh errors only) or mix (half of each batch gets fresh errors, half keeps the
# detected input).
_C.TRAIN.AUGMENT = "none"
# Amplitude factor of the augmentation's error model (1.0 = the sample benchmark's).
_C.TRAIN.AUGMENT_STRENGTH = 1.0
# DataLoader worker processes.
_C.TRAIN.NUM_WORKERS = 0
# Clip the gradient norm to this value (0 disables).
_C.TRAIN.GRAD_CLIP = 0.0
# bf16 autocast in the training step and in evaluation, on CUDA (compute capability >= 8) and
# on CPUs with oneDNN bf16 support (AVX-512; native with AVX512-BF16 or AMX); elsewhere it
# stays fp32 with a warning.
_C.TRAIN.AMP = False

# ---------------------------------------------------------------------------------------------
# Loss
# ---------------------------------------------------------------------------------------------
_C.LOSS = CfgNode()
# Weight of the L1 position loss.
_C.LOSS.W_POS = 1.0
# Weight of the L1 acceleration loss.
_C.LOSS.W_ACCEL = 0.1

# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------
_C.EVAL = CfgNode()
# Frames between the starts of consecutive evaluation windows (overlaps are averaged).
_C.EVAL.SLIDE_STEP = 1
# Windows per model call during evaluation. On a CPU, 128 keeps every activation of the aist
# model under glibc's 32 MB mmap limit (1024 ran at half the speed); raise it on a GPU.
_C.EVAL.BATCH_SIZE = 128
# Fraction of the hardest frames reported separately (metric names end in _hard1).
_C.EVAL.HARD_FRACTION = 0.01
# Classical filters to evaluate beside the input: '', savgol, gaussian, oneeuro or all.
_C.EVAL.TRADITION = ""

# ---------------------------------------------------------------------------------------------
# Test
# ---------------------------------------------------------------------------------------------
_C.TEST = CfgNode()
# Checkpoints evaluated by eval.py, one results row each (empty = only input and filters).
_C.TEST.WEIGHTS = []

# ---------------------------------------------------------------------------------------------
# Classical filters
# ---------------------------------------------------------------------------------------------
_C.FILTERS = CfgNode()
# Savitzky-Golay window length (odd) and polynomial order.
_C.FILTERS.SAVGOL_WINDOW = 31
_C.FILTERS.SAVGOL_ORDER = 2
# Gaussian filter window length and standard deviation in frames.
_C.FILTERS.GAUSSIAN_WINDOW = 31
_C.FILTERS.GAUSSIAN_SIGMA = 3.0
# One-Euro minimum cutoff and speed coefficient (time step of one frame).
_C.FILTERS.ONEEURO_MIN_CUTOFF = 0.04
_C.FILTERS.ONEEURO_BETA = 0.7

_VALID_CHOICES = {
    "MODEL.NAME": ("motionrefinenet", "smoothnet"),
    "MODEL.FREQ_TRANSFORM": ("fft", "haar"),
    "TRAIN.AUGMENT": ("none", "replace", "mix"),
    "EVAL.TRADITION": ("", "savgol", "gaussian", "oneeuro", "all"),
    "DATASET.NORM_2D": ("image", "box"),
}
_REPRESENTATIONS = ("2D", "3D", "smpl", "rot")


def get_cfg_defaults() -> CfgNode:
    """A fresh, mutable copy of the defaults."""
    return _C.clone()


def _all_keys(node: CfgNode, prefix: str = "") -> list[str]:
    keys = []
    for name, value in node.items():
        full = f"{prefix}{name}"
        keys.extend(_all_keys(value, full + ".") if isinstance(value, CfgNode) else [full])
    return keys


def _unknown_key_error(key: str) -> KeyError:
    near = difflib.get_close_matches(key, _all_keys(_C), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    return KeyError(f"unknown config key {key!r}{hint} (all keys: lib/core/config.py)")


def _check_keys(node: CfgNode, prefix: str = "") -> None:
    """Raise a KeyError naming the nearest valid keys for any key the defaults do not have."""
    valid = set(_all_keys(_C))
    for key in _all_keys(node, prefix):
        if key not in valid:
            raise _unknown_key_error(key)


def merge_file(cfg: CfgNode, path: str) -> None:
    """Merge a YAML delta into ``cfg`` with a clear error for a missing file or unknown key."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path!r} not found; list the files in configs/")
    other = CfgNode.load_cfg(open(path, encoding="utf-8"))
    try:
        _check_keys(other)
    except KeyError as err:
        raise KeyError(f"{path}: {err.args[0]}") from None
    cfg.merge_from_other_cfg(other)


def merge_list(cfg: CfgNode, opts: list[str]) -> None:
    """Merge trailing ``KEY VALUE`` pairs with a clear error for a bad key or odd count."""
    if len(opts) % 2:
        raise ValueError(f"overrides must be KEY VALUE pairs; got an odd list {opts}")
    for key in opts[0::2]:
        if key not in _all_keys(_C):
            raise _unknown_key_error(key)
    cfg.merge_from_list(opts)


def validate(cfg: CfgNode) -> None:
    """Check values that yacs' type check cannot; raise ValueError naming the key and the fix."""
    for key, choices in _VALID_CHOICES.items():
        section, name = key.split(".")
        value = cfg[section][name]
        if value not in choices:
            raise ValueError(f"{key} = {value!r} is not one of {list(choices)}")
    lengths = {len(cfg.DATASET.NAMES), len(cfg.DATASET.ESTIMATORS),
               len(cfg.DATASET.BODY_REPRESENTATIONS)}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError("DATASET.NAMES, DATASET.ESTIMATORS and DATASET.BODY_REPRESENTATIONS "
                         "need one entry per dataset and the same length; got "
                         f"{cfg.DATASET.NAMES}, {cfg.DATASET.ESTIMATORS}, "
                         f"{cfg.DATASET.BODY_REPRESENTATIONS}")
    for rep in cfg.DATASET.BODY_REPRESENTATIONS:
        if rep not in _REPRESENTATIONS:
            raise ValueError(f"body representation {rep!r} is not one of {list(_REPRESENTATIONS)}")
    _check_positive(cfg)


def _check_positive(cfg: CfgNode) -> None:
    checks = {
        "MODEL.SLIDE_WINDOW_SIZE": cfg.MODEL.SLIDE_WINDOW_SIZE >= 8,
        "MODEL.HIDDEN_SIZE": cfg.MODEL.HIDDEN_SIZE > 0 and cfg.MODEL.HIDDEN_SIZE % 4 == 0,
        "TRAIN.BATCH_SIZE": cfg.TRAIN.BATCH_SIZE > 0,
        "TRAIN.EPOCHS": cfg.TRAIN.EPOCHS > 0,
        "TRAIN.STRIDE": cfg.TRAIN.STRIDE > 0,
        "EVAL.SLIDE_STEP": 0 < cfg.EVAL.SLIDE_STEP <= cfg.MODEL.SLIDE_WINDOW_SIZE,
        "DATASET.VAL_FRACTION": 0.0 <= cfg.DATASET.VAL_FRACTION < 1.0,
        "MODEL.LOW_BAND_INIT": len(cfg.MODEL.LOW_BAND_INIT) == 3,
    }
    rules = {
        "MODEL.SLIDE_WINDOW_SIZE": "an integer >= 8",
        "MODEL.HIDDEN_SIZE": "a positive multiple of 4",
        "EVAL.SLIDE_STEP": "between 1 and MODEL.SLIDE_WINDOW_SIZE",
        "DATASET.VAL_FRACTION": "in [0, 1)",
        "MODEL.LOW_BAND_INIT": "three band weights (low, mid, high)",
    }
    for key, ok in checks.items():
        if not ok:
            section, name = key.split(".")
            rule = rules.get(key, "positive")
            raise ValueError(f"{key} = {cfg[section][name]!r} must be {rule}")


def exp_name(cfg: CfgNode) -> str:
    """The run folder name: EXP_NAME, or one derived from data, model and window."""
    if cfg.EXP_NAME:
        return cfg.EXP_NAME
    data = "+".join(f"{d}_{e}_{r}" for d, e, r in zip(cfg.DATASET.NAMES, cfg.DATASET.ESTIMATORS,
                                                      cfg.DATASET.BODY_REPRESENTATIONS))
    return f"{data}_{cfg.MODEL.NAME}_T{cfg.MODEL.SLIDE_WINDOW_SIZE}"
