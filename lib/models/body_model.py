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

from lib.errors import InputFileError, MissingFileError, UnsafeFileError
from lib.utils.safe_load import load_npy, load_npz, load_pickle

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
    raise MissingFileError(f"no {' or '.join(SMPL_FILE_NAMES)} in SMPL_MODEL_DIR "
                           f"{model_dir!r}: {_SOURCE_HINT}")


class _SparseStandIn:
    """What a pickled scipy.sparse matrix (the official ``J_regressor``) becomes when read.

    The unpickler builds this class instead of scipy's, so no scipy code runs: it only keeps
    the pickled state and densifies the compressed arrays with NumPy.
    """

    compressed_axis = 0  # rows (CSR); CSC overrides

    def __setstate__(self, state: dict) -> None:
        self.state = state

    def todense(self) -> np.ndarray:
        """The dense (rows, cols) float array. Shape: ``_shape`` of the pickled matrix."""
        state = self.state
        shape = tuple(int(n) for n in state.get("_shape", state.get("shape")))
        data, indices, indptr = (np.asarray(state[key]) for key in ("data", "indices", "indptr"))
        dense = np.zeros(shape, dtype=np.float64)
        lines = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))  # compressed index
        rows, cols = (lines, indices) if self.compressed_axis == 0 else (indices, lines)
        np.add.at(dense, (rows, cols), data)
        return dense


class _CscStandIn(_SparseStandIn):
    compressed_axis = 1


def _stand_in_reconstructor(cls: type, base: type, state: object) -> _SparseStandIn:
    """``copy_reg._reconstructor`` of protocol-0/1 pickles, for the stand-ins only."""
    if not (isinstance(cls, type) and issubclass(cls, _SparseStandIn)) or base is not object \
            or state is not None:
        raise pickle.UnpicklingError(f"copy_reg._reconstructor of {cls!r}")
    return object.__new__(cls)


def _smpl_pickle_globals() -> dict[tuple[str, str], object]:
    """NumPy data plus stand-ins for scipy.sparse matrices (any module scipy ever used)."""
    allowed: dict[tuple[str, str], object] = {}
    for module in ("scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse.csr",
                   "scipy.sparse._csr"):
        kind = module.rsplit(".", 1)[1].lstrip("_")
        allowed[(module, f"{kind}_matrix")] = _CscStandIn if kind == "csc" else _SparseStandIn
    for module in ("copy_reg", "copyreg"):
        allowed[(module, "_reconstructor")] = _stand_in_reconstructor
    for module in ("__builtin__", "builtins"):  # the reconstructor's base argument
        allowed[(module, "object")] = object
    return allowed


def _read_smpl_pickle(path: str) -> dict[str, np.ndarray]:
    """The arrays of a chumpy-free SMPL .pkl, read without running code (see load_smpl_arrays)."""
    try:
        content = load_pickle(path, _smpl_pickle_globals())
    except UnsafeFileError as err:
        if "chumpy" not in str(err):
            raise
        raise UnsafeFileError(f"{path} holds chumpy objects, which cannot be loaded safely "
                              "(unpickling them runs chumpy's code). In an environment you "
                              "trust, with chumpy installed, save the model's arrays as "
                              "SMPL_NEUTRAL.npz (see docs/REPRODUCE.md) or clean the pickle "
                              "with smplx's tools/clean_ch.py") from None
    if not isinstance(content, dict):
        raise InputFileError(f"{path} holds a {type(content).__name__}, not a dict of arrays; "
                             f"it is not an SMPL model file ({_SOURCE_HINT})")
    return {key: value.todense() if isinstance(value, _SparseStandIn) else value
            for key, value in content.items()}


def load_smpl_arrays(path: str) -> dict[str, np.ndarray]:
    """The model arrays of an SMPL file, checked for every key; reading never runs code.

    An ``.npz`` is read by :func:`lib.utils.safe_load.load_npz`. A ``.pkl`` goes through the
    restricted unpickler: NumPy arrays, numbers, strings and scipy.sparse matrices (densified
    without importing scipy) are accepted; anything else, chumpy objects included, raises
    :class:`lib.errors.UnsafeFileError`. There is deliberately no switch to trust a pickle:
    convert such a file once, outside this project, to ``SMPL_NEUTRAL.npz``.
    """
    arrays = load_npz(path) if path.endswith(".npz") else _read_smpl_pickle(path)
    missing = [key for key in SMPL_KEYS if key not in arrays]
    if missing:
        raise InputFileError(f"{path} lacks {missing}; it is not an SMPL model file "
                             f"({_SOURCE_HINT})")
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
            raise InputFileError(f"joint regressor of shape {regressor.shape} must be "
                                 f"(J, {vertices}) with J in {sorted(_REGRESSOR_LAYOUTS)}")
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
            raise MissingFileError(f"joint regressor {joint_regressor_path} not found; set "
                                   "DATASET.SMPL_JOINT_REGRESSOR to a (J, 6890) .npy file or ''")
        regressor = load_npy(joint_regressor_path)
    model = SmplBodyModel(load_smpl_arrays(path), regressor)
    logger.info("SMPL body model %s (%d vertices), joints: %s", path,
                model.smpl.v_template.shape[0], model.joint_layout)
    return model
