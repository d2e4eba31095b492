"""Train MotionRefineNet or SmoothNet on SmoothNet-format pose data."""

import logging
import os
import sys

from lib.core.cli import build_parser, load_config
from lib.core.setup import prepare_run_dir, setup_run
from lib.core.train_run import build_trainer
from lib.data.smoothnet_io import DataFormatError

logger = logging.getLogger("train")


def main(argv: list[str] | None = None) -> int:
    args = build_parser(__doc__).parse_args(argv)
    cfg = load_config(args)
    run_dir = prepare_run_dir(cfg, resume=args.resume, overwrite=args.overwrite)
    device = setup_run(cfg, run_dir)
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(os.path.join(run_dir, "tensorboard")) as writer:
        trainer = build_trainer(cfg, run_dir, device, writer)
        if args.resume:
            trainer.resume()
        best = trainer.fit()
    logger.info("done: best validation MPJPE %.2f; checkpoints in %s/checkpoints", best, run_dir)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (DataFormatError, FileNotFoundError, FileExistsError, KeyError, ValueError,
            FloatingPointError) as err:
        logging.getLogger("train").error("%s", err)
        sys.exit(2)
