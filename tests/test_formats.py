"""Pose file readers and writers, and the refine CLI round trip for every format."""

import json
import os

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from lib.api import Refiner
from lib.formats import FormatError, read_poses, write_poses
from lib.formats.bvh import forward_kinematics, parse_bvh
from tests.conftest import object_array
from tests.refine_fixtures import CREATURE, single_thread, write_creature_bvh  # noqa: F401
from tools import refine as refine_cli

IDENTITY = Refiner.from_function(lambda poses: poses, "identity")


def identity_round_trip(src: str, dst: str, **read_kwargs):
    """Read, refine with the identity, write, read back: returns (before, after)."""
    before = read_poses(src, **read_kwargs)
    write_poses(dst, before.with_sequences(IDENTITY.refine(before.sequences)))
    return before, read_poses(dst, **read_kwargs)


def assert_same_sequences(before, after, atol=1e-6):
    assert len(before.sequences) == len(after.sequences)
    for a, b in zip(before.sequences, after.sequences):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=atol)


def write_csv(path, rng, header=True):
    values = rng.normal(size=(12, 4 * 3))
    lines = ["frame,time," + ",".join(f"j{j}_{a}" for j in range(4) for a in "xyz")] if header \
        else []
    lines += [f"{f},{f / 30:.4f}," + ",".join(f"{v:.6f}" for v in row)
              for f, row in enumerate(values)] if header else \
        [",".join(f"{v:.6f}" for v in row) for row in values]
    open(path, "w").write("\n".join(lines) + "\n")


def test_csv_identity_keeps_header_and_frame_columns(tmp_path, rng):
    src, dst = str(tmp_path / "in.csv"), str(tmp_path / "out.csv")
    write_csv(src, rng)
    before, after = identity_round_trip(src, dst)
    assert before.sequences[0].shape == (12, 4, 3)
    assert after.joint_names == ("j0", "j1", "j2", "j3")
    assert_same_sequences(before, after)
    src_lines, dst_lines = open(src).read().splitlines(), open(dst).read().splitlines()
    assert dst_lines[0] == src_lines[0]
    columns = [[line.split(",")[:2] for line in lines] for lines in (src_lines, dst_lines)]
    assert columns[0] == columns[1]


def test_csv_without_header_uses_coord_dim(tmp_path, rng):
    src, dst = str(tmp_path / "in.csv"), str(tmp_path / "out.csv")
    write_csv(src, rng, header=False)
    before, after = identity_round_trip(src, dst, coord_dim=2)
    assert before.sequences[0].shape == (12, 6, 2)
    assert_same_sequences(before, after)


def test_npy_and_plain_npz_identity(tmp_path, rng):
    poses = rng.normal(size=(10, 5, 3))
    np.save(tmp_path / "in.npy", poses)
    before, after = identity_round_trip(str(tmp_path / "in.npy"), str(tmp_path / "out.npy"))
    assert np.array_equal(after.sequences[0], poses)
    np.savez(tmp_path / "in.npz", a=poses.astype(np.float32), b=poses[:4], fps=np.array(25.0),
             names=np.array(["x", "y"]))
    identity_round_trip(str(tmp_path / "in.npz"), str(tmp_path / "out.npz"))
    out = np.load(tmp_path / "out.npz")
    assert sorted(out.files) == ["a", "b", "fps", "names"] and out["a"].dtype == np.float32
    assert np.array_equal(out["b"], poses[:4]) and list(out["names"]) == ["x", "y"]


def write_smoothnet(path, rng):
    seqs = [rng.normal(size=(n, 14 * 3)).astype(np.float32) for n in (20, 7)]
    np.savez(path, joints_3d=object_array(seqs), imgname=object_array([["a"] * 20, ["b"] * 7]),
             extra=np.arange(3))
    return seqs


