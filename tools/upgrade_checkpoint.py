"""Rewrite a checkpoint you trust in the safe format that loads with ``weights_only=True``.

Checkpoints of earlier versions of this project pickled the NumPy RNG state as NumPy objects,
so eval.py, the Refiner and ``--resume`` refuse them (unpickling NumPy objects could run code
if the file had been tampered with). This tool reads such a file **once, fully trusting it**,
converts every NumPy value to tensors and plain Python types (the RNG state to the layout the
trainer writes now) and writes a new file, which is then checked to load safely:

    python tools/upgrade_checkpoint.py results/old/checkpoints/best.pth best_safe.pth --trust

Only run it on files you wrote yourself or got from someone you trust: reading the old file
executes whatever it pickled. ``--trust`` is required to say so.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lib.errors import CheckpointError, MissingFileError, UserError, run_main  # noqa: E402
from lib.utils.checkpoint import REQUIRED_KEYS, read_checkpoint  # noqa: E402
from lib.utils.io import check_output_file, save_torch  # noqa: E402

logger = logging.getLogger("upgrade_checkpoint")

# np.random.get_state() of the legacy Mersenne Twister: (name, keys, pos, has_gauss, cached).
_LEGACY_RNG_NAME = "MT19937"
_LEGACY_RNG_LEN = 5


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="checkpoint to convert (read with full trust)")
    parser.add_argument("new", help="path of the converted checkpoint")
    parser.add_argument("--trust", action="store_true",
                        help="I trust OLD: reading it may run any code it pickled")
    parser.add_argument("--overwrite", action="store_true", help="replace NEW if it exists")
    return parser


def unpickle_trusted(path: str, trusted: bool) -> Any:
    """The one place of this project that unpickles a checkpoint without restriction.

    Args:
        trusted: the user's explicit ``--trust``; without it nothing is read.
    """
    if not trusted:
        raise UserError(f"{path} is read with full trust, which runs any code it pickled; "
                        "pass --trust if you wrote this file or trust its source")
    restricted = not trusted
    return torch.load(path, map_location="cpu", weights_only=restricted)


def numpy_rng_state(state: tuple) -> dict[str, Any]:
    """``np.random.get_state()`` as the trainer stores it now (tensors and plain types)."""
    name, keys, pos, has_gauss, cached = state
    return {"name": str(name), "keys": torch.from_numpy(np.asarray(keys).astype(np.int64)),
            "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def _is_legacy_rng(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == _LEGACY_RNG_LEN and \
        value[0] == _LEGACY_RNG_NAME and isinstance(value[1], np.ndarray)


def _array(value: np.ndarray, where: str) -> torch.Tensor:
    """A numeric array as a tensor (unsigned wider than 8 bits as int64, which torch has)."""
    if value.dtype.kind not in "biuf":
        raise CheckpointError(f"{where}: a NumPy {value.dtype} array has no safe equivalent; "
                              "this tool converts checkpoints of this project only")
    if value.dtype.kind == "u" and value.dtype.itemsize > 1:
        value = value.astype(np.int64)
    return torch.from_numpy(np.ascontiguousarray(value).copy())


def to_safe(value: Any, where: str = "checkpoint") -> Any:
    """``value`` with NumPy objects replaced by tensors / Python numbers, recursively.

    Raises:
        CheckpointError: an object of another kind, which a weights-only load would refuse.
    """
    if _is_legacy_rng(value):
        return numpy_rng_state(value)
    if isinstance(value, np.ndarray):
        return _array(value, where)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: to_safe(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [to_safe(item, f"{where}[{index}]") for index, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if value is None or isinstance(value, (bool, int, float, str, bytes, torch.Tensor)):
        return value
    if isinstance(value, (torch.Size, torch.dtype, torch.device)):
        return value
    raise CheckpointError(f"{where}: a {type(value).__module__}.{type(value).__qualname__} "
                          "object has no safe equivalent; this tool converts checkpoints of "
                          "this project only")


def upgrade(old: str, new: str, trusted: bool) -> dict[str, Any]:
    """Convert ``old`` into ``new`` and check that ``new`` loads with ``weights_only=True``."""
    content = unpickle_trusted(old, trusted)
    if not isinstance(content, dict):
        raise CheckpointError(f"{old} holds a {type(content).__name__}, not a checkpoint dict")
    missing = [key for key in REQUIRED_KEYS if key not in content]
    if missing:
        logger.warning("%s lacks %s: not a checkpoint of this project's train.py; converted "
                       "anyway", old, missing)
    save_torch(new, to_safe(content))
    return read_checkpoint(new)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not Path(args.old).is_file():
        raise MissingFileError(f"{args.old} not found; give the path of the old checkpoint")
    check_output_file(args.new, args.overwrite, flag="NEW")
    upgrade(args.old, args.new, args.trust)
    logger.info("wrote %s; it loads with weights_only=True", args.new)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_main(main, "upgrade_checkpoint")
