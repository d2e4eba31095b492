"""The unseen-motion protocol: its set (tools/unseen_protocol.py) and runner (run_ablation.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from lib.core.config import get_cfg_defaults, merge_file, merge_list, validate
from lib.data import error_model_2d
from lib.data.camera import project_pinhole, sample_camera, world_to_camera
from lib.data.skeletons import get_skeleton
from lib.data.smoothnet_io import load_split, split_paths
from lib.errors import ConfigError
from tests.bandai_source import SOURCE, needs_shared
from tools import build_sample_data, run_ablation, unseen_protocol

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_TRAIN_GT = REPO_ROOT / "data/poses/sample_sim_3D/groundtruth/sample_gt_3D_train.npz"
# Training ranges of the parameters the unseen setting draws entirely outside them.
DISJOINT_FROM_TRAINING = {"drift_corr_s": (0.5, 2.0), "global_corr_s": (1.0, 4.0),
                          "distal_multiplier": (1.414, 2.828), "occlusion_rate": (0.1, 0.4),
                          "swap_rate": (0.02, 0.08)}
# Arguments of the small set the 2D tests share, and the digest of its 3D arrays as the code
# wrote them before the 2D variant existed: the 2D variant must never change a 3D draw.
SMALL_SET = {"seed": 5, "max_frames": 40}
SMALL_SET_3D_DIGEST = "0c83c71b12cc597b1d97df674b21bd93d5261052fdad24358fcbc03a6367785d"


def test_unseen_timing_parameters_lie_outside_the_training_ranges():
    rng = np.random.default_rng(0)
    for _ in range(200):
        params = unseen_protocol.draw_unseen_params(rng)
        for name, (low, high) in DISJOINT_FROM_TRAINING.items():
            value = getattr(params, name)
            assert not low < value < high, (name, value)
        assert params.occlusion_frames[0] >= 4 and params.swap_frames[1] >= params.swap_frames[0]


def test_log_uniform_draw_stays_in_its_intervals():
    rng = np.random.default_rng(1)
    intervals = ((0.25, 0.5), (2.0, 4.0))
    values = np.array([unseen_protocol.draw_log_uniform(rng, intervals) for _ in range(2000)])
    assert np.all(((values >= 0.25) & (values <= 0.5)) | ((values >= 2.0) & (values <= 4.0)))
    assert 0.35 < np.mean(values < 1.0) < 0.65  # equal log-widths: about half in each


# The runner's committed specs (docs/UNSEEN.md).
SPECS = sorted((REPO_ROOT / "docs/ablation").glob("*.yaml"))


@pytest.mark.parametrize("spec", SPECS, ids=lambda path: path.name)
def test_the_repository_specs_parse(spec):
    eval_cfg, rows = run_ablation.read_rows(spec)
    assert (REPO_ROOT / eval_cfg).is_file()
    models = [r for r in rows if r.kind == "model"]
    assert models
    for row in models:
        cfg = get_cfg_defaults()  # every row's config and opts are valid keys and values
        merge_file(cfg, str(REPO_ROOT / row.cfg))
        merge_list(cfg, list(row.opts))
        validate(cfg)


def test_a_row_with_an_unknown_key_is_refused(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("rows:\n  - {name: gaussian, label: Gaussian (31, sigma 3), kind: filter}\n")
    with pytest.raises(ValueError, match="unknown keys"):
        run_ablation.read_rows(spec)


def test_table_reports_mean_and_spread():
    rows = [run_ablation.Row("input", "input", "input"),
            run_ablation.Row("m", "model", "model", "cfg.yaml")]
    results = {"input": [{"mpjpe": 100.0, "pa_mpjpe": 70.0, "accel": 30.0}],
               "m": [{"mpjpe": 60.0, "pa_mpjpe": 40.0, "accel": 4.0},
                     {"mpjpe": 64.0, "pa_mpjpe": 44.0, "accel": 5.0}]}
    table = run_ablation.markdown_table(rows, results, "title")
    assert "| input | - | 100.00 | 70.00 | 30.00 |" in table
    assert "| model | 2 | 62.00 ± 2.83 | 42.00 ± 2.83 | 4.50 ± 0.71 |" in table


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@needs_shared
def test_unseen_set_is_reproducible_and_never_in_the_training_split(tmp_path):
    kwargs = {"seed": 5, "max_sequences": 2, "max_frames": 50}
    first = unseen_protocol.build_unseen(SOURCE, tmp_path / "a", **kwargs)["3D"]
    unseen_protocol.build_unseen(SOURCE, tmp_path / "b", **kwargs)
    digests = _digests(tmp_path / "a")
    assert digests == _digests(tmp_path / "b")  # byte-identical, 3D and 2D
    assert {"sample_unseen_2D/detected/sample_unseen_2D_test.npz",
            "sample_unseen_2D/groundtruth/sample_gt_2D_test.npz"} <= set(digests)
    stems = {entry["stem"] for entry in first["sequences"]}
    assert len(stems) == 2
    train = np.load(SAMPLE_TRAIN_GT, allow_pickle=True)["imgname"]
    train_stems = {str(names[0]).split("/")[0] for names in train}
    assert len(train_stems) == 116 and not stems & train_stems
    other = unseen_protocol.build_unseen(SOURCE, tmp_path / "c", **{**kwargs, "seed": 6})["3D"]
    assert other["sequences"][0]["params"] != first["sequences"][0]["params"]


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    """All 36 unseen clips, 40 frames each, 3D and 2D (about 1 s)."""
    out = tmp_path_factory.mktemp("unseen")
    unseen_protocol.build_unseen(SOURCE, out, **SMALL_SET)
    return out


def _load(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=True) as data:  # our own test output
        return {key: data[key] for key in data.files}


def _arrays_digest(base: Path, rep: str) -> str:
    """sha256 of the image names and values of one representation's two files."""
    digest = hashlib.sha256()
    for path in split_paths(str(base), "sample", "unseen", rep, "test"):
        data = _load(path)
        poses = data["joints_3d" if rep == "3D" else "keypoints_2d"]
        for names, values in zip(data["imgname"], poses):
            digest.update("\n".join(names).encode())
            digest.update(np.ascontiguousarray(values, dtype="<f4").tobytes())
    return digest.hexdigest()


