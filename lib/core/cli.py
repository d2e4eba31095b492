"""Command line shared by train.py and eval.py: --cfg, SmoothNet-style flags, KEY VALUE opts."""

from __future__ import annotations

import argparse

from yacs.config import CfgNode

from lib.core.config import get_cfg_defaults, merge_file, merge_list, validate


def build_parser(description: str) -> argparse.ArgumentParser:
    """Arguments of both entry points; the SmoothNet flags map onto config keys."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cfg", default="", help="YAML file with deltas over the defaults")
    parser.add_argument("--dataset_name", default="", help="dataset(s), comma-separated")
    parser.add_argument("--estimator", default="", help="estimator(s), comma-separated")
    parser.add_argument("--body_representation", default="", help="2D or 3D, comma-separated")
    parser.add_argument("--slide_window_size", type=int, default=0, help="window length T")
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="checkpoint to evaluate; repeat the flag or use commas for several")
    parser.add_argument("--tradition", default="",
                        choices=["", "savgol", "gaussian", "oneeuro", "all"],
                        help="classical filters to evaluate beside the input")
    parser.add_argument("--json", default="", help="write the results table as JSON here")
    parser.add_argument("--markdown", default="", help="write the results table as Markdown here")
    parser.add_argument("--visualize", type=int, default=0, metavar="N",
                        help="eval.py: write GIF/PNG pictures of the first N test sequences per "
                             "filter and checkpoint (beside --json, else in OUTPUT_DIR)")
    parser.add_argument("--resume", action="store_true", help="continue from checkpoints/last.pth")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing run folder or results file")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="config overrides as KEY VALUE pairs, e.g. TRAIN.EPOCHS 5")
    return parser


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _flag_overrides(args: argparse.Namespace) -> list[str]:
    """The one place where SmoothNet-compatible flags become config keys."""
    opts: list[str] = []
    names = _comma_list(args.dataset_name)
    lists = {"DATASET.NAMES": names, "DATASET.ESTIMATORS": _comma_list(args.estimator),
             "DATASET.BODY_REPRESENTATIONS": _comma_list(args.body_representation)}
    for key, values in lists.items():
        if values:
            # One estimator or representation applies to every listed dataset.
            if len(values) == 1 and len(names) > 1:
                values = values * len(names)
            opts += [key, str(values)]
    if args.slide_window_size:
        opts += ["MODEL.SLIDE_WINDOW_SIZE", str(args.slide_window_size)]
    checkpoints = [path for text in args.checkpoint for path in _comma_list(text)]
    if checkpoints:
        opts += ["TEST.WEIGHTS", str(checkpoints)]
    if args.tradition:
        opts += ["EVAL.TRADITION", args.tradition]
    return opts


def load_config(args: argparse.Namespace) -> CfgNode:
    """Defaults, then the YAML file, then flags, then KEY VALUE opts; validated and frozen."""
    cfg = get_cfg_defaults()
    if args.cfg:
        merge_file(cfg, args.cfg)
    merge_list(cfg, _flag_overrides(args))
    late_flags = [opt for opt in args.opts if opt.startswith("--")]
    if late_flags:
        raise ValueError(f"{late_flags[0]} comes after the KEY VALUE overrides "
                         f"({' '.join(args.opts)}); put every --flag before them, e.g. "
                         f"eval.py --cfg FILE --checkpoint PATH DATASET.NORM_2D box")
    merge_list(cfg, list(args.opts))
    validate(cfg)
    cfg.freeze()
    return cfg
