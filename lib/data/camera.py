"""A pinhole camera that follows its subject, for projecting simulated 3D motion to 2D."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PinholeCamera:
    """A camera that pans to follow its subject; OpenCV axes (x right, y down, z forward).

    Attributes:
        rotation: world -> camera rotation, fixed for the sequence.
        position: camera centre in world coordinates per frame, in metres.
        focal: focal length in pixels.
        center: principal point (u, v) in pixels.
        image_size: (width, height) in pixels.
    """

    rotation: np.ndarray
    position: np.ndarray
    focal: float
    center: tuple[float, float]
    image_size: tuple[int, int]


def project_pinhole(points: np.ndarray, focal: float, center: Sequence[float]) -> np.ndarray:
    """Project camera-frame points (z forward, positive) to pixels.

    Args:
        points: points in the camera frame, metres.
        focal: focal length in pixels.
        center: principal point (u, v) in pixels.

    Returns:
        Pixel coordinates (u, v).

    Shape:
        points (..., 3) -> (..., 2).
    """
    points = np.asarray(points)
    if points.ndim < 1 or points.shape[-1] != 3:
        raise ValueError(f"points must have shape (..., 3), got {points.shape}")
    depth = np.maximum(points[..., 2:], 1e-6)  # points behind the camera are clamped
    return focal * points[..., :2] / depth + np.asarray(center, dtype=points.dtype)


def _smooth_track(track: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along time with odd reflection, which keeps linear motion exact.

    Shape:
        (T, 3) -> (T, 3).
    """
    radius = min(int(np.ceil(3.0 * sigma)), len(track) - 1)
    if radius < 1:
        return track.copy()
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    before = 2.0 * track[0] - track[radius:0:-1]
    after = 2.0 * track[-1] - track[-2:-radius - 2:-1]
    padded = np.concatenate([before, track, after])
    return np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(3)], -1)


def sample_camera(rng: np.random.Generator, root_track: np.ndarray, facing: np.ndarray,
                  fps: float, image_size: tuple[int, int] = (1000, 1000)) -> PinholeCamera:
    """Draw a camera in front of a Y-up subject that pans smoothly to follow it.

    Distance 3.5-7 m, yaw within 25 degrees of the subject's facing direction, pitch 0-10
    degrees down, focal 900-1300 px, principal point at the image centre. The camera follows
    the root smoothed over half a second at a fixed height, so the subject stays in view.

    Args:
        rng: source of randomness.
        root_track: root position per frame in world coordinates (metres, Y up).
        facing: horizontal direction the subject faces, in world coordinates.
        fps: frame rate of the track.
        image_size: (width, height) in pixels.

    Returns:
        The camera.

    Shape:
        root_track (T, 3), facing (3,).
    """
    root_track = np.asarray(root_track, dtype=np.float64)
    if root_track.ndim != 2 or root_track.shape[-1] != 3:
        raise ValueError(f"root_track must have shape (T, 3), got {root_track.shape}")
    yaw, pitch = np.radians(rng.uniform(-25.0, 25.0)), np.radians(rng.uniform(0.0, 10.0))
    toward = np.array([facing[0], 0.0, facing[2]]) / max(np.hypot(facing[0], facing[2]), 1e-9)
    toward = np.array([np.cos(yaw) * toward[0] + np.sin(yaw) * toward[2], 0.0,
                       -np.sin(yaw) * toward[0] + np.cos(yaw) * toward[2]])
    forward = -toward * np.cos(pitch) + np.array([0.0, -np.sin(pitch), 0.0])
    down = np.cross(forward, np.cross(np.array([0.0, -1.0, 0.0]), forward))
    down /= np.linalg.norm(down)
    rotation = np.stack([np.cross(down, forward), down, forward])  # rows: x, y, z axes
    aim = _smooth_track(root_track, 0.5 * fps)
    aim[:, 1] = root_track[:, 1].mean()
    position = aim - rng.uniform(3.5, 7.0) * forward
    center = (image_size[0] / 2.0, image_size[1] / 2.0)
    return PinholeCamera(rotation, position, float(rng.uniform(900.0, 1300.0)), center,
                         image_size)


def world_to_camera(points: np.ndarray, camera: PinholeCamera) -> np.ndarray:
    """Map world points (frame by frame) into the camera frame.

    Args:
        points: world positions per frame, metres.
        camera: a camera from `sample_camera` with one position per frame.

    Returns:
        Camera-frame positions, metres.

    Shape:
        points (T, J, 3) -> (T, J, 3).
    """
    points = np.asarray(points)
    if points.ndim != 3 or points.shape[-1] != 3 or len(points) != len(camera.position):
        raise ValueError(f"points must have shape (T={len(camera.position)}, J, 3), "
                         f"got {points.shape}")
    return (points - camera.position[:, None]) @ camera.rotation.T
