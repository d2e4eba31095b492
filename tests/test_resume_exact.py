"""Exact resume: a run killed with SIGKILL and resumed ends bit-identical to an unbroken one.

The kill is placed by the trainer's test hook (MRN_TEST_KILL_AFTER=EPOCH:PHASE) in a child
process forked from this one (a fresh interpreter would spend seconds importing torch);
straight runs and resumes run in this process. Augmentation (mix)
and dropout are on, so every RNG stream and the per-batch augmentation seeds are exercised.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import torch

import train as train_entry
from lib.core.resume import config_changes, sync_metrics_log
from lib.data.dataset import EpochKeySampler, PoseWindowDataset
from lib.errors import ConfigError
from lib.utils.checkpoint import load_checkpoint
from tests.conftest import make_pairs

_EPOCHS = 4


def _argv(base: str, out: str, epochs: int, workers: int, *flags: str, **opts) -> list[str]:
    argv = ["--cfg", "configs/smoke.yaml", "--dataset_name", "aist", "--estimator", "vibe",
            "--body_representation", "3D", *flags, "DATASET.BASE_DIR", base,
            "OUTPUT_DIR", out, "EXP_NAME", "run", "TRAIN.EPOCHS", str(epochs),
            "TRAIN.NUM_WORKERS", str(workers), "TRAIN.AUGMENT", "mix", "TRAIN.BATCH_SIZE", "16"]
    for key, value in opts.items():
        argv += [key.replace("__", "."), str(value)]
    return argv


def _train(*args, **opts) -> str:
    """Train in this process; returns the run folder."""
    assert train_entry.main(_argv(*args, **opts)) == 0
    return os.path.join(args[1], "run")


def _train_killed(base: str, out: str, workers: int, kill_at: str) -> None:
    """train.py's main in a forked child that SIGKILLs itself at ``kill_at`` (EPOCH:PHASE)."""
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        try:
            os.setsid()
            os.environ["MRN_TEST_KILL_AFTER"] = kill_at
            train_entry.main(_argv(base, out, _EPOCHS, workers))
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
    _kill_orphans(pid)
    # Event files are named by start second, then process id: the resumed run's must sort
    # after the killed run's, as they do when a person reruns the command.
    time.sleep(1.05 - time.time() % 1)


