"""Build the unseen-motion evaluation set: motion and estimator errors the sample never trains on.

The embedded sample (tools/build_sample_data.py) trains on 76-frame crops of the 116 Bandai
clips of its training split, with errors drawn from ``sample_error_params`` (the same family
``TRAIN.AUGMENT`` draws from). This set takes the *whole* clips of the 36 held-out sequences
instead (content x style pairs the training split never contains, every frame of them), new
bodies, and estimator errors from another setting of the error model: correlation times, rates
and distal factors from ranges disjoint from the training ones, amplitudes from wider ranges.
The 2D variant projects the stored 3D ground truth and estimate through a pinhole camera per
clip (the sample's camera model) and adds pixel noise from outside the training's range; its
camera and noise come from a generator of their own, so the 3D files do not depend on it.
See docs/UNSEEN.md. Written in the SmoothNet layout under a separate base folder:

    {out}/sample_unseen_3D/detected/sample_unseen_3D_test.npz       (imgname, joints_3d)
    {out}/sample_unseen_3D/groundtruth/sample_gt_3D_test.npz        (imgname, joints_3d)
    {out}/sample_unseen_3D/manifest.json                            (stems, seed, parameters)
    {out}/sample_unseen_2D/detected/sample_unseen_2D_test.npz       (imgname, keypoints_2d)
    {out}/sample_unseen_2D/groundtruth/sample_gt_2D_test.npz        (imgname, keypoints_2d)
    {out}/sample_unseen_2D/manifest.json                            (cameras, pixel noise)

Evaluate with ``eval.py ... --estimator unseen DATASET.BASE_DIR {out}``. Byte-reproducible:
the same arguments give the same files (``save_atomic``: fixed zip timestamps).

``--motion aistpp`` takes the five AIST++ dance slices of ``../shared/data/real`` instead of the
Bandai clips (mapped onto bandai21 with Bandai's bone lengths, ``tools/aistpp_motion.py``): the
same bodies, errors and cameras on motion of another kind and another capture.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lib.data.camera import PinholeCamera  # noqa: E402
from lib.data.error_model import (  # noqa: E402
    ErrorModelParams,
    rescale_bones,
    sample_bone_scales,
    simulate_estimate,
)
from lib.data.representations import REPRESENTATIONS  # noqa: E402
from lib.data.skeletons import get_skeleton  # noqa: E402
from lib.errors import InputFileError, run_main  # noqa: E402
from tools.aistpp_motion import AISTPP_SOURCE, aistpp_motions  # noqa: E402
from tools.build_sample_data import (  # noqa: E402
    DEFAULT_SOURCE,
    PIXEL_JITTER,
    QUANTUM_2D,
    QUANTUM_3D,
    SEQUENCE_PREFIX,
    object_array,
    quantize,
    repo_path,
    save_atomic,
    split_sequences,
    summarize,
    summarize_3d,
    view_through_camera,
)

logger = logging.getLogger("unseen_protocol")

DEFAULT_OUT = "data/unseen"
# The sample's split seed (tools/build_sample_data.py --seed): its test clips are the unseen
# motion. Changing it changes which clips count as unseen.
SAMPLE_SPLIT_SEED = 0
# Seed of the unseen bodies and errors; the sample used 0, training runs use SEED 1-3 for their
# on-the-fly augmentation, so the streams differ from both.
DEFAULT_SEED = 2718
DATASET, ESTIMATOR = "sample", "unseen"

# Per-sequence parameter ranges of the unseen error setting, drawn log-uniformly over the union
# of the listed intervals (each interval weighted by its log-width). Training ranges
# (lib/data/error_model.py, strength 1) are in the comments: timing, rates and the distal factor
# lie entirely outside them; amplitudes extend beyond them on both sides.
UNSEEN_RANGES: dict[str, tuple[tuple[float, float], ...]] = {
    "drift_amplitude": ((0.07, 0.30),),              # training 0.090-0.314 rad
    "drift_corr_s": ((0.25, 0.5), (2.0, 4.0)),       # training 0.5-2.0 s
    "rotation_jitter": ((0.0015, 0.011),),           # training 0.0022-0.0079 rad
    "scale_amplitude": ((0.01, 0.08),),              # training 0.016-0.056
    "global_corr_s": ((0.5, 1.0), (4.0, 8.0)),       # training 1.0-4.0 s
    "offset_amplitude": ((0.015, 0.15),),            # training 0.025-0.10 m
    "keypoint_sigma": ((0.002, 0.011),),             # training 0.0027-0.0080 m
    "distal_multiplier": ((1.1, 1.41), (2.83, 3.5)),  # training 1.41-2.83
    "occlusion_rate": ((0.04, 0.1), (0.4, 0.8)),     # training 0.1-0.4 per s
    "swap_rate": ((0.008, 0.02), (0.08, 0.16)),      # training 0.02-0.08 per s
}
# Event lengths in frames: min drawn from [low, high), max = min + [low, high); training:
# occlusion min 2-5, max min+4..min+15; swap min 2-3, max min+2..min+6.
UNSEEN_OCCLUSION_FRAMES = ((4, 9), (8, 25))
UNSEEN_SWAP_FRAMES = ((2, 5), (1, 11))
# Bodies: global size and per-bone factors (training: U(0.85, 1.15) and U(0.9, 1.1)).
UNSEEN_BODY_RANGE = (0.8, 1.2)
UNSEEN_BONE_RANGE = (0.85, 1.15)
# White pixel noise of the 2D estimate: per-clip std (px) drawn log-uniformly over these
# intervals; training 0.87-2.60 px (PIXEL_JITTER: 1.5 px times or over sqrt(3), in the sample's
# builder and in the 2D augmentation at strength 1), so below and above it, never inside.
UNSEEN_PIXEL_JITTER = ((0.4, 0.8), (3.0, 6.0))
# Third seed word of the 2D variant's own generator per clip (camera, pixel noise): the 3D
# draws, and the published 3D files, stay what they are without the 2D variant.
STREAM_2D = 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line of the builder."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--motion", default="bandai", choices=("bandai", "aistpp"),
                        help="the sample's held-out Bandai clips, or the AIST++ dance slices")
    parser.add_argument("--source", default=DEFAULT_SOURCE,
                        help="derived Bandai npz, relative to the repo root unless absolute "
                             "(with --motion aistpp: the Bandai bone lengths' source)")
    parser.add_argument("--aistpp-source", default=AISTPP_SOURCE,
                        help="the AIST++ slices' npz (--motion aistpp)")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help="base folder (DATASET.BASE_DIR), relative to the repo root")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of bodies and errors")
    parser.add_argument("--split-seed", type=int, default=SAMPLE_SPLIT_SEED,
                        help="the sample's split seed; its test clips are the unseen motion")
    parser.add_argument("--max-sequences", type=int, default=0,
                        help="keep only the first N unseen clips or AIST++ slices (0 = all; "
                             "for tests)")
    parser.add_argument("--max-frames", type=int, default=0,
                        help="keep only the first N frames of each clip (0 = whole clips)")
    return parser.parse_args(argv)


def draw_log_uniform(rng: np.random.Generator, intervals: tuple[tuple[float, float], ...]) -> float:
    """A value drawn log-uniformly over a union of disjoint positive intervals."""
    widths = np.array([np.log(high / low) for low, high in intervals])
    position = rng.uniform(0.0, widths.sum())
    for (low, _), width in zip(intervals, widths):
        if position <= width:
            return float(low * np.exp(position))
        position -= width
    return float(intervals[-1][1])


def draw_unseen_params(rng: np.random.Generator) -> ErrorModelParams:
    """One sequence's parameters of the unseen error setting (see UNSEEN_RANGES)."""
    values = {name: draw_log_uniform(rng, intervals) for name, intervals in UNSEEN_RANGES.items()}
    (min_low, min_high), (add_low, add_high) = UNSEEN_OCCLUSION_FRAMES
    low = int(rng.integers(min_low, min_high))
    values["occlusion_frames"] = (low, low + int(rng.integers(add_low, add_high)))
    (min_low, min_high), (add_low, add_high) = UNSEEN_SWAP_FRAMES
    low = int(rng.integers(min_low, min_high))
    values["swap_frames"] = (low, low + int(rng.integers(add_low, add_high)))
    return ErrorModelParams(**values)


