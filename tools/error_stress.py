"""Score refiners on error types unlike any the training simulates: a stress test.

The project's training and its unseen-motion protocol draw errors from one model
(``lib/data/error_model.py``: rotation drift down the kinematic chain, jitter, freezes, swaps,
a global wobble; in 2D, the same projected plus pixel noise). An estimator whose errors look
different tests what a refiner learned about poses rather than about that model. This tool
takes the ground truth of a 3D or 2D test set, spoils it with simple error families built in
position space, with nothing in common with that model but their size, and scores the spoiled
input, every classical filter and every checkpoint given (MPJPE, PA-MPJPE, Accel, as eval.py
does). 3D sizes are in mm; 2D sizes in pixels, at 0.2 px per mm (the sample camera shows a body
at about 130-370 px per metre):

    3D          2D          errors
    clean       clean       none: what a refiner does to an exact input
    white_20mm  white_4px   independent Gaussian noise per joint, axis and frame
    white_50mm  white_10px  the same, larger
    smooth_50mm smooth_10px Gaussian noise smoothed over time (sigma 2-8 frames per sequence)
    spikes      spikes      2 % of the (frame, joint) pairs jump 20 cm / 40 px for 1-3 frames
    offset_40mm offset_8px  a constant offset per joint (std per axis) for the whole sequence
    lag_3       lag_3       the ground truth 3 frames late, plus white noise of 10 mm / 2 px
    mixed       mixed       smooth 30 mm + white 15 mm + 1 % spikes of 15 cm (2D: 6, 3, 30 px)

Each sequence's draw is seeded by ``[seed, family index, sequence index]``, so a family's errors
do not depend on which other families or methods run. Examples (docs/UNSEEN.md, "Error types
the training never simulates"):

    python tools/error_stress.py --base-dir data/unseen --estimator unseen \\
        --checkpoint results/demo_motionrefinenet/checkpoints/best.pth \\
        --checkpoint results/demo_smoothnet/checkpoints/best.pth --markdown results/stress.md
    python tools/error_stress.py --body-representation 2D --base-dir data/unseen \\
        --estimator unseen \\
        --checkpoint results/sample_sim_2D_motionrefinenet_T32/checkpoints/last.pth
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
from lib.core.builders import filter_params  # noqa: E402
from lib.core.config import get_cfg_defaults, merge_file  # noqa: E402
from lib.core.evaluation import row_names, score  # noqa: E402
from lib.data.smoothnet_io import load_split  # noqa: E402
from lib.errors import ConfigError, MissingFileError, run_main  # noqa: E402
from lib.models.filters import FILTERS  # noqa: E402
from lib.utils.io import check_output_file, save_json, save_text  # noqa: E402

logger = logging.getLogger("error_stress")

Family = Callable[[np.random.Generator, np.ndarray], np.ndarray]
METRICS = (("mpjpe", "MPJPE"), ("pa_mpjpe", "PA-MPJPE"), ("accel", "Accel"))


def white(rng: np.random.Generator, gt: np.ndarray, std: float) -> np.ndarray:
    """Independent Gaussian noise of ``std`` per joint, axis and frame.

    Shape:
        gt (T, J, D) -> (T, J, D), D 3 or 2.
    """
    return gt + rng.normal(0.0, std, gt.shape)


def smooth(rng: np.random.Generator, gt: np.ndarray, std: float,
           sigma_frames: tuple[float, float] = (2.0, 8.0)) -> np.ndarray:
    """Gaussian noise smoothed over time (sigma drawn in ``sigma_frames``), rescaled to ``std``.

    Shape:
        gt (T, J, D) -> (T, J, D), D 3 or 2.
    """
    noise = gaussian_filter1d(rng.normal(size=gt.shape), rng.uniform(*sigma_frames), axis=0,
                              mode="reflect")
    return gt + std * noise / max(float(noise.std()), 1e-12)


def spikes(rng: np.random.Generator, gt: np.ndarray, rate: float, size: float) -> np.ndarray:
    """A share ``rate`` of the (frame, joint) pairs jump ``size`` for 1-3 frames.

    Shape:
        gt (T, J, D) -> (T, J, D), D 3 or 2.
    """
    estimate = np.array(gt, copy=True)
    frames, joints = np.nonzero(rng.random(gt.shape[:2]) < rate)
    directions = rng.normal(size=(len(frames), gt.shape[-1]))
    directions *= size / np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
    lengths = rng.integers(1, 4, len(frames))
    for frame, joint, jump, length in zip(frames, joints, directions, lengths):
        estimate[frame:frame + length, joint] += jump
    return estimate


def offset(rng: np.random.Generator, gt: np.ndarray, std: float) -> np.ndarray:
    """A constant offset per joint (``std`` per axis) over the whole sequence.

    Shape:
        gt (T, J, D) -> (T, J, D), D 3 or 2.
    """
    return gt + rng.normal(0.0, std, (1,) + gt.shape[1:])


def lag(rng: np.random.Generator, gt: np.ndarray, frames: int, std: float) -> np.ndarray:
    """The ground truth ``frames`` late (the first frame held), plus white noise of ``std``.

    Shape:
        gt (T, J, D) -> (T, J, D), D 3 or 2.
    """
    late = np.concatenate([np.repeat(gt[:1], frames, axis=0), gt[:-frames]])[:len(gt)]
    return white(rng, late, std)


def mixed(rng: np.random.Generator, gt: np.ndarray, smooth_std: float, white_std: float,
          spike_size: float) -> np.ndarray:
    """Smooth noise, white noise and 1 % spikes together.

    Shape:
        gt (T, J, D) -> (T, J, D).
    """
    return spikes(rng, white(rng, smooth(rng, gt, smooth_std), white_std), 0.01, spike_size)


#: Per representation: the unit named in the family names, the array units per named unit, and
#: each family's sizes in named units (white small and large, smooth, spike jump, offset, lag
#: noise, and the mix's smooth / white / spike sizes).
SIZES = {
    "3D": ("mm", 1e-3, {"white": (20, 50), "smooth": 50, "spike": 200, "offset": 40, "lag": 10,
                        "mixed": (30, 15, 150)}),
    "2D": ("px", 1.0, {"white": (4, 10), "smooth": 10, "spike": 40, "offset": 8, "lag": 2,
                       "mixed": (6, 3, 30)}),
}


def build_families(representation: str) -> dict[str, Family]:
    """The error families of one body representation, by name, in a fixed order."""
    unit, scale, size = SIZES[representation]
    small, large = size["white"]
    mix_smooth, mix_white, mix_spike = (scale * value for value in size["mixed"])

    def mix(rng: np.random.Generator, gt: np.ndarray) -> np.ndarray:
        return mixed(rng, gt, mix_smooth, mix_white, mix_spike)

    return {
        "clean": lambda rng, gt: np.array(gt, copy=True),
        f"white_{small}{unit}": lambda rng, gt: white(rng, gt, scale * small),
        f"white_{large}{unit}": lambda rng, gt: white(rng, gt, scale * large),
        f"smooth_{size['smooth']}{unit}": lambda rng, gt: smooth(rng, gt, scale * size["smooth"]),
        "spikes": lambda rng, gt: spikes(rng, gt, 0.02, scale * size["spike"]),
        f"offset_{size['offset']}{unit}": lambda rng, gt: offset(rng, gt, scale * size["offset"]),
        "lag_3": lambda rng, gt: lag(rng, gt, 3, scale * size["lag"]),
        "mixed": mix,
    }


FAMILIES = {representation: build_families(representation) for representation in SIZES}
#: The config whose FILTERS.* parameterise the filters, per representation (One-Euro's speed
#: coefficient is in data units: the 2D config sets it for pixels).
DEFAULT_CFG = {"3D": "configs/sample_sim_3D.yaml", "2D": "configs/sample_sim_2D.yaml"}


def spoil(groundtruth: list[np.ndarray], family: str, seed: int,
          representation: str = "3D") -> list[np.ndarray]:
    """The ground-truth sequences with errors of one family of ``representation``, float32.

    Shape:
        a list of (T_i, J, D) -> a list of (T_i, J, D).
    """
    families = FAMILIES[representation]
    index = list(families).index(family)
    return [families[family](np.random.default_rng([seed, index, number]),
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
        spoiled = spoil(seq_set.groundtruth, family, seed, seq_set.representation)
        rows = {"input": _metrics(seq_set, spoiled)}
        for name, refiner in refiners.items():
            refined = refiner.refine(spoiled, source=f"{seq_set.name} {family}")
            rows[name] = _metrics(seq_set, refined)
        results[family] = rows
        logger.info("%s: %s", family, ", ".join(f"{name} {row['mpjpe']:.1f}"
                                                 for name, row in rows.items()))
    return results


def markdown_table(results: dict[str, dict[str, dict[str, float]]], title: str,
                   unit: str = "mm") -> str:
    """One row per family, one column per method: MPJPE / PA-MPJPE / Accel."""
    methods = list(next(iter(results.values())))
    lines = [f"**{title}** (MPJPE / PA-MPJPE in {unit}, Accel in {unit}/frame^2)", "",
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
    parser.add_argument("--body-representation", default="3D", choices=sorted(SIZES),
                        help="positions in metres (3D) or pixels (2D); sets the families")
    parser.add_argument("--split", default="test", choices=("train", "test"))
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="checkpoint written by train.py (repeatable)")
    parser.add_argument("--filter", action="append", choices=sorted(FILTERS),
                        help="classical filter, with the FILTERS.* parameters of --cfg "
                             "(repeatable; default: all)")
    parser.add_argument("--cfg", help="config whose FILTERS.* set the filters' parameters "
                                      f"(default: {DEFAULT_CFG['3D']} for 3D, "
                                      f"{DEFAULT_CFG['2D']} for 2D)")
    parser.add_argument("--families",
                        help="comma-separated error families (default: all); 3D: "
                             f"{', '.join(FAMILIES['3D'])}; 2D: {', '.join(FAMILIES['2D'])}")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="write every number here")
    parser.add_argument("--markdown", help="write the table here")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing --json / --markdown files")
    return parser.parse_args(argv)


def check_families(text: str | None, representation: str = "3D") -> list[str]:
    """The comma-separated family names (None: all) of ``representation``; else a ConfigError."""
    known = list(FAMILIES[representation])
    if text is None:
        return known
    families = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in families if name not in known]
    if unknown or not families:
        raise ConfigError(f"--families {text!r}: {unknown or 'none given'} not among the "
                          f"{representation} families {known}")
    return families


def build_refiners(checkpoints: list[str], filters: list[str],
                   params: dict[str, dict]) -> dict[str, Refiner]:
    """Filters (with ``params[name]``) first, then checkpoints, each under a distinct row name."""
    refiners = {name: Refiner.from_filter(name, **params[name]) for name in filters}
    loaded = [Refiner.from_checkpoint(path, batch_size=128) for path in checkpoints]
    names = row_names([refiner.name for refiner in loaded], checkpoints,
                      set(refiners) | {"input"})
    refiners.update(zip(names, loaded))
    return refiners


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    rep = args.body_representation
    families = check_families(args.families, rep)
    for path, flag in ((args.json, "--json"), (args.markdown, "--markdown")):
        if path:
            check_output_file(path, args.overwrite, flag)
    try:
        seq_set = load_split(args.base_dir, args.dataset, args.estimator, rep, args.split)
    except MissingFileError as err:  # the loader names the config key; say this tool's flag
        raise MissingFileError(f"{err} (here: --base-dir, --dataset, --estimator, "
                               "--body-representation)") from None
    cfg = get_cfg_defaults()
    merge_file(cfg, args.cfg or str(REPO_ROOT / DEFAULT_CFG[rep]))
    refiners = build_refiners(args.checkpoint, args.filter or sorted(FILTERS), filter_params(cfg))
    results = stress(seq_set, refiners, families, args.seed)
    title = f"{seq_set.name} {args.split}, ground truth with other error types (seed {args.seed})"
    table = markdown_table(results, title, SIZES[rep][0])
    if args.json:
        save_json(args.json, {"set": seq_set.name, "split": args.split, "seed": args.seed,
                              "representation": rep, "unit": SIZES[rep][0],
                              "results": results})
    if args.markdown:
        save_text(args.markdown, table)
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    run_main(main, "error_stress")
