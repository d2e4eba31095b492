"""Turning training windows about the vertical axis (TRAIN.TURN, lib/data/turning.py)."""

import math

import pytest
import torch

from lib.core.builders import build_train_dataset
from lib.core.config import get_cfg_defaults
from lib.data.dataset import PoseWindowDataset
from lib.data.skeletons import get_skeleton
from lib.data.smoothnet_io import SequenceSet
from lib.data.turning import turn_windows
from lib.errors import ConfigError
from tests.test_mirroring import _raw

BANDAI = get_skeleton("bandai21")


def _windows(count: int = 4, frames: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    targets = torch.randn(count, frames, BANDAI.num_joints * 3, generator=generator,
                          dtype=torch.float64) + 3.0
    return targets + 0.05 * torch.randn(targets.shape, generator=generator,
                                        dtype=torch.float64), targets


def _joints(windows: torch.Tensor) -> torch.Tensor:
    return windows.reshape(*windows.shape[:2], -1, 3)


def test_a_quarter_turn_maps_x_to_minus_z_about_the_targets_mean():
    inputs, targets = _windows()
    quarter = torch.full((4,), math.pi / 2, dtype=torch.float64)
    turned_inputs, turned = turn_windows(inputs, targets, quarter)
    centre = _joints(targets).mean(dim=(1, 2))[:, None, None, :]
    before, after = _joints(targets) - centre, _joints(turned) - centre
    torch.testing.assert_close(after[..., 0], before[..., 2])
    torch.testing.assert_close(after[..., 2], -before[..., 0])
    torch.testing.assert_close(after[..., 1], before[..., 1])  # heights are kept
    torch.testing.assert_close(_joints(turned).mean(dim=(1, 2)), centre[:, 0, 0])
    # The input turns about the same line: its error keeps its length and turns with it.
    error, turned_error = _joints(inputs - targets), _joints(turned_inputs - turned)
    torch.testing.assert_close(turned_error.norm(dim=-1), error.norm(dim=-1))
    torch.testing.assert_close(turned_error[..., 0], error[..., 2])


def test_turning_keeps_the_body_and_undoes_with_the_opposite_angle():
    inputs, targets = _windows(seed=1)
    angles = torch.tensor([0.3, -2.0, 3.1, 1.0], dtype=torch.float64)
    turned_inputs, turned = turn_windows(inputs, targets, angles)
    joints, turned_joints = _joints(targets), _joints(turned)
    torch.testing.assert_close(torch.cdist(turned_joints, turned_joints),
                               torch.cdist(joints, joints))
    back_inputs, back = turn_windows(turned_inputs, turned, -angles)
    torch.testing.assert_close(back, targets)
    torch.testing.assert_close(back_inputs, inputs)


def test_dataset_turns_about_half_deterministically_keeping_heights():
    keys = [(1, i) for i in range(50)]
    plain = PoseWindowDataset(*_raw(), 16).__getitems__(keys)
    half = PoseWindowDataset(*_raw(), 16, seed=7, turn_probability=0.5)
    first, again = half.__getitems__(keys), half.__getitems__(keys)
    torch.testing.assert_close(first["target"], again["target"])
    changed = (first["target"] != plain["target"]).flatten(1).any(dim=1)
    assert 10 < int(changed.sum()) < 40
    torch.testing.assert_close(_joints(first["target"])[..., 1], _joints(plain["target"])[..., 1])
    joints, turned = _joints(plain["target"]), _joints(first["target"])
    torch.testing.assert_close(torch.cdist(turned, turned), torch.cdist(joints, joints))
    off = PoseWindowDataset(*_raw(), 16, seed=7, turn_probability=0.0).__getitems__(keys)
    assert torch.equal(off["target"], plain["target"]) and torch.equal(off["input"], plain["input"])


def test_turning_is_refused_where_there_is_no_vertical_axis():
    det, gt = _raw()
    with pytest.raises(ValueError, match="turn_probability"):
        PoseWindowDataset(det, gt, 16, turn_probability=-0.1)
    flat = [g[..., :2] for g in gt]
    with pytest.raises(ValueError, match="turning needs 3D"):
        PoseWindowDataset(flat, flat, 16, turn_probability=0.5)
    cfg = get_cfg_defaults()
    cfg.merge_from_list(["TRAIN.TURN", "0.5"])
    sets = [SequenceSet("sample_sim_2D", "train", BANDAI, "2D", flat, flat, ["a", "b"])]
    with pytest.raises(ConfigError, match="TRAIN.TURN needs 3D"):
        build_train_dataset(cfg, sets, flat, flat)
    sets = [SequenceSet("sample_sim_3D", "train", BANDAI, "3D", det, gt, ["a", "b"])]
    assert build_train_dataset(cfg, sets, det, gt).turn_probability == 0.5
