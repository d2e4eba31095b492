"""Left/right mirroring of training windows (TRAIN.MIRROR, lib/data/mirroring.py)."""

import numpy as np
import pytest
import torch

from lib.core.builders import build_mirror_permutation, build_train_dataset
from lib.core.config import get_cfg_defaults
from lib.data.dataset import PoseWindowDataset
from lib.data.mirroring import left_right_permutation, mirror_windows
from lib.data.skeletons import Skeleton, get_skeleton
from lib.data.smoothnet_io import SequenceSet
from lib.errors import ConfigError

BANDAI = get_skeleton("bandai21")


def windows(count: int = 5, frames: int = 8, coords: int = 3, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, frames, BANDAI.num_joints * coords, generator=generator)


def test_permutation_swaps_each_pair_and_keeps_the_rest():
    order = left_right_permutation(BANDAI.num_joints, BANDAI.left_right).tolist()
    names = BANDAI.joint_names
    assert [names[j] for j in order][:9] == ["Hips", "Spine", "Chest", "Neck", "Head",
                                             "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R"]
    assert all(order[order[j]] == j for j in range(len(order)))  # an involution


@pytest.mark.parametrize("pairs", [((0, 1), (1, 2)), ((0, 5),), ((2, 2),)])
def test_permutation_refuses_overlapping_or_bad_pairs(pairs):
    with pytest.raises(ValueError, match="pair"):
        left_right_permutation(4, pairs)


@pytest.mark.parametrize("coords", (2, 3))
def test_mirroring_twice_is_the_identity_and_keeps_the_window_in_place(coords):
    order = left_right_permutation(BANDAI.num_joints, BANDAI.left_right)
    inputs, targets = windows(coords=coords), windows(coords=coords, seed=1)
    once = mirror_windows(inputs, targets, order, coords)
    twice = mirror_windows(*once, order, coords)
    torch.testing.assert_close(twice[0], inputs)
    torch.testing.assert_close(twice[1], targets)
    assert not torch.allclose(once[1], targets)
    mean_x = targets.view(5, 8, -1, coords)[..., 0].mean(dim=(1, 2))
    torch.testing.assert_close(once[1].view(5, 8, -1, coords)[..., 0].mean(dim=(1, 2)), mean_x)


def test_mirror_image_of_a_symmetric_pose_is_itself_and_distances_are_kept():
    order = left_right_permutation(BANDAI.num_joints, BANDAI.left_right)
    pose = torch.randn(1, 4, BANDAI.num_joints, 3)
    pose[..., [0, 1, 2, 3, 4], 0] = 0.0  # spine on the plane x = 0
    for left, right in BANDAI.left_right:  # right side = left side reflected
        pose[..., right, :] = pose[..., left, :] * torch.tensor([-1.0, 1.0, 1.0])
    flat = pose.reshape(1, 4, -1)
    _, mirrored = mirror_windows(flat, flat, order, 3)
    torch.testing.assert_close(mirrored, flat)
    other = torch.randn(1, 4, BANDAI.num_joints * 3)
    _, image = mirror_windows(other, other, order, 3)
    joints, image_joints = other.view(4, -1, 3), image.view(4, -1, 3)
    # Distances between joints are those between their mirror partners: the same body.
    torch.testing.assert_close(torch.cdist(image_joints, image_joints),
                               torch.cdist(joints, joints)[:, order][:, :, order])


