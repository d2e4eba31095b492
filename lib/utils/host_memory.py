"""Keep freed memory inside the process, so large tensors reuse pages instead of faulting new ones.

glibc's malloc serves every block above a threshold (128 KiB, rising with use to at most
32 MiB) with its own ``mmap`` and unmaps it on free, and it returns the top of its heap to the
system once more than 128 KiB of it is free. A training step of the released-size network
(aist: batch 128, 512-wide joint mixing) allocates and frees several GB of activations in
blocks of 30-130 MB, so without this every step maps them again and the kernel zero-fills every
page before a tensor can be written: the step spends about as long in page faults as in its
matrix products. :func:`keep_freed_memory` turns both off (``mallopt``), after which freed
blocks are reused. docs/PERFORMANCE.md has the measurements.

The cost: the process keeps its peak memory until it exits. Only the entry points call it
(train.py and eval.py through ``KEEP_FREED_MEMORY``, tools/benchmark.py); importing the
library changes nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import platform
import sys

logger = logging.getLogger(__name__)

# mallopt parameters (malloc.h): the most blocks served by mmap at once (0: none) and the free
# memory at the top of the heap above which it is given back to the system (-1: never).
_M_MMAP_MAX = -4
_M_TRIM_THRESHOLD = -1


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (the only one whose mallopt these parameters are)."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc serve large blocks from its heap and never trim it; returns whether it did.

    Process-wide and for the rest of the process (forked data-loader workers inherit it);
    calling it again does nothing. Elsewhere than glibc on Linux it returns False.
    """
    libc = _glibc()
    if libc is None:
        logger.debug("KEEP_FREED_MEMORY: not glibc on Linux; allocator left as it is")
        return False
    applied = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, -1))
    if not applied:
        logger.warning("KEEP_FREED_MEMORY: glibc refused mallopt; allocator left as it is")
    return applied
