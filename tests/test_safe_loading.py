"""Loading never runs code: every loader refuses a planted pickle payload before it runs.

Each payload, unpickled without restriction, creates a marker file (checked once below, so the
"marker absent" assertions mean something). Every loader must raise the project's error type
naming the file, and the marker must never appear.
"""

from __future__ import annotations

import glob
import io
import os
import pickle
import random
import sys
import types

import numpy as np
import pytest
import torch

from lib.api import Refiner
from lib.core.evaluation import model_from_checkpoint
from lib.data.normalize import WindowNormalizer
from lib.data.smoothnet_io import load_split, split_paths
from lib.errors import CheckpointError, InputFileError, UnsafeFileError, UserError
from lib.formats import read_poses
from lib.models import create_model
from lib.models.body_model import load_body_model, load_smpl_arrays
from lib.models.smoothnet_weights import read_model_checkpoint
from lib.utils.checkpoint import load_checkpoint, read_checkpoint
from lib.utils.safe_load import RestrictedUnpickler, load_npy, load_npz
from tests.conftest import imgnames, make_pairs, object_array, write_split
from tests.synthetic_smpl import (
    synthetic_smpl_arrays,
    write_synthetic_smpl,
    write_synthetic_smpl_pickle,
)
from tests.test_smoothnet_weights import released_state_dict
from tools import upgrade_checkpoint

_MODEL_KWARGS = {"window_size": 8, "hidden_size": 16, "res_hidden_size": 8, "num_blocks": 1}
_NORMALIZER_KWARGS = {"num_joints": 14, "coord_dim": 3}


