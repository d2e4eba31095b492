"""The oneDNN products compute what F.linear and torch.mm compute, with the same gradients."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F  # noqa: N812
from torch.utils.flop_counter import FlopCounterMode

import lib.models.fused_linear as fused_linear_module
import lib.models.layers as layers
from lib.models import create_model
from lib.models.fused_linear import (
    left_matmul,
    linear_activation,
    onednn_usable,
)

# torch.backends.mkldnn.flags() warns about Intel GPUs on every use
pytestmark = pytest.mark.filterwarnings("ignore:TF32 acceleration:UserWarning")
needs_onednn = pytest.mark.skipif(not onednn_usable(torch.zeros(1)),
                                  reason="this torch build has no oneDNN linear op")


def plain(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, activation: str,
          slope: float) -> torch.Tensor:
    out = F.linear(x, weight, bias)
    if activation == "leaky_relu":
        return F.leaky_relu(out, slope)
    return torch.sigmoid(out) if activation == "sigmoid" else out


def grads(out: torch.Tensor, inputs: list[torch.Tensor], seed: int = 0) -> tuple:
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    return torch.autograd.grad(out, inputs, upstream)


@needs_onednn
@pytest.mark.parametrize("activation", ("none", "leaky_relu", "sigmoid"))
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
def test_weight_gradient_in_either_operand_order(rows: int, features: int) -> None:
    torch.manual_seed(1)
    x = torch.randn(500, rows, requires_grad=True)
    weight = torch.randn(features, rows, requires_grad=True)
    fast = grads(linear_activation(x, weight), [weight])[0]
    slow = grads(F.linear(x, weight), [weight])[0]
    torch.testing.assert_close(fast, slow, atol=1e-4, rtol=1e-5)


@needs_onednn
def test_left_matmul_matches_mm_with_gradients() -> None:
    torch.manual_seed(2)
    weight = torch.randn(84, 43, requires_grad=True)
    x = torch.randn(43, 8, 100, requires_grad=True)
    fast = left_matmul(weight, x)
    slow = (weight @ x.reshape(43, -1)).view(84, 8, 100)
    torch.testing.assert_close(fast, slow, atol=1e-4, rtol=1e-5)
    for got, want in zip(grads(fast, [weight, x]), grads(slow, [weight, x])):
        torch.testing.assert_close(got, want, atol=1e-3, rtol=1e-5)


def test_plain_path_when_onednn_is_off_or_under_autocast() -> None:
    x = torch.randn(4, 8)
    with torch.backends.mkldnn.flags(enabled=False):
        assert not onednn_usable(x)
    with torch.autocast("cpu", torch.bfloat16):
        assert not onednn_usable(x)
    assert not onednn_usable(x.double())


def test_bad_activation_raises() -> None:
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        linear_activation(torch.randn(2, 3), torch.randn(4, 3), activation="gelu")
    with pytest.raises(ValueError, match="positive slope"):
        linear_activation(torch.randn(2, 3), torch.randn(4, 3), activation="leaky_relu",
                          slope=0.0)


def model_outputs_and_grads(name: str, **kwargs) -> tuple:
    torch.manual_seed(3)
    model = create_model(name, **kwargs).train()
    x = torch.randn(5, 16, 42)
    torch.manual_seed(4)  # the same dropout masks on both paths
    out = model(x)
    parameters = [p for p in model.parameters() if p.requires_grad]
    return (out, *grads(out, parameters))


@needs_onednn
@pytest.mark.parametrize("name, kwargs", (
    ("motionrefinenet", {"window_size": 16, "num_joints": 14, "coord_dim": 3,
                         "low_dof_joints": (0, 1, 2, 12, 13), "hidden_size": 64,
                         "res_hidden_size": 16, "num_blocks": 2, "dropout": 0.25}),
    ("smoothnet", {"window_size": 16, "hidden_size": 64, "res_hidden_size": 32,
                   "num_blocks": 2, "dropout": 0.5}),
))
def test_whole_model_same_with_and_without_onednn(name: str, kwargs: dict) -> None:
    fast = model_outputs_and_grads(name, **kwargs)
    with torch.backends.mkldnn.flags(enabled=False):
        slow = model_outputs_and_grads(name, **kwargs)
    for got, want in zip(fast, slow):
        torch.testing.assert_close(got, want, atol=2e-4, rtol=1e-4)


@needs_onednn
def test_flop_counter_counts_the_fused_op_like_addmm() -> None:
    model = create_model("smoothnet", window_size=16, hidden_size=64, res_hidden_size=32,
                         num_blocks=2).eval()
    x = torch.randn(3, 16, 10)
    counts = []
    for enabled in (True, False):
        with torch.backends.mkldnn.flags(enabled=enabled), FlopCounterMode(display=False) as c:
            with torch.no_grad():
                model(x)
        counts.append(c.get_total_flops())
    assert counts[0] == counts[1] == 2 * 3 * 10 * (16 * 64 + 2 * 2 * 64 * 32 + 64 * 16)


def test_joint_mixing_in_slabs_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(5)
    block = layers.JointMixingBlock(12, expansion=2).eval()
    x = torch.randn(12, 3, 50)  # 150 columns
    with torch.no_grad():
        whole = block(x)
        monkeypatch.setattr(layers, "_INFERENCE_SLAB_COLUMNS", 40)  # 3 full slabs + 30
        sliced = block(x)
    with torch.enable_grad():  # the autograd path never slices
        reference = block(x)
    torch.testing.assert_close(sliced, whole, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(sliced, reference, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("broken", ("raises", "wrong"))
def test_broken_op_falls_back_to_plain_path(monkeypatch: pytest.MonkeyPatch, caplog,
                                           broken: str) -> None:
    def raising(*args):
        raise RuntimeError("no such kernel")

    def wrong(x, weight, bias, *args):
        return F.linear(x, weight, bias) + 1.0

    monkeypatch.setattr(fused_linear_module, "_LINEAR_OP", raising if broken == "raises" else wrong)
    fused_linear_module._op_works.cache_clear()
    try:
        x, weight = torch.randn(4, 3), torch.randn(2, 3)
        assert not onednn_usable(x)
        torch.testing.assert_close(linear_activation(x, weight, activation="sigmoid"),
                                   torch.sigmoid(F.linear(x, weight)))
        assert "Linear layers run on F.linear" in caplog.text
    finally:
        fused_linear_module._op_works.cache_clear()


def test_empty_batches() -> None:
    weight, bias = torch.randn(4, 5), torch.randn(4)
    assert linear_activation(torch.randn(0, 5), weight, bias, "leaky_relu", 0.1).shape == (0, 4)
    assert left_matmul(weight, torch.randn(5, 0, 3)).shape == (4, 0, 3)
    for name, kwargs in (("motionrefinenet", {"num_joints": 14, "coord_dim": 3,
                                              "low_dof_joints": (0, 1), "hidden_size": 32,
                                              "res_hidden_size": 8, "num_blocks": 1}),
                         ("smoothnet", {"hidden_size": 32, "res_hidden_size": 8})):
        model = create_model(name, window_size=16, **kwargs).eval()
        with torch.no_grad():
            assert model(torch.randn(0, 16, 42)).shape == (0, 16, 42)
