"""The in-memory form every pose file reader returns and every writer takes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from lib.errors import InputFileError


class FormatError(InputFileError):
    """A pose file that cannot be read or written; the message names the file and the fix.

    An :class:`lib.errors.InputFileError`, hence a ``ValueError``.
    """


@dataclass
class PoseFile:
    """Pose sequences read from one file, plus what is needed to write them back.

    Attributes:
        path: the file it was read from.
        format: reader name (``smoothnet``, ``npy``, ``npz``, ``csv``, ``bvh``, ``json``).
        sequences: one array per sequence, in file order.
        scores: per-keypoint confidences per sequence where the file has them, else None.
        joint_names: joint names where the file has them.
        parents: parent index per joint (-1 for a root) where the file has a hierarchy.
        fps: frame rate where the file states it.
        meta: format-specific content (headers, other keys, the raw document) that the writer
            of the same format needs to reproduce the file.

    Shape:
        sequences: list of (T_i, J, D); scores: list of (T_i, J) or None.
    """

    path: str
    format: str
    sequences: list[np.ndarray]
    scores: list[np.ndarray] | None = None
    joint_names: tuple[str, ...] | None = None
    parents: tuple[int, ...] | None = None
    fps: float | None = None
    meta: dict = field(default_factory=dict)

    def with_sequences(self, sequences: list[np.ndarray]) -> PoseFile:
        """A copy holding ``sequences`` (same count and shapes) instead of the read ones."""
        if len(sequences) != len(self.sequences):
            raise ValueError(f"{self.path}: {len(self.sequences)} sequences read but "
                             f"{len(sequences)} given")
        for index, (old, new) in enumerate(zip(self.sequences, sequences)):
            if np.shape(old) != np.shape(new):
                raise ValueError(f"{self.path}, sequence {index}: shape {np.shape(new)} given "
                                 f"for one read as {np.shape(old)}")
        return dataclasses.replace(self, sequences=list(sequences))


def output_dtype(read_dtype: np.dtype | str | type) -> np.dtype:
    """The dtype refined values are written in: the input's float dtype, else float32.

    Refined poses are never whole numbers, so integer input (pixel coordinates stored as
    integers, say) is written as float32 instead of being truncated back to integers.
    """
    dtype = np.dtype(read_dtype)
    return dtype if dtype.kind == "f" else np.dtype(np.float32)


def single_sequence(pose_file: PoseFile, target: str) -> np.ndarray:
    """The only sequence of ``pose_file``; formats that hold one sequence call this."""
    if len(pose_file.sequences) != 1:
        raise FormatError(f"{target} holds one sequence but {pose_file.path} has "
                          f"{len(pose_file.sequences)}; write .npz (one array per sequence) "
                          "or the input's own format")
    return pose_file.sequences[0]
