"""Property tests: the loader, windows with overlap-add, and the metrics on random shapes.

Each property runs on a few dozen hypothesis examples (``deadline=None``: the two shared cores
make single examples slow at times); the whole file takes seconds.
"""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.core.evaluator import Evaluator
from lib.core.metrics import mpjpe, pa_mpjpe, procrustes_align, root_align
from lib.data.smoothnet_io import DataFormatError, load_split
from lib.data.windows import overlap_add, slide_windows
from tests.conftest import write_split

# aist data: the 14-joint LSP skeleton, 3D.
_AIST_JOINTS = 14
_FAST = settings(max_examples=40, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow])


def _sequences(seed: int, lengths: list[int], joints: int, dims: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.5, (n, joints, dims)).astype(np.float32) for n in lengths]


# ---------------------------------------------------------------------------------------------
# Loader
# ---------------------------------------------------------------------------------------------
@_FAST
@given(lengths=st.lists(st.integers(1, 40), min_size=1, max_size=5),
       seed=st.integers(0, 2**16))
def test_valid_sequence_sets_round_trip_through_npz(lengths, seed):
    detected = _sequences(seed, lengths, _AIST_JOINTS, 3)
    groundtruth = _sequences(seed + 1, lengths, _AIST_JOINTS, 3)
    with tempfile.TemporaryDirectory() as base:
        write_split(base, "aist", "vibe", "3D", "test", detected, groundtruth)
        seq_set = load_split(base, "aist", "vibe", "3D", "test")
    assert [len(seq) for seq in seq_set.groundtruth] == lengths
    for read, written in zip(seq_set.detected + seq_set.groundtruth, detected + groundtruth):
        np.testing.assert_array_equal(read, written)


@_FAST
@given(data=st.data(), lengths=st.lists(st.integers(1, 30), min_size=1, max_size=4),
       bad_value=st.sampled_from([np.nan, np.inf, -np.inf]), side=st.sampled_from(["det", "gt"]))
def test_nonfinite_value_is_refused_naming_sequence_and_frame(data, lengths, bad_value, side):
    detected = _sequences(0, lengths, _AIST_JOINTS, 3)
    groundtruth = _sequences(1, lengths, _AIST_JOINTS, 3)
    sequence = data.draw(st.integers(0, len(lengths) - 1), label="sequence")
    frame = data.draw(st.integers(0, lengths[sequence] - 1), label="frame")
    joint = data.draw(st.integers(0, _AIST_JOINTS - 1), label="joint")
    target = detected if side == "det" else groundtruth
    target[sequence][frame, joint, data.draw(st.integers(0, 2), label="axis")] = bad_value
    with tempfile.TemporaryDirectory() as base:
        write_split(base, "aist", "vibe", "3D", "test", detected, groundtruth)
        with pytest.raises(DataFormatError) as info:
            load_split(base, "aist", "vibe", "3D", "test")
    message = str(info.value)
    assert f"sequence {sequence}:" in message and f"first at frame {frame};" in message
    assert ("detected" if side == "det" else "groundtruth") in message


# ---------------------------------------------------------------------------------------------
# Windows and overlap-add
# ---------------------------------------------------------------------------------------------
@_FAST
@given(frames=st.integers(1, 80), window=st.integers(1, 40), data=st.data(),
       channels=st.integers(1, 4))
def test_slide_then_overlap_add_is_the_identity(frames, window, data, channels):
    """Any length (also shorter than the window), window and step <= window."""
    step = data.draw(st.integers(1, window), label="step")
    sequence = np.random.default_rng(frames * 131 + window).normal(size=(frames, channels))
    windows, starts = slide_windows(sequence, window, step)
    assert windows.shape[1] == window
    padded_length = max(frames, window)
    merged = overlap_add(torch.from_numpy(windows), torch.from_numpy(starts), padded_length)
    np.testing.assert_allclose(merged.numpy()[:frames], sequence, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------
_shapes = st.tuples(st.integers(1, 20), st.integers(3, 8), st.sampled_from([2, 3]))


def _pair(shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape), rng.normal(size=shape)


@_FAST
@given(shape=_shapes, seed=st.integers(0, 2**16), roots=st.sampled_from([(), (0,), (0, 1)]))
def test_mpjpe_is_zero_on_itself_and_symmetric(shape, seed, roots):
    pred, gt = _pair(shape, seed)
    np.testing.assert_allclose(mpjpe(gt, gt, roots), 0.0, atol=1e-12)
    np.testing.assert_allclose(mpjpe(pred, gt, roots), mpjpe(gt, pred, roots), atol=1e-12)
    assert (mpjpe(pred, gt, roots) >= 0).all()


@_FAST
@given(shape=_shapes, seed=st.integers(0, 2**16), roots=st.sampled_from([(0,), (0, 1)]))
def test_translation_per_frame_is_ignored_with_root_alignment_only(shape, seed, roots):
    pred, gt = _pair(shape, seed)
    rng = np.random.default_rng(seed + 7)
    shift = rng.normal(size=(shape[0], 1, shape[2])) * 10 + 1.0  # (T, 1, D), never ~0
    np.testing.assert_allclose(mpjpe(pred + shift, gt, roots), mpjpe(pred, gt, roots),
                               atol=1e-9)
    np.testing.assert_allclose(root_align(gt + shift, roots), root_align(gt, roots), atol=1e-9)
    # Without alignment a translation of x against itself is exactly its length.
    np.testing.assert_allclose(mpjpe(gt + shift, gt), np.linalg.norm(shift[:, 0], axis=-1),
                               rtol=1e-9)


@_FAST
@given(shape=_shapes, seed=st.integers(0, 2**16))
def test_procrustes_alignment_minimises_the_squared_error(shape, seed):
    """Procrustes is optimal over rotation, scale and translation in the summed squared error.

    (Not in the mean Euclidean error: PA-MPJPE may exceed MPJPE on a frame, rarely.)
    """
    pred, gt = _pair(shape, seed)
    aligned = procrustes_align(pred, gt)
    squared = ((aligned - gt) ** 2).sum(axis=(1, 2))  # (T,)
    assert (squared <= ((pred - gt) ** 2).sum(axis=(1, 2)) + 1e-9).all()
    # ... and no worse than the unaligned prediction shifted onto the target's centroid.
    centred = pred - pred.mean(axis=1, keepdims=True) + gt.mean(axis=1, keepdims=True)
    assert (squared <= ((centred - gt) ** 2).sum(axis=(1, 2)) + 1e-9).all()
    np.testing.assert_allclose(pa_mpjpe(gt, gt), 0.0, atol=1e-9)


@_FAST
@given(shape=_shapes, seed=st.integers(0, 2**16), data=st.data())
def test_masked_frames_do_not_enter_the_metrics(shape, seed, data):
    frames, joints, _ = shape
    pred, gt = _pair(shape, seed)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=frames, max_size=frames)))
    if not mask.any():
        mask[data.draw(st.integers(0, frames - 1))] = True
    garbage = pred.copy()
    garbage[~mask] = 1e6  # values at padded frames must not matter
    names = tuple(f"j{j}" for j in range(joints))
    masked, subset = Evaluator((0,), 1.0, names), Evaluator((0,), 1.0, names)
    masked.process(garbage, gt, mask=mask)
    subset.process(pred[mask], gt[mask])
    got, want = masked.summarize(), subset.summarize()
    for key in ("mpjpe", "pa_mpjpe"):
        assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key