def test_smoothnet_npz_keeps_every_key(tmp_path, rng):
    src, dst = str(tmp_path / "det.npz"), str(tmp_path / "out.npz")
    seqs = write_smoothnet(src, rng)
    before, _ = identity_round_trip(src, dst)
    assert before.format == "smoothnet" and [s.shape for s in before.sequences] == \
        [(20, 14, 3), (7, 14, 3)]
    out = np.load(dst, allow_pickle=True)
    assert sorted(out.files) == ["extra", "imgname", "joints_3d"]
    assert out["joints_3d"].dtype == object and np.array_equal(out["joints_3d"][1], seqs[1])
    assert list(out["imgname"][1]) == ["b"] * 7


def alphapose(rng, frames=10, people=2):
    entries = []
    for f in range(frames):
        for p in range(people):
            kp = np.column_stack([rng.uniform(0, 500, (17, 2)), rng.uniform(0.5, 1, 17)])
            entries.append({"image_id": f"{f}.jpg", "category_id": 1, "idx": p,
                            "keypoints": kp.ravel().round(3).tolist(), "score": 2.0 - p})
    return entries


def mmpose(rng, frames=8):
    frame_list = []
    for f in range(frames):
        instances = [] if f == 3 else [{"keypoints": rng.uniform(0, 500, (17, 2)).tolist(),
                                         "keypoint_scores": rng.uniform(0.5, 1, 17).tolist(),
                                         "bbox": [[0, 0, 10, 10]]}]
        frame_list.append({"frame_id": f, "instances": instances})
    return {"meta_info": {"dataset_name": "coco"}, "instance_info": frame_list}


@pytest.mark.parametrize("layout", [alphapose, mmpose])
def test_keypoint_json_identity_keeps_document(tmp_path, rng, layout):
    src, dst = str(tmp_path / "in.json"), str(tmp_path / "out.json")
    document = layout(rng)
    json.dump(document, open(src, "w"))
    before, after = identity_round_trip(src, dst)
    assert before.sequences[0].shape[1:] == (17, 2) and before.scores[0].shape[1] == 17
    assert before.joint_names[0] == "nose"
    assert_same_sequences(before, after, atol=1e-3)
    written = json.load(open(dst))
    if layout is alphapose:  # the second person of every frame is untouched
        assert len(before.sequences[0]) == 10
        assert [e["keypoints"] for e in written[1::2]] == [e["keypoints"] for e in document[1::2]]
    else:  # the frame without a person keeps its place in time and stays empty
        assert len(before.sequences[0]) == 8 and before.scores[0][3].max() == 0
        assert written["instance_info"][3]["instances"] == [] and "meta_info" in written


def bvh_text(channels: str, angles: str, root_offset: str = "0 0 0") -> str:
    return "\n".join([
        "HIERARCHY", "ROOT Hips", "{", f"  OFFSET {root_offset}",
        f"  CHANNELS 6 Xposition Yposition Zposition {channels}",
        "  JOINT Hand", "  {", "    OFFSET 10 0 0", f"    CHANNELS 3 {channels}",
        "    End Site", "    {", "      OFFSET 5 0 0", "    }", "  }", "}",
        "MOTION", "Frames: 1", "Frame Time: 0.04", f"1 2 3 {angles} 0 0 0", ""])


@pytest.mark.parametrize("order", ["Zrotation Xrotation Yrotation",
                                   "Xrotation Yrotation Zrotation"])
def test_bvh_forward_kinematics_any_channel_order(tmp_path, order):
    path = tmp_path / "x.bvh"
    path.write_text(bvh_text(order, "30 60 90"))
    positions = forward_kinematics(parse_bvh(str(path)))
    axes = "".join(name[0] for name in order.split())
    rotation = Rotation.from_euler(axes, [30, 60, 90], degrees=True)  # upper case: intrinsic
    np.testing.assert_allclose(positions[0, 0], [1, 2, 3])
    np.testing.assert_allclose(positions[0, 1], np.array([1, 2, 3]) + rotation.apply([10, 0, 0]),
                               atol=1e-9)
    pose_file = read_poses(str(path))
    assert pose_file.joint_names == ("Hips", "Hand") and pose_file.fps == 25.0


