"""Score refiners on error types unlike any the training simulates: a stress test.

The project's training and its unseen-motion protocol draw errors from one model
(``lib/data/error_model.py``: rotation drift down the kinematic chain, jitter, freezes, swaps,
a global wobble). An estimator whose errors look different tests what a refiner learned about
poses rather than about that model. This tool takes the ground truth of a 3D test set, spoils
it with simple error families built in position space, with nothing in common with that model
but their size, and scores the spoiled input, every classical filter and every checkpoint given
(root-aligned MPJPE, PA-MPJPE, Accel, as eval.py does):

    clean       the ground truth itself: what a refiner does to an exact input
    white_20mm  independent Gaussian noise, std 20 mm per joint, axis and frame
    white_50mm  the same at 50 mm
    smooth_50mm Gaussian noise smoothed over time (sigma 2-8 frames per sequence), std 50 mm
    spikes      2 % of the (frame, joint) pairs jump 20 cm in a random direction for 1-3 frames
    offset_40mm a constant offset per joint (std 40 mm per axis) for the whole sequence
    lag_3       the ground truth 3 frames late, plus 10 mm white noise
    mixed       smooth 30 mm + white 15 mm + 1 % spikes of 15 cm

Each sequence's draw is seeded by ``[seed, family index, sequence index]``, so a family's errors
do not depend on which other families or methods run. Example (docs/UNSEEN.md, "Error types
the training never simulates"):

    python tools/error_stress.py --base-dir data/unseen --estimator unseen \\
        --checkpoint results/demo_motionrefinenet/checkpoints/best.pth \\
        --checkpoint results/demo_smoothnet/checkpoints/best.pth --markdown results/stress.md
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lib.api import Refiner  # noqa: E402
from lib.core.evaluation import row_names, score  # noqa: E402
from lib.data.smoothnet_io import load_split  # noqa: E402
from lib.errors import ConfigError, MissingFileError, run_main  # noqa: E402
from lib.models.filters import FILTERS  # noqa: E402
from lib.utils.io import check_output_file, save_json, save_text  # noqa: E402

logger = logging.getLogger("error_stress")

Family = Callable[[np.random.Generator, np.ndarray], np.ndarray]
METRICS = (("mpjpe", "MPJPE"), ("pa_mpjpe", "PA-MPJPE"), ("accel", "Accel"))


def white(rng: np.random.Generator, gt: np.ndarray, std: float) -> np.ndarray:
    """Independent Gaussian noise of ``std`` metres per joint, axis and frame.

    Shape:
        gt (T, J, 3) -> (T, J, 3).
    """
    return gt + rng.normal(0.0, std, gt.shape)


def smooth(rng: np.random.Generator, gt: np.ndarray, std: float,
           sigma_frames: tuple[float, float] = (2.0, 8.0)) -> np.ndarray:
    """Gaussian noise smoothed over time (sigma drawn in ``sigma_frames``), rescaled to ``std``.

    Shape:
        gt (T, J, 3) -> (T, J, 3).
    """
    noise = gaussian_filter1d(rng.normal(size=gt.shape), rng.uniform(*sigma_frames), axis=0,
                              mode="reflect")
    return gt + std * noise / max(float(noise.std()), 1e-12)


def spikes(rng: np.random.Generator, gt: np.ndarray, rate: float, size: float) -> np.ndarray:
    """A share ``rate`` of the (frame, joint) pairs jump ``size`` metres for 1-3 frames.

    Shape:
        gt (T, J, 3) -> (T, J, 3).
    """
    estimate = np.array(gt, copy=True)
    frames, joints = np.nonzero(rng.random(gt.shape[:2]) < rate)
    directions = rng.normal(size=(len(frames), 3))
    directions *= size / np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
    lengths = rng.integers(1, 4, len(frames))
    for frame, joint, jump, length in zip(frames, joints, directions, lengths):
        estimate[frame:frame + length, joint] += jump
    return estimate


def offset(rng: np.random.Generator, gt: np.ndarray, std: float) -> np.ndarray:
    """A constant offset per joint (``std`` metres per axis) over the whole sequence.

    Shape:
        gt (T, J, 3) -> (T, J, 3).
    """
    return gt + rng.normal(0.0, std, (1,) + gt.shape[1:])


def lag(rng: np.random.Generator, gt: np.ndarray, frames: int, std: float) -> np.ndarray:
    """The ground truth ``frames`` late (the first frame held), plus white noise of ``std``.

    Shape:
        gt (T, J, 3) -> (T, J, 3).
    """
    late = np.concatenate([np.repeat(gt[:1], frames, axis=0), gt[:-frames]])[:len(gt)]
    return white(rng, late, std)


def mixed(rng: np.random.Generator, gt: np.ndarray) -> np.ndarray:
    """Smooth noise (30 mm), white noise (15 mm) and 1 % spikes of 15 cm together.

    Shape:
        gt (T, J, 3) -> (T, J, 3).
    """
    return spikes(rng, white(rng, smooth(rng, gt, 0.03), 0.015), 0.01, 0.15)


FAMILIES: dict[str, Family] = {
    "clean": lambda rng, gt: np.array(gt, copy=True),
    "white_20mm": lambda rng, gt: white(rng, gt, 0.02),
    "white_50mm": lambda rng, gt: white(rng, gt, 0.05),
    "smooth_50mm": lambda rng, gt: smooth(rng, gt, 0.05),
    "spikes": lambda rng, gt: spikes(rng, gt, 0.02, 0.2),
    "offset_40mm": lambda rng, gt: offset(rng, gt, 0.04),
    "lag_3": lambda rng, gt: lag(rng, gt, 3, 0.01),
    "mixed": mixed,
}


def spoil(groundtruth: list[np.ndarray], family: str, seed: int) -> list[np.ndarray]:
    """The ground-truth sequences with errors of one family, float32.

    Shape:
        a list of (T_i, J, 3) -> a list of (T_i, J, 3).
    """
    index = list(FAMILIES).index(family)
    return [FAMILIES[family](np.random.default_rng([seed, index, number]),
                             np.asarray(gt, dtype=np.float64)).astype(np.float32)
            for number, gt in enumerate(groundtruth)]


def _metrics(seq_set, predictions: list[np.ndarray]) -> dict[str, float]:
    scores = score(seq_set, predictions)
    return {key: float(scores[key]) for key, _ in METRICS}


def stress(seq_set, refiners: dict[str, Refiner], families: list[str],
           seed: int) -> dict[str, dict[str, dict[str, float]]]:
    """``{family: {"input" | method: {mpjpe, pa_mpjpe, accel}}}`` on ``seq_set``'s ground truth."""
    results = {}
    for family in families:
        spoiled = spoil(seq_set.groundtruth, family, seed)
        rows = {"input": _metrics(seq_set, spoiled)}
        for name, refiner in refiners.items():
            refined = refiner.refine(spoiled, source=f"{seq_set.name} {family}")
            rows[name] = _metrics(seq_set, refined)
        results[family] = rows
        logger.info("%s: %s", family, ", ".join(f"{name} {row['mpjpe']:.1f}"
                                                 for name, row in rows.items()))
    return results


