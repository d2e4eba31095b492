"""Train a list of configs for several seeds and evaluate them on the unseen-motion set.

Reads a spec of rows (docs/ablation/unseen_rows.yaml), trains every model row once per seed
on the embedded sample (``train.py ... SEED s OUTPUT_DIR out EXP_NAME {name}_s{s}``; runs whose
checkpoint exists are reused unless ``--retrain``), evaluates the input, the classical filters
and every checkpoint on the unseen set (``eval.py --json``) and writes one Markdown table:
mean +- std over seeds of MPJPE, PA-MPJPE and Accel. See docs/UNSEEN.md.

    OMP_NUM_THREADS=1 python tools/run_ablation.py --spec docs/ablation/unseen_rows.yaml \\
        --seeds 1 2 3 --markdown results/unseen/table.md [--train-opts "TRAIN.EPOCHS 5"]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lib.core.config import get_cfg_defaults, merge_file, merge_list  # noqa: E402
from lib.core.resume import WEIGHT_NEUTRAL_KEYS, config_changes  # noqa: E402
from lib.errors import ConfigError, run_main  # noqa: E402

logger = logging.getLogger("run_ablation")

KINDS = ("input", "filter", "model")
ROW_KEYS = ("name", "label", "kind", "cfg", "opts")
FILTERS = ("savgol", "gaussian", "oneeuro")
# Columns of the table: (metric key in eval.py's JSON, header).
COLUMNS = (("mpjpe", "MPJPE"), ("pa_mpjpe", "PA-MPJPE"), ("accel", "Accel"))
# Written into a run folder once its training finished; only such runs are reused (a run that
# was interrupted has checkpoints too).
DONE_MARKER = "run_ablation_done"


@dataclass(frozen=True)
class Row:
    """One row of the table: the input, a classical filter or a trained model.

    Attributes:
        name: identifier; model runs are named ``{name}_s{seed}``, filters by their filter name.
        label: text in the table.
        kind: input, filter or model.
        cfg: training config of a model row (relative to the code folder).
        opts: extra ``KEY VALUE`` overrides of a model row's training.
    """

    name: str
    label: str
    kind: str
    cfg: str = ""
    opts: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Settings:
    """Where the runner reads and writes; all paths absolute."""

    code_dir: Path
    output_dir: Path
    base_dir: Path
    estimator: str
    eval_cfg: str
    seeds: tuple[int, ...]
    train_opts: tuple[str, ...] = ()
    checkpoint: str = "auto"
    retrain: bool = False
    dry_run: bool = False
    eval_only: bool = False
    eval_opts: tuple[str, ...] = ()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line of the runner."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="docs/ablation/unseen_rows.yaml",
                        help="YAML with eval_cfg and rows")
    parser.add_argument("--rows", default="", help="comma-separated row names (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--output-dir", default="results/unseen",
                        help="OUTPUT_DIR of the training runs; evaluations go to its "
                             "eval/{set folder}_{estimator}/")
    parser.add_argument("--base-dir", default="data/unseen",
                        help="DATASET.BASE_DIR of the unseen set (tools/unseen_protocol.py)")
    parser.add_argument("--estimator", default="unseen", help="estimator name of the unseen set")
    parser.add_argument("--code-dir", default=str(REPO_ROOT),
                        help="folder with train.py and eval.py (e.g. a frozen copy of the code)")
    parser.add_argument("--checkpoint", choices=["auto", "best", "last"], default="auto",
                        help="which checkpoint of a run to evaluate (auto: best, else last)")
    parser.add_argument("--retrain", action="store_true", help="train even if a checkpoint exists")
    parser.add_argument("--dry-run", action="store_true", help="log the commands, run nothing")
    parser.add_argument("--eval-only", action="store_true",
                        help="train nothing: evaluate the finished runs there are (seeds without "
                             "one are left out of their row)")
    parser.add_argument("--markdown", default="", help="write the table here (default: "
                        "{output-dir}/unseen_table.md)")
    parser.add_argument("--json", default="", help="also write every per-seed number here")
    parser.add_argument("--train-opts", default="",
                        help="KEY VALUE overrides for every training, one string, e.g. "
                             "'TRAIN.EPOCHS 1 MODEL.HIDDEN_SIZE 16'")
    parser.add_argument("--eval-opts", default="",
                        help="KEY VALUE overrides for every evaluation, one string, e.g. "
                             "'EVAL.MIRROR_TEST True'")
    return parser.parse_args(argv)


def read_rows(path: Path) -> tuple[str, list[Row]]:
    """(eval_cfg, rows) of a spec; a row without ``kind`` is a model when it has a cfg."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(spec, dict) or not spec.get("rows"):
        raise ConfigError(f"{path}: needs 'eval_cfg' and a non-empty 'rows' list")
    rows = []
    for entry in spec["rows"]:
        unknown = sorted(set(entry) - set(ROW_KEYS))
        if unknown:
            raise ConfigError(f"{path}: row {entry} has unknown keys {unknown} (valid: {ROW_KEYS}; "
                             "quote a label that contains a comma)")
        kind = entry.get("kind", "model" if entry.get("cfg") else "")
        row = Row(str(entry["name"]), str(entry.get("label", entry["name"])), kind,
                  str(entry.get("cfg", "")), tuple(str(o) for o in entry.get("opts", [])))
        check_row(row, path)
        rows.append(row)
    names = [row.name for row in rows]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: row names repeat: {names}")
    return str(spec.get("eval_cfg", "configs/sample_sim_3D.yaml")), rows


