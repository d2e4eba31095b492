"""The one user-facing error type and the wrapper every entry point runs under.

Bad input (a file, a key, a value, a flag) raises a :class:`UserError` subclass whose message
names the culprit and the fix. Entry points run ``main`` through :func:`run_main`, which prints
such an error as one line and exits with code 2; every other exception is a bug and propagates
with its traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

# Exit code of a run refused for bad input (argparse uses the same).
USER_ERROR_EXIT_CODE = 2


class UserError(Exception):
    """Bad input from the user; the message names the file / key / sequence and the fix."""

    def __str__(self) -> str:
        # KeyError subclasses would otherwise print their message in quotes.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class ConfigError(UserError, ValueError):
    """A config file, key or value that cannot be used."""


class UnknownNameError(UserError, KeyError):
    """A name (model, dataset, filter, config key) that is not one of the valid ones."""


class InputFileError(UserError, ValueError):
    """A data, pose or model file that is missing, malformed or unsafe to read."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the run needs does not exist."""


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be read, is not this project's, or does not fit the run."""


class RunFolderError(UserError):
    """A run folder that may not be used: held by another run, outside OUTPUT_DIR, taken."""


class UnsafeFileError(InputFileError):
    """A file that would run code when read (a pickle of something other than plain data)."""


class TrainingDivergedError(UserError, FloatingPointError):
    """Training produced a non-finite loss (learning rate too high, or bad data)."""


class OutputFileError(UserError, OSError):
    """An output path that cannot be written (its folder is missing, a file, or read-only)."""


class OutputExistsError(OutputFileError, FileExistsError):
    """An output file that exists already and may not be replaced without --overwrite."""


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (a wrapped library message may span several)."""
    return " ".join(line.strip() for line in str(err).splitlines() if line.strip())


def run_main(main: Callable[[], int], logger_name: str) -> None:
    """Run an entry point: a UserError becomes one line on stderr and exit code 2.

    Anything else propagates with its traceback: it is a bug, not bad input.
    """
    try:
        code = main()
    except UserError as err:
        if not logging.getLogger().handlers:
            logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger(logger_name).error("%s", one_line(err))
        sys.exit(USER_ERROR_EXIT_CODE)
    sys.exit(code)
