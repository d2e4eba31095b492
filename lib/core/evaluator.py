"""Evaluator: accumulates per-frame metrics over sequences and summarises them frame-weighted."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from lib.core.metrics import (
    accel_errors,
    hardest_fraction_mean,
    joint_errors,
    mpjpe,
    pa_mpjpe,
    pck,
    root_align,
)

logger = logging.getLogger(__name__)

_PCK_THRESHOLDS = (0.05, 0.1, 0.2)
# Metrics whose hardest frames are also reported, as "<name>_hard1".
_HARD_METRICS = ("mpjpe", "pa_mpjpe", "accel")
# Metrics reported per sequence by Evaluator.per_sequence.
_SEQUENCE_METRICS = ("mpjpe", "pa_mpjpe", "accel")

# fn(pred, gt, mask) -> per-frame values; pred and gt are full, zero-filled sequences.
_MaskedMetric = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _triple_centres(mask: np.ndarray) -> np.ndarray:
    """Frames t whose neighbours t-1, t, t+1 are all real. Shape: (T,) bool -> (T,) bool."""
    centres = np.zeros_like(mask)
    centres[1:-1] = mask[:-2] & mask[1:-1] & mask[2:]
    return centres


def _masked_accel(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Accel error at the inner frames whose triple is real, in frame order.

    The first and last frame are context only: a chunk of a longer sequence is passed with
    one frame of context on each side (see ``_frame_chunks``); a whole sequence has no triple
    centred on its ends anyway.

    Shape:
        pred, gt: (T, J, D); mask: (T,) -> (N_triples,)
    """
    return accel_errors(pred, gt)[_triple_centres(mask)[1:-1]]


