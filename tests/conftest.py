"""Shared pytest fixtures: paths to bundled and shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw their examples from a fixed seed (same inputs, same outcome on every run);
# set HYPOTHESIS_PROFILE=explore to let hypothesis search with fresh random examples.
settings.register_profile("deterministic", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def shared_data() -> Path:
    """The workspace's ``../shared/data``; tests needing it skip with a clear message when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent (a user's clone has no ../shared)")
    return SHARED_DATA
