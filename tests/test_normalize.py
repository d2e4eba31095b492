"""Window normalisation: every mode is computed from the input and inverted exactly."""

import numpy as np
import pytest
import torch
from torch import nn

from lib.core.builders import make_normalizer
from lib.core.inference import refine_sequences
from lib.data.normalize import WindowNormalizer
from lib.data.skeletons import get_skeleton


@pytest.mark.parametrize("mode", ["centre", "box", "fixed"])
def test_round_trip_is_exact(mode):
    normalizer = WindowNormalizer(15, 2, (0, 1), scale=1000.0, mode=mode, offset=500.0)
    window = torch.rand(4, 16, 30, dtype=torch.float64) * 300 + 100
    stats = normalizer.centre(window)
    assert stats.shape == (4, 2, 30)
    back = normalizer.denormalize(normalizer.normalize(window, stats), stats)
    assert torch.allclose(back, window, atol=1e-10)


def test_box_scales_by_the_input_extent_only():
    normalizer = WindowNormalizer(2, 2, mode="box")
    window = torch.tensor([[[0.0, 0.0, 40.0, 10.0], [10.0, 5.0, 50.0, 20.0]]])  # (1, T=2, C=4)
    stats = normalizer.centre(window)
    assert torch.allclose(stats[0, 1], torch.full((4,), 50.0))  # x extent 0..50 beats y 0..20
    normalised = normalizer.normalize(window, stats)
    assert normalised.abs().max() <= 1.0
    # a scaled and shifted window normalises to the same numbers: size invariance
    assert torch.allclose(normalizer.normalize(window * 3 + 7, normalizer.centre(window * 3 + 7)),
                          normalised, atol=1e-6)


def test_box_never_divides_by_zero():
    normalizer = WindowNormalizer(3, 2, mode="box", min_scale=1.0)
    window = torch.ones(2, 8, 6)
    assert torch.isfinite(normalizer.normalize(window, normalizer.centre(window))).all()


def test_kwargs_rebuild_the_same_normaliser():
    normalizer = WindowNormalizer(15, 2, (0,), mode="box", min_scale=2.0)
    window = torch.rand(2, 8, 30) * 100
    rebuilt = WindowNormalizer(**normalizer.kwargs())
    assert torch.equal(rebuilt.centre(window), normalizer.centre(window))


def test_old_checkpoint_kwargs_still_load():
    old = {"num_joints": 14, "coord_dim": 3, "root_joints": [2, 3], "scale": 1.0}
    assert WindowNormalizer(**old).mode == "centre"


def test_representation_normalisers():
    smpl = make_normalizer(get_skeleton("smpl24"), "smpl")
    window = torch.rand(2, 8, 144)
    assert torch.equal(smpl.normalize(window, smpl.centre(window)), window)  # identity
    image = make_normalizer(get_skeleton("h36m17"), "2D", "image", 1000.0)
    assert (image.mode, image.scale) == ("centre", 1000.0)
    box = make_normalizer(get_skeleton("jhmdb15"), "2D", "box")
    assert box.mode == "box"
    with pytest.raises(ValueError, match="not one of"):
        WindowNormalizer(2, 2, mode="zscore")


@pytest.mark.parametrize("mode", ["centre", "box"])
def test_identity_model_returns_the_input_pixels(mode, rng):
    """Normalise, run a model, invert: keypoints land back on the image exactly."""
    normalizer = WindowNormalizer(15, 2, mode=mode, scale=1000.0)
    sequences = [(rng.uniform(0, 640, (n, 15, 2))).astype(np.float32) for n in (40, 9)]
    refined = refine_sequences(nn.Identity(), normalizer, sequences, window=16, step=3)
    for seq, out in zip(sequences, refined):
        assert out.shape == seq.shape
        assert np.allclose(out, seq, atol=1e-3)