def check_row(row: Row, path: Path) -> None:
    """Refuse a row the runner cannot run, naming it."""
    if row.kind not in KINDS:
        raise ConfigError(f"{path}: row {row.name!r} has kind {row.kind!r}, not one of {KINDS}")
    if row.kind == "filter" and row.name not in FILTERS:
        raise ConfigError(f"{path}: filter row {row.name!r} must be named one of {FILTERS}")
    if row.kind == "model" and not row.cfg:
        raise ConfigError(f"{path}: model row {row.name!r} needs a cfg")
    if len(row.opts) % 2:
        raise ConfigError(f"{path}: row {row.name!r} opts must be KEY VALUE pairs")


def run_command(command: list[str], settings: Settings, log_path: Path | None = None) -> None:
    """Run a train.py or eval.py command in the code folder; raise with its log on failure."""
    logger.info("$ %s", " ".join(command))
    if settings.dry_run:
        return
    if log_path is None:
        result = subprocess.run(command, cwd=settings.code_dir, capture_output=True, text=True)
        output = result.stdout + result.stderr
    else:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w", encoding="utf-8") as log:
            result = subprocess.run(command, cwd=settings.code_dir, stdout=log,
                                    stderr=subprocess.STDOUT, text=True)
        output = log_path.read_text(encoding="utf-8")
    if result.returncode:
        raise RuntimeError(f"command failed ({result.returncode}): {' '.join(command)}\n"
                           f"{output[-3000:]}")


def run_dir(settings: Settings, row: Row, seed: int) -> Path:
    """The training run folder of a model row and seed."""
    return settings.output_dir / f"{row.name}_s{seed}"


def find_checkpoint(folder: Path, which: str) -> Path | None:
    """The run's checkpoint to evaluate, or None when it has none yet."""
    names = {"best": ["best.pth"], "last": ["last.pth"], "auto": ["best.pth", "last.pth"]}[which]
    for name in names:
        path = folder / "checkpoints" / name
        if path.is_file():
            return path
    return None


def training_opts(row: Row, seed: int, settings: Settings) -> list[str]:
    """The ``KEY VALUE`` overrides train.py gets for a row and seed, after ``--cfg row.cfg``."""
    return [*row.opts, *settings.train_opts, "SEED", str(seed),
            "OUTPUT_DIR", str(settings.output_dir), "EXP_NAME", run_dir(settings, row, seed).name]


def stale_keys(row: Row, seed: int, settings: Settings) -> list[str]:
    """Keys in which a finished run's config.yaml differs from what the row trains now.

    A row names its run folder, not its config: when the config file or the row's opts change
    (the demo's recipe does), an earlier run of the same name is another model. Keys that cannot
    change the weights (``lib.core.resume.WEIGHT_NEUTRAL_KEYS``) are left out; keys added since
    the run was trained count as their defaults, which reproduce the earlier behaviour.
    """
    stored = run_dir(settings, row, seed) / "config.yaml"
    if not stored.is_file():
        return ["config.yaml missing"]
    cfg = get_cfg_defaults()
    merge_file(cfg, str(settings.code_dir / row.cfg))
    merge_list(cfg, training_opts(row, seed, settings))
    changes = config_changes(stored.read_text(encoding="utf-8"), cfg.dump(), WEIGHT_NEUTRAL_KEYS)
    return [f"{key} {old!r} -> {new!r}" for key, old, new in changes]


