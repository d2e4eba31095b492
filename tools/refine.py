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
import os
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lib.api import DEFAULT_MIN_SCORE, Refiner  # noqa: E402
from lib.formats import FormatError, check_writable, read_poses, write_poses  # noqa: E402

# BVH files are conventionally in centimetres; checkpoints of 3D data are trained in metres.
BVH_SCALE = 0.01


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
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    return parser


def _parse_params(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--param {item!r}: expected KEY=VALUE, e.g. window=31")
        try:
            params[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            params[key] = text
    return params


def build_refiner(args: argparse.Namespace) -> Refiner:
    if args.checkpoint:
        if args.param:
            raise ValueError("--param sets filter parameters; a checkpoint takes none")
        return Refiner.from_checkpoint(args.checkpoint, args.device, args.step)
    return Refiner.from_filter(args.filter, **_parse_params(args.param))


def _check_paths(args: argparse.Namespace) -> None:
    if os.path.abspath(args.output) == os.path.abspath(args.input):
        raise ValueError(f"--output {args.output} is the input file; choose another path")
    if os.path.exists(args.output) and not args.overwrite:
        raise FileExistsError(f"{args.output} exists; pass --overwrite or choose another path")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _check_paths(args)
    refiner = build_refiner(args)
    pose_file = read_poses(args.input, args.coord_dim or refiner.coord_dim)
    check_writable(args.output, pose_file)
    scale = args.scale or (BVH_SCALE if pose_file.format == "bvh" else 1.0)
    scaled = [np.asarray(seq) * scale for seq in pose_file.sequences]
    refined = refiner.refine(scaled, pose_file.scores, args.min_score)
    refined = [np.asarray(seq / scale, dtype=np.asarray(old).dtype if old.dtype.kind == "f"
                          else np.float32) for seq, old in zip(refined, pose_file.sequences)]
    write_poses(args.output, pose_file.with_sequences(refined))
    frames = sum(len(seq) for seq in refined)
    print(f"{refiner.name}: refined {len(refined)} sequence(s), {frames} frames, "
          f"{pose_file.format} -> {args.output}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (FormatError, FileNotFoundError, FileExistsError, KeyError, ValueError,
            TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