def _camera(seed: int, stem: str, gt: np.ndarray, fps: float):
    """The clip's camera, drawn again from the 2D variant's own generator."""
    rng = np.random.default_rng([seed, zlib.crc32(stem.encode()), unseen_protocol.STREAM_2D])
    names = get_skeleton("bandai21").joint_names
    facing = build_sample_data.facing_direction(gt, names.index("UpperLeg_L"),
                                                names.index("UpperLeg_R"))
    return sample_camera(rng, gt[:, 0], facing, fps)


def _project(points: np.ndarray, camera) -> np.ndarray:
    return project_pinhole(world_to_camera(points, camera), camera.focal, camera.center)


@needs_shared
def test_unseen_3d_set_does_not_depend_on_the_2d_variant(small_set):
    assert _arrays_digest(small_set, "3D") == SMALL_SET_3D_DIGEST
    assert _arrays_digest(small_set, "2D") != SMALL_SET_3D_DIGEST  # the digest sees the files


@needs_shared
def test_unseen_2d_set_loads_and_pairs_with_the_3d_set(small_set):
    sets = {rep: load_split(str(small_set), "sample", "unseen", rep, "test")
            for rep in ("2D", "3D")}
    assert len(sets["2D"].groundtruth) == len(sets["3D"].groundtruth) == 36
    assert sets["2D"].sequence_names == sets["3D"].sequence_names
    for det, gt, gt_3d in zip(sets["2D"].detected, sets["2D"].groundtruth, sets["3D"].groundtruth):
        assert det.shape == gt.shape == (len(gt_3d), 21, 2)
    names = [[list(n) for n in _load(path)["imgname"]] for rep in ("3D", "2D")
             for path in split_paths(str(small_set), "sample", "unseen", rep, "test")]
    assert len(names) == 4 and all(n == names[0] for n in names[1:])
    manifest = json.loads((small_set / "sample_unseen_2D/manifest.json").read_text())
    assert manifest["input_error"]["frames"] == sets["3D"].num_frames
    assert 5.0 < manifest["input_error"]["error_2d_px"] < 60.0


