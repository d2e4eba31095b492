"""Rotation conversions in torch (numpy wrappers below): axis-angle, matrices, 6D, Euler angles.

The 6D representation (Zhou et al., CVPR 2019) keeps the first two columns of the rotation
matrix, stored row by row as ``(R00, R01, R10, R11, R20, R21)``: the layout of SmoothNet's smpl
data. Any 6 numbers map back to a rotation by Gram-Schmidt, so a network's output needs no
constraint.
"""

from __future__ import annotations

import numpy as np
import torch

# Below this squared angle the Rodrigues coefficients use their Taylor series (no 0 / 0).
_SMALL_ANGLE2 = 1e-8
# Guards norms in Gram-Schmidt against all-zero 6D input.
_EPS = 1e-8


def _check_last(name: str, x: torch.Tensor, shape: tuple[int, ...]) -> None:
    if tuple(x.shape[x.dim() - len(shape):]) != shape:
        raise ValueError(f"{name} must end in {shape}, got shape {tuple(x.shape)}")


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: rotation vectors (axis times angle in radians) to matrices.

    Shape:
        axis_angle: (..., 3) -> (..., 3, 3).
    """
    _check_last("axis_angle", axis_angle, (3,))
    x, y, z = axis_angle.unbind(-1)
    theta2 = x * x + y * y + z * z
    small = theta2 < _SMALL_ANGLE2
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    sinc = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    cosc = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / (theta * theta))
    cos = torch.where(small, 1.0 - theta2 / 2.0, torch.cos(theta))
    entries = [cos + cosc * x * x, cosc * x * y - sinc * z, cosc * x * z + sinc * y,
               cosc * x * y + sinc * z, cos + cosc * y * y, cosc * y * z - sinc * x,
               cosc * x * z - sinc * y, cosc * y * z + sinc * x, cos + cosc * z * z]
    return torch.stack(entries, dim=-1).reshape(*axis_angle.shape[:-1], 3, 3)


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (w, x, y, z) with w >= 0, stable for every angle up to pi.

    Each of the four candidate formulas divides by the largest of ``|w|, |x|, |y|, |z|``
    (Shepperd's method), so no division is by a near-zero number.

    Shape:
        matrix: (..., 3, 3) -> (..., 4).
    """
    _check_last("matrix", matrix, (3, 3))
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # 4 w^2, 4 x^2, 4 y^2, 4 z^2 from the diagonal, clamped against rounding below zero
    squares = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                           1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1).clamp_min(0.0)
    roots = torch.sqrt(squares)  # 2 |w|, 2 |x|, 2 |y|, 2 |z|
    m21, m12, m02 = m[..., 2, 1], m[..., 1, 2], m[..., 0, 2]
    m20, m10, m01 = m[..., 2, 0], m[..., 1, 0], m[..., 0, 1]
    d21, d02, d10 = m21 - m12, m02 - m20, m10 - m01  # 4wx, 4wy, 4wz
    s21, s02, s10 = m21 + m12, m02 + m20, m10 + m01  # 4yz, 4xz, 4xy
    # Candidate quaternions (times 2 * the pivot component), one per pivot.
    candidates = torch.stack([
        torch.stack([squares[..., 0], d21, d02, d10], dim=-1),
        torch.stack([d21, squares[..., 1], s10, s02], dim=-1),
        torch.stack([d02, s10, squares[..., 2], s21], dim=-1),
        torch.stack([d10, s02, s21, squares[..., 3]], dim=-1),
    ], dim=-2)  # (..., 4 pivots, 4)
    pivot = roots.argmax(dim=-1, keepdim=True)  # (..., 1)
    chosen = torch.gather(candidates, -2, pivot[..., None].expand(*pivot.shape, 4)).squeeze(-2)
    scale = 2.0 * torch.gather(roots, -1, pivot)  # 4 |pivot component|
    quat = chosen / scale
    return torch.where(quat[..., :1] < 0, -quat, quat)


