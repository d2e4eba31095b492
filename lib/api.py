"""Refine your own pose sequences with a trained checkpoint, a classical filter or a function.

Example:
    >>> refiner = Refiner.from_checkpoint("results/demo/checkpoints/best.pth")
    >>> refined = refiner.refine(poses)  # (T, J, D) numpy array, any T
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
import yaml

from lib.core.builders import mirror_averager
from lib.core.evaluation import model_from_checkpoint
from lib.core.inference import refine_sequences
from lib.core.mirror_test import MirrorAveraged
from lib.core.resume import flat_config
from lib.data.skeletons import SKELETONS, Skeleton
from lib.data.smoothnet_io import nonfinite_count_and_frame
from lib.errors import InputFileError
from lib.models.filters import build_filter

logger = logging.getLogger(__name__)

# Window length used when a filter or function is run window by window (streaming).
DEFAULT_STREAM_WINDOW = 32
# Keypoints scoring below this are treated as missing (interpolated) by default.
DEFAULT_MIN_SCORE = 0.3

SequenceFn = Callable[[list[np.ndarray]], list[np.ndarray]]
WindowFn = Callable[[np.ndarray], np.ndarray]


def fill_low_scores(poses: np.ndarray, scores: np.ndarray, min_score: float) -> np.ndarray:
    """Replace keypoints that score below ``min_score`` by interpolation from their neighbours.

    Per joint, a low-score frame gets the linear interpolation in time between the nearest
    frames where that joint scores at least ``min_score``; before the first and after the last
    such frame the nearest one is held. A joint that never reaches ``min_score`` is kept as is.

    Shape:
        poses (T, J, D), scores (T, J) -> (T, J, D).
    """
    filled = np.array(poses, copy=True)
    valid = np.asarray(scores) >= min_score  # (T, J)
    frames = np.arange(len(poses))
    for joint in np.flatnonzero(~valid.all(axis=0)):
        good = valid[:, joint]
        if not good.any():
            logger.warning("joint %d never scores >= %.2f; its raw values are kept", joint,
                           min_score)
            continue
        for axis in range(poses.shape[2]):
            filled[~good, joint, axis] = np.interp(frames[~good], frames[good],
                                                   poses[good, joint, axis])
    return filled


def _where(source: str, index: int | None) -> str:
    """How an error names one input sequence: ``clip.csv, sequence 2`` or ``poses[2]``."""
    if source:
        return source if index is None else f"{source}, sequence {index}"
    return "poses" if index is None else f"poses[{index}]"


def _stored_mirror_test(state: dict) -> bool:
    """EVAL.MIRROR_TEST of the config a checkpoint was trained with (False if it has none)."""
    try:
        return bool(flat_config(state.get("cfg") or "")["EVAL.MIRROR_TEST"])
    except (yaml.YAMLError, AttributeError):  # unreadable, or not a mapping: as if absent
        return False


def _mirror_averaged(model: torch.nn.Module, state: dict, path: str,
                     skeleton: Skeleton | None) -> MirrorAveraged:
    """The checkpoint's model averaged with its mirror image (Refiner's ``mirror_test``)."""
    rep, name = state.get("representation"), state.get("skeleton")
    if skeleton is None and name not in SKELETONS:
        raise ValueError(f"{path}: mirror_test needs the skeleton's left/right pairs, and the "
                         f"checkpoint's skeleton {name!r} is not built in; pass "
                         "skeleton=skeleton_from_yaml('.../skeleton.yaml')")
    average = mirror_averager(skeleton or SKELETONS[name], str(rep), "mirror_test",
                              "pass mirror_test=False")
    return average(model)


class Refiner:
    """Refines pose sequences of any length; build it with one of the ``from_*`` methods.

    Args:
        sequence_fn: refines a list of float (T_i, J, D) arrays into arrays of the same shapes.
        window_fn: refines a batch of windows, used by :class:`lib.streaming.StreamingRefiner`.
        window: the window length W that ``window_fn`` takes.
        name: shown in logs and pictures.
        num_joints: J the refiner accepts, or None for any.
        coord_dim: D the refiner accepts, or None for any.
        info: what is known about the refiner (checkpoint epoch, skeleton, representation).

    Shape:
        window_fn: (N, W, J, D) -> (N, W, J, D).
    """

    def __init__(self, sequence_fn: SequenceFn, window_fn: WindowFn, window: int, name: str,
                 num_joints: int | None = None, coord_dim: int | None = None,
                 info: dict | None = None) -> None:
        self._sequence_fn = sequence_fn
        self._window_fn = window_fn
        self.window = int(window)
        self.name = name
        self.num_joints = num_joints
        self.coord_dim = coord_dim
        self.info = dict(info or {})

    def __repr__(self) -> str:
        fits = f"J={self.num_joints or 'any'}, D={self.coord_dim or 'any'}"
        return f"Refiner({self.name}, window={self.window}, {fits})"

    @classmethod
    def from_checkpoint(cls, path: str, device: torch.device | str = "cpu", step: int = 1,
                        batch_size: int = 1024, mirror_test: bool | None = None,
                        skeleton: Skeleton | None = None) -> Refiner:
        """A trained model; offline refinement averages windows every ``step`` frames.

        Args:
            path: a checkpoint written by train.py (``results/<exp>/checkpoints/best.pth``).
            device: where the model runs.
            step: frames between window starts (1 = every window, as evaluation does).
            batch_size: windows per model call.
            mirror_test: also refine every window mirrored left/right and average the two
                (``EVAL.MIRROR_TEST``; 2D and 3D; twice the model calls); None: as the
                config stored in the checkpoint says (the setting its validation used).
            skeleton: for ``mirror_test``, the skeleton whose left/right pairs are exchanged;
                by default the built-in one the checkpoint names.
        """
        model, normalizer, window, state = model_from_checkpoint(path, device)
        step = max(1, min(step, window))
        if mirror_test is None:
            mirror_test = _stored_mirror_test(state)
        if mirror_test:
            model = _mirror_averaged(model, state, path, skeleton)

        def sequence_fn(sequences: list[np.ndarray]) -> list[np.ndarray]:
            return refine_sequences(model, normalizer, sequences, window, step, batch_size,
                                    device)

        def window_fn(windows: np.ndarray) -> np.ndarray:
            # A window-long sequence with step = window is exactly one model call on it.
            return np.stack(refine_sequences(model, normalizer, list(windows), window, window,
                                             batch_size, device))

        info = {"path": path, "epoch": state.get("epoch"), "skeleton": state.get("skeleton"),
                "representation": state.get("representation")}
        return cls(sequence_fn, window_fn, window, state["model_name"], normalizer.num_joints,
                   normalizer.coord_dim, info)

    @classmethod
    def from_function(cls, fn: Callable[[np.ndarray], np.ndarray], name: str = "function",
                      stream_window: int = DEFAULT_STREAM_WINDOW) -> Refiner:
        """Any ``fn(poses) -> poses`` on whole (T, J, D) sequences; windows are run one by one."""
        def sequence_fn(sequences: list[np.ndarray]) -> list[np.ndarray]:
            return [np.asarray(fn(seq)) for seq in sequences]

        def window_fn(windows: np.ndarray) -> np.ndarray:
            return np.stack([np.asarray(fn(window)) for window in windows])

        return cls(sequence_fn, window_fn, stream_window, name)

    @classmethod
    def from_filter(cls, name: str, stream_window: int = DEFAULT_STREAM_WINDOW,
                    **kwargs) -> Refiner:
        """A classical filter (savgol, gaussian, oneeuro) with its keyword parameters.

        Offline, the filter runs on whole sequences; streaming runs it on each window of
        ``stream_window`` frames.
        """
        return cls.from_function(build_filter(name, **kwargs), name, stream_window)

    def check(self, poses: np.ndarray, where: str = "poses") -> np.ndarray:
        """Validate one sequence; return it as floats (its own float dtype, else float32).

        Raises:
            InputFileError (a ValueError): wrong rank, no frames, J or D unlike the
                checkpoint's, NaN or Inf; the message starts with ``where``.

        Shape:
            poses: (T, J, D).
        """
        poses = np.asarray(poses)
        expected = f"(T, {self.num_joints or 'J'}, {self.coord_dim or 'D'})"
        if poses.ndim != 3 or len(poses) == 0:
            raise InputFileError(f"{where}: expected a {expected} array of frames x joints x "
                                 f"coordinates with T >= 1, got shape {poses.shape}")
        for axis, (want, what) in enumerate(((self.num_joints, "joints"),
                                             (self.coord_dim, "coordinates per joint")), 1):
            if want is not None and poses.shape[axis] != want:
                raise InputFileError(f"{where}: {self.name} expects {want} {what}, got "
                                     f"{poses.shape[axis]} (shape {poses.shape}, expected "
                                     f"{expected}); use a checkpoint trained on this skeleton")
        if not np.issubdtype(poses.dtype, np.number):
            raise InputFileError(f"{where}: values must be numbers, got dtype {poses.dtype}")
        nonfinite = nonfinite_count_and_frame(poses)
        if nonfinite:
            raise InputFileError(f"{where}: {nonfinite[0]} NaN/Inf values, first at frame "
                                 f"{nonfinite[1]}; interpolate them first, or pass scores so they "
                                 "are filled")
        return poses if np.issubdtype(poses.dtype, np.floating) else poses.astype(np.float32)

    def _prepare(self, poses: np.ndarray, scores: np.ndarray | None, min_score: float,
                 where: str) -> np.ndarray:
        if scores is None:
            return self.check(poses, where)
        poses, scores = np.asarray(poses, dtype=np.float64), np.asarray(scores)
        if scores.shape != poses.shape[:2]:
            raise InputFileError(f"{where}: scores of shape {scores.shape} do not match poses "
                                 f"{poses.shape}; expected (T, J) = {poses.shape[:2]}")
        missing = ~np.isfinite(poses).all(axis=-1)
        return self.check(fill_low_scores(np.where(missing[..., None], 0.0, poses),
                                          np.where(missing, -np.inf, scores), min_score), where)

    def refine(self, poses: np.ndarray | Sequence[np.ndarray],
               scores: np.ndarray | Sequence[np.ndarray] | None = None,
               min_score: float = DEFAULT_MIN_SCORE,
               source: str = "") -> np.ndarray | list[np.ndarray]:
        """Refine one sequence or a list of sequences of any length.

        Args:
            poses: one (T, J, D) array or a list of them.
            scores: optional per-keypoint confidences, same structure; keypoints below
                ``min_score`` (and NaN keypoints) are filled by interpolation first.
            min_score: score threshold.
            source: where the poses come from (a file name), named in error messages.

        Returns:
            The refined sequence(s), same structure and shapes, in the input's float dtype
            (float32 for integer input).

        Shape:
            poses: (T, J, D) or list of (T_i, J, D); scores: (T, J) or list of (T_i, J).
        """
        single = isinstance(poses, np.ndarray)
        sequences = [poses] if single else list(poses)
        score_list = [scores] if single else list(scores) if scores is not None else None
        if score_list is not None and len(score_list) != len(sequences):
            raise InputFileError(f"{source or 'input'}: {len(sequences)} sequences but "
                                 f"{len(score_list)} score arrays")
        prepared = [self._prepare(seq, None if score_list is None else score_list[i], min_score,
                                  _where(source, None if single else i))
                    for i, seq in enumerate(sequences)]
        refined = self._sequence_fn(prepared)
        dtypes = [np.asarray(seq).dtype for seq in sequences]
        out = [np.asarray(r, dtype=d if np.issubdtype(d, np.floating) else np.float32)
               for r, d in zip(refined, dtypes)]
        return out[0] if single else out

    def refine_windows(self, windows: np.ndarray) -> np.ndarray:
        """Refine a batch of full windows (no padding, no averaging).

        Shape:
            windows: (N, W, J, D) -> (N, W, J, D) float32.
        """
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 4 or windows.shape[1] != self.window:
            raise ValueError(f"windows must be (N, {self.window}, J, D), got {windows.shape}")
        return np.asarray(self._window_fn(windows), dtype=np.float32)