@needs_shared
def test_unseen_2d_is_the_camera_projection_of_the_3d_set(small_set):
    manifest = json.loads((small_set / "sample_unseen_2D/manifest.json").read_text())
    fps = float(np.load(SOURCE)["fps"])
    det_3d, gt_3d = (_load(p)["joints_3d"]
                     for p in split_paths(str(small_set), "sample", "unseen", "3D", "test"))
    det_2d, gt_2d = (_load(p)["keypoints_2d"]
                     for p in split_paths(str(small_set), "sample", "unseen", "2D", "test"))
    for index, entry in enumerate(manifest["sequences"]):
        gt = gt_3d[index].reshape(-1, 21, 3).astype(np.float64)
        camera = _camera(SMALL_SET["seed"], entry["stem"], gt, fps)
        assert camera.focal == pytest.approx(entry["focal"], abs=1e-3)
        assert np.allclose(camera.rotation, entry["rotation"], atol=1e-6)
        error = np.abs(gt_2d[index].reshape(-1, 21, 2) - _project(gt, camera))
        assert error.max() <= build_sample_data.QUANTUM_2D / 2 + 1e-4
        det = det_3d[index].reshape(-1, 21, 3).astype(np.float64)
        noise = det_2d[index].reshape(-1, 21, 2) - _project(det, camera)
        assert abs(noise.mean()) < 0.2 * entry["pixel_sigma"]
        assert noise.std() == pytest.approx(entry["pixel_sigma"], rel=0.1)


@needs_shared
def test_unseen_pixel_jitter_lies_outside_the_training_range(small_set):
    low, spread = build_sample_data.PIXEL_JITTER
    assert error_model_2d._PIXEL_JITTER == build_sample_data.PIXEL_JITTER  # augmentation's too
    training = (low / np.sqrt(spread), low * np.sqrt(spread))  # 0.87-2.60 px
    intervals = unseen_protocol.UNSEEN_PIXEL_JITTER
    assert intervals[0][1] < training[0] and intervals[-1][0] > training[1]  # both sides
    manifest = json.loads((small_set / "sample_unseen_2D/manifest.json").read_text())
    sigmas = np.array([entry["pixel_sigma"] for entry in manifest["sequences"]])
    assert all(any(a <= s <= b for a, b in intervals) for s in sigmas)
    assert np.all((sigmas < training[0]) | (sigmas > training[1]))
    assert np.any(sigmas < training[0]) and np.any(sigmas > training[1])