def check_reusable(row: Row, seed: int, settings: Settings) -> None:
    """Refuse to reuse (or evaluate) a finished run that the row would now train differently."""
    changed = stale_keys(row, seed, settings)
    if changed:
        folder = run_dir(settings, row, seed)
        raise ConfigError(f"{folder} was trained with another config than row {row.name!r} "
                          f"gives now ({'; '.join(changed[:5])}"
                          f"{'; ...' if len(changed) > 5 else ''}): train it again with "
                          "--retrain (without --eval-only), or use another --output-dir")


def train_row(row: Row, seed: int, settings: Settings) -> Path:
    """Train one model row for one seed unless a finished run of its config exists."""
    folder = run_dir(settings, row, seed)
    existing = find_checkpoint(folder, settings.checkpoint)
    if existing is not None and (folder / DONE_MARKER).is_file() and not settings.retrain:
        if not settings.dry_run:
            check_reusable(row, seed, settings)
        logger.info("reusing %s", existing)
        return existing
    command = [sys.executable, "train.py", "--cfg", row.cfg, "--overwrite",
               *training_opts(row, seed, settings)]
    run_command(command, settings, settings.output_dir / "logs" / f"{folder.name}.log")
    if settings.dry_run:
        return folder / "checkpoints" / "best.pth"
    checkpoint = find_checkpoint(folder, settings.checkpoint)
    if checkpoint is None:
        raise RuntimeError(f"training {folder.name} wrote no {settings.checkpoint} checkpoint")
    (folder / DONE_MARKER).write_text(" ".join(command) + "\n", encoding="utf-8")
    return checkpoint


def evaluation_path(settings: Settings, name: str) -> Path:
    """Where eval.py writes the JSON of one evaluation named ``name``.

    ``{output-dir}/eval/{set folder}_{estimator}/{name}[_{digest}].json``: evaluations of the same
    runs on another set (e.g. the sample's test split) or with other ``--eval-opts`` (digest of
    them) never replace each other, so runners may work side by side.
    """
    stem = name
    if settings.eval_opts:
        stem += "_" + hashlib.sha256(" ".join(settings.eval_opts).encode()).hexdigest()[:8]
    return (settings.output_dir / "eval" / f"{settings.base_dir.name}_{settings.estimator}"
            / f"{stem}.json")


def evaluate(cfg: str, checkpoints: list[Path], settings: Settings, name: str,
             tradition: str = "") -> list[dict]:
    """eval.py on the set; the metric rows in order (input, filters, checkpoints)."""
    out = evaluation_path(settings, name)
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "eval.py", "--cfg", cfg, "--estimator", settings.estimator,
               "--json", str(out), "--overwrite"]
    if tradition:
        command += ["--tradition", tradition]
    if checkpoints:
        command += ["--checkpoint", ",".join(str(c) for c in checkpoints)]
    command += [*settings.eval_opts, "DATASET.BASE_DIR", str(settings.base_dir)]
    run_command(command, settings)
    if settings.dry_run:
        return []
    results = json.loads(out.read_text(encoding="utf-8"))
    (rows,) = results.values()  # one dataset: the unseen set
    return list(rows.items())


def classical_results(rows: list[Row], settings: Settings) -> dict[str, list[dict]]:
    """Input and filter rows from one evaluation (deterministic: one value, no seeds)."""
    wanted = [row for row in rows if row.kind in ("input", "filter")]
    if not wanted:
        return {}
    tradition = "all" if any(row.kind == "filter" for row in wanted) else ""
    evaluated = dict(evaluate(settings.eval_cfg, [], settings, "classical", tradition))
    return {row.name: [evaluated[row.name]] for row in wanted if row.name in evaluated}


def finished_checkpoints(row: Row, settings: Settings) -> dict[int, Path]:
    """Checkpoints of the row's finished runs by seed, in seed order (``--eval-only``)."""
    found = {}
    for seed in settings.seeds:
        folder = run_dir(settings, row, seed)
        checkpoint = find_checkpoint(folder, settings.checkpoint)
        if checkpoint is not None and (folder / DONE_MARKER).is_file():
            check_reusable(row, seed, settings)
            found[seed] = checkpoint
        else:
            logger.warning("%s: no finished run for seed %d; left out", row.name, seed)
    return found


