"""The oneDNN products (lib/models/cpu_fast.py) compute what F.linear computes, with the same
gradients, and a missing or broken op falls back to F.linear."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F  # noqa: N812
from torch.utils.flop_counter import FlopCounterMode

from lib.models import create_model
from lib.models.cpu_fast import accelerate, linear_activation, onednn_usable

# torch.backends.mkldnn.flags() warns about Intel GPUs on every use
pytestmark = pytest.mark.filterwarnings("ignore:TF32 acceleration:UserWarning")
needs_onednn = pytest.mark.skipif(not onednn_usable(torch.zeros(1)),
                                  reason="this torch build has no oneDNN linear op")


def plain(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, activation: str,
          slope: float) -> torch.Tensor:
    out = F.linear(x, weight, bias)
    if activation == "leaky_relu":
        return F.leaky_relu(out, slope)
    if activation == "gelu":
        return F.gelu(out)
    return torch.sigmoid(out) if activation == "sigmoid" else out


def grads(out: torch.Tensor, inputs: list[torch.Tensor], seed: int = 0) -> tuple:
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    return torch.autograd.grad(out, inputs, upstream)


@needs_onednn
@pytest.mark.parametrize("activation", ("none", "leaky_relu", "sigmoid", "gelu"))
@pytest.mark.parametrize("layout", ("contiguous", "transposed"))
def test_linear_activation_matches_plain(activation: str, layout: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 24, 40)
    x = x.transpose(1, 2) if layout == "transposed" else x.transpose(1, 2).contiguous()
    x.requires_grad_(True)
    weight = torch.randn(33, 24, requires_grad=True)
    bias = torch.randn(33, requires_grad=True)
    fast = linear_activation(x, weight, bias, activation, 0.2)
    slow = plain(x, weight, bias, activation, 0.2)
    assert fast.shape == slow.shape == (6, 40, 33)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    for got, want in zip(grads(fast, [x, weight, bias]), grads(slow, [x, weight, bias])):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)


@needs_onednn
@pytest.mark.parametrize("rows, features", ((7, 300), (300, 7)))  # both weight-gradient orders
@pytest.mark.parametrize("with_bias", (False, True))  # the bias gradient rides on the product
def test_weight_gradient_in_either_operand_order(rows: int, features: int,
                                                 with_bias: bool) -> None:
    torch.manual_seed(1)
    x = torch.randn(500, rows, requires_grad=True)
    weight = torch.randn(features, rows, requires_grad=True)
    bias = torch.randn(features, requires_grad=True) if with_bias else None
    wanted = [x, weight] + ([bias] if with_bias else [])
    fast = grads(linear_activation(x, weight, bias), wanted)
    slow = grads(F.linear(x, weight, bias), wanted)
    for got, want in zip(fast, slow, strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)


def test_plain_path_when_onednn_is_off_or_under_autocast() -> None:
    x = torch.randn(4, 8)
    with torch.backends.mkldnn.flags(enabled=False):
        assert not onednn_usable(x)
    with torch.autocast("cpu", torch.bfloat16):
        assert not onednn_usable(x)
    assert not onednn_usable(x.double())


def test_bad_activation_raises() -> None:
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        linear_activation(torch.randn(2, 3), torch.randn(4, 3), activation="tanh")
    with pytest.raises(ValueError, match="positive slope"):
        linear_activation(torch.randn(2, 3), torch.randn(4, 3), activation="leaky_relu",
                          slope=0.0)


@needs_onednn
def test_flop_counter_counts_the_fused_op_like_addmm() -> None:
    model = accelerate(create_model("smoothnet", window_size=16, hidden_size=64,
                                    res_hidden_size=32, num_blocks=2)).eval()
    x = torch.randn(3, 16, 10)
    counts = []
    for enabled in (True, False):
        with torch.backends.mkldnn.flags(enabled=enabled), FlopCounterMode(display=False) as c:
            with torch.no_grad():
                model(x)
        counts.append(c.get_total_flops())
    assert counts[0] == counts[1] == 2 * 3 * 10 * (16 * 64 + 2 * 2 * 64 * 32 + 64 * 16)


def test_broken_op_falls_back_to_plain_path(broken_linear_op: str, caplog) -> None:
    x, weight = torch.randn(4, 3), torch.randn(2, 3)
    assert not onednn_usable(x)
    torch.testing.assert_close(linear_activation(x, weight, activation="sigmoid"),
                               torch.sigmoid(F.linear(x, weight)))
    assert "Linear layers run on F.linear" in caplog.text


def test_empty_batches() -> None:
    weight, bias = torch.randn(4, 5), torch.randn(4)
    assert linear_activation(torch.randn(0, 5), weight, bias, "leaky_relu", 0.1).shape == (0, 4)
    for name, kwargs in (("motionrefinenet", {"num_joints": 14, "coord_dim": 3,
                                              "low_dof_joints": (0, 1), "hidden_size": 32,
                                              "res_hidden_size": 8, "num_blocks": 1}),
                         ("smoothnet", {"hidden_size": 32, "res_hidden_size": 8})):
        model = accelerate(create_model(name, window_size=16, **kwargs)).eval()
        with torch.no_grad():
            assert model(torch.randn(0, 16, 42)).shape == (0, 16, 42)


@needs_onednn
def test_gelu_is_fused_without_gradients_only() -> None:
    torch.manual_seed(6)
    x, weight, bias = torch.randn(9, 5), torch.randn(7, 5), torch.randn(7)
    with torch.no_grad():
        torch.testing.assert_close(linear_activation(x, weight, bias, "gelu"),
                                   F.gelu(F.linear(x, weight, bias)), atol=1e-5, rtol=1e-5)
    weight.requires_grad_(True)
    out = linear_activation(x, weight, bias, "gelu")
    assert out.grad_fn.name().startswith("Gelu")  # autograd through torch's GELU
