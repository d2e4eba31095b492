"""Model registry: name -> class, and helpers to create and measure models."""

from __future__ import annotations

from torch import nn

from lib.errors import UnknownNameError
from lib.models.motionrefinenet import LEAN_ARCHITECTURE, MotionRefineNet
from lib.models.smoothnet import SmoothNet

MODELS: dict[str, type[nn.Module]] = {"smoothnet": SmoothNet, "motionrefinenet": MotionRefineNet}

__all__ = ["MODELS", "MotionRefineNet", "SmoothNet", "completed_kwargs", "count_parameters",
           "create_model"]


def completed_kwargs(name: str, kwargs: dict) -> dict:
    """A model's constructor kwargs as stored in a checkpoint, with what old ones lack filled.

    Checkpoints written before the paper's MotionRefineNet existed hold the lean network's
    kwargs without the architecture switches: they get the lean values
    (:data:`lib.models.motionrefinenet.LEAN_ARCHITECTURE`), not the constructor's defaults.
    """
    if name == "motionrefinenet":
        return {**LEAN_ARCHITECTURE, **kwargs}
    return dict(kwargs)


def create_model(name: str, **kwargs) -> nn.Module:
    """Instantiate the model called ``name`` with its typed constructor keyword arguments.

    Switches missing from ``kwargs`` (old checkpoints) are filled by :func:`completed_kwargs`;
    :func:`lib.core.builders.model_kwargs` always passes them all.

    Raises:
        KeyError: for an unknown name, listing the valid ones.
    """
    if name not in MODELS:
        raise UnknownNameError(f"unknown model {name!r}; valid: {sorted(MODELS)}")
    return MODELS[name](**completed_kwargs(name, kwargs))


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters of ``model`` (trainable or not; buffers excluded)."""
    return sum(parameter.numel() for parameter in model.parameters())
