"""Command lines of train.py and eval.py: --cfg, SmoothNet-style flags, KEY VALUE opts.

Each entry point has its own parser (:func:`build_train_parser`, :func:`build_eval_parser`)
over a shared set of flags, and accepts only its own flags. Flags may come anywhere on the
line, before, between or after the ``KEY VALUE`` config overrides, so that appending
``--resume`` to the command of a run works. The token after a KEY is its VALUE, also when it
starts with ``-`` (``LOSS.W_ACCEL -0.5``); a KEY followed by a ``--flag`` lacks its value.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from yacs.config import CfgNode

from lib.core.config import get_cfg_defaults, merge_file, merge_list, validate

# Flags that only one entry point takes, and which one (named in the refusal by the other).
_TRAIN_ONLY = ("--resume",)
_EVAL_ONLY = ("--checkpoint", "--tradition", "--json", "--markdown", "--visualize")


class ConfigArgumentParser(argparse.ArgumentParser):
    """An argument parser whose flags may sit anywhere among trailing KEY VALUE pairs.

    The KEY VALUE pairs are collected into ``args.opts`` (a list of strings, in order).
    """

    def __init__(self, *args, entry: str = "", **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)  # a flag is spelled in full, or refused
        super().__init__(*args, **kwargs)
        self.entry = entry

    def _takes_value(self, token: str) -> bool:
        """Whether ``token`` (a flag without ``=VALUE``) consumes the next token as its value."""
        action = self._option_string_actions.get(token)
        return action is not None and action.nargs != 0

    def split_tokens(self, argv: Sequence[str]) -> tuple[list[str], list[str]]:
        """Split a command line into flag tokens (``--flag`` or ``--flag=VALUE``) and opts.

        A flag that takes a value is joined with the next token, so that a value starting with
        ``-`` is never taken for a flag; any other token starts a KEY VALUE pair, whose VALUE may
        start with ``-`` but not with ``--`` (a KEY followed by a flag lacks its value).
        """
        flags: list[str] = []
        opts: list[str] = []
        index = 0
        while index < len(argv):
            token = argv[index]
            if token.startswith("-") and len(token) > 1:
                self._refuse_unknown_flag(token.split("=", 1)[0])
                following = argv[index + 1] if index + 1 < len(argv) else "--"
                if "=" not in token and self._takes_value(token) and \
                        not following.startswith("--"):
                    flags.append(f"{token}={following}")
                    index += 2
                    continue
                flags.append(token)
                index += 1
            else:
                # KEY VALUE: the VALUE is taken as it is (a negative number, say), unless it
                # is a --flag, which means the value was forgotten.
                value = argv[index + 1] if index + 1 < len(argv) else None
                if value is None or value.startswith("--"):
                    self.error(f"{token} has no value{' before ' + value if value else ''}; "
                               "overrides are KEY VALUE pairs, e.g. TRAIN.EPOCHS 5")
                opts.extend([token, value])
                index += 2
        return flags, opts

    def parse_known_args(self, args: Sequence[str] | None = None,
                         namespace: argparse.Namespace | None = None):
        """Flags through argparse, KEY VALUE pairs into ``args.opts``; unknown flags refused."""
        argv = list(sys.argv[1:] if args is None else args)
        flags, opts = self.split_tokens(argv)
        parsed, extras = super().parse_known_args(flags, namespace)
        parsed.opts = opts
        return parsed, extras

    def _refuse_unknown_flag(self, flag: str) -> None:
        """Refuse a flag this parser lacks now, naming the entry point that has it, if any.

        Refused here, before its would-be value is read as a KEY (argparse: exit 2).
        """
        if flag in self._option_string_actions:
            return
        owner = "eval.py" if flag in _EVAL_ONLY else "train.py" if flag in _TRAIN_ONLY else ""
        if owner and self.entry and owner != self.entry:
            self.error(f"{flag} is a flag of {owner}, not of {self.entry}; remove it "
                       f"(run {owner} for it)")
        self.error(f"unrecognized argument {flag}; see --help for the flags")


def _add_common(parser: argparse.ArgumentParser) -> None:
    """Flags of both entry points; the SmoothNet flags map onto config keys."""
    parser.add_argument("--cfg", default="", help="YAML file with deltas over the defaults")
    parser.add_argument("--dataset_name", default="", help="dataset(s), comma-separated")
    parser.add_argument("--estimator", default="", help="estimator(s), comma-separated")
    parser.add_argument("--body_representation", default="", help="2D or 3D, comma-separated")
    parser.add_argument("--slide_window_size", type=int, default=0, help="window length T")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing run folder or results file")
    parser.add_argument("opts", nargs="*", default=[], metavar="KEY VALUE",
                        help="config overrides as KEY VALUE pairs, e.g. TRAIN.EPOCHS 5; flags "
                             "may come before or after them")


def _add_train_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resume", action="store_true", help="continue from checkpoints/last.pth")


def _add_eval_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="checkpoint to evaluate; repeat the flag or use commas for several")
    parser.add_argument("--tradition", default="",
                        choices=["", "savgol", "gaussian", "oneeuro", "all"],
                        help="classical filters to evaluate beside the input")
    parser.add_argument("--json", default="", help="write the results table as JSON here")
    parser.add_argument("--markdown", default="", help="write the results table as Markdown here")
    parser.add_argument("--visualize", type=int, default=0, metavar="N",
                        help="write GIF/PNG pictures of the first N test sequences per filter "
                             "and checkpoint (beside --json, else in OUTPUT_DIR)")


def build_train_parser(description: str = "") -> ConfigArgumentParser:
    """The command line of train.py: the common flags and ``--resume``."""
    parser = ConfigArgumentParser(description=description, entry="train.py")
    _add_common(parser)
    _add_train_flags(parser)
    return parser


def build_eval_parser(description: str = "") -> ConfigArgumentParser:
    """The command line of eval.py: the common flags, checkpoints, filters and outputs."""
    parser = ConfigArgumentParser(description=description, entry="eval.py")
    _add_common(parser)
    _add_eval_flags(parser)
    return parser


def build_parser(description: str = "") -> ConfigArgumentParser:
    """Every flag of both entry points, for scripts and tests that build configs directly."""
    parser = ConfigArgumentParser(description=description)
    _add_common(parser)
    _add_train_flags(parser)
    _add_eval_flags(parser)
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
    checkpoints = [path for text in getattr(args, "checkpoint", []) for path in _comma_list(text)]
    if checkpoints:
        opts += ["TEST.WEIGHTS", str(checkpoints)]
    if getattr(args, "tradition", ""):
        opts += ["EVAL.TRADITION", args.tradition]
    return opts


def load_config(args: argparse.Namespace) -> CfgNode:
    """Defaults, then the YAML file, then flags, then KEY VALUE opts; validated and frozen."""
    cfg = get_cfg_defaults()
    if args.cfg:
        merge_file(cfg, args.cfg)
    merge_list(cfg, _flag_overrides(args))
    merge_list(cfg, list(args.opts))
    validate(cfg)
    cfg.freeze()
    return cfg
