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
    width = windows.shape[1]
    frames = window_frame_index(starts.to(windows.device), width).reshape(-1)  # (N*W,)
    flat = windows.reshape(-1, *windows.shape[2:])  # (N*W, ...)
    total = torch.zeros((num_frames, *windows.shape[2:]), dtype=windows.dtype,
                        device=windows.device).index_add_(0, frames, flat)
    counts = torch.bincount(frames, minlength=num_frames)[:num_frames]
    if bool((counts == 0).any()):
        raise ValueError("overlap_add: some frames are covered by no window")
    return total / counts.reshape(-1, *([1] * (windows.ndim - 2))).to(windows.dtype)
