"""Paper tables: evaluate a list of (checkpoint, dataset, estimator, representation) entries."""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass, field

import torch
import yaml
from yacs.config import CfgNode

from lib.core.config import get_cfg_defaults, merge_file, merge_list, validate
from lib.core.evaluation import Scorer, build_scorer, evaluate_checkpoint
from lib.core.published import published_result
from lib.data.smoothnet_io import SequenceSet, load_split
from lib.errors import ConfigError, MissingFileError

logger = logging.getLogger(__name__)

_REQUIRED = ("checkpoint", "dataset", "estimator", "representation")


@dataclass
class TableEntry:
    """One evaluation: a checkpoint on the test split of one dataset / estimator / rep.

    Attributes:
        cfg: config file with the evaluation settings ('' = defaults), e.g. SMPL_MODEL_DIR.
        label: row name in the table ('' = the checkpoint's model name).
        opts: extra ``KEY VALUE`` config overrides.
    """

    checkpoint: str
    dataset: str
    estimator: str
    representation: str
    cfg: str = ""
    label: str = ""
    opts: list[str] = field(default_factory=list)


def _entry(raw: dict, where: str, defaults: dict) -> TableEntry:
    values = {**defaults, **{k: v for k, v in raw.items() if v not in (None, "")}}
    missing = [key for key in _REQUIRED if not values.get(key)]
    if missing:
        raise ConfigError(f"{where}: missing {missing}; every entry needs "
                          f"{', '.join(_REQUIRED)} (cfg, label and opts are optional)")
    unknown = sorted(set(values) - set(TableEntry.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}")
    opts = values.get("opts") or []
    values["opts"] = opts.split() if isinstance(opts, str) else [str(o) for o in opts]
    return TableEntry(**{key: values[key] if key == "opts" else str(values[key])
                         for key in values})


def read_spec(path: str) -> list[TableEntry]:
    """Entries of a YAML spec (``defaults:`` and ``entries:``) or a CSV with a header row."""
    if not os.path.isfile(path):
        raise MissingFileError(f"table spec {path} not found (see docs/REPRODUCE.md)")
    with open(path, encoding="utf-8") as handle:
        if path.endswith(".csv"):
            return [_entry(row, f"{path} row {i + 2}", {})
                    for i, row in enumerate(csv.DictReader(handle))]
        spec = yaml.safe_load(handle) or {}
    if not isinstance(spec, dict) or not isinstance(spec.get("entries"), list):
        raise ConfigError(f"{path}: a YAML spec needs a list 'entries' (and optional 'defaults')")
    defaults = spec.get("defaults") or {}
    return [_entry(raw, f"{path} entry {i + 1}", defaults)
            for i, raw in enumerate(spec["entries"])]


def entry_config(entry: TableEntry) -> CfgNode:
    """The frozen config of one entry: its cfg file, its data, then its overrides."""
    cfg = get_cfg_defaults()
    if entry.cfg:
        merge_file(cfg, entry.cfg)
    merge_list(cfg, ["DATASET.NAMES", str([entry.dataset]),
                     "DATASET.ESTIMATORS", str([entry.estimator]),
                     "DATASET.BODY_REPRESENTATIONS", str([entry.representation]),
                     "TEST.WEIGHTS", str([entry.checkpoint]), *entry.opts])
    validate(cfg)
    cfg.freeze()
    return cfg


class _TestSets:
    """Each test split, its scorer and its input metrics, computed once."""

    def __init__(self) -> None:
        self._cache: dict[tuple, tuple[SequenceSet, Scorer, dict]] = {}

    def get(self, cfg: CfgNode, entry: TableEntry) -> tuple[SequenceSet, Scorer, dict]:
        key = (cfg.DATASET.BASE_DIR, entry.dataset, entry.estimator, entry.representation,
               cfg.SMPL_MODEL_DIR, cfg.DATASET.SMPL_JOINT_REGRESSOR, cfg.EVAL.HARD_FRACTION)
        if key not in self._cache:
            seq_set = load_split(cfg.DATASET.BASE_DIR, entry.dataset, entry.estimator,
                                 entry.representation, "test")
            scorer = build_scorer(cfg, seq_set)
            self._cache[key] = (seq_set, scorer, scorer(seq_set.detected))
        return self._cache[key]


def run_entries(entries: list[TableEntry], device: torch.device) -> list[dict]:
    """Input and refined metrics of every entry, with SmoothNet's published row beside."""
    sets, rows = _TestSets(), []
    for entry in entries:
        cfg = entry_config(entry)
        seq_set, scorer, input_metrics = sets.get(cfg, entry)
        name, metrics = evaluate_checkpoint(entry.checkpoint, seq_set, cfg, device, scorer)
        logger.info("%s on %s: MPJPE %.2f -> %.2f", entry.checkpoint, seq_set.name,
                    input_metrics["mpjpe"], metrics["mpjpe"])
        rows.append({"dataset": entry.dataset, "estimator": entry.estimator,
                     "representation": entry.representation, "model": entry.label or name,
                     "checkpoint": entry.checkpoint, "input": input_metrics,
                     "refined": metrics,
                     "published": published_result(entry.dataset, entry.estimator,
                                                   entry.representation)})
    return rows