def unseen_stems(stems: list[str], split_seed: int, max_sequences: int = 0) -> list[str]:
    """The clips of the sample's test split (never in its training split), sorted."""
    split = split_sequences(stems, split_seed)
    test = split["test"]
    if set(test) & set(split["train"]):
        raise RuntimeError("the sample's split overlaps; the unseen set would not be unseen")
    return test[:max_sequences] if max_sequences > 0 else test


def build_sequence(stem: str, motion: np.ndarray, seed: int, fps: float,
                   max_frames: int = 0) -> tuple[dict, dict]:
    """Whole clip, new body, unseen-setting estimate. Returns (arrays, manifest entry)."""
    skeleton = get_skeleton("bandai21")
    rng = np.random.default_rng([seed, zlib.crc32(stem.encode())])
    motion = np.asarray(motion[:max_frames] if max_frames > 0 else motion, dtype=np.float64)
    scales = sample_bone_scales(rng, skeleton.num_joints, skeleton.parents, skeleton.left_right,
                                UNSEEN_BODY_RANGE, UNSEEN_BONE_RANGE)
    gt = rescale_bones(motion, skeleton.parents, scales)
    params = draw_unseen_params(rng)
    est = simulate_estimate(gt, skeleton.parents, fps, params, rng, skeleton.left_right)
    frames = np.empty(len(gt), dtype=object)
    frames[:] = [f"{stem}/{t:06d}.jpg" for t in range(len(gt))]
    arrays = {"imgname": frames, "gt_3d": quantize(gt, QUANTUM_3D),
              "est_3d": quantize(est, QUANTUM_3D)}
    entry = {"stem": stem, "frames": len(gt), "params": asdict(params),
             "bone_scales": [round(float(s), 6) for s in scales]}
    return arrays, entry


