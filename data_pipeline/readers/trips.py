"""Trip records: NYC TLC files (layout recognised by columns) and any trips table with a mapping.

Canonical trips frame (one row per accepted trip)::

    pickup_time, dropoff_time : datetime64 (naive local time)
    pickup_zone, dropoff_zone : zone labels as in the zone table index
    distance_km              : float (NaN when the source has no distance column)
    duration_min             : float
    source                   : file name (categorical);  row : 0-based row number in that file
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from data_pipeline.readers.common import Ingested, read_table, table_columns, to_datetime, to_float
from data_pipeline.units import KM_PER_MILE
from data_pipeline.validate import TRIP_REJECT_REASONS, RejectReport, classify, require_columns
from drbalance.errors import DataError


@dataclass(frozen=True)
class TripColumns:
    """Where the canonical trip fields live in a source table.

    ``distance`` and ``fare`` are optional (None when the source has no such column);
    ``distance_unit`` is ``"km"`` or ``"mi"``.
    """

    pickup_time: str
    dropoff_time: str
    pickup_zone: str
    dropoff_zone: str
    distance: str | None = None
    fare: str | None = None
    distance_unit: str = "km"

    def required(self) -> list[str]:
        return [c for c in (self.pickup_time, self.dropoff_time, self.pickup_zone, self.dropoff_zone,
                            self.distance, self.fare) if c is not None]


#: NYC TLC layouts, recognised by their columns (first match wins).
TLC_FORMATS: dict[str, TripColumns] = {
    "green": TripColumns("lpep_pickup_datetime", "lpep_dropoff_datetime", "PULocationID", "DOLocationID",
                         "trip_distance", "fare_amount", "mi"),
    "yellow": TripColumns("tpep_pickup_datetime", "tpep_dropoff_datetime", "PULocationID", "DOLocationID",
                          "trip_distance", "fare_amount", "mi"),
    "fhvhv": TripColumns("pickup_datetime", "dropoff_datetime", "PULocationID", "DOLocationID",
                         "trip_miles", "base_passenger_fare", "mi"),
    "fhv": TripColumns("pickup_datetime", "dropOff_datetime", "PUlocationID", "DOlocationID", None, None, "mi"),
}


def detect_tlc_format(columns: Iterable[str], source: str = "<table>") -> str:
    """Name of the TLC layout (``green``, ``yellow``, ``fhvhv``, ``fhv``) whose columns are all present."""
    cols = set(columns)
    for name, spec in TLC_FORMATS.items():
        if set(spec.required()) <= cols:
            return name
    raise DataError(
        f"{source}: not a recognised NYC TLC trip file; expected e.g. green columns "
        f"{TLC_FORMATS['green'].required()} or yellow {TLC_FORMATS['yellow'].required()}; "
        f"found {sorted(cols)}. For other layouts use read_trips() with a TripColumns mapping."
    )


def read_tlc_trips(paths: str | Path | Sequence[str | Path], zones: pd.DataFrame,
                   period: tuple[str, str] | None = None, max_trip_minutes: float = 360.0,
                   reject_negative_fare: bool = True) -> Ingested:
    """Read NYC TLC trip files (green/yellow/FHV/HVFHV, parquet or CSV), recognising the layout.

    Parameters
    ----------
    paths : one or several files (their layouts may differ).
    zones : canonical zone frame from :func:`read_nyc_zones`.
    period : ``(first_day, last_day)`` inclusive ISO dates on the pick-up time; None keeps all.
    max_trip_minutes : trips lasting longer are rejected as ``duration_too_long`` (default 6 h).
    reject_negative_fare : reject negative-fare rows (TLC reversal records) as ``negative_fare``.

    Returns
    -------
    :class:`Ingested` with the canonical trips frame (see module docstring) and the report.
    """
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if not paths:
        raise DataError("no trip files given; pass one or more TLC parquet/CSV files")
    specs = []
    for p in paths:
        cols = table_columns(p)
        specs.append(TLC_FORMATS[detect_tlc_format(cols, str(p))])
    return _read_trip_files(paths, specs, zones, period, max_trip_minutes, reject_negative_fare)


def read_trips(paths: str | Path | Sequence[str | Path], columns: TripColumns, zones: pd.DataFrame,
               period: tuple[str, str] | None = None, max_trip_minutes: float = 360.0,
               reject_negative_fare: bool = True) -> Ingested:
    """Read any trips table (CSV or parquet) given a :class:`TripColumns` mapping.

    Zone values are matched against ``zones.index`` (:func:`read_zone_table`).  Other arguments as
    in :func:`read_tlc_trips`.
    """
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if not paths:
        raise DataError("no trip files given")
    return _read_trip_files(paths, [columns] * len(paths), zones, period, max_trip_minutes, reject_negative_fare)


def _read_trip_files(paths: list[Path], specs: list[TripColumns], zones: pd.DataFrame,
                     period: tuple[str, str] | None, max_trip_minutes: float,
                     reject_negative_fare: bool) -> Ingested:
    if not (max_trip_minutes > 0):
        raise DataError(f"max_trip_minutes must be positive, got {max_trip_minutes}")
    parts = []
    for path, spec in zip(paths, specs):
        raw = read_table(path, columns=spec.required())
        require_columns(raw.columns, spec.required(), str(path))
        parts.append(canonical_trips(raw, spec, path.name))
    if len(parts) > 1:
        src = union_categoricals([p["source"].array for p in parts])  # stays categorical, no object fallback
        trips = pd.concat([p.drop(columns="source") for p in parts], ignore_index=True)
        trips["source"] = src
    else:
        trips = parts[0]
    return validate_trips(trips, zones, period, max_trip_minutes, reject_negative_fare)


def canonical_trips(raw: pd.DataFrame, spec: TripColumns, source: str) -> pd.DataFrame:
    """One source table in canonical layout (plus ``fare``, ``has_distance``), before any check.

    Miles are converted to km (:data:`~data_pipeline.units.KM_PER_MILE`); ``source`` is the file name.
    """
    n = len(raw)
    factor = KM_PER_MILE if spec.distance_unit == "mi" else 1.0
    if spec.distance_unit not in ("km", "mi"):
        raise DataError(f"distance_unit must be 'km' or 'mi', got {spec.distance_unit!r}")
    dist = (to_float(raw[spec.distance]) * factor) if spec.distance else np.full(n, np.nan)
    fare = to_float(raw[spec.fare]) if spec.fare else np.zeros(n)
    return pd.DataFrame({
        "pickup_time": to_datetime(raw[spec.pickup_time]),
        "dropoff_time": to_datetime(raw[spec.dropoff_time]),
        "pickup_zone": raw[spec.pickup_zone].to_numpy(),
        "dropoff_zone": raw[spec.dropoff_zone].to_numpy(),
        "distance_km": dist,
        "fare": fare,
        "has_distance": np.full(n, spec.distance is not None),
        "source": pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [source]),
        "row": np.arange(n, dtype=np.int64),
    })


class TripChecks(NamedTuple):
    """Per-row results of the trip checks (every array has shape ``(n_rows,)``).

    ``code``: 0 = accepted, else 1 + position of the first failing reason in
    :data:`TRIP_REJECT_REASONS` (duplicates not yet marked); ``pu_code``/``do_code``: position of the
    zone in ``zones.index`` (-1 unknown, -2 missing); ``pu_t``/``do_t``: ``datetime64[ns]``;
    ``dur_min``: minutes (NaN without both times); ``dist``: km.
    """

    code: np.ndarray
    pu_code: np.ndarray
    do_code: np.ndarray
    pu_t: np.ndarray
    do_t: np.ndarray
    dur_min: np.ndarray
    dist: np.ndarray


#: Reject reasons in the order of :func:`check_trips`'s codes (``duplicate`` last, marked separately).
REASON_NAMES = list(TRIP_REJECT_REASONS)


def check_trips(trips: pd.DataFrame, zones: pd.DataFrame, period: tuple[str, str] | None = None,
                max_trip_minutes: float = 360.0, reject_negative_fare: bool = True) -> TripChecks:
    """Every check of :func:`validate_trips` but the duplicate one, row by row (no frame is built).

    Shared by the in-memory reader and the streamed one (:mod:`data_pipeline.readers.streaming`), so
    the rules live in one place.
    """
    n = len(trips)
    pu_t = trips["pickup_time"].to_numpy(dtype="datetime64[ns]")
    do_t = trips["dropoff_time"].to_numpy(dtype="datetime64[ns]")
    missing_t = np.isnat(pu_t) | np.isnat(do_t)
    if period is not None:
        start = np.datetime64(pd.Timestamp(period[0]).normalize().to_datetime64(), "ns")
        stop = np.datetime64((pd.Timestamp(period[1]).normalize() + pd.Timedelta(days=1)).to_datetime64(), "ns")
        outside = ~missing_t & ((pu_t < start) | (pu_t >= stop))
    else:
        outside = np.zeros(n, bool)
    zone_index = zones.index
    pu_code = _zone_codes(trips["pickup_zone"], zone_index)
    do_code = _zone_codes(trips["dropoff_zone"], zone_index)
    missing_zone = (pu_code == -2) | (do_code == -2)
    unknown_zone = (pu_code == -1) | (do_code == -1)
    located = zones["lat"].notna().to_numpy() & zones["lon"].notna().to_numpy()
    no_loc = np.zeros(n, bool)
    ok_pu, ok_do = pu_code >= 0, do_code >= 0
    no_loc[ok_pu] |= ~located[pu_code[ok_pu]]
    no_loc[ok_do] |= ~located[do_code[ok_do]]
    with np.errstate(invalid="ignore"):
        dur_min = (do_t - pu_t).astype("timedelta64[s]").astype(float) / 60.0
    dur_min[missing_t] = np.nan
    not_after = ~missing_t & (dur_min <= 0)
    too_long = ~missing_t & (dur_min > max_trip_minutes)
    dist = trips["distance_km"].to_numpy(float)
    has_dist = trips["has_distance"].to_numpy(bool) if "has_distance" in trips else np.isfinite(dist)
    nonfinite = has_dist & ~np.isfinite(dist)
    with np.errstate(invalid="ignore"):
        negative = has_dist & (dist < 0)
    fare = trips["fare"].to_numpy(float) if "fare" in trips else np.zeros(n)
    with np.errstate(invalid="ignore"):
        neg_fare = (fare < 0) if reject_negative_fare else np.zeros(n, bool)

    conditions = [
        ("missing_timestamp", missing_t), ("outside_period", outside), ("missing_zone", missing_zone),
        ("unknown_zone", unknown_zone), ("zone_without_location", no_loc),
        ("dropoff_not_after_pickup", not_after), ("duration_too_long", too_long),
        ("non_finite_distance", nonfinite), ("negative_distance", negative), ("negative_fare", neg_fare),
    ]
    assert [c[0] for c in conditions] + ["duplicate"] == REASON_NAMES, "reason table and checks out of sync"
    return TripChecks(classify(conditions, n), pu_code, do_code, pu_t, do_t, dur_min, dist)


def validate_trips(trips: pd.DataFrame, zones: pd.DataFrame, period: tuple[str, str] | None = None,
                   max_trip_minutes: float = 360.0, reject_negative_fare: bool = True) -> Ingested:
    """Check a frame in canonical layout (plus ``fare``, ``has_distance``) row by row.

    Each row gets the first applicable reason of :data:`TRIP_REJECT_REASONS`, in that order.
    """
    n = len(trips)
    chk = check_trips(trips, zones, period, max_trip_minutes, reject_negative_fare)
    code, pu_code, do_code, pu_t, do_t, dur_min, dist = chk
    zone_index = zones.index
    # Duplicates among rows that passed every other check (the first occurrence is kept).
    ok = np.flatnonzero(code == 0)
    if len(ok):
        # int64 views hash ~7x faster than datetime64 columns (measured in benchmarks/bench_ingest.py)
        key = pd.DataFrame({"a": pu_t[ok].view(np.int64), "b": do_t[ok].view(np.int64), "c": pu_code[ok],
                            "d": do_code[ok],
                            "e": np.where(np.isfinite(dist[ok]), dist[ok], -1.0)})
        dup = key.duplicated(keep="first").to_numpy()
        code[ok[dup]] = len(REASON_NAMES)
    reason_names = REASON_NAMES

    # one category per file: building frames from 225k Python strings cost ~36 ms (pandas 3)
    sources = (trips["source"].astype("category") if "source" in trips
               else pd.Series(["<frame>"] * n, dtype="category")).array
    rows = trips["row"].to_numpy() if "row" in trips else np.arange(n)
    bad = np.flatnonzero(code)
    rej = pd.DataFrame({"source": sources[bad], "row": rows[bad].astype("int64"),
                        "reason": np.asarray(reason_names, dtype=object)[code[bad] - 1]})
    keep = code == 0
    out = pd.DataFrame({
        "pickup_time": trips["pickup_time"].to_numpy()[keep],
        "dropoff_time": trips["dropoff_time"].to_numpy()[keep],
        "pickup_zone": zone_index.to_numpy()[pu_code[keep]],
        "dropoff_zone": zone_index.to_numpy()[do_code[keep]],
        "distance_km": dist[keep],
        "duration_min": dur_min[keep],
        "source": sources[keep],
        "row": rows[keep].astype("int64"),
    })
    report = RejectReport(rows_read=n, rows_accepted=int(keep.sum()), rejected=rej,
                          reasons=dict(TRIP_REJECT_REASONS))
    return Ingested(out, report)


def _zone_codes(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index``; -1 unknown, -2 missing."""
    v = pd.Series(values)
    missing = v.isna().to_numpy()
    if pd.api.types.is_float_dtype(v.dtype) and pd.api.types.is_integer_dtype(index.dtype):
        vals = v.to_numpy(float)
        whole = ~missing & np.isfinite(vals)   # an infinite zone id is unknown (no warning from np.mod)
        whole[whole] = np.mod(vals[whole], 1) == 0
        codes = np.full(len(v), -1, dtype=np.int64)
        codes[whole] = index.get_indexer(vals[whole].astype(np.int64))
    else:
        codes = index.get_indexer(v.to_numpy()).astype(np.int64)
    codes[missing] = -2
    return codes

