"""Weaker simulated errors on a share of the training windows (TRAIN.AUGMENT_WEAK)."""

from __future__ import annotations

import numpy as np
import pytest

from lib.core.builders import build_augmenter
from lib.core.config import get_cfg_defaults
from lib.data.error_scaling import shrink_errors
from lib.data.skeletons import get_skeleton
from lib.errors import ConfigError
from tests.test_error_model import augmented_windows


def _windows(count: int = 400, frames: int = 8, joints: int = 5, dims: int = 3):
    rng = np.random.default_rng(3)
    targets = rng.normal(0, 0.3, (count, frames, joints, dims)).astype(np.float32)
    estimates = (targets + rng.normal(0, 0.1, targets.shape)).astype(np.float32)
    return estimates, targets


def _factors(shrunk: np.ndarray, estimates: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Each window's error size after shrinking over before (one number per window)."""
    axes = tuple(range(1, estimates.ndim))
    return (np.linalg.norm(shrunk - targets, axis=-1).sum(axis=axes[:-1])
            / np.linalg.norm(estimates - targets, axis=-1).sum(axis=axes[:-1]))


def test_a_share_of_windows_keeps_its_error_direction_at_a_smaller_size():
    estimates, targets = _windows()
    shrunk = shrink_errors(estimates, targets, np.random.default_rng(0), 0.5, 0.05)
    assert shrunk.dtype == np.float32 and shrunk.shape == estimates.shape
    factors = _factors(shrunk, estimates, targets)
    changed = factors < 1 - 1e-6
    assert 0.4 < changed.mean() < 0.6
    assert factors.min() >= 0.05 - 1e-4 and factors.max() <= 1 + 1e-5
    # Log-uniform in [0.05, 1]: the median factor of the changed windows is sqrt(0.05) = 0.22.
    assert np.median(factors[changed]) == pytest.approx(0.05 ** 0.5, abs=0.05)
    # Each changed window's error is the old one times its factor, at every joint and frame.
    expected = targets + factors[:, None, None, None] * (estimates - targets)
    np.testing.assert_allclose(shrunk[changed], expected[changed], atol=1e-6)
    np.testing.assert_array_equal(shrunk[~changed], estimates[~changed])


def test_no_share_returns_the_estimates_and_draws_nothing():
    estimates, targets = _windows(count=10)
    rng = np.random.default_rng(0)
    assert shrink_errors(estimates, targets, rng, 0.0, 0.05) is estimates
    assert rng.random() == np.random.default_rng(0).random()


def test_every_window_shrinks_at_share_one_and_none_below_the_floor():
    estimates, targets = _windows(count=50)
    factors = _factors(shrink_errors(estimates, targets, np.random.default_rng(1), 1.0, 0.5),
                       estimates, targets)
    assert (factors < 1).all() and factors.min() >= 0.5 - 1e-4


@pytest.mark.parametrize("share, floor, message", ((1.5, 0.05, "share"), (0.5, 0.0, "floor"),
                                                   (0.5, 1.5, "floor")))
def test_out_of_range_arguments_are_refused(share, floor, message):
    estimates, targets = _windows(count=2)
    with pytest.raises(ValueError, match=message):
        shrink_errors(estimates, targets, np.random.default_rng(0), share, floor)


@pytest.mark.parametrize("rep", ("3D", "2D"))
def test_augmenter_shrinks_the_simulated_errors_of_a_share(rep):
    def simulated(share: float) -> tuple[np.ndarray, np.ndarray]:
        return augmented_windows(rep, ["TRAIN.AUGMENT", "replace", "TRAIN.AUGMENT_WEAK",
                                       str(share)], count=64)

    gt, plain = simulated(0.0)
    weak = simulated(0.5)[1]
    # The errors are drawn first, with the same draws: shrinking only scales them.
    factors = _factors(weak, plain, gt)
    changed = factors < 1 - 1e-4
    assert 0.3 < changed.mean() < 0.7
    np.testing.assert_allclose(weak[~changed], plain[~changed], rtol=1e-5, atol=1e-4)
    assert factors.min() >= 0.05 - 1e-3


@pytest.mark.parametrize("augment, rep", (("replace", "rot"), ("none", "3D")))
def test_augmenter_refuses_weak_errors_it_cannot_shrink(augment, rep):
    cfg = get_cfg_defaults()
    cfg.merge_from_list(["TRAIN.AUGMENT", augment, "TRAIN.AUGMENT_WEAK", "0.5"])
    with pytest.raises(ConfigError, match="TRAIN.AUGMENT_WEAK 0"):
        build_augmenter(cfg, get_skeleton("bandai21"), rep, "sample")
