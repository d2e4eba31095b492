"""Tests of the simulated estimator-error model, bone rescaling and the pinhole camera."""

import dataclasses

import numpy as np
import pytest

from lib.data.camera import project_pinhole, sample_camera, world_to_camera
from lib.data.error_model import (
    ErrorModelParams,
    rescale_bones,
    sample_bone_scales,
    sample_error_params,
    simulate_estimate,
    simulate_estimate_batch,
)
from lib.data.skeletons import get_skeleton

SKELETON = get_skeleton("bandai21")
PARENTS = SKELETON.parents
FPS = 30.0
# Rest-pose offsets (metres) of each bandai21 joint from its parent, Y up, subject facing +Z.
_OFFSETS = np.array([
    [0, 0.95, 0], [0, 0.12, 0], [0, 0.12, 0], [0, 0.18, 0], [0, 0.10, 0],
    [0.05, 0.12, 0], [0.12, 0, 0], [0.26, 0, 0], [0.24, 0, 0],
    [-0.05, 0.12, 0], [-0.12, 0, 0], [-0.26, 0, 0], [-0.24, 0, 0],
    [0.09, -0.05, 0], [0, -0.42, 0], [0, -0.40, 0], [0, -0.04, 0.12],
    [-0.09, -0.05, 0], [0, -0.42, 0], [0, -0.40, 0], [0, -0.04, 0.12],
])


def _walk(num_frames: int) -> np.ndarray:
    """A stick figure that moves forward and swings its legs. Shape: -> (T, J, 3)."""
    t = np.arange(num_frames) / FPS
    swing = 0.5 * np.sin(2.0 * np.pi * t)  # (T,)
    positions = np.zeros((num_frames, len(PARENTS), 3))
    for j in SKELETON.topological_order():
        bone = np.broadcast_to(_OFFSETS[j], (num_frames, 3)).copy()
        if PARENTS[j] >= 0 and abs(_OFFSETS[j][1]) > 0.3:  # shin and foot bones swing about x
            bone[:, 1] = _OFFSETS[j][1] * np.cos(swing)
            bone[:, 2] = _OFFSETS[j][1] * np.sin(swing)
        base = positions[:, PARENTS[j]] if PARENTS[j] >= 0 else np.stack([0 * t, 0 * t, t], -1)
        positions[:, j] = base + bone
    return positions


def _bone_lengths(positions: np.ndarray, parents) -> np.ndarray:
    children = [j for j, p in enumerate(parents) if p >= 0]
    parent_index = [parents[j] for j in children]
    return np.linalg.norm(positions[..., children, :] - positions[..., parent_index, :], axis=-1)


def _mpjpe_mm(est: np.ndarray, gt: np.ndarray) -> float:
    diff = (est - est[:, :1]) - (gt - gt[:, :1])
    return 1000.0 * float(np.linalg.norm(diff, axis=-1).mean())


def test_bone_lengths_hold_without_keypoint_jitter_scale_or_swaps():
    gt = _walk(120)
    params = dataclasses.replace(ErrorModelParams(), keypoint_sigma=0.0, scale_amplitude=0.0,
                                 swap_rate=0.0, occlusion_rate=3.0, drift_amplitude=0.3)
    est = simulate_estimate(gt, PARENTS, FPS, params, np.random.default_rng(0))
    np.testing.assert_allclose(_bone_lengths(est, PARENTS), _bone_lengths(gt, PARENTS), atol=1e-4)
    assert _mpjpe_mm(est, gt) > 20.0


def test_bone_lengths_hold_with_children_before_parents():
    permutation = np.random.default_rng(1).permutation(len(PARENTS))
    inverse = np.argsort(permutation)
    parents = tuple(int(inverse[PARENTS[j]]) if PARENTS[j] >= 0 else -1 for j in permutation)
    gt = _walk(40)[:, permutation]
    assert any(p > j for j, p in enumerate(parents))
    est = simulate_estimate(gt, parents, FPS, ErrorModelParams().drift_only(),
                            np.random.default_rng(2))
    np.testing.assert_allclose(_bone_lengths(est, parents), _bone_lengths(gt, parents), atol=1e-4)


