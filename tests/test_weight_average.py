"""TRAIN.EMA_DECAY: the moving average of the weights, its checkpoints and its resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lib.core.losses import RefinementLoss
from lib.core.trainer import Trainer, TrainerSettings
from lib.core.weight_average import WeightAverage
from lib.data.normalize import WindowNormalizer
from lib.errors import CheckpointError
from tests.test_resume_exact import _checkpoint, _records, _train

_EMA = {"TRAIN__EMA_DECAY": 0.9}


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.register_buffer("fixed", torch.zeros(2))


def test_the_average_follows_the_recursion_with_its_warm_up() -> None:
    net = _Net()
    average = WeightAverage(net, decay=0.9)
    expected = net.linear.weight.detach().clone()
    for step in range(100):
        with torch.no_grad():
            net.linear.weight.add_(torch.full_like(net.linear.weight, 0.1 * (step + 1)))
            net.fixed.fill_(step)
        decay = min(0.9, (1 + step) / (10 + step))
        expected = decay * expected + (1 - decay) * net.linear.weight.detach()
        average.update(net)
        torch.testing.assert_close(average.model.linear.weight, expected)
    assert average.updates == 100 and average.current_decay() == 0.9  # warm-up over at 80
    assert torch.equal(average.model.fixed, net.fixed)  # buffers are taken, not averaged
    assert not average.model.training
    assert not any(p.requires_grad for p in average.model.parameters())


def test_the_average_round_trips_through_its_state() -> None:
    net = _Net()
    average = WeightAverage(net, decay=0.99)
    with torch.no_grad():
        net.linear.weight.add_(1.0)
    average.update(net)
    restored = WeightAverage(_Net(), decay=0.99)
    restored.load_state_dict(average.state_dict())
    assert restored.updates == 1
    for name, tensor in average.model.state_dict().items():
        assert torch.equal(tensor, restored.model.state_dict()[name]), name


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_a_decay_outside_the_open_interval_is_refused(decay) -> None:
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(_Net(), decay)


def test_checkpoints_carry_the_average_and_the_trained_weights(aist_train, tmp_path) -> None:
    run_dir = _train(aist_train, str(tmp_path), 2, 0, **_EMA)
    last = _checkpoint(run_dir)
    assert last["average_updates"] > 0
    assert last["model"].keys() == last["trained_model"].keys()
    differs = [name for name, tensor in last["model"].items()
               if not torch.equal(tensor, last["trained_model"][name])]
    assert differs, "the averaged weights equal the trained ones"


def test_an_averaged_run_resumed_equals_an_unbroken_one(aist_train, tmp_path) -> None:
    straight = _train(aist_train, str(tmp_path / "straight"), 3, 0, **_EMA)
    out = str(tmp_path / "resumed")
    _train(aist_train, out, 1, 0, **_EMA)
    resumed = _train(aist_train, out, 3, 0, "--resume", **_EMA)
    a, b = _checkpoint(straight), _checkpoint(resumed)
    assert a["average_updates"] == b["average_updates"]
    for key in ("model", "trained_model"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), (key, name)
    assert _records(straight) == _records(resumed)


def _trainer(model: nn.Module, run_dir: str, average: bool) -> Trainer:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.9)
    return Trainer(model, WindowNormalizer(1, 3, (2, 3)), None, optimizer, scheduler,
                   RefinementLoss(), None, TrainerSettings(run_dir, 1, torch.device("cpu")),
                   {"model_name": "net", "model_kwargs": {}, "normalizer_kwargs": {}},
                   weight_average=WeightAverage(model, 0.9) if average else None)


def test_resuming_an_averaged_run_from_a_plain_checkpoint_is_refused(tmp_path) -> None:
    plain = _trainer(_Net(), str(tmp_path), average=False)
    plain.save(0, is_best=True)
    state = torch.load(tmp_path / "checkpoints" / "last.pth", weights_only=True)
    averaged = _trainer(_Net(), str(tmp_path), average=True)
    with pytest.raises(CheckpointError, match=r"last\.pth holds no weight average"):
        averaged.resume(state)


def test_best_pth_holds_the_average_without_the_resume_state(tmp_path) -> None:
    trainer = _trainer(_Net(), str(tmp_path), average=True)
    with torch.no_grad():
        trainer.model.linear.weight.add_(1.0)  # the trained weights move away from the average
    trainer.save(0, is_best=True)
    best = torch.load(tmp_path / "checkpoints" / "best.pth", weights_only=True)
    last = torch.load(tmp_path / "checkpoints" / "last.pth", weights_only=True)
    assert "trained_model" not in best and "average_updates" not in best
    assert torch.equal(best["model"]["linear.weight"], last["model"]["linear.weight"])
    assert not torch.equal(last["trained_model"]["linear.weight"], last["model"]["linear.weight"])