def quaternion_to_axis_angle(quat: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (w, x, y, z) to rotation vectors with angles in [0, pi].

    Shape:
        quat: (..., 4) -> (..., 3).
    """
    _check_last("quat", quat, (4,))
    quat = torch.where(quat[..., :1] < 0, -quat, quat)
    vec = quat[..., 1:]
    sin_half = vec.norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, quat[..., :1])
    small = sin_half < 1e-6
    # angle / sin(angle / 2) -> 2 (1 + angle^2 / 24) as the angle goes to zero
    factor = torch.where(small, 2.0 + angle * angle / 12.0,
                         angle / torch.where(small, torch.ones_like(sin_half), sin_half))
    return vec * factor


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to rotation vectors. Shape: (..., 3, 3) -> (..., 3)."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def matrix_to_rot6d(matrix: torch.Tensor) -> torch.Tensor:
    """The first two columns, row by row. Shape: (..., 3, 3) -> (..., 6)."""
    _check_last("matrix", matrix, (3, 3))
    return matrix[..., :, :2].reshape(*matrix.shape[:-2], 6)


def rot6d_to_matrix(rot6d: torch.Tensor) -> torch.Tensor:
    """Gram-Schmidt on the two stored columns; the third is their cross product.

    Any 6 numbers whose two columns are not parallel give a proper rotation, so refined (not
    exactly orthonormal) network outputs are projected back onto rotations.

    Shape:
        rot6d: (..., 6) -> (..., 3, 3).
    """
    _check_last("rot6d", rot6d, (6,))
    columns = rot6d.reshape(*rot6d.shape[:-1], 3, 2)
    first = columns[..., 0] / columns[..., 0].norm(dim=-1, keepdim=True).clamp_min(_EPS)
    second = columns[..., 1] - (first * columns[..., 1]).sum(-1, keepdim=True) * first
    second = second / second.norm(dim=-1, keepdim=True).clamp_min(_EPS)
    third = torch.cross(first, second, dim=-1)
    return torch.stack([first, second, third], dim=-1)


def axis_angle_to_rot6d(axis_angle: torch.Tensor) -> torch.Tensor:
    """Shape: (..., 3) -> (..., 6)."""
    return matrix_to_rot6d(axis_angle_to_matrix(axis_angle))


def rot6d_to_axis_angle(rot6d: torch.Tensor) -> torch.Tensor:
    """Shape: (..., 6) -> (..., 3)."""
    return matrix_to_axis_angle(rot6d_to_matrix(rot6d))


def _axis_matrix(axis: str, angle: torch.Tensor) -> torch.Tensor:
    """Rotation about one coordinate axis. Shape: (...,) radians -> (..., 3, 3)."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    rows = {"X": [one, zero, zero, zero, cos, -sin, zero, sin, cos],
            "Y": [cos, zero, sin, zero, one, zero, -sin, zero, cos],
            "Z": [cos, -sin, zero, sin, cos, zero, zero, zero, one]}[axis]
    return torch.stack(rows, dim=-1).reshape(*angle.shape, 3, 3)


def euler_to_matrix(angles: torch.Tensor, order: str) -> torch.Tensor:
    """Intrinsic Euler angles (radians) in ``order`` (e.g. BVH channels 'ZXY') to matrices.

    ``R = R_order[0](a0) @ R_order[1](a1) @ R_order[2](a2)``, as BVH files compose channels.

    Shape:
        angles: (..., 3) -> (..., 3, 3).
    """
    _check_last("angles", angles, (3,))
    if sorted(order) != ["X", "Y", "Z"]:
        raise ValueError(f"Euler order must be a permutation of XYZ, got {order!r}")
    result = _axis_matrix(order[0], angles[..., 0])
    for index in (1, 2):
        result = result @ _axis_matrix(order[index], angles[..., index])
    return result


def _numpy(fn, values: np.ndarray) -> np.ndarray:
    """Apply a torch conversion to a numpy array in float64 and return float64 numpy."""
    return fn(torch.from_numpy(np.asarray(values, dtype=np.float64))).numpy()


def axis_angle_to_rot6d_np(axis_angle: np.ndarray) -> np.ndarray:
    """numpy :func:`axis_angle_to_rot6d`. Shape: (..., 3) -> (..., 6)."""
    return _numpy(axis_angle_to_rot6d, axis_angle)


def rot6d_to_axis_angle_np(rot6d: np.ndarray) -> np.ndarray:
    """numpy :func:`rot6d_to_axis_angle`. Shape: (..., 6) -> (..., 3)."""
    return _numpy(rot6d_to_axis_angle, rot6d)


def rot6d_to_matrix_np(rot6d: np.ndarray) -> np.ndarray:
    """numpy :func:`rot6d_to_matrix`. Shape: (..., 6) -> (..., 3, 3)."""
    return _numpy(rot6d_to_matrix, rot6d)


def matrix_to_rot6d_np(matrix: np.ndarray) -> np.ndarray:
    """numpy :func:`matrix_to_rot6d`. Shape: (..., 3, 3) -> (..., 6)."""
    return _numpy(matrix_to_rot6d, matrix)
