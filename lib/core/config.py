"""All configuration defaults, the command-line merge and validation of a run's config."""

from __future__ import annotations

import difflib
import os

import yaml
from yacs.config import CfgNode

from lib.errors import ConfigError, MissingFileError, UnknownNameError

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
# Keep freed memory in the process (glibc on Linux) so large tensors reuse it instead of new,
# zero-filled pages: 1.8x faster training at the released size, at the price of holding the
# peak memory until exit. No effect on results (lib/utils/host_memory.py).
_C.KEEP_FREED_MEMORY = True

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
# Input convention of the model: 'centred' (per-window normalisation above, default) or
# 'released' (SmoothNet's release: raw metres for 3D, (x - IMAGE_SIZE/2) / (IMAGE_SIZE/2) for
# 2D pixels, the same for every window). Stored in checkpoints; measured in docs/UNSEEN.md.
_C.DATASET.INPUT_CONVENTION = "centred"
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
# Hidden-size multiplier of the joint-mixing MLPs, used when MODEL.JOINT_HIDDEN_SIZE is 0.
_C.MODEL.JOINT_EXPANSION = 2
# Architecture switches. The defaults are the paper's network (as released: about 6.3 M
# parameters, 1.3 GFLOP per window at T 32, C 42). The lean network (3.2 M, 0.31 GFLOP), which
# checkpoints written before these keys existed hold, is this key set:
#   MODEL.JOINT_HIDDEN_SIZE 0  MODEL.FREQ_STACKED False  MODEL.LOW_BAND_PROJECTION False
#   MODEL.FREQ_JOINT_MIXING False  MODEL.FREQ_IDENTITY False  MODEL.TIME_LAYERNORM False
#   MODEL.HALVE_RES_HIDDEN True  MODEL.UP_PATH_MIXING False
# Hidden width of every joint-mixing MLP (released: 512); 0 means JOINT_EXPANSION x C.
_C.MODEL.JOINT_HIDDEN_SIZE = 512
# Frequency branch of NUM_BLOCKS stacked DoF blocks filtering transform coefficients (True), or
# one block filtering band signals followed by a residual MLP along time (False, lean).
_C.MODEL.FREQ_STACKED = True
# Low-DoF joints: a learned projection of each band's coefficients before the band weighting.
_C.MODEL.LOW_BAND_PROJECTION = True
# Learn the low-DoF band weighting (True) or keep it fixed at MODEL.LOW_BAND_INIT (False).
_C.MODEL.LEARN_BAND_WEIGHTS = True
# A joint-mixing MLP (LayerNorm, Linear, GELU, Linear, residual) in each frequency block.
_C.MODEL.FREQ_JOINT_MIXING = True
# An identity path around each frequency block (x + block(x)).
_C.MODEL.FREQ_IDENTITY = True
# LayerNorm over the encoded time axis before each time MLP of the temporal branch.
_C.MODEL.TIME_LAYERNORM = True
# Halve the time MLPs' hidden width R per level of the temporal U-Net (lean) instead of full R.
_C.MODEL.HALVE_RES_HIDDEN = False
# Joint and time mixing on the temporal U-Net's up path too, not only on the way down.
_C.MODEL.UP_PATH_MIXING = True
# Ablation switches (docs/ablation/unseen_rows.yaml). Frequency blocks when FREQ_STACKED; 0
# means NUM_BLOCKS.
_C.MODEL.FREQ_NUM_BLOCKS = 0
# Build the temporal branch (False: the frequency branch alone is decoded).
_C.MODEL.TEMPORAL_BRANCH = True
# Build the frequency branch (False: the temporal branch alone is decoded).
_C.MODEL.FREQ_BRANCH = True
# Low-/high-DoF joint groups: skeleton (from the joint names), all_high (every joint through the
# adaptive gate) or all_low (every joint through the low-band weighting).
_C.MODEL.DOF_SPLIT = "skeleton"
# Run the model's Linear and Dropout layers on the CPU kernels of lib/models/cpu_fast.py (fused
# oneDNN Linear + activation, cheap dropout masks); same parameters and results. Other devices
# fall back to plain torch, so this only matters on a CPU.
_C.MODEL.CPU_KERNELS = True
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
# Width of the augmentation's parameter ranges on a log scale, as a multiple of the sample
# benchmark's (1.0; same centres): 2.0 draws e.g. drift correlation times over 0.25-4 s instead
# of 0.5-2 s, for errors unlike the sample's (lib/data/error_model.py).
_C.TRAIN.AUGMENT_BREADTH = 1.0
# Chance that a window's simulated error (TRAIN.AUGMENT) is shrunk: the whole error (estimate -
# ground truth) times a factor drawn log-uniformly in [TRAIN.AUGMENT_WEAK_FLOOR, 1], so that the
# network also sees nearly exact inputs and learns to keep them (2D and 3D, with TRAIN.AUGMENT
# replace or mix; lib/data/error_scaling.py). 0 = never.
_C.TRAIN.AUGMENT_WEAK = 0.0
# Smallest factor of TRAIN.AUGMENT_WEAK, in (0, 1].
_C.TRAIN.AUGMENT_WEAK_FLOOR = 0.05
# Chance that a training window (input and target together) is mirrored left/right: x
# reflected about the window's mean, left and right joints exchanged (2D and 3D, skeletons with
# left/right pairs; x must be horizontal, as in camera, image and the sample's coordinates).
# 0 = never; 0.5 doubles the motions seen (lib/data/mirroring.py).
_C.TRAIN.MIRROR = 0.0
# Chance that a training window (input and target together) is turned about the vertical y axis
# (through the window's mean) by an angle uniform over the circle: the motion performed facing
# another way (3D joint positions with y vertical, as in the sample; lib/data/turning.py).
# 0 = never.
_C.TRAIN.TURN = 0.0
# Chance that a training window (input, target and mask together) is played backwards, first,
# before any simulated errors are drawn, so that these keep their direction in time (a freeze
# holds an earlier frame); under AUGMENT mix the windows that keep their stored estimates are
# reversed with those errors. A trajectory is as smooth backwards as forwards: another motion
# from the same clip (2D, 3D, rotations). 0 = never; the 3D demo uses 0.5 (docs/UNSEEN.md,
# "Windows played backwards").
_C.TRAIN.REVERSE = 0.0
# Chance that a training window (input and target together) is performed by another body: each
# bone's length times a global factor U(0.85, 1.15) and one of its own U(0.9, 1.1), left and
# right alike; the input keeps its error about the new ground truth (3D joint positions only;
# lib/data/body_reshaping.py). 0 = never.
_C.TRAIN.RESHAPE_BODIES = 0.0
# Chance that a training window (input and target together) gets other joint angles: each bone,
# with everything below it, turned about its parent joint by a rotation of its own (random axis,
# angle normal with std TRAIN.PERTURB_POSES_SIGMA), the same in every frame; poses the clips
# never hold, bone lengths and timing kept; the input keeps its error about the new ground truth
# (3D joint positions only; lib/data/pose_perturbation.py). 0 = never.
_C.TRAIN.PERTURB_POSES = 0.0
# Standard deviation of TRAIN.PERTURB_POSES's rotation angles, radians (0.25 = 14 degrees).
_C.TRAIN.PERTURB_POSES_SIGMA = 0.25
# DataLoader worker processes.
_C.TRAIN.NUM_WORKERS = 0
# Clip the gradient norm to this value (0 disables).
_C.TRAIN.GRAD_CLIP = 0.0
# bf16 autocast in the training step and in evaluation, on CUDA (compute capability >= 8) and
# on CPUs with oneDNN bf16 support (AVX-512; native with AVX512-BF16 or AMX); elsewhere it
# stays fp32 with a warning.
_C.TRAIN.AMP = False
# Exponential moving average of the weights, updated after every step, with this decay (an
# average over about 1 / (1 - decay) steps; warm-up: min(decay, (1 + n) / (10 + n)) at update n).
# Validation and the checkpoints' weights are then the average (lib/core/weight_average.py).
# 0 = off: the trained weights themselves.
_C.TRAIN.EMA_DECAY = 0.0

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
# Test-time mirroring: refine every window also mirrored left/right and average the two
# (2D and 3D; twice the model calls; lib/core/mirror_test.py). Used by eval.py, by the
# validation that picks best.pth, and by Refiner.from_checkpoint(mirror_test=True).
_C.EVAL.MIRROR_TEST = False

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
# One-Euro minimum cutoff (cycles per frame) and speed coefficient (time step of one frame).
# BETA multiplies the speed in data units per frame, so it depends on the units: 0.7 suits
# metres; for pixels divide it by the pixels per metre (the 2D configs set 0.0035 for a body at
# about 200 px per metre; 0.7 there lets nearly all jitter through).
_C.FILTERS.ONEEURO_MIN_CUTOFF = 0.04
_C.FILTERS.ONEEURO_BETA = 0.7

