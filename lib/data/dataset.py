"""Training windows over all sequences of one or more datasets, with optional fresh errors.

Augmentation is a pure function of (seed, epoch, the batch's window indices): the training
sampler yields ``(epoch, index)`` keys (:class:`EpochKeySampler`), so a batch gets the same
simulated errors in the main process or in any worker, persistent or not, and a resumed run
draws exactly the errors of an uninterrupted one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from lib.data.mirroring import mirror_windows
from lib.data.turning import turn_windows
from lib.data.windows import pad_to_window, window_frame_index, window_starts

# Maps ground-truth windows (B, T, J, D) and a generator to simulated estimates of that shape.
Augmenter = Callable[[np.ndarray, np.random.Generator], np.ndarray]
# Maps detected and ground-truth windows (B, T, J, D) and a generator to both with their joints
# moved alike (other bodies, other poses).
JointMover = Callable[[np.ndarray, np.ndarray, np.random.Generator],
                      tuple[np.ndarray, np.ndarray]]


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
        seed: with the epoch and the window indices, seeds each batch's augmentation.
        mirror_probability: chance that a window (input and target) is mirrored left/right
            before any simulated errors are drawn (:mod:`lib.data.mirroring`); 0 = never.
        mirror_permutation: the mirror image's joint order, needed when the probability is
            above 0 (:func:`lib.data.mirroring.left_right_permutation`).
        turn_probability: chance that a window (input and target) is turned about the
            vertical y axis by an angle uniform over the circle, after mirroring
            (:mod:`lib.data.turning`; 3D joint positions).
        reshape_probability: chance that a window (input and target) gets another body, after
            mirroring and turning, before any simulated errors (:mod:`lib.data.body_reshaping`).
        body_reshaper: ``(inputs, targets, rng) -> (inputs, targets)`` on (B, T, J, D)
            arrays, needed when the probability is above 0.
        pose_probability: chance that a window (input and target) gets other joint angles,
            after body reshaping, before any simulated errors
            (:mod:`lib.data.pose_perturbation`).
        pose_perturber: like ``body_reshaper``, needed when ``pose_probability`` is above 0.
        reverse_probability: chance that a window (input, target and mask) is played
            backwards, first of all changes and before any simulated errors are drawn, so that
            simulated errors keep their direction in time (a freeze still holds an earlier
            frame); a stored input that keeps its place (``mix``) is reversed with its errors.
    """

    def __init__(self, detected: list[np.ndarray], groundtruth: list[np.ndarray], window: int,
                 stride: int = 1, augmenter: Augmenter | None = None,
                 augment_mode: str = "none", seed: int = 0, mirror_probability: float = 0.0,
                 mirror_permutation: torch.Tensor | None = None,
                 turn_probability: float = 0.0, reshape_probability: float = 0.0,
                 body_reshaper: JointMover | None = None, pose_probability: float = 0.0,
                 pose_perturber: JointMover | None = None,
                 reverse_probability: float = 0.0) -> None:
        if augment_mode not in ("none", "replace", "mix"):
            raise ValueError(f"augment_mode {augment_mode!r} is not none, replace or mix")
        if augment_mode != "none" and augmenter is None:
            raise ValueError(f"augment_mode {augment_mode!r} needs an augmenter")
        probabilities = {"mirror_probability": mirror_probability,
                         "turn_probability": turn_probability,
                         "reshape_probability": reshape_probability,
                         "pose_probability": pose_probability,
                         "reverse_probability": reverse_probability}
        for name, probability in probabilities.items():
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"{name} {probability} is not in [0, 1]")
        if mirror_probability > 0 and mirror_permutation is None:
            raise ValueError("mirroring needs the mirror image's joint order (mirror_permutation)")
        if reshape_probability > 0 and body_reshaper is None:
            raise ValueError("body reshaping needs a body_reshaper")
        if pose_probability > 0 and pose_perturber is None:
            raise ValueError("pose perturbation needs a pose_perturber")
        if not groundtruth:
            raise ValueError("PoseWindowDataset needs at least one sequence")
        if turn_probability > 0 and groundtruth[0].shape[-1] != 3:
            raise ValueError("turning needs 3D joint positions (x, y, z per joint)")
        self.window = window
        self.joint_shape = groundtruth[0].shape[1:]
        self.augmenter = augmenter
        self.augment_mode = augment_mode
        self.seed = seed
        self.mirror_probability = mirror_probability
        self.mirror_permutation = mirror_permutation
        self.turn_probability = turn_probability
        self.reshape_probability = reshape_probability
        self.body_reshaper = body_reshaper
        self.pose_probability = pose_probability
        self.pose_perturber = pose_perturber
        self.reverse_probability = reverse_probability
        # Whether a batch can differ from the stored windows; new augmentations join
        # ``probabilities`` above, which validates them too.
        self._changes_windows = augment_mode != "none" or any(probabilities.values())
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

    def __getitems__(self, keys: Sequence[int | tuple[int, int]]) -> dict[str, torch.Tensor]:
        """A whole batch at once (torch's DataLoader calls this when it exists).

        Args:
            keys: window indices, or ``(epoch, index)`` pairs from :class:`EpochKeySampler`
                (plain indices count as epoch 0).

        Shape:
            returns input and target (B, T, C) float32, mask (B, T) bool.
        """
        epoch, indices = split_keys(keys)
        frames = window_frame_index(self.starts[torch.as_tensor(indices)], self.window)
        batch = {"input": self.detected[frames], "target": self.groundtruth[frames],
                 "mask": self.mask[frames]}
        if not self._changes_windows:
            return batch
        rng = self._batch_rng(epoch, indices)
        if self.reverse_probability > 0:
            self._reverse(batch, rng)
        if self.mirror_probability > 0:
            self._mirror(batch, rng)
        if self.turn_probability > 0:
            self._turn(batch, rng)
        if self.reshape_probability > 0:
            self._move_joints(batch, self.reshape_probability, self.body_reshaper, rng)
        if self.pose_probability > 0:
            self._move_joints(batch, self.pose_probability, self.pose_perturber, rng)
        if self.augment_mode != "none":
            batch["input"] = self._augment(batch["input"], batch["target"], rng)
        return batch

    @staticmethod
    def _pick(batch: dict[str, torch.Tensor], probability: float,
              rng: np.random.Generator) -> torch.Tensor:
        """Indices of the batch's windows that an augmentation of this probability changes.

        Shape:
            returns (K,) int64, K <= B.
        """
        return torch.from_numpy(np.flatnonzero(rng.random(len(batch["target"])) < probability))

    def _reverse(self, batch: dict[str, torch.Tensor], rng: np.random.Generator) -> None:
        """Play a random subset of the batch's windows backwards (input, target, mask), in place."""
        picked = self._pick(batch, self.reverse_probability, rng)
        if len(picked):
            for key in ("input", "target", "mask"):
                batch[key][picked] = batch[key][picked].flip(1)

    def _mirror(self, batch: dict[str, torch.Tensor], rng: np.random.Generator) -> None:
        """Mirror a random subset of the batch's windows, input and target alike, in place."""
        picked = self._pick(batch, self.mirror_probability, rng)
        if len(picked):
            batch["input"][picked], batch["target"][picked] = mirror_windows(
                batch["input"][picked], batch["target"][picked], self.mirror_permutation,
                self.joint_shape[-1])

    def _turn(self, batch: dict[str, torch.Tensor], rng: np.random.Generator) -> None:
        """Turn a random subset of the batch's windows about the vertical axis, in place."""
        picked = self._pick(batch, self.turn_probability, rng)
        if len(picked):
            angles = torch.from_numpy(rng.uniform(-np.pi, np.pi, len(picked)))
            batch["input"][picked], batch["target"][picked] = turn_windows(
                batch["input"][picked], batch["target"][picked], angles)

    def _move_joints(self, batch: dict[str, torch.Tensor], probability: float,
                     move: JointMover, rng: np.random.Generator) -> None:
        """Apply ``move`` (other bodies, other poses) to a random subset of the batch's windows,
        input and target alike, in place."""
        picked = self._pick(batch, probability, rng)
        if not len(picked):
            return
        shape = (len(picked), self.window, *self.joint_shape)
        inputs, targets = move(batch["input"][picked].numpy().reshape(shape),
                               batch["target"][picked].numpy().reshape(shape), rng)
        batch["input"][picked] = torch.from_numpy(inputs.reshape(len(picked), self.window, -1)
                                                  .astype(np.float32))
        batch["target"][picked] = torch.from_numpy(targets.reshape(len(picked), self.window, -1)
                                                   .astype(np.float32))

    def _batch_rng(self, epoch: int, indices: list[int]) -> np.random.Generator:
        """The batch's own generator: a function of (seed, epoch, window indices) only."""
        # A digest of the indices: seeding from them one by one costs 10x more per batch.
        digest = hashlib.blake2b(np.asarray(indices, dtype=np.int64).tobytes(), digest_size=16)
        return np.random.default_rng([self.seed % 2**64, epoch,
                                      int.from_bytes(digest.digest(), "little")])

    def _augment(self, inputs: torch.Tensor, targets: torch.Tensor,
                 rng: np.random.Generator) -> torch.Tensor:
        """Replace all or half of the inputs by fresh simulated errors on the targets."""
        count = len(targets) if self.augment_mode == "replace" else len(targets) // 2
        if count == 0:
            return inputs
        picked = rng.choice(len(targets), size=count, replace=False)
        gt = targets[picked].numpy().reshape(count, self.window, *self.joint_shape)
        simulated = self.augmenter(gt, rng).reshape(count, self.window, -1)
        inputs = inputs.clone()
        inputs[torch.from_numpy(picked)] = torch.from_numpy(simulated.astype(np.float32))
        return inputs


def split_keys(keys: Sequence[int | tuple[int, int]]) -> tuple[int, list[int]]:
    """The epoch and window indices of a batch's keys (plain indices: epoch 0)."""
    if not keys or not isinstance(keys[0], tuple):
        return 0, [int(key) for key in keys]
    epochs = {epoch for epoch, _ in keys}
    if len(epochs) != 1:
        raise ValueError(f"a batch mixes epochs {sorted(epochs)}")
    return epochs.pop(), [int(index) for _, index in keys]


class EpochKeySampler(Sampler):
    """Wraps a sampler and yields ``(epoch, index)`` keys for :class:`PoseWindowDataset`.

    The epoch travels with the indices from the main process, so workers (persistent ones
    too, whose dataset copies never see a ``set_epoch``) know it without shared state.
    """

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (and the wrapped sampler's permutation when it has one)."""
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return ((epoch, int(index)) for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def collate_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Batches come ready from ``__getitems__``; the DataLoader must not re-collate them."""
    return batch
