"""Daily energy needs per driver (:class:`DailyNeeds`): from a table, or from charging sessions.

Charging sessions come from the one ACN-Data reader, :func:`data_pipeline.readers.read_acn_sessions`
(times local to the site: the record's ``timezone`` field, else America/Los_Angeles, the ACN sites'
zone); :func:`daily_needs_from_sessions` turns its frame into daily needs, and
:func:`read_acn_sessions` does both for a file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from data_pipeline import readers
from drbalance.errors import ConfigError, DataError
from drbalance.planning.battery_sharing.checks import check_int

#: Miles per kWh the paper assumes to turn daily mileage into energy (ref. [24] there).
MILES_PER_KWH = 3.0


@dataclass(frozen=True)
class DailyNeeds:
    """Daily energy needs per driver, one row per (driver, day).

    table: columns ``driver`` (str), ``day`` (datetime64, local calendar day), ``kwh`` (float >= 0).
    min_days: drivers with fewer days than this are not eligible for sampling; they stay in
        ``table`` and are listed in ``short_drivers`` (driver -> number of days).
    notes: what the reader did besides the rows (e.g. sessions without a driver id), one line each.
    """

    table: pd.DataFrame
    min_days: int
    source: str
    short_drivers: pd.Series
    notes: tuple[str, ...] = ()

    @property
    def days_per_driver(self) -> pd.Series:
        return self.table.groupby("driver", sort=True).size()

    @property
    def eligible_drivers(self) -> list[str]:
        counts = self.days_per_driver
        return counts.index[counts >= self.min_days].tolist()

    def report(self) -> dict:
        """Counts for a run record: drivers in the table, eligible, and those with too few days."""
        counts = self.days_per_driver
        return {
            "source": self.source,
            "drivers": int(counts.size),
            "driver_days": int(len(self.table)),
            "min_days": int(self.min_days),
            "eligible_drivers": len(self.eligible_drivers),
            "drivers_with_too_few_days": int(self.short_drivers.size),
            "notes": list(self.notes),
        }


def _finish_needs(table: pd.DataFrame, min_days: int, source: str, notes: Sequence[str]) -> DailyNeeds:
    check_int("min_days", min_days, 1)
    table = (
        table.groupby(["driver", "day"], sort=True, as_index=False)["kwh"].sum().reset_index(drop=True)
    )
    counts = table.groupby("driver", sort=True).size()
    short = counts[counts < min_days].rename("days")
    needs = DailyNeeds(table=table, min_days=int(min_days), source=source, short_drivers=short, notes=tuple(notes))
    if not needs.eligible_drivers:
        raise DataError(
            f"{source}: no driver has at least min_days={min_days} days of data (most: "
            f"{int(counts.max()) if counts.size else 0}); lower min_days"
        )
    return needs


def read_needs_table(
    source: str | Path | pd.DataFrame,
    *,
    miles_per_kwh: float = MILES_PER_KWH,
    min_days: int = 10,
) -> DailyNeeds:
    """Read daily needs from a table with columns ``driver``, ``day`` and ``kwh`` or ``miles``.

    source: a DataFrame or a ``.csv`` / ``.parquet`` file.  Rows with the same (driver, day) are
        summed (a trip table works as is).  ``miles`` are turned into kWh with ``miles_per_kwh``
        (default 3 mi/kWh, as in the paper).
    Raises DataError naming the missing column, unparsable days, or negative / missing needs.
    """
    if not miles_per_kwh > 0:
        raise ConfigError(f"miles_per_kwh must be positive; got {miles_per_kwh}")
    name = "table"
    if not isinstance(source, pd.DataFrame):
        path = Path(source)
        name = str(path)
        if not path.is_file():
            raise DataError(f"needs table {path} does not exist; pass a .csv or .parquet file")
        if path.suffix.lower() not in (".parquet", ".csv", ".gz"):
            raise DataError(f"needs table {path}: unknown format {path.suffix!r}; use .csv or .parquet")
        try:
            frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
        except Exception as exc:  # pandas/pyarrow raise many types for an empty, truncated or garbled file
            raise DataError(f"needs table {path}: cannot read it ({type(exc).__name__}: {exc}); "
                            "pass a .csv or .parquet file with columns driver, day and kwh or miles") from None
    else:
        frame = source
    missing = [c for c in ("driver", "day") if c not in frame.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {missing}; expected driver, day and kwh or miles")
    has_kwh, has_miles = "kwh" in frame.columns, "miles" in frame.columns
    if has_kwh == has_miles:
        raise DataError(
            f"{name}: need exactly one of the columns 'kwh' or 'miles' (found columns {list(frame.columns)})"
        )
    raw = pd.to_numeric(frame["kwh" if has_kwh else "miles"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(raw) | (raw < 0)
    if bad.any():
        raise DataError(
            f"{name}: {int(bad.sum())} row(s) with a missing, non-numeric or negative "
            f"{'kwh' if has_kwh else 'miles'} value (first at row {int(np.flatnonzero(bad)[0])}); fix or drop them"
        )
    try:
        with warnings.catch_warnings():  # pandas' "could not infer format" note: the parse itself decides
            warnings.simplefilter("ignore", UserWarning)
            day = pd.to_datetime(frame["day"]).dt.normalize()
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name}: cannot parse column 'day' as dates ({exc}); use YYYY-MM-DD") from exc
    if frame["driver"].isna().any():
        raise DataError(f"{name}: {int(frame['driver'].isna().sum())} row(s) without a driver id; fix or drop them")
    kwh = raw if has_kwh else raw / miles_per_kwh
    table = pd.DataFrame({"driver": frame["driver"].astype(str).to_numpy(), "day": day.to_numpy(), "kwh": kwh})
    notes = [] if has_kwh else [f"miles converted at {miles_per_kwh} mi/kWh"]
    return _finish_needs(table, min_days, name, notes)


def daily_needs_from_sessions(
    sessions: pd.DataFrame,
    *,
    min_days: int = 10,
    source: str = "sessions",
    notes: Sequence[str] = (),
) -> DailyNeeds:
    """Daily energy per driver from a charging-sessions frame (:func:`data_pipeline.readers.read_acn_sessions`).

    sessions: columns ``user_id``, ``connect_time`` (naive local time of the site) and ``kwh``; an
        optional ``timezone`` column (the zone the times are local to) is summarised in ``notes``.
    Each session's ``kwh`` goes to its ``user_id`` and to the calendar day of its ``connect_time``;
    a driver's daily need is the day's sum.  Days without a session are absent (not zero), so the
    distribution is that of energy on charging days.  Sessions without a user id are counted in
    ``notes`` and left out (they belong to no driver).  ``notes`` given are kept first.
    """
    missing = [c for c in ("user_id", "connect_time", "kwh") if c not in sessions.columns]
    if missing:
        raise DataError(f"{source}: sessions frame lacks column(s) {missing}; read it with "
                        "data_pipeline.readers.read_acn_sessions")
    notes = list(notes)
    no_user = sessions["user_id"].isna().to_numpy()
    if no_user.any():
        notes.append(f"{int(no_user.sum())} of {len(sessions)} sessions have no userID and were left out")
    used = sessions.loc[~no_user]
    kwh = pd.to_numeric(used["kwh"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(kwh) | (kwh < 0)
    if bad.any():
        raise DataError(f"{source}: {int(bad.sum())} session(s) with missing or negative kwh")
    connect = pd.to_datetime(used["connect_time"])
    if connect.isna().any():
        raise DataError(f"{source}: {int(connect.isna().sum())} session(s) without a connection time")
    if getattr(connect.dt, "tz", None) is not None:
        raise DataError(f"{source}: connect_time carries a time zone; pass naive local times")
    if "timezone" in used.columns:
        zones = used["timezone"].astype(str).value_counts(sort=False).sort_index()
        notes.append("days are local calendar days of the sessions' sites: "
                     + ", ".join(f"{zone} ({count} sessions)" for zone, count in zones.items()))
    day = connect.dt.normalize().astype("datetime64[ns]")
    table = pd.DataFrame({"driver": used["user_id"].astype(str).to_numpy(), "day": day.to_numpy(), "kwh": kwh})
    return _finish_needs(table, min_days, source, notes)


def read_acn_sessions(path: str | Path, *, min_days: int = 10) -> DailyNeeds:
    """Daily energy per driver from an ACN-Data sessions file (JSON list, optionally gzip-compressed).

    Reads the file with :func:`data_pipeline.readers.read_acn_sessions` (the one ACN reader; its time
    zone rule: local time of the site, the record's ``timezone`` field or else America/Los_Angeles)
    and passes the accepted sessions to :func:`daily_needs_from_sessions`.  Sessions the reader
    rejects (missing or reversed times, missing station, bad energy, duplicates) are counted by
    reason in ``notes``.
    """
    ingested = readers.read_acn_sessions(path)
    report = ingested.report
    notes = []
    if report.rows_rejected:
        counts = ", ".join(f"{k}: {v}" for k, v in report.by_reason.items() if v)
        notes.append(f"{report.rows_rejected} of {report.rows_read} sessions rejected by the reader ({counts})")
    needs = daily_needs_from_sessions(ingested.frame, min_days=min_days, source=str(path), notes=notes)
    return replace(needs, notes=needs.notes + (f"time zone rule: {readers.ACN_TIMEZONE_RULE}",))
