"""Build the embedded sample benchmark: real Bandai-Namco mocap plus simulated estimator error."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
# `python tools/build_sample_data.py` must work from a plain clone, where `lib` is not installed.
sys.path.insert(0, str(REPO_ROOT))

from lib.core.metrics import accel_errors, mpjpe, pa_mpjpe, root_align  # noqa: E402
from lib.data.camera import (  # noqa: E402
    PinholeCamera,
    project_pinhole,
    sample_camera,
    world_to_camera,
)
from lib.data.error_model import (  # noqa: E402
    rescale_bones,
    sample_bone_scales,
    sample_error_params,
    simulate_estimate,
)
from lib.data.skeletons import get_skeleton  # noqa: E402
from lib.errors import run_main  # noqa: E402

logger = logging.getLogger("build_sample_data")

DEFAULT_SOURCE = "../shared/data/real/bandai_namco_motion_1/derived_joints3d_bandai1.npz"
DEFAULT_STRENGTH = 1.0
DEFAULT_MAX_FRAMES = 76
# Stored values are rounded to binary steps (0.06 mm, 0.03 px), far below any error measured,
# so that compression shrinks the committed files by about a third.
QUANTUM_3D = 2.0 ** -14
QUANTUM_2D = 2.0 ** -5
TEST_FRACTION = 0.2
# Extra white pixel noise of the 2D detections: per-sequence std drawn log-uniformly in
# [centre / sqrt(spread), centre * sqrt(spread)] pixels.
PIXEL_JITTER = (1.5, 3.0)
SEQUENCE_PREFIX = "dataset-1_"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", default=DEFAULT_SOURCE,
                        help="derived Bandai npz, relative to the repo root unless absolute")
    parser.add_argument("--out", default="data/poses", help="output root (relative to repo root)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the errors")
    parser.add_argument("--strength", type=float, default=DEFAULT_STRENGTH,
                        help="error-amplitude calibration factor")
    parser.add_argument("--max-frames", type=int, default=DEFAULT_MAX_FRAMES,
                        help="longest segment kept per sequence (keeps the repo light); 0 keeps "
                             "whole clips (about 2.5x the frames; write to a scratch --out)")
    parser.add_argument("--train-max-frames", type=int, default=None,
                        help="longest segment of a training clip, if it differs from "
                             "--max-frames (0 = whole clips); the test split stays as "
                             "--max-frames builds it, byte for byte")
    return parser.parse_args()


def segment_length(split: str, args: argparse.Namespace) -> int:
    """The longest segment kept of a clip of this split (0 = the whole clip)."""
    if split == "train" and args.train_max_frames is not None:
        return args.train_max_frames
    return args.max_frames


def split_sequences(stems: list[str], seed: int) -> dict[str, list[str]]:
    """Split by sequence, stratified by content type (second token of the stem)."""
    rng = np.random.default_rng(seed)
    by_content: dict[str, list[str]] = defaultdict(list)
    for stem in sorted(stems):
        by_content[stem.split("_")[1]].append(stem)
    split: dict[str, list[str]] = {"train": [], "test": []}
    for content in sorted(by_content):
        members = list(rng.permutation(by_content[content]))
        if len(members) >= 2:
            num_test = int(np.clip(round(TEST_FRACTION * len(members)), 1, len(members) - 1))
        else:
            num_test = int(rng.random() < TEST_FRACTION)
        split["test"] += members[:num_test]
        split["train"] += members[num_test:]
    return {name: sorted(stems) for name, stems in split.items()}


def facing_direction(positions: np.ndarray, left: int, right: int) -> np.ndarray:
    """Mean horizontal facing of a Y-up body: left-hip-to-right-hip axis crossed with up."""
    left_axis = (positions[:, left] - positions[:, right]).mean(axis=0)
    return np.cross(left_axis, np.array([0.0, 1.0, 0.0]))


def build_sequence(stem: str, motion: np.ndarray, args: argparse.Namespace, fps: float,
                   max_frames: int) -> dict:
    """Crop to ``max_frames`` (0 = whole), rescale, simulate the 3D estimate and project both
    to 2D for one sequence."""
    skeleton = get_skeleton("bandai21")
    rng = np.random.default_rng([args.seed, zlib.crc32(stem.encode())])
    max_frames = max_frames if max_frames > 0 else len(motion)
    start = int(rng.integers(0, max(1, len(motion) - max_frames + 1)))
    motion = motion[start:start + max_frames].astype(np.float64)
    scales = sample_bone_scales(rng, skeleton.num_joints, skeleton.parents, skeleton.left_right)
    gt = rescale_bones(motion, skeleton.parents, scales)
    params = sample_error_params(rng, args.strength)
    est = simulate_estimate(gt, skeleton.parents, fps, params, rng, skeleton.left_right)
    _, gt_2d, est_2d = view_through_camera(gt, est, rng, fps)
    pixel_sigma = PIXEL_JITTER[0] * PIXEL_JITTER[1] ** rng.uniform(-0.5, 0.5)
    est_2d = est_2d + rng.standard_normal(est_2d.shape) * pixel_sigma
    frames = np.empty(len(gt), dtype=object)
    frames[:] = [f"{stem}/{start + t:06d}.jpg" for t in range(len(gt))]
    return {"imgname": frames, "gt_3d": quantize(gt, QUANTUM_3D),
            "est_3d": quantize(est, QUANTUM_3D), "gt_2d": quantize(gt_2d, QUANTUM_2D),
            "est_2d": quantize(est_2d, QUANTUM_2D)}


def view_through_camera(gt: np.ndarray, est: np.ndarray, rng: np.random.Generator,
                        fps: float) -> tuple[PinholeCamera, np.ndarray, np.ndarray]:
    """Draw a camera facing the body (``sample_camera``) and project ground truth and estimate.

    Shape:
        gt, est: (T, 21, 3) bandai21, metres; returns the camera, gt_2d and est_2d (T, 21, 2) px.
    """
    names = get_skeleton("bandai21").joint_names
    facing = facing_direction(gt, names.index("UpperLeg_L"), names.index("UpperLeg_R"))
    camera = sample_camera(rng, gt[:, 0], facing, fps)
    gt_2d = project_pinhole(world_to_camera(gt, camera), camera.focal, camera.center)
    est_2d = project_pinhole(world_to_camera(est, camera), camera.focal, camera.center)
    return camera, gt_2d, est_2d


def quantize(values: np.ndarray, quantum: float) -> np.ndarray:
    """Round to a power-of-two step, exactly representable in float32."""
    return (np.round(np.asarray(values, dtype=np.float64) / quantum) * quantum).astype(np.float32)


def _frame_mean(records: list[dict], metric, kind: str, scale: float) -> float:
    """A per-frame metric of estimate vs ground truth, averaged over all frames of all records."""
    per_frame = [metric(r[f"est_{kind}"].astype(np.float64), r[f"gt_{kind}"].astype(np.float64))
                 for r in records]
    return scale * float(np.concatenate(per_frame).mean())


def _root_relative_accel(est: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return accel_errors(root_align(est, (0,)), root_align(gt, (0,)))


def summarize_3d(records: list[dict]) -> dict[str, float]:
    """Frame-weighted 3D input errors (mm, root joint 0 subtracted) over a list of sequences."""
    return {
        "sequences": len(records),
        "frames": sum(len(r["gt_3d"]) for r in records),
        "mpjpe": _frame_mean(records, lambda e, g: mpjpe(e, g, (0,)), "3d", 1000.0),
        "pa_mpjpe": _frame_mean(records, pa_mpjpe, "3d", 1000.0),
        "accel": _frame_mean(records, _root_relative_accel, "3d", 1000.0),
    }


def summarize(records: list[dict]) -> dict[str, float]:
    """Frame-weighted 3D and 2D input errors over a list of sequences."""
    return {**summarize_3d(records), "error_2d_px": _frame_mean(records, mpjpe, "2d", 1.0)}


def object_array(items: list[np.ndarray]) -> np.ndarray:
    """One entry per sequence, kept as separate arrays (numpy must not stack them)."""
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array


def save_atomic(path: Path, **arrays: np.ndarray) -> int:
    """Write a compressed npz through a temporary file and os.replace; return its size.

    Byte-reproducible: ``np.savez_compressed`` writes each member through
    ``ZipFile.open(name, "w")``, whose entries carry zipfile's fixed 1980-01-01 timestamp, so
    the same arrays give the same bytes (tests compare built files byte for byte).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez_compressed(stream, **arrays)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
    return path.stat().st_size


