"""Model registry: name -> class, and helpers to create and measure models."""

from __future__ import annotations

from torch import nn

from lib.models.motionrefinenet import MotionRefineNet
from lib.models.smoothnet import SmoothNet

MODELS: dict[str, type[nn.Module]] = {"smoothnet": SmoothNet, "motionrefinenet": MotionRefineNet}

__all__ = ["MODELS", "MotionRefineNet", "SmoothNet", "count_parameters", "create_model"]


def create_model(name: str, **kwargs) -> nn.Module:
    """Instantiate the model called ``name`` with its typed constructor keyword arguments.

    Raises:
        KeyError: for an unknown name, listing the valid ones.
    """
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; valid: {sorted(MODELS)}")
    return MODELS[name](**kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters of ``model`` (trainable or not; buffers excluded)."""
    return sum(parameter.numel() for parameter in model.parameters())
