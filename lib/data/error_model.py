"""Simulated monocular pose-estimator errors and body-proportion changes."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

# Per-sequence parameter ranges: (centre, spread factor, scaled by strength). A value is drawn
# log-uniformly in [centre / sqrt(spread), centre * sqrt(spread)], so a model sees a family.
_PARAM_RANGES: dict[str, tuple[float, float, bool]] = {
    "drift_amplitude": (0.168, 3.5, True),
    "drift_corr_s": (1.0, 4.0, False),
    "rotation_jitter": (0.0042, 3.5, True),
    "scale_amplitude": (0.03, 3.5, True),
    "global_corr_s": (2.0, 4.0, False),
    "offset_amplitude": (0.05, 4.0, True),
    "keypoint_sigma": (0.0046, 3.0, True),
    "distal_multiplier": (2.0, 2.0, False),
    "occlusion_rate": (0.2, 4.0, False),
    "swap_rate": (0.04, 4.0, False),
}
# The root's drift is the global orientation error; it is smaller than a limb's.
_ROOT_DRIFT_FACTOR = 0.5
# A Gaussian transfer function below exp(-_CUTOFF**2 / 2) is treated as zero.
_CUTOFF = 4.5


@dataclass(frozen=True)
class ErrorModelParams:
    """Per-sequence parameters of the simulated estimator error.

    Attributes:
        drift_amplitude: std (rad) of each axis-angle component of a joint's slow rotation drift.
        drift_corr_s: Gaussian-filter sigma (s) of the drift noise, its correlation time.
        rotation_jitter: std (rad) of the white per-frame rotation jitter per joint and axis.
        scale_amplitude: relative std of the slow scale (depth) wobble about the root.
        global_corr_s: Gaussian-filter sigma (s) of the scale and global-offset wobble.
        offset_amplitude: std (m) per axis of the global offset (a constant part plus a wobble).
        keypoint_sigma: std (m) per axis of white keypoint jitter on proximal joints.
        distal_multiplier: jitter factor on leaf joints (its square root one level up).
        occlusion_rate: limb-freeze events per second.
        occlusion_frames: inclusive (min, max) length of a freeze in frames.
        swap_rate: left/right swap events per second.
        swap_frames: inclusive (min, max) length of a swap in frames.
    """

    drift_amplitude: float = _PARAM_RANGES["drift_amplitude"][0]
    drift_corr_s: float = _PARAM_RANGES["drift_corr_s"][0]
    rotation_jitter: float = _PARAM_RANGES["rotation_jitter"][0]
    scale_amplitude: float = _PARAM_RANGES["scale_amplitude"][0]
    global_corr_s: float = _PARAM_RANGES["global_corr_s"][0]
    offset_amplitude: float = _PARAM_RANGES["offset_amplitude"][0]
    keypoint_sigma: float = _PARAM_RANGES["keypoint_sigma"][0]
    distal_multiplier: float = _PARAM_RANGES["distal_multiplier"][0]
    occlusion_rate: float = _PARAM_RANGES["occlusion_rate"][0]
    occlusion_frames: tuple[int, int] = (3, 15)
    swap_rate: float = _PARAM_RANGES["swap_rate"][0]
    swap_frames: tuple[int, int] = (2, 8)

    def drift_only(self) -> ErrorModelParams:
        """A copy with only the slow rotation drift left (bone lengths then hold exactly)."""
        return dataclasses.replace(self, rotation_jitter=0.0, scale_amplitude=0.0,
                                   offset_amplitude=0.0, keypoint_sigma=0.0, occlusion_rate=0.0,
                                   swap_rate=0.0)


def sample_error_params(rng: np.random.Generator, strength: float = 1.0,
                        breadth: float = 1.0) -> ErrorModelParams:
    """Draw the parameters of one sequence over a broad log-uniform range.

    Args:
        rng: source of randomness.
        strength: factor on every amplitude (drift, jitter, scale, offset); rates and
            correlation times are not scaled.
        breadth: width of every range on a log scale, as a multiple of the default (same
            centre): 2 draws e.g. drift correlation times over 0.25-4 s instead of 0.5-2 s;
            0 gives every sequence the centre values. Event lengths keep their ranges.

    Returns:
        The parameters of one sequence.

    Shape:
        Scalars only.
    """
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    if breadth < 0:
        raise ValueError(f"breadth must be >= 0, got {breadth}")
    values = {}
    for name, (centre, spread, scaled) in _PARAM_RANGES.items():
        value = centre * spread ** (breadth * rng.uniform(-0.5, 0.5))
        values[name] = float(value * strength if scaled else value)
    low = int(rng.integers(2, 6))
    values["occlusion_frames"] = (low, low + int(rng.integers(4, 16)))
    low = int(rng.integers(2, 4))
    values["swap_frames"] = (low, low + int(rng.integers(2, 7)))
    return ErrorModelParams(**values)


def tree_order(parents: Sequence[int], num_joints: int) -> list[int]:
    """Validate ``parents`` and return a topological order (parents before children)."""
    if len(parents) != num_joints:
        raise ValueError(f"parents has {len(parents)} entries but the data has {num_joints} joints")
    order: list[int] = []
    placed: set[int] = set()
    while len(order) < num_joints:
        ready = [j for j, p in enumerate(parents)
                 if j not in placed and (p == -1 or p in placed)]
        if not ready:
            raise ValueError(f"parents {list(parents)} contain a cycle or a bad index")
        order.extend(ready)
        placed.update(ready)
    return order


def _subtrees(parents: Sequence[int], order: list[int]) -> list[np.ndarray]:
    """Joint indices of each joint's subtree, the joint itself included."""
    members: list[list[int]] = [[j] for j in range(len(parents))]
    for j in reversed(order):
        if parents[j] >= 0:
            members[parents[j]].extend(members[j])
    return [np.array(sorted(m)) for m in members]


