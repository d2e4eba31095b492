"""Body reshaping of training windows (TRAIN.RESHAPE_BODIES, lib/data/body_reshaping.py)."""

import numpy as np
import pytest
import torch

from lib.core.builders import build_body_reshaper, build_pose_perturber, build_train_dataset
from lib.core.config import get_cfg_defaults
from lib.data.body_reshaping import BODY_RANGE, BONE_RANGE, reshape_bodies
from lib.data.dataset import PoseWindowDataset
from lib.data.error_model import rescale_bones
from lib.data.skeletons import get_skeleton
from lib.data.smoothnet_io import SequenceSet
from lib.errors import ConfigError
from tests.test_mirroring import _raw

BANDAI = get_skeleton("bandai21")
CHILDREN = [j for j, p in enumerate(BANDAI.parents) if p >= 0]
PARENT_OF = [BANDAI.parents[j] for j in CHILDREN]


def _bones(positions: np.ndarray) -> np.ndarray:
    """Shape: (..., J, 3) -> (..., J - roots, 3), each child minus its parent."""
    return positions[..., CHILDREN, :] - positions[..., PARENT_OF, :]


def test_each_window_gets_one_symmetric_body_and_keeps_its_error():
    det, gt = _raw(4, 16)
    inputs, targets = np.stack(det), np.stack(gt)
    new_inputs, new_targets = reshape_bodies(inputs, targets, BANDAI.parents, BANDAI.left_right,
                                             np.random.default_rng(0))
    ratio = np.linalg.norm(_bones(new_targets), axis=-1) / np.linalg.norm(_bones(targets), axis=-1)
    # One factor per bone and window, the same in every frame, in the drawn range.
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(16, axis=1), rtol=1e-9)
    low, high = BODY_RANGE[0] * BONE_RANGE[0], BODY_RANGE[1] * BONE_RANGE[1]
    assert np.all((ratio > low) & (ratio < high))
    assert np.ptp(ratio[:, 0].mean(axis=1)) > 0.01  # the windows' bodies differ
    factor = dict(zip(CHILDREN, ratio[:, 0].T))
    for left, right in BANDAI.left_right:
        np.testing.assert_allclose(factor[left], factor[right], rtol=1e-9)
    # Bone directions and the roots are kept; the input's error about the target is unchanged.
    cosine = np.sum(_bones(new_targets) * _bones(targets), axis=-1) / (
        np.linalg.norm(_bones(new_targets), axis=-1) * np.linalg.norm(_bones(targets), axis=-1))
    np.testing.assert_allclose(cosine, 1.0, atol=1e-9)
    roots = list(BANDAI.root_joints)
    np.testing.assert_array_equal(new_targets[..., roots, :], targets[..., roots, :])
    np.testing.assert_allclose(new_inputs - new_targets, inputs - targets, atol=1e-12)


def test_per_window_scales_equal_one_body_at_a_time():
    _, gt = _raw(3, 8)
    targets = np.stack(gt)
    scales = np.random.default_rng(1).uniform(0.8, 1.2, (3, BANDAI.num_joints))
    together = rescale_bones(targets, BANDAI.parents, scales[:, None, :])
    for window in range(3):
        np.testing.assert_allclose(together[window],
                                   rescale_bones(targets[window], BANDAI.parents, scales[window]))
    with pytest.raises(ValueError, match="scales must have shape"):
        rescale_bones(targets, BANDAI.parents, scales[:2, None, :])


def _dataset(probability: float, augment: str = "none") -> PoseWindowDataset:
    def augmenter(truth, generator):
        return truth + generator.normal(0, 0.01, truth.shape)

    def reshaper(inputs, targets, generator):
        return reshape_bodies(inputs, targets, BANDAI.parents, BANDAI.left_right, generator)
    return PoseWindowDataset(*_raw(), 16, augmenter=None if augment == "none" else augmenter,
                             augment_mode=augment, seed=7, reshape_probability=probability,
                             body_reshaper=reshaper if probability else None)


def _lengths(windows: torch.Tensor) -> np.ndarray:
    """Shape: (B, T, J * 3) -> (B, T, bones)."""
    positions = windows.numpy().reshape(*windows.shape[:2], BANDAI.num_joints, 3)
    return np.linalg.norm(_bones(positions), axis=-1)


def test_dataset_reshapes_about_half_deterministically_and_before_the_errors():
    keys = [(1, i) for i in range(50)]
    plain = _dataset(0.0).__getitems__(keys)
    half = _dataset(0.5)
    first, again = half.__getitems__(keys), half.__getitems__(keys)
    torch.testing.assert_close(first["target"], again["target"])
    changed = ~np.isclose(_lengths(first["target"]), _lengths(plain["target"]),
                          rtol=1e-5).all(axis=(1, 2))
    assert 10 < int(changed.sum()) < 40
    torch.testing.assert_close(first["input"] - first["target"],
                               plain["input"] - plain["target"], atol=1e-5, rtol=0)
    assert torch.equal(half.groundtruth, _dataset(0.0).groundtruth)  # stored frames untouched
    # Fresh simulated errors are drawn about the reshaped targets: within 0.1 of them.
    mixed = _dataset(1.0, "mix").__getitems__(keys)
    assert not np.isclose(_lengths(mixed["target"]), _lengths(plain["target"]), rtol=1e-5).all()
    close = ((mixed["input"] - mixed["target"]).abs() < 0.1).flatten(1).all(dim=1)
    assert int(close.sum()) >= 25


def test_probability_zero_changes_nothing():
    keys = [(0, i) for i in range(20)]
    plain = PoseWindowDataset(*_raw(), 16).__getitems__(keys)
    off = _dataset(0.0).__getitems__(keys)
    for key in ("input", "target", "mask"):
        assert torch.equal(off[key], plain[key])


@pytest.mark.parametrize("key, build, probability, mover", [
    ("TRAIN.RESHAPE_BODIES", build_body_reshaper, "reshape_probability", "body_reshaper"),
    ("TRAIN.PERTURB_POSES", build_pose_perturber, "pose_probability", "pose_perturber")])
def test_builder_reads_the_key_and_refuses_what_cannot_be_moved(key, build, probability, mover):
    """Both joint movers (other bodies, other joint angles) need 3D positions."""
    cfg = get_cfg_defaults()
    assert build(cfg, BANDAI, "3D") is None
    cfg.merge_from_list([key, "0.5"])
    for rep in ("2D", "rot"):
        with pytest.raises(ConfigError, match=f"{key} needs 3D.*set {key} 0"):
            build(cfg, BANDAI, rep)
    det, gt = _raw()
    sets = [SequenceSet("sample_sim_3D", "train", BANDAI, "3D", det, gt, ["a", "b"])]
    dataset = build_train_dataset(cfg, sets, det, gt)
    assert getattr(dataset, probability) == 0.5
    batch = dataset.__getitems__([(0, i) for i in range(18)])  # the built mover runs
    assert not torch.equal(batch["target"], PoseWindowDataset(det, gt, 32).__getitems__(
        [(0, i) for i in range(18)])["target"])
    with pytest.raises(ValueError, match=probability):
        PoseWindowDataset(det, gt, 16, **{probability: 1.5})
    with pytest.raises(ValueError, match=mover):
        PoseWindowDataset(det, gt, 16, **{probability: 0.5})
