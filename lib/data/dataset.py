"""Training windows over all sequences of one or more datasets, with optional fresh errors."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from lib.data.windows import pad_to_window, window_frame_index, window_starts

# Maps ground-truth windows (B, T, J, D) and a generator to simulated estimates of that shape.
Augmenter = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class PoseWindowDataset(Dataset):
    """Every window of every sequence (the last one included) as one training sample.

    Sequences are stored back to back in one frame buffer, each edge-padded to at least one
    window, so a batch is gathered with a single fancy index and no Python loop over windows.

    Args:
        detected: estimator output per sequence, each (T, J, D).
        groundtruth: ground truth per sequence, each (T, J, D).
        window: frames per window.
        stride: frames between consecutive window starts.
        augmenter: draws simulated estimates from ground-truth windows (None = off).
        augment_mode: 'none', 'replace' (all inputs simulated) or 'mix' (half of each batch).
    """

    def __init__(self, detected: list[np.ndarray], groundtruth: list[np.ndarray], window: int,
                 stride: int = 1, augmenter: Augmenter | None = None,
                 augment_mode: str = "none") -> None:
        if augment_mode not in ("none", "replace", "mix"):
            raise ValueError(f"augment_mode {augment_mode!r} is not none, replace or mix")
        if augment_mode != "none" and augmenter is None:
            raise ValueError(f"augment_mode {augment_mode!r} needs an augmenter")
        if not groundtruth:
            raise ValueError("PoseWindowDataset needs at least one sequence")
        self.window = window
        self.joint_shape = groundtruth[0].shape[1:]
        self.augmenter = augmenter
        self.augment_mode = augment_mode
        self._build_buffers(detected, groundtruth, stride)

    def _build_buffers(self, detected: list[np.ndarray], groundtruth: list[np.ndarray],
                       stride: int) -> None:
        det_parts, gt_parts, mask_parts, starts = [], [], [], []
        offset = 0
        for det, gt in zip(detected, groundtruth):
            if det.shape[1:] != self.joint_shape or gt.shape != det.shape:
                raise ValueError(f"sequence shapes {det.shape} / {gt.shape} differ from the "
                                 f"first sequence's (T, {self.joint_shape}); joint training "
                                 "needs one joint layout")
            det_pad, mask = pad_to_window(det, self.window)
            gt_pad, _ = pad_to_window(gt, self.window)
            det_parts.append(det_pad.reshape(len(det_pad), -1))
            gt_parts.append(gt_pad.reshape(len(gt_pad), -1))
            mask_parts.append(mask)
            starts.append(window_starts(len(det_pad), self.window, stride) + offset)
            offset += len(det_pad)
        self.detected = torch.from_numpy(np.concatenate(det_parts).astype(np.float32))
        self.groundtruth = torch.from_numpy(np.concatenate(gt_parts).astype(np.float32))
        self.mask = torch.from_numpy(np.concatenate(mask_parts))
        self.starts = torch.from_numpy(np.concatenate(starts))

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([index])
        return {key: value[0] for key, value in batch.items()}

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """A whole batch at once (torch's DataLoader calls this when it exists).

        Shape:
            returns input and target (B, T, C) float32, mask (B, T) bool.
        """
        frames = window_frame_index(self.starts[torch.as_tensor(indices)], self.window)
        batch = {"input": self.detected[frames], "target": self.groundtruth[frames],
                 "mask": self.mask[frames]}
        if self.augment_mode != "none":
            batch["input"] = self._augment(batch["input"], batch["target"])
        return batch

    def _augment(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Replace all or half of the inputs by fresh simulated errors on the targets."""
        count = len(targets) if self.augment_mode == "replace" else len(targets) // 2
        if count == 0:
            return inputs
        # Seeded from torch's generator so runs (and resumed runs) are reproducible.
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
        picked = rng.choice(len(targets), size=count, replace=False)
        gt = targets[picked].numpy().reshape(count, self.window, *self.joint_shape)
        simulated = self.augmenter(gt, rng).reshape(count, self.window, -1)
        inputs = inputs.clone()
        inputs[torch.from_numpy(picked)] = torch.from_numpy(simulated.astype(np.float32))
        return inputs


def collate_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Batches come ready from ``__getitems__``; the DataLoader must not re-collate them."""
    return batch
