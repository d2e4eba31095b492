"""The shared blocks are their textbook formulas, and the CPU dropout behaves like dropout."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from lib.models.cpu_fast import FastDropout, dropout_keep_mask
from lib.models.layers import JointMixingBlock, TemporalResidualBlock


def test_joint_mixing_is_layer_norm_and_mlp_over_channels() -> None:
    torch.manual_seed(0)
    block = JointMixingBlock(42, hidden=84, dropout=0.0)
    with torch.no_grad():
        for parameter in block.parameters():
            parameter.normal_()
    x = 3.0 + torch.randn(4, 42, 64)  # (B, C, L)
    rows = F.layer_norm(x.transpose(1, 2), (42,), block.norm.weight, block.norm.bias)
    expand, _, project, _ = block.mlp
    mixed = F.linear(F.gelu(F.linear(rows, expand.weight, expand.bias)), project.weight,
                     project.bias)
    torch.testing.assert_close(block(x), x + mixed.transpose(1, 2))


@pytest.mark.parametrize("norm", (False, True))
def test_temporal_block_is_residual_mlp_along_time(norm: bool) -> None:
    torch.manual_seed(1)
    block = TemporalResidualBlock(16, 8, dropout=0.3, norm=norm).eval()
    x = torch.randn(3, 5, 16)
    expand, _, _, project, _, _ = block.mlp
    inner = F.layer_norm(x, (16,), block.norm.weight, block.norm.bias) if norm else x
    hidden = F.leaky_relu(F.linear(inner, expand.weight, expand.bias), 0.2)
    expected = x + F.leaky_relu(F.linear(hidden, project.weight, project.bias), 0.2)
    torch.testing.assert_close(block(x), expected)


def test_state_dict_keys() -> None:
    keys = set(JointMixingBlock(6, 12).state_dict())
    assert keys == {"norm.weight", "norm.bias", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight",
                    "mlp.2.bias"}
    # without the norm the keys are SmoothNet's (its released weights load)
    assert set(TemporalResidualBlock(8, 4).state_dict()) == {"mlp.0.weight", "mlp.0.bias",
                                                            "mlp.3.weight", "mlp.3.bias"}
    assert {"norm.weight", "norm.bias"} <= set(TemporalResidualBlock(8, 4, norm=True)
                                               .state_dict())


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="expected last axis 8"):
        TemporalResidualBlock(8, 4)(torch.randn(2, 7))
    with pytest.raises(ValueError, match=r"expected \(B, 6, L\)"):
        JointMixingBlock(6, 12)(torch.randn(2, 5, 3))


@pytest.mark.parametrize("p", (0.1, 0.25, 0.5, 0.7))  # 16-bit, 8-bit, 8-bit, 16-bit chunks
def test_keep_mask_rate(p: float) -> None:
    torch.manual_seed(0)
    keep = dropout_keep_mask(torch.Size((1000, 1003)), p)  # odd count: a partial last word
    assert keep.dtype == torch.bool and keep.shape == (1000, 1003)
    assert abs(keep.float().mean().item() - (1 - p)) < 3e-3
    # neighbouring chunks of one random word are independent
    both = (keep[:, :-1] & keep[:, 1:]).float().mean().item()
    assert abs(both - (1 - p) ** 2) < 3e-3


def test_fast_dropout_scales_gradients_like_dropout() -> None:
    torch.manual_seed(1)
    layer = FastDropout(0.25).train()
    x = torch.ones(200, 300, requires_grad=True)
    y = layer(x)
    kept = y != 0
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.75))
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.75)
    assert abs(kept.float().mean().item() - 0.75) < 0.01


def test_fast_dropout_is_dropout_when_not_sampling() -> None:
    x = torch.randn(10, 10)
    assert torch.equal(FastDropout(0.5).eval()(x), x)
    assert torch.equal(FastDropout(0.0).train()(x), x)
    assert torch.equal(FastDropout(1.0).train()(x), torch.zeros_like(x))
    assert isinstance(FastDropout(0.3), nn.Dropout)


def test_fast_dropout_follows_the_torch_seed() -> None:
    layer = FastDropout(0.5).train()
    torch.manual_seed(7)
    first = layer(torch.ones(64, 64))
    torch.manual_seed(7)
    assert torch.equal(layer(torch.ones(64, 64)), first)
