"""Build sample_sim_rot: Bandai-Namco BVH local joint rotations (6D) with rotation-space errors.

The ground truth is each clip's local joint rotations (joint_Root, static at the origin, is
dropped and its rotation folded into Hips); the estimate turns every rotation by a slowly
drifting plus jittering error rotation (lib/data/rotation_errors.py). The split is that of
tools/build_sample_data.py, and each clip keeps the first 64 frames of the 3D sample's 76-frame
segment (same seed and stem), which keeps the files near 3 MB. Scoring goes through forward
kinematics of the BVH skeleton, whose bone offsets go to skeleton.yaml.
"""

from __future__ import annotations

import argparse
import glob
import logging
import sys
import zlib
from pathlib import Path

import numpy as np
import torch
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
# `python tools/build_rot_sample.py` must work from a plain clone, where `lib` is not installed.
sys.path.insert(0, str(REPO_ROOT))

from lib.core.metrics import accel_errors, mpjpe, pa_mpjpe  # noqa: E402
from lib.data.error_model import sample_error_params  # noqa: E402
from lib.data.kinematics import rot6d_positions  # noqa: E402
from lib.data.rotation_errors import leaf_joints, simulate_rotation_estimate  # noqa: E402
from lib.data.rotations import euler_to_matrix, matrix_to_rot6d_np  # noqa: E402
from lib.data.skeletons import Skeleton, get_skeleton  # noqa: E402
from lib.errors import InputFileError, run_main  # noqa: E402
from lib.formats.bvh import parse_bvh  # noqa: E402
from tools.build_sample_data import (  # noqa: E402
    DEFAULT_MAX_FRAMES,
    SEQUENCE_PREFIX,
    object_array,
    quantize,
    repo_path,
    save_atomic,
    split_sequences,
)

logger = logging.getLogger("build_rot_sample")

DEFAULT_SOURCE = "../shared/data/real/bandai_namco_motion_1/data"
FOLDER = "sample_sim_rot"
# 6D values are rounded to a power-of-two step and stored as float16, which holds them exactly
# (|values| <= 1), so that the committed files stay small: ground truth to 2^-11 (a rotation
# error below 0.03 degrees), estimates, whose jitter is 30 times larger, to 2^-10.
QUANTUM_GT = 2.0 ** -11
QUANTUM_EST = 2.0 ** -10
# Frames kept per clip, from the start of the 3D sample's DEFAULT_MAX_FRAMES-frame segment.
DEFAULT_FRAMES = 64
# BVH offsets are in centimetres.
CM = 0.01


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", default=DEFAULT_SOURCE,
                        help="folder of the Bandai BVH files, relative to the repo root")
    parser.add_argument("--out", default="data/poses", help="output root (relative to repo root)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the errors")
    parser.add_argument("--strength", type=float, default=1.0, help="error-amplitude factor")
    parser.add_argument("--max-frames", type=int, default=DEFAULT_FRAMES,
                        help="frames kept from the start of the 3D sample's segment")
    return parser.parse_args()


def read_clip(path: str, skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray, float]:
    """Local rotations of the skeleton's joints, their bone offsets (m) and the frame rate.

    Shape:
        returns rotations (F, J, 3, 3), offsets (J, 3).
    """
    motion = parse_bvh(path)
    names = [joint.name for joint in motion.joints]
    if names[0] != "joint_Root" or tuple(names[1:]) != skeleton.joint_names:
        raise InputFileError(f"{path}: joints {names} are not joint_Root + {skeleton.name}")
    rotations, column = [], 0
    for joint in motion.joints:
        kinds = [name[1:].lower() for name in joint.channels]
        order = "".join(name[0].upper() for name in joint.channels if "rotation" in name.lower())
        values = motion.values[:, column:column + len(joint.channels)]
        angles = np.deg2rad(values[:, [i for i, k in enumerate(kinds) if k == "rotation"]])
        rotations.append(euler_to_matrix(torch.from_numpy(angles), order).numpy())
        column += len(joint.channels)
    local = np.stack(rotations[1:], axis=1)  # (F, J, 3, 3), joint_Root dropped
    local[:, 0] = rotations[0] @ local[:, 0]  # fold the root's rotation into Hips
    offsets = np.array([joint.offset for joint in motion.joints[1:]]) * CM
    fps = 1.0 / motion.frame_time
    if abs(fps - skeleton.fps) > 1e-3:
        raise InputFileError(f"{path}: {fps:.4f} fps, expected {skeleton.fps}")
    return local, offsets, skeleton.fps


def crop(stem: str, length: int, args: argparse.Namespace) -> slice:
    """The start of the segment tools/build_sample_data.py keeps for this clip (its first
    draw from the same seed and stem), ``args.max_frames`` long."""
    rng = np.random.default_rng([args.seed, zlib.crc32(stem.encode())])
    start = int(rng.integers(0, max(1, length - DEFAULT_MAX_FRAMES + 1)))
    return slice(start, start + min(args.max_frames, DEFAULT_MAX_FRAMES))