def test_bvh_static_root_is_dropped(tmp_path, rng):
    path = str(tmp_path / "c.bvh")
    write_creature_bvh(path, 20, rng)
    text = open(path).read().replace("ROOT pelvis", "ROOT dummy\n{\n OFFSET 0 0 0\n CHANNELS 3 "
                                     "Zrotation Xrotation Yrotation\nJOINT pelvis", 1)
    lines = text.splitlines()
    motion = lines.index("MOTION")
    lines = lines[:motion] + ["}"] + lines[motion:motion + 3] + \
        ["0 0 0 " + row for row in lines[motion + 3:]]
    open(path, "w").write("\n".join(lines) + "\n")
    pose_file = read_poses(path)
    assert pose_file.joint_names == tuple(CREATURE["names"])
    assert pose_file.parents == tuple(CREATURE["parents"])
    assert pose_file.meta["dropped_joints"] == ["dummy"]


@pytest.mark.skipif(not os.path.isdir("../shared/data/real/bandai_namco_motion_1"),
                    reason="needs the shared Bandai data")
def test_bvh_matches_the_derived_bandai_positions():
    root = "../shared/data/real/bandai_namco_motion_1"
    pose_file = read_poses(f"{root}/data/dataset-1_kick_normal_001.bvh")
    derived = np.load(f"{root}/derived_joints3d_bandai1.npz")
    assert pose_file.joint_names == tuple(derived["joint_names"])
    np.testing.assert_allclose(pose_file.sequences[0] * 0.01,
                               derived["dataset-1_kick_normal_001"], atol=1e-5)


