"""Simulated estimator errors on 2D keypoints: the 3D error model seen through an orthographic view.

2D ground truth has no depth, so each window is lifted to a flat 3D pose (depth 0, pixels
converted to metres with an assumed body height), given the 3D error model of
lib/data/error_model.py (rotation drift down the chain, occlusion, swaps, scale wobble, global
offset, keypoint jitter) and projected back by dropping the depth. Rotations out of the image
plane then foreshorten limbs, as depth errors of a monocular estimator do. White pixel noise of
a 2D detector is added last.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lib.data.error_model import simulate_estimate_batch

# Assumed height of a person (m): sets the pixel-per-metre scale of each window from its
# keypoint extent, so that the error model's offsets and jitter (in metres) become pixels.
BODY_HEIGHT_M = 1.7
# Smallest keypoint extent (pixels) used for that scale, so a degenerate window stays finite.
_MIN_EXTENT_PX = 1.0
# White pixel noise per window: std drawn log-uniformly in [centre / sqrt(spread),
# centre * sqrt(spread)] pixels, times the strength (the 2D sample's detector noise).
_PIXEL_JITTER = (1.5, 3.0)


def pixels_per_metre(gt: np.ndarray) -> np.ndarray:
    """Scale of each window: its largest keypoint extent over an assumed body height.

    Shape:
        gt: (B, T, J, 2) -> (B,).
    """
    flat = gt.reshape(len(gt), -1, 2)
    extent = (flat.max(axis=1) - flat.min(axis=1)).max(axis=1)
    return np.maximum(extent, _MIN_EXTENT_PX) / BODY_HEIGHT_M


def simulate_estimate_batch_2d(gt: np.ndarray, parents: Sequence[int], fps: float,
                               rng: np.random.Generator, strength: float = 1.0,
                               left_right: Sequence[tuple[int, int]] = (),
                               breadth: float = 1.0) -> np.ndarray:
    """Simulated 2D estimates of ground-truth keypoint windows, fresh parameters per window.

    Args:
        gt: ground-truth keypoints in pixels.
        parents: parent index per joint, -1 for a root.
        fps: frame rate of the windows.
        rng: source of randomness.
        strength: amplitude factor of the error model.
        left_right: (left, right) joint pairs that swaps exchange.
        breadth: width of the error model's parameter ranges (`sample_error_params`).

    Returns:
        Simulated keypoints in pixels.

    Shape:
        gt: (B, T, J, 2) -> (B, T, J, 2) float32.
    """
    gt = np.asarray(gt, dtype=np.float64)
    if gt.ndim != 4 or gt.shape[-1] != 2:
        raise ValueError(f"gt must have shape (B, T, J, 2), got {gt.shape}")
    scale = pixels_per_metre(gt)[:, None, None, None]  # (B, 1, 1, 1)
    centre = gt.mean(axis=(1, 2), keepdims=True)
    flat = np.concatenate([(gt - centre) / scale, np.zeros(gt.shape[:-1] + (1,))], axis=-1)
    estimate = simulate_estimate_batch(flat, parents, fps, rng, strength, left_right, breadth)
    sigma = strength * _PIXEL_JITTER[0] * _PIXEL_JITTER[1] ** rng.uniform(-0.5, 0.5, len(gt))
    noise = rng.standard_normal(gt.shape) * sigma[:, None, None, None]
    return (estimate[..., :2] * scale + centre + noise).astype(np.float32)
