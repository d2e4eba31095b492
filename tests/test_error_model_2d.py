"""2D augmentation: the 3D error model through an orthographic view, in pixels."""

import numpy as np

from lib.data.error_model_2d import pixels_per_metre, simulate_estimate_batch_2d
from lib.data.skeletons import get_skeleton


def test_errors_are_in_pixels_and_scale_with_the_person(rng):
    skeleton = get_skeleton("lsp14")
    body = rng.normal(0, 1, (1, 1, 14, 2)) * np.array([40.0, 170.0])  # ~1.7 m tall at 100 px/m
    gt = np.repeat(np.repeat(body, 32, axis=1), 8, axis=0) + 500.0  # (8, 32, 14, 2)
    small = simulate_estimate_batch_2d(gt, skeleton.parents, 30.0, rng, 1.0, skeleton.left_right)
    assert small.shape == gt.shape and small.dtype == np.float32
    big_gt = (gt - 500.0) * 4 + 500.0
    big = simulate_estimate_batch_2d(big_gt, skeleton.parents, 30.0, rng, 1.0)
    assert np.abs(big - big_gt).mean() > 2 * np.abs(small - gt).mean()
    assert np.allclose(pixels_per_metre(big_gt), 4 * pixels_per_metre(gt))


def test_same_seed_same_errors():
    gt = np.random.default_rng(1).uniform(0, 640, (2, 16, 15, 2))
    parents = get_skeleton("jhmdb15").parents
    first = simulate_estimate_batch_2d(gt, parents, 30.0, np.random.default_rng(3))
    second = simulate_estimate_batch_2d(gt, parents, 30.0, np.random.default_rng(3))
    assert np.array_equal(first, second)