def _kill_orphans(group: int) -> None:
    """End the killed run's DataLoader workers (a job kill takes the whole process group)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def _checkpoint(run_dir: str, name: str = "last.pth") -> dict:
    return load_checkpoint(os.path.join(run_dir, "checkpoints", name))


def _assert_same_weights(run_a: str, run_b: str) -> None:
    a, b = _checkpoint(run_a), _checkpoint(run_b)
    assert a["epoch"] == b["epoch"] == _EPOCHS - 1
    assert a["model"].keys() == b["model"].keys()
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    for index, slots in a["optimizer"]["state"].items():
        for slot, value in slots.items():
            assert torch.equal(torch.as_tensor(value),
                               torch.as_tensor(b["optimizer"]["state"][index][slot])), slot


def _scalars(run_dir: str) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard's view of the run: (step, value) per tag, purges applied."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(run_dir, "tensorboard")).Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def _records(run_dir: str) -> list[dict]:
    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def straight(aist_train, tmp_path_factory) -> str:
    """An unbroken 4-epoch run (one worker), the reference of every resume."""
    return _train(aist_train, str(tmp_path_factory.mktemp("straight")), _EPOCHS, 1)


def test_workers_do_not_change_the_run(aist_train, straight, tmp_path) -> None:
    """Augmentation is keyed by (SEED, epoch, indices): 0 or 1 workers, the same run."""
    _assert_same_weights(straight, _train(aist_train, str(tmp_path), _EPOCHS, 0))
    assert _records(straight) == _records(os.path.join(str(tmp_path), "run"))


@pytest.mark.parametrize("workers, phase", [(0, "before_checkpoint"), (0, "after_checkpoint"),
                                            (1, "during_checkpoint"), (1, "after_checkpoint")])
def test_hard_kill_and_resume_is_exact(aist_train, straight, tmp_path, workers, phase) -> None:
    """Killed in epoch 2 and resumed: same weights, optimizer state and metrics, each once."""
    out = str(tmp_path)
    _train_killed(aist_train, out, workers, f"2:{phase}")
    run_dir = os.path.join(out, "run")
    assert _checkpoint(run_dir)["epoch"] == (1 if phase == "after_checkpoint" else 0)
    _train(aist_train, out, _EPOCHS, workers, "--resume")
    _assert_same_weights(straight, run_dir)
    assert [r["epoch"] for r in _records(run_dir)] == [1, 2, 3, 4]
    assert _records(run_dir) == _records(straight)
    scalars = _scalars(run_dir)
    assert [step for step, _ in scalars["val/mpjpe"]] == [1, 2, 3, 4]
    assert scalars == _scalars(straight)


def test_finished_run_continued_equals_a_longer_run(aist_train, straight, tmp_path) -> None:
    """2 epochs, then ``--resume TRAIN.EPOCHS 4``: the 4-epoch run bit for bit."""
    out = str(tmp_path)
    _train(aist_train, out, 2, 1)
    run_dir = _train(aist_train, out, _EPOCHS, 1, "--resume")
    _assert_same_weights(straight, run_dir)
    assert _records(run_dir) == _records(straight)


@pytest.fixture
def short_run(aist_train, tmp_path) -> tuple[str, str]:
    out = str(tmp_path)
    _train(aist_train, out, 1, 0)
    return out, os.path.join(out, "run")


@pytest.mark.parametrize("key, value", [("TRAIN.LR", 0.002), ("MODEL.HIDDEN_SIZE", 64)])
def test_resume_refuses_a_changed_config(aist_train, short_run, key, value) -> None:
    out, run_dir = short_run
    before = _checkpoint(run_dir)
    with pytest.raises(ConfigError, match=rf"{key}: .* -> {value}.*start a new run"):
        _train(aist_train, out, 2, 0, "--resume", **{key.replace(".", "__"): value})
    assert _checkpoint(run_dir)["epoch"] == before["epoch"] == 0
    assert [r["epoch"] for r in _records(run_dir)] == [1]
    with open(os.path.join(run_dir, "config.yaml"), encoding="utf-8") as handle:
        assert handle.read() == before["cfg"]  # the refused config is not written


def test_resume_reads_the_checkpoint_once(aist_train, short_run, monkeypatch) -> None:
    """The config check and the trainer share one read of last.pth."""
    import lib.core.resume
    out, run_dir = short_run
    reads = []

    def counting_load(path, *args, **kwargs):
        reads.append(os.path.basename(path))
        return load_checkpoint(path, *args, **kwargs)

    monkeypatch.setattr(lib.core.resume, "load_checkpoint", counting_load)
    _train(aist_train, out, 2, 0, "--resume")
    assert reads == ["last.pth"]
    assert [r["epoch"] for r in _records(run_dir)] == [1, 2]


def test_checkpoint_holds_plain_types_and_every_rng(short_run) -> None:
    _, run_dir = short_run
    path = os.path.join(run_dir, "checkpoints", "last.pth")
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert {"model", "optimizer", "scheduler", "epoch", "best_metric", "model_kwargs",
            "cfg", "rng", "record"} <= set(state)
    assert {"torch", "numpy", "python"} <= set(state["rng"])
    assert ("cuda" in state["rng"]) == torch.cuda.is_available()
    assert state["record"]["epoch"] == 1


def test_no_validation_trains_on_everything(aist_train, tmp_path) -> None:
    """VAL_FRACTION 0: every sequence trains, and best.pth is each epoch's last.pth."""
    run_dir = _train(aist_train, str(tmp_path), 2, 0, DATASET__VAL_FRACTION=0.0)
    last, best = _checkpoint(run_dir), _checkpoint(run_dir, "best.pth")
    assert last["epoch"] == best["epoch"] == 1
    for name, tensor in last["model"].items():
        assert torch.equal(tensor, best["model"][name]), name
    records = _records(run_dir)
    assert [r["epoch"] for r in records] == [1, 2]
    assert not any(key.startswith("val_") for r in records for key in r)