def test_errors_name_the_file_and_the_fix(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a_x,a_y,a_z\n1,2,3\n1,,3\n")
    with pytest.raises(FormatError, match="bad.csv, line 3, column 2: '' is not a number"):
        read_poses(str(bad))
    (tmp_path / "x.txt").write_text("1,2,3\n")
    with pytest.raises(FormatError, match="unknown extension '.txt'"):
        read_poses(str(tmp_path / "x.txt"))
    (tmp_path / "b.bvh").write_text("HIERARCHY\nROOT a\n{\nOFFSET 0 0 0\n")
    with pytest.raises(FormatError, match="b.bvh: no MOTION section"):
        read_poses(str(tmp_path / "b.bvh"))
    np.save(tmp_path / "flat.npy", np.zeros((5, 6)))
    with pytest.raises(FormatError, match="reshape it to frames x joints x coordinates"):
        read_poses(str(tmp_path / "flat.npy"))


def run_cli(*argv: str) -> None:
    assert refine_cli.main(list(argv)) == 0


def test_cli_every_format_with_a_filter(tmp_path, rng):
    write_csv(str(tmp_path / "a.csv"), rng)
    np.save(tmp_path / "a.npy", rng.normal(size=(15, 3, 2)))
    np.savez(tmp_path / "a.npz", p=rng.normal(size=(15, 3, 3)), k=np.arange(2))
    write_smoothnet(str(tmp_path / "s.npz"), rng)
    json.dump(alphapose(rng, 12, 1), open(tmp_path / "a.json", "w"))
    write_creature_bvh(str(tmp_path / "a.bvh"), 15, rng)
    pairs = [("a.csv", "o.csv"), ("a.npy", "o.npy"), ("a.npz", "o.npz"), ("s.npz", "os.npz"),
             ("a.json", "o.json"), ("a.bvh", "ob.csv"), ("a.bvh", "ob.npz")]
    for src, dst in pairs:
        run_cli("--filter", "savgol", "--param", "window=5", "--input", str(tmp_path / src),
                "--output", str(tmp_path / dst))
        before, after = read_poses(str(tmp_path / src)), read_poses(str(tmp_path / dst))
        assert [s.shape for s in before.sequences] == [s.shape for s in after.sequences], src
        assert not np.allclose(before.sequences[0], after.sequences[0]), src
    assert read_poses(str(tmp_path / "ob.csv")).joint_names == tuple(CREATURE["names"])
    assert list(np.load(tmp_path / "ob.npz")["joint_names"]) == CREATURE["names"]
    with pytest.raises(FormatError, match="writing BVH is not supported"):
        refine_cli.main(["--filter", "savgol", "--input", str(tmp_path / "a.bvh"),
                         "--output", str(tmp_path / "o.bvh")])
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_cli("--filter", "savgol", "--input", str(tmp_path / "a.npy"),
                "--output", str(tmp_path / "o.npy"))


def test_cli_with_a_checkpoint_scales_bvh_to_metres(tmp_path, rng):
    from lib.data.skeletons import skeleton_from_yaml
    from tests.refine_fixtures import tiny_checkpoint

    spec = tmp_path / "skeleton.yaml"
    spec.write_text(f"joint_names: {CREATURE['names']}\nparents: {CREATURE['parents']}\nfps: 30\n")
    ckpt = tiny_checkpoint(str(tmp_path / "c.pth"), skeleton_from_yaml(str(spec)))
    write_creature_bvh(str(tmp_path / "a.bvh"), 20, rng)
    run_cli("--checkpoint", ckpt, "--input", str(tmp_path / "a.bvh"),
            "--output", str(tmp_path / "o.npy"))
    refined, raw = np.load(tmp_path / "o.npy"), read_poses(str(tmp_path / "a.bvh")).sequences[0]
    expected = Refiner.from_checkpoint(ckpt).refine(raw * 0.01) / 0.01
    np.testing.assert_allclose(refined, expected, rtol=1e-4, atol=1e-3)


def test_every_truncation_of_a_bvh_file_is_a_format_error(tmp_path, rng):
    """A BVH file cut after any token is refused with a FormatError naming it, never a crash."""
    write_creature_bvh(str(tmp_path / "full.bvh"), 3, rng)
    tokens = (tmp_path / "full.bvh").read_text().split()
    cut_file = tmp_path / "cut.bvh"
    for count in range(1, len(tokens)):
        cut_file.write_text(" ".join(tokens[:count]))
        with pytest.raises(FormatError, match="cut.bvh"):
            read_poses(str(cut_file))


@pytest.mark.parametrize("rows, line, cells", [
    ("a_x,a_y\n1,2\n3,4,5\n", 3, 3),      # longer than the header: a cell would be dropped
    ("a_x,a_y\n1,2\n\n3\n", 4, 1),        # shorter, after a blank line (real line numbers)
    ("1,2,3\n4,5,6,7\n", 2, 4),           # no header: the first row sets the width
])
def test_csv_rows_must_match_the_header_width(tmp_path, rows, line, cells):
    path = tmp_path / "w.csv"
    path.write_text(rows)
    with pytest.raises(FormatError, match=rf"w.csv, line {line}: {cells} cells"):
        read_poses(str(path))


def test_integer_input_is_written_as_float32(tmp_path):
    """Refined values of integer input are never truncated back to integers."""
    source = tmp_path / "int.npz"
    np.savez(source, joints_3d=object_array([np.arange(12, dtype=np.int64).reshape(2, 6)]),
             imgname=object_array([np.array(["a/0.jpg", "a/1.jpg"])]))
    pose_file = read_poses(str(source))
    write_poses(str(tmp_path / "out.npz"), pose_file.with_sequences(
        [seq.astype(np.float64) + 0.25 for seq in pose_file.sequences]))
    written = np.load(tmp_path / "out.npz", allow_pickle=True)["joints_3d"][0]
    assert written.dtype == np.float32 and written[0, 0] == 0.25


def test_cli_warns_that_one_euros_default_is_for_metres_on_pixels(tmp_path, rng, caplog):
    np.save(tmp_path / "k.npy", 500 + 100 * rng.normal(size=(15, 3, 2)))
    np.save(tmp_path / "p.npy", rng.normal(size=(15, 3, 3)))
    run_cli("--filter", "oneeuro", "--input", str(tmp_path / "k.npy"),
            "--output", str(tmp_path / "k1.npy"))
    assert "beta=0.0035" in caplog.text  # 2D keypoints, the metre default: warned
    caplog.clear()
    run_cli("--filter", "oneeuro", "--param", "beta=0.0035", "--input", str(tmp_path / "k.npy"),
            "--output", str(tmp_path / "k2.npy"))
    run_cli("--filter", "oneeuro", "--input", str(tmp_path / "p.npy"),
            "--output", str(tmp_path / "p1.npy"))
    assert "beta" not in caplog.text  # beta given, or 3D positions: nothing to say
