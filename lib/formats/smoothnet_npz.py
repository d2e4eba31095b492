"""SmoothNet-layout npz files: object arrays with one (T, J*D) entry per sequence."""

from __future__ import annotations

import numpy as np

from lib.formats.base import FormatError, PoseFile, output_dtype
from lib.utils.io import atomic_write

# Pose key of the SmoothNet layout and its coordinates per joint.
SMOOTHNET_KEYS = {"joints_3d": 3, "keypoints_2d": 2}


def smoothnet_key(arrays: dict[str, np.ndarray]) -> str | None:
    """The SmoothNet pose key present in ``arrays``, or None for another npz."""
    return next((key for key in SMOOTHNET_KEYS if key in arrays), None)


def _entry(value: np.ndarray, dims: int, where: str) -> np.ndarray:
    value = np.asarray(value)
    if value.ndim != 2 or value.shape[1] % dims or value.dtype.kind not in "fiu":
        raise FormatError(f"{where}: shape {value.shape} ({value.dtype}); the SmoothNet layout "
                          f"stores numeric (T, J*{dims}) arrays per sequence")
    return value.reshape(len(value), -1, dims)


def read_smoothnet_npz(path: str, arrays: dict[str, np.ndarray]) -> PoseFile:
    """All sequences of a detected (or ground-truth) SmoothNet file; other keys are kept.

    Shape:
        sequences: list of (T_i, J, D), D = 3 for ``joints_3d`` and 2 for ``keypoints_2d``.
    """
    key = smoothnet_key(arrays)
    values = arrays[key]
    dims = SMOOTHNET_KEYS[key]
    sequences = [_entry(value, dims, f"{path}, key {key!r}, sequence {index}")
                 for index, value in enumerate(values)]
    if not sequences:
        raise FormatError(f"{path}: key {key!r} holds no sequences")
    return PoseFile(path, "smoothnet", sequences,
                    meta={"arrays": arrays, "pose_key": key, "object": values.dtype == object,
                          "dtypes": [np.asarray(value).dtype for value in values]})


def write_smoothnet_npz(path: str, pose_file: PoseFile) -> None:
    """The source file with its pose key replaced; every other key is written unchanged."""
    if pose_file.format != "smoothnet":
        raise FormatError(f"{path}: only SmoothNet-layout input can be written in that layout; "
                          f"{pose_file.path} is {pose_file.format}")
    meta = pose_file.meta
    flat = [np.asarray(seq, dtype=output_dtype(dtype)).reshape(len(seq), -1)
            for seq, dtype in zip(pose_file.sequences, meta["dtypes"])]
    if meta["object"]:
        values = np.empty(len(flat), dtype=object)
        for index, seq in enumerate(flat):
            values[index] = seq
    else:
        values = np.stack(flat)
    arrays = {**meta["arrays"], meta["pose_key"]: values}

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    atomic_write(path, write)
