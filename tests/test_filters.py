"""Tests for the classical smoothing filters."""

import numpy as np
import pytest

from lib.core.metrics import accel_errors
from lib.models.filters import FILTERS, build_filter, gaussian, one_euro, savgol


def _noisy_sines(seed: int = 0, frames: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    time = np.arange(frames)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, (1, 4, 3))
    period = rng.uniform(40, 80, (1, 4, 3))
    gt = 0.1 * np.sin(2 * np.pi * time / period + phase)  # metre-like units, (T, J, D)
    return gt + 0.01 * rng.standard_normal(gt.shape), gt


def test_filters_lower_accel_error():
    noisy, gt = _noisy_sines()
    before = accel_errors(noisy, gt).mean()
    ratios = {name: accel_errors(fn(noisy), gt).mean() / before for name, fn in FILTERS.items()}
    assert all(ratio < 1.0 for ratio in ratios.values()), ratios
    assert min(ratios.values()) <= 0.4, ratios


@pytest.mark.parametrize("name", sorted(FILTERS))
@pytest.mark.parametrize("frames", [1, 2, 3, 4, 5, 31, 200])
def test_constant_signal_unchanged_and_shape_kept(name, frames):
    level = np.random.default_rng(1).standard_normal((1, 5, 3))
    poses = np.repeat(level, frames, axis=0)
    out = FILTERS[name](poses)
    assert out.shape == poses.shape
    np.testing.assert_allclose(out, poses, atol=1e-6)


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filtering_is_per_channel(name):
    noisy, _ = _noisy_sines(seed=2, frames=64)
    out = FILTERS[name](noisy)
    for joint in range(noisy.shape[1]):
        for dim in range(noisy.shape[2]):
            single = FILTERS[name](noisy[:, joint : joint + 1, dim : dim + 1])
            np.testing.assert_allclose(out[:, joint, dim], single[:, 0, 0], atol=1e-12)


def test_short_sequences():
    noisy, _ = _noisy_sines(seed=3, frames=5)
    np.testing.assert_array_equal(savgol(noisy[:3]), noisy[:3])  # no window >= order + 2 fits
    assert not np.allclose(savgol(noisy), noisy)  # window shrinks 31 -> 5
    np.testing.assert_array_equal(gaussian(noisy[:2]), noisy[:2])
    assert not np.allclose(gaussian(noisy[:3]), noisy[:3])
    np.testing.assert_array_equal(one_euro(noisy[:1]), noisy[:1])


def test_dtype_kept():
    noisy, _ = _noisy_sines(seed=4, frames=40)
    for fn in FILTERS.values():
        assert fn(noisy.astype(np.float32)).dtype == np.float32


def test_build_filter():
    noisy, _ = _noisy_sines(seed=5, frames=40)
    np.testing.assert_array_equal(build_filter("savgol", window=11)(noisy),
                                  savgol(noisy, window=11))
    with pytest.raises(KeyError, match="gaussian.*oneeuro.*savgol"):
        build_filter("kalman")
    with pytest.raises(TypeError):
        build_filter("oneeuro", window=5)
    with pytest.raises(ValueError, match="odd"):
        savgol(noisy, window=10)
