"""keep_freed_memory: freed blocks stay in the process; the config key switches it."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from lib.core import setup as run_setup
from lib.core.config import get_cfg_defaults
from lib.utils import host_memory

GLIBC_LINUX = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# Touch 256 MB in one block, free it and report resident memory before, while and after.
_CHILD = """
import json, os, sys
import numpy as np
from lib.utils.host_memory import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
page = os.sysconf("SC_PAGE_SIZE")
def rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * page / 2**20
before = rss_mb()
block = np.ones(64 * 2**20, dtype=np.float32)
held = rss_mb()
del block
print(json.dumps({"applied": applied, "before": before, "held": held, "after": rss_mb()}))
"""


def run_child(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True,
                          check=True, cwd=str(Path(__file__).parents[1]))
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC_LINUX, reason="glibc's mallopt on Linux only")
def test_freed_block_stays_resident_only_when_kept() -> None:
    default, kept = run_child("default"), run_child("keep")
    assert not default["applied"] and kept["applied"]
    for result in (default, kept):
        assert result["held"] - result["before"] > 200  # the block was resident
    # glibc's default unmaps a freed 256 MB block at once; kept, it stays for reuse.
    assert default["held"] - default["after"] > 200
    assert kept["held"] - kept["after"] < 20


def test_elsewhere_than_glibc_it_does_nothing(monkeypatch) -> None:
    monkeypatch.setattr(host_memory.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert host_memory.keep_freed_memory.__wrapped__() is False


@pytest.mark.parametrize("enabled", (True, False))
def test_setup_run_follows_the_config_key(monkeypatch, enabled: bool) -> None:
    calls = []
    monkeypatch.setattr(run_setup, "keep_freed_memory", lambda: calls.append(1) or True)
    cfg = get_cfg_defaults()
    cfg.merge_from_list(["KEEP_FREED_MEMORY", str(enabled), "DEVICE", "cpu"])
    run_setup.setup_run(cfg)
    assert calls == ([1] if enabled else [])
