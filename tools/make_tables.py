"""Evaluate checkpoints listed in a spec file and write SmoothNet README-style Markdown tables.

Each entry names a checkpoint (ours, or a released SmoothNet checkpoint_*.pth.tar) and the
dataset, estimator and representation to test it on; the table shows input -> refined MPJPE
and Accel with SmoothNet's published numbers beside them. See docs/REPRODUCE.md.

Example:
    python tools/make_tables.py --spec docs/tables/sample.yaml --markdown results/tables.md
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# `python tools/make_tables.py` must work from a plain clone, where `lib` is not installed.
sys.path.insert(0, str(REPO_ROOT))

from lib.core.published import SOURCE  # noqa: E402
from lib.core.report import format_paper_tables  # noqa: E402
from lib.core.setup import configure_logging, resolve_device  # noqa: E402
from lib.core.table_spec import read_spec, run_entries  # noqa: E402
from lib.errors import run_main  # noqa: E402
from lib.utils.io import save_json, save_text  # noqa: E402

logger = logging.getLogger("make_tables")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", required=True, help="YAML (entries:) or CSV list of entries")
    parser.add_argument("--markdown", default="", help="write the tables here (else stdout)")
    parser.add_argument("--json", default="", help="also write every metric as JSON here")
    parser.add_argument("--accel", default="accel_padded", choices=["accel_padded", "accel"],
                        help="Accel shown: SmoothNet's zero-padded protocol or real frames only")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    rows = run_entries(read_spec(args.spec), resolve_device(args.device))
    tables = format_paper_tables(rows, args.accel, SOURCE)
    if args.markdown:
        os.makedirs(os.path.dirname(os.path.abspath(args.markdown)), exist_ok=True)
        save_text(args.markdown, tables)
        logger.info("wrote %s", args.markdown)
    else:
        sys.stdout.write(tables)
    if args.json:
        save_json(args.json, [{**row, "published": row["published"] and
                               dataclasses.asdict(row["published"])} for row in rows])
    return 0


if __name__ == "__main__":
    run_main(main, "make_tables")