_VALID_CHOICES = {
    "MODEL.NAME": ("motionrefinenet", "smoothnet"),
    "MODEL.FREQ_TRANSFORM": ("fft", "haar"),
    "MODEL.DOF_SPLIT": ("skeleton", "all_high", "all_low"),
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


def _unknown_key_error(key: str, where: str = "") -> UnknownNameError:
    near = difflib.get_close_matches(key, _all_keys(_C), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    prefix = f"{where}: " if where else ""
    return UnknownNameError(f"{prefix}unknown config key {key!r}{hint} "
                            "(all keys: lib/core/config.py)")


def _check_keys(node: CfgNode, prefix: str = "", where: str = "") -> None:
    """Raise an UnknownNameError naming the nearest valid keys for a key the defaults lack."""
    valid = set(_all_keys(_C))
    for key in _all_keys(node, prefix):
        if key not in valid and any(name.startswith(key + ".") for name in valid):
            raise ConfigError(f"{where + ': ' if where else ''}{key} is a section, not a "
                              f"value; put its keys indented below it, e.g. '{key}:' then "
                              "'  KEY: value'")
        if key not in valid:
            raise _unknown_key_error(key, where)


def _read_yaml(path: str) -> CfgNode:
    """The YAML file as a CfgNode; a syntax error or a non-mapping names the file and line."""
    if not os.path.isfile(path):
        raise MissingFileError(f"config file {path!r} not found; list the files in configs/")
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}{line}: not valid YAML ({problem}); fix the syntax "
                          "(configs/*.yaml show the layout)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the config file ({err})") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path}, line 1: the file holds a YAML {type(document).__name__}, "
                          "but a config is a mapping of sections to keys, e.g. 'TRAIN:' then "
                          "'  EPOCHS: 5' on the next line")
    return CfgNode(document)


