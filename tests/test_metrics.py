"""Tests for the pure metric functions and the Evaluator accumulator."""

import math
import tracemalloc

import numpy as np
import pytest

from lib.core.evaluator import Evaluator
from lib.core.metrics import (
    accel_errors,
    accel_errors_padded,
    hardest_fraction_mean,
    joint_errors,
    mpjpe,
    pa_mpjpe,
    pck,
    procrustes_align,
    root_align,
)

# 2 frames, 2 joints, 3D; per-joint errors are 3-4-5 triangles and unit steps.
_GT = np.array([[[0, 0, 0], [1, 0, 0]], [[0, 0, 0], [1, 0, 0]]], dtype=float)
_PRED = np.array([[[3, 4, 0], [1, 0, 0]], [[0, 0, 1], [1, 2, 0]]], dtype=float)


def _random_rotation(rng: np.random.Generator, dim: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def test_hand_computed_joint_errors_and_mpjpe():
    np.testing.assert_allclose(joint_errors(_PRED, _GT), [[5, 0], [1, 2]])
    np.testing.assert_allclose(mpjpe(_PRED, _GT), [2.5, 1.5])
    # Rooted at joint 0: frame 0 j1 diff (-3, -4, 0) -> 5; frame 1 j1 diff (0, 2, -1) -> sqrt 5.
    np.testing.assert_allclose(joint_errors(_PRED, _GT, (0,)), [[0, 5], [0, math.sqrt(5)]])
    np.testing.assert_allclose(mpjpe(_PRED, _GT, (0,)), [2.5, math.sqrt(5) / 2])


def test_root_align_removes_global_shift():
    rng = np.random.default_rng(0)
    gt = rng.standard_normal((6, 5, 3))
    shift = rng.standard_normal((6, 1, 3))  # a different shift in every frame
    np.testing.assert_allclose(mpjpe(gt + shift, gt, root_joints=(1, 2)), 0, atol=1e-12)
    assert np.all(mpjpe(gt + shift, gt) > 0)
    np.testing.assert_array_equal(root_align(gt, ()), gt)
    np.testing.assert_allclose(root_align(gt, (3,))[:, 3], 0)


@pytest.mark.parametrize("dim", [2, 3])
def test_pa_mpjpe_of_similarity_copy_is_zero(dim):
    rng = np.random.default_rng(dim)
    gt = rng.standard_normal((8, 12, dim))
    rotations = np.stack([_random_rotation(rng, dim) for _ in range(8)])  # (T, D, D)
    pred = 1.7 * np.einsum("tjd,tde->tje", gt, rotations) + rng.standard_normal((8, 1, dim))
    assert np.all(mpjpe(pred, gt) > 0.1)
    np.testing.assert_allclose(pa_mpjpe(pred, gt), 0, atol=1e-6)
    np.testing.assert_allclose(procrustes_align(pred, gt), gt, atol=1e-6)


def test_procrustes_does_not_reflect_and_is_safe_on_degenerate_frames():
    rng = np.random.default_rng(1)
    gt = rng.standard_normal((2, 10, 3))
    mirrored = gt * np.array([1.0, 1.0, -1.0])
    assert np.all(pa_mpjpe(mirrored, gt) > 1e-3)
    degenerate = np.ones((2, 10, 3))
    aligned = procrustes_align(degenerate, gt)
    assert np.all(np.isfinite(aligned))
    np.testing.assert_allclose(aligned, np.broadcast_to(gt.mean(axis=1, keepdims=True), gt.shape))


def test_pa_mpjpe_not_above_mpjpe_on_random_data():
    rng = np.random.default_rng(2)
    gt = rng.standard_normal((50, 17, 3))
    pred = gt + 0.3 * rng.standard_normal((50, 17, 3)) + 0.5
    assert np.all(pa_mpjpe(pred, gt) <= mpjpe(pred, gt) + 1e-12)


def test_accel_zero_for_constant_velocity_offset():
    rng = np.random.default_rng(3)
    gt = rng.standard_normal((20, 4, 3))
    velocity = rng.standard_normal((1, 4, 3))
    pred = gt + velocity * np.arange(20)[:, None, None]
    np.testing.assert_allclose(accel_errors(pred, gt), 0, atol=1e-12)


def test_accel_of_known_quadratic():
    pred = np.zeros((4, 1, 2))
    pred[:, 0, 0] = [0, 1, 4, 9]  # t^2: second difference 2 everywhere
    pred[:, 0, 1] = [0, 0, 0, 3]  # second differences 0 then 3
    gt = np.zeros_like(pred)
    np.testing.assert_allclose(accel_errors(pred, gt), [2, math.sqrt(13)])
    np.testing.assert_allclose(accel_errors_padded(pred, gt), [0, 2, math.sqrt(13), 0])
    assert accel_errors(pred[:2], gt[:2]).shape == (0,)
    assert accel_errors_padded(pred[:2], gt[:2]).shape == (2,)


def test_padded_accel_mean_underreports_by_t_minus_2_over_t():
    rng = np.random.default_rng(4)
    pred, gt = rng.standard_normal((2, 25, 5, 3))
    real = accel_errors(pred, gt).mean()
    np.testing.assert_allclose(accel_errors_padded(pred, gt).mean(), real * 23 / 25)


def test_pck_hand_example():
    gt = np.zeros((2, 4, 2))
    pred = np.zeros((2, 4, 2))
    pred[0, :, 0] = [3, 7, 15, 25]  # box size 100 -> limits 5, 10, 20
    pred[1, :, 1] = [0, 4, 5, 100]  # box size max(20, 40) = 40 -> limits 2, 4, 8; 4 is not < 4
    bbox = np.array([[0, 0, 100, 50], [10, 10, 30, 50]], dtype=float)
    np.testing.assert_allclose(pck(pred, gt, bbox), [[0.25, 0.5, 0.75], [0.25, 0.25, 0.75]])
    with pytest.raises(ValueError, match="2D"):
        pck(np.zeros((2, 4, 3)), np.zeros((2, 4, 3)), bbox)


def test_hardest_fraction_mean():
    values = np.arange(1, 101, dtype=float)
    assert hardest_fraction_mean(values) == 100
    assert hardest_fraction_mean(values, 0.05) == 98
    assert hardest_fraction_mean(values, 0.07) == 97  # 0.07 * 100 rounds up to 7, not 8
    assert hardest_fraction_mean([3.0, 1.0, 2.0]) == 3
    assert math.isnan(hardest_fraction_mean([]))
    with pytest.raises(ValueError):
        hardest_fraction_mean(values, 0.0)


def test_rank_check_raises():
    with pytest.raises(ValueError, match=r"\(T, J, D\)"):
        mpjpe(np.zeros((4, 3)), np.zeros((4, 3)))


def _evaluator(**kwargs) -> Evaluator:
    return Evaluator(root_joints=(0,), unit_scale=1000.0, joint_names=("pelvis", "knee", "ankle"),
                     **kwargs)


def _sequences(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    gt_a, gt_b = rng.standard_normal((10, 3, 3)), rng.standard_normal((30, 3, 3))
    return [(gt_a + 0.01 * rng.standard_normal(gt_a.shape), gt_a),
            (gt_b + 0.05 * rng.standard_normal(gt_b.shape), gt_b)]


def test_evaluator_frame_weighted_means():
    sequences = _sequences(np.random.default_rng(5))
    evaluator = _evaluator()
    for pred, gt in sequences:
        evaluator.process(pred, gt)
    summary = evaluator.summarize()
    pred_all = np.concatenate([p for p, _ in sequences])
    gt_all = np.concatenate([g for _, g in sequences])
    frame_mean = 1000 * mpjpe(pred_all, gt_all, (0,)).mean()
    sequence_mean = 1000 * np.mean([mpjpe(p, g, (0,)).mean() for p, g in sequences])
    np.testing.assert_allclose(summary["mpjpe"], frame_mean)
    assert abs(summary["mpjpe"] - sequence_mean) > 1.0
    np.testing.assert_allclose(summary["pa_mpjpe"], 1000 * pa_mpjpe(pred_all, gt_all).mean())
    accel = np.concatenate([accel_errors(root_align(p, (0,)), root_align(g, (0,)))
                            for p, g in sequences])
    np.testing.assert_allclose(summary["accel"], 1000 * accel.mean())
    np.testing.assert_allclose(summary["accel_padded"], 1000 * accel.sum() / 40)
    np.testing.assert_allclose(summary["accel_hard1"], 1000 * accel.max())
    np.testing.assert_allclose(summary["mpjpe_hard1"], 1000 * mpjpe(pred_all, gt_all, (0,)).max())
    assert summary["frames"] == 40 and summary["sequences"] == 2
    per_joint = evaluator.per_joint()
    assert list(per_joint) == ["pelvis", "knee", "ankle"] and per_joint["pelvis"] == 0
    np.testing.assert_allclose(np.mean(list(per_joint.values())), summary["mpjpe"])
    assert [seq["frames"] for seq in evaluator.per_sequence()] == [10, 30]


def test_masked_frames_do_not_change_the_summary():
    rng = np.random.default_rng(6)
    (pred, gt), _ = _sequences(rng)
    cut = _evaluator()
    cut.process(pred, gt, name="a")
    padded = _evaluator()
    garbage = np.full((5, 3, 3), np.nan)
    mask = np.r_[np.ones(10, bool), np.zeros(5, bool)]
    padded.process(np.concatenate([pred, garbage]), np.concatenate([gt, garbage + 1e9]), mask,
                   name="a")
    assert padded.summarize() == pytest.approx(cut.summarize())
    (padded_seq,), (cut_seq,) = padded.per_sequence(), cut.per_sequence()
    assert padded_seq["name"] == "a" and padded_seq["frames"] == 10
    for key in ("mpjpe", "pa_mpjpe", "accel"):
        assert padded_seq[key] == pytest.approx(cut_seq[key])


def test_accel_only_over_consecutive_real_frames():
    rng = np.random.default_rng(7)
    pred, gt = rng.standard_normal((2, 12, 3, 3))
    mask = np.ones(12, bool)
    mask[5] = False  # real runs 0..4 and 6..11
    evaluator = _evaluator()
    evaluator.process(pred, gt, mask)
    runs = [slice(0, 5), slice(6, 12)]
    accel = np.concatenate([accel_errors(root_align(pred[run], (0,)), root_align(gt[run], (0,)))
                            for run in runs])
    summary = evaluator.summarize()
    np.testing.assert_allclose(summary["accel"], 1000 * accel.mean())
    np.testing.assert_allclose(summary["accel_padded"], 1000 * accel.sum() / 11)
    assert summary["frames"] == 11


def test_evaluator_pck_and_shape_errors():
    evaluator = Evaluator((), 1.0, ("a", "b", "c", "d"), with_pck=True)
    pred, gt = np.zeros((1, 4, 2)), np.zeros((1, 4, 2))
    pred[0, :, 0] = [3, 7, 15, 25]
    evaluator.process(pred, gt, bbox=np.array([[0, 0, 100, 50]]))
    summary = evaluator.summarize()
    assert [summary[f"pck_{t}"] for t in (0.05, 0.1, 0.2)] == pytest.approx([25, 50, 75])
    with pytest.raises(ValueError, match="bbox"):
        evaluator.process(pred, gt)
    with pytest.raises(ValueError, match=r"\(5, 4, 2\).*\(5, 3, 2\)"):
        evaluator.process(np.zeros((5, 4, 2)), np.zeros((5, 3, 2)))
    evaluator.reset()
    assert evaluator.summarize()["frames"] == 0 and math.isnan(evaluator.summarize()["mpjpe"])


@pytest.mark.parametrize("chunk_frames", (1, 2, 7))
def test_chunked_scoring_equals_whole_sequence(chunk_frames: int):
    rng = np.random.default_rng(8)
    pred, gt = rng.standard_normal((2, 23, 4, 2))
    mask = np.ones(23, bool)
    mask[[0, 6, 7, 15]] = False  # gaps at a chunk edge and inside chunks
    bbox = np.tile([0.0, 0.0, 4.0, 3.0], (23, 1))
    results = []
    for chunk in (chunk_frames, 10_000):
        evaluator = Evaluator((0,), 1000.0, ("a", "b", "c", "d"), with_pck=True,
                              chunk_frames=chunk)
        evaluator.process(pred, gt, mask, bbox=bbox, name="s")
        evaluator.process(pred[:5], gt[:5], bbox=bbox[:5])
        results.append((evaluator.summarize(), evaluator.per_joint(), evaluator.per_sequence()))
    (chunked, chunked_joints, chunked_seqs), (whole, whole_joints, whole_seqs) = results
    assert chunked == pytest.approx(whole)
    assert chunked_joints == pytest.approx(whole_joints)
    for got, want in zip(chunked_seqs, whole_seqs):
        assert got == pytest.approx(want)


def test_scoring_memory_is_bounded_by_the_chunk_not_the_sequence():
    rng = np.random.default_rng(9)
    pred, gt = rng.standard_normal((2, 20_000, 14, 3)).astype(np.float32)
    peaks = {}
    for chunk in (256, 20_000):
        evaluator = _evaluator_14(chunk)
        tracemalloc.start()
        evaluator.process(pred, gt)
        peaks[chunk] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    # one float64 copy of the sequence alone is 6.4 MB; the per-frame results are 0.6 MB
    assert peaks[256] < 3.0 < 20 < peaks[20_000], peaks


def _evaluator_14(chunk_frames: int) -> Evaluator:
    return Evaluator((0,), 1000.0, tuple(f"j{i}" for i in range(14)), chunk_frames=chunk_frames)
