"""Refining whole sequences with a window model: batched across sequences, overlap-added."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lib.data.normalize import WindowNormalizer
from lib.data.windows import pad_to_window, window_frame_index, window_starts


def _frame_buffer(sequences: list[np.ndarray], window: int,
                  step: int) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
    """Concatenate padded sequences and list every window start in the global frame index.

    Shape:
        returns frames (F, C), starts (N,), and per sequence (offset, real length).
    """
    parts, starts, spans = [], [], []
    offset = 0
    for seq in sequences:
        padded, _ = pad_to_window(seq, window)
        parts.append(padded.reshape(len(padded), -1))
        starts.append(window_starts(len(padded), window, step) + offset)
        spans.append((offset, len(seq)))
        offset += len(padded)
    frames = torch.from_numpy(np.concatenate(parts).astype(np.float32))
    return frames, torch.from_numpy(np.concatenate(starts)), spans


@torch.no_grad()
def refine_sequences(model: nn.Module, normalizer: WindowNormalizer, sequences: list[np.ndarray],
                     window: int, step: int = 1, batch_size: int = 1024,
                     device: torch.device | str = "cpu") -> list[np.ndarray]:
    """Run a window model over whole sequences of any length and average the overlaps.

    Windows of different sequences share batches, so short sequences do not waste model
    calls; memory holds the frames once plus one batch of windows.

    Shape:
        sequences: list of (T_i, J, D); returns a list of (T_i, J, D) float32.
    """
    if not sequences:
        return []
    model.eval()
    frames, starts, spans = _frame_buffer(sequences, window, step)
    frames_dev = frames.to(device)
    summed = torch.zeros_like(frames_dev)
    for chunk in torch.split(starts.to(device), batch_size):
        index = window_frame_index(chunk, window)  # (N, T)
        windows = frames_dev[index]  # (N, T, C)
        centre = normalizer.centre(windows)
        refined = normalizer.denormalize(model(normalizer.normalize(windows, centre)), centre)
        summed.index_add_(0, index.reshape(-1), refined.reshape(-1, refined.shape[-1]))
    counts = torch.bincount(window_frame_index(starts, window).reshape(-1),
                            minlength=len(frames)).to(summed)
    averaged = (summed / counts[:, None]).cpu().numpy()
    joint_shape = sequences[0].shape[1:]
    return [averaged[start:start + length].reshape(length, *joint_shape)
            for start, length in spans]
