"""tools/benchmark.py --quick runs and reports every key (its numbers are not checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = ("matmul_gflops", "mrn_gflop_per_window", "mrn_train_pct_peak", "mrn_infer_pct_peak",
        "smoothnet_train_pct_peak", "eval_overhead", "overlap_add_speedup", "peak_rss_mb_100k",
        "mrn_train_amp_speedup", "mrn_infer_amp_speedup", "mrn_infer_compile_speedup",
        "mrn_compile_seconds")


def test_quick_benchmark_reports_every_key(tmp_path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "tools/benchmark.py", "--quick", "--json", str(out)],
                          cwd=_REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    for key in KEYS:
        assert isinstance(results[key], float) and results[key] > 0, key
    assert "matmul_gflops" in done.stdout
    # the peak is the best path measured, and every efficiency is relative to it
    paths = [results[key] for key in ("matmul_gflops_mkl", "matmul_gflops_onednn")
             if key in results]
    assert results["matmul_gflops"] == max(paths)
    for name in ("mrn_train", "mrn_infer", "smoothnet_train"):
        assert results[f"{name}_pct_peak"] == 100 * results[f"{name}_gflops"] / max(paths)
    assert results["machine"]["torch"] == __import__("torch").__version__
