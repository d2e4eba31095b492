"""The SMPL body model (through the smplx package): joints and vertices from pose and shape."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

# File names looked up in SMPL_MODEL_DIR (and its smpl/ sub-folder), in this order.
SMPL_FILE_NAMES = ("SMPL_NEUTRAL.npz", "SMPL_NEUTRAL.pkl")
# Arrays a model file must hold (the official file's structure).
SMPL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
_SOURCE_HINT = ("the SMPL model is licensed: register at https://smpl.is.tue.mpg.de, download "
                "the SMPL for Python package and put its neutral model there as "
                "SMPL_NEUTRAL.npz (or a .pkl without chumpy objects; smplx's tools/clean_ch.py "
                "removes them), then set SMPL_MODEL_DIR to that folder")
# Root joints of the joint sets a regressor can produce, found by its number of rows.
_REGRESSOR_LAYOUTS = {24: ("smpl24", (0,)), 14: ("lsp14", (2, 3)), 17: ("h36m17", (0,))}
# Frames per body-model call, bounding memory (vertices are 6890 x 3 per frame).
_CHUNK = 512


def find_smpl_file(model_dir: str) -> str:
    """The SMPL model file in ``model_dir`` (or ``model_dir`` itself when it is a file)."""
    if os.path.isfile(model_dir):
        return model_dir
    for folder in (model_dir, os.path.join(model_dir, "smpl")):
        for name in SMPL_FILE_NAMES:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
    raise FileNotFoundError(f"no {' or '.join(SMPL_FILE_NAMES)} in SMPL_MODEL_DIR "
                            f"{model_dir!r}: {_SOURCE_HINT}")


def load_smpl_arrays(path: str) -> dict[str, np.ndarray]:
    """The model arrays of an .npz or chumpy-free .pkl SMPL file, checked for every key."""
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=True) as archive:
            arrays = {key: archive[key] for key in archive.files}
    else:
        try:
            with open(path, "rb") as handle:
                arrays = pickle.load(handle, encoding="latin1")
        except ModuleNotFoundError as err:
            raise ValueError(f"{path} needs the {err.name!r} package to unpickle; convert it to "
                             "SMPL_NEUTRAL.npz (an npz of its arrays) or clean it with smplx's "
                             "tools/clean_ch.py") from None
    missing = [key for key in SMPL_KEYS if key not in arrays]
    if missing:
        raise ValueError(f"{path} lacks {missing}; it is not an SMPL model file ({_SOURCE_HINT})")
    return arrays


def _dense(values) -> np.ndarray:
    """The official J_regressor is a scipy sparse matrix."""
    return np.asarray(values.todense() if hasattr(values, "todense") else values, np.float32)


class SmplBodyModel(nn.Module):
    """SMPL vertices by smplx's linear blend skinning, and joints regressed from the vertices.

    Args:
        arrays: the model file's arrays (see :func:`load_smpl_arrays`).
        joint_regressor: (J, V) weights giving joints from vertices; None uses the model's own
            24-joint regressor. 14 rows are read as the LSP order, 17 as Human3.6M's.

    Attributes:
        joint_layout: skeleton table key of the regressed joints (smpl24, lsp14 or h36m17).
        root_joints: joints whose mean is the root for root-aligned metrics.
    """

    def __init__(self, arrays: dict[str, np.ndarray],
                 joint_regressor: np.ndarray | None = None) -> None:
        super().__init__()
        import smplx  # optional dependency, needed only for the smpl representation
        from smplx.utils import Struct

        # smplx prints a warning for 10-beta models on stdout; the log stays clean.
        with contextlib.redirect_stdout(io.StringIO()):
            self.smpl = smplx.SMPL("", data_struct=Struct(**arrays), create_betas=False,
                                   create_global_orient=False, create_body_pose=False,
                                   create_transl=False)
        regressor = _dense(arrays["J_regressor"] if joint_regressor is None else joint_regressor)
        vertices = self.smpl.v_template.shape[0]
        if regressor.ndim != 2 or regressor.shape[1] != vertices or \
                regressor.shape[0] not in _REGRESSOR_LAYOUTS:
            raise ValueError(f"joint regressor of shape {regressor.shape} must be (J, {vertices}) "
                             f"with J in {sorted(_REGRESSOR_LAYOUTS)}")
        self.register_buffer("joint_regressor", torch.from_numpy(regressor))
        self.joint_layout, self.root_joints = _REGRESSOR_LAYOUTS[regressor.shape[0]]

    @torch.no_grad()
    def forward(self, pose: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Posed vertices and regressed joints, in metres, with no global translation.

        Args:
            pose: axis-angle rotations of the 24 joints (global orientation first).
            betas: shape coefficients (10 in SmoothNet's files).

        Shape:
            pose: (N, 72); betas: (N, B) -> vertices (N, V, 3), joints (N, J, 3).
        """
        from smplx.lbs import lbs

        if pose.dim() != 2 or pose.shape[1] != 72 or betas.shape[0] != pose.shape[0]:
            raise ValueError(f"expected pose (N, 72) and betas (N, B), got {tuple(pose.shape)} "
                             f"and {tuple(betas.shape)}")
        smpl = self.smpl
        betas = betas[:, :smpl.shapedirs.shape[-1]]
        vertices, _ = lbs(betas, pose, smpl.v_template, smpl.shapedirs, smpl.posedirs,
                          smpl.J_regressor, smpl.parents, smpl.lbs_weights, pose2rot=True)
        joints = torch.einsum("jv,nvc->njc", self.joint_regressor, vertices)
        return vertices, joints

    def sequence(self, pose: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`forward` on a whole sequence in chunks, as numpy float32.

        Shape:
            pose: (T, 72); betas: (T, B) -> vertices (T, V, 3), joints (T, J, 3).
        """
        pose, betas = np.asarray(pose, np.float32), np.asarray(betas, np.float32)
        outputs = [self(torch.from_numpy(pose[start:start + _CHUNK]),
                        torch.from_numpy(betas[start:start + _CHUNK]))
                   for start in range(0, len(pose), _CHUNK)]
        return (torch.cat([o[0] for o in outputs]).numpy(),
                torch.cat([o[1] for o in outputs]).numpy())


# SMPL joints in LSP order (r-ankle, r-knee, r-hip, l-hip, l-knee, l-ankle, r-wrist, r-elbow,
# r-shoulder, l-shoulder, l-elbow, l-wrist, neck); the 14th LSP joint, head top, comes from
# SPIN's J_regressor_extra.npy (its row 3), as in SmoothNet's SMPL protocol.
_SMPL_TO_LSP13 = (8, 5, 2, 1, 4, 7, 21, 19, 17, 16, 18, 20, 12)
_EXTRA_HEAD_TOP_ROW = 3


def lsp14_regressor(smpl_regressor: np.ndarray, extra_regressor: np.ndarray) -> np.ndarray:
    """The 14-joint LSP regressor of SmoothNet's SMPL evaluation.

    Args:
        smpl_regressor: the model's ``J_regressor`` (24 joints).
        extra_regressor: SPIN's ``J_regressor_extra.npy`` (9 extra joints; row 3 = head top).

    Shape:
        smpl_regressor: (24, V); extra_regressor: (9, V) -> (14, V).
    """
    smpl_regressor = _dense(smpl_regressor)
    extra = np.asarray(extra_regressor, np.float32)
    if smpl_regressor.shape[0] != 24 or extra.ndim != 2 or extra.shape[0] <= _EXTRA_HEAD_TOP_ROW \
            or extra.shape[1] != smpl_regressor.shape[1]:
        raise ValueError(f"expected regressors (24, V) and (9, V), got {smpl_regressor.shape} "
                         f"and {extra.shape}")
    return np.concatenate([smpl_regressor[list(_SMPL_TO_LSP13)],
                           extra[_EXTRA_HEAD_TOP_ROW:_EXTRA_HEAD_TOP_ROW + 1]])


def load_body_model(model_dir: str, joint_regressor_path: str = "") -> SmplBodyModel:
    """The neutral SMPL model of ``model_dir`` with an optional .npy joint regressor."""
    path = find_smpl_file(model_dir)
    regressor = None
    if joint_regressor_path:
        if not os.path.isfile(joint_regressor_path):
            raise FileNotFoundError(f"joint regressor {joint_regressor_path} not found; set "
                                    "DATASET.SMPL_JOINT_REGRESSOR to a (J, 6890) .npy file or ''")
        regressor = np.load(joint_regressor_path)
    model = SmplBodyModel(load_smpl_arrays(path), regressor)
    logger.info("SMPL body model %s (%d vertices), joints: %s", path,
                model.smpl.v_template.shape[0], model.joint_layout)
    return model
