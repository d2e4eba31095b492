"""Evaluate the input, classical filters and checkpoints on a SmoothNet-format test split."""

import logging
import os
import sys

from lib.core.cli import build_parser, load_config
from lib.core.evaluation import evaluate_all
from lib.core.report import format_results
from lib.core.setup import setup_run
from lib.data.smoothnet_io import DataFormatError
from lib.utils.io import save_json, save_text
from lib.visualize import write_eval_pictures

logger = logging.getLogger("eval")


def main(argv: list[str] | None = None) -> int:
    args = build_parser(__doc__).parse_args(argv)
    cfg = load_config(args)
    for path in (args.json, args.markdown):
        if path and os.path.exists(path) and not args.overwrite:
            raise FileExistsError(f"{path} exists; pass --overwrite or choose another path")
    device = setup_run(cfg)
    results = evaluate_all(cfg, device)
    table = format_results(results)
    print(table)
    if args.json:
        save_json(args.json, results)
    if args.markdown:
        save_text(args.markdown, table)
    if args.visualize:
        write_eval_pictures(cfg, device, args.visualize, args.json)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (DataFormatError, FileNotFoundError, FileExistsError, KeyError, ValueError) as err:
        logging.getLogger("eval").error("%s", err)
        sys.exit(2)
