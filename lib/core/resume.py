"""What a resumed run must agree on with the run it continues, and its metrics log."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import yaml
from yacs.config import CfgNode

from lib.core.config import get_cfg_defaults
from lib.errors import ConfigError
from lib.models import completed_kwargs
from lib.utils.checkpoint import load_checkpoint
from lib.utils.io import save_text

logger = logging.getLogger(__name__)

# Keys that cannot change the weights a run ends with: data-loading workers, logging, the
# validation batch, the device, where the run folder lives, the allocator, the classical
# filters' parameters (the filters are evaluated beside a model, never trained through).
WEIGHT_NEUTRAL_KEYS = ("TRAIN.NUM_WORKERS", "LOG_PERIOD", "EVAL.BATCH_SIZE", "DEVICE",
                       "OUTPUT_DIR", "EXP_NAME", "KEEP_FREED_MEMORY", "FILTERS.SAVGOL_WINDOW",
                       "FILTERS.SAVGOL_ORDER", "FILTERS.GAUSSIAN_WINDOW",
                       "FILTERS.GAUSSIAN_SIGMA", "FILTERS.ONEEURO_MIN_CUTOFF",
                       "FILTERS.ONEEURO_BETA")
# Keys a resume may change: the epoch count and the weight-neutral keys. Everything else must
# match the checkpoint's config.
RESUME_MAY_CHANGE = ("TRAIN.EPOCHS", *WEIGHT_NEUTRAL_KEYS)


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"TRAIN": {"LR": 1e-3}}`` -> ``{"TRAIN.LR": 1e-3}``."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def flat_config(text: str) -> dict[str, Any]:
    """A dumped config over the current defaults (keys added since the dump take defaults)."""
    flat = _flatten(yaml.safe_load(get_cfg_defaults().dump()))
    stored = _flatten(yaml.safe_load(text) or {})
    flat.update({key: value for key, value in stored.items() if key in flat})
    return flat


def config_changes(old_text: str, new_text: str,
                   may_change: tuple[str, ...] = RESUME_MAY_CHANGE) -> list[tuple[str, Any, Any]]:
    """``(key, old, new)`` for every key outside ``may_change`` that differs."""
    old, new = flat_config(old_text), flat_config(new_text)
    return [(key, old[key], new[key]) for key in sorted(new)
            if key not in may_change and old[key] != new[key]]


def check_resume_config(stored_cfg: str, cfg: CfgNode | str, checkpoint: str) -> None:
    """Refuse a resume whose config differs from the run's in a key that shapes the result.

    Args:
        stored_cfg: the config text saved in the checkpoint.
        cfg: the config of the resuming command (or its dump).
        checkpoint: the checkpoint's path, for the message.

    Raises:
        ConfigError: naming each differing key with its old and new value.
    """
    new_text = cfg if isinstance(cfg, str) else cfg.dump()
    changes = config_changes(stored_cfg, new_text)
    if not changes:
        return
    listed = "; ".join(f"{key}: {old!r} -> {new!r}" for key, old, new in changes)
    raise ConfigError(f"--resume: the config differs from the run's ({checkpoint}) in {listed}. "
                      f"A resume continues the run as it was; it may change only "
                      f"{', '.join(RESUME_MAY_CHANGE)}. To train with other settings, start a "
                      "new run (a new EXP_NAME, or --overwrite without --resume)")


def check_resume_model(stored: dict, meta: dict, checkpoint: str) -> None:
    """Refuse a resume that would build another network than the checkpoint holds.

    The config check cannot see this for a run written before a model switch existed: its
    config lacks the key, which then reads as today's default. The stored constructor
    arguments (old ones completed as when evaluating) are compared instead.

    Args:
        stored: the checkpoint (``model_name`` and ``model_kwargs``).
        meta: the resuming run's ``model_name`` and ``model_kwargs``.
        checkpoint: the checkpoint's path, for the message.

    Raises:
        ConfigError: naming each constructor argument that differs, old and new.
    """
    if stored.get("model_name") != meta["model_name"]:
        raise ConfigError(f"--resume: {checkpoint} holds a {stored.get('model_name')!r} model, "
                          f"the config builds {meta['model_name']!r}; set MODEL.NAME back or "
                          "start a new run")
    old = completed_kwargs(meta["model_name"], stored.get("model_kwargs", {}))
    new = completed_kwargs(meta["model_name"], meta["model_kwargs"])
    changes = [(key, old.get(key), new.get(key)) for key in sorted(set(old) | set(new))
               if _as_list(old.get(key)) != _as_list(new.get(key))]
    if changes:
        listed = "; ".join(f"{key}: {a!r} -> {b!r}" for key, a, b in changes)
        raise ConfigError(f"--resume: {checkpoint} holds another network than the config "
                          f"builds ({listed}); give the run's MODEL keys (a run from before "
                          "the paper's architecture needs the lean key set listed in "
                          "lib/core/config.py) or start a new run")


def _as_list(value: Any) -> Any:
    """Tuples and lists compare alike (a checkpoint may store either)."""
    return list(value) if isinstance(value, tuple) else value


def check_resume_run(cfg: CfgNode, run_dir: str) -> dict:
    """Read ``run_dir``'s last.pth and :func:`check_resume_config` it, before anything is written.

    Called before the run's config.yaml is rewritten, so a refused resume leaves it alone.
    Returns the checkpoint, for :meth:`lib.core.trainer.Trainer.resume` (read once).
    """
    path = os.path.join(run_dir, "checkpoints", "last.pth")
    state = load_checkpoint(path)
    if state.get("cfg"):
        check_resume_config(state["cfg"], cfg, path)
    return state


def _read_records(path: str) -> list[dict]:
    """The complete lines of a metrics.jsonl (a line cut short by a kill is dropped)."""
    if not os.path.isfile(path):
        return []
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                logger.warning("%s: dropping an incomplete line", path)
    return records


def sync_metrics_log(path: str, last_epoch: int, record: dict | None) -> bool:
    """Make metrics.jsonl hold exactly epochs 1 .. ``last_epoch`` (1-based), once each.

    Lines of later epochs (logged before a kill, never checkpointed) are dropped; the
    checkpointed epoch's line, when a kill came between checkpoint and log, is appended from
    ``record`` (the line the checkpoint carries). Returns whether it appended ``record``.
    """
    records = [r for r in _read_records(path) if r.get("epoch", 0) <= last_epoch]
    appended = record is not None and not any(r.get("epoch") == last_epoch for r in records)
    if appended:
        records.append(record)
    save_text(path, "".join(json.dumps(r) + "\n" for r in records))
    return appended
