"""The optimised layers compute what their plain formulations compute."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from lib.models.fused_linear import linear_add
from lib.models.layers import (
    FastDropout,
    JointMixingBlock,
    TemporalResidualBlock,
    dropout_keep_mask,
)


def reference_joint_mixing(block: JointMixingBlock, x: torch.Tensor) -> torch.Tensor:
    """LayerNorm and Linear on channels-last rows: the textbook form of the block.

    Shape:
        x: (C, B, L) -> (C, B, L)
    """
    rows = F.layer_norm(x.movedim(0, -1), (block.channels,), block.norm.weight,
                        block.norm.bias, block.norm.eps)
    expand, _, project, _ = block.mlp
    mixed = F.linear(F.gelu(F.linear(rows, expand.weight, expand.bias)), project.weight,
                     project.bias)
    return x + mixed.movedim(-1, 0)


def test_joint_mixing_matches_layer_norm_and_linear() -> None:
    torch.manual_seed(0)
    block = JointMixingBlock(42, expansion=2, dropout=0.0)
    with torch.no_grad():
        for parameter in block.parameters():
            parameter.normal_()
    x = 3.0 + torch.randn(42, 4, 64, requires_grad=True)
    fast, slow = block(x), reference_joint_mixing(block, x)
    torch.testing.assert_close(fast, slow, atol=1e-4, rtol=1e-4)
    gradient = torch.randn_like(fast)
    fast_grads = torch.autograd.grad(fast, [x, *block.parameters()], gradient)
    slow_grads = torch.autograd.grad(slow, [x, *block.parameters()], gradient)
    for fast_grad, slow_grad in zip(fast_grads, slow_grads):
        torch.testing.assert_close(fast_grad, slow_grad, atol=1e-3, rtol=1e-4)


def test_joint_mixing_without_gradients_accumulates_in_place_exactly() -> None:
    torch.manual_seed(0)
    block = JointMixingBlock(42, expansion=2, dropout=0.25).eval()
    x = torch.randn(42, 3, 32)
    with torch.no_grad():
        torch.testing.assert_close(block(x), reference_joint_mixing(block, x), atol=1e-5,
                                   rtol=1e-5)


@pytest.mark.parametrize("grad", (True, False))
def test_linear_add(grad: bool) -> None:
    torch.manual_seed(0)
    linear, x, skip = nn.Linear(8, 16), torch.randn(2, 5, 8), torch.randn(2, 5, 16)
    with torch.set_grad_enabled(grad):
        out = linear_add(linear, x, skip)
    torch.testing.assert_close(out, linear(x) + skip)
    assert out.requires_grad == grad
    assert not torch.equal(skip, out)  # the addend is not overwritten


def test_joint_mixing_keeps_state_dict_keys() -> None:
    keys = set(JointMixingBlock(6).state_dict())
    assert keys == {"norm.weight", "norm.bias", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight",
                    "mlp.2.bias"}
    assert set(TemporalResidualBlock(8, 4).state_dict()) == {"mlp.0.weight", "mlp.0.bias",
                                                            "mlp.3.weight", "mlp.3.bias"}


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
