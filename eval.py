"""Evaluate the input, classical filters and checkpoints on a SmoothNet-format test split."""

from lib.core.cli import build_eval_parser, load_config
from lib.core.evaluation import evaluate_all
from lib.core.report import format_results
from lib.core.setup import setup_run
from lib.errors import run_main
from lib.utils.io import check_output_file, save_json, save_text
from lib.visualize import write_eval_pictures


def main(argv: list[str] | None = None) -> int:
    args = build_eval_parser(__doc__).parse_args(argv)
    cfg = load_config(args)
    for flag, path in (("--json", args.json), ("--markdown", args.markdown)):
        if path:
            check_output_file(path, args.overwrite, flag)
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
    run_main(main, "eval")
