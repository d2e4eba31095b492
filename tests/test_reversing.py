"""Training windows played backwards (TRAIN.REVERSE, PoseWindowDataset)."""

import numpy as np
import pytest
import torch

from lib.core.builders import build_train_dataset
from lib.core.config import get_cfg_defaults, validate
from lib.data.dataset import PoseWindowDataset
from lib.data.skeletons import get_skeleton
from lib.data.smoothnet_io import SequenceSet
from lib.errors import ConfigError
from tests.test_mirroring import _raw

BANDAI = get_skeleton("bandai21")
KEYS = [(1, i) for i in range(26)]  # every window of the two sequences below


def _short_and_long() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One sequence shorter than the 16-frame window (padded, masked at its end), one longer."""
    det, gt = _raw(count=2, frames=40)
    return [det[0][:11], det[1]], [gt[0][:11], gt[1]]


def _changed(batch: dict[str, torch.Tensor], plain: dict[str, torch.Tensor]) -> torch.Tensor:
    return (batch["target"] != plain["target"]).flatten(1).any(dim=1)


def test_reversed_windows_are_the_plain_ones_backwards_with_their_masks():
    plain = PoseWindowDataset(*_short_and_long(), 16).__getitems__(KEYS)
    half = PoseWindowDataset(*_short_and_long(), 16, seed=5, reverse_probability=0.5)
    assert len(half) == len(KEYS)
    first, again = half.__getitems__(KEYS), half.__getitems__(KEYS)
    for key in ("input", "target", "mask"):
        assert torch.equal(first[key], again[key])
    changed = _changed(first, plain)
    assert 5 < int(changed.sum()) < 21
    for key in ("input", "target", "mask"):
        assert torch.equal(first[key][changed], plain[key][changed].flip(1))
        assert torch.equal(first[key][~changed], plain[key][~changed])
    # The short sequence's padding (mask False) moves to the start of its reversed window.
    assert changed[0] and not plain["mask"][0, -1] and plain["mask"][0, 0]
    assert not first["mask"][0, 0] and first["mask"][0, -1]


def test_simulated_errors_are_drawn_after_reversing_and_keep_their_direction():
    ramp = np.linspace(0.0, 0.15, 16)[None, :, None, None]  # an error that grows in time

    def augmenter(truth, generator):
        return truth + ramp

    det, gt = _short_and_long()
    dataset = PoseWindowDataset(det, gt, 16, augmenter=augmenter, augment_mode="replace",
                                seed=5, reverse_probability=0.5)
    plain = PoseWindowDataset(det, gt, 16).__getitems__(KEYS)
    batch = dataset.__getitems__(KEYS)
    assert _changed(batch, plain).any()
    error = (batch["input"] - batch["target"]).reshape(len(KEYS), 16, -1, 3)
    torch.testing.assert_close(error, torch.from_numpy(ramp).float().expand_as(error))


def test_reverse_key_is_validated_and_reaches_the_dataset():
    det, gt = _raw()
    with pytest.raises(ValueError, match="reverse_probability"):
        PoseWindowDataset(det, gt, 16, reverse_probability=1.5)
    cfg = get_cfg_defaults()
    cfg.merge_from_list(["TRAIN.REVERSE", "1.5"])
    with pytest.raises(ConfigError, match="TRAIN.REVERSE"):
        validate(cfg)
    cfg.merge_from_list(["TRAIN.REVERSE", "0.5"])
    validate(cfg)
    flat = [g[..., :2] for g in gt]  # 2D windows reverse too
    sets = [SequenceSet("sample_sim_2D", "train", BANDAI, "2D", flat, flat, ["a", "b"])]
    assert build_train_dataset(cfg, sets, flat, flat).reverse_probability == 0.5