def build_sequence_2d(stem: str, arrays: dict, seed: int, fps: float) -> tuple[dict, dict]:
    """Project a clip's stored 3D ground truth and estimate to 2D; add unseen pixel noise.

    The camera is the sample's (``sample_camera`` facing the body, 1000 x 1000 px); it and the
    noise are drawn from ``[seed, crc32(stem), STREAM_2D]``. Returns (arrays, manifest entry).

    Shape:
        arrays["gt_3d"], arrays["est_3d"]: (T, J, 3) -> gt_2d, est_2d (T, J, 2).
    """
    rng = np.random.default_rng([seed, zlib.crc32(stem.encode()), STREAM_2D])
    gt, est = (np.asarray(arrays[key], dtype=np.float64) for key in ("gt_3d", "est_3d"))
    camera, gt_2d, est_2d = view_through_camera(gt, est, rng, fps)
    sigma = draw_log_uniform(rng, UNSEEN_PIXEL_JITTER)
    est_2d = est_2d + rng.standard_normal(est_2d.shape) * sigma
    entry = {"stem": stem, "frames": len(gt), "pixel_sigma": round(sigma, 6),
             **camera_facts(camera, gt[:, 0], gt_2d)}
    return {"gt_2d": quantize(gt_2d, QUANTUM_2D), "est_2d": quantize(est_2d, QUANTUM_2D)}, entry


def camera_facts(camera: PinholeCamera, root: np.ndarray, gt_2d: np.ndarray) -> dict:
    """A clip's camera for the manifest: intrinsics, rotation, mean root distance, pitch.

    Shape:
        root (T, 3) metres; gt_2d (T, J, 2) pixels.
    """
    inside = np.all((gt_2d >= 0) & (gt_2d <= np.asarray(camera.image_size)), axis=-1)
    distance = np.linalg.norm(root - camera.position, axis=-1).mean()
    pitch = np.degrees(np.arcsin(-camera.rotation[2, 1]))  # optical axis below the horizon
    return {"focal": round(camera.focal, 3), "center": list(camera.center),
            "image_size": list(camera.image_size),
            "rotation": np.round(camera.rotation, 6).tolist(),
            "distance_m": round(float(distance), 4), "pitch_deg": round(float(pitch), 3),
            "gt_inside_image": round(float(inside.mean()), 6)}


def write_set(out: Path, records: list[dict], manifest: dict, rep: str = "3D") -> Path:
    """Write detected, ground truth and the manifest of one representation; return its folder."""
    folder = out / f"{DATASET}_{ESTIMATOR}_{rep}"
    pose_key, suffix = REPRESENTATIONS[rep].pose_key, rep.lower()
    names = object_array([r["imgname"] for r in records])
    for kind, field, filename in (("detected", f"est_{suffix}",
                                   f"{DATASET}_{ESTIMATOR}_{rep}_test.npz"),
                                  ("groundtruth", f"gt_{suffix}", f"{DATASET}_gt_{rep}_test.npz")):
        flat = object_array([r[field].reshape(len(r[field]), -1) for r in records])  # (T, J*D)
        size = save_atomic(folder / kind / filename, imgname=names, **{pose_key: flat})
        logger.info("wrote %s (%.2f MB)", folder / kind / filename, size / 1e6)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n",
                                          encoding="utf-8")
    return folder


