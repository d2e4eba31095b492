"""The unseen-motion protocol: its set (tools/unseen_protocol.py) and runner (run_ablation.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from lib.core.config import get_cfg_defaults, merge_file, merge_list, validate
from tools import run_ablation, unseen_protocol

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE = REPO_ROOT.parent / "shared/data/real/bandai_namco_motion_1/derived_joints3d_bandai1.npz"
needs_shared = pytest.mark.skipif(not SOURCE.is_file(),
                                  reason="needs ../shared/data/real (the Bandai mocap)")
SAMPLE_TRAIN_GT = REPO_ROOT / "data/poses/sample_sim_3D/groundtruth/sample_gt_3D_train.npz"
# Training ranges of the parameters the unseen setting draws entirely outside them.
DISJOINT_FROM_TRAINING = {"drift_corr_s": (0.5, 2.0), "global_corr_s": (1.0, 4.0),
                          "distal_multiplier": (1.414, 2.828), "occlusion_rate": (0.1, 0.4),
                          "swap_rate": (0.02, 0.08)}


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


def test_the_repository_specs_parse():
    for spec in sorted((REPO_ROOT / "docs/tables").glob("ablation*.yaml")):
        eval_cfg, rows = run_ablation.read_rows(spec)
        assert (REPO_ROOT / eval_cfg).is_file()
        for row in (r for r in rows if r.kind == "model"):
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
    first = unseen_protocol.build_unseen(SOURCE, tmp_path / "a", **kwargs)
    unseen_protocol.build_unseen(SOURCE, tmp_path / "b", **kwargs)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")  # byte-identical
    stems = {entry["stem"] for entry in first["sequences"]}
    assert len(stems) == 2
    train = np.load(SAMPLE_TRAIN_GT, allow_pickle=True)["imgname"]
    train_stems = {str(names[0]).split("/")[0] for names in train}
    assert len(train_stems) == 116 and not stems & train_stems
    other = unseen_protocol.build_unseen(SOURCE, tmp_path / "c", **{**kwargs, "seed": 6})
    assert other["sequences"][0]["params"] != first["sequences"][0]["params"]


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
    argv = ["--spec", str(spec), "--seeds", "1", "--output-dir", str(out), "--base-dir",
            str(tmp_path / "unseen"), "--markdown", str(markdown), "--json",
            str(tmp_path / "table.json"), "--train-opts",
            "TRAIN.EPOCHS 1 MODEL.NUM_BLOCKS 1 MODEL.SLIDE_WINDOW_SIZE 16 TRAIN.STRIDE 16"]
    assert run_ablation.main(argv) == 0
    table = markdown.read_text(encoding="utf-8")
    assert "| input | - |" in table and "| gaussian | - |" in table
    assert "| tiny model | 1 |" in table
    assert (out / "tiny_s1" / run_ablation.DONE_MARKER).is_file()
    # a finished run is reused, not retrained
    log = out / "logs" / "tiny_s1.log"
    stamp = log.stat().st_mtime_ns
    assert run_ablation.main([*argv[:-2], "--rows", "tiny"]) == 0
    assert log.stat().st_mtime_ns == stamp
    # --eval-only trains nothing and leaves out the seeds without a finished run
    only = [*argv[:-2], "--rows", "tiny", "--eval-only", "--seeds", "1", "2"]
    assert run_ablation.main(only) == 0
    assert not (out / "tiny_s2").exists()
    assert "| tiny model | 1 |" in markdown.read_text(encoding="utf-8")
