"""Paper-setting configs (also in sub-folders) merge, validate and build a working model."""

import glob

import pytest
import torch

from lib.core.builders import build_model, coord_dim
from lib.core.cli import build_parser, load_config
from lib.data.smoothnet_io import dataset_skeleton

ALL_CONFIGS = sorted(glob.glob("configs/**/*.yaml", recursive=True))
PAPER_SETTINGS = ["configs/h36m_cpn_2D.yaml", "configs/jhmdb_simplepose_2D.yaml",
                  "configs/pw3d_spin_smpl.yaml", "configs/aist_vibe_smpl.yaml",
                  "configs/sample_sim_2D.yaml", "configs/sample_sim_rot.yaml",
                  *(f"configs/window_sweep/aist_vibe_3D_T{t}.yaml" for t in (8, 16, 32, 64))]


def test_every_paper_setting_has_a_config():
    assert set(PAPER_SETTINGS) <= set(ALL_CONFIGS)


@pytest.mark.parametrize("path", ALL_CONFIGS)
def test_config_merges_and_freezes(path):
    cfg = load_config(build_parser("test").parse_args(["--cfg", path]))
    assert cfg.is_frozen()


@pytest.mark.parametrize("path", PAPER_SETTINGS)
def test_model_of_the_setting_runs(path):
    # The joint layout and window come from the file; a small width keeps the test fast.
    small = ["MODEL.HIDDEN_SIZE", "32", "MODEL.RES_HIDDEN_SIZE", "16", "MODEL.NUM_BLOCKS", "1"]
    cfg = load_config(build_parser("test").parse_args(["--cfg", path, *small]))
    rep = cfg.DATASET.BODY_REPRESENTATIONS[0]
    skeleton = dataset_skeleton(cfg.DATASET.BASE_DIR, cfg.DATASET.NAMES[0],
                                cfg.DATASET.ESTIMATORS[0], rep)
    model, kwargs = build_model(cfg, skeleton, rep)
    window = torch.randn(1, cfg.MODEL.SLIDE_WINDOW_SIZE, skeleton.num_joints * coord_dim(rep))
    with torch.no_grad():
        assert model.eval()(window).shape == window.shape
    assert kwargs["window_size"] == cfg.MODEL.SLIDE_WINDOW_SIZE
