"""Per-frame 2D keypoints with scores in JSON, as AlphaPose and mmpose write them.

Two layouts are read (one person per file: in each frame the highest-scoring detection):

- ``keypoints`` (AlphaPose results, COCO-style): a list of detections, each
  ``{"image_id": ..., "keypoints": [x1, y1, s1, x2, y2, s2, ...], "score": ...}``; detections
  that share an ``image_id`` are one frame; without ``image_id`` every entry is a frame.
- ``instances`` (mmpose inferencer predictions): ``{"instance_info": [frame, ...]}`` or a bare
  list of frames, each ``{"frame_id": ..., "instances": [{"keypoints": [[x, y], ...],
  "keypoint_scores": [s, ...]}, ...]}``. A frame without instances keeps its place in time
  with every score 0 (so it is interpolated) and is written back unchanged.
"""

from __future__ import annotations

import copy
import json

import numpy as np

from lib.formats.base import FormatError, PoseFile, single_sequence
from lib.utils.io import save_text

# COCO-17 keypoint order, used as joint names when a file has 17 keypoints.
COCO17_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
                "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
COCO17_PARENTS = (-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14)
# Written coordinates are rounded to this many decimals (1e-4 px).
_DECIMALS = 4


def _numbers(value, where: str, what: str) -> np.ndarray:
    """``value`` as a float array, or a FormatError naming ``where``."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise FormatError(f"{where}: {what} must hold numbers only") from None


def _member(entry, key: str, where: str, example: str):
    """``entry[key]`` of a JSON object, or a FormatError naming the entry and the key."""
    if not isinstance(entry, dict):
        raise FormatError(f"{where}: expected a JSON object {example}, got a "
                          f"{type(entry).__name__} ({json.dumps(entry)[:40]})")
    if key not in entry:
        raise FormatError(f"{where}: no {key!r} key (keys: {sorted(entry)}); expected "
                          f"{example}")
    return entry[key]


def _flat_triples(detection: dict, where: str) -> np.ndarray:
    """Shape: returns (J, 3) as x, y, score."""
    keypoints = _member(detection, "keypoints", where, '{"keypoints": [x1, y1, s1, ...]}')
    values = _numbers(keypoints, where, "'keypoints'")
    if values.ndim != 1 or values.size % 3:
        raise FormatError(f"{where}: 'keypoints' must be a flat list x1, y1, s1, x2, ... "
                          f"(length a multiple of 3), got shape {values.shape}")
    return values.reshape(-1, 3)


def _group_frames(detections: list) -> list[list[int]]:
    """Indices of the detections of each frame, frames in order of first appearance."""
    if not all("image_id" in det for det in detections):
        return [[index] for index in range(len(detections))]
    frames: dict = {}
    for index, det in enumerate(detections):
        frames.setdefault(str(det["image_id"]), []).append(index)
    return list(frames.values())


def _read_keypoint_list(document: list, path: str) -> tuple[np.ndarray, list]:
    """Layout ``keypoints``. Returns (F, J, 3) x, y, score and the chosen detection per frame."""
    example = '{"image_id": ..., "keypoints": [x1, y1, s1, ...], "score": ...}'
    for index, detection in enumerate(document):
        _member(detection, "keypoints", f"{path}, entry {index}", example)
    triples, slots = [], []
    for members in _group_frames(document):
        people = [_flat_triples(document[i], f"{path}, entry {i}") for i in members]
        score = [document[i].get("score", people[k][:, 2].mean()) for k, i in enumerate(members)]
        best = int(np.argmax(score))
        triples.append(people[best])
        slots.append(members[best])
    return _stack(triples, path), slots


def _instance_triples(instance: dict, where: str) -> np.ndarray:
    example = '{"keypoints": [[x, y], ...], "keypoint_scores": [s, ...]}'
    points = _numbers(_member(instance, "keypoints", where, example), where, "'keypoints'")
    scores = _numbers(instance.get("keypoint_scores", np.ones(points.shape[:1])), where,
                      "'keypoint_scores'")
    if points.ndim != 2 or points.shape[1] != 2 or scores.shape != (len(points),):
        raise FormatError(f"{where}: 'keypoints' must be [[x, y], ...] with one "
                          f"'keypoint_scores' entry each; got {points.shape} and {scores.shape}")
    return np.concatenate([points, scores[:, None]], axis=1)


def _read_instances(frames: list, path: str) -> tuple[np.ndarray, list]:
    """Layout ``instances``. Returns (F, J, 3) and (frame, instance) per frame or None."""
    triples: list = []
    slots: list = []
    for f, frame in enumerate(frames):
        where = f"{path}, frame {f}"
        if not isinstance(frame, dict):
            _member(frame, "instances", where, '{"frame_id": ..., "instances": [...]}')
        instances = frame.get("instances", [])
        if not isinstance(instances, list):
            raise FormatError(f"{where}: 'instances' must be a list of detected people, got a "
                              f"{type(instances).__name__}")
        people = [_instance_triples(inst, f"{where}, instance {k}")
                  for k, inst in enumerate(instances)]
        if not people:
            triples.append(None)
            slots.append(None)
            continue
        best = int(np.argmax([person[:, 2].mean() for person in people]))
        triples.append(people[best])
        slots.append((f, best))
    joints = next((t.shape[0] for t in triples if t is not None), None)
    if joints is None:
        raise FormatError(f"{path}: no frame has a detected person")
    empty = np.zeros((joints, 3))
    return _stack([empty if t is None else t for t in triples], path), slots


def _stack(triples: list[np.ndarray], path: str) -> np.ndarray:
    counts = {len(t) for t in triples}
    if len(counts) != 1:
        raise FormatError(f"{path}: frames have different keypoint counts {sorted(counts)}; "
                          "one file must hold one skeleton")
    return np.stack(triples)


def _layout(document, path: str) -> tuple[str, list]:
    if isinstance(document, dict) and isinstance(document.get("instance_info"), list):
        return "instances", document["instance_info"]
    if isinstance(document, list) and document:
        # The first entry decides the layout; every other entry is checked when read.
        first = document[0]
        if isinstance(first, dict) and "instances" in first:
            return "instances", document
        if isinstance(first, dict) and "keypoints" in first:
            return "keypoints", document
    raise FormatError(f"{path}: unknown keypoint JSON layout; expected a list of detections with "
                      "flat 'keypoints' [x, y, score, ...] (AlphaPose results) or mmpose "
                      "predictions with 'instances' (see docs/REFINE.md)")


def read_keypoint_json(path: str) -> PoseFile:
    """One person's 2D keypoints and scores from a keypoint JSON file.

    Shape:
        sequences: one (F, J, 2) in pixels; scores: one (F, J).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(f"{path}: cannot read the JSON file ({err})") from None
    layout, entries = _layout(document, path)
    reader = _read_keypoint_list if layout == "keypoints" else _read_instances
    triples, slots = reader(entries, path)
    joints = triples.shape[1]
    return PoseFile(path, "json", [triples[..., :2]], scores=[triples[..., 2]],
                    joint_names=COCO17_NAMES if joints == 17 else None,
                    parents=COCO17_PARENTS if joints == 17 else None,
                    meta={"document": document, "layout": layout, "slots": slots})