def test_config_changes_allow_only_harmless_keys() -> None:
    old = "TRAIN:\n  EPOCHS: 2\n  LR: 0.001\nDEVICE: cpu\n"
    new = "TRAIN:\n  EPOCHS: 9\n  LR: 0.01\nDEVICE: cuda\nLOG_PERIOD: 1\n"
    assert config_changes(old, new) == [("TRAIN.LR", 0.001, 0.01)]


def test_metrics_log_is_cut_to_the_checkpoint(tmp_path) -> None:
    """Later epochs and a torn last line go; a checkpointed but unlogged epoch comes back."""
    path = str(tmp_path / "metrics.jsonl")
    lines = [json.dumps({"epoch": e}) for e in (1, 2, 3)]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + '\n{"epoch": 4, "tr')
    assert not sync_metrics_log(path, 2, {"epoch": 2, "x": 1})
    assert [r["epoch"] for r in map(json.loads, open(path))] == [1, 2]
    assert sync_metrics_log(path, 3, {"epoch": 3, "x": 1})
    assert [json.loads(line) for line in open(path)][-1] == {"epoch": 3, "x": 1}


def test_augmentation_is_keyed_by_seed_epoch_and_indices(rng) -> None:
    dets, gts = make_pairs(rng, [40, 30], 14, 3)
    augmenter = lambda gt, gen: gt + gen.standard_normal(gt.shape)  # noqa: E731
    dataset = PoseWindowDataset(dets, gts, 16, 2, augmenter, "replace", seed=5)
    keys = [(3, 0), (3, 4), (3, 7)]
    first = dataset.__getitems__(keys)["input"]
    assert torch.equal(first, dataset.__getitems__(keys)["input"])
    assert not torch.equal(first, dataset.__getitems__([(4, i) for _, i in keys])["input"])
    sampler = EpochKeySampler(range(3))
    sampler.set_epoch(2)
    assert list(sampler) == [(2, 0), (2, 1), (2, 2)]


def test_resume_refuses_another_network_than_the_checkpoint_holds() -> None:
    """A run from before the paper's architecture (no switches stored) resumes only as lean."""
    from lib.core.resume import check_resume_model
    from lib.models.motionrefinenet import LEAN_ARCHITECTURE

    old_kwargs = {"window_size": 16, "num_joints": 5, "coord_dim": 3, "hidden_size": 16}
    stored = {"model_name": "motionrefinenet", "model_kwargs": old_kwargs}
    full = {**old_kwargs, **{key: not value if isinstance(value, bool) else 512
                             for key, value in LEAN_ARCHITECTURE.items()}}
    with pytest.raises(ConfigError, match="joint_hidden_size: 0 -> 512"):
        check_resume_model(stored, {"model_name": "motionrefinenet", "model_kwargs": full}, "x")
    lean = {**old_kwargs, **LEAN_ARCHITECTURE}
    check_resume_model(stored, {"model_name": "motionrefinenet", "model_kwargs": lean}, "x")
    with pytest.raises(ConfigError, match="'smoothnet'"):
        check_resume_model(stored, {"model_name": "smoothnet", "model_kwargs": {}}, "x")


def test_a_writer_that_cannot_purge_is_named_in_a_warning(caplog) -> None:
    from lib.core.trainer import _purge_tensorboard

    class PlainWriter:
        pass

    _purge_tensorboard(PlainWriter(), 7)
    assert "PlainWriter cannot purge the events after step 7" in caplog.text
