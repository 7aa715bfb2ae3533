"""Helpers shared by the CLI sub-commands: JSON output and period parsing."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from drbalance.errors import ConfigError


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf; null says "not defined"
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | Path | None, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON to ``path`` (parent folders created); no-op for None."""
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(payload), indent=2, sort_keys=False) + "\n")


def parse_period(text: str, option: str) -> tuple[str, str]:
    """Parse ``"YYYY-MM-DD:YYYY-MM-DD"`` (both ends inclusive) into two ISO date strings."""
    import pandas as pd

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
        from data_pipeline.regions import estimate_circuity

        return estimate_circuity(trips, zones)
    try:
        return float(option)
    except ValueError:
        raise ConfigError(f"--circuity must be a number >= 1 or 'auto', got {option!r}") from None
