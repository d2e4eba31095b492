"""Rotation conversions and forward kinematics."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from lib.data.kinematics import forward_kinematics, rot6d_positions
from lib.data.rotations import (
    axis_angle_to_matrix,
    axis_angle_to_rot6d_np,
    euler_to_matrix,
    matrix_to_axis_angle,
    rot6d_to_axis_angle_np,
    rot6d_to_matrix,
    rot6d_to_matrix_np,
)
from lib.data.skeletons import Skeleton


@pytest.fixture
def rotvecs(rng):
    """Random rotations, some tiny and some of angle near pi."""
    values = rng.normal(size=(500, 3))
    values /= np.linalg.norm(values, axis=1, keepdims=True)
    angles = rng.uniform(0, np.pi, 500)
    angles[:10], angles[10:20] = 1e-9, np.pi - 1e-6
    return values * angles[:, None]


def test_axis_angle_matrix_matches_scipy(rotvecs):
    ours = axis_angle_to_matrix(torch.from_numpy(rotvecs)).numpy()
    assert np.allclose(ours, Rotation.from_rotvec(rotvecs).as_matrix(), atol=1e-12)


def test_axis_angle_round_trip_through_6d(rotvecs):
    back = rot6d_to_axis_angle_np(axis_angle_to_rot6d_np(rotvecs))
    # near pi, v and -v are almost the same rotation: compare matrices for all, vectors below
    assert np.allclose(Rotation.from_rotvec(back).as_matrix(),
                       Rotation.from_rotvec(rotvecs).as_matrix(), atol=1e-9)
    below_pi = np.linalg.norm(rotvecs, axis=1) < np.pi - 1e-3
    assert np.allclose(back[below_pi], rotvecs[below_pi], atol=1e-9)
    assert np.allclose(back[:10], rotvecs[:10], atol=1e-15)  # tiny angles stay exact


def test_matrix_to_axis_angle_inverts_rodrigues(rotvecs):
    matrices = Rotation.from_rotvec(rotvecs[20:]).as_matrix()
    assert np.allclose(matrix_to_axis_angle(torch.from_numpy(matrices)).numpy(), rotvecs[20:],
                       atol=1e-9)


def test_6d_layout_is_first_two_columns_row_by_row():
    matrix = Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix()
    rot6d = axis_angle_to_rot6d_np(np.array([0.3, -0.2, 0.5]))
    assert np.allclose(rot6d, matrix[:, :2].reshape(6))


def test_gram_schmidt_projects_noisy_6d_onto_rotations(rng):
    noisy = torch.from_numpy(axis_angle_to_rot6d_np(rng.normal(size=(50, 3)))
                             + rng.normal(0, 0.1, (50, 6)))
    matrices = rot6d_to_matrix(noisy)
    identity = matrices.transpose(-1, -2) @ matrices
    assert torch.allclose(identity, torch.eye(3, dtype=identity.dtype).expand(50, 3, 3),
                          atol=1e-12)
    assert torch.allclose(torch.linalg.det(matrices), torch.ones(50, dtype=matrices.dtype))


def test_euler_matches_scipy_intrinsic(rng):
    angles = rng.uniform(-np.pi, np.pi, (20, 3))
    ours = euler_to_matrix(torch.from_numpy(angles), "ZXY").numpy()
    assert np.allclose(ours, Rotation.from_euler("ZXY", angles).as_matrix(), atol=1e-12)
    with pytest.raises(ValueError, match="permutation"):
        euler_to_matrix(torch.zeros(3), "XXY")


def test_forward_kinematics_of_a_chain():
    chain = Skeleton("chain", ("a", "b", "c"), (-1, 0, 1), (0,), 30.0)
    offsets = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    quarter = Rotation.from_rotvec([0, 0, np.pi / 2]).as_matrix()
    rotations = np.stack([np.eye(3), quarter, np.eye(3)])[None]  # b turns c by 90 degrees
    positions = forward_kinematics(rotations, offsets, chain)
    assert np.allclose(positions[0], [[0, 0, 0], [1, 0, 0], [1, 1, 0]])
    rot6d = rotations[..., :, :2].reshape(1, 3, 6)
    assert np.allclose(rot6d_positions(rot6d, offsets, chain), positions)
    bones = np.linalg.norm(np.diff(positions[0], axis=0), axis=-1)
    assert np.allclose(bones, 1.0)
    assert np.allclose(rot6d_to_matrix_np(rot6d), rotations)
