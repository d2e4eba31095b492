"""The MODEL architecture keys (issue 12) are documented and survive cfg.dump() -> reload."""

from __future__ import annotations

import inspect

from lib.core import config
from lib.core.builders import model_kwargs
from lib.core.config import get_cfg_defaults, merge_file
from lib.data.skeletons import get_skeleton
from lib.models.motionrefinenet import LEAN_ARCHITECTURE

NEW_KEYS = ("JOINT_HIDDEN_SIZE", "FREQ_STACKED", "LOW_BAND_PROJECTION", "LEARN_BAND_WEIGHTS",
            "FREQ_JOINT_MIXING", "FREQ_IDENTITY", "TIME_LAYERNORM", "HALVE_RES_HIDDEN",
            "UP_PATH_MIXING", "CPU_KERNELS", "FREQ_NUM_BLOCKS", "TEMPORAL_BRANCH", "FREQ_BRANCH",
            "DOF_SPLIT")


def test_every_new_key_has_a_comment_above_it() -> None:
    lines = inspect.getsource(config).splitlines()
    for key in NEW_KEYS:
        index = next(i for i, line in enumerate(lines) if line.startswith(f"_C.MODEL.{key} ="))
        assert lines[index - 1].startswith("#"), key
    source = "\n".join(lines)
    for key in LEAN_ARCHITECTURE:  # the lean key set is listed in the comment block
        assert f"MODEL.{key.upper()} " in source, key


def test_new_keys_round_trip_through_dump(tmp_path) -> None:
    cfg = get_cfg_defaults()
    changed = {bool: lambda value: not value, int: lambda value: 96, str: lambda value: "all_low"}
    flipped = {key: changed[type(cfg.MODEL[key])](cfg.MODEL[key]) for key in NEW_KEYS}
    cfg.merge_from_list([item for key, value in flipped.items()
                         for item in (f"MODEL.{key}", str(value))])
    path = tmp_path / "config.yaml"
    path.write_text(cfg.dump())
    reloaded = get_cfg_defaults()
    merge_file(reloaded, str(path))
    assert {key: reloaded.MODEL[key] for key in NEW_KEYS} == flipped


def test_defaults_are_the_paper_architecture() -> None:
    kwargs = model_kwargs(get_cfg_defaults(), get_skeleton("lsp14"), "3D")
    assert kwargs["joint_hidden_size"] == 512
    assert all(kwargs[key] != value for key, value in LEAN_ARCHITECTURE.items()
               if key != "learn_band_weights")


def test_ablation_switches_reach_the_model() -> None:
    """The ablation rows' keys: one branch off, one frequency block, every joint in one group."""
    skeleton = get_skeleton("lsp14")

    def kwargs(*opts: str) -> dict:
        cfg = get_cfg_defaults()
        cfg.merge_from_list(list(opts))
        return model_kwargs(cfg, skeleton, "3D")

    assert kwargs()["low_dof_joints"] == tuple(skeleton.dof_joints()[0])
    assert kwargs("MODEL.DOF_SPLIT", "all_high")["low_dof_joints"] == ()
    assert kwargs("MODEL.DOF_SPLIT", "all_low")["low_dof_joints"] == tuple(range(14))
    assert kwargs("MODEL.FREQ_NUM_BLOCKS", "1")["freq_num_blocks"] == 1
    assert not kwargs("MODEL.FREQ_BRANCH", "False")["use_frequency_branch"]
    assert not kwargs("MODEL.TEMPORAL_BRANCH", "False")["use_temporal_branch"]


def test_demo_trains_the_ablation_tables_full_network() -> None:
    """make demo's config builds the paper's form, the network of configs/ablation/full.yaml."""
    skeleton = get_skeleton("bandai21")

    def kwargs(path: str) -> dict:
        cfg = get_cfg_defaults()
        merge_file(cfg, path)
        return model_kwargs(cfg, skeleton, "3D")

    demo = kwargs("configs/sample_sim_3D.yaml")
    assert demo == kwargs("configs/ablation/full.yaml")
    assert all(demo[key] != value for key, value in LEAN_ARCHITECTURE.items()
               if key != "learn_band_weights")
    assert {key: kwargs("configs/ablation/lean.yaml")[key] for key in LEAN_ARCHITECTURE} \
        == LEAN_ARCHITECTURE
