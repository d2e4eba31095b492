"""Turn your own motion into a SmoothNet-layout dataset that train.py and eval.py read.

Two sources:
  BVH ground truth, with simulated estimator errors as the detected input:
    python tools/prepare_data.py --bvh-dir my_bvh/ --dataset mydata --out data/poses
  Pairs of (estimate, ground truth) arrays with a skeleton file:
    python tools/prepare_data.py --estimates est.npz --groundtruth gt.npz \\
        --skeleton skeleton.yaml --dataset mydata --estimator myest --out data/poses

Writes {out}/{dataset}_{estimator}_{rep}/detected/..._{train,test}.npz, groundtruth/... and
skeleton.yaml (joint_names, parents, root_joints, fps), split by sequence with --seed.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lib.data.error_model import sample_error_params, simulate_estimate  # noqa: E402
from lib.data.skeletons import (  # noqa: E402
    Skeleton,
    skeleton_from_yaml,
    skeleton_to_yaml,
)
from lib.data.smoothnet_io import POSE_KEYS, SKELETON_FILE, split_paths  # noqa: E402
from lib.errors import (  # noqa: E402
    ConfigError,
    InputFileError,
    MissingFileError,
    OutputExistsError,
    OutputFileError,
    run_main,
)
from lib.formats import FormatError, read_poses  # noqa: E402
from lib.utils.io import check_output_path  # noqa: E402

logger = logging.getLogger("prepare_data")

_REPRESENTATIONS = {3: "3D", 2: "2D"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bvh-dir", default="", help="folder of BVH files (ground truth)")
    parser.add_argument("--estimates", default="", help=".npz (one array per sequence) or .npy")
    parser.add_argument("--groundtruth", default="", help="same keys and shapes as --estimates")
    parser.add_argument("--skeleton", default="",
                        help="YAML with joint_names, parents, fps (optional root_joints); "
                             "required for pairs, derived from the hierarchy for BVH")
    parser.add_argument("--out", default="data/poses", help="DATASET.BASE_DIR to write into")
    parser.add_argument("--dataset", required=True, help="dataset name, e.g. mydata")
    parser.add_argument("--estimator", default="sim", help="estimator name (default sim)")
    parser.add_argument("--bvh-scale", type=float, default=0.01,
                        help="BVH units to metres (0.01 for centimetres)")
    parser.add_argument("--test-fraction", type=float, default=0.2,
                        help="fraction of sequences in the test split")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the errors")
    parser.add_argument("--strength", type=float, default=1.0,
                        help="amplitude factor of the simulated errors (BVH only)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    return parser


def split_by_sequence(count: int, test_fraction: float, seed: int) -> np.ndarray:
    """A seeded boolean test mask over sequences; both splits keep at least one sequence."""
    if count < 2:
        raise InputFileError(f"need at least 2 sequences for a train and a test split, got "
                             f"{count}; add sequences to the input")
    num_test = min(max(1, int(round(test_fraction * count))), count - 1)
    is_test = np.zeros(count, dtype=bool)
    is_test[np.random.default_rng(seed).permutation(count)[:num_test]] = True
    return is_test


def _object_array(items: list[np.ndarray]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    for index, item in enumerate(items):
        array[index] = item
    return array


def write_split(base: str, dataset: str, estimator: str, rep: str, split: str,
                names: list[str], detected: list[np.ndarray],
                groundtruth: list[np.ndarray]) -> None:
    """Write one split in the SmoothNet layout. Shape: sequences (T_i, J, D), stored (T_i, J*D)."""
    key = POSE_KEYS[rep][0]
    imgname = _object_array([np.array([f"{name}/{frame:06d}.jpg" for frame in range(len(seq))])
                             for name, seq in zip(names, groundtruth)])
    paths = split_paths(base, dataset, estimator, rep, split)
    for path, sequences in zip(paths, (detected, groundtruth)):
        flat = [np.asarray(seq, dtype=np.float32).reshape(len(seq), -1) for seq in sequences]
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            np.savez_compressed(path, imgname=imgname, **{key: _object_array(flat)})
        except OSError as err:
            raise OutputFileError(f"--out: cannot write {path} ({err.strerror or err})") \
                from None


def read_bvh_folder(folder: str, scale: float) -> tuple[list[str], list[np.ndarray], dict]:
    """Ground-truth positions (metres) of every BVH file; they must share one hierarchy.

    Returns (names, sequences (T_i, J, 3), {"joint_names", "parents", "fps"}).
    """
    paths = sorted(glob.glob(os.path.join(folder, "*.bvh")))
    if not paths:
        raise MissingFileError(f"no .bvh files in {folder}; pass the folder that holds them")
    names, sequences, spec = [], [], {}
    for path in paths:
        pose_file = read_poses(path)
        this = {"joint_names": list(pose_file.joint_names), "parents": list(pose_file.parents)}
        if spec and this != {k: spec[k] for k in this}:
            raise FormatError(f"{path}: its hierarchy differs from {paths[0]}; one dataset "
                              "needs one skeleton (prepare the files in separate datasets)")
        spec = spec or {**this, "fps": pose_file.fps}
        names.append(Path(path).stem)
        sequences.append((pose_file.sequences[0] * scale).astype(np.float32))
    return names, sequences, spec


def _load_arrays(path: str) -> dict[str, np.ndarray]:
    """The arrays of an .npz (by key) or an .npy (keyed by its stem); never unpickles."""
    if not os.path.isfile(path):
        raise MissingFileError(f"{path} not found; check the --estimates/--groundtruth path")
    try:
        if path.endswith(".npy"):
            return {Path(path).stem: np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise InputFileError(f"{path}: not a readable .npz/.npy file of numeric arrays ({err}); "
                             "re-export it with numpy.savez / numpy.save") from None


def read_pairs(estimates: str, groundtruth: str) -> tuple[list[str], list, list]:
    """(names, estimates, ground truth) paired by key. Shape: each (T_i, J, D)."""
    est, gt = _load_arrays(estimates), _load_arrays(groundtruth)
    if set(est) != set(gt) and len(est) == len(gt) == 1:
        gt = {next(iter(est)): next(iter(gt.values()))}
    if set(est) != set(gt):
        raise InputFileError(f"{estimates} and {groundtruth} must hold the same keys; only in "
                             f"the estimates: {sorted(set(est) - set(gt))}, only in the ground "
                             f"truth: {sorted(set(gt) - set(est))}")
    for key in est:
        if est[key].shape != gt[key].shape or est[key].ndim != 3:
            raise InputFileError(f"sequence {key!r}: estimate {est[key].shape} in {estimates} "
                                 f"and ground truth {gt[key].shape} in {groundtruth} must both "
                                 "be (T, J, D) with equal shapes")
    names = list(est)
    return names, [est[k] for k in names], [gt[k] for k in names]


def simulate_detections(groundtruth: list[np.ndarray], skeleton: Skeleton, strength: float,
                        seed: int) -> list[np.ndarray]:
    """Simulated estimator output per sequence, fresh error parameters each."""
    rng = np.random.default_rng(seed + 1)
    return [simulate_estimate(gt, skeleton.parents, skeleton.fps,
                              sample_error_params(rng, strength), rng, skeleton.left_right)
            for gt in groundtruth]


def _dataset_folder(args: argparse.Namespace, rep: str) -> str:
    folder = os.path.join(args.out, f"{args.dataset}_{args.estimator}_{rep}")
    if os.path.isdir(folder) and os.listdir(folder) and not args.overwrite:
        raise OutputExistsError(f"{folder} exists; pass --overwrite or choose another --dataset")
    check_output_path(os.path.join(folder, SKELETON_FILE), "--out")
    os.makedirs(folder, exist_ok=True)
    return folder


def _skeleton(args: argparse.Namespace, folder: str, spec: dict | None) -> Skeleton:
    """Write skeleton.yaml (from --skeleton or the BVH hierarchy) and read it back."""
    target = os.path.join(folder, SKELETON_FILE)
    if args.skeleton and not os.path.isfile(args.skeleton):
        raise MissingFileError(f"--skeleton {args.skeleton} not found")
    source = skeleton_from_yaml(args.skeleton) if args.skeleton else None
    if source is None and spec is None:
        raise ConfigError("--skeleton is required for --estimates/--groundtruth: a YAML file "
                         "with joint_names, parents and fps")
    if source is None:
        source = Skeleton("bvh", tuple(spec["joint_names"]), tuple(spec["parents"]),
                          tuple(j for j, p in enumerate(spec["parents"]) if p < 0), spec["fps"])
    skeleton_to_yaml(source, target)
    return skeleton_from_yaml(target)


def _check_joints(skeleton: Skeleton, sequences: list[np.ndarray], source: str) -> None:
    for index, seq in enumerate(sequences):
        if seq.shape[1] != skeleton.num_joints or not np.isfinite(seq).all():
            raise InputFileError(f"{source}, sequence {index}: shape {seq.shape} with "
                                 f"{int((~np.isfinite(seq)).sum())} NaN/Inf; the skeleton has "
                                 f"{skeleton.num_joints} joints and values must be finite")


def prepare(args: argparse.Namespace) -> str:
    """Build the dataset folder; returns its path."""
    if bool(args.bvh_dir) == bool(args.estimates or args.groundtruth):
        raise ConfigError("give either --bvh-dir or both --estimates and --groundtruth")
    if not args.bvh_dir and not (args.estimates and args.groundtruth):
        raise ConfigError("--estimates and --groundtruth go together; give both")
    if args.bvh_dir:
        names, groundtruth, spec = read_bvh_folder(args.bvh_dir, args.bvh_scale)
        detected, rep = None, "3D"
    else:
        names, detected, groundtruth = read_pairs(args.estimates, args.groundtruth)
        spec, rep = None, _REPRESENTATIONS.get(groundtruth[0].shape[2])
        if rep is None:
            raise InputFileError(f"{args.groundtruth}: coordinates per joint must be 2 or 3, "
                                 f"got shape {groundtruth[0].shape}")
    folder = _dataset_folder(args, rep)
    skeleton = _skeleton(args, folder, spec)
    _check_joints(skeleton, groundtruth, args.groundtruth or args.bvh_dir)
    if detected is None:
        detected = simulate_detections(groundtruth, skeleton, args.strength, args.seed)
    is_test = split_by_sequence(len(names), args.test_fraction, args.seed)
    for split, mask in (("train", ~is_test), ("test", is_test)):
        pick = np.flatnonzero(mask)
        write_split(args.out, args.dataset, args.estimator, rep, split, [names[i] for i in pick],
                    [detected[i] for i in pick], [groundtruth[i] for i in pick])
    print(f"{folder}: {int((~is_test).sum())} train and {int(is_test.sum())} test sequences, "
          f"{skeleton.num_joints} joints, {rep}")
    return folder


def main(argv: list[str] | None = None) -> int:
    prepare(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_main(main, "prepare_data")
