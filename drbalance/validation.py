"""Shared validation of configuration values: one rule per kind of value, one error per bad field.

Every configuration class (:class:`drbalance.config.BalancingConfig`, :class:`drbalance.config.ControllerConfig`,
:class:`drbalance.sim.SimConfig`, :class:`data_pipeline.estimates.EstimateConfig`,
:class:`drbalance.study_config.StudyConfig`, ...) checks its fields with these helpers in ``__post_init__``,
so a bad value raises :class:`drbalance.errors.ConfigError` naming the field when the object is built.
This module imports nothing but the errors (both ``data_pipeline`` and ``drbalance`` use it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real

from drbalance.errors import ConfigError

#: Minutes in a day; a slot length must divide it.
DAY_MINUTES = 1440


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_number(name: str, value, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, allow_none: bool = False):
    """A finite real number within ``[low, high]`` (``low_open``/``high_open`` exclude the ends).

    Returns the value as a float (None passes when ``allow_none``)."""
    if value is None and allow_none:
        return None
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    v = float(value)
    if low is not None and (v < low or (low_open and v == low)):
        raise ConfigError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ConfigError(f"{name} must be {'<' if high_open else '<='} {high:g}, got {value!r}")
    return v


def check_int(name: str, value, *, low: int | None = None, high: int | None = None, allow_none: bool = False):
    """A whole number (int, or a float holding one) within ``[low, high]``; returns an int."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not (isinstance(value, Integral) or (_is_number(value) and float(value).is_integer())):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    v = int(value)
    if low is not None and v < low:
        raise ConfigError(f"{name} must be >= {low}, got {value!r}")
    if high is not None and v > high:
        raise ConfigError(f"{name} must be <= {high}, got {value!r}")
    return v


def check_choice(name: str, value, choices: Iterable, *, allow_none: bool = False):
    """One of ``choices``."""
    if value is None and allow_none:
        return None
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    """A real boolean (``1``/``"yes"`` are refused: TOML and Python both have ``true``/``True``)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def check_slot_minutes(value, name: str = "slot_minutes") -> int:
    """A slot length: whole minutes in 5..60 that divide a day (5, 6, 8, 10, 12, 15, 20, 24, 30, 36, 40,
    45, 60).  The one rule for slot lengths everywhere."""
    if isinstance(value, bool) or not _is_number(value) or not float(value).is_integer() \
            or not (5 <= value <= 60) or DAY_MINUTES % int(value):
        raise ConfigError(f"{name} (the slot length) must be a whole number of minutes in 5..60 dividing 1440 "
                          f"(e.g. 5, 10, 15, 20, 30, 60); got {value!r}")
    return int(value)


def check_horizon(value, slot_minutes: int, name: str = "horizon") -> int:
    """A look-ahead of ``1 .. slots per day`` slots."""
    return check_int(name, value, low=1, high=DAY_MINUTES // int(slot_minutes))


def check_date(name: str, value) -> str:
    """An ISO date ``YYYY-MM-DD``; returns it normalised."""
    import pandas as pd  # lazy (b): ~0.6 s; keeps this module (and drbalance.config) free of pandas

    try:
        ts = pd.Timestamp(value)
        day = None if ts is pd.NaT else str(ts.date())
    except (ValueError, TypeError, OverflowError, NotImplementedError):  # e.g. "notaday", year -1, year 99999
        raise ConfigError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from None
    if day is None or ts != ts.normalize():
        raise ConfigError(f"{name} must be a date YYYY-MM-DD (no time of day), got {value!r}")
    return day


def check_period(name: str, value) -> tuple[str, str]:
    """A ``(start, end)`` pair of ISO dates, both inclusive, ``start <= end``."""
    if isinstance(value, str):
        parts = value.split(":")
    else:
        parts = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(parts) != 2:
        raise ConfigError(f"{name} must be START:END dates, e.g. 2021-01-01:2021-02-28; got {value!r}")
    start, end = check_date(f"{name} start", parts[0]), check_date(f"{name} end", parts[1])
    if end < start:
        raise ConfigError(f"{name}: end {end} is before start {start}")
    return start, end
