"""Train MotionRefineNet or SmoothNet on SmoothNet-format pose data.

Several processes (GPUs or nodes): torchrun --nproc_per_node N train.py ... (docs/PERFORMANCE.md).
"""

import logging
import sys

from lib.core.cli import build_parser, load_config
from lib.core.train_run import run_training
from lib.data.smoothnet_io import DataFormatError

logger = logging.getLogger("train")


def main(argv: list[str] | None = None) -> int:
    args = build_parser(__doc__).parse_args(argv)
    cfg = load_config(args)
    run_training(cfg, resume=args.resume, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (DataFormatError, FileNotFoundError, FileExistsError, KeyError, ValueError,
            FloatingPointError) as err:
        logger.error("%s", err)
        sys.exit(2)
