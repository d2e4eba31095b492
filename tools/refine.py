"""Refine a pose file with a trained checkpoint or a classical filter, keeping its format.

Examples:
    python tools/refine.py --checkpoint results/demo/checkpoints/best.pth \\
        --input clip.bvh --output clip_refined.csv
    python tools/refine.py --filter savgol --param window=31 --input keypoints.json \\
        --output keypoints_refined.json
"""

from __future__ import annotations

import argparse
import ast
import inspect
import logging
import os
import sys
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lib.api import DEFAULT_MIN_SCORE, Refiner  # noqa: E402
from lib.errors import (  # noqa: E402
    ConfigError,
    MissingFileError,
    OutputFileError,
    run_main,
)
from lib.formats import PoseFile, check_writable, read_poses, write_poses  # noqa: E402
from lib.models.filters import FILTERS, build_filter  # noqa: E402
from lib.utils.io import check_output_file  # noqa: E402

logger = logging.getLogger("refine")

# BVH files are conventionally in centimetres; checkpoints of 3D data are trained in metres.
BVH_SCALE = 0.01
# Frames of the still probe sequence a filter's parameters are tried on before any file is read.
_PROBE_FRAMES = 64


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="checkpoint written by train.py")
    source.add_argument("--filter", choices=["savgol", "gaussian", "oneeuro"],
                        help="classical filter instead of a checkpoint")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="filter parameter, e.g. window=31 (repeatable)")
    parser.add_argument("--input", required=True,
                        help="pose file: .npz (SmoothNet or plain), .npy, .csv, .bvh, .json")
    parser.add_argument("--output", required=True,
                        help="output file, normally the input's format (BVH: .csv/.npy/.npz)")
    parser.add_argument("--scale", type=float, default=0.0,
                        help="factor from the input's units to the checkpoint's (metres for 3D); "
                             "0 = auto: 0.01 for BVH (centimetres), else 1. Output keeps the "
                             "input's units")
    parser.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE,
                        help="keypoints scoring below this are interpolated before refining")
    parser.add_argument("--coord-dim", type=int, default=0,
                        help="coordinates per joint of a CSV whose header does not tell")
    parser.add_argument("--step", type=int, default=1, help="frames between window starts")
    parser.add_argument("--mirror-test", action=argparse.BooleanOptionalAction, default=None,
                        help="also refine the mirror image and average (default: as the "
                             "checkpoint's config, EVAL.MIRROR_TEST)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    return parser


def _parse_number(item: str, text: str) -> int | float:
    """The number of one ``--param KEY=VALUE``; filter parameters are all numbers."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"--param {item!r}: {text!r} is not a number; filter parameters are "
                          "numbers, e.g. window=31 or sigma=3.0")
    return value


def _parse_params(items: list[str]) -> dict[str, int | float]:
    """``--param KEY=VALUE`` items as keyword arguments of the filter."""
    params = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE, e.g. window=31")
        params[key.strip()] = _parse_number(item, text)
    return params


def _checked_filter(name: str, params: dict[str, int | float]) -> None:
    """Try the filter's parameters on a still probe sequence; a rejection names them."""
    given = " ".join(f"--param {key}={value}" for key, value in params.items())
    try:
        build_filter(name, **params)(np.zeros((_PROBE_FRAMES, 1, 2)))
    except (TypeError, ValueError) as err:  # unknown parameter, or a value the filter refuses
        takes = [key for key in inspect.signature(FILTERS[name]).parameters if key != "poses"]
        raise ConfigError(f"--filter {name} {given}: {err} ({name} takes "
                          f"{', '.join(takes)})") from None


def _check_device(name: str) -> None:
    """The --device must exist in this torch build and on this machine."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r} is not a device; use cpu, cuda or cuda:N") \
            from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available (CPU-only torch build or no "
                          "GPU); use --device cpu")


def build_refiner(args: argparse.Namespace) -> tuple[Refiner, dict[str, int | float]]:
    """The checkpoint's model or the filter the command line asks for, and the filter's
    parameters from ``--param`` (none for a checkpoint)."""
    _check_device(args.device)
    if args.checkpoint:
        if args.param:
            raise ConfigError("--param sets filter parameters; a checkpoint takes none")
        return Refiner.from_checkpoint(args.checkpoint, args.device, args.step,
                                       mirror_test=args.mirror_test), {}
    params = _parse_params(args.param)
    _checked_filter(args.filter, params)
    return Refiner.from_filter(args.filter, **params), params


def _warn_one_euro_on_pixels(filter_name: str | None, params: dict[str, int | float],
                             pose_file: PoseFile) -> None:
    """One-Euro's default speed coefficient suits metres; on 2D keypoints (pixels) say so."""
    if filter_name != "oneeuro" or "beta" in params:
        return
    if any(np.asarray(seq).shape[-1] == 2 for seq in pose_file.sequences):
        logger.warning("--filter oneeuro: the default beta (0.7) acts on speed in metres per "
                       "frame; on 2D keypoints in pixels it lets nearly all jitter through. "
                       "Give --param beta=<0.7 / pixels per metre>, e.g. beta=0.0035 for a "
                       "body at about 200 px per metre")


def _check_paths(args: argparse.Namespace) -> None:
    if os.path.abspath(args.output) == os.path.abspath(args.input):
        raise ConfigError(f"--output {args.output} is the input file; choose another path")
    check_output_file(args.output, args.overwrite)


def _write(path: str, pose_file: PoseFile) -> None:
    """Write the refined file; a failure of the file system names the path."""
    try:
        write_poses(path, pose_file)
    except OSError as err:
        raise OutputFileError(f"--output {path}: cannot write it ({err.strerror or err})") \
            from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not os.path.isfile(args.input):
        raise MissingFileError(f"--input {args.input} not found; check the path")
    _check_paths(args)
    refiner, params = build_refiner(args)
    pose_file = read_poses(args.input, args.coord_dim or refiner.coord_dim)
    _warn_one_euro_on_pixels(args.filter, params, pose_file)
    check_writable(args.output, pose_file)
    scale = args.scale or (BVH_SCALE if pose_file.format == "bvh" else 1.0)
    scaled = [np.asarray(seq) * scale for seq in pose_file.sequences]
    refined = refiner.refine(scaled, pose_file.scores, args.min_score, source=args.input)
    # Integer input is written as float32: refined values are not whole numbers.
    refined = [np.asarray(seq / scale, dtype=np.asarray(old).dtype if old.dtype.kind == "f"
                          else np.float32) for seq, old in zip(refined, pose_file.sequences)]
    _write(args.output, pose_file.with_sequences(refined))
    frames = sum(len(seq) for seq in refined)
    print(f"{refiner.name}: refined {len(refined)} sequence(s), {frames} frames, "
          f"{pose_file.format} -> {args.output}")
    return 0


if __name__ == "__main__":
    run_main(main, "refine")
