"""Pictures of refinement: animated skeletons side by side (GIF) and per-frame error plots (PNG)."""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
from matplotlib.animation import PillowWriter
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the 3d projection)
from yacs.config import CfgNode

from lib.api import Refiner
from lib.core.builders import UNIT_NAME, UNIT_SCALE, build_filters, load_sets, metric_roots
from lib.core.metrics import mpjpe, root_align

logger = logging.getLogger(__name__)

# Line colour per panel role; other panels cycle through matplotlib's defaults.
_COLOURS = {"input": "tab:gray", "ground truth": "black"}
# Half-width of the view around the ground-truth root, as a factor of the body's extent.
_VIEW_MARGIN = 1.1


def _view_coords(poses: np.ndarray) -> np.ndarray:
    """Plot coordinates: 3D data is Y-up, matplotlib's 3D axes are Z-up, so (x, y, z) is drawn
    at (x, -z, y), a proper rotation (no mirror). 2D data is drawn as is.

    Shape:
        (T, J, D) -> (T, J, D).
    """
    if poses.shape[-1] == 3:
        return np.stack([poses[..., 0], -poses[..., 2], poses[..., 1]], axis=-1)
    return poses


def _view_box(panels: dict[str, np.ndarray], reference: np.ndarray,
              roots: tuple[int, ...]) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Per-frame view centre (the reference's root), a half-width and the vertical range.

    In 3D the half-width covers the horizontal plane only (the vertical range is fixed), so
    the box fits the body; in 2D it covers both image axes.

    Shape:
        returns centres (T, D), a float, (low, high).
    """
    dims = reference.shape[-1]
    centres = reference[:, list(roots) or slice(None)].mean(axis=1)  # (T, D)
    axes = slice(0, 2) if dims == 3 else slice(None)
    spread = max(np.abs(p - centres[:, None])[..., axes].max() for p in panels.values())
    vertical = np.concatenate([p[..., dims - 1].ravel() for p in panels.values()])
    low, high = vertical.min(), vertical.max()
    pad = 0.05 * (high - low)
    half = max(_VIEW_MARGIN * spread, 0.25 * (high - low))
    return centres, half, (low - pad, high + pad)


def _make_axes(fig: Figure, count: int, dims: int) -> list:
    kwargs = {"projection": "3d"} if dims == 3 else {}
    axes = [fig.add_subplot(1, count, i + 1, **kwargs) for i in range(count)]
    for ax in axes:
        if dims == 3:
            # The view follows the body, so a grid would move every frame (and bloat the GIF).
            ax.view_init(elev=12, azim=-70)
            ax.grid(False)
            ax.set_zlabel("y (up)", fontsize=7, labelpad=-12)
            ax.set_zticklabels([])
        else:
            ax.set_aspect("equal")
        ax.set_xlabel("x" if dims == 3 else "x (image, y down)", fontsize=7,
                      labelpad=-12 if dims == 3 else 0)
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        ax.tick_params(length=0)
    return axes


def _set_limits(ax, centre: np.ndarray, half: float, vertical: tuple[float, float]) -> None:
    if len(centre) == 3:
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_zlim(*vertical)
        return
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] + half, centre[1] - half)


def _panel_colours(names) -> list[str]:
    palette = iter(["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"])
    return [_COLOURS.get(name) or next(palette) for name in names]


def _draw_bones(ax, pose: np.ndarray, parents: tuple[int, ...], lines: list,
                colour: str) -> None:
    """Update (or create on the first call) one line per bone. Shape: pose (J, D)."""
    bones = [(j, p) for j, p in enumerate(parents) if p >= 0]
    for index, (joint, parent) in enumerate(bones):
        segment = pose[[parent, joint]].T  # (D, 2)
        if len(lines) <= index:
            lines.append(ax.plot(*segment, lw=2, color=colour)[0])
        elif len(segment) == 3:
            lines[index].set_data_3d(*segment)
        else:
            lines[index].set_data(*segment)


def render_animation(path: str, panels: dict[str, np.ndarray], parents: tuple[int, ...],
                     roots: tuple[int, ...] = (), fps: float = 30.0, max_frames: int = 0,
                     dpi: int = 60) -> int:
    """Animate the skeletons of several same-length sequences side by side into a GIF.

    Args:
        path: output .gif.
        panels: title -> poses; the last panel is the reference that the view follows.
        parents: parent per joint, -1 for a root.
        roots: joints whose mean the view follows (empty: all joints).
        fps: playback rate.
        max_frames: keep at most this many frames (0 = all).
        dpi: resolution; 60 keeps a 76-frame, 3-panel GIF well under 1 MB.

    Returns:
        The number of frames written.

    Shape:
        panels: each (T, J, D), D = 2 or 3.
    """
    views = {name: _view_coords(np.asarray(p, dtype=np.float64)) for name, p in panels.items()}
    frames = min(len(p) for p in views.values())
    frames = min(frames, max_frames) if max_frames else frames
    reference = list(views.values())[-1]
    centres, half, vertical = _view_box(views, reference, roots)
    dims = reference.shape[-1]
    fig = Figure(figsize=(2.6 * len(views), 3.0))
    axes = _make_axes(fig, len(views), dims)
    for ax in axes if dims == 3 else []:
        ax.set_box_aspect((2 * half, 2 * half, vertical[1] - vertical[0]))  # equal scales
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.92, wspace=0.02)
    lines: list[list] = [[] for _ in axes]
    colours = _panel_colours(views)
    for ax, name in zip(axes, views):
        ax.set_title(name, fontsize=9)
    writer = PillowWriter(fps=fps)
    with writer.saving(fig, path, dpi):
        for frame in range(frames):
            for ax, ax_lines, poses, colour in zip(axes, lines, views.values(), colours):
                _draw_bones(ax, poses[frame], parents, ax_lines, colour)
                _set_limits(ax, centres[frame], half, vertical)
            writer.grab_frame()
    return frames


def plot_error_and_trajectory(path: str, panels: dict[str, np.ndarray],
                              groundtruth: np.ndarray, joint: int, joint_name: str,
                              roots: tuple[int, ...] = (), unit_scale: float = 1000.0,
                              unit: str = "mm", fps: float = 30.0) -> None:
    """Per-frame error of each panel against the ground truth, and one joint's trajectory.

    Args:
        path: output .png.
        panels: name -> poses, e.g. {"input": ..., "savgol": ...}.
        groundtruth: the reference poses.
        joint: index of the joint whose coordinates are plotted over time.
        joint_name: its name, for the title.
        roots: root joints for the root-aligned error (3D protocol); () = absolute.
        unit_scale: factor from data units to ``unit`` for the error (1000 for metres -> mm).
        unit: error unit label.
        fps: frames per second, for the time axis.

    Shape:
        panels: each (T, J, D); groundtruth: (T, J, D).
    """
    dims = groundtruth.shape[-1]
    time = np.arange(len(groundtruth)) / fps
    fig = Figure(figsize=(7.5, 1.7 * (dims + 1)))
    axes = fig.subplots(dims + 1, 1, sharex=True)
    colours = dict(zip(panels, _panel_colours(panels)))
    for name, poses in panels.items():
        error = mpjpe(poses, groundtruth, roots) * unit_scale
        axes[0].plot(time, error, color=colours[name], lw=1.2,
                     label=f"{name} (mean {error.mean():.1f})")
    axes[0].set_ylabel(f"MPJPE ({unit})", fontsize=8)
    axes[0].legend(fontsize=7, loc="upper right")
    aligned = {name: root_align(poses, roots) for name, poses in panels.items()}
    relative = " - root" if roots else ""
    for axis, ax in enumerate(axes[1:]):
        for name, poses in aligned.items():
            ax.plot(time, poses[:, joint, axis], color=colours[name], lw=1.0, label=name)
        ax.plot(time, root_align(groundtruth, roots)[:, joint, axis], color="black", lw=1.0,
                ls="--", label="ground truth")
        ax.set_ylabel(f"{joint_name} {'xyz'[axis]}{relative}", fontsize=8)
    axes[1].legend(fontsize=7, loc="upper right", ncol=len(panels) + 1)
    axes[-1].set_xlabel("time (s)", fontsize=8)
    for ax in axes:
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def worst_joint(detected: np.ndarray, groundtruth: np.ndarray,
                roots: tuple[int, ...] = ()) -> int:
    """The joint with the largest mean (root-aligned) input error: its trajectory shows most.

    Shape:
        detected, groundtruth: (T, J, D).
    """
    error = root_align(detected, roots) - root_align(groundtruth, roots)
    return int(np.linalg.norm(error, axis=-1).mean(axis=0).argmax())


def render_sequence(folder: str, stem: str, detected: np.ndarray, refined: np.ndarray,
                    groundtruth: np.ndarray, method: str, parents: tuple[int, ...],
                    joint_names: tuple[str, ...], roots: tuple[int, ...] = (),
                    unit_scale: float = 1000.0, unit: str = "mm", fps: float = 30.0,
                    max_frames: int = 0, dpi: int = 60) -> list[str]:
    """Write ``{stem}.gif`` (input | method | ground truth) and ``{stem}.png`` into ``folder``.

    Shape:
        detected, refined, groundtruth: (T, J, D).
    """
    os.makedirs(folder, exist_ok=True)
    gif, png = os.path.join(folder, f"{stem}.gif"), os.path.join(folder, f"{stem}.png")
    render_animation(gif, {"input": detected, method: refined, "ground truth": groundtruth},
                     parents, roots, fps, max_frames, dpi)
    joint = worst_joint(detected, groundtruth, roots)
    plot_error_and_trajectory(png, {"input": detected, method: refined}, groundtruth, joint,
                              joint_names[joint], roots, unit_scale, unit, fps)
    logger.info("wrote %s and %s", gif, png)
    return [gif, png]


def _eval_refiners(cfg: CfgNode, device: torch.device | str) -> dict[str, Refiner]:
    """Name -> Refiner for every filter and checkpoint row of an eval.py run."""
    refiners = {name: Refiner.from_function(fn, name) for name, fn in build_filters(cfg).items()}
    for path in cfg.TEST.WEIGHTS:
        refiner = Refiner.from_checkpoint(path, device, cfg.EVAL.SLIDE_STEP, cfg.EVAL.BATCH_SIZE)
        name = refiner.name
        if name in refiners:
            name = f"{name}_{os.path.basename(os.path.dirname(os.path.dirname(path)))}"
        refiners[name] = refiner
    return refiners


def pictures_folder(cfg: CfgNode, json_path: str = "") -> str:
    """Where eval.py --visualize writes: beside --json (``<stem>_pictures``), else results/."""
    if json_path:
        return os.path.splitext(json_path)[0] + "_pictures"
    return os.path.join(cfg.OUTPUT_DIR, "eval_pictures")


def write_eval_pictures(cfg: CfgNode, device: torch.device | str, count: int,
                        json_path: str = "") -> list[str]:
    """Pictures of the first ``count`` test sequences for each filter and checkpoint row.

    Files: ``<folder>/<ds>_<est>_<rep>/<row>_<index>_<sequence>.{gif,png}``.
    """
    folder, written = pictures_folder(cfg, json_path), []
    refiners = _eval_refiners(cfg, device)
    for seq_set in load_sets(cfg, "test"):
        skeleton, rep = seq_set.skeleton, seq_set.representation
        if seq_set.detected[0].shape[-1] not in (2, 3):
            logger.warning("%s: pictures need 2D or 3D joint positions, not %s; skipped",
                           seq_set.name, rep)
            continue
        picked = range(min(count, len(seq_set.detected)))
        for row, refiner in refiners.items():
            refined = refiner.refine([seq_set.detected[i] for i in picked])
            for i, poses in zip(picked, refined):
                stem = f"{row}_{i:03d}_{seq_set.sequence_names[i]}"
                written += render_sequence(
                    os.path.join(folder, seq_set.name), stem, seq_set.detected[i], poses,
                    seq_set.groundtruth[i], row, skeleton.parents, skeleton.joint_names,
                    metric_roots(skeleton, rep), UNIT_SCALE[rep], UNIT_NAME[rep], skeleton.fps)
    logger.info("wrote %d pictures into %s", len(written), folder)
    return written