def _heights(parents: Sequence[int], order: list[int]) -> np.ndarray:
    """Number of bones from each joint down to its furthest leaf (0 for a leaf)."""
    height = np.zeros(len(parents), dtype=int)
    for j in reversed(order):
        if parents[j] >= 0:
            height[parents[j]] = max(height[parents[j]], height[j] + 1)
    return height


def smooth_noise(rng: np.random.Generator, sigma: np.ndarray, channels: int,
                 num_frames: int) -> np.ndarray:
    """Stationary unit-variance Gaussian-filtered white noise, synthesised in frequency space.

    Equivalent to filtering periodic white noise with a Gaussian of std ``sigma`` frames, but
    only the few low-frequency bins the filter lets through are drawn and summed, so the cost
    does not grow with the correlation time.

    Shape:
        sigma (B,) in frames -> (B, channels, num_frames).
    """
    sigma = np.maximum(sigma, 1e-3)
    # The period must exceed the window plus the correlation length, or the ends correlate.
    length = num_frames + int(np.ceil(_CUTOFF * np.sqrt(2.0) * sigma.max())) + 1
    bins = np.arange(length // 2 + 1)
    gain = np.exp(-0.5 * (2.0 * np.pi * bins[None] / length * sigma[:, None]) ** 2)  # (B, K)
    self_conj = (bins == 0) | (2 * bins == length)  # real-valued bins: DC and Nyquist
    weight = np.where(self_conj, 1.0, 2.0)
    variance = np.sum(weight * gain ** 2, axis=1) / length
    kept = min(len(bins), int(np.ceil(_CUTOFF * length / (2.0 * np.pi * sigma.min()))) + 1)
    phase = 2.0 * np.pi * np.outer(bins[:kept], np.arange(num_frames)) / length  # (K, T)
    amplitude = gain[:, :kept] * np.sqrt(weight[:kept] / length / variance[:, None])  # (B, K)
    real = rng.standard_normal((len(sigma), channels, kept)) * amplitude[:, None]
    imag = rng.standard_normal((len(sigma), channels, kept)) * amplitude[:, None]
    # sin vanishes on the real-valued bins, so their imaginary draws drop out
    return real @ np.cos(phase) - imag @ np.sin(phase)


def rodrigues(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrices from axis-angle vectors. Shape: (..., 3) -> (..., 3, 3)."""
    x, y, z = rotvec[..., 0], rotvec[..., 1], rotvec[..., 2]
    theta2 = x * x + y * y + z * z
    theta = np.sqrt(theta2)
    small = theta2 < 1e-8  # Taylor series avoid 0 / 0 near the identity
    safe = np.where(small, 1.0, theta)
    cos = np.cos(theta)
    sinc = np.where(small, 1.0 - theta2 / 6.0, np.sin(safe) / safe)
    cosc = np.where(small, 0.5 - theta2 / 24.0, (1.0 - cos) / (safe * safe))
    xy, xz, yz = cosc * x * y, cosc * x * z, cosc * y * z
    sx, sy, sz = sinc * x, sinc * y, sinc * z
    entries = [cos + cosc * x * x, xy - sz, xz + sy,
               xy + sz, cos + cosc * y * y, yz - sx,
               xz - sy, yz + sx, cos + cosc * z * z]
    return np.stack(entries, axis=-1).reshape(rotvec.shape[:-1] + (3, 3))


def _stack_params(params: Sequence[ErrorModelParams]) -> dict[str, np.ndarray]:
    """Field-wise arrays over a batch of parameter objects. Shape: B objects -> (B,) or (B, 2)."""
    return {field.name: np.array([getattr(p, field.name) for p in params], dtype=float)
            for field in dataclasses.fields(ErrorModelParams)}


def _rotate_chain(gt: np.ndarray, parents: Sequence[int], order: list[int], fps: float,
                  p: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Compose per-joint drift and jitter rotations down the chain; bone lengths are kept.

    As in forward kinematics, a joint's error rotation turns the bones to its children, and
    with them everything below, on top of the rotations accumulated by its ancestors; the
    root's is the global orientation error. Leaf rotations have no effect.

    Shape:
        gt (B, T, J, 3) -> (B, T, J, 3).
    """
    batch, frames, joints, _ = gt.shape
    drift = smooth_noise(rng, p["drift_corr_s"] * fps, joints * 3, frames)
    drift = drift.reshape(batch, joints, 3, frames).transpose(0, 3, 1, 2)  # (B, T, J, 3)
    weight = np.ones(joints)
    weight[[j for j in range(joints) if parents[j] < 0]] = _ROOT_DRIFT_FACTOR
    rotvec = drift * (p["drift_amplitude"][:, None, None, None] * weight[:, None])
    rotvec += rng.standard_normal(gt.shape) * p["rotation_jitter"][:, None, None, None]
    # float32 rotations halve the cost; bone lengths still hold to about 1e-7 m
    local = rodrigues(rotvec.astype(np.float32))  # (B, T, J, 3, 3)
    out = gt.copy()
    accumulated = np.empty_like(local)
    for j in order:
        parent = parents[j]
        if parent < 0:
            accumulated[:, :, j] = local[:, :, j]
            continue
        accumulated[:, :, j] = accumulated[:, :, parent] @ local[:, :, j]
        bone = (gt[:, :, j] - gt[:, :, parent]).astype(np.float32)[..., None]  # (B, T, 3, 1)
        out[:, :, j] = out[:, :, parent] + (accumulated[:, :, parent] @ bone)[..., 0]
    return out


def _event_spans(rng: np.random.Generator, rate: float, length_range: np.ndarray,
                 frames: int, fps: float) -> list[tuple[int, int]]:
    """Random (start, stop) frame spans of a Poisson event process."""
    count = rng.poisson(rate * frames / fps)
    spans = []
    for _ in range(count):
        start = int(rng.integers(0, frames))
        length = int(rng.integers(int(length_range[0]), int(length_range[1]) + 1))
        spans.append((start, min(frames, start + length)))
    return spans


def _occlude(est: np.ndarray, parents: Sequence[int], subtrees: list[np.ndarray],
             heights: np.ndarray, fps: float, p: dict[str, np.ndarray],
             rng: np.random.Generator) -> None:
    """In place: a limb freezes relative to its parent for a few frames, then jumps back.

    Limbs are the joints one or two bones above a leaf (elbow, knee, upper arm, ankle, neck
    on a human), each with everything below it.

    Shape:
        est (B, T, J, 3), modified in place.
    """
    limbs = [j for j in range(len(parents)) if parents[j] >= 0 and 1 <= heights[j] <= 2]
    for b in range(est.shape[0]):
        for start, stop in _event_spans(rng, p["occlusion_rate"][b], p["occlusion_frames"][b],
                                        est.shape[1], fps):
            joint = limbs[int(rng.integers(len(limbs)))]
            parent, members, seq = parents[joint], subtrees[joint], est[b]
            held = seq[start, members] - seq[start, parent]  # (M, 3)
            seq[start:stop, members] = seq[start:stop, parent][:, None] + held[None]


def _swap_groups(left_right: Sequence[tuple[int, int]],
                 subtrees: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each left/right pair, the pairs inside its two subtrees (swapped together)."""
    groups = []
    for left, right in left_right:
        inside = [(a, b) for a, b in left_right
                  if a in subtrees[left] and b in subtrees[right]]
        groups.append((np.array([a for a, _ in inside]), np.array([b for _, b in inside])))
    return groups


def _swap(est: np.ndarray, groups: list[tuple[np.ndarray, np.ndarray]], fps: float,
          p: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """In place: a left limb and its right counterpart exchange places for a few frames.

    Shape:
        est (B, T, J, 3), modified in place.
    """
    if not groups:
        return
    for b in range(est.shape[0]):
        for start, stop in _event_spans(rng, p["swap_rate"][b], p["swap_frames"][b],
                                        est.shape[1], fps):
            left, right = groups[int(rng.integers(len(groups)))]
            span = est[b, start:stop]
            span[:, left], span[:, right] = span[:, right].copy(), span[:, left].copy()


def _global_wobble(est: np.ndarray, roots: np.ndarray, fps: float, p: dict[str, np.ndarray],
                   rng: np.random.Generator) -> np.ndarray:
    """Slow scale (depth) wobble about the root plus a constant-and-wobbling global offset.

    Shape:
        est (B, T, J, 3) -> (B, T, J, 3).
    """
    batch, frames = est.shape[:2]
    wobble = smooth_noise(rng, p["global_corr_s"] * fps, 4, frames).transpose(0, 2, 1)
    scale = 1.0 + p["scale_amplitude"][:, None] * wobble[..., 0]  # (B, T)
    offset = wobble[..., 1:] + rng.standard_normal((batch, 1, 3))  # (B, T, 3)
    offset *= p["offset_amplitude"][:, None, None] / np.sqrt(2.0)
    root = est[:, :, roots].mean(axis=2, keepdims=True)  # (B, T, 1, 3)
    return root + scale[..., None, None] * (est - root) + offset[:, :, None]


def _simulate(gt: np.ndarray, parents: Sequence[int], fps: float,
              params: Sequence[ErrorModelParams], rng: np.random.Generator,
              left_right: Sequence[tuple[int, int]]) -> np.ndarray:
    """The whole error model on a batch. Shape: (B, T, J, 3) -> (B, T, J, 3) float32."""
    if gt.shape[1] < 1:
        raise ValueError("need at least one frame")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    order = tree_order(parents, gt.shape[2])
    subtrees = _subtrees(parents, order)
    p = _stack_params(params)
    gt = np.asarray(gt, dtype=np.float64)
    est = _rotate_chain(gt, parents, order, fps, p, rng)
    heights = _heights(parents, order)
    _occlude(est, parents, subtrees, heights, fps, p, rng)
    _swap(est, _swap_groups(left_right, subtrees), fps, p, rng)
    roots = np.array([j for j, parent in enumerate(parents) if parent < 0])
    est = _global_wobble(est, roots, fps, p, rng)
    distal = np.maximum(0.0, 1.0 - heights / 2.0)  # 1 leaf, 0.5 next, 0 else
    sigma = p["keypoint_sigma"][:, None] * p["distal_multiplier"][:, None] ** distal  # (B, J)
    est += rng.standard_normal(est.shape) * sigma[:, None, :, None]
    return est.astype(np.float32)


def simulate_estimate(gt: np.ndarray, parents: Sequence[int], fps: float,
                      params: ErrorModelParams, rng: np.random.Generator,
                      left_right: Sequence[tuple[int, int]] = ()) -> np.ndarray:
    """Turn ground-truth joint positions into a simulated monocular estimate.

    Errors, in order: slow per-joint rotation drift plus rotation jitter composed down the
    kinematic chain (bone lengths kept), limb freezes (occlusion), short left/right swaps, a
    slow scale wobble about the root and a global offset, and keypoint jitter that is larger on
    distal joints.

    Args:
        gt: global joint positions in metres.
        parents: parent index per joint, -1 for the root; any joint order.
        fps: frame rate, which turns the correlation times into frames.
        params: error parameters of this sequence (see `sample_error_params`).
        rng: source of randomness.
        left_right: (left, right) joint pairs that swaps exchange; none if empty.

    Returns:
        The simulated estimate in metres.

    Shape:
        gt (T, J, 3) -> (T, J, 3) float32, T >= 1.
    """
    gt = np.asarray(gt)
    if gt.ndim != 3 or gt.shape[-1] != 3:
        raise ValueError(f"gt must have shape (T, J, 3), got {gt.shape}")
    return _simulate(gt[None], parents, fps, [params], rng, left_right)[0]


def simulate_estimate_batch(gt: np.ndarray, parents: Sequence[int], fps: float,
                            rng: np.random.Generator, strength: float = 1.0,
                            left_right: Sequence[tuple[int, int]] = (),
                            breadth: float = 1.0) -> np.ndarray:
    """Simulate estimates for a batch of windows, with fresh parameters per window.

    Args:
        gt: ground-truth windows of global joint positions in metres.
        parents: parent index per joint, -1 for the root.
        fps: frame rate of the windows.
        rng: source of randomness.
        strength: amplitude factor passed to `sample_error_params`.
        left_right: (left, right) joint pairs that swaps exchange.
        breadth: range width passed to `sample_error_params`.

    Returns:
        The simulated estimates in metres.

    Shape:
        gt (B, T, J, 3) -> (B, T, J, 3) float32.
    """
    gt = np.asarray(gt)
    if gt.ndim != 4 or gt.shape[-1] != 3:
        raise ValueError(f"gt must have shape (B, T, J, 3), got {gt.shape}")
    params = [sample_error_params(rng, strength, breadth) for _ in range(gt.shape[0])]
    return _simulate(gt, parents, fps, params, rng, left_right)


def rescale_bones(positions: np.ndarray, parents: Sequence[int], scales: np.ndarray) -> np.ndarray:
    """Multiply each bone's length, keeping its direction, rebuilding from the root down.

    Args:
        positions: joint positions.
        parents: parent index per joint, -1 for the root.
        scales: length factor of the bone from each joint's parent to it (root entry ignored):
            one body for every pose, or one body per leading index (e.g. per window).

    Returns:
        The rescaled positions; roots stay where they were.

    Shape:
        positions (..., J, 3), scales (J,) or (..., J) broadcastable against positions'
        (..., J) -> (..., J, 3).
    """
    positions = np.asarray(positions)
    if positions.ndim < 2 or positions.shape[-1] != 3:
        raise ValueError(f"positions must have shape (..., J, 3), got {positions.shape}")
    scales = np.asarray(scales, dtype=np.float64)
    try:
        np.broadcast_shapes(scales.shape, positions.shape[:-1])
        fits = scales.ndim >= 1 and scales.shape[-1] == positions.shape[-2]
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"scales must have shape ({positions.shape[-2]},) or one broadcastable "
                         f"against {positions.shape[:-1]}, got {scales.shape}")
    out = positions.astype(np.float64)
    for j in tree_order(parents, positions.shape[-2]):
        parent = parents[j]
        if parent >= 0:
            bone = positions[..., j, :] - positions[..., parent, :]
            out[..., j, :] = out[..., parent, :] + scales[..., j, None] * bone
    return out.astype(positions.dtype)


def sample_bone_scales(rng: np.random.Generator, num_joints: int, parents: Sequence[int],
                       left_right: Sequence[tuple[int, int]] = (),
                       body_range: tuple[float, float] = (0.85, 1.15),
                       bone_range: tuple[float, float] = (0.9, 1.1)) -> np.ndarray:
    """Draw one body: a global size factor times a factor per bone.

    Args:
        rng: source of randomness.
        num_joints: number of joints J.
        parents: parent index per joint; root entries get 1.
        left_right: (left, right) pairs; the right bone copies the left factor when given.
        body_range: uniform range of the global size factor.
        bone_range: uniform range of each bone's own factor.

    Returns:
        Per-bone length factors for `rescale_bones`.

    Shape:
        -> (J,).
    """
    tree_order(parents, num_joints)
    scales = rng.uniform(*bone_range, size=num_joints)
    for left, right in left_right:
        scales[right] = scales[left]
    scales *= rng.uniform(*body_range)
    scales[np.asarray(parents) < 0] = 1.0
    return scales
