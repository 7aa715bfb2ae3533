"""Shared pytest fixtures: paths to bundled data, the vendored test fixtures and the shared data.

The default (fast) suite reads only what the repository holds: the bundled NYC months and the tiny
cuts under ``tests/fixtures/<dataset>/`` (each with a SOURCE.md).  The full data sets in the
workspace's ``../shared/data`` are read only by tests marked ``slow`` (CI runs ``-m slow`` with it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

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


# ---------------------------------------------------------------- vendored cuts of the shared data sets
#: RL4AMOD Rome cut to 4 regions and 08:00-08:59 (calibrated_parameters.json beside it).
ROME_FIXTURE = FIXTURES / "amod_macro_scenarios_rl4amod" / "scenario_rome.json.gz"
#: electric-AMoD NY_5 cut to 3 regions and 8 steps.
EAMOD_FIXTURE = FIXTURES / "eamod_nyc_graph_rl" / "NY_3"
#: 44 ACN-Data sessions (Caltech, May-June 2021).
ACN_FIXTURE = FIXTURES / "ev_charging_acn_caltech_2021" / "acndata_sessions.json.gz"
#: CHARGED Melbourne: stations 1, 2, 10 for 72 hours.
MELBOURNE_FIXTURE = FIXTURES / "ev_charging_charged_melbourne"
#: ST-EVCDP Shenzhen: 4 charger zones.
SHENZHEN_FIXTURE = FIXTURES / "shenzhen_charging_zones_st_evcdp"


def _shared(request, *parts: str) -> Path:
    return request.getfixturevalue("shared_data").joinpath(*parts)


#: a fixture parametrised over the vendored cut (default suite) and the full file (``slow``, needs ../shared)
CUT_AND_FULL = ["cut", pytest.param("full", marks=pytest.mark.slow)]


class AcnFile(NamedTuple):
    """An ACN sessions file and the facts the tests check on it (from its SOURCE.md)."""

    path: Path
    sessions: int
    no_user: int
    stations: int
    june: int  # sessions connected in June 2021 (local time)


@pytest.fixture(params=CUT_AND_FULL)
def acn_file(request) -> AcnFile:
    """The ACN fixture (44 sessions) by default; the full 2,114-session file in the slow run."""
    if request.param == "cut":
        return AcnFile(ACN_FIXTURE, 44, 15, 11, 41)
    return AcnFile(_shared(request, "ev_charging_acn_caltech_2021", "acndata_sessions.json.gz"), 2114, 203, 42, 442)


@pytest.fixture(params=CUT_AND_FULL)
def rome(request) -> Path:
    """RL4AMOD Rome: the 4-region cut by default, the full scenario in the slow run."""
    if request.param == "cut":
        return ROME_FIXTURE
    return _shared(request, "amod_macro_scenarios_rl4amod", "scenario_rome.json.gz")


@pytest.fixture(params=CUT_AND_FULL)
def eamod(request) -> Path:
    """An electric-AMoD graph folder: the NY_3 cut by default, the full NY_5 in the slow run."""
    if request.param == "cut":
        return EAMOD_FIXTURE
    return _shared(request, "eamod_nyc_graph_rl", "NY_5")
