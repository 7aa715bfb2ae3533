"""ACN-Data charging sessions (Caltech, JPL, Office001): the one reader of ACN session JSON.

Time zone rule
--------------
ACN-Data stamps times as RFC-1123 GMT (``"Sat, 01 May 2021 20:42:47 GMT"``).  Every time in the
returned frame is the naive **local time of the session's site**: the record's ``timezone`` field
(an IANA name), or, when a record has no ``timezone`` field (or it is null/empty),
:data:`ACN_SITE_TIMEZONE` = ``America/Los_Angeles``, the zone of every ACN site (all three are in
California).  The zone each session was converted with is kept in the frame's ``timezone`` column.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from data_pipeline.readers.common import Ingested
from data_pipeline.validate import SESSION_REJECT_REASONS, RejectReport, classify, rejected_frame, require_columns
from drbalance.errors import DataError

#: Zone of the ACN sites, used for records without a ``timezone`` field.
ACN_SITE_TIMEZONE = "America/Los_Angeles"
#: The rule above in one line, for reports.
ACN_TIMEZONE_RULE = (
    f"times are local to the session's site: the record's 'timezone' field, or {ACN_SITE_TIMEZONE} "
    "(the ACN sites' zone) when the record has none"
)
#: Format of ACN-Data timestamps (RFC-1123, GMT).
ACN_TIME_FORMAT = "%a, %d %b %Y %H:%M:%S %Z"


def read_acn_sessions(path: str | Path, period: tuple[str, str] | None = None) -> Ingested:
    """Read ACN-Data charging sessions (a JSON list, plain or gzip) into local-time sessions.

    Times follow the module's time zone rule (:data:`ACN_TIMEZONE_RULE`): local time of the site,
    from the record's ``timezone`` field, else America/Los_Angeles.  The API's ``{"_items": [...]}``
    page form is accepted too.

    Returns
    -------
    :class:`Ingested` whose frame has one row per accepted session: ``session_id``, ``station_id``,
    ``user_id`` (string, missing as <NA>), ``connect_time``, ``disconnect_time``, ``done_time``
    (naive local time; ``done_time`` may be NaT), ``kwh`` (kWh delivered), ``requested_kwh`` and
    ``requested_miles`` (from ``userInputs``, NaN when absent), ``timezone`` (the zone the times are
    local to), ``source``, ``row``.  ``period`` filters on the local connection date (inclusive).
    Rows are rejected with the reasons of :data:`~data_pipeline.validate.SESSION_REJECT_REASONS`.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError as exc:
        raise DataError(f"ACN sessions file {path} not found") from exc
    except (json.JSONDecodeError, OSError, UnicodeDecodeError, EOFError, zlib.error) as exc:  # EOFError: truncated .gz
        raise DataError(f"{path}: not a readable JSON file ({type(exc).__name__}: {exc}); re-download it") from exc
    if isinstance(data, dict) and "_items" in data:  # raw API page
        data = data["_items"]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of session objects, got {type(data).__name__}")
    raw = pd.DataFrame.from_records([d if isinstance(d, dict) else {} for d in data])
    required = ["sessionID", "stationID", "connectionTime", "disconnectTime", "kWhDelivered"]
    require_columns(raw.columns, required, str(path), "Expected ACN-Data session records")
    n = len(raw)
    zone = _site_timezones(raw, path)

    def local(col: str) -> pd.Series:
        out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
        if col not in raw:
            return out
        text = raw[col].where(raw[col].map(lambda v: isinstance(v, str)))  # a number or list is no time: NaT
        t = pd.to_datetime(text, errors="coerce", utc=True, format=ACN_TIME_FORMAT)
        for name in pd.unique(zone):
            rows = (zone == name).to_numpy()
            out[rows] = t[rows].dt.tz_convert(name).dt.tz_localize(None).astype("datetime64[ns]").to_numpy()
        return out

    con, dis, done = local("connectionTime"), local("disconnectTime"), local("doneChargingTime")
    kwh = pd.to_numeric(raw["kWhDelivered"], errors="coerce").to_numpy(float)
    inputs = raw["userInputs"] if "userInputs" in raw else pd.Series([None] * n)
    req_kwh = np.array([_last_input(u, "kWhRequested") for u in inputs], dtype=float)
    req_mi = np.array([_last_input(u, "milesRequested") for u in inputs], dtype=float)
    missing_t = (con.isna() | dis.isna()).to_numpy()
    if period is not None:
        start = pd.Timestamp(period[0]).normalize()
        stop = pd.Timestamp(period[1]).normalize() + pd.Timedelta(days=1)
        outside = ~missing_t & ((con < start) | (con >= stop)).to_numpy()
    else:
        outside = np.zeros(n, bool)
    station_missing = raw["stationID"].isna().to_numpy()
    not_after = ~missing_t & (dis <= con).to_numpy()
    nonfinite = ~np.isfinite(kwh)
    with np.errstate(invalid="ignore"):
        negative = kwh < 0
    conditions = [("missing_timestamp", missing_t), ("outside_period", outside),
                  ("missing_station", station_missing), ("disconnect_not_after_connect", not_after),
                  ("non_finite_energy", nonfinite), ("negative_energy", negative)]
    code = classify(conditions, n)
    ok = np.flatnonzero(code == 0)
    dup = raw["sessionID"].iloc[ok].duplicated(keep="first").to_numpy()
    code[ok[dup]] = len(conditions) + 1
    reasons = [c[0] for c in conditions] + ["duplicate"]
    assert reasons == list(SESSION_REJECT_REASONS)
    keep = code == 0
    user = raw["userID"] if "userID" in raw else pd.Series([None] * n)
    frame = pd.DataFrame({
        "session_id": raw["sessionID"].astype(str).to_numpy()[keep],
        "station_id": raw["stationID"].astype(str).to_numpy()[keep],
        "user_id": pd.array([_user_label(u) for u in user[keep]], dtype="string"),
        "connect_time": con.to_numpy()[keep], "disconnect_time": dis.to_numpy()[keep],
        "done_time": done.to_numpy()[keep], "kwh": kwh[keep],
        "requested_kwh": req_kwh[keep], "requested_miles": req_mi[keep],
        "timezone": pd.Categorical(zone.to_numpy()[keep]),
        "source": path.name, "row": np.flatnonzero(keep).astype(np.int64),
    })
    report = RejectReport(n, int(keep.sum()), rejected_frame(path.name, code, reasons), dict(SESSION_REJECT_REASONS))
    return Ingested(frame, report)