def write_split(out: Path, split: str, records: list[dict]) -> int:
    """Write the four SmoothNet-layout files of one split; return their total size."""
    names = object_array([r["imgname"] for r in records])

    def flat(key: str) -> np.ndarray:
        return object_array([r[key].reshape(len(r[key]), -1) for r in records])  # (T, J*D)

    files = {
        out / "sample_sim_3D/detected" / f"sample_sim_3D_{split}.npz": ("joints_3d", "est_3d"),
        out / "sample_sim_3D/groundtruth" / f"sample_gt_3D_{split}.npz": ("joints_3d", "gt_3d"),
        out / "sample_sim_2D/detected" / f"sample_sim_2D_{split}.npz": ("keypoints_2d", "est_2d"),
        out / "sample_sim_2D/groundtruth" / f"sample_gt_2D_{split}.npz": ("keypoints_2d", "gt_2d"),
    }
    total = 0
    for path, (key, field) in files.items():
        size = save_atomic(path, imgname=names, **{key: flat(field)})
        logger.info("wrote %s (%.2f MB)", path, size / 1e6)
        total += size
    return total


def repo_path(text: str) -> Path:
    """A path from the command line: relative to the repo root unless absolute."""
    return REPO_ROOT / text  # an absolute ``text`` replaces REPO_ROOT


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args()
    source, out = repo_path(args.source), repo_path(args.out)
    data = np.load(source)
    skeleton = get_skeleton("bandai21")
    if tuple(data["joint_names"]) != skeleton.joint_names:
        raise ValueError(f"{source}: joint names differ from the bandai21 skeleton")
    fps = float(data["fps"])
    stems = [key for key in data.files if key.startswith(SEQUENCE_PREFIX)]
    splits = split_sequences(stems, args.seed)
    records = {name: [build_sequence(s, data[s], args, fps, segment_length(name, args))
                      for s in members]
               for name, members in splits.items()}
    total = sum(write_split(out, name, recs) for name, recs in records.items())
    for name, recs in [*records.items(), ("all", records["train"] + records["test"])]:
        stats = summarize(recs)
        logger.info("%-5s sequences %3d frames %5d | MPJPE %.1f mm  PA-MPJPE %.1f mm  "
                    "Accel %.1f mm/frame^2 | 2D %.1f px", name, stats["sequences"],
                    stats["frames"], stats["mpjpe"], stats["pa_mpjpe"], stats["accel"],
                    stats["error_2d_px"])
    logger.info("total size %.2f MB (strength %.3f, seed %d)", total / 1e6, args.strength,
                args.seed)


if __name__ == "__main__":
    run_main(main, "build_sample_data")
