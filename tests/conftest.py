"""Shared fixtures: tiny datasets written in the SmoothNet npz layout."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from lib.data.smoothnet_io import POSE_KEYS, split_paths

# Tests run tiny models, for which one thread is fastest; with a second thread, every small op
# waits at a barrier whenever another job holds the other core (smoke runs took 20x longer).
torch.set_num_threads(1)

# Sequence lengths of the hand-made aist training split (aist_3d, aist_train).
AIST_TRAIN_LENGTHS = [80, 64, 50, 40, 70]


def object_array(items: list) -> np.ndarray:
    """One entry per sequence, never stacked by numpy."""
    array = np.empty(len(items), dtype=object)
    for index, item in enumerate(items):
        array[index] = item
    return array


def imgnames(lengths: list[int]) -> np.ndarray:
    return object_array([np.array([f"seq{s}/{f:06d}.jpg" for f in range(n)])
                         for s, n in enumerate(lengths)])


def write_split(base: str, dataset: str, estimator: str, rep: str, split: str,
                detected: list[np.ndarray], groundtruth: list[np.ndarray],
                gt_extra: dict | None = None, det_extra: dict | None = None) -> tuple[str, str]:
    """Write one split; sequences are (T, J, D) and stored flattened as (T, J*D)."""
    key = POSE_KEYS[rep][0]
    det_path, gt_path = split_paths(base, dataset, estimator, rep, split)
    for path, seqs, extra in ((det_path, detected, det_extra), (gt_path, groundtruth, gt_extra)):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        arrays = {"imgname": imgnames([len(s) for s in seqs]),
                  key: object_array([s.reshape(s.shape[0], -1) if s.size else
                                     s.reshape(0, int(np.prod(s.shape[1:]))) for s in seqs])}
        arrays.update(extra or {})
        np.savez(path, **arrays)
    return det_path, gt_path


def random_walk(rng: np.random.Generator, frames: int, joints: int, dims: int) -> np.ndarray:
    """A smooth random motion, metres-scale."""
    base = rng.normal(0, 0.3, (1, joints, dims))
    drift = np.cumsum(rng.normal(0, 0.01, (frames, joints, dims)), axis=0)
    return (base + drift).astype(np.float32)


def make_pairs(rng: np.random.Generator, lengths: list[int], joints: int, dims: int,
               noise: float = 0.02) -> tuple[list[np.ndarray], list[np.ndarray]]:
    gts = [random_walk(rng, n, joints, dims) for n in lengths]
    dets = [(g + rng.normal(0, noise, g.shape)).astype(np.float32) for g in gts]
    return dets, gts


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def aist_3d(tmp_path, rng):
    """A hand-made aist 3D pair (14 LSP joints) for train and test."""
    base = str(tmp_path / "poses")
    for split, lengths in (("train", AIST_TRAIN_LENGTHS), ("test", [60, 20, 45])):
        dets, gts = make_pairs(rng, lengths, 14, 3)
        write_split(base, "aist", "vibe", "3D", split, dets, gts)
    return base


@pytest.fixture(scope="module")
def aist_train(tmp_path_factory) -> str:
    """aist_3d's training pair alone, shared by one module's training runs."""
    base = str(tmp_path_factory.mktemp("aist_train") / "poses")
    dets, gts = make_pairs(np.random.default_rng(0), AIST_TRAIN_LENGTHS, 14, 3)
    write_split(base, "aist", "vibe", "3D", "train", dets, gts)
    return base


@pytest.fixture(params=("raises", "wrong"))
def broken_linear_op(request, monkeypatch):
    """The private oneDNN op of lib/models/cpu_fast.py made to raise, or to answer wrongly."""
    from torch.nn import functional as F  # noqa: N812

    import lib.models.cpu_fast as cpu_fast

    def raising(*args):
        raise RuntimeError("no such kernel")

    def wrong(x, weight, bias, *args):
        return F.linear(x, weight, bias) + 1.0

    monkeypatch.setattr(cpu_fast, "_LINEAR_OP", raising if request.param == "raises" else wrong)
    cpu_fast._op_works.cache_clear()
    yield request.param
    cpu_fast._op_works.cache_clear()