def markdown_table(results: dict[str, dict[str, dict[str, float]]], title: str) -> str:
    """One row per family, one column per method: MPJPE / PA-MPJPE / Accel."""
    methods = list(next(iter(results.values())))
    lines = [f"**{title}** (MPJPE / PA-MPJPE in mm, Accel in mm/frame^2)", "",
             "| errors | " + " | ".join(methods) + " |",
             "|---|" + "---|" * len(methods)]
    for family, rows in results.items():
        cells = [" / ".join(f"{rows[m][key]:.1f}" for key, _ in METRICS) for m in methods]
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-dir", default=str(REPO_ROOT / "data" / "poses"),
                        help="DATASET.BASE_DIR of the set whose ground truth is spoiled")
    parser.add_argument("--dataset", default="sample")
    parser.add_argument("--estimator", default="sim",
                        help="estimator folder of the set (its estimates are not used)")
    parser.add_argument("--split", default="test", choices=("train", "test"))
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="checkpoint written by train.py (repeatable)")
    parser.add_argument("--filter", action="append", choices=sorted(FILTERS),
                        help="classical filter with its default parameters (repeatable; "
                             "default: all)")
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help=f"comma-separated error families, of {', '.join(FAMILIES)}")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="write every number here")
    parser.add_argument("--markdown", help="write the table here")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing --json / --markdown files")
    return parser.parse_args(argv)


def check_families(text: str) -> list[str]:
    """The comma-separated family names, each one of FAMILIES; else a ConfigError."""
    families = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in families if name not in FAMILIES]
    if unknown or not families:
        raise ConfigError(f"--families {text!r}: {unknown or 'none given'} not among "
                          f"{list(FAMILIES)}")
    return families


def build_refiners(checkpoints: list[str], filters: list[str]) -> dict[str, Refiner]:
    """Filters first, then checkpoints, each under a distinct row name."""
    refiners = {name: Refiner.from_filter(name) for name in filters}
    loaded = [Refiner.from_checkpoint(path, batch_size=128) for path in checkpoints]
    names = row_names([refiner.name for refiner in loaded], checkpoints,
                      set(refiners) | {"input"})
    refiners.update(zip(names, loaded))
    return refiners


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    families = check_families(args.families)
    for path, flag in ((args.json, "--json"), (args.markdown, "--markdown")):
        if path:
            check_output_file(path, args.overwrite, flag)
    try:
        seq_set = load_split(args.base_dir, args.dataset, args.estimator, "3D", args.split)
    except MissingFileError as err:  # the loader names the config key; say this tool's flag
        raise MissingFileError(f"{err} (here: --base-dir, --dataset, --estimator)") from None
    refiners = build_refiners(args.checkpoint, args.filter or sorted(FILTERS))
    results = stress(seq_set, refiners, families, args.seed)
    title = f"{seq_set.name} {args.split}, ground truth with other error types (seed {args.seed})"
    table = markdown_table(results, title)
    if args.json:
        save_json(args.json, {"set": seq_set.name, "split": args.split, "seed": args.seed,
                              "results": results})
    if args.markdown:
        save_text(args.markdown, table)
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    run_main(main, "error_stress")
