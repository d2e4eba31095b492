"""Train MotionRefineNet or SmoothNet on SmoothNet-format pose data.

Several processes (GPUs or nodes): torchrun --nproc_per_node N train.py ... (docs/PERFORMANCE.md).
"""

from lib.core.cli import build_train_parser, load_config
from lib.core.train_run import run_training
from lib.errors import run_main


def main(argv: list[str] | None = None) -> int:
    args = build_train_parser(__doc__).parse_args(argv)
    cfg = load_config(args)
    run_training(cfg, resume=args.resume, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    run_main(main, "train")