def _site_timezones(raw: pd.DataFrame, source: str | Path = "<sessions>") -> pd.Series:
    """Per record, the zone its times are local to: ``timezone`` if set, else :data:`ACN_SITE_TIMEZONE`.

    Raises :class:`DataError` naming an unknown zone.
    """
    if "timezone" in raw:
        given = raw["timezone"]
        given = given.where(given.notna() & (given.astype(str).str.strip() != ""), ACN_SITE_TIMEZONE)
    else:
        given = pd.Series(ACN_SITE_TIMEZONE, index=raw.index)
    zone = given.astype(str).str.strip()
    for name in pd.unique(zone):
        try:
            pd.Timestamp(0, tz="UTC").tz_convert(name)
        except Exception as exc:  # unknown zone name: pytz/zoneinfo raise several types
            raise DataError(f"{source}: unknown timezone {name!r} in the 'timezone' field ({exc})") from exc
    return zone


def _user_label(value) -> str | None:
    """A user ID as text; missing, and anything that is not a scalar (a malformed record), is None."""
    if isinstance(value, (str, int, float, np.integer, np.floating)) and not pd.isna(value):
        return str(value)
    return None


def _last_input(inputs, key: str) -> float:
    if not isinstance(inputs, list) or not inputs:
        return np.nan
    val = inputs[-1].get(key) if isinstance(inputs[-1], dict) else None
    try:
        return float(val) if val is not None else np.nan
    except (TypeError, ValueError):
        return np.nan
