"""accelerate(model) swaps in the CPU kernels without changing the model's function."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lib.core.builders import build_model
from lib.core.config import get_cfg_defaults
from lib.data.skeletons import get_skeleton
from lib.models import MotionRefineNet, SmoothNet
from lib.models.cpu_fast import FastDropout, FusedLinear, accelerate
from lib.models.motionrefinenet import LEAN_ARCHITECTURE

# (skeleton, D, T, H): several skeletons, coordinate sizes and window sizes
CASES = (("lsp14", 3, 16, 32), ("h36m17", 2, 32, 64), ("smpl24", 6, 16, 32))


def tiny_model(skeleton: str, coord_dim: int, window: int, hidden: int, **extra) -> nn.Module:
    torch.manual_seed(0)
    low, _ = get_skeleton(skeleton).dof_joints()
    kwargs = {"hidden_size": hidden, "res_hidden_size": 16, "num_blocks": 2, "dropout": 0.25,
              "joint_hidden_size": 24, **extra}
    return MotionRefineNet(window, get_skeleton(skeleton).num_joints, coord_dim, tuple(low),
                           **kwargs)


def outputs_and_grads(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Eval-mode output and the gradients of every parameter and of the input."""
    model.eval()
    x = x.clone().requires_grad_(True)
    out = model(x)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    return [out, *torch.autograd.grad(out, [x, *model.parameters()], upstream)]


def assert_swap_is_equivalent(model: nn.Module, x: torch.Tensor) -> None:
    textbook = outputs_and_grads(model, x)
    fast = outputs_and_grads(accelerate(copy.deepcopy(model)), x)
    torch.testing.assert_close(fast[0], textbook[0], atol=1e-5, rtol=1e-5)
    for got, want in zip(fast[1:], textbook[1:], strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("architecture", ("full", "lean"))
@pytest.mark.parametrize("freq_transform", ("fft", "haar"))
@pytest.mark.parametrize("skeleton, coord_dim, window, hidden", CASES)
def test_motionrefinenet_swap_matches_textbook(skeleton: str, coord_dim: int, window: int,
                                              hidden: int, freq_transform: str,
                                              architecture: str) -> None:
    extra = LEAN_ARCHITECTURE if architecture == "lean" else {}
    model = tiny_model(skeleton, coord_dim, window, hidden, freq_transform=freq_transform,
                       **extra)
    x = torch.randn(3, window, get_skeleton(skeleton).num_joints * coord_dim)
    assert_swap_is_equivalent(model, x)


def test_smoothnet_swap_matches_textbook() -> None:
    torch.manual_seed(0)
    assert_swap_is_equivalent(SmoothNet(16, hidden_size=32, res_hidden_size=16, num_blocks=2),
                              torch.randn(3, 16, 10))


def test_swap_keeps_parameters_and_fuses_activations() -> None:
    model = tiny_model("lsp14", 3, 16, 32)
    before = dict(model.named_parameters())
    keys = list(model.state_dict())
    accelerate(model)
    assert list(model.state_dict()) == keys
    assert all(parameter is before[name] for name, parameter in model.named_parameters())
    assert not any(type(m) in (nn.Linear, nn.Dropout, nn.LeakyReLU, nn.Sigmoid, nn.GELU)
                   for m in model.modules())
    assert isinstance(model.encoder[0], FusedLinear) and isinstance(model.encoder[1], nn.Identity)
    assert model.encoder[0].activation == "leaky_relu" and model.encoder[0].slope == 0.1
    gate = model.frequency_branch[0].high_gate.band_gates[0]
    assert [gate[0].activation, gate[2].activation] == ["leaky_relu", "sigmoid"]
    time_mlp = model.temporal_branch[0].mixers[0].time_mixing.mlp
    assert isinstance(time_mlp[1], FastDropout) and isinstance(time_mlp[2], nn.Identity)
    joint_mlp = model.temporal_branch[0].mixers[0].joint_mixing.mlp
    assert joint_mlp[0].activation == "gelu" and isinstance(joint_mlp[1], nn.Identity)


def test_swapped_model_trains_with_fast_dropout() -> None:
    model = accelerate(tiny_model("lsp14", 3, 16, 32)).train()
    out = model(torch.randn(4, 16, 42))
    out.square().mean().backward()
    assert torch.isfinite(out).all()
    assert all(p.grad is not None for p in model.parameters())


def test_swap_falls_back_when_the_op_is_broken(broken_linear_op: str) -> None:
    assert_swap_is_equivalent(tiny_model("h36m17", 2, 16, 32), torch.randn(2, 16, 34))


@pytest.mark.parametrize("enabled", (True, False))
def test_cpu_kernels_config_switch(enabled: bool) -> None:
    cfg = get_cfg_defaults()
    cfg.merge_from_list(["MODEL.HIDDEN_SIZE", "32", "MODEL.RES_HIDDEN_SIZE", "8",
                         "MODEL.NUM_BLOCKS", "1", "MODEL.JOINT_HIDDEN_SIZE", "16",
                         "MODEL.CPU_KERNELS", str(enabled)])
    model, _ = build_model(cfg, get_skeleton("lsp14"), "3D")
    assert isinstance(model.decoder, FusedLinear) == enabled
    assert type(model.decoder) is (FusedLinear if enabled else nn.Linear)
