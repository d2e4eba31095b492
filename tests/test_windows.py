"""Windowing, padding and overlap-add."""

import numpy as np
import pytest
import torch

from lib.data.windows import (
    OverlapAverage,
    overlap_add,
    pad_to_window,
    slide_windows,
    window_starts,
)


def naive_overlap_add(windows: np.ndarray, starts: np.ndarray, num_frames: int) -> np.ndarray:
    total = np.zeros((num_frames, *windows.shape[2:]))
    count = np.zeros(num_frames)
    for window, start in zip(windows, starts):
        for offset, frame in enumerate(window):
            total[start + offset] += frame
            count[start + offset] += 1
    return total / count.reshape(-1, *([1] * (windows.ndim - 2)))


@pytest.mark.parametrize("frames,window,step", [(100, 32, 1), (100, 32, 7), (32, 32, 5),
                                                (33, 32, 32), (10, 32, 1)])
def test_starts_cover_every_frame_and_include_last(frames, window, step):
    starts = window_starts(frames, window, step)
    assert starts[0] == 0
    assert starts[-1] == max(frames - window, 0)
    covered = np.zeros(max(frames, window), dtype=bool)
    for start in starts:
        covered[start:start + window] = True
    assert covered.all()
    assert np.all(np.diff(starts) <= step) and np.all(np.diff(starts) > 0)


def test_overlap_add_of_unchanged_windows_is_identity():
    seq = np.random.default_rng(0).normal(size=(97, 5, 3)).astype(np.float32)
    windows, starts = slide_windows(seq, 16, 3)
    out = overlap_add(torch.from_numpy(windows), torch.from_numpy(starts), len(seq))
    np.testing.assert_allclose(out.numpy(), seq, atol=1e-6)


def test_overlap_add_equals_naive_loop():
    rng = np.random.default_rng(1)
    windows = rng.normal(size=(12, 8, 4))
    starts = np.array([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22])
    fast = overlap_add(torch.from_numpy(windows), torch.from_numpy(starts), 30)
    np.testing.assert_allclose(fast.numpy(), naive_overlap_add(windows, starts, 30), atol=1e-12)


def test_overlap_average_batch_by_batch_equals_naive_loop():
    rng = np.random.default_rng(2)
    windows = rng.normal(size=(13, 8, 2, 3))
    starts = np.sort(rng.integers(0, 23, size=13))
    starts[0], starts[-1] = 0, 22  # cover both ends
    accumulator = OverlapAverage(30, (2, 3), 8, torch.float64)
    for part in np.array_split(np.arange(13), 4):  # batches of 4, 3, 3, 3 windows
        accumulator.add(torch.from_numpy(windows[part]), torch.from_numpy(starts[part]))
    expected_coverage = [np.sum((starts <= f) & (f < starts + 8)) for f in range(30)]
    assert accumulator.coverage().tolist() == expected_coverage
    np.testing.assert_allclose(accumulator.average().numpy(),
                               naive_overlap_add(windows, starts, 30), atol=1e-12)


def test_overlap_average_rejects_a_window_of_another_width():
    with pytest.raises(ValueError, match="8 frames wide"):
        OverlapAverage(30, (3,), 8).add(torch.zeros(2, 7, 3), torch.tensor([0, 1]))


def test_overlap_add_rejects_uncovered_frames():
    windows = torch.zeros(1, 4, 2)
    with pytest.raises(ValueError, match="covered by no window"):
        overlap_add(windows, torch.tensor([0]), 6)


def test_short_sequence_is_edge_padded_and_masked():
    seq = np.arange(5, dtype=np.float32).reshape(5, 1, 1)
    padded, mask = pad_to_window(seq, 8)
    assert padded.shape == (8, 1, 1)
    assert mask.tolist() == [True] * 5 + [False] * 3
    assert np.all(padded[5:] == seq[-1])
