"""Sliding windows over sequences, edge padding with masks, and vectorised overlap-add."""

from __future__ import annotations

import numpy as np
import torch


def window_starts(num_frames: int, window: int, step: int) -> np.ndarray:
    """Start frames of windows every ``step`` frames, the last window always included.

    A sequence shorter than the window gets one window at 0 (it is padded first).

    Shape:
        returns (N,) int64.
    """
    if num_frames < 1 or window < 1 or step < 1:
        raise ValueError(f"need num_frames, window, step >= 1; got {num_frames}, {window}, {step}")
    last = max(num_frames - window, 0)
    starts = np.arange(0, last + 1, step, dtype=np.int64)
    if starts[-1] != last:
        starts = np.append(starts, last)
    return starts


def pad_to_window(sequence: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Edge-replicate a sequence up to ``window`` frames and mark the real frames.

    Shape:
        sequence: (T, ...); returns (max(T, window), ...) and a bool mask (max(T, window),).
    """
    num_frames = len(sequence)
    mask = np.ones(max(num_frames, window), dtype=bool)
    if num_frames >= window:
        return sequence, mask
    mask[num_frames:] = False
    pad = np.repeat(sequence[-1:], window - num_frames, axis=0)
    return np.concatenate([sequence, pad], axis=0), mask


def window_frame_index(starts: np.ndarray | torch.Tensor, window: int):
    """Frame index of every element of every window.

    Shape:
        starts: (N,); returns (N, window).
    """
    if isinstance(starts, torch.Tensor):
        return starts[:, None] + torch.arange(window, device=starts.device)
    return starts[:, None] + np.arange(window)


def slide_windows(sequence: np.ndarray, window: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut a sequence (padded if short) into overlapping windows.

    Shape:
        sequence: (T, ...); returns windows (N, window, ...) and starts (N,).
    """
    padded, _ = pad_to_window(sequence, window)
    starts = window_starts(len(padded), window, step)
    return padded[window_frame_index(starts, window)], starts


class OverlapAverage:
    """Average overlapping windows into a frame buffer, batch after batch.

    Windows are summed into the buffer with one ``index_add_`` per batch, and how many windows
    cover each frame is kept as a difference array (+1 at a window's start, -1 after its end),
    so a batch costs O(batch) whatever the buffer length, and memory is the buffer plus one
    batch.

    Args:
        num_frames: F, frames of the buffer.
        trailing_shape: shape of one frame, e.g. (C,) or (J, D).
        width: W, frames per window.
        dtype, device: of the buffer.

    Shape:
        windows: (N, W, *trailing_shape); starts: (N,); average() returns (F, *trailing_shape).
    """

    def __init__(self, num_frames: int, trailing_shape: tuple[int, ...], width: int,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> None:
        self.width = width
        self.total = torch.zeros((num_frames, *trailing_shape), dtype=dtype, device=device)
        self._coverage_delta = torch.zeros(num_frames + width + 1, dtype=torch.int64,
                                           device=device)

    def add(self, windows: torch.Tensor, starts: torch.Tensor) -> OverlapAverage:
        """Add a batch of windows that start at ``starts``; returns self."""
        if windows.ndim < 2 or windows.shape[:2] != (starts.shape[0], self.width):
            raise ValueError(f"windows {tuple(windows.shape)} and starts {tuple(starts.shape)} "
                             f"must agree on N, and windows must be {self.width} frames wide")
        starts = starts.to(self.total.device)
        frames = window_frame_index(starts, self.width).reshape(-1)  # (N*W,)
        self.total.index_add_(0, frames, windows.reshape(-1, *self.total.shape[1:]))
        ones = torch.ones_like(starts)
        self._coverage_delta.index_add_(0, starts, ones)
        self._coverage_delta.index_add_(0, starts + self.width, -ones)
        return self

    def coverage(self) -> torch.Tensor:
        """Windows covering each frame. Shape: (F,) int64."""
        return self._coverage_delta.cumsum(0)[:len(self.total)]

    def average(self) -> torch.Tensor:
        """The mean of the windows at every frame (in place in the buffer: call it once).

        Raises:
            ValueError: when a frame is covered by no window.
        """
        counts = self.coverage()
        if bool((counts == 0).any()):
            raise ValueError("overlap_add: some frames are covered by no window")
        shape = (-1, *([1] * (self.total.ndim - 1)))
        return self.total.div_(counts.reshape(shape).to(self.total.dtype))


def overlap_add(windows: torch.Tensor, starts: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Average overlapping windows back into one sequence, without a loop over frames.

    Args:
        windows: window values, trailing axes flattened by the caller or not.
        starts: first frame of each window.
        num_frames: length of the output; every frame must be covered by a window.

    Shape:
        windows: (N, W, ...); starts: (N,); returns (num_frames, ...).
    """
    if windows.ndim < 2 or windows.shape[0] != starts.shape[0]:
        raise ValueError(f"windows {tuple(windows.shape)} and starts {tuple(starts.shape)} "
                         "must agree on N")
    accumulator = OverlapAverage(num_frames, tuple(windows.shape[2:]), windows.shape[1],
                                 windows.dtype, windows.device)
    return accumulator.add(windows, starts).average()