def _coordinates(point: np.ndarray) -> list[float]:
    return [round(float(value), _DECIMALS) for value in point]


def _write_back(document, layout: str, slots: list, poses: np.ndarray) -> None:
    """Overwrite the chosen detection's x, y per frame; scores and everything else stay."""
    entries = document["instance_info"] if isinstance(document, dict) else document
    for frame, slot in enumerate(slots):
        if slot is None:
            continue
        if layout == "keypoints":
            keypoints = entries[slot]["keypoints"]
            for joint, point in enumerate(poses[frame]):
                keypoints[3 * joint:3 * joint + 2] = _coordinates(point)
        else:
            instance = entries[slot[0]]["instances"][slot[1]]
            instance["keypoints"] = [_coordinates(point) for point in poses[frame]]


def write_keypoint_json(path: str, pose_file: PoseFile) -> None:
    """The source document with the refined coordinates of the tracked person."""
    if pose_file.format != "json":
        raise FormatError(f"{path}: keypoint JSON can only be written for keypoint JSON input; "
                          f"{pose_file.path} is {pose_file.format}; write .csv, .npy or .npz")
    document = copy.deepcopy(pose_file.meta["document"])
    _write_back(document, pose_file.meta["layout"], pose_file.meta["slots"],
                np.asarray(single_sequence(pose_file, path)))
    save_text(path, json.dumps(document) + "\n")
