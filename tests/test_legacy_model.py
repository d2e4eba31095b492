"""Checkpoints of the lean MotionRefineNet (before the paper's architecture) still load.

tests/data/legacy_motionrefinenet.pt was recorded with the lean model's code (issue 12, step 0):
for an fft and a haar model (T 16, J 5, D 3, H 16, R 8, 2 blocks, joints 0 and 2 low-DoF) it
holds the constructor kwargs as checkpoints stored them, the state_dict, an input batch and the
eval-mode output.
"""

from __future__ import annotations

import os

import pytest
import torch

from lib.core.builders import model_kwargs
from lib.core.config import get_cfg_defaults
from lib.data.skeletons import get_skeleton
from lib.models import create_model
from lib.models.motionrefinenet import LEAN_ARCHITECTURE

_FIXTURE = os.path.join(os.path.dirname(__file__), "data", "legacy_motionrefinenet.pt")
CASES = torch.load(_FIXTURE, weights_only=True)["motionrefinenet"]


@pytest.mark.parametrize("case", CASES, ids=[c["kwargs"]["freq_transform"] for c in CASES])
def test_legacy_checkpoint_gives_recorded_outputs(case: dict) -> None:
    assert not set(LEAN_ARCHITECTURE) & set(case["kwargs"])  # written before those kwargs
    model = create_model("motionrefinenet", **case["kwargs"])
    model.load_state_dict(case["state_dict"])  # strict: every old key maps to a new one
    with torch.no_grad():
        output = model.eval()(case["input"])
    torch.testing.assert_close(output, case["output"], atol=1e-6, rtol=0)


def test_lean_config_keys_build_the_lean_network() -> None:
    """The documented lean key set builds a model whose state_dict matches the old one."""
    cfg = get_cfg_defaults()
    cfg.merge_from_list(["MODEL.JOINT_HIDDEN_SIZE", "0", "MODEL.FREQ_STACKED", "False",
                         "MODEL.LOW_BAND_PROJECTION", "False", "MODEL.FREQ_JOINT_MIXING", "False",
                         "MODEL.FREQ_IDENTITY", "False", "MODEL.TIME_LAYERNORM", "False",
                         "MODEL.HALVE_RES_HIDDEN", "True", "MODEL.UP_PATH_MIXING", "False"])
    kwargs = model_kwargs(cfg, get_skeleton("lsp14"), "3D")
    assert {key: kwargs[key] for key in LEAN_ARCHITECTURE} == LEAN_ARCHITECTURE
    old_kwargs = {key: value for key, value in kwargs.items() if key not in LEAN_ARCHITECTURE}
    lean = create_model("motionrefinenet", **kwargs)
    legacy = create_model("motionrefinenet", **old_kwargs)
    assert lean.state_dict().keys() == legacy.state_dict().keys()


def test_full_kwargs_are_not_overridden_by_the_lean_fill() -> None:
    low, _ = get_skeleton("lsp14").dof_joints()
    model = create_model("motionrefinenet", window_size=16, num_joints=14, coord_dim=3,
                         low_dof_joints=tuple(low), hidden_size=16, res_hidden_size=8,
                         num_blocks=2, joint_hidden_size=8, freq_stacked=True,
                         up_path_mixing=True)
    assert len(model.frequency_branch) == 2
    assert model.temporal_branch[0].up_mixers is not None


def test_legacy_checkpoint_loads_through_the_evaluation_loader(tmp_path) -> None:
    """eval.py's loader compares state_dict keys before loading: old key names must exist."""
    from lib.core.evaluation import load_weights

    case = CASES[0]
    model = create_model("motionrefinenet", **case["kwargs"])
    load_weights(model, case["state_dict"], str(tmp_path / "old.pth"))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(case["input"]), case["output"], atol=1e-6,
                                   rtol=0)