@needs_shared
def test_runner_trains_evaluates_and_writes_the_table(tmp_path):
    """1 epoch of a tiny model, 1 seed, 2 short unseen sequences (about 20 s on 1 core)."""
    unseen_protocol.build_unseen(SOURCE, tmp_path / "unseen", seed=3, max_sequences=2,
                                 max_frames=40)
    spec = tmp_path / "spec.yaml"
    spec.write_text("eval_cfg: configs/sample_sim_3D.yaml\nrows:\n"
                    "  - {name: input, kind: input}\n  - {name: gaussian, kind: filter}\n"
                    "  - {name: tiny, label: tiny model, cfg: configs/sample_sim_3D.yaml,\n"
                    "     opts: [MODEL.HIDDEN_SIZE, '16', MODEL.RES_HIDDEN_SIZE, '8']}\n")
    markdown, out = tmp_path / "table.md", tmp_path / "runs"
    tiny = ["--train-opts",
            "TRAIN.EPOCHS 1 MODEL.NUM_BLOCKS 1 MODEL.SLIDE_WINDOW_SIZE 16 TRAIN.STRIDE 16"]
    argv = ["--spec", str(spec), "--seeds", "1", "--output-dir", str(out), "--base-dir",
            str(tmp_path / "unseen"), "--markdown", str(markdown), *tiny, "--json",
            str(tmp_path / "table.json")]
    assert run_ablation.main(argv) == 0
    table = markdown.read_text(encoding="utf-8")
    assert "| input | - |" in table and "| gaussian | - |" in table
    assert "| tiny model | 1 |" in table
    assert (out / "tiny_s1" / run_ablation.DONE_MARKER).is_file()
    # a finished run is reused, not retrained, while the row and options train the same model
    log = out / "logs" / "tiny_s1.log"
    stamp = log.stat().st_mtime_ns
    assert run_ablation.main([*argv[:-2], "--rows", "tiny"]) == 0
    assert log.stat().st_mtime_ns == stamp
    without_tiny = [arg for arg in argv[:-2] if arg not in tiny]
    with pytest.raises(ConfigError, match="TRAIN.EPOCHS 1 -> 14"):
        run_ablation.main([*without_tiny, "--rows", "tiny"])
    assert log.stat().st_mtime_ns == stamp
    # --eval-only trains nothing and leaves out the seeds without a finished run
    only = [*argv[:-2], "--rows", "tiny", "--eval-only", "--seeds", "1", "2"]
    assert run_ablation.main(only) == 0
    assert not (out / "tiny_s2").exists()
    assert "| tiny model | 1 |" in markdown.read_text(encoding="utf-8")
    # --eval-opts reach eval.py: test-time mirroring changes the model's row, not the input's
    tables = {}
    for mirror in ("False", "True"):
        assert run_ablation.main([*argv[:-2], "--eval-only", "--eval-opts",
                                  f"EVAL.MIRROR_TEST {mirror}"]) == 0
        tables[mirror] = markdown.read_text(encoding="utf-8")

    def row(table, label):
        return next(line for line in table.splitlines() if line.startswith(f"| {label} |"))
    assert row(tables["True"], "input") == row(tables["False"], "input")
    assert row(tables["True"], "tiny model") != row(tables["False"], "tiny model")
    # the same runs on the sample's test split: an evaluation of its own, the unseen one kept
    test_split = [*argv[:-2], "--eval-only", "--base-dir", "data/poses", "--estimator", "sim"]
    assert run_ablation.main(test_split) == 0
    unseen, sample = (json.loads((out / "eval" / folder / "tiny_s1.json").read_text())
                      for folder in ("unseen_unseen", "poses_sim"))
    assert list(unseen) == ["sample_unseen_3D"] and list(sample) == ["sample_sim_3D"]


def test_side_by_side_runners_never_share_an_evaluation_file(tmp_path, monkeypatch):
    """Two runners with disjoint seeds of one row (as the docs suggest on 2 cores) once wrote
    one JSON, and the slower could read the faster one's numbers as its own."""
    def settings(seeds, eval_opts=()):
        return run_ablation.Settings(tmp_path, tmp_path / "runs", tmp_path / "unseen", "unseen",
                                     "cfg.yaml", seeds, eval_only=True, eval_opts=eval_opts)

    row = run_ablation.Row("tiny", "tiny", "model", "cfg.yaml")
    for seed in (1, 2, 3):
        folder = tmp_path / "runs" / f"tiny_s{seed}"
        (folder / "checkpoints").mkdir(parents=True)
        (folder / "checkpoints" / "best.pth").write_bytes(b"")
        (folder / run_ablation.DONE_MARKER).write_text("done")
    written = []

    def fake_evaluate(cfg, checkpoints, settings, name, tradition=""):
        written.append(run_ablation.evaluation_path(settings, name))
        return [("input", {})] + [(str(c), {"checkpoint": str(c)}) for c in checkpoints]

    monkeypatch.setattr(run_ablation, "evaluate", fake_evaluate)
    monkeypatch.setattr(run_ablation, "check_reusable", lambda row, seed, settings: None)
    first = run_ablation.model_results(row, settings((1,)))
    second = run_ablation.model_results(row, settings((2, 3)))
    mirrored = run_ablation.model_results(row, settings((2, 3), ("EVAL.MIRROR_TEST", "True")))
    assert [m["checkpoint"] for m in first] == [str(tmp_path / "runs/tiny_s1/checkpoints/best.pth")]
    assert [m["checkpoint"].split("/")[-3] for m in second] == ["tiny_s2", "tiny_s3"]
    assert len(mirrored) == 2
    assert [path.name for path in written[:2]] == ["tiny_s1.json", "tiny_s2-3.json"]
    assert len(set(written)) == 3 and written[2].name.startswith("tiny_s2-3_")


