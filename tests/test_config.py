"""Config defaults, YAML deltas, CLI flags, validation and the dump round-trip."""

import glob
import re
from pathlib import Path

import pytest

from lib.core.cli import build_parser, load_config
from lib.core.config import get_cfg_defaults, merge_file, merge_list, validate
from lib.errors import ConfigError

CONFIG_FILES = sorted(glob.glob("configs/*.yaml"))


def parse(argv: str):
    return load_config(build_parser("test").parse_args(argv.split()))


def test_defaults_validate():
    cfg = get_cfg_defaults()
    validate(cfg)
    assert cfg.MODEL.NAME == "motionrefinenet"


def test_there_are_config_files():
    assert "configs/aist_vibe_3D.yaml" in CONFIG_FILES


@pytest.mark.parametrize("path", CONFIG_FILES)
def test_every_config_merges_freezes_and_round_trips(path, tmp_path):
    cfg = parse(f"--cfg {path}")
    assert cfg.is_frozen()
    dumped = tmp_path / "config.yaml"
    dumped.write_text(cfg.dump())
    reloaded = get_cfg_defaults()
    merge_file(reloaded, str(dumped))
    validate(reloaded)
    assert reloaded == cfg


def test_card_command_line_maps_flags():
    cfg = parse("--cfg configs/aist_vibe_3D.yaml --dataset_name aist --estimator vibe "
                "--body_representation 3D --slide_window_size 32")
    assert (cfg.DATASET.NAMES, cfg.DATASET.ESTIMATORS) == (["aist"], ["vibe"])
    assert cfg.DATASET.BODY_REPRESENTATIONS == ["3D"]
    assert cfg.MODEL.SLIDE_WINDOW_SIZE == 32
    assert (cfg.MODEL.HIDDEN_SIZE, cfg.MODEL.RES_HIDDEN_SIZE, cfg.MODEL.NUM_BLOCKS) == (512, 128, 5)


def test_comma_lists_and_broadcast():
    cfg = parse("--dataset_name aist,pw3d --estimator vibe,spin --body_representation 3D "
                "--slide_window_size 16")
    assert cfg.DATASET.NAMES == ["aist", "pw3d"]
    assert cfg.DATASET.ESTIMATORS == ["vibe", "spin"]
    assert cfg.DATASET.BODY_REPRESENTATIONS == ["3D", "3D"]
    assert cfg.MODEL.SLIDE_WINDOW_SIZE == 16


def test_trailing_overrides_win_over_file():
    cfg = parse("--cfg configs/aist_vibe_3D.yaml TRAIN.LR 0.01 MODEL.NAME smoothnet")
    assert cfg.TRAIN.LR == 0.01 and cfg.MODEL.NAME == "smoothnet"


def test_flag_after_overrides_is_read_as_a_flag():
    cfg = parse("--cfg configs/sample_sim_2D.yaml DATASET.NORM_2D image --checkpoint a.pth "
                "TRAIN.LR 0.01")
    assert cfg.DATASET.NORM_2D == "image" and cfg.TEST.WEIGHTS == ["a.pth"]
    assert cfg.TRAIN.LR == 0.01


def test_negative_value_after_key_is_a_value():
    cfg = parse("LOSS.W_ACCEL -0.5 --slide_window_size 16 TRAIN.LR -1e-3")
    assert cfg.LOSS.W_ACCEL == -0.5 and cfg.TRAIN.LR == -1e-3
    assert cfg.MODEL.SLIDE_WINDOW_SIZE == 16


def test_misspelt_key_names_the_nearest_keys():
    with pytest.raises(KeyError, match="TRAIN.LRR.*did you mean TRAIN.LR"):
        parse("TRAIN.LRR 0.01")


def test_misspelt_key_in_yaml_names_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("MODEL:\n  HIDEN_SIZE: 64\n")
    with pytest.raises(KeyError, match="bad.yaml.*MODEL.HIDEN_SIZE.*MODEL.HIDDEN_SIZE"):
        parse(f"--cfg {bad}")


def test_type_mismatch_is_rejected():
    with pytest.raises(ValueError, match="TRAIN.EPOCHS"):
        parse("TRAIN.EPOCHS 1.5")


