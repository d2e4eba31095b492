"""TRAIN.AMP (bf16 autocast) and MODEL.COMPILE (torch.compile with an eager fallback) on CPU."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
import torch

from lib.core import acceleration
from lib.core.acceleration import CompiledModel, maybe_compile, resolve_amp, unwrap
from lib.core.inference import refine_sequences
from lib.core.losses import RefinementLoss
from lib.core.trainer import Trainer, TrainerSettings
from lib.data.normalize import WindowNormalizer
from lib.data.skeletons import get_skeleton
from lib.models import MotionRefineNet, SmoothNet

needs_bf16 = pytest.mark.skipif(not acceleration.bf16_supported(torch.device("cpu")),
                                reason="this CPU has no native bf16 (AVX512-BF16 / AMX)")


def small_model(seed: int = 0) -> MotionRefineNet:
    torch.manual_seed(seed)
    low, _ = get_skeleton("lsp14").dof_joints()
    return MotionRefineNet(16, 14, 3, tuple(low), hidden_size=64, res_hidden_size=16,
                           num_blocks=2, dropout=0.0)


def one_step_trainer(model: torch.nn.Module, amp: bool) -> Trainer:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.95)
    settings = TrainerSettings("", 1, torch.device("cpu"), amp=amp)
    return Trainer(model, WindowNormalizer(14, 3, (2, 3)), None, optimizer, scheduler,
                   RefinementLoss(), lambda _: {}, settings, {})


def window_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    target = torch.randn(32, 16, 42, generator=generator).cumsum(1) * 0.02
    noisy = target + 0.03 * torch.randn(target.shape, generator=generator)
    return {"input": noisy, "target": target, "mask": torch.ones(32, 16, dtype=torch.bool)}


@needs_bf16
def test_amp_training_loss_is_close_to_fp32() -> None:
    model = small_model()
    batch = window_batch()
    fp32 = one_step_trainer(copy.deepcopy(model), amp=False)
    bf16 = one_step_trainer(copy.deepcopy(model), amp=True)
    for _ in range(3):  # the first loss, then two after updates
        loss_fp32, loss_bf16 = fp32.train_step(batch), bf16.train_step(batch)
        assert loss_bf16 == pytest.approx(loss_fp32, rel=0.03)
    for name, parameter in bf16.model.named_parameters():
        assert parameter.dtype == torch.float32, name  # master weights stay fp32


@needs_bf16
def test_amp_evaluation_is_close_to_fp32() -> None:
    model = small_model().eval()
    rng = np.random.default_rng(0)
    sequences = [np.cumsum(rng.normal(0, 0.01, (n, 14, 3)), axis=0).astype(np.float32)
                 for n in (50, 23)]
    normalizer = WindowNormalizer(14, 3, (2, 3))
    fp32 = refine_sequences(model, normalizer, sequences, 16, step=2)
    bf16 = refine_sequences(model, normalizer, sequences, 16, step=2, amp=True)
    for a, b in zip(fp32, bf16):
        assert b.dtype == np.float32
        assert np.linalg.norm(a - b) < 0.03 * np.linalg.norm(a)  # bf16: 8 mantissa bits


def test_amp_falls_back_where_bf16_is_not_native(monkeypatch, caplog) -> None:
    monkeypatch.setattr(acceleration, "bf16_supported", lambda device: False)
    with caplog.at_level(logging.WARNING):
        assert resolve_amp(True, torch.device("cpu")) is False
    assert "TRAIN.AMP" in caplog.text
    assert resolve_amp(False, torch.device("cpu")) is False


def _failing_backend(graph, example_inputs):
    raise RuntimeError("no C++ compiler on this machine")


def test_compile_failure_falls_back_to_eager(caplog) -> None:
    model = SmoothNet(8, hidden_size=16, res_hidden_size=8, num_blocks=1).eval()
    compiled = CompiledModel(model, backend=_failing_backend)
    x = torch.randn(2, 8, 6)
    with caplog.at_level(logging.WARNING):
        assert torch.equal(compiled(x), model(x))
    assert "running the model eagerly" in caplog.text
    with pytest.raises(ValueError, match="T = 8"):  # the model's own errors still propagate
        compiled(torch.randn(2, 7, 6))


def test_wrappers_keep_checkpoint_keys() -> None:
    model = SmoothNet(8, hidden_size=16, res_hidden_size=8, num_blocks=1)
    assert maybe_compile(model, False) is model
    wrapped = maybe_compile(model, True)
    assert unwrap(wrapped) is model
    assert list(unwrap(wrapped).state_dict()) == list(model.state_dict())


def test_compiled_smoothnet_equals_eager() -> None:
    """Real inductor code generation on a TINY model: about 10 s on 2 CPU cores.

    The aist-sized MotionRefineNet takes minutes to compile here; tools/benchmark.py times it.
    """
    torch.manual_seed(0)
    model = SmoothNet(8, hidden_size=16, res_hidden_size=8, num_blocks=1).eval()
    compiled = CompiledModel(model)
    x = torch.randn(4, 8, 42)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), atol=1e-4, rtol=1e-4)
    assert compiled._compiled is not None  # it did not fall back