def merge_file(cfg: CfgNode, path: str) -> None:
    """Merge a YAML delta into ``cfg`` with a clear error naming the file for any problem.

    Raises:
        MissingFileError: the file does not exist.
        ConfigError: not valid YAML, not a mapping, or a value of the wrong type.
        UnknownNameError: a key the defaults do not have (the nearest valid keys named).
    """
    other = _read_yaml(path)
    _check_keys(other, where=path)
    _widen_integers(other)
    try:
        cfg.merge_from_other_cfg(other)
    except (ValueError, KeyError) as err:  # yacs: type mismatch, or a section given a value
        raise ConfigError(f"{path}: {err.args[0] if err.args else err}") from None


def _float_default(key: str) -> bool:
    """Whether the default of the dotted ``key`` is a float."""
    node = _C
    for part in key.split("."):
        node = node[part]
    return isinstance(node, float)


def _widen_integers(node: CfgNode, prefix: str = "") -> None:
    """Turn an integer given for a float key (``VAL_FRACTION: 0``) into a float, in place.

    yacs refuses int for a float default; a user writing 0 for 0.0 means the same number.
    """
    for name, value in node.items():
        key = f"{prefix}{name}"
        if isinstance(value, CfgNode):
            _widen_integers(value, key + ".")
        elif type(value) is int and _float_default(key):
            node[name] = float(value)


def _widen_integer_text(key: str, value: str) -> str:
    """An override's text, with an integer for a float key written as a float (0 -> 0.0)."""
    text = value.strip()
    if _float_default(key) and text.lstrip("+-").isdigit():
        return str(float(text))
    return value


def merge_list(cfg: CfgNode, opts: list[str]) -> None:
    """Merge trailing ``KEY VALUE`` pairs with a clear error for a bad key, value or count."""
    if len(opts) % 2:
        raise ConfigError(f"overrides must be KEY VALUE pairs; {opts[-1]!r} has no value "
                          f"(got {opts})")
    valid = set(_all_keys(_C))
    for key, value in zip(opts[0::2], opts[1::2]):
        if key not in valid:
            raise _unknown_key_error(key)
        try:
            cfg.merge_from_list([key, _widen_integer_text(key, value)])
        except (ValueError, KeyError, AssertionError) as err:  # yacs: type mismatch
            raise ConfigError(f"override {key} {value}: {err.args[0] if err.args else err}") \
                from None