def _raw(count: int = 2, frames: int = 40) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Detected and ground-truth bandai21 sequences (random poses, 2 cm input noise); also
    the training pairs of test_turning and test_body_reshaping."""
    rng = np.random.default_rng(3)
    gt = [rng.normal(0, 0.3, (frames, BANDAI.num_joints, 3)) + [2.0, 1.0, 0.0]
          for _ in range(count)]
    return [g + rng.normal(0, 0.02, g.shape) for g in gt], gt


def make_dataset(probability: float, augment: str = "none") -> PoseWindowDataset:
    det, gt = _raw()

    def augmenter(truth, generator):
        return truth + generator.normal(0, 0.01, truth.shape)
    order = left_right_permutation(BANDAI.num_joints, BANDAI.left_right)
    return PoseWindowDataset(det, gt, 16, augmenter=None if augment == "none" else augmenter,
                             augment_mode=augment, seed=7, mirror_probability=probability,
                             mirror_permutation=order if probability else None)


def test_dataset_mirrors_input_and_target_together():
    plain, mirrored = make_dataset(0.0), make_dataset(1.0)
    keys = [(2, i) for i in range(10)]
    before, after = plain.__getitems__(keys), mirrored.__getitems__(keys)
    order = left_right_permutation(BANDAI.num_joints, BANDAI.left_right)
    want = mirror_windows(before["input"], before["target"], order, 3)
    torch.testing.assert_close(after["input"], want[0])
    torch.testing.assert_close(after["target"], want[1])
    assert torch.equal(after["mask"], before["mask"])
    assert torch.equal(plain.detected, mirrored.detected)  # the stored frames are untouched


def test_dataset_mirrors_about_half_deterministically_and_before_the_errors():
    half = make_dataset(0.5, "mix")
    keys = [(1, i) for i in range(50)]
    first, again = half.__getitems__(keys), half.__getitems__(keys)
    torch.testing.assert_close(first["input"], again["input"])
    unmirrored = make_dataset(0.0, "mix").__getitems__(keys)["target"]
    changed = (first["target"] != unmirrored).flatten(1).any(dim=1)
    assert 10 < int(changed.sum()) < 40
    # Simulated inputs are drawn from the mirrored targets: within 0.1 of them everywhere.
    close = ((first["input"] - first["target"]).abs() < 0.1).flatten(1).all(dim=1)
    assert int(close.sum()) >= 25


def test_probability_zero_changes_nothing():
    keys = [(0, i) for i in range(20)]
    off = make_dataset(0.0, "mix").__getitems__(keys)
    legacy = PoseWindowDataset(*_raw(), 16, augmenter=lambda t, g: t + g.normal(0, 0.01, t.shape),
                               augment_mode="mix", seed=7).__getitems__(keys)
    torch.testing.assert_close(off["input"], legacy["input"])


def test_builder_reads_the_key_and_refuses_what_cannot_be_mirrored():
    cfg = get_cfg_defaults()
    assert build_mirror_permutation(cfg, BANDAI, "3D") is None
    cfg.merge_from_list(["TRAIN.MIRROR", "0.5"])
    assert build_mirror_permutation(cfg, BANDAI, "2D").tolist()[5] == 9
    with pytest.raises(ConfigError, match="TRAIN.MIRROR needs 2D or 3D"):
        build_mirror_permutation(cfg, BANDAI, "rot")
    lonely = Skeleton("lonely", ("a", "b"), (-1, 0), (0,), 30.0)
    with pytest.raises(ConfigError, match="no left/right joint pairs"):
        build_mirror_permutation(cfg, lonely, "3D")
    det, gt = _raw()
    sets = [SequenceSet("sample_sim_3D", "train", BANDAI, "3D", det, gt, ["a", "b"])]
    dataset = build_train_dataset(cfg, sets, det, gt)
    assert dataset.mirror_probability == 0.5 and dataset.mirror_permutation is not None


class Lopsided(torch.nn.Module):
    """A window model that treats left and right differently (x shifted by joint index)."""

    def forward(self, x):
        return x + 0.01 * torch.arange(x.shape[-1], dtype=x.dtype)


@pytest.mark.parametrize("coords", (2, 3))
def test_mirror_averaged_model_is_mirror_equivariant(coords):
    from lib.core.mirror_test import MirrorAveraged
    from lib.data.mirroring import mirror_about

    order = left_right_permutation(BANDAI.num_joints, BANDAI.left_right)
    averaged = MirrorAveraged(Lopsided(), order, coords)
    x = windows(coords=coords)
    centre = torch.zeros(len(x))  # the plane x = 0 of the model's input
    # f(M x) != M f(x) for the lopsided model; the average commutes with the mirror.
    plain = Lopsided()
    assert not torch.allclose(plain(mirror_about(x, centre, order, coords)),
                              mirror_about(plain(x), centre, order, coords), atol=1e-4)
    torch.testing.assert_close(averaged(mirror_about(x, centre, order, coords)),
                               mirror_about(averaged(x), centre, order, coords))
    expected = 0.5 * (plain(x) + mirror_about(plain(mirror_about(x, centre, order, coords)),
                                              centre, order, coords))
    torch.testing.assert_close(averaged(x), expected)


def test_test_time_mirror_key_wraps_eval_and_refiner(tmp_path):
    from lib.api import Refiner
    from lib.core.builders import build_test_time_mirror
    from lib.core.mirror_test import MirrorAveraged
    from tests.refine_fixtures import tiny_checkpoint

    cfg = get_cfg_defaults()
    model = Lopsided()
    assert build_test_time_mirror(cfg, BANDAI, "3D")(model) is model
    cfg.merge_from_list(["EVAL.MIRROR_TEST", "True"])
    assert isinstance(build_test_time_mirror(cfg, BANDAI, "3D")(model), MirrorAveraged)
    with pytest.raises(ConfigError, match="EVAL.MIRROR_TEST needs 2D or 3D"):
        build_test_time_mirror(cfg, BANDAI, "rot")
    path = tiny_checkpoint(str(tmp_path / "tiny.pth"))
    sequence = np.random.default_rng(0).normal(0, 0.2, (30, BANDAI.num_joints, 3))
    plain = Refiner.from_checkpoint(path).refine(sequence)
    mirrored = Refiner.from_checkpoint(path, mirror_test=True).refine(sequence)
    assert np.abs(plain - mirrored).max() > 1e-4  # an untrained model is not symmetric
    flipped = sequence[:, left_right_permutation(BANDAI.num_joints, BANDAI.left_right)].copy()
    flipped[..., 0] *= -1
    again = Refiner.from_checkpoint(path, mirror_test=True).refine(flipped)
    again = again[:, left_right_permutation(BANDAI.num_joints, BANDAI.left_right)]
    again[..., 0] *= -1
    np.testing.assert_allclose(again, mirrored, atol=1e-4)  # equivariant end to end


def test_refiner_follows_the_checkpoints_stored_setting_unless_told(tmp_path):
    from lib.api import Refiner
    from lib.utils.checkpoint import load_checkpoint, save_checkpoint
    from tests.refine_fixtures import tiny_checkpoint

    path = tiny_checkpoint(str(tmp_path / "tiny.pth"))
    cfg = get_cfg_defaults()
    cfg.merge_from_list(["EVAL.MIRROR_TEST", "True"])
    state = load_checkpoint(path)
    save_checkpoint(str(tmp_path / "stored.pth"), {**state, "cfg": cfg.dump()})
    sequence = np.random.default_rng(1).normal(0, 0.2, (20, BANDAI.num_joints, 3))
    told = Refiner.from_checkpoint(path, mirror_test=True).refine(sequence)
    stored = Refiner.from_checkpoint(str(tmp_path / "stored.pth")).refine(sequence)
    np.testing.assert_allclose(stored, told, atol=1e-6)
    plain = Refiner.from_checkpoint(path).refine(sequence)  # no stored config: off
    assert np.abs(plain - told).max() > 1e-4
    overruled = Refiner.from_checkpoint(str(tmp_path / "stored.pth"), mirror_test=False)
    np.testing.assert_allclose(overruled.refine(sequence), plain, atol=1e-6)
