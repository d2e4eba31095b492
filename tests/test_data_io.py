"""Loading the SmoothNet layout: one test per bad-input case, each asserting its message."""

import numpy as np
import pytest

from lib.data.smoothnet_io import DataFormatError, load_split, split_paths
from tests.conftest import imgnames, make_pairs, object_array, write_split


def test_hand_made_aist_pair_loads(aist_3d):
    seq_set = load_split(aist_3d, "aist", "vibe", "3D", "test")
    assert seq_set.name == "aist_vibe_3D"
    assert [len(s) for s in seq_set.groundtruth] == [60, 20, 45]
    assert seq_set.detected[0].shape == (60, 14, 3)
    assert seq_set.sequence_names[0] == "seq0"


def test_missing_file_names_path_and_source(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"aist_vibe_3D_test\.npz.*SmoothNet"):
        load_split(str(tmp_path), "aist", "vibe", "3D", "test")


def test_missing_key_names_file_and_key(tmp_path, rng):
    det_path, _ = write_split(str(tmp_path), "aist", "vibe", "3D", "test",
                              *make_pairs(rng, [40], 14, 3))
    np.savez(det_path, imgname=imgnames([40]))
    with pytest.raises(DataFormatError, match=r"vibe_3D_test\.npz has no key 'joints_3d'"):
        load_split(str(tmp_path), "aist", "vibe", "3D", "test")


def test_sequence_count_mismatch(tmp_path, rng):
    dets, gts = make_pairs(rng, [40, 50], 14, 3)
    write_split(str(tmp_path), "aist", "vibe", "3D", "test", dets[:1], gts)
    with pytest.raises(DataFormatError, match="1 sequences but .* has 2"):
        load_split(str(tmp_path), "aist", "vibe", "3D", "test")


def test_frame_count_mismatch_names_sequence(tmp_path, rng):
    dets, gts = make_pairs(rng, [40, 50], 14, 3)
    dets[1] = dets[1][:45]
    write_split(str(tmp_path), "aist", "vibe", "3D", "test", dets, gts)
    with pytest.raises(DataFormatError, match="sequence 1: 45 frames"):
        load_split(str(tmp_path), "aist", "vibe", "3D", "test")


def test_joint_count_disagrees_with_skeleton(tmp_path, rng):
    write_split(str(tmp_path), "aist", "vibe", "3D", "test", *make_pairs(rng, [40], 17, 3))
    with pytest.raises(DataFormatError, match=r"sequence 0: shape \(40, 51\).*14 joints"):
        load_split(str(tmp_path), "aist", "vibe", "3D", "test")


def test_nan_names_sequence_and_frame(tmp_path, rng):
    dets, gts = make_pairs(rng, [40, 30], 14, 3)
    dets[1][7, 3, 0] = np.nan
    write_split(str(tmp_path), "aist", "vibe", "3D", "test", dets, gts)
    with pytest.raises(DataFormatError, match="sequence 1: 1 NaN/Inf values, first at frame 7"):
        load_split(str(tmp_path), "aist", "vibe", "3D", "test")


def test_inf_in_ground_truth(tmp_path, rng):
    dets, gts = make_pairs(rng, [40], 14, 3)
    gts[0][3, 0, 1] = np.inf
    write_split(str(tmp_path), "aist", "vibe", "3D", "test", dets, gts)
    with pytest.raises(DataFormatError, match=r"aist_gt_3D_test\.npz.*first at frame 3"):
        load_split(str(tmp_path), "aist", "vibe", "3D", "test")


def test_imgname_length_mismatch(tmp_path, rng):
    det_path, _ = write_split(str(tmp_path), "aist", "vibe", "3D", "test",
                              *make_pairs(rng, [40], 14, 3))
    dets, _ = make_pairs(rng, [40], 14, 3)
    np.savez(det_path, imgname=imgnames([39]),
             joints_3d=object_array([dets[0].reshape(40, -1)]))
    with pytest.raises(DataFormatError, match="40 frames but 39 image names"):
        load_split(str(tmp_path), "aist", "vibe", "3D", "test")


def test_empty_sequence_is_rejected(tmp_path, rng):
    dets, gts = make_pairs(rng, [40], 14, 3)
    dets.append(np.zeros((0, 14, 3), np.float32))
    gts.append(np.zeros((0, 14, 3), np.float32))
    write_split(str(tmp_path), "aist", "vibe", "3D", "test", dets, gts)
    with pytest.raises(DataFormatError, match="sequence 1: the sequence has no frames"):
        load_split(str(tmp_path), "aist", "vibe", "3D", "test")


def test_short_sequences_load_for_padding(tmp_path, rng):
    write_split(str(tmp_path), "aist", "vibe", "3D", "test", *make_pairs(rng, [5, 3], 14, 3))
    assert [len(s) for s in load_split(str(tmp_path), "aist", "vibe", "3D", "test").detected] \
        == [5, 3]


def test_jhmdb_2d_reads_boxes_and_checks_their_shape(tmp_path, rng):
    dets, gts = make_pairs(rng, [30], 15, 2)
    boxes = object_array([np.tile([0.0, 0.0, 100.0, 200.0], (30, 1))])
    write_split(str(tmp_path), "jhmdb", "simplepose", "2D", "test", dets, gts, {"bbox": boxes})
    seq_set = load_split(str(tmp_path), "jhmdb", "simplepose", "2D", "test")
    assert seq_set.bboxes[0].shape == (30, 4)
    write_split(str(tmp_path), "jhmdb", "simplepose", "2D", "test", dets, gts,
                {"bbox": object_array([np.zeros((29, 4))])})
    with pytest.raises(DataFormatError, match="'bbox', sequence 0"):
        load_split(str(tmp_path), "jhmdb", "simplepose", "2D", "test")


def test_corrupt_file(tmp_path, rng):
    det_path, _ = write_split(str(tmp_path), "aist", "vibe", "3D", "test",
                              *make_pairs(rng, [40], 14, 3))
    with open(det_path, "wb") as handle:
        handle.write(b"not an npz")
    with pytest.raises(DataFormatError, match="not a readable npz"):
        load_split(str(tmp_path), "aist", "vibe", "3D", "test")


def test_paths_follow_smoothnet_layout():
    det, gt = split_paths("data/poses", "h36m", "fcn", "3D", "train")
    assert det == "data/poses/h36m_fcn_3D/detected/h36m_fcn_3D_train.npz"
    assert gt == "data/poses/h36m_fcn_3D/groundtruth/h36m_gt_3D_train.npz"


def test_folder_skeleton_file_describes_a_new_skeleton(tmp_path, rng):
    from lib.data.skeletons import get_skeleton, skeleton_to_yaml

    base = str(tmp_path)
    write_split(base, "mocap", "myest", "3D", "test", *make_pairs(rng, [40], 21, 3))
    with pytest.raises(KeyError, match="skeleton.yaml"):
        load_split(base, "mocap", "myest", "3D", "test")
    skeleton_to_yaml(get_skeleton("bandai21"), f"{base}/mocap_myest_3D/skeleton.yaml")
    seq_set = load_split(base, "mocap", "myest", "3D", "test")
    assert seq_set.skeleton.joint_names == get_skeleton("bandai21").joint_names
    assert seq_set.skeleton.left_right == get_skeleton("bandai21").left_right
    assert seq_set.skeleton.dof_joints() == get_skeleton("bandai21").dof_joints()