@pytest.mark.parametrize("override,message", [
    ("MODEL.NAME resnet", "MODEL.NAME = 'resnet' is not one of"),
    ("MODEL.FREQ_TRANSFORM dct", "MODEL.FREQ_TRANSFORM"),
    ("MODEL.SLIDE_WINDOW_SIZE 4", "MODEL.SLIDE_WINDOW_SIZE = 4 must be an integer >= 8"),
    ("MODEL.HIDDEN_SIZE 30", "multiple of 4"),
    ("EVAL.SLIDE_STEP 0", "EVAL.SLIDE_STEP"),
    ("TRAIN.AUGMENT_BREADTH -1", "TRAIN.AUGMENT_BREADTH = -1.0 must be >= 0"),
    ("TRAIN.MIRROR 1.5", "TRAIN.MIRROR = 1.5 must be a probability in \\[0, 1\\]"),
    ("TRAIN.AUGMENT_WEAK -0.1", "TRAIN.AUGMENT_WEAK = -0.1 must be a probability in \\[0, 1\\]"),
    ("TRAIN.AUGMENT_WEAK_FLOOR 0", "TRAIN.AUGMENT_WEAK_FLOOR = 0.0 must be in \\(0, 1\\]"),
    ("TRAIN.PERTURB_POSES 2", "TRAIN.PERTURB_POSES = 2.0 must be a probability in \\[0, 1\\]"),
    ("TRAIN.PERTURB_POSES_SIGMA -0.1", "TRAIN.PERTURB_POSES_SIGMA = -0.1 must be in \\[0, 3.2\\]"),
    ("DATASET.BODY_REPRESENTATIONS ['4D']", "body representation '4D'"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ValueError, match=message):
        cfg = get_cfg_defaults()
        merge_list(cfg, override.split(" ", 1))
        validate(cfg)


def test_mismatched_list_lengths():
    with pytest.raises(ValueError, match="same length"):
        parse("--dataset_name aist,pw3d --estimator vibe,spin,tcmr")


def test_missing_config_file():
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        parse("--cfg configs/nope.yaml")


def test_an_integer_for_a_float_key_is_read_as_a_float(tmp_path):
    """``DATASET.VAL_FRACTION 0`` (the released recipe) means 0.0, in a file and an override."""
    cfg = get_cfg_defaults()
    merge_list(cfg, ["DATASET.VAL_FRACTION", "0", "TRAIN.LR", "-1"])
    assert cfg.DATASET.VAL_FRACTION == 0.0 and isinstance(cfg.DATASET.VAL_FRACTION, float)
    assert cfg.TRAIN.LR == -1.0 and isinstance(cfg.TRAIN.LR, float)
    path = tmp_path / "delta.yaml"
    path.write_text("DATASET:\n  VAL_FRACTION: 0\nTRAIN:\n  EPOCHS: 3\n")
    merge_file(cfg, str(path))
    assert isinstance(cfg.DATASET.VAL_FRACTION, float) and cfg.TRAIN.EPOCHS == 3
    with pytest.raises(ConfigError, match="TRAIN.EPOCHS"):  # no narrowing the other way
        merge_list(cfg, ["TRAIN.EPOCHS", "2.5"])


def test_every_key_has_a_comment_above_it():
    """Each key has its own comment line above it, or heads a group under one comment whose keys
    share their name's first word (FILTERS.SAVGOL_WINDOW and FILTERS.SAVGOL_ORDER)."""
    key_line = re.compile(r"_C((?:\.[A-Z0-9_]+)+) = ")

    def family(match):
        return match.group(1).rsplit(".", 1)[-1].split("_")[0]

    lines = Path("lib/core/config.py").read_text(encoding="utf-8").splitlines()
    uncommented = []
    for number, line in enumerate(lines):
        key = key_line.match(line)
        if not key or line.endswith("CfgNode()"):
            continue
        above = number - 1
        while (above >= 0 and (group := key_line.match(lines[above]))
               and family(group) == family(key)):
            above -= 1
        if above < 0 or not lines[above].lstrip().startswith("#"):
            uncommented.append(line)
    assert not uncommented
