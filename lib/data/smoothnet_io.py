"""Reading and validating estimator output and ground truth in the SmoothNet npz layout."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from lib.data.kinematics import load_bone_offsets
from lib.data.representations import REPRESENTATIONS
from lib.data.skeletons import Skeleton, get_skeleton, skeleton_for_dataset, skeleton_from_yaml
from lib.data.smpl_data import poses_to_rot6d, read_shapes
from lib.errors import InputFileError, MissingFileError, UnknownNameError
from lib.utils.safe_load import load_npz

logger = logging.getLogger(__name__)

# Where the public benchmark data comes from, quoted in every missing-file error.
DATA_SOURCE_HINT = (
    "the SmoothNet benchmark data is downloaded from the links in SmoothNet's README "
    "(github.com/cure-lab/SmoothNet) and unpacked so that this path exists; set DATASET.BASE_DIR "
    "to its root. The embedded sample (dataset 'sample', estimator 'sim') is rebuilt with "
    "`python tools/build_sample_data.py`"
)

# Estimators of SmoothNet's released data (its configs spell VideoPose3D with the receptive
# field, e.g. videoposet27, and TposeNet+RefineNet as tposenetrefinenet), plus the embedded
# sample's simulated 'sim'. Any other name is accepted; it only earns a hint in the log.
KNOWN_ESTIMATORS = ("spin", "vibe", "tcmr", "eft", "pare", "fcn", "rle", "videopose",
                    "videoposet27", "videoposet81", "videoposet243", "tposenet",
                    "tposenet_refinenet", "tposenetrefinenet", "cpn", "hourglass", "hrnet",
                    "simplepose", "sim")

# Array key holding the poses for each representation, and numbers per joint in the file.
POSE_KEYS = {name: (rep.pose_key, rep.file_dim) for name, rep in REPRESENTATIONS.items()}


class DataFormatError(InputFileError):
    """A data file that does not follow the SmoothNet layout; the message says how to fix it.

    An :class:`lib.errors.InputFileError`, hence a ``ValueError``.
    """


@dataclass
class SequenceSet:
    """The sequences of one dataset / estimator / representation / split.

    Attributes:
        name: ``{ds}_{est}_{rep}``.
        split: train or test.
        skeleton: joint names, parents and roots.
        representation: 2D, 3D, smpl or rot.
        detected: estimator output per sequence, each (T, J, D) float32 as the model sees it
            (smpl: axis-angle converted to 6D rotations, D = 6).
        groundtruth: ground truth per sequence, each (T, J, D) float32.
        sequence_names: a readable name per sequence (from ``imgname``).
        bboxes: per-sequence (T, 4) boxes x1, y1, x2, y2 where the ground truth has them.
        side: per-sequence data passed through the model untouched, e.g. SMPL betas
            ``det_shape`` and ``gt_shape`` (T, 10).
        bone_offsets: (J, 3) offsets in metres for forward kinematics (rot only).
    """

    name: str
    split: str
    skeleton: Skeleton
    representation: str
    detected: list[np.ndarray]
    groundtruth: list[np.ndarray]
    sequence_names: list[str]
    bboxes: list[np.ndarray] | None = None
    side: dict[str, list[np.ndarray]] = field(default_factory=dict)
    bone_offsets: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return sum(len(seq) for seq in self.groundtruth)


# A dataset folder may describe its own skeleton; it then needs no entry in the skeleton table.
SKELETON_FILE = "skeleton.yaml"


def nonfinite_count_and_frame(values: np.ndarray) -> tuple[int, int] | None:
    """How many NaN/Inf values a sequence holds and the first frame with one (None: none).

    Shape:
        values: (T, ...)
    """
    bad = ~np.isfinite(values)
    if not bad.any():
        return None
    return int(bad.sum()), int(np.argwhere(bad)[0][0])


def dataset_skeleton(base_dir: str, dataset: str, estimator: str, rep: str,
                     num_joints: int = 0) -> Skeleton:
    """SMPL's 24 joints for smpl; else the folder's ``skeleton.yaml`` or the dataset's entry.

    ``num_joints`` (the files' joint count, 0 if unknown) decides between an estimator's
    special layout and its dataset's default when only one of them fits.
    """
    if rep == "smpl":
        return get_skeleton("smpl24")
    path = os.path.join(base_dir, f"{dataset}_{estimator}_{rep}", SKELETON_FILE)
    if rep == "rot" and not os.path.isfile(path):
        raise MissingFileError(f"{path} not found: the rot representation needs the "
                                "skeleton's joint_names, parents, fps and bone offsets there "
                                "(see data/README.md, sample_sim_rot)")
    if os.path.isfile(path):
        return skeleton_from_yaml(path)
    try:
        return skeleton_for_dataset(dataset, estimator, num_joints)
    except KeyError as err:
        raise UnknownNameError(f"{err.args[0]}; or describe the skeleton in {path} "
                       "(see tools/prepare_data.py)") from None


def split_paths(base_dir: str, dataset: str, estimator: str, rep: str,
                split: str) -> tuple[str, str]:
    """Paths of the detected and ground-truth files of one split."""
    folder = os.path.join(base_dir, f"{dataset}_{estimator}_{rep}")
    detected = os.path.join(folder, "detected", f"{dataset}_{estimator}_{rep}_{split}.npz")
    groundtruth = os.path.join(folder, "groundtruth", f"{dataset}_gt_{rep}_{split}.npz")
    return detected, groundtruth


def _open_npz(path: str) -> dict[str, np.ndarray]:
    if not os.path.isfile(path):
        raise MissingFileError(f"{path} not found: {DATA_SOURCE_HINT}")
    # Object arrays go through the restricted unpickler: a data file never runs code.
    return load_npz(path, DataFormatError)


def _require(arrays: dict[str, np.ndarray], key: str, path: str) -> np.ndarray:
    if key not in arrays:
        raise DataFormatError(f"{path} has no key {key!r} (keys: {sorted(arrays)}); the file "
                              "must follow the SmoothNet layout (see README, 'Data')")
    return arrays[key]


def _sequence_list(values: np.ndarray, key: str, path: str) -> list[np.ndarray]:
    """An object array of per-sequence arrays (or a dense 3D array) as a list."""
    if values.dtype != object and values.ndim == 2:
        raise DataFormatError(f"{path}[{key!r}] is a single (T, C) array; wrap it as an object "
                              "array with one entry per sequence")
    return [np.asarray(seq) for seq in values]


def _as_poses(seq: np.ndarray, num_joints: int, dims: int, where: str) -> np.ndarray:
    """Check one sequence's shape and values and reshape (T, J*D) to (T, J, D)."""
    try:
        seq = np.asarray(seq, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataFormatError(f"{where}: values are not numeric") from None
    if seq.ndim == 3 and seq.shape[1:] == (num_joints, dims):
        seq = seq.reshape(len(seq), -1)
    if seq.ndim != 2 or seq.shape[1] != num_joints * dims:
        raise DataFormatError(f"{where}: shape {seq.shape} does not fit the skeleton: expected "
                              f"(T, {num_joints * dims}) = {num_joints} joints x {dims} "
                              "coordinates; check the dataset name and body representation")
    if len(seq) == 0:
        raise DataFormatError(f"{where}: the sequence has no frames; remove it from the file")
    nonfinite = nonfinite_count_and_frame(seq)
    if nonfinite:
        raise DataFormatError(f"{where}: {nonfinite[0]} NaN/Inf values, first at frame "
                              f"{nonfinite[1]}; interpolate or drop those frames before "
                              "training or evaluation")
    return seq.reshape(len(seq), num_joints, dims)


def _read_side(path: str, pose_key: str, skeleton: Skeleton, dims: int,
               arrays: dict | None = None) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    arrays = _open_npz(path) if arrays is None else arrays
    raw = _sequence_list(_require(arrays, pose_key, path), pose_key, path)
    imgnames = _sequence_list(_require(arrays, "imgname", path), "imgname", path)
    if len(imgnames) != len(raw):
        raise DataFormatError(f"{path}: {len(raw)} sequences in {pose_key!r} but "
                              f"{len(imgnames)} in 'imgname'; both need one entry per sequence")
    poses = []
    for index, (seq, names) in enumerate(zip(raw, imgnames)):
        where = f"{path}, key {pose_key!r}, sequence {index}"
        poses.append(_as_poses(seq, skeleton.num_joints, dims, where))
        if len(names) != len(poses[-1]):
            raise DataFormatError(f"{where}: {len(poses[-1])} frames but {len(names)} image "
                                  "names; 'imgname' needs one name per frame")
    return poses, imgnames, arrays


def _check_pairing(detected: list[np.ndarray], groundtruth: list[np.ndarray], det_path: str,
                   gt_path: str) -> None:
    if len(detected) != len(groundtruth):
        raise DataFormatError(f"{det_path} has {len(detected)} sequences but {gt_path} has "
                              f"{len(groundtruth)}; detected and ground truth must pair up")
    for index, (det, gt) in enumerate(zip(detected, groundtruth)):
        if len(det) != len(gt):
            raise DataFormatError(f"sequence {index}: {len(det)} frames in {det_path} but "
                                  f"{len(gt)} in {gt_path}; both must have the same frames")


def _read_bboxes(arrays: dict, path: str, groundtruth: list[np.ndarray]) -> list[np.ndarray] | None:
    """Per-sequence boxes of the ground-truth file, or None when it has no ``bbox`` key.

    Every sequence needs its boxes, one per frame: a file with boxes for fewer (or more)
    sequences, or a sequence with boxes for other frames, is refused rather than scored in part.

    Shape:
        returns a list of (T_i, 4) as x1, y1, x2, y2.
    """
    if "bbox" not in arrays:
        return None
    values = arrays["bbox"]
    if np.ndim(values) == 0:
        raise DataFormatError(f"{path}, key 'bbox': a single value; it needs one (T, 4) array "
                              "of boxes per sequence")
    if len(values) != len(groundtruth):
        raise DataFormatError(f"{path}, key 'bbox': boxes for {len(values)} sequences but the "
                              f"file has {len(groundtruth)}; every sequence needs its boxes "
                              "(one x1, y1, x2, y2 per frame) or drop the key")
    boxes = []
    for index, (box, gt) in enumerate(zip(values, groundtruth)):
        try:
            box = np.asarray(box, dtype=np.float32)
        except (TypeError, ValueError):
            raise DataFormatError(f"{path}, key 'bbox', sequence {index}: values are not "
                                  "numeric") from None
        if box.shape != (len(gt), 4):
            raise DataFormatError(f"{path}, key 'bbox', sequence {index}: shape {box.shape}, "
                                  f"expected ({len(gt)}, 4) as x1, y1, x2, y2 per frame")
        nonfinite = nonfinite_count_and_frame(box)
        if nonfinite:
            raise DataFormatError(f"{path}, key 'bbox', sequence {index}: {nonfinite[0]} "
                                  f"NaN/Inf values, first at frame {nonfinite[1]}")
        boxes.append(box)
    return boxes


def _sequence_name(names: np.ndarray, index: int) -> str:
    first = str(names[0]) if len(names) else ""
    folder = os.path.dirname(first)
    return folder or f"seq{index:04d}"


def _joint_count(arrays: dict, pose_key: str, dims: int) -> int:
    """Joints in the first sequence of a file, 0 when it cannot tell (validation follows)."""
    values = arrays.get(pose_key)
    first = np.asarray(values[0]) if values is not None and len(values) else np.zeros(0)
    return first.shape[1] // dims if first.ndim == 2 and first.shape[1] % dims == 0 else 0


def _add_representation_data(seq_set: SequenceSet, det_arrays: dict, gt_arrays: dict,
                             paths: tuple[str, str], folder: str) -> None:
    """smpl: 6D rotations and the betas; rot: the skeleton's bone offsets."""
    if seq_set.representation == "smpl":
        seq_set.side = read_shapes(det_arrays, gt_arrays, *paths,
                                   [len(g) for g in seq_set.groundtruth])
        seq_set.detected = poses_to_rot6d(seq_set.detected)
        seq_set.groundtruth = poses_to_rot6d(seq_set.groundtruth)
    if seq_set.representation == "rot":
        seq_set.bone_offsets = load_bone_offsets(os.path.join(folder, SKELETON_FILE),
                                                 seq_set.skeleton)


def load_split(base_dir: str, dataset: str, estimator: str, rep: str,
               split: str) -> SequenceSet:
    """Load and validate one split; every problem raises one error naming file, key, sequence."""
    if rep not in POSE_KEYS:
        raise DataFormatError(f"body representation {rep!r} is not one of {sorted(POSE_KEYS)}")
    if estimator not in KNOWN_ESTIMATORS:
        logger.warning("estimator %r is not one of SmoothNet's released ones %s; that is fine for "
                       "your own data, else check the spelling", estimator, KNOWN_ESTIMATORS)
    pose_key, dims = POSE_KEYS[rep]
    det_path, gt_path = split_paths(base_dir, dataset, estimator, rep, split)
    det_arrays, gt_arrays = _open_npz(det_path), _open_npz(gt_path)
    skeleton = dataset_skeleton(base_dir, dataset, estimator, rep,
                                _joint_count(gt_arrays, pose_key, dims))
    detected, _, _ = _read_side(det_path, pose_key, skeleton, dims, det_arrays)
    groundtruth, imgnames, _ = _read_side(gt_path, pose_key, skeleton, dims, gt_arrays)
    _check_pairing(detected, groundtruth, det_path, gt_path)
    names = [_sequence_name(n, i) for i, n in enumerate(imgnames)]
    set_name = f"{dataset}_{estimator}_{rep}"
    seq_set = SequenceSet(set_name, split, skeleton, rep, detected, groundtruth, names,
                          _read_bboxes(gt_arrays, gt_path, groundtruth))
    _add_representation_data(seq_set, det_arrays, gt_arrays, (det_path, gt_path),
                             os.path.dirname(os.path.dirname(gt_path)))
    logger.info("loaded %s %s: %d sequences, %d frames", set_name, split, len(groundtruth),
                sum(len(g) for g in groundtruth))
    return seq_set
