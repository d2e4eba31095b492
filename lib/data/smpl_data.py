"""SMPL files of the SmoothNet layout: axis-angle poses as 6D rotations, and the shape side data."""

from __future__ import annotations

import numpy as np

from lib.data.rotations import axis_angle_to_rot6d_np
from lib.errors import InputFileError

# Shape coefficients per frame in SmoothNet's smpl files.
SHAPE_DIM = 10


class SmplFormatError(InputFileError):
    """An smpl file whose side data (shape, trans) does not follow the SmoothNet layout.

    An :class:`lib.errors.InputFileError`, hence a ``ValueError``.
    """


def poses_to_rot6d(poses: list[np.ndarray]) -> list[np.ndarray]:
    """Axis-angle joint rotations to 6D rotations, per sequence.

    Shape:
        poses: list of (T, 24, 3) -> list of (T, 24, 6) float32.
    """
    return [axis_angle_to_rot6d_np(seq).astype(np.float32) for seq in poses]


def _shapes(arrays: dict, path: str, lengths: list[int]) -> list[np.ndarray]:
    shapes = []
    for index, (values, frames) in enumerate(zip(arrays["shape"], lengths)):
        values = np.asarray(values, dtype=np.float32)
        if values.ndim == 1 and values.shape[0] == SHAPE_DIM:
            values = np.repeat(values[None], frames, axis=0)  # one shape for the whole sequence
        if values.shape != (frames, SHAPE_DIM) or not np.isfinite(values).all():
            raise SmplFormatError(f"{path}, key 'shape', sequence {index}: shape {values.shape}, "
                                  f"expected ({frames}, {SHAPE_DIM}) finite SMPL betas")
        shapes.append(values)
    if len(shapes) != len(lengths):
        raise SmplFormatError(f"{path}: {len(shapes)} sequences in 'shape' but {len(lengths)} in "
                              "'pose'; both need one entry per sequence")
    return shapes


def read_shapes(det_arrays: dict, gt_arrays: dict, det_path: str, gt_path: str,
                lengths: list[int]) -> dict[str, list[np.ndarray]]:
    """The betas of the estimate and of the ground truth, one (T, 10) array per sequence.

    The estimate must have ``shape``. The ground truth has ``shape`` or, like AIST++, ``trans``
    and ``scaling`` instead: its body is then the mean shape (betas 0). Translation and scaling
    are not used, since every SMPL metric is root-aligned (SmoothNet evaluates AIST++ the same
    way).
    """
    if "shape" not in det_arrays:
        raise SmplFormatError(f"{det_path} has no key 'shape' (keys: {sorted(det_arrays)}); "
                              "smpl estimates need per-frame betas (T, 10) beside 'pose'")
    sides = {"det_shape": _shapes(det_arrays, det_path, lengths)}
    if "shape" in gt_arrays:
        sides["gt_shape"] = _shapes(gt_arrays, gt_path, lengths)
    elif "trans" in gt_arrays:
        sides["gt_shape"] = [np.zeros((frames, SHAPE_DIM), np.float32) for frames in lengths]
    else:
        raise SmplFormatError(f"{gt_path} has neither 'shape' nor 'trans' (keys: "
                              f"{sorted(gt_arrays)}); smpl ground truth needs per-frame betas "
                              "'shape' (T, 10), or 'trans' and 'scaling' as in AIST++")
    return sides
