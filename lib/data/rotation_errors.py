"""Simulated estimator errors in joint-rotation space: a slow drift and a jitter per joint.

The same mechanism as the position error model (lib/data/error_model.py), applied to local
joint rotations directly: each joint's estimated rotation is its true rotation turned by an
error rotation, so forward kinematics carries the error down the chain and bone lengths hold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lib.data.error_model import ErrorModelParams, rodrigues, sample_error_params, smooth_noise
from lib.data.rotations import matrix_to_rot6d_np, rot6d_to_matrix_np

# The rotation set has no keypoint jitter, so its rotations carry all the frame-to-frame noise:
# the white rotation jitter is this many times ErrorModelParams.rotation_jitter.
JITTER_GAIN = 3.5
# The root's drift is the global orientation error; it is smaller than a limb's (as in
# error_model).
_ROOT_DRIFT_FACTOR = 0.5


def error_rotations(rng: np.random.Generator, params: Sequence[ErrorModelParams],
                    parents: Sequence[int], fps: float, frames: int,
                    jitter_gain: float = JITTER_GAIN) -> np.ndarray:
    """Per-joint error rotations: Gaussian-filtered drift plus white jitter, as matrices.

    Args:
        rng: source of randomness.
        params: parameters per batch element (drift amplitude and correlation, jitter).
        parents: parent index per joint, -1 for the root.
        fps: frame rate, which turns the correlation times into frames.
        frames: T.
        jitter_gain: factor on each element's ``rotation_jitter``.

    Shape:
        returns (B, T, J, 3, 3) with B = len(params).
    """
    batch, joints = len(params), len(parents)
    corr = np.array([p.drift_corr_s * fps for p in params])
    drift = smooth_noise(rng, corr, joints * 3, frames)  # (B, J*3, T)
    drift = drift.reshape(batch, joints, 3, frames).transpose(0, 3, 1, 2)  # (B, T, J, 3)
    weight = np.where(np.asarray(parents) < 0, _ROOT_DRIFT_FACTOR, 1.0)[:, None]  # (J, 1)
    amplitude = np.array([p.drift_amplitude for p in params])[:, None, None, None]
    jitter = np.array([p.rotation_jitter * jitter_gain for p in params])[:, None, None, None]
    rotvec = drift * amplitude * weight + rng.standard_normal(drift.shape) * jitter
    return rodrigues(rotvec)


def apply_rotation_errors(gt_rot6d: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Turn every true local rotation by its error rotation (in the parent's frame).

    Shape:
        gt_rot6d: (B, T, J, 6); errors: (B, T, J, 3, 3) -> (B, T, J, 6) float32.
    """
    estimate = errors @ rot6d_to_matrix_np(gt_rot6d)
    return matrix_to_rot6d_np(estimate).astype(np.float32)


def simulate_rotation_estimate(gt_rot6d: np.ndarray, parents: Sequence[int], fps: float,
                               params: ErrorModelParams, rng: np.random.Generator,
                               jitter_gain: float = JITTER_GAIN) -> np.ndarray:
    """A simulated estimate of one sequence of local joint rotations (leaf joints exact).

    Shape:
        gt_rot6d: (T, J, 6) -> (T, J, 6) float32.
    """
    gt_rot6d = np.asarray(gt_rot6d)
    if gt_rot6d.ndim != 3 or gt_rot6d.shape[1:] != (len(parents), 6):
        raise ValueError(f"expected (T, J={len(parents)}, 6) rotations, got {gt_rot6d.shape}")
    return _simulate(gt_rot6d[None], [params], parents, fps, rng, jitter_gain)[0]


def simulate_rotation_batch(gt_rot6d: np.ndarray, parents: Sequence[int], fps: float,
                            rng: np.random.Generator, strength: float = 1.0,
                            jitter_gain: float = JITTER_GAIN, breadth: float = 1.0) -> np.ndarray:
    """Simulated estimates of a batch of rotation windows, fresh parameters per window.

    ``strength`` and ``breadth`` are those of `sample_error_params`. Leaf joints keep their true
    rotations, as in the sample data (tools/build_rot_sample.py).

    Shape:
        gt_rot6d: (B, T, J, 6) -> (B, T, J, 6) float32.
    """
    gt_rot6d = np.asarray(gt_rot6d)
    if gt_rot6d.ndim != 4 or gt_rot6d.shape[2:] != (len(parents), 6):
        raise ValueError(f"expected (B, T, J={len(parents)}, 6) rotations, got {gt_rot6d.shape}")
    params = [sample_error_params(rng, strength, breadth) for _ in range(len(gt_rot6d))]
    return _simulate(gt_rot6d, params, parents, fps, rng, jitter_gain)


def leaf_joints(parents: Sequence[int]) -> list[int]:
    """Joints no other joint hangs from: their rotation moves no joint of the skeleton."""
    return [joint for joint in range(len(parents)) if joint not in parents]


def _simulate(gt_rot6d: np.ndarray, params: Sequence[ErrorModelParams], parents: Sequence[int],
              fps: float, rng: np.random.Generator, jitter_gain: float) -> np.ndarray:
    """Estimates with error rotations drawn per element of ``params``, leaf joints exact: no
    position, so no metric, sees an error there, and an input that has one would differ from
    the data for nothing.

    Shape:
        gt_rot6d: (B, T, J, 6) -> (B, T, J, 6) float32, B = len(params).
    """
    errors = error_rotations(rng, params, parents, fps, gt_rot6d.shape[1], jitter_gain)
    estimate = apply_rotation_errors(gt_rot6d, errors)
    leaves = leaf_joints(parents)
    estimate[:, :, leaves] = gt_rot6d[:, :, leaves]
    return estimate