def test_rows_shared_by_the_specs_train_the_same_model():
    """A row name names a run folder: specs may share one only for the same training."""
    names = {spec.name for spec in SPECS}
    assert {"unseen_rows.yaml", "unseen_data_rows.yaml", "unseen_2d_rows.yaml"} <= names
    seen: dict[str, tuple] = {}
    names_by_spec: dict[str, set[str]] = {}
    for spec in SPECS:
        rows = run_ablation.read_rows(spec)[1]
        names_by_spec[spec.name] = {row.name for row in rows}
        for row in rows:
            first = seen.setdefault(row.name, (row.cfg, row.opts, spec.name))
            assert first[:2] == (row.cfg, row.opts), (row.name, first[2], spec.name)
    shared = names_by_spec["unseen_data_rows.yaml"] & names_by_spec["unseen_rows.yaml"]
    assert {"mrn_lean", "mrn_demo", "mrn_demo_v1", "mrn_demo_v2", "mrn_demo_v3",
            "mrn_demo_replace"} <= shared


# The newest keys each sample config sets: a row of that config that leaves one unset would
# change its numbers when the config moves on.
NEWEST_KEYS = {"configs/sample_sim_3D.yaml": ("TRAIN.AUGMENT_WEAK", "TRAIN.REVERSE"),
               "configs/sample_sim_2D.yaml": ("TRAIN.AUGMENT_WEAK", "TRAIN.AUGMENT")}


def _pinned(opts: list[str], key: str) -> str:
    return opts[opts.index(key) + 1]


def test_demo_rows_pin_the_recipe_they_were_measured_with():
    """The sample configs move on; a row keeps its numbers by pinning the newest keys, so only
    `mrn_demo` (the 3D demo as it is) may leave them unset; every 3D row that pins the recipe
    from before fresh errors (TRAIN.AUGMENT mix) pins no weaker errors either, and every 3D row
    but the one that measured it pins no reversed windows."""
    for spec in SPECS:
        for row in run_ablation.read_rows(spec)[1]:
            if row.cfg not in NEWEST_KEYS or row.name == "mrn_demo":
                continue
            opts = list(row.opts)
            for key in NEWEST_KEYS[row.cfg]:
                assert key in opts, (spec.name, row.name, key)
            if row.cfg != "configs/sample_sim_3D.yaml":
                continue
            if "TRAIN.AUGMENT" in opts and _pinned(opts, "TRAIN.AUGMENT") == "mix":
                assert _pinned(opts, "TRAIN.AUGMENT_WEAK") == "0.0", (spec.name, row.name)
            if row.name != "mrn_demo_reverse50":
                assert _pinned(opts, "TRAIN.REVERSE") == "0.0", (spec.name, row.name)


# Keys in which the rotation rows differ: the network's (lean or the paper's) and the recipe's.
ROT_ROW_KEYS = ("MODEL.JOINT_HIDDEN_SIZE", "MODEL.FREQ_STACKED", "MODEL.LOW_BAND_PROJECTION",
                "MODEL.FREQ_JOINT_MIXING", "MODEL.FREQ_IDENTITY", "MODEL.TIME_LAYERNORM",
                "MODEL.HALVE_RES_HIDDEN", "MODEL.UP_PATH_MIXING", "TRAIN.EPOCHS", "TRAIN.STRIDE",
                "TRAIN.BATCH_SIZE", "TRAIN.LR", "TRAIN.LR_DECAY", "TRAIN.AUGMENT",
                "DATASET.VAL_FRACTION", "TRAIN.EMA_DECAY", "TRAIN.REVERSE")


