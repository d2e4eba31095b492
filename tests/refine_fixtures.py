"""Helpers shared by the refinement tests: a tiny untrained checkpoint, a tiny generated BVH."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lib.core.builders import build_model, build_normalizer
from lib.core.config import get_cfg_defaults
from lib.data.skeletons import Skeleton, get_skeleton
from lib.utils.checkpoint import save_checkpoint


def tiny_checkpoint(path: str, skeleton: Skeleton | None = None, rep: str = "3D",
                    window: int = 8, name: str = "motionrefinenet", seed: int = 0) -> str:
    """Write a randomly initialised model checkpoint of the project's format; return its path."""
    import torch

    torch.manual_seed(seed)
    skeleton = skeleton or get_skeleton("bandai21")
    cfg = get_cfg_defaults()
    cfg.MODEL.NAME = name
    cfg.MODEL.SLIDE_WINDOW_SIZE = window
    cfg.MODEL.HIDDEN_SIZE = 16
    cfg.MODEL.RES_HIDDEN_SIZE = 8
    cfg.MODEL.NUM_BLOCKS = 1
    cfg.MODEL.DROPOUT = 0.0
    model, kwargs = build_model(cfg, skeleton, rep)
    normalizer = build_normalizer(cfg, skeleton, rep)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_checkpoint(path, {"model": model.state_dict(), "model_name": name, "model_kwargs": kwargs,
                           "normalizer_kwargs": normalizer.kwargs(), "epoch": 0,
                           "skeleton": skeleton.name, "representation": rep})
    return path


# A 7-joint creature that is in no skeleton table: names give some low- and high-DoF joints.
CREATURE = {
    "names": ["pelvis", "spine", "head", "l_wing", "l_claw", "r_wing", "r_claw"],
    "parents": [-1, 0, 1, 1, 3, 1, 5],
    "offsets": [[0, 0, 0], [0, 20, 0], [0, 15, 0], [10, 0, 0], [15, 0, 0], [-10, 0, 0],
                [-15, 0, 0]],
}


def _bvh_hierarchy(names: list[str], parents: list[int], offsets: list) -> list[str]:
    lines = ["HIERARCHY"]

    def emit(joint: int, depth: int) -> None:
        pad = "  " * depth
        kind = "ROOT" if parents[joint] < 0 else "JOINT"
        channels = ("6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"
                    if parents[joint] < 0 else "3 Zrotation Xrotation Yrotation")
        lines.extend([f"{pad}{kind} {names[joint]}", f"{pad}{{",
                      f"{pad}  OFFSET {' '.join(str(v) for v in offsets[joint])}",
                      f"{pad}  CHANNELS {channels}"])
        children = [c for c, p in enumerate(parents) if p == joint]
        for child in children:
            emit(child, depth + 1)
        if not children:
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET 0 5 0", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    emit(0, 0)
    return lines


def write_creature_bvh(path: str, frames: int, rng: np.random.Generator) -> np.ndarray:
    """A BVH clip of ``CREATURE`` with smooth random motion (cm, 30 fps); returns its channels.

    Shape:
        returns (frames, 6 + 3 * 6) channel values as written.
    """
    joints = len(CREATURE["names"])
    time = np.arange(frames)[:, None] / 30.0
    phase = rng.uniform(0, 2 * np.pi, (1, 3 * joints + 3))
    values = 20.0 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0, phase.shape) * time + phase)
    values[:, :3] = np.concatenate([100 * time, 90 + 2 * np.sin(5 * time), 0 * time], axis=1)
    lines = _bvh_hierarchy(CREATURE["names"], CREATURE["parents"], CREATURE["offsets"])
    lines += ["MOTION", f"Frames: {frames}", "Frame Time: 0.0333333"]
    lines += [" ".join(f"{v:.5f}" for v in row) for row in values]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return values


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny models on one window at a time run fastest on one thread (and on a busy machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
