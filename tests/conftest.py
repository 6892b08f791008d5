"""Shared fixtures. Real public captures live in ../shared/pcaps beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROJECT_PCAPS = REPO / "pcaps"

# Commands run in (and by) the tests compile their kernels with numba's JIT, into numba's
# cache: an ahead-of-time build (burstwatch/aot.py) would be rebuilt for every edit of a
# source file. tests/test_aot.py builds one in a folder of its own.
os.environ.setdefault("BURSTWATCH_AHEAD", "0")


def _shared_pcaps_dir() -> Path:
    env = os.environ.get("BURSTWATCH_SHARED_PCAPS")
    return Path(env) if env else REPO.parent / "shared" / "pcaps"


@pytest.fixture(scope="session")
def shared_pcaps() -> Path:
    """The folder of real public captures; tests using it skip where it is absent."""
    path = _shared_pcaps_dir()
    if not (path / "CATALOG.md").is_file():
        pytest.skip(f"real public captures not found at {path} (set BURSTWATCH_SHARED_PCAPS)")
    return path
