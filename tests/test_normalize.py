"""Window normalisation: every mode is computed from the input and inverted exactly."""

import numpy as np
import pytest
import torch
from torch import nn

from lib.core.builders import build_normalizer, make_normalizer
from lib.core.config import get_cfg_defaults
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


@pytest.mark.parametrize("convention", ["centred", "released"])
@pytest.mark.parametrize("rep", ["2D", "3D"])
def test_conventions_round_trip(convention, rep):
    """normalise -> denormalise is the identity for both input conventions."""
    cfg = get_cfg_defaults()
    cfg.DATASET.INPUT_CONVENTION = convention
    skeleton = get_skeleton("h36m17")
    normalizer = build_normalizer(cfg, skeleton, rep)
    assert normalizer.convention == convention
    dims = 2 if rep == "2D" else 3
    window = torch.rand(3, 16, 17 * dims, dtype=torch.float64) * 900 + 50
    stats = normalizer.centre(window)
    back = normalizer.denormalize(normalizer.normalize(window, stats), stats)
    assert torch.allclose(back, window, atol=1e-9)


def test_released_convention_matches_the_formula():
    """3D stays raw metres; 2D pixels become (x - 500) / 500 for a 1000-pixel image."""
    cfg = get_cfg_defaults()
    cfg.DATASET.INPUT_CONVENTION = "released"
    skeleton = get_skeleton("bandai21")
    window_3d = torch.randn(2, 8, 63, dtype=torch.float64) + 3.0
    norm_3d = build_normalizer(cfg, skeleton, "3D")
    assert torch.equal(norm_3d.normalize(window_3d, norm_3d.centre(window_3d)), window_3d)
    window_2d = torch.rand(2, 8, 42, dtype=torch.float64) * 1000
    norm_2d = build_normalizer(cfg, skeleton, "2D")
    expected = (window_2d - 500.0) / 500.0
    assert torch.allclose(norm_2d.normalize(window_2d, norm_2d.centre(window_2d)), expected)
    rot = build_normalizer(cfg, get_skeleton("smpl24"), "smpl")
    window_rot = torch.rand(2, 8, 144)
    assert torch.equal(rot.normalize(window_rot, rot.centre(window_rot)), window_rot)


def test_convention_is_stored_and_old_kwargs_load_as_centred():
    released = WindowNormalizer.released(21, 2, image_size=1000.0)
    kwargs = released.kwargs()
    assert kwargs["convention"] == "released"
    assert (kwargs["offset"], kwargs["scale"]) == (500.0, 500.0)
    assert WindowNormalizer(**kwargs).convention == "released"
    old = {"num_joints": 14, "coord_dim": 3, "root_joints": [2, 3], "scale": 1.0,
           "mode": "centre", "offset": 0.0, "min_scale": 1.0}
    assert WindowNormalizer(**old).convention == "centred"


def test_bad_conventions_are_refused():
    with pytest.raises(ValueError, match="not one of"):
        WindowNormalizer(2, 2, convention="raw")
    with pytest.raises(ValueError, match="fixed mode"):
        WindowNormalizer(2, 2, mode="centre", convention="released")
    cfg = get_cfg_defaults()
    cfg.DATASET.INPUT_CONVENTION = "centered"
    with pytest.raises(ValueError, match="INPUT_CONVENTION"):
        build_normalizer(cfg, get_skeleton("bandai21"), "3D")
