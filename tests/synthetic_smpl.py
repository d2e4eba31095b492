"""A small synthetic SMPL model file with the real file's structure, and SMPL pose data."""

from __future__ import annotations

import os
import pickle

import numpy as np

from lib.data.skeletons import get_skeleton
from tests.conftest import object_array, write_split

# Vertices placed around each of the 24 joints (V = 24 * this).
VERTICES_PER_JOINT = 8


def _template_joints(rng: np.random.Generator) -> np.ndarray:
    """Rest joint positions: each joint 5-20 cm from its parent, metres. Shape: (24, 3)."""
    parents = get_skeleton("smpl24").parents
    joints = np.zeros((24, 3))
    for joint in range(1, 24):
        joints[joint] = joints[parents[joint]] + rng.uniform(-0.2, 0.2, 3)
    return joints


def synthetic_smpl_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """The arrays of an SMPL model file: v_template (V, 3), shapedirs (V, 3, 10), posedirs
    (V, 3, 207), J_regressor (24, V), weights (V, 24), kintree_table (2, 24), f (F, 3)."""
    rng = np.random.default_rng(seed)
    joints = _template_joints(rng)
    owner = np.repeat(np.arange(24), VERTICES_PER_JOINT)  # (V,) joint of each vertex
    spread = rng.normal(0, 0.03, (len(owner), 3))
    spread -= np.repeat(spread.reshape(24, VERTICES_PER_JOINT, 3).mean(1), VERTICES_PER_JOINT, 0)
    v_template = joints[owner] + spread  # zero-mean cloud around each joint
    regressor = (owner[None] == np.arange(24)[:, None]) / VERTICES_PER_JOINT  # (24, V)
    parents = np.array(get_skeleton("smpl24").parents, dtype=np.int64)
    parents[0] = 4294967295  # the official file stores the root's parent as uint32 -1
    faces = rng.integers(0, len(owner), (100, 3))
    return {"v_template": v_template, "shapedirs": rng.normal(0, 0.01, (len(owner), 3, 10)),
            "posedirs": rng.normal(0, 0.001, (len(owner), 3, 207)), "J_regressor": regressor,
            "weights": np.eye(24)[owner], "kintree_table": np.stack([parents, np.arange(24)]),
            "f": faces}


def write_synthetic_smpl(folder: str, seed: int = 0) -> str:
    """Write SMPL_NEUTRAL.npz with :func:`synthetic_smpl_arrays`; returns its path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "SMPL_NEUTRAL.npz")
    np.savez(path, **synthetic_smpl_arrays(seed))
    return path


def write_synthetic_smpl_pickle(folder: str, seed: int = 0, protocol: int = 2) -> str:
    """Write SMPL_NEUTRAL.pkl as a chumpy-free official file: a dict of arrays whose
    J_regressor is a scipy.sparse CSC matrix; returns its path."""
    from scipy import sparse

    arrays = synthetic_smpl_arrays(seed)
    arrays["J_regressor"] = sparse.csc_matrix(arrays["J_regressor"])
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "SMPL_NEUTRAL.pkl")
    with open(path, "wb") as handle:
        pickle.dump(arrays, handle, protocol=protocol)
    return path


def smpl_pairs(rng: np.random.Generator, lengths: list[int],
               noise: float = 0.05) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Smooth axis-angle SMPL motions (ground truth) and noisy estimates. Shape: (T, 24, 3)."""
    gts = []
    for frames in lengths:
        base = rng.normal(0, 0.3, (1, 24, 3))
        gts.append(base + np.cumsum(rng.normal(0, 0.01, (frames, 24, 3)), axis=0))
    dets = [gt + rng.normal(0, noise, gt.shape) for gt in gts]
    return dets, gts


def write_smpl_split(base: str, dataset: str, estimator: str, split: str,
                     lengths: list[int], rng: np.random.Generator) -> None:
    """One split in SmoothNet's smpl layout; aist ground truth has trans and scaling."""
    dets, gts = smpl_pairs(rng, lengths)
    shapes = object_array([np.repeat(rng.normal(0, 1, (1, 10)), n, 0) for n in lengths])
    gt_extra = {"shape": shapes}
    if dataset == "aist":
        gt_extra = {"trans": object_array([rng.normal(0, 1, (n, 3)) for n in lengths]),
                    "scaling": object_array([np.array([93.0]) for _ in lengths])}
    write_split(base, dataset, estimator, "smpl", split, dets, gts, gt_extra=gt_extra,
                det_extra={"shape": shapes})