def test_rotation_rows_set_network_and_recipe_in_full():
    """The rotation rows keep their numbers whatever configs/sample_sim_rot.yaml holds."""
    rows = run_ablation.read_rows(REPO_ROOT / "docs/ablation/rot_rows.yaml")[1]
    model_rows = [row for row in rows if row.kind == "model"]
    assert len(model_rows) >= 4
    for row in model_rows:
        assert row.cfg == "configs/sample_sim_rot.yaml"
        assert sorted(row.opts[0::2]) == sorted(ROT_ROW_KEYS), row.name


def test_the_rotation_config_trains_its_recipe_row():
    """configs/sample_sim_rot.yaml is the row its comment quotes (rot_full_recipe)."""
    rows = {row.name: row for row in
            run_ablation.read_rows(REPO_ROOT / "docs/ablation/rot_rows.yaml")[1]}
    config, with_row = get_cfg_defaults(), get_cfg_defaults()
    merge_file(config, str(REPO_ROOT / "configs/sample_sim_rot.yaml"))
    merge_file(with_row, str(REPO_ROOT / "configs/sample_sim_rot.yaml"))
    merge_list(with_row, list(rows["rot_full_recipe"].opts))
    assert with_row.dump() == config.dump()
    merge_list(with_row, list(rows["rot_lean_v1"].opts))
    assert with_row.dump() != config.dump()


def test_a_finished_run_of_another_config_is_not_reused(tmp_path):
    """A row names its run folder, not its config: after the demo's config (or the row's opts)
    changed, the old run under that name must not be reported as the row."""
    settings = run_ablation.Settings(REPO_ROOT, tmp_path / "runs", tmp_path / "unseen", "unseen",
                                     "cfg.yaml", (1,), train_opts=("TRAIN.EPOCHS", "2"))
    row = run_ablation.Row("demo", "demo", "model", "configs/sample_sim_3D.yaml",
                           ("TRAIN.AUGMENT_WEAK", "0.0"))
    folder = run_ablation.run_dir(settings, row, 1)
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "best.pth").write_bytes(b"")
    (folder / run_ablation.DONE_MARKER).write_text("done")
    cfg = get_cfg_defaults()
    merge_file(cfg, str(REPO_ROOT / row.cfg))
    merge_list(cfg, run_ablation.training_opts(row, 1, settings))
    (folder / "config.yaml").write_text(cfg.dump())
    assert run_ablation.train_row(row, 1, settings) == folder / "checkpoints" / "best.pth"
    # Keys that cannot change the weights do not count; a key the stored run lacks is its default.
    stored = cfg.clone()
    stored.DEVICE, stored.TRAIN.NUM_WORKERS = "cuda", 2
    stored.FILTERS.ONEEURO_BETA = 0.123  # a filter beside the model, not trained through
    text = stored.dump().replace("  AUGMENT_WEAK: 0.0\n", "")
    assert "  AUGMENT_WEAK:" not in text
    (folder / "config.yaml").write_text(text)
    assert run_ablation.stale_keys(row, 1, settings) == []
    # The demo's config as it is now (30 % weaker windows) is another model than that run.
    changed = run_ablation.Row("demo", "demo", "model", "configs/sample_sim_3D.yaml")
    with pytest.raises(ConfigError, match="TRAIN.AUGMENT_WEAK 0.0 -> 0.3.*--retrain"):
        run_ablation.train_row(changed, 1, settings)
    with pytest.raises(ConfigError, match="TRAIN.AUGMENT_WEAK"):
        run_ablation.finished_checkpoints(changed, settings)
    longer = dataclasses.replace(settings, train_opts=("TRAIN.EPOCHS", "3"))
    assert run_ablation.stale_keys(row, 1, longer) == ["TRAIN.EPOCHS 2 -> 3"]