def model_results(row: Row, settings: Settings) -> list[dict]:
    """Train (or reuse) every seed of a model row and evaluate the checkpoints together.

    The evaluation is named by the row and its seeds (``{name}_s1-2-3``): runners that share a
    row but not its seeds, side by side, write and read files of their own.
    """
    if settings.eval_only:
        by_seed = finished_checkpoints(row, settings)
        if not by_seed:
            return []
    else:
        by_seed = {seed: train_row(row, seed, settings) for seed in settings.seeds}
    checkpoints = list(by_seed.values())
    name = f"{row.name}_s" + "-".join(str(seed) for seed in by_seed)
    evaluated = evaluate(row.cfg, checkpoints, settings, name)
    # eval.py lists the input (and any filters) first, then the checkpoints in the order given.
    return [metrics for _, metrics in evaluated[len(evaluated) - len(checkpoints):]]


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def format_cell(values: list[float]) -> str:
    """``mean ± std`` over seeds, or the single value of a deterministic row."""
    mean, std = mean_std(values)
    return f"{mean:.2f}" if len(values) == 1 else f"{mean:.2f} ± {std:.2f}"


def markdown_table(rows: list[Row], results: dict[str, list[dict]], title: str) -> str:
    """The table: one line per row with results, mean ± std over seeds."""
    header = "| method | seeds | " + " | ".join(h for _, h in COLUMNS) + " |"
    lines = [title, "", header, "|" + "---|" * (len(COLUMNS) + 2)]
    for row in rows:
        per_seed = results.get(row.name)
        if not per_seed:
            continue
        seeds = str(len(per_seed)) if row.kind == "model" else "-"
        cells = [format_cell([m[key] for m in per_seed]) for key, _ in COLUMNS]
        lines.append(f"| {row.label} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table_title(results: dict[str, list[dict]], settings: Settings) -> str:
    """A line naming the set and the seeds."""
    first = next(iter(results.values()))[0] if results else {}
    return (f"Evaluation set `{settings.base_dir.name}` (estimator `{settings.estimator}`: "
            f"{first.get('sequences', '?')} sequences, {first.get('frames', '?')} frames); "
            f"models: mean ± std over seeds {list(settings.seeds)}; MPJPE and PA-MPJPE in mm "
            "(px for 2D sets), Accel in mm (px) per frame^2 over real frames.")


def run_ablation(rows: list[Row], settings: Settings) -> dict[str, list[dict]]:
    """Every row's per-seed metrics (input and filters: one entry each)."""
    results = classical_results(rows, settings)
    for row in rows:
        if row.kind == "model":
            results[row.name] = model_results(row, settings)
    return results


def absolute(path: str) -> Path:
    """A path from the command line, made absolute against the current folder."""
    return Path(path).expanduser().resolve()


def main(argv: list[str] | None = None) -> int:
    """Run the spec and write the table."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    eval_cfg, rows = read_rows(absolute(args.spec))
    if args.rows:
        chosen = [name.strip() for name in args.rows.split(",") if name.strip()]
        unknown = sorted(set(chosen) - {row.name for row in rows})
        if unknown:
            raise ConfigError(f"--rows {unknown} are not in {args.spec}")
        rows = [row for row in rows if row.name in chosen]
    output_dir = absolute(args.output_dir)
    settings = Settings(absolute(args.code_dir), output_dir, absolute(args.base_dir),
                        args.estimator, eval_cfg, tuple(args.seeds), tuple(args.train_opts.split()),
                        args.checkpoint, args.retrain, args.dry_run, args.eval_only,
                        tuple(args.eval_opts.split()))
    results = run_ablation(rows, settings)
    if args.dry_run:
        return 0
    table = markdown_table(rows, results, table_title(results, settings))
    print(table)
    markdown = absolute(args.markdown) if args.markdown else output_dir / "unseen_table.md"
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(table, encoding="utf-8")
    if args.json:
        per_seed = {name: [{k: m[k] for k, _ in COLUMNS} for m in values]
                    for name, values in results.items()}
        absolute(args.json).write_text(json.dumps({"seeds": list(settings.seeds),
                                                   "rows": per_seed}, indent=1) + "\n",
                                       encoding="utf-8")
    logger.info("wrote %s", markdown)
    return 0


if __name__ == "__main__":
    run_main(main, "run_ablation")
