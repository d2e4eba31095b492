"""Released SmoothNet checkpoints: name mapping, detection, and evaluation through eval.py."""

import json

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

import eval as eval_entry
from lib.core.evaluation import model_from_checkpoint
from lib.data.normalize import WindowNormalizer
from lib.errors import CheckpointError
from lib.models.smoothnet_weights import (
    is_released_smoothnet,
    map_released_names,
    read_model_checkpoint,
    released_model_kwargs,
    released_smoothnet,
)

_WINDOW, _HIDDEN, _RES, _BLOCKS = 32, 64, 16, 2


def released_state_dict(prefix: str = "") -> dict[str, torch.Tensor]:
    """Random weights under the names and shapes of the authors' SmoothNet module."""
    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen) * 0.1

    state = {"encoder.0.weight": rand(_HIDDEN, _WINDOW), "encoder.0.bias": rand(_HIDDEN),
             "decoder.weight": rand(_WINDOW, _HIDDEN), "decoder.bias": rand(_WINDOW)}
    for block in range(_BLOCKS):
        state[f"res_blocks.{block}.linear1.weight"] = rand(_RES, _HIDDEN)
        state[f"res_blocks.{block}.linear1.bias"] = rand(_RES)
        state[f"res_blocks.{block}.linear2.weight"] = rand(_HIDDEN, _RES)
        state[f"res_blocks.{block}.linear2.bias"] = rand(_HIDDEN)
    return {prefix + key: value for key, value in state.items()}


def reference_forward(state: dict, x: torch.Tensor) -> torch.Tensor:
    """The released model's computation, written out: (B, C, T) -> (B, C, T), eval mode."""
    h = F.leaky_relu(F.linear(x, state["encoder.0.weight"], state["encoder.0.bias"]), 0.1)
    for block in range(_BLOCKS):
        name = f"res_blocks.{block}"
        inner = F.leaky_relu(F.linear(h, state[f"{name}.linear1.weight"],
                                      state[f"{name}.linear1.bias"]), 0.2)
        h = h + F.leaky_relu(F.linear(inner, state[f"{name}.linear2.weight"],
                                      state[f"{name}.linear2.bias"]), 0.2)
    return F.linear(h, state["decoder.weight"], state["decoder.bias"])


@pytest.fixture
def released_file(tmp_path):
    path = str(tmp_path / "checkpoint_32.pth.tar")
    torch.save({"epoch": 12, "state_dict": released_state_dict(), "performance": 1.0,
                "optimizer": {}}, path)
    return path


def test_detects_released_files_only():
    assert is_released_smoothnet({"state_dict": released_state_dict()})
    assert is_released_smoothnet({"state_dict": released_state_dict("module.")})
    assert not is_released_smoothnet({"state_dict": released_state_dict(), "model_name": "x"})
    assert not is_released_smoothnet({"model": {}})


def test_sizes_come_from_the_shapes():
    assert released_model_kwargs(released_state_dict()) == {
        "window_size": _WINDOW, "hidden_size": _HIDDEN, "res_hidden_size": _RES,
        "num_blocks": _BLOCKS, "dropout": 0.5}


def test_mapped_model_computes_the_released_function():
    state = released_state_dict()
    model, _ = released_smoothnet({"state_dict": released_state_dict("module.")})
    x = torch.randn(3, _WINDOW, 14 * 3)  # (B, T, C)
    expected = reference_forward(state, x.transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(model.eval()(x), expected, atol=1e-5)


def test_unknown_names_are_an_error():
    state = {**released_state_dict(), "extra.weight": torch.zeros(1)}
    with pytest.raises(KeyError, match="extra.weight"):
        map_released_names(state)


def test_model_from_checkpoint_needs_the_data_normaliser(released_file):
    with pytest.raises(ValueError, match="released SmoothNet"):
        model_from_checkpoint(released_file)
    normalizer = WindowNormalizer(14, 3, mode="fixed")
    model, used, window, state = model_from_checkpoint(released_file, "cpu", normalizer)
    assert (window, state["model_name"], used) == (_WINDOW, "smoothnet_released", normalizer)


def test_eval_accepts_a_released_checkpoint(released_file, aist_3d, tmp_path):
    out = str(tmp_path / "r.json")
    argv = ["--cfg", "configs/smoke.yaml", "--dataset_name", "aist", "--estimator", "vibe",
            "--body_representation", "3D", "--slide_window_size", "32", "--checkpoint",
            released_file, "--json", out, "DATASET.BASE_DIR", aist_3d]
    assert eval_entry.main(argv) == 0
    rows = json.load(open(out))["aist_vibe_3D"]
    assert rows["smoothnet_released"]["frames"] == rows["input"]["frames"]


def test_each_checkpoint_is_read_once_and_dispatched(released_file, tmp_path, monkeypatch):
    calls = []
    real_load = torch.load

    def counting_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)
    monkeypatch.setattr(torch, "load", counting_load)
    kind, checkpoint = read_model_checkpoint(released_file)
    assert kind == "released" and is_released_smoothnet(checkpoint)
    model_from_checkpoint(released_file, "cpu", WindowNormalizer(14, 3, mode="fixed"))
    assert calls == [True, True]  # one weights-only read per call


def test_a_file_of_neither_kind_is_a_checkpoint_error(tmp_path):
    path = str(tmp_path / "other.pth")
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="other.pth.*nor is it a released SmoothNet"):
        read_model_checkpoint(path)
