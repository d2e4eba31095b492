"""Pure numpy pose metrics on one sequence (T, J, D), in the data's units, returned per frame."""

from __future__ import annotations

import math

import numpy as np

# Added to the Procrustes scale denominator so a degenerate frame (all joints equal) gives a
# finite scale of 0 instead of 0 / 0.
_PROCRUSTES_EPS = 1e-12

# Guards ceil(fraction * N) against float round-up, e.g. 0.07 * 100 = 7.000000000000001.
_CEIL_TOLERANCE = 1e-9


def _check_poses(name: str, poses: np.ndarray) -> np.ndarray:
    """Return ``poses`` as a float array after checking it is (T, J, D)."""
    poses = np.asarray(poses)
    if poses.ndim != 3:
        raise ValueError(f"{name} must be (T, J, D), got shape {poses.shape}")
    return poses.astype(np.float64, copy=False)


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check that ``pred`` and ``gt`` are (T, J, D) arrays of the same shape."""
    pred, gt = _check_poses("pred", pred), _check_poses("gt", gt)
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt shapes differ: pred {pred.shape} vs gt {gt.shape}")
    return pred, gt


def root_align(poses: np.ndarray, root_joints: tuple[int, ...]) -> np.ndarray:
    """Subtract, per frame, the mean position of the root joints from every joint.

    Args:
        poses: joint positions of one sequence.
        root_joints: indices of the root joints (e.g. both hips); ``()`` means no alignment and
            returns the input unchanged.

    Returns:
        Root-relative poses in the input's units.

    Shape:
        poses: (T, J, D) -> (T, J, D).
    """
    poses = _check_poses("poses", poses)
    if not root_joints:
        return poses
    root = poses[:, list(root_joints)].mean(axis=1, keepdims=True)  # (T, 1, D)
    return poses - root


def joint_errors(pred: np.ndarray, gt: np.ndarray, root_joints: tuple[int, ...] = ()) -> np.ndarray:
    """Euclidean distance per frame and joint after root-aligning both sequences.

    Args:
        pred: predicted joint positions.
        gt: ground-truth joint positions, same shape and units.
        root_joints: root joints for :func:`root_align`; ``()`` compares absolute positions.

    Returns:
        Per-joint position errors in the data's units.

    Shape:
        pred, gt: (T, J, D) -> (T, J).
    """
    pred, gt = _check_pair(pred, gt)
    return np.linalg.norm(root_align(pred, root_joints) - root_align(gt, root_joints), axis=-1)


def mpjpe(pred: np.ndarray, gt: np.ndarray, root_joints: tuple[int, ...] = ()) -> np.ndarray:
    """Mean per-joint position error (MPJPE) of every frame, after root alignment.

    Protocol: Human3.6M "protocol 1" when ``root_joints`` is the pelvis (or both hips); the
    caller scales the result to mm (e.g. x1000 for metres).

    Args:
        pred: predicted joint positions.
        gt: ground-truth joint positions, same shape and units.
        root_joints: root joints for :func:`root_align`.

    Returns:
        Per-frame MPJPE in the data's units.

    Shape:
        pred, gt: (T, J, D) -> (T,).
    """
    return joint_errors(pred, gt, root_joints).mean(axis=1)


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Align each predicted frame onto its ground truth by the best similarity transform.

    Per frame, finds rotation R (a proper rotation: reflections are flipped back), uniform scale
    s and translation minimising the squared error (Umeyama's closed form), with one batched SVD
    over all frames. A degenerate predicted frame (all joints equal) maps to the gt centroid
    instead of producing NaN.

    Args:
        pred: predicted joint positions.
        gt: ground-truth joint positions, same shape and units.

    Returns:
        ``pred`` aligned onto ``gt``, in the data's units.

    Shape:
        pred, gt: (T, J, D) with D = 2 or 3 -> (T, J, D).
    """
    pred, gt = _check_pair(pred, gt)
    pred_mean, gt_mean = pred.mean(axis=1, keepdims=True), gt.mean(axis=1, keepdims=True)
    pred_c, gt_c = pred - pred_mean, gt - gt_mean  # (T, J, D)
    cross = np.einsum("tjd,tje->tde", pred_c, gt_c)  # (T, D, D)
    u, sing, vt = np.linalg.svd(cross)
    # Flip the weakest singular direction where U V^T would be a reflection.
    sign = np.sign(np.linalg.det(u) * np.linalg.det(vt))  # (T,), each +-1
    u[:, :, -1] *= sign[:, None]
    sing[:, -1] *= sign
    rotation = u @ vt  # (T, D, D), row-vector convention: x @ R
    scale = sing.sum(axis=1) / ((pred_c**2).sum(axis=(1, 2)) + _PROCRUSTES_EPS)  # (T,)
    return scale[:, None, None] * (pred_c @ rotation) + gt_mean


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Procrustes-aligned MPJPE (PA-MPJPE, H36M "protocol 2") of every frame.

    Args:
        pred: predicted joint positions.
        gt: ground-truth joint positions, same shape and units.

    Returns:
        Per-frame PA-MPJPE in the data's units.

    Shape:
        pred, gt: (T, J, D) -> (T,).
    """
    return joint_errors(procrustes_align(pred, gt), gt).mean(axis=1)


def accel_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Acceleration error on real frames only (no padding).

    ``acc[t] = x[t-1] - 2 x[t] + x[t+1]`` for each sequence; the error of frame t is the norm of
    ``acc_pred[t] - acc_gt[t]`` per joint, averaged over joints, for t = 1 .. T-2.

    Args:
        pred: predicted joint positions.
        gt: ground-truth joint positions, same shape and units.

    Returns:
        Per-frame acceleration error in data units per frame^2 (scale x1000 for mm/frame^2 from
        metres); empty when T < 3.

    Shape:
        pred, gt: (T, J, D) -> (max(T - 2, 0),).
    """
    pred, gt = _check_pair(pred, gt)
    diff = pred - gt  # the second difference is linear, so take it once on the difference
    accel = diff[:-2] - 2.0 * diff[1:-1] + diff[2:]  # (T-2, J, D)
    return np.linalg.norm(accel, axis=-1).mean(axis=1)


