"""Loading the SmoothNet authors' released checkpoints into this project's SmoothNet.

The released files (``checkpoint_{8,16,32,64}.pth.tar``) are dicts whose ``state_dict`` uses the
parameter names of the authors' module: ``encoder.0``, ``res_blocks.{i}.linear1``,
``res_blocks.{i}.linear2`` and ``decoder``. They are mapped name by name onto
:class:`lib.models.smoothnet.SmoothNet`, whose layers compute the same function; sizes are read
from the weight shapes, so only the file is needed.
"""

from __future__ import annotations

import logging
import re

import torch

from lib.data.normalize import WindowNormalizer
from lib.data.representations import REPRESENTATIONS
from lib.data.skeletons import Skeleton
from lib.models.smoothnet import SmoothNet
from lib.utils.checkpoint import check_project_checkpoint, read_checkpoint

logger = logging.getLogger(__name__)

# Released name -> our name, per parameter group ({i} = residual block index).
_NAME_MAP = {
    "encoder.0": "encoder.0",
    "res_blocks.{i}.linear1": "blocks.{i}.mlp.0",
    "res_blocks.{i}.linear2": "blocks.{i}.mlp.3",
    "decoder": "decoder",
}
_BLOCK_NAME = re.compile(r"^res_blocks\.(\d+)\.(linear[12])\.(weight|bias)$")
# Training wrappers (DataParallel) prefix every name with this.
_WRAPPER_PREFIX = "module."


def _strip_wrapper(state_dict: dict) -> dict:
    return {key.removeprefix(_WRAPPER_PREFIX): value for key, value in state_dict.items()}


def is_released_smoothnet(checkpoint: object) -> bool:
    """A dict with a ``state_dict`` of the released names and no ``model_name`` of ours."""
    if not isinstance(checkpoint, dict) or "model_name" in checkpoint:
        return False
    state_dict = checkpoint.get("state_dict")
    if not isinstance(state_dict, dict):
        return False
    keys = set(_strip_wrapper(state_dict))
    return {"encoder.0.weight", "decoder.weight"} <= keys and \
        any(_BLOCK_NAME.match(key) for key in keys)


def map_released_names(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename every released parameter to ours; an unknown name is an error.

    Shape:
        values are kept as they are (nn.Linear weights are (out, in) in both modules).
    """
    mapped = {}
    for key, value in _strip_wrapper(state_dict).items():
        block = _BLOCK_NAME.match(key)
        if block:
            index, layer, kind = block.groups()
            name = _NAME_MAP[f"res_blocks.{{i}}.{layer}"].format(i=index) + f".{kind}"
        else:
            prefix, _, kind = key.rpartition(".")
            if prefix not in _NAME_MAP or kind not in ("weight", "bias"):
                raise KeyError(f"released SmoothNet parameter {key!r} has no counterpart; "
                               f"expected names {sorted(_NAME_MAP)}")
            name = f"{_NAME_MAP[prefix]}.{kind}"
        mapped[name] = value
    return mapped


def released_model_kwargs(state_dict: dict[str, torch.Tensor]) -> dict:
    """SmoothNet constructor arguments read from the released weight shapes."""
    state_dict = _strip_wrapper(state_dict)
    hidden, window = state_dict["encoder.0.weight"].shape
    output = state_dict["decoder.weight"].shape[0]
    if output != window:
        raise ValueError(f"released SmoothNet decodes {output} of {window} frames; only "
                         "checkpoints with output size = window size are supported")
    blocks = sorted({int(m.group(1)) for m in map(_BLOCK_NAME.match, state_dict) if m})
    res_hidden = state_dict[f"res_blocks.{blocks[0]}.linear1.weight"].shape[0]
    return {"window_size": int(window), "hidden_size": int(hidden),
            "res_hidden_size": int(res_hidden), "num_blocks": len(blocks), "dropout": 0.5}


def read_model_checkpoint(path: str) -> tuple[str, dict]:
    """Read a checkpoint file once (weights only) and tell which kind it is.

    Returns:
        (kind, checkpoint): kind ``"project"`` for a checkpoint written by this project's
        train.py (its :data:`lib.utils.checkpoint.REQUIRED_KEYS` checked), ``"released"`` for
        a SmoothNet authors' file (:func:`is_released_smoothnet`).

    Raises:
        MissingFileError, CheckpointError: no file, an unreadable or unsafe one, or neither kind.
    """
    checkpoint = read_checkpoint(path)
    if is_released_smoothnet(checkpoint):
        return "released", checkpoint
    return "project", check_project_checkpoint(
        checkpoint, path, " nor is it a released SmoothNet checkpoint_*.pth.tar")


def released_smoothnet(checkpoint: dict, path: str = "") -> tuple[SmoothNet, dict]:
    """Our SmoothNet with the released weights, and its constructor arguments."""
    kwargs = released_model_kwargs(checkpoint["state_dict"])
    model = SmoothNet(**kwargs)
    model.load_state_dict(map_released_names(checkpoint["state_dict"]))
    logger.info("released SmoothNet %s: window %d, hidden %d, residual hidden %d, %d blocks",
                path, kwargs["window_size"], kwargs["hidden_size"], kwargs["res_hidden_size"],
                kwargs["num_blocks"])
    return model, kwargs


def released_normalizer(skeleton: Skeleton, rep: str,
                        image_size: float = 1000.0) -> WindowNormalizer:
    """The input convention of the released models: raw metres and 6D rotations; 2D pixels as
    ``(x - image_size / 2) / (image_size / 2)`` (SmoothNet's Human3.6M 1000-pixel image)."""
    dims = REPRESENTATIONS[rep].coord_dim
    if rep == "2D":
        half = image_size / 2.0
        return WindowNormalizer(skeleton.num_joints, dims, mode="fixed", offset=half, scale=half)
    return WindowNormalizer(skeleton.num_joints, dims, mode="fixed")
