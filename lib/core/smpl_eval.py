"""Scoring SMPL pose predictions through the body model: joints MPJPE, PA-MPJPE, Accel, MPVPE."""

from __future__ import annotations

import numpy as np

from lib.core.evaluator import Evaluator
from lib.data.rotations import rot6d_to_axis_angle_np
from lib.data.skeletons import get_skeleton
from lib.data.smoothnet_io import SequenceSet
from lib.models.body_model import SmplBodyModel

# Metres from the body model, millimetres in the report.
_MM = 1000.0


def smpl_mesh(body_model: SmplBodyModel, rot6d: np.ndarray,
              betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and regressed joints of one sequence of 6D SMPL poses.

    Shape:
        rot6d: (T, 24, 6); betas: (T, 10) -> vertices (T, V, 3), joints (T, J, 3) metres.
    """
    pose = rot6d_to_axis_angle_np(rot6d).reshape(len(rot6d), -1)  # (T, 72)
    return body_model.sequence(pose, betas)


def vertex_errors(pred_vertices: np.ndarray, gt_vertices: np.ndarray, pred_root: np.ndarray,
                  gt_root: np.ndarray) -> np.ndarray:
    """Mean vertex distance per frame after subtracting each mesh's root joint position.

    Shape:
        vertices: (T, V, 3); roots: (T, 1, 3) -> (T,) in the vertices' units.
    """
    return np.linalg.norm((pred_vertices - pred_root) - (gt_vertices - gt_root), axis=-1).mean(-1)


def score_smpl(seq_set: SequenceSet, predictions: list[np.ndarray], body_model: SmplBodyModel,
               hard_fraction: float = 0.01) -> dict[str, float]:
    """Frame-weighted metrics of 6D SMPL predictions against the set's ground truth.

    The estimate's betas go with the prediction and the ground truth's with the ground truth.
    Joints come from the body model's regressor (24 SMPL joints by default; SmoothNet's
    protocol uses 14 LSP joints from an extra regressor) and are root-aligned on the layout's
    root; MPVPE is the mean vertex error after the same root alignment, in mm.

    Returns:
        The :class:`Evaluator` summary (mm) plus ``mpvpe``.
    """
    skeleton = get_skeleton(body_model.joint_layout)
    evaluator = Evaluator(body_model.root_joints, _MM, skeleton.joint_names, hard_fraction)
    roots = list(body_model.root_joints)
    errors = []
    for index, pred in enumerate(predictions):
        pred_v, pred_j = smpl_mesh(body_model, pred, seq_set.side["det_shape"][index])
        gt_v, gt_j = smpl_mesh(body_model, seq_set.groundtruth[index],
                               seq_set.side["gt_shape"][index])
        evaluator.process(pred_j, gt_j, name=seq_set.sequence_names[index])
        errors.append(vertex_errors(pred_v, gt_v, pred_j[:, roots].mean(1, keepdims=True),
                                    gt_j[:, roots].mean(1, keepdims=True)))
    summary = evaluator.summarize()
    summary["mpvpe"] = float(np.concatenate(errors).mean()) * _MM if errors else float("nan")
    return summary
