"""Reading and writing pose files by extension: SmoothNet npz, npy/npz, CSV, BVH, keypoint JSON."""

from __future__ import annotations

import os

from lib.errors import MissingFileError
from lib.formats.arrays import read_npy, read_plain_npz, write_npy, write_plain_npz
from lib.formats.base import FormatError, PoseFile, single_sequence
from lib.formats.bvh import read_bvh, write_bvh
from lib.formats.csv_table import read_csv, write_csv
from lib.formats.keypoint_json import read_keypoint_json, write_keypoint_json
from lib.formats.smoothnet_npz import read_smoothnet_npz, smoothnet_key, write_smoothnet_npz
from lib.utils.safe_load import load_npz

__all__ = ["EXTENSIONS", "FormatError", "PoseFile", "check_writable", "file_format", "read_poses",
           "write_poses"]

# File extension -> format family; .npz is SmoothNet layout or plain arrays, decided by its keys.
EXTENSIONS = {".npz": "npz", ".npy": "npy", ".csv": "csv", ".bvh": "bvh", ".json": "json"}

_WRITERS = {"smoothnet": write_smoothnet_npz, "npz": write_plain_npz, "npy": write_npy,
            "csv": write_csv, "bvh": write_bvh, "json": write_keypoint_json}


def file_format(path: str) -> str:
    """The format family of a path from its extension."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in EXTENSIONS:
        raise FormatError(f"{path}: unknown extension {extension!r}; supported: "
                          f"{sorted(EXTENSIONS)}")
    return EXTENSIONS[extension]


def _read_npz(path: str) -> PoseFile:
    """SmoothNet layout or plain arrays; object arrays only through the restricted unpickler."""
    arrays = load_npz(path, FormatError)
    if smoothnet_key(arrays):
        return read_smoothnet_npz(path, arrays)
    return read_plain_npz(path, arrays)


def read_poses(path: str, coord_dim: int | None = None) -> PoseFile:
    """Read any supported pose file.

    Args:
        path: the file; its extension picks the reader.
        coord_dim: coordinates per joint for a CSV whose header does not tell (e.g. 2 or 3).

    Returns:
        The sequences with the metadata needed to write them back in the same format.

    Shape:
        sequences: list of (T_i, J, D).
    """
    if not os.path.isfile(path):
        raise MissingFileError(f"{path} not found; check the --input path")
    family = file_format(path)
    if family == "npz":
        return _read_npz(path)
    if family == "csv":
        return read_csv(path, coord_dim)
    readers = {"npy": read_npy, "bvh": read_bvh, "json": read_keypoint_json}
    return readers[family](path)


def check_writable(path: str, pose_file: PoseFile) -> None:
    """Raise FormatError now (before any work) when ``pose_file`` cannot be written to ``path``.

    The input's own format is always writable (BVH excepted); .csv and .npy take one sequence
    from any format and .npz any number; SmoothNet npz and keypoint JSON need input of their
    own kind, since their metadata comes from it.
    """
    family = file_format(path)
    if family == "bvh":
        write_bvh(path, pose_file)
    if family in ("csv", "npy"):
        single_sequence(pose_file, path)
    if family == "json" and pose_file.format != "json":
        raise FormatError(f"{path}: keypoint JSON output needs keypoint JSON input; "
                          f"{pose_file.path} is {pose_file.format}; write .csv, .npy or .npz")


def write_poses(path: str, pose_file: PoseFile) -> None:
    """Write ``pose_file`` in the format of ``path``'s extension (SmoothNet npz stays SmoothNet).

    Writing the input's own format keeps its metadata; .csv, .npy and .npz also take sequences
    from other formats (BVH output is written this way, as positions).
    """
    family = file_format(path)
    if family == "npz" and pose_file.format == "smoothnet":
        family = "smoothnet"
    _WRITERS[family](path, pose_file)