def build_sequence(stem: str, path: str, args: argparse.Namespace,
                   skeleton: Skeleton) -> dict:
    """Ground-truth and estimated 6D rotations of one cropped clip."""
    local, offsets, fps = read_clip(path, skeleton)
    segment = crop(stem, len(local), args)
    local = local[segment]
    # In the Bandai BVH a leaf's End Site sits at the joint itself: its rotation moves nothing.
    local[:, leaf_joints(skeleton.parents)] = np.eye(3)
    gt = quantize(matrix_to_rot6d_np(local), QUANTUM_GT)  # (T, J, 6)
    # A seed stream of its own, so the errors do not depend on the 3D sample's draws.
    rng = np.random.default_rng([args.seed, zlib.crc32(stem.encode()), 6])
    params = sample_error_params(rng, args.strength)
    est = simulate_rotation_estimate(gt, skeleton.parents, fps, params, rng)  # leaves exact
    frames = object_array([f"{stem}/{segment.start + t:06d}.jpg" for t in range(len(gt))])
    return {"imgname": frames, "gt": gt.astype(np.float16),
            "est": quantize(est, QUANTUM_EST).astype(np.float16), "offsets": offsets}


def summarize(records: list[dict], offsets: np.ndarray, skeleton: Skeleton) -> dict:
    """Frame-weighted input errors through forward kinematics, root-aligned, in mm."""
    per_frame: dict[str, list[np.ndarray]] = {"mpjpe": [], "pa_mpjpe": [], "accel": []}
    for record in records:
        est = rot6d_positions(record["est"].astype(np.float64), offsets, skeleton)
        gt = rot6d_positions(record["gt"].astype(np.float64), offsets, skeleton)
        per_frame["mpjpe"].append(mpjpe(est, gt, skeleton.root_joints))
        per_frame["pa_mpjpe"].append(pa_mpjpe(est, gt))
        per_frame["accel"].append(accel_errors(est, gt))
    frames = sum(len(r["gt"]) for r in records)
    return {"sequences": len(records), "frames": frames,
            **{k: 1000.0 * float(np.concatenate(v).mean()) for k, v in per_frame.items()}}


def write_split(out: Path, split: str, records: list[dict]) -> int:
    """The detected and ground-truth npz of one split; returns their total size."""
    names = object_array([r["imgname"] for r in records])
    total = 0
    for side, key in (("detected", "est"), ("groundtruth", "gt")):
        stem = f"sample_sim_rot_{split}" if side == "detected" else f"sample_gt_rot_{split}"
        rot6d = object_array([r[key].reshape(len(r[key]), -1) for r in records])  # (T, J*6)
        total += save_atomic(out / FOLDER / side / f"{stem}.npz", imgname=names, rot6d=rot6d)
    return total


def write_skeleton(out: Path, skeleton: Skeleton, offsets: np.ndarray) -> None:
    """skeleton.yaml: joint names, parents, root, fps and the bone offsets in metres."""
    spec = {"joint_names": list(skeleton.joint_names), "parents": list(skeleton.parents),
            "root_joints": list(skeleton.root_joints), "fps": skeleton.fps,
            "offsets": [[round(float(v), 6) for v in row] for row in offsets]}
    path = out / FOLDER / "skeleton.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ("# Bandai-Namco-Research-Motiondataset-1 skeleton (CC BY-NC 4.0, (c) 2022 Bandai "
              "Namco Research Inc.);\n# offsets: each joint's position in its parent's frame, "
              "metres. Built by tools/build_rot_sample.py.\n")
    path.write_text(header + yaml.safe_dump(spec, sort_keys=False, default_flow_style=None))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args()
    source, out = repo_path(args.source), repo_path(args.out)
    skeleton = get_skeleton("bandai21")
    paths = {Path(p).stem: p for p in sorted(glob.glob(str(source / "*.bvh")))}
    stems = [stem for stem in paths if stem.startswith(SEQUENCE_PREFIX)]
    splits = split_sequences(stems, args.seed)
    records = {name: [build_sequence(s, paths[s], args, skeleton) for s in members]
               for name, members in splits.items()}
    offsets = records["train"][0]["offsets"]
    offsets[0] = 0.0  # the root's offset (its rest position) plays no part in the kinematics
    spread = max(np.abs(r["offsets"][1:] - offsets[1:]).max()
                 for rs in records.values() for r in rs)
    if spread > 1e-3:  # the clips agree to 0.4 mm
        raise InputFileError(f"bone offsets differ between clips by {spread} m; expected the one "
                             "retargeted skeleton")
    write_skeleton(out, skeleton, offsets)
    total = sum(write_split(out, name, recs) for name, recs in records.items())
    for name, recs in [*records.items(), ("all", records["train"] + records["test"])]:
        stats = summarize(recs, offsets, skeleton)
        logger.info("%-5s sequences %3d frames %5d | MPJPE %.1f mm  PA-MPJPE %.1f mm  Accel %.1f "
                    "mm/frame^2", name, stats["sequences"], stats["frames"], stats["mpjpe"],
                    stats["pa_mpjpe"], stats["accel"])
    logger.info("total size %.2f MB (strength %.3f, seed %d)", total / 1e6, args.strength,
                args.seed)


if __name__ == "__main__":
    run_main(main, "build_rot_sample")