def bandai_unseen_motions(source: Path, split_seed: int,
                          max_sequences: int = 0) -> tuple[dict[str, np.ndarray], float]:
    """The Bandai clips of the sample's test split, by stem, and the fps.

    Shape:
        -> {stem: (T, 21, 3) metres}.
    """
    data = np.load(source)
    if tuple(data["joint_names"]) != get_skeleton("bandai21").joint_names:
        raise InputFileError(f"{source}: joint names differ from the bandai21 skeleton")
    stems = unseen_stems([k for k in data.files if k.startswith(SEQUENCE_PREFIX)], split_seed,
                         max_sequences)
    return {stem: data[stem] for stem in stems}, float(data["fps"])


def build_unseen(source: Path, out: Path, seed: int = DEFAULT_SEED,
                 split_seed: int = SAMPLE_SPLIT_SEED, max_sequences: int = 0,
                 max_frames: int = 0, aistpp_source: Path | None = None) -> dict[str, dict]:
    """Build and write the unseen set; return its manifests by representation (3D, 2D).

    The motion is the Bandai clips of the sample's test split, or with ``aistpp_source`` the
    AIST++ slices retargeted to Bandai's bone lengths (from ``source``). The 3D set is built
    first and alone; the 2D set only reads its arrays (see STREAM_2D).
    """
    if aistpp_source is None:
        motions, fps = bandai_unseen_motions(source, split_seed, max_sequences)
        origin = {"split_seed": split_seed, "source": source.name}
    else:
        motions, fps = aistpp_motions(aistpp_source, source)
        if max_sequences > 0:  # the first slices in name order, as for the Bandai clips
            motions = dict(list(motions.items())[:max_sequences])
        origin = {"split_seed": None, "source": aistpp_source.name,
                  "motion": "AIST++ slices on bandai21, Bandai bone lengths"}
    built = [build_sequence(stem, motion, seed, fps, max_frames)
             for stem, motion in motions.items()]
    records = [arrays for arrays, _ in built]
    manifest = {"seed": seed, **origin, "estimator": ESTIMATOR,
                "input_error": summarize_3d(records),
                "ranges": {k: [list(i) for i in v] for k, v in UNSEEN_RANGES.items()},
                "sequences": [entry for _, entry in built]}
    write_set(out, records, manifest)
    stats = manifest["input_error"]
    logger.info("unseen: %d sequences, %d frames | input MPJPE %.1f mm  PA-MPJPE %.1f mm  "
                "Accel %.1f mm/frame^2 (seed %d)", stats["sequences"], stats["frames"],
                stats["mpjpe"], stats["pa_mpjpe"], stats["accel"], seed)
    return {"3D": manifest, "2D": build_unseen_2d(out, records, manifest, fps)}


def build_unseen_2d(out: Path, records: list[dict], manifest_3d: dict, fps: float) -> dict:
    """Project the built 3D records (``build_sequence``) to 2D, write and return the manifest."""
    seed = manifest_3d["seed"]
    built = [build_sequence_2d(entry["stem"], arrays, seed, fps)
             for arrays, entry in zip(records, manifest_3d["sequences"])]
    records_2d = [{**arrays, **arrays_2d} for arrays, (arrays_2d, _) in zip(records, built)]
    stats = summarize(records_2d)
    low, spread = PIXEL_JITTER
    manifest = {key: manifest_3d[key] for key in ("seed", "split_seed", "source", "motion",
                                                  "estimator") if key in manifest_3d}
    manifest.update({
        "generator": f"numpy default_rng([{seed}, crc32(stem), {STREAM_2D}]) per clip",
        "input_error": {key: stats[key] for key in ("sequences", "frames", "error_2d_px")},
        "pixel_jitter": [list(i) for i in UNSEEN_PIXEL_JITTER],
        "training_pixel_jitter": [round(low / spread ** 0.5, 4), round(low * spread ** 0.5, 4)],
        "sequences": [entry for _, entry in built]})
    write_set(out, records_2d, manifest, "2D")
    logger.info("unseen 2D: %d sequences, %d frames | input error %.2f px (mean joint distance "
                "in a 1000 px image)", stats["sequences"], stats["frames"], stats["error_2d_px"])
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Build the set from the command line."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    aistpp = repo_path(args.aistpp_source) if args.motion == "aistpp" else None
    build_unseen(repo_path(args.source), repo_path(args.out), args.seed, args.split_seed,
                 args.max_sequences, args.max_frames, aistpp)
    return 0


if __name__ == "__main__":
    run_main(main, "unseen_protocol")
