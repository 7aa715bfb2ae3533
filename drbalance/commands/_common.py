"""Helpers shared by the CLI sub-commands: JSON output and period parsing."""

from __future__ import annotations

import pandas as pd

from data_pipeline.regions import estimate_circuity
from drbalance.errors import ConfigError
from drbalance.io import jsonable, write_json  # noqa: F401 - the commands write through these


def parse_period(text: str, option: str) -> tuple[str, str]:
    """Parse ``"YYYY-MM-DD:YYYY-MM-DD"`` (both ends inclusive) into two ISO date strings."""
    parts = text.split(":")
    if len(parts) != 2:
        raise ConfigError(f"{option} expects START:END dates, e.g. 2021-01-01:2021-02-28; got {text!r}")
    try:
        start, end = (pd.Timestamp(p).normalize() for p in parts)
    except ValueError as exc:
        raise ConfigError(f"{option}: cannot parse dates in {text!r} ({exc}); use YYYY-MM-DD:YYYY-MM-DD") from exc
    if end < start:
        raise ConfigError(f"{option}: end {end.date()} is before start {start.date()}")
    return str(start.date()), str(end.date())


def resolve_circuity(option: str, trips, zones) -> float:
    """``--circuity`` value: ``"auto"`` estimates it from the trips' metered distances
    (:func:`data_pipeline.regions.estimate_circuity`), anything else must be a number."""
    if option == "auto":
        return estimate_circuity(trips, zones)
    try:
        return float(option)
    except ValueError:
        raise ConfigError(f"--circuity must be a number >= 1 or 'auto', got {option!r}") from None
