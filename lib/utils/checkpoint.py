"""One checkpoint format: model, optimizer, scheduler, epoch, best metric, model args, config.

Checkpoints are read with ``torch.load(weights_only=True)``: tensors and plain Python data
only, so a file from a stranger can never run code (NumPy scalars are allowed as data too).
Checkpoints of earlier versions of this project pickled the NumPy RNG state as NumPy objects;
they are refused with a message that names ``tools/upgrade_checkpoint.py``, which converts a
file the user trusts, once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
import zipfile
from typing import Any

import numpy as np
import torch

from lib.errors import CheckpointError, MissingFileError
from lib.utils.io import save_torch
from lib.utils.safe_load import ARRAY_GLOBALS

logger = logging.getLogger(__name__)

# Keys every checkpoint written by this project has.
REQUIRED_KEYS = ("model", "model_name", "model_kwargs", "normalizer_kwargs", "epoch")
# The command that rewrites an old checkpoint in the safe format ({path}: the old file).
UPGRADE_COMMAND = "python tools/upgrade_checkpoint.py {path} NEW.pth --trust"
# Errors torch raises for a truncated, corrupt or foreign file (never a refused global).
_READ_ERRORS = (RuntimeError, OSError, EOFError, ValueError, KeyError, TypeError,
                AttributeError, IndexError, UnicodeDecodeError, zipfile.BadZipFile)
# Module prefix of the globals an old checkpoint's pickled NumPy RNG state names.
_NUMPY_PREFIX = "numpy."


def _numeric_dtype_classes() -> list[type]:
    """NumPy 2's per-dtype classes of bool, integer and float scalars (none in NumPy 1)."""
    dtypes = getattr(np, "dtypes", None)
    prefixes = ("Bool", "Int", "UInt", "Float")
    return [getattr(dtypes, name) for name in dir(dtypes or object)
            if name.endswith("DType") and name.startswith(prefixes)]


def _scalar_globals() -> contextlib.AbstractContextManager:
    """Allow NumPy *scalars* (numbers, e.g. a ``performance`` float64) besides tensors.

    Arrays stay refused: their pickle can carry any object. Older torch has no allow-list
    context; scalars are then refused like any other global.
    """
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if safe_globals is None:
        return contextlib.nullcontext()
    scalar = ARRAY_GLOBALS[("numpy._core.multiarray", "scalar")]
    return safe_globals([scalar, np.dtype, *_numeric_dtype_classes()])


def _refused_globals(path: str, err: Exception) -> list[str]:
    """The globals that made the weights-only load refuse ``path`` ([] when it is corrupt)."""
    finder = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if finder is not None:
        try:
            return list(finder(path))
        except (*_READ_ERRORS, pickle.UnpicklingError):
            pass  # legacy (non-zip) or damaged file: fall back on torch's message
    return re.findall(r"GLOBAL ([\w.]+)", str(err))


def _torch_reason(err: Exception) -> str:
    """The informative line of torch's (long) message."""
    text = str(err)
    match = re.search(r"WeightsUnpickler error: ([^\n]*(?:\n[^\n]+)?)", text)
    reason = match.group(1).strip() if match else (text.strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {reason.split('. ')[0][:200]}"


def _unpickling_error(path: str, err: pickle.UnpicklingError) -> CheckpointError:
    """The one error for a refused or unreadable pickle inside a checkpoint."""
    refused = _refused_globals(path, err)
    if refused and all(name.startswith(_NUMPY_PREFIX) for name in refused):
        return CheckpointError(
            f"checkpoint {path} holds pickled NumPy objects ({', '.join(refused)}), as "
            "checkpoints of earlier versions of this project do (their NumPy RNG state); a "
            "pickle can run code, so it is not read. If you trust this file (you wrote it), "
            f"convert it once with: {UPGRADE_COMMAND.format(path=path)}")
    if refused:
        return CheckpointError(
            f"checkpoint {path} refused: it pickles {', '.join(refused)}, which could run code "
            "when loaded; only tensors and plain data are read. Neither this project nor "
            "SmoothNet writes such files; use it only if you know where it comes from")
    return _corrupt_error(path, err)


def _corrupt_error(path: str, err: Exception) -> CheckpointError:
    return CheckpointError(f"checkpoint {path} cannot be read ({_torch_reason(err)}); it is "
                           "truncated, damaged or not a PyTorch checkpoint: copy it again or "
                           "retrain")


def read_checkpoint(path: str) -> Any:
    """The content of a checkpoint file, read once on the CPU with ``weights_only=True``.

    Returns whatever the file holds (normally a dict); :func:`check_project_checkpoint` and
    :func:`lib.models.smoothnet_weights.is_released_smoothnet` tell what it is.

    Raises:
        MissingFileError: no such file.
        CheckpointError: a corrupt file, one with objects that would run code, or an old
            checkpoint of this project (the message says how to upgrade it).
    """
    if not os.path.isfile(path):
        raise MissingFileError(f"checkpoint {path} not found; train one with train.py or pass "
                               "the path of results/<EXP_NAME>/checkpoints/best.pth")
    try:
        with _scalar_globals():
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise _unpickling_error(path, err) from None
    except _READ_ERRORS as err:
        raise _corrupt_error(path, err) from None


def check_project_checkpoint(state: Any, path: str, hint: str = "") -> dict[str, Any]:
    """``state`` when it is one of this project's checkpoints; else a CheckpointError.

    Args:
        hint: appended to the error (e.g. what else the caller accepts).
    """
    missing = [key for key in REQUIRED_KEYS if key not in state] if isinstance(state, dict) \
        else list(REQUIRED_KEYS)
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}; it was not written by this "
                              f"project's train.py{hint}")
    return state


def save_checkpoint(path: str, state: dict[str, Any]) -> None:
    """Write a checkpoint dict atomically (temporary file, then rename)."""
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise KeyError(f"checkpoint state lacks {missing}")
    save_torch(path, state)
    logger.info("saved checkpoint %s (epoch %d)", path, state["epoch"])


def load_checkpoint(path: str) -> dict[str, Any]:
    """Read one of this project's checkpoints safely on the CPU (see :func:`read_checkpoint`)."""
    return check_project_checkpoint(read_checkpoint(path), path)