def _masked_accel_padded(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """SmoothNet variant: accel per real inner frame, 0 without a real triple.

    Shape:
        pred, gt: (T, J, D); mask: (T,) -> (N_real among frames 1 .. T-2,)
    """
    values = np.zeros(mask.shape[0])
    values[_triple_centres(mask)] = _masked_accel(pred, gt, mask)
    return values[1:-1][mask[1:-1]]


def _on_real_frames(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> _MaskedMetric:
    """Wrap a per-frame metric so that it only sees the real inner frames (see _masked_accel)."""
    return lambda pred, gt, mask: fn(pred[1:-1][mask[1:-1]], gt[1:-1][mask[1:-1]])


def _frame_chunks(num_frames: int, chunk: int):
    """(start, stop) of consecutive chunks of at most ``chunk`` frames covering a sequence."""
    return ((start, min(start + chunk, num_frames)) for start in range(0, num_frames, chunk))


def _with_context(array: np.ndarray, start: int, stop: int, fill) -> np.ndarray:
    """Frames start-1 .. stop of ``array``; outside the sequence the frame is ``fill``.

    Shape:
        array: (T, ...) -> (stop - start + 2, ...)
    """
    inner = array[max(start - 1, 0):stop + 1]
    before = [np.full((1, *array.shape[1:]), fill, array.dtype)] if start == 0 else []
    after = [np.full((1, *array.shape[1:]), fill, array.dtype)] if stop == len(array) else []
    return np.concatenate([*before, inner, *after]) if before or after else inner


def _concat(chunks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(chunks) if chunks else np.zeros(0)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


class Evaluator:
    """Accumulates per-frame pose metrics over sequences (reset / process / summarize).

    Every mean is frame-weighted over all processed sequences (not a mean of per-sequence
    means) and only real frames enter it. Position metrics are multiplied by ``unit_scale``
    (e.g. 1000 for metres -> mm; accel is then in mm/frame^2); PCK is in percent.

    Args:
        root_joints: root joints for root-aligned MPJPE (``()`` for none).
        unit_scale: factor from data units to reported units.
        joint_names: one name per joint, for :meth:`per_joint`.
        hard_fraction: share of hardest frames for the ``*_hard1`` keys (the key keeps its name
            whatever the fraction).
        with_pck: also report PCK@0.05/0.1/0.2 (2D only; ``process`` then needs ``bbox``).
        chunk_frames: frames scored at a time; memory for the metrics' intermediates is
            bounded by it, not by the sequence length (the results do not depend on it).
    """

    def __init__(self, root_joints: tuple[int, ...], unit_scale: float,
                 joint_names: tuple[str, ...], hard_fraction: float = 0.01,
                 with_pck: bool = False, chunk_frames: int = 4096) -> None:
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be positive, got {chunk_frames}")
        self.chunk_frames = chunk_frames
        self.root_joints = tuple(root_joints)
        self.unit_scale = float(unit_scale)
        self.joint_names = tuple(joint_names)
        self.hard_fraction = hard_fraction
        self.with_pck = with_pck
        self._metric_fns: dict[str, _MaskedMetric] = {
            "mpjpe": _on_real_frames(lambda p, g: mpjpe(p, g, self.root_joints)),
            "pa_mpjpe": _on_real_frames(pa_mpjpe),
            # Accel on root-aligned poses, as SmoothNet evaluates 3D (no-op without roots).
            "accel": self._root_aligned(_masked_accel),
            "accel_padded": self._root_aligned(_masked_accel_padded),
        }
        self.reset()

    def _root_aligned(self, metric: _MaskedMetric) -> _MaskedMetric:
        roots = self.root_joints
        return lambda p, g, m: metric(root_align(p, roots), root_align(g, roots), m)

    def reset(self) -> None:
        """Forget every processed sequence."""
        self._values: dict[str, list[np.ndarray]] = defaultdict(list)
        self._joint_error_sum = np.zeros(len(self.joint_names))
        self._sequences: list[dict] = []

    def _check_inputs(self, pred: np.ndarray, gt: np.ndarray,
                      mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pred, gt = np.asarray(pred), np.asarray(gt)  # converted to float64 chunk by chunk
        if pred.shape != gt.shape:
            raise ValueError(f"pred and gt shapes differ: pred {pred.shape} vs gt {gt.shape}")
        if pred.ndim != 3 or pred.shape[1] != len(self.joint_names):
            raise ValueError(f"expected (T, J={len(self.joint_names)}, D) poses, "
                             f"got shape {pred.shape}")
        mask = np.ones(pred.shape[0], dtype=bool) if mask is None else np.asarray(mask)
        if mask.dtype != bool or mask.shape != pred.shape[:1]:
            raise ValueError(f"mask must be a bool array of shape {pred.shape[:1]}, "
                             f"got {mask.dtype} {mask.shape}")
        return pred, gt, mask

    def process(self, pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None,
                bbox: np.ndarray | None = None, name: str = "") -> None:
        """Add one sequence.

        Args:
            pred: predicted poses in data units.
            gt: ground-truth poses, same shape.
            mask: True for real frames; padded frames never enter any metric. ``None``: all real.
            bbox: per-frame boxes ``x1, y1, x2, y2`` for PCK (required when ``with_pck``).
            name: optional sequence name for :meth:`per_sequence`.

        Shape:
            pred, gt: (T, J, D); mask: (T,); bbox: (T, 4).
        """
        pred, gt, mask = self._check_inputs(pred, gt, mask)
        if not mask.any():
            logger.warning("sequence %r has no real frames; skipped", name)
            return
        if self.with_pck:
            bbox = None if bbox is None else np.asarray(bbox, dtype=np.float64)
            if bbox is None or bbox.shape != (mask.shape[0], 4):
                raise ValueError(f"with_pck=True needs a bbox of shape {(mask.shape[0], 4)}, "
                                 f"got {None if bbox is None else bbox.shape}")
        # Chunks of frames (each with one frame of context on either side for the
        # acceleration) keep the float64 intermediates bounded whatever the sequence length.
        chunks = [self._chunk_values(pred, gt, mask, bbox, start, stop)
                  for start, stop in _frame_chunks(mask.shape[0], self.chunk_frames)]
        values = {key: np.concatenate([chunk[key] for chunk in chunks]) for key in chunks[0]}
        for key, value in values.items():
            self._values[key].append(value)
        self._sequences.append({
            "index": len(self._sequences), "name": name, "frames": int(mask.sum()),
            **{key: _mean(values[key]) * self.unit_scale for key in _SEQUENCE_METRICS},
        })

    def _chunk_values(self, pred: np.ndarray, gt: np.ndarray, mask: np.ndarray,
                      bbox: np.ndarray | None, start: int, stop: int) -> dict[str, np.ndarray]:
        """Per-frame metric values of frames start .. stop-1; adds their per-joint errors.

        Shape:
            pred, gt: (T, J, D); mask: (T,); bbox: (T, 4) or None.
        """
        mask = _with_context(mask, start, stop, False)
        # float64 from here; padded frames are zeroed so NaN/inf garbage there cannot reach
        # any arithmetic.
        real = mask[:, None, None]
        pred = np.where(real, _with_context(pred, start, stop, 0.0), 0.0)
        gt = np.where(real, _with_context(gt, start, stop, 0.0), 0.0)
        values = {key: fn(pred, gt, mask) for key, fn in self._metric_fns.items()}
        inner = mask[1:-1]
        if self.with_pck:
            values["pck"] = pck(pred[1:-1][inner], gt[1:-1][inner], bbox[start:stop][inner],
                                _PCK_THRESHOLDS)
        self._joint_error_sum += joint_errors(pred[1:-1][inner], gt[1:-1][inner],
                                              self.root_joints).sum(axis=0)
        return values

    def _frames(self) -> int:
        return sum(seq["frames"] for seq in self._sequences)

    def summarize(self) -> dict[str, float]:
        """Frame-weighted metrics over all processed sequences, in reported units.

        Returns:
            ``mpjpe``, ``pa_mpjpe``, ``accel`` (real frames only), ``accel_padded`` (SmoothNet
            variant, under-reports), ``mpjpe_hard1``, ``pa_mpjpe_hard1``, ``accel_hard1``,
            ``frames``, ``sequences`` and, with PCK, ``pck_0.05``, ``pck_0.1``, ``pck_0.2`` (%).
            Metrics are NaN when nothing was processed.
        """
        values = {key: _concat(chunks) for key, chunks in self._values.items()}
        summary: dict[str, float] = {}
        for key in self._metric_fns:
            summary[key] = _mean(values.get(key, np.zeros(0))) * self.unit_scale
        for key in _HARD_METRICS:
            hardest = hardest_fraction_mean(values.get(key, np.zeros(0)), self.hard_fraction)
            summary[f"{key}_hard1"] = hardest * self.unit_scale
        if self.with_pck:
            pck_values = values.get("pck", np.zeros((0, len(_PCK_THRESHOLDS))))
            for index, threshold in enumerate(_PCK_THRESHOLDS):
                summary[f"pck_{threshold}"] = 100.0 * _mean(pck_values[:, index])
        summary["frames"] = self._frames()
        summary["sequences"] = len(self._sequences)
        return summary

    def per_joint(self) -> dict[str, float]:
        """Frame-weighted MPJPE of every joint, in reported units (NaN when empty)."""
        frames = self._frames()
        if frames == 0:
            return {name: float("nan") for name in self.joint_names}
        errors = self._joint_error_sum * (self.unit_scale / frames)
        return {name: float(err) for name, err in zip(self.joint_names, errors, strict=True)}

    def per_sequence(self) -> list[dict]:
        """One dict per processed sequence: index, name, frames, mpjpe, pa_mpjpe, accel."""
        return [dict(seq) for seq in self._sequences]
