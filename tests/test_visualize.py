"""Pictures: animated skeleton GIFs, error/trajectory PNGs, and eval.py --visualize."""

import os

from PIL import Image

import eval as eval_entry
from lib.data.skeletons import get_skeleton
from lib.visualize import plot_error_and_trajectory, render_animation, render_sequence
from tests.conftest import make_pairs, write_split
from tests.refine_fixtures import single_thread  # noqa: F401


def test_gif_has_one_frame_per_pose(tmp_path, rng):
    skeleton = get_skeleton("bandai21")
    gt = rng.normal(0, 0.3, (4, 21, 3))
    path = str(tmp_path / "a.gif")
    written = render_animation(path, {"input": gt + 0.05, "model": gt, "ground truth": gt},
                               skeleton.parents, skeleton.root_joints, dpi=30)
    assert written == 4 and Image.open(path).n_frames == 4
    assert render_animation(str(tmp_path / "b.gif"), {"gt": gt}, skeleton.parents,
                            max_frames=2, dpi=30) == 2


def test_sequence_pictures_2d(tmp_path, rng):
    skeleton = get_skeleton("lsp14")
    det, gt = make_pairs(rng, [5], 14, 2, noise=3.0)
    det, gt = det[0] * 100, gt[0] * 100
    gif, png = render_sequence(str(tmp_path), "s", det, gt + 1, gt, "savgol", skeleton.parents,
                               skeleton.joint_names, (), 1.0, "px")
    assert Image.open(gif).n_frames == 5 and os.path.getsize(png) > 1000
    plot_error_and_trajectory(str(tmp_path / "e.png"), {"input": det}, gt, 3, "l_hip")
    assert Image.open(tmp_path / "e.png").size[0] > 300


def test_eval_visualize_writes_pictures_per_row(tmp_path, rng):
    base = str(tmp_path / "poses")
    write_split(base, "aist", "vibe", "3D", "test", *make_pairs(rng, [6, 5], 14, 3))
    out_json = str(tmp_path / "res.json")
    argv = ["--cfg", "configs/smoke.yaml", "--dataset_name", "aist", "--estimator", "vibe",
            "--body_representation", "3D", "--tradition", "gaussian", "--json", out_json,
            "--visualize", "1", "DATASET.BASE_DIR", base]
    assert eval_entry.main(argv) == 0
    folder = tmp_path / "res_pictures" / "aist_vibe_3D"
    assert sorted(os.listdir(folder)) == ["gaussian_000_seq0.gif", "gaussian_000_seq0.png"]
    assert Image.open(folder / "gaussian_000_seq0.gif").n_frames == 6