def validate(cfg: CfgNode) -> None:
    """Check values that yacs' type check cannot; raise ConfigError naming the key and fix."""
    for key, choices in _VALID_CHOICES.items():
        section, name = key.split(".")
        value = cfg[section][name]
        if value not in choices:
            raise ConfigError(f"{key} = {value!r} is not one of {list(choices)}")
    lengths = {len(cfg.DATASET.NAMES), len(cfg.DATASET.ESTIMATORS),
               len(cfg.DATASET.BODY_REPRESENTATIONS)}
    if len(lengths) != 1 or 0 in lengths:
        raise ConfigError("DATASET.NAMES, DATASET.ESTIMATORS and DATASET.BODY_REPRESENTATIONS "
                         "need one entry per dataset and the same length; got "
                         f"{cfg.DATASET.NAMES}, {cfg.DATASET.ESTIMATORS}, "
                         f"{cfg.DATASET.BODY_REPRESENTATIONS}")
    for rep in cfg.DATASET.BODY_REPRESENTATIONS:
        if rep not in _REPRESENTATIONS:
            raise ConfigError(f"body representation {rep!r} is not one of "
                              f"{list(_REPRESENTATIONS)}")
    _check_positive(cfg)
    _check_exp_name(cfg)


def _is_odd_window(frames: int) -> bool:
    return frames >= 1 and frames % 2 == 1


def _check_positive(cfg: CfgNode) -> None:
    """Ranges of the numeric keys; a value outside raises a ConfigError naming key and rule."""
    checks = {
        "MODEL.SLIDE_WINDOW_SIZE": cfg.MODEL.SLIDE_WINDOW_SIZE >= 8,
        "MODEL.HIDDEN_SIZE": cfg.MODEL.HIDDEN_SIZE > 0 and cfg.MODEL.HIDDEN_SIZE % 4 == 0,
        "TRAIN.BATCH_SIZE": cfg.TRAIN.BATCH_SIZE > 0,
        "TRAIN.EPOCHS": cfg.TRAIN.EPOCHS > 0,
        "TRAIN.STRIDE": cfg.TRAIN.STRIDE > 0,
        "EVAL.SLIDE_STEP": 0 < cfg.EVAL.SLIDE_STEP <= cfg.MODEL.SLIDE_WINDOW_SIZE,
        "DATASET.VAL_FRACTION": 0.0 <= cfg.DATASET.VAL_FRACTION < 1.0,
        "MODEL.LOW_BAND_INIT": len(cfg.MODEL.LOW_BAND_INIT) == 3,
        "FILTERS.SAVGOL_WINDOW": _is_odd_window(cfg.FILTERS.SAVGOL_WINDOW),
        "FILTERS.SAVGOL_ORDER": 0 <= cfg.FILTERS.SAVGOL_ORDER < cfg.FILTERS.SAVGOL_WINDOW,
        "FILTERS.GAUSSIAN_WINDOW": _is_odd_window(cfg.FILTERS.GAUSSIAN_WINDOW),
        "FILTERS.GAUSSIAN_SIGMA": cfg.FILTERS.GAUSSIAN_SIGMA > 0,
        "FILTERS.ONEEURO_MIN_CUTOFF": cfg.FILTERS.ONEEURO_MIN_CUTOFF > 0,
        "FILTERS.ONEEURO_BETA": cfg.FILTERS.ONEEURO_BETA >= 0,
        "TRAIN.AUGMENT_STRENGTH": cfg.TRAIN.AUGMENT_STRENGTH >= 0,
        "TRAIN.AUGMENT_BREADTH": cfg.TRAIN.AUGMENT_BREADTH >= 0,
        "TRAIN.MIRROR": 0.0 <= cfg.TRAIN.MIRROR <= 1.0,
        "TRAIN.TURN": 0.0 <= cfg.TRAIN.TURN <= 1.0,
        "TRAIN.REVERSE": 0.0 <= cfg.TRAIN.REVERSE <= 1.0,
        "TRAIN.RESHAPE_BODIES": 0.0 <= cfg.TRAIN.RESHAPE_BODIES <= 1.0,
        "TRAIN.PERTURB_POSES": 0.0 <= cfg.TRAIN.PERTURB_POSES <= 1.0,
        "TRAIN.PERTURB_POSES_SIGMA": 0.0 <= cfg.TRAIN.PERTURB_POSES_SIGMA <= 3.2,
        "TRAIN.AUGMENT_WEAK": 0.0 <= cfg.TRAIN.AUGMENT_WEAK <= 1.0,
        "TRAIN.AUGMENT_WEAK_FLOOR": 0.0 < cfg.TRAIN.AUGMENT_WEAK_FLOOR <= 1.0,
        "TRAIN.EMA_DECAY": 0.0 <= cfg.TRAIN.EMA_DECAY < 1.0,
    }
    rules = {
        "MODEL.SLIDE_WINDOW_SIZE": "an integer >= 8",
        "MODEL.HIDDEN_SIZE": "a positive multiple of 4",
        "EVAL.SLIDE_STEP": "between 1 and MODEL.SLIDE_WINDOW_SIZE",
        "DATASET.VAL_FRACTION": "in [0, 1)",
        "MODEL.LOW_BAND_INIT": "three band weights (low, mid, high)",
        "FILTERS.SAVGOL_WINDOW": "a positive odd number of frames",
        "FILTERS.SAVGOL_ORDER": "in [0, FILTERS.SAVGOL_WINDOW)",
        "FILTERS.GAUSSIAN_WINDOW": "a positive odd number of frames",
        "FILTERS.ONEEURO_BETA": ">= 0",
        "TRAIN.AUGMENT_STRENGTH": ">= 0",
        "TRAIN.AUGMENT_BREADTH": ">= 0",
        "TRAIN.MIRROR": "a probability in [0, 1]",
        "TRAIN.TURN": "a probability in [0, 1]",
        "TRAIN.REVERSE": "a probability in [0, 1]",
        "TRAIN.RESHAPE_BODIES": "a probability in [0, 1]",
        "TRAIN.PERTURB_POSES": "a probability in [0, 1]",
        "TRAIN.PERTURB_POSES_SIGMA": "in [0, 3.2] radians",
        "TRAIN.AUGMENT_WEAK": "a probability in [0, 1]",
        "TRAIN.AUGMENT_WEAK_FLOOR": "in (0, 1]",
        "TRAIN.EMA_DECAY": "in [0, 1) (0 = no weight average)",
    }
    for key, ok in checks.items():
        if not ok:
            section, name = key.split(".")
            rule = rules.get(key, "positive")
            raise ConfigError(f"{key} = {cfg[section][name]!r} must be {rule}")