class Payload:
    """Unpickling this (without restriction) opens ``marker`` for writing, creating it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


class ShellPayload(Payload):
    """The classic payload: a shell command through os.system."""

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def marker(tmp_path) -> str:
    return str(tmp_path / "payload_ran")


def _unrestricted(data: bytes):
    return pickle.Unpickler(io.BytesIO(data)).load()


@pytest.mark.parametrize("payload", [Payload, ShellPayload])
def test_payloads_are_real(payload, marker):
    _unrestricted(pickle.dumps(payload(marker), protocol=3))
    assert os.path.exists(marker)


def _assert_refused(call, error: type[Exception], path: str, marker: str) -> str:
    with pytest.raises(error) as info:
        call()
    assert os.path.basename(path) in str(info.value)
    assert not os.path.exists(marker), "the payload ran"
    return str(info.value)


# --- checkpoints -------------------------------------------------------------------------------

def _project_state(**extra) -> dict:
    torch.manual_seed(0)
    model = create_model("smoothnet", **_MODEL_KWARGS)
    return {"model": model.state_dict(), "model_name": "smoothnet",
            "model_kwargs": dict(_MODEL_KWARGS), "normalizer_kwargs": dict(_NORMALIZER_KWARGS),
            "epoch": 3, "cfg": "", **extra}


def test_our_checkpoint_loads_with_weights_only(tmp_path):
    path = str(tmp_path / "best.pth")
    torch.save(_project_state(rng={"torch": torch.get_rng_state(),
                                   "python": random.getstate()}), path)
    assert torch.load(path, weights_only=True)["epoch"] == 3
    kind, state = read_model_checkpoint(path)
    assert kind == "project" and state["model_name"] == "smoothnet"
    model, _, window, _ = model_from_checkpoint(path)
    assert window == _MODEL_KWARGS["window_size"]


@pytest.mark.parametrize("payload", [Payload, ShellPayload])
def test_checkpoint_payload_is_refused_for_eval_and_api(tmp_path, marker, payload):
    path = str(tmp_path / "evil.pth")
    torch.save(_project_state(rng=payload(marker)), path)
    message = _assert_refused(lambda: model_from_checkpoint(path), CheckpointError, path, marker)
    assert "could run code" in message and "upgrade_checkpoint" not in message
    _assert_refused(lambda: Refiner.from_checkpoint(path), CheckpointError, path, marker)
    _assert_refused(lambda: load_checkpoint(path), CheckpointError, path, marker)


def test_released_smoothnet_payload_is_refused(tmp_path, marker):
    path = str(tmp_path / "checkpoint_32.pth.tar")
    torch.save({"epoch": 1, "state_dict": released_state_dict(), "performance": Payload(marker)},
               path)
    normalizer = WindowNormalizer(14, 3, mode="fixed")
    _assert_refused(lambda: model_from_checkpoint(path, "cpu", normalizer), CheckpointError,
                    path, marker)


def test_released_smoothnet_with_numpy_scalars_still_loads(tmp_path):
    path = str(tmp_path / "checkpoint_32.pth.tar")
    torch.save({"epoch": np.int64(12), "state_dict": released_state_dict(),
                "performance": np.float64(51.2)}, path)
    kind, checkpoint = read_model_checkpoint(path)
    assert kind == "released" and float(checkpoint["performance"]) == 51.2


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_corrupt_checkpoint_is_one_clear_error(tmp_path, damage):
    path = str(tmp_path / "best.pth")
    torch.save(_project_state(), path)
    data = open(path, "rb").read()
    if damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "garbage":
        data = b"not a checkpoint at all" * 10
    else:
        data = data[:64] + bytes(b ^ 0xFF for b in data[64:256]) + data[256:]
    with open(path, "wb") as handle:
        handle.write(data)
    with pytest.raises(CheckpointError, match="best.pth"):
        model_from_checkpoint(path)


# --- old checkpoints and the upgrade tool ---------------------------------------------------------

@pytest.fixture
def old_checkpoint(tmp_path) -> str:
    """A checkpoint as earlier versions wrote it: the NumPy RNG state pickled as NumPy objects."""
    path = str(tmp_path / "old.pth")
    np.random.seed(5)
    torch.save(_project_state(rng={"torch": torch.get_rng_state(),
                                   "numpy": np.random.get_state(),
                                   "python": random.getstate()},
                              best_metric=np.float64(81.5)), path)
    return path


def test_old_checkpoint_is_refused_with_the_upgrade_hint(old_checkpoint):
    with pytest.raises(CheckpointError) as info:
        model_from_checkpoint(old_checkpoint)
    message = str(info.value)
    assert old_checkpoint in message and "NumPy" in message
    assert f"tools/upgrade_checkpoint.py {old_checkpoint}" in message and "--trust" in message


def test_upgrade_needs_trust(old_checkpoint, tmp_path):
    new = str(tmp_path / "new.pth")
    with pytest.raises(UserError, match="--trust"):
        upgrade_checkpoint.main([old_checkpoint, new])
    assert not os.path.exists(new)


def test_upgrade_converts_to_the_safe_format(old_checkpoint, tmp_path):
    new = str(tmp_path / "new.pth")
    assert upgrade_checkpoint.main([old_checkpoint, new, "--trust"]) == 0
    state = torch.load(new, map_location="cpu", weights_only=True)
    reference = _project_state()["model"]
    assert state["model"].keys() == reference.keys()
    assert all(torch.equal(state["model"][key], value) for key, value in reference.items())
    assert state["best_metric"] == 81.5 and isinstance(state["best_metric"], float)
    numpy_rng = state["rng"]["numpy"]
    np.random.seed(5)
    expected = np.random.random(4)
    np.random.set_state((numpy_rng["name"], numpy_rng["keys"].numpy().astype(np.uint32),
                         numpy_rng["pos"], numpy_rng["has_gauss"], numpy_rng["cached_gaussian"]))
    assert np.array_equal(np.random.random(4), expected)
    model, _, _, _ = model_from_checkpoint(new)
    assert all(torch.equal(model.state_dict()[key], value) for key, value in reference.items())
    with pytest.raises(UserError, match="exists"):
        upgrade_checkpoint.main([old_checkpoint, new, "--trust"])


# --- SmoothNet npz data, pose files -------------------------------------------------------------

def _evil_object_array(marker: str, payload: type = Payload) -> np.ndarray:
    return object_array([np.zeros((20, 42), np.float32), payload(marker)])


@pytest.mark.parametrize("payload", [Payload, ShellPayload])
def test_smoothnet_data_payload_is_refused(tmp_path, rng, marker, payload):
    base = str(tmp_path / "poses")
    dets, gts = make_pairs(rng, [20, 20], 14, 3)
    write_split(base, "aist", "vibe", "3D", "test", dets, gts)
    det_path, _ = split_paths(base, "aist", "vibe", "3D", "test")
    np.savez(det_path, imgname=imgnames([20, 20]), joints_3d=_evil_object_array(marker, payload))
    message = _assert_refused(lambda: load_split(base, "aist", "vibe", "3D", "test"),
                              UnsafeFileError, det_path, marker)
    assert "joints_3d" in message


def test_pose_file_npz_payload_is_refused(tmp_path, marker):
    path = str(tmp_path / "clip.npz")
    np.savez(path, joints_3d=_evil_object_array(marker))
    _assert_refused(lambda: read_poses(path), UnsafeFileError, path, marker)


def test_pose_file_npy_payload_is_refused(tmp_path, marker):
    path = str(tmp_path / "clip.npy")
    np.save(path, _evil_object_array(marker))
    _assert_refused(lambda: read_poses(path), UnsafeFileError, path, marker)
    _assert_refused(lambda: load_npy(path), UnsafeFileError, path, marker)


def test_corrupt_npz_is_a_clear_error(tmp_path):
    path = str(tmp_path / "clip.npz")
    with open(path, "wb") as handle:
        handle.write(b"PK\x03\x04 broken")
    with pytest.raises(InputFileError, match="clip.npz.*not a readable npz"):
        read_poses(path)


def test_unpickler_allows_only_numpy_data():
    unpickler = RestrictedUnpickler(io.BytesIO(b""))
    for module, name in (("builtins", "eval"), ("builtins", "getattr"), ("os", "system"),
                         ("builtins", "open"), ("numpy", "load"), ("subprocess", "Popen")):
        with pytest.raises(pickle.UnpicklingError, match=f"{module}.{name}"):
            unpickler.find_class(module, name)


def test_numpy_data_round_trips(tmp_path):
    arrays = {"seqs": object_array([np.arange(6.0).reshape(2, 3), np.array(["a", "bc"]),
                                    np.float32(2.5), "text", [1, 2]]),
              "plain": np.arange(4, dtype=np.int16), "names": np.array(["x", "y"])}
    path = str(tmp_path / "mixed.npz")
    np.savez(path, **arrays)
    loaded = load_npz(path)
    assert list(loaded) == list(arrays)
    for key, value in arrays.items():
        assert loaded[key].dtype == value.dtype
        for got, want in zip(loaded[key], value):
            assert type(got) is type(want) and np.array_equal(got, want)


# The reference read of the committed sample trusts it: these files are ours.
_OUR_OWN_FILES = True
_SAMPLE_FILES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "data", "poses",
                                              "**", "*.npz"), recursive=True))


@pytest.mark.parametrize("path", _SAMPLE_FILES, ids=os.path.basename)
def test_committed_sample_data_loads_identically(path):
    """Our own committed files only: the reference read here trusts them."""
    loaded = load_npz(path)
    with np.load(path, allow_pickle=_OUR_OWN_FILES) as archive:
        reference = {key: archive[key] for key in archive.files}
    assert list(loaded) == list(reference)
    for key, want in reference.items():
        got = loaded[key]
        assert (got.dtype, got.shape) == (want.dtype, want.shape), key
        for item, expected in zip(got, want):
            assert type(item) is type(expected)
            assert np.asarray(item).dtype == np.asarray(expected).dtype
            assert np.array_equal(item, expected)


def test_sample_files_exist():
    assert len(_SAMPLE_FILES) >= 12


# --- SMPL model files -------------------------------------------------------------------------

def test_smpl_npz_payload_is_refused(tmp_path, marker):
    path = write_synthetic_smpl(str(tmp_path / "smpl"))
    arrays = synthetic_smpl_arrays()
    arrays["f"] = object_array([Payload(marker)])
    np.savez(path, **arrays)
    _assert_refused(lambda: load_body_model(str(tmp_path / "smpl")), UnsafeFileError, path,
                    marker)


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_smpl_pickle_payload_is_refused(tmp_path, marker, protocol):
    path = str(tmp_path / "SMPL_NEUTRAL.pkl")
    with open(path, "wb") as handle:
        pickle.dump({"v_template": np.zeros((3, 3)), "f": Payload(marker)}, handle,
                    protocol=protocol)
    _assert_refused(lambda: load_smpl_arrays(path), UnsafeFileError, path, marker)


def test_smpl_chumpy_pickle_names_chumpy(tmp_path, monkeypatch):
    chumpy = types.ModuleType("chumpy")
    chumpy_ch = types.ModuleType("chumpy.ch")

    class Ch:  # stands for chumpy.ch.Ch, whose unpickling would run chumpy's code
        pass
    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    chumpy_ch.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", chumpy)
    monkeypatch.setitem(sys.modules, "chumpy.ch", chumpy_ch)
    path = str(tmp_path / "SMPL_NEUTRAL.pkl")
    with open(path, "wb") as handle:
        pickle.dump({"v_template": Ch()}, handle, protocol=2)
    with pytest.raises(UnsafeFileError, match="chumpy objects, which cannot be loaded safely"):
        load_smpl_arrays(path)


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_smpl_pickle_of_plain_arrays_loads(tmp_path, protocol):
    pytest.importorskip("scipy")
    path = write_synthetic_smpl_pickle(str(tmp_path / "smpl"), protocol=protocol)
    loaded, expected = load_smpl_arrays(path), synthetic_smpl_arrays()
    assert sorted(loaded) == sorted(expected)
    for key, value in expected.items():
        assert np.array_equal(np.asarray(loaded[key]), value), key


def test_smpl_joint_regressor_payload_is_refused(tmp_path, marker):
    model_dir = str(tmp_path / "smpl")
    write_synthetic_smpl(model_dir)
    path = str(tmp_path / "J_regressor_lsp14.npy")
    np.save(path, object_array([Payload(marker)]))
    _assert_refused(lambda: load_body_model(model_dir, path), UnsafeFileError, path, marker)


def test_read_checkpoint_names_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        read_checkpoint(str(tmp_path / "nothere.pth"))
