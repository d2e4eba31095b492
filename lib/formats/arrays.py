"""Plain NumPy files: a .npy holding one (T, J, D) array, a .npz holding any number of them."""

from __future__ import annotations

import numpy as np

from lib.formats.base import FormatError, PoseFile, output_dtype, single_sequence
from lib.utils.io import atomic_write
from lib.utils.safe_load import load_npy


def _check_array(array: np.ndarray, where: str) -> np.ndarray:
    if array.dtype.kind not in "fiu" or array.ndim != 3:
        raise FormatError(f"{where}: expected a numeric (T, J, D) array, got {array.dtype} with "
                          f"shape {array.shape}; reshape it to frames x joints x coordinates")
    return array


def read_npy(path: str) -> PoseFile:
    """One sequence from a .npy file. Shape: the file holds (T, J, D)."""
    array = load_npy(path, FormatError)
    return PoseFile(path, "npy", [_check_array(array, path)], meta={"dtype": array.dtype})


def pose_keys(arrays: dict[str, np.ndarray]) -> list[str]:
    """Keys of the floating-point arrays of rank 3, the ones that are refined."""
    return [key for key, value in arrays.items() if value.dtype.kind == "f" and value.ndim == 3]


def read_plain_npz(path: str, arrays: dict[str, np.ndarray]) -> PoseFile:
    """Every floating-point (T, J, D) array of an .npz is a sequence; other keys are kept.

    Shape:
        sequences: one (T_k, J_k, D_k) per refined key, in file order.
    """
    keys = pose_keys(arrays)
    if not keys:
        shapes = {key: value.shape for key, value in arrays.items()}
        raise FormatError(f"{path}: no floating-point (T, J, D) array among {shapes}; store "
                          "poses as frames x joints x coordinates (SMPL pose/shape parameter "
                          "files are not handled by this reader)")
    return PoseFile(path, "npz", [arrays[key] for key in keys], meta={"arrays": arrays,
                                                                       "pose_keys": keys})


def _save(path: str, save) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            save(handle)
    atomic_write(path, write)


def write_npy(path: str, pose_file: PoseFile) -> None:
    """Write the single sequence in the float dtype it was read with (integer input: float32).

    Integer input is never written back as integers, which would truncate the refined values.
    """
    sequence = single_sequence(pose_file, path)
    dtype = pose_file.meta.get("dtype", sequence.dtype) if pose_file.format == "npy" \
        else sequence.dtype
    _save(path, lambda handle: np.save(handle, np.asarray(sequence, dtype=output_dtype(dtype))))


def _generic_arrays(pose_file: PoseFile) -> dict[str, np.ndarray]:
    """Keys for sequences that did not come from an .npz: poses (or poses_000, ...) + skeleton."""
    count = len(pose_file.sequences)
    arrays = {("poses" if count == 1 else f"poses_{index:03d}"): sequence
              for index, sequence in enumerate(pose_file.sequences)}
    if pose_file.joint_names is not None:
        arrays["joint_names"] = np.array(pose_file.joint_names)
    if pose_file.parents is not None:
        arrays["parents"] = np.array(pose_file.parents)
    if pose_file.fps is not None:
        arrays["fps"] = np.array(pose_file.fps)
    return arrays


def write_plain_npz(path: str, pose_file: PoseFile) -> None:
    """Write every key of the source .npz with the refined arrays in place of the read ones."""
    if pose_file.format == "npz":
        arrays = dict(pose_file.meta["arrays"])
        for key, sequence in zip(pose_file.meta["pose_keys"], pose_file.sequences):
            arrays[key] = np.asarray(sequence, dtype=output_dtype(arrays[key].dtype))
    else:
        arrays = _generic_arrays(pose_file)
    _save(path, lambda handle: np.savez(handle, **arrays))