def exp_name(cfg: CfgNode) -> str:
    """The run folder name: EXP_NAME, or one derived from data, model and window."""
    if cfg.EXP_NAME:
        return cfg.EXP_NAME
    data = "+".join(f"{d}_{e}_{r}" for d, e, r in zip(cfg.DATASET.NAMES, cfg.DATASET.ESTIMATORS,
                                                      cfg.DATASET.BODY_REPRESENTATIONS))
    return f"{data}_{cfg.MODEL.NAME}_T{cfg.MODEL.SLIDE_WINDOW_SIZE}"


def _exp_name_problem(name: str) -> str:
    """Why ``name`` is not one plain folder name (a user-given name must stay in OUTPUT_DIR)."""
    if not name:
        return "is empty"
    if "\0" in name:
        return "contains a NUL character"
    if "/" in name or "\\" in name or os.path.isabs(name):
        return "contains a path separator"
    if name.startswith("."):
        return "starts with '.' ('.', '..' and hidden names are reserved)"
    if len(name.encode("utf-8", "surrogateescape")) > 255:
        return "is longer than 255 bytes"
    return ""


def _check_exp_name(cfg: CfgNode) -> None:
    """EXP_NAME (given or derived) must be one plain folder name inside OUTPUT_DIR."""
    name = exp_name(cfg)
    problem = _exp_name_problem(name)
    if problem:
        source = "EXP_NAME" if cfg.EXP_NAME else "EXP_NAME (derived from DATASET and MODEL)"
        raise ConfigError(f"{source} = {name!r} {problem}; the run folder is "
                          f"OUTPUT_DIR/EXP_NAME, so give one plain folder name such as "
                          f"'my_run' (set OUTPUT_DIR to choose where runs go)")