def accel_errors_padded(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """SmoothNet-compatible acceleration error: :func:`accel_errors` with a zero at each end.

    A mean over this array divides by T instead of T - 2, so it under-reports the true error by
    a factor (T - 2) / T. It is provided only for comparability with published numbers; report
    :func:`accel_errors` as the real metric. For T < 3 it is all zeros.

    Args:
        pred: predicted joint positions.
        gt: ground-truth joint positions, same shape and units.

    Returns:
        Per-frame acceleration error in data units per frame^2, zero at the first and last frame.

    Shape:
        pred, gt: (T, J, D) -> (T,).
    """
    real = accel_errors(pred, gt)
    if real.size == 0:
        return np.zeros(np.shape(pred)[0])
    return np.pad(real, 1)


def pck(pred: np.ndarray, gt: np.ndarray, bbox: np.ndarray,
        thresholds: tuple[float, ...] = (0.05, 0.1, 0.2)) -> np.ndarray:
    """Percentage of correct 2D keypoints per frame (JHMDB protocol).

    A joint is correct when its distance to the ground truth is strictly below
    ``thr * max(box width, box height)`` of that frame's box. A zero-size box marks no joint
    correct.

    Args:
        pred: predicted 2D keypoints (pixels).
        gt: ground-truth 2D keypoints, same shape and units.
        bbox: per-frame person box ``x1, y1, x2, y2`` in the same units (JHMDB: the tight box
            around the ground-truth keypoints).
        thresholds: fractions of the box size.

    Returns:
        Per-frame fraction (0..1) of correct joints for each threshold.

    Shape:
        pred, gt: (T, J, 2); bbox: (T, 4) -> (T, len(thresholds)).
    """
    pred, gt = _check_pair(pred, gt)
    if pred.shape[2] != 2:
        raise ValueError(f"pck expects 2D keypoints (T, J, 2), got shape {pred.shape}")
    bbox = np.asarray(bbox, dtype=np.float64)
    if bbox.shape != (pred.shape[0], 4):
        raise ValueError(f"bbox must be (T, 4) = {(pred.shape[0], 4)}, got shape {bbox.shape}")
    size = np.maximum(bbox[:, 2] - bbox[:, 0], bbox[:, 3] - bbox[:, 1])  # (T,)
    limits = size[:, None] * np.asarray(thresholds, dtype=np.float64)[None, :]  # (T, K)
    dist = joint_errors(pred, gt)  # (T, J)
    return (dist[:, :, None] < limits[:, None, :]).mean(axis=1)


def hardest_fraction_mean(values: np.ndarray, fraction: float = 0.01) -> float:
    """Mean of the largest ``ceil(fraction * N)`` values (at least one); NaN when empty.

    Args:
        values: per-frame metric values (any shape; flattened).
        fraction: share of the hardest values to average, in (0, 1].

    Returns:
        The mean over the hardest values, in the values' units.

    Shape:
        values: (N,) -> scalar.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        return float("nan")
    count = max(1, math.ceil(fraction * values.size - _CEIL_TOLERANCE))
    return float(np.partition(values, values.size - count)[-count:].mean())