def test_default_error_has_a_plausible_magnitude():
    gt = _walk(300)
    errors = [_mpjpe_mm(simulate_estimate(gt, PARENTS, FPS, sample_error_params(rng), rng,
                                          SKELETON.left_right), gt)
              for rng in [np.random.default_rng(seed) for seed in range(4)]]
    assert 30.0 < np.mean(errors) < 250.0


def test_fixed_seed_is_deterministic():
    gt = _walk(50)

    def run(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return simulate_estimate(gt, PARENTS, FPS, sample_error_params(rng), rng,
                                 SKELETON.left_right)

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


@pytest.mark.parametrize("num_frames", [1, 2, 5])
def test_short_sequences_keep_shape_and_dtype(num_frames):
    gt = _walk(num_frames)
    est = simulate_estimate(gt, PARENTS, FPS, ErrorModelParams(), np.random.default_rng(0),
                            SKELETON.left_right)
    assert est.shape == gt.shape and est.dtype == np.float32
    assert np.isfinite(est).all()


def test_batch_draws_fresh_parameters_per_window():
    windows = np.stack([_walk(32)] * 6)
    est = simulate_estimate_batch(windows, PARENTS, FPS, np.random.default_rng(0),
                                  left_right=SKELETON.left_right)
    assert est.shape == windows.shape and est.dtype == np.float32
    per_window = [_mpjpe_mm(e, w) for e, w in zip(est, windows, strict=True)]
    assert len(set(np.round(per_window, 3))) == len(per_window)
    short = simulate_estimate_batch(windows[:2, :1], PARENTS, FPS, np.random.default_rng(0))
    assert short.shape == (2, 1, len(PARENTS), 3)


def test_strength_scales_the_error():
    gt = np.stack([_walk(64)] * 8)
    weak = simulate_estimate_batch(gt, PARENTS, FPS, np.random.default_rng(0), strength=0.5)
    strong = simulate_estimate_batch(gt, PARENTS, FPS, np.random.default_rng(0), strength=2.0)
    assert _mpjpe_mm(strong.reshape(-1, 21, 3), gt.reshape(-1, 21, 3)) > \
        2.0 * _mpjpe_mm(weak.reshape(-1, 21, 3), gt.reshape(-1, 21, 3))


def test_drift_is_temporally_smooth():
    gt = _walk(200)
    params = dataclasses.replace(ErrorModelParams().drift_only(), drift_corr_s=1.0)
    error = simulate_estimate(gt, PARENTS, FPS, params, np.random.default_rng(5)) - gt
    amplitude = np.abs(error).mean()
    roughness = np.abs(np.diff(error, n=2, axis=0)).mean()
    assert amplitude > 0.01
    assert roughness < 0.02 * amplitude


def test_rescale_bones_multiplies_lengths_and_keeps_directions():
    gt = _walk(10)
    scales = sample_bone_scales(np.random.default_rng(0), len(PARENTS), PARENTS,
                                SKELETON.left_right)
    out = rescale_bones(gt, PARENTS, scales)
    children = [j for j, p in enumerate(PARENTS) if p >= 0]
    np.testing.assert_allclose(_bone_lengths(out, PARENTS),
                               _bone_lengths(gt, PARENTS) * scales[children], rtol=1e-10)
    bones_out = out[:, children] - out[:, [PARENTS[j] for j in children]]
    bones_gt = gt[:, children] - gt[:, [PARENTS[j] for j in children]]
    np.testing.assert_allclose(bones_out, bones_gt * scales[children, None], atol=1e-12)
    np.testing.assert_array_equal(out[:, 0], gt[:, 0])


def test_bone_scales_are_symmetric_and_in_range():
    scales = sample_bone_scales(np.random.default_rng(0), len(PARENTS), PARENTS,
                                SKELETON.left_right)
    assert scales[0] == 1.0
    assert np.all((scales[1:] > 0.85 * 0.9 - 1e-9) & (scales[1:] < 1.15 * 1.1 + 1e-9))
    for left, right in SKELETON.left_right:
        assert scales[left] == scales[right]


def test_camera_sees_the_subject():
    gt = _walk(90)
    camera = sample_camera(np.random.default_rng(0), gt[:, 0], np.array([0.0, 0.0, 1.0]), FPS)
    in_camera = world_to_camera(gt, camera)
    assert np.all(in_camera[..., 2] > 2.0)
    pixels = project_pinhole(in_camera, camera.focal, camera.center)
    assert pixels.shape == (90, len(PARENTS), 2)
    assert np.all((pixels > 0.0) & (pixels < 1000.0))
    # the head is above the hips in the image (image y points down)
    assert np.all(pixels[:, 4, 1] < pixels[:, 0, 1])
    np.testing.assert_allclose(project_pinhole(np.array([0.0, 0.0, 5.0]), 1000.0, (500, 400)),
                               [500.0, 400.0])


def test_wrong_input_rank_raises_value_error():
    gt = _walk(8)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        simulate_estimate(gt[0], PARENTS, FPS, ErrorModelParams(), rng)
    with pytest.raises(ValueError):
        simulate_estimate(gt[None], PARENTS, FPS, ErrorModelParams(), rng)
    with pytest.raises(ValueError):
        simulate_estimate_batch(gt, PARENTS, FPS, rng)
    with pytest.raises(ValueError):
        simulate_estimate(gt, PARENTS[:-1], FPS, ErrorModelParams(), rng)
    with pytest.raises(ValueError):
        rescale_bones(gt[0, 0], PARENTS, np.ones(len(PARENTS)))
    with pytest.raises(ValueError):
        project_pinhole(np.zeros((4, 2)), 1000.0, (500, 500))
    with pytest.raises(ValueError):
        sample_error_params(rng, strength=-1.0)
    with pytest.raises(ValueError, match="breadth"):
        sample_error_params(rng, breadth=-0.5)


def test_breadth_widens_every_range_on_a_log_scale():
    """breadth b: each parameter spans its default log-range times b, about the same centre."""
    def log_ranges(breadth):
        rng = np.random.default_rng(3)
        draws = [sample_error_params(rng, breadth=breadth) for _ in range(4000)]
        return {name: np.log([getattr(p, name) for p in draws])
                for name in ("drift_corr_s", "occlusion_rate", "keypoint_sigma")}

    narrow, wide, none = log_ranges(1.0), log_ranges(2.0), log_ranges(0.0)
    for name in narrow:
        width = np.ptp(narrow[name])
        assert np.ptp(wide[name]) == pytest.approx(2 * width, rel=0.02), name
        assert np.median(wide[name]) == pytest.approx(np.median(narrow[name]), abs=0.05 * width)
        assert np.ptp(none[name]) == 0  # breadth 0: the centre value for every sequence
    assert np.exp(wide["drift_corr_s"]).min() < 0.26 and np.exp(wide["drift_corr_s"]).max() > 3.9


def augmented_windows(rep: str, overrides: list[str],
                      count: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(ground truth, the built augmenter's output) on ``count`` random 32-frame windows of the
    sample's skeleton (metres in 3D, pixels in 2D), both generators seeded.

    Shape:
        both (count, 32, 21, 3) in 3D, (count, 32, 21, 2) in 2D.
    """
    from lib.core.builders import build_augmenter
    from lib.core.config import get_cfg_defaults

    skeleton = get_skeleton("bandai21")
    coords = 2 if rep == "2D" else 3
    gt = np.random.default_rng(0).normal(0, 0.2, (count, 32, skeleton.num_joints, coords))
    if rep == "2D":
        gt = gt * 300 + 500
    cfg = get_cfg_defaults()
    cfg.merge_from_list(overrides)
    return gt, build_augmenter(cfg, skeleton, rep, "sample")(gt, np.random.default_rng(5))


@pytest.mark.parametrize("rep", ("3D", "2D"))
def test_augmenter_follows_the_breadth_key(rep):
    outputs = [augmented_windows(rep, ["TRAIN.AUGMENT", "mix", "TRAIN.AUGMENT_BREADTH",
                                       str(breadth)])[1] for breadth in (1.0, 1.0, 2.0)]
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert not np.allclose(outputs[0], outputs[2])
