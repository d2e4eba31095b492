"""The Bandai mocap the sample builders read, and a skip marker for clones without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.build_sample_data import DEFAULT_SOURCE

REPO_ROOT = Path(__file__).resolve().parents[1]
# ../shared/data/real/... beside the clone: the builders' default --source.
SOURCE = (REPO_ROOT / DEFAULT_SOURCE).resolve()
needs_shared = pytest.mark.skipif(not SOURCE.is_file(),
                                  reason="needs ../shared/data/real (the Bandai mocap)")
