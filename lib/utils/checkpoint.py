"""One checkpoint format: model, optimizer, scheduler, epoch, best metric, model args, config."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from lib.utils.io import save_torch

logger = logging.getLogger(__name__)

# Keys every checkpoint written by this project has.
REQUIRED_KEYS = ("model", "model_name", "model_kwargs", "normalizer_kwargs", "epoch")


def save_checkpoint(path: str, state: dict[str, Any]) -> None:
    """Write a checkpoint dict atomically (temporary file, then rename)."""
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise KeyError(f"checkpoint state lacks {missing}")
    save_torch(path, state)
    logger.info("saved checkpoint %s (epoch %d)", path, state["epoch"])


def load_checkpoint(path: str) -> dict[str, Any]:
    """Read a checkpoint on the CPU and check that it is one of ours."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} not found; train one with train.py or pass "
                                "the path of results/<EXP_NAME>/checkpoints/best.pth")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for a corrupt file
        raise ValueError(f"checkpoint {path} cannot be read ({type(err).__name__}: {err})") \
            from None
    missing = [key for key in REQUIRED_KEYS if key not in state] if isinstance(state, dict) \
        else list(REQUIRED_KEYS)
    if missing:
        raise ValueError(f"checkpoint {path} lacks {missing}; it was not written by this "
                         "project's train.py")
    return state
