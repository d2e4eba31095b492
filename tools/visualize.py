"""Draw input, refined and ground truth side by side (GIF) and per-frame error (PNG).

    python tools/visualize.py --detected data/poses/sample_sim_3D/detected/sample_sim_3D_test.npz \\
        --checkpoint results/demo/checkpoints/best.pth --index 16 --out results/pictures
    python tools/visualize.py --detected ... --filter savgol --index 0 1 2 --out results/pictures

The ground truth is the matching file in the sibling groundtruth/ folder (SmoothNet layout)
unless --groundtruth is given; the skeleton comes from the dataset folder (skeleton.yaml or the
skeleton table).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lib.api import Refiner  # noqa: E402
from lib.core.builders import UNIT_NAME, UNIT_SCALE, metric_roots  # noqa: E402
from lib.data.skeletons import Skeleton  # noqa: E402
from lib.data.smoothnet_io import dataset_skeleton, split_paths  # noqa: E402
from lib.errors import run_main  # noqa: E402
from lib.formats import read_poses  # noqa: E402
from lib.visualize import render_sequence  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detected", required=True,
                        help="{base}/{ds}_{est}_{rep}/detected/{ds}_{est}_{rep}_{split}.npz")
    parser.add_argument("--groundtruth", default="", help="default: the matching groundtruth file")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="checkpoint written by train.py")
    source.add_argument("--filter", choices=["savgol", "gaussian", "oneeuro"])
    parser.add_argument("--index", type=int, nargs="+", default=[0], help="sequence indices")
    parser.add_argument("--max-frames", type=int, default=0, help="GIF length cap (0 = all)")
    parser.add_argument("--dpi", type=int, default=60, help="GIF resolution (60: ~0.5 MB)")
    parser.add_argument("--out", default="results/pictures", help="output folder")
    return parser


def dataset_parts(detected: str) -> tuple[str, str, str, str, str]:
    """(base, dataset, estimator, representation, split) from a SmoothNet detected path."""
    folder = os.path.dirname(os.path.dirname(os.path.abspath(detected)))
    dataset, estimator, rep = os.path.basename(folder).rsplit("_", 2)
    split = Path(detected).stem.rsplit("_", 1)[-1]
    return os.path.dirname(folder), dataset, estimator, rep, split


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    base, dataset, estimator, rep, split = dataset_parts(args.detected)
    skeleton: Skeleton = dataset_skeleton(base, dataset, estimator, rep)
    gt_path = args.groundtruth or split_paths(base, dataset, estimator, rep, split)[1]
    detected, groundtruth = read_poses(args.detected), read_poses(gt_path)
    refiner = Refiner.from_checkpoint(args.checkpoint) if args.checkpoint \
        else Refiner.from_filter(args.filter)
    names = detected.meta["arrays"].get("imgname")
    for index in args.index:
        det, gt = detected.sequences[index], groundtruth.sequences[index]
        label = os.path.dirname(str(names[index][0])) if names is not None else ""
        stem = f"{refiner.name}_{index:03d}" + (f"_{label}" if label else "")
        paths = render_sequence(args.out, stem, det, refiner.refine(det), gt, refiner.name,
                                skeleton.parents, skeleton.joint_names,
                                metric_roots(skeleton, rep), UNIT_SCALE[rep], UNIT_NAME[rep],
                                skeleton.fps, args.max_frames, args.dpi)
        print("\n".join(paths))
    return 0


if __name__ == "__main__":
    run_main(main, "visualize")
