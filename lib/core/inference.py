"""Refining whole sequences with a window model: batched across sequences, overlap-added."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lib.core.acceleration import autocast
from lib.data.normalize import WindowNormalizer
from lib.data.windows import OverlapAverage, pad_to_window, window_frame_index, window_starts


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


def _refine_batch(model: nn.Module, normalizer: WindowNormalizer, windows: torch.Tensor,
                  amp: bool) -> torch.Tensor:
    """Normalise, refine (in bf16 autocast when ``amp``) and map back to data units.

    Shape:
        windows: (N, T, C); returns (N, T, C) in the dtype of ``windows``.
    """
    stats = normalizer.centre(windows)
    with autocast(windows.device, amp):
        refined = model(normalizer.normalize(windows, stats))
    return normalizer.denormalize(refined.to(windows.dtype), stats)


@torch.no_grad()
def refine_sequences(model: nn.Module, normalizer: WindowNormalizer, sequences: list[np.ndarray],
                     window: int, step: int = 1, batch_size: int = 1024,
                     device: torch.device | str = "cpu", amp: bool = False) -> list[np.ndarray]:
    """Run a window model over whole sequences of any length and average the overlaps.

    Windows of different sequences share batches, so short sequences do not waste model
    calls. Windows are cut from one frame buffer batch by batch and added into a running sum,
    so memory holds the frames twice (input and sum) plus one batch of windows, whatever the
    sequence lengths.

    Args:
        model: a window model, (B, T, C) -> (B, T, C).
        normalizer: per-window normalisation the model was trained with.
        sequences: the input sequences.
        window: T.
        step: frames between consecutive window starts (the last window is always included).
        batch_size: windows per model call.
        device: where the model runs.
        amp: run the model under bf16 autocast.

    Shape:
        sequences: list of (T_i, J, D); returns a list of (T_i, J, D) float32.
    """
    if not sequences:
        return []
    model.eval()
    frames, starts, spans = _frame_buffer(sequences, window, step)
    device = torch.device(device)
    if device.type == "cuda":
        frames = frames.pin_memory()
    frames_dev = frames.to(device, non_blocking=True)
    starts_dev = starts.to(device, non_blocking=True)
    summed = OverlapAverage(len(frames), frames.shape[1:], window, frames.dtype, device)
    for chunk in torch.split(starts_dev, batch_size):
        windows = frames_dev[window_frame_index(chunk, window)]  # (N, T, C)
        summed.add(_refine_batch(model, normalizer, windows, amp), chunk)
    averaged = summed.average().cpu().numpy()
    joint_shape = sequences[0].shape[1:]
    return [averaged[start:start + length].reshape(length, *joint_shape)
            for start, length in spans]
