"""Readers, one per data source: they return validated frames and a :class:`RejectReport`.

Sources
-------
* NYC TLC trip records (green, yellow, FHV, HVFHV; parquet or CSV), format recognised by columns:
  :func:`read_tlc_trips`, zones from :func:`read_nyc_zones`.
* Any city's trips table with a column mapping: :func:`read_trips` with :class:`TripColumns`,
  zones from :func:`read_zone_table`.
* ACN-Data charging sessions (JSON list, optionally gzip): :func:`read_acn_sessions`.
* CHARGED Melbourne hourly charging volumes per station: :func:`read_melbourne_charging`.
* ST-EVCDP Shenzhen charging zones (piles per zone, distances): :func:`read_shenzhen_zones`.

Canonical trips frame (one row per accepted trip)::

    pickup_time, dropoff_time : datetime64 (naive local time)
    pickup_zone, dropoff_zone : zone labels as in the zone table index
    distance_km              : float (NaN when the source has no distance column)
    duration_min             : float
    source                   : file name (categorical);  row : 0-based row number in that file
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np
import pandas as pd

from data_pipeline.validate import (
    SESSION_REJECT_REASONS,
    TRIP_REJECT_REASONS,
    RejectReport,
    classify,
    rejected_frame,
    require_columns,
)
from drbalance.errors import DataError

KM_PER_MILE = 1.609344


class Ingested(NamedTuple):
    """A validated frame and the accounting of the rows it came from."""

    frame: pd.DataFrame
    report: RejectReport


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


# --------------------------------------------------------------------------------------------- zones

def read_zone_table(path: str | Path, id_col: str, lat_col: str, lon_col: str,
                    name_col: str | None = None) -> pd.DataFrame:
    """Read a generic zone table (CSV/parquet) into the canonical zone frame.

    Returns a frame indexed by zone id with columns ``name``, ``lat``, ``lon`` (degrees WGS84;
    NaN where the zone has no location).  Duplicate ids raise :class:`DataError`.
    """
    path = Path(path)
    raw = _read_table(path)
    require_columns(raw.columns, [id_col, lat_col, lon_col] + ([name_col] if name_col else []), str(path))
    if raw[id_col].isna().any():
        raise DataError(f"{path}: column {id_col!r} has {int(raw[id_col].isna().sum())} missing zone ids")
    if raw[id_col].duplicated().any():
        dup = raw.loc[raw[id_col].duplicated(), id_col].tolist()[:5]
        raise DataError(f"{path}: zone ids must be unique in {id_col!r}; duplicated: {dup}")
    out = pd.DataFrame({
        "name": raw[name_col].astype(str).to_numpy() if name_col else raw[id_col].astype(str).to_numpy(),
        "lat": pd.to_numeric(raw[lat_col], errors="coerce").to_numpy(dtype=float),
        "lon": pd.to_numeric(raw[lon_col], errors="coerce").to_numpy(dtype=float),
    }, index=pd.Index(raw[id_col].to_numpy(), name="zone"))
    _check_coordinates(out, path)
    return out


def read_nyc_zones(lookup: str | Path, centroids: str | Path | None = None) -> pd.DataFrame:
    """Read the TLC taxi-zone lookup and the derived centroids into the canonical zone frame.

    Parameters
    ----------
    lookup : path to ``taxi_zone_lookup.csv`` (``LocationID,Borough,Zone,service_zone``).
    centroids : path to ``taxi_zone_centroids_DERIVED.csv`` (one row per shapefile polygon:
        ``LocationID, lon_wgs84, lat_wgs84, area_km2``); default: the file beside ``lookup``.

    Returns
    -------
    Frame indexed by ``LocationID`` (all lookup rows) with ``name``, ``borough``, ``lat``, ``lon``,
    ``area_km2`` and ``location_from`` (the LocationID whose polygons gave the centroid).

    Notes
    -----
    The TLC shapefile has two polygons for ids 56 and 103 and none for 57, 104, 105.  A zone with
    several polygons gets the area-weighted centroid of their union (exact geometry).  A lookup zone
    without a polygon takes the centroid of the zone with the *same borough and zone name* when one
    exists (57 "Corona" -> 56, 104/105 -> 103), recorded in ``location_from``; otherwise (264
    "Unknown", 265 "Outside of NYC") it has no location and trips there are rejected as
    ``zone_without_location``.
    """
    lookup = Path(lookup)
    centroids = Path(centroids) if centroids is not None else lookup.with_name("taxi_zone_centroids_DERIVED.csv")
    lk = _read_table(lookup)
    require_columns(lk.columns, ["LocationID", "Borough", "Zone"], str(lookup),
                    "Expected the TLC taxi_zone_lookup.csv layout")
    if not centroids.is_file():
        raise DataError(f"zone centroids file {centroids} not found; pass centroids=PATH "
                        "(taxi_zone_centroids_DERIVED.csv from the TLC shapefile)")
    ce = _read_table(centroids)
    require_columns(ce.columns, ["LocationID", "lon_wgs84", "lat_wgs84", "area_km2"], str(centroids))
    w = ce["area_km2"].to_numpy(float)
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise DataError(f"{centroids}: area_km2 must be positive and finite in every row")
    ce = ce.assign(wlat=ce["lat_wgs84"] * w, wlon=ce["lon_wgs84"] * w)
    g = ce.groupby("LocationID")[["wlat", "wlon", "area_km2"]].sum()
    cen = pd.DataFrame({"lat": g["wlat"] / g["area_km2"], "lon": g["wlon"] / g["area_km2"],
                        "area_km2": g["area_km2"]})
    lk = lk.drop_duplicates("LocationID").set_index("LocationID")
    out = pd.DataFrame({"name": lk["Zone"].astype(str), "borough": lk["Borough"].astype(str)}, index=lk.index)
    out.index.name = "zone"
    out = out.join(cen, how="left")
    out["location_from"] = pd.Series(np.where(out["lat"].notna(), out.index, -1), index=out.index, dtype="int64")
    # Zones without a polygon: borrow the centroid of the same-named zone, if any.
    have = out[out["lat"].notna()]
    key_to_id = {(b, n): i for i, b, n in zip(have.index, have["borough"], have["name"])}
    for zid in out.index[out["lat"].isna()]:
        src = key_to_id.get((out.at[zid, "borough"], out.at[zid, "name"]))
        if src is not None:
            out.loc[zid, ["lat", "lon", "area_km2"]] = out.loc[src, ["lat", "lon", "area_km2"]].to_numpy()
            out.at[zid, "location_from"] = src
    _check_coordinates(out, centroids)
    return out


def _check_coordinates(zones: pd.DataFrame, path: Path | str) -> None:
    lat, lon = zones["lat"].to_numpy(), zones["lon"].to_numpy()
    ok = np.isnan(lat) | ((lat >= -90) & (lat <= 90))
    ok &= np.isnan(lon) | ((lon >= -180) & (lon <= 180))
    if not ok.all():
        bad = zones.index[~ok].tolist()[:5]
        raise DataError(f"{path}: latitude/longitude out of range for zones {bad}; expected WGS84 degrees")


# --------------------------------------------------------------------------------------------- trips

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
        cols = _table_columns(p)
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
        raw = _read_table(path, columns=spec.required())
        require_columns(raw.columns, spec.required(), str(path))
        parts.append(_canonical_trips(raw, spec, path.name))
    if len(parts) > 1:
        from pandas.api.types import union_categoricals

        src = union_categoricals([p["source"].array for p in parts])  # stays categorical, no object fallback
        trips = pd.concat([p.drop(columns="source") for p in parts], ignore_index=True)
        trips["source"] = src
    else:
        trips = parts[0]
    return validate_trips(trips, zones, period, max_trip_minutes, reject_negative_fare)


def _canonical_trips(raw: pd.DataFrame, spec: TripColumns, source: str) -> pd.DataFrame:
    n = len(raw)
    factor = KM_PER_MILE if spec.distance_unit == "mi" else 1.0
    if spec.distance_unit not in ("km", "mi"):
        raise DataError(f"distance_unit must be 'km' or 'mi', got {spec.distance_unit!r}")
    dist = (_to_float(raw[spec.distance]) * factor) if spec.distance else np.full(n, np.nan)
    fare = _to_float(raw[spec.fare]) if spec.fare else np.zeros(n)
    return pd.DataFrame({
        "pickup_time": _to_datetime(raw[spec.pickup_time]),
        "dropoff_time": _to_datetime(raw[spec.dropoff_time]),
        "pickup_zone": raw[spec.pickup_zone].to_numpy(),
        "dropoff_zone": raw[spec.dropoff_zone].to_numpy(),
        "distance_km": dist,
        "fare": fare,
        "has_distance": np.full(n, spec.distance is not None),
        "source": pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [source]),
        "row": np.arange(n, dtype=np.int64),
    })


def validate_trips(trips: pd.DataFrame, zones: pd.DataFrame, period: tuple[str, str] | None = None,
                   max_trip_minutes: float = 360.0, reject_negative_fare: bool = True) -> Ingested:
    """Check a frame in canonical layout (plus ``fare``, ``has_distance``) row by row.

    Each row gets the first applicable reason of :data:`TRIP_REJECT_REASONS`, in that order.
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
    code = classify(conditions, n)
    # Duplicates among rows that passed every other check (the first occurrence is kept).
    ok = np.flatnonzero(code == 0)
    if len(ok):
        # int64 views hash ~7x faster than datetime64 columns (measured in benchmarks/bench_ingest.py)
        key = pd.DataFrame({"a": pu_t[ok].view(np.int64), "b": do_t[ok].view(np.int64), "c": pu_code[ok],
                            "d": do_code[ok],
                            "e": np.where(np.isfinite(dist[ok]), dist[ok], -1.0)})
        dup = key.duplicated(keep="first").to_numpy()
        code[ok[dup]] = len(conditions) + 1
    reason_names = [c[0] for c in conditions] + ["duplicate"]
    assert reason_names == list(TRIP_REJECT_REASONS), "reason table and checks out of sync"

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
        whole = ~missing & (np.mod(vals, 1) == 0)
        codes = np.full(len(v), -1, dtype=np.int64)
        codes[whole] = index.get_indexer(vals[whole].astype(np.int64))
    else:
        codes = index.get_indexer(v.to_numpy()).astype(np.int64)
    codes[missing] = -2
    return codes


# ------------------------------------------------------------------------------------ charging data

def read_acn_sessions(path: str | Path, period: tuple[str, str] | None = None) -> Ingested:
    """Read ACN-Data charging sessions (a JSON list, plain or gzip) into local-time sessions.

    Returns
    -------
    :class:`Ingested` whose frame has one row per accepted session: ``session_id``, ``station_id``,
    ``user_id`` (string, missing as <NA>), ``connect_time``, ``disconnect_time``, ``done_time``
    (naive local time of the record's ``timezone``; ``done_time`` may be NaT), ``kwh`` (kWh
    delivered), ``requested_kwh`` and ``requested_miles`` (from ``userInputs``, NaN when absent),
    ``source``, ``row``.  ``period`` filters on the local connection date (inclusive).
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError as exc:
        raise DataError(f"ACN sessions file {path} not found") from exc
    except (json.JSONDecodeError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable JSON file ({exc})") from exc
    if isinstance(data, dict) and "_items" in data:  # raw API page
        data = data["_items"]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of session objects, got {type(data).__name__}")
    raw = pd.DataFrame.from_records([d if isinstance(d, dict) else {} for d in data])
    required = ["sessionID", "stationID", "connectionTime", "disconnectTime", "kWhDelivered"]
    require_columns(raw.columns, required, str(path), "Expected ACN-Data session records")
    n = len(raw)
    tz = raw["timezone"].fillna("America/Los_Angeles") if "timezone" in raw else pd.Series(["UTC"] * n)
    if tz.nunique() > 1:
        raise DataError(f"{path}: sessions from several time zones {sorted(tz.unique())}; split the file per site")
    zone = tz.iloc[0] if n else "UTC"

    def local(col: str) -> pd.Series:
        if col not in raw:
            return pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
        t = pd.to_datetime(raw[col], errors="coerce", utc=True, format="%a, %d %b %Y %H:%M:%S %Z")
        return t.dt.tz_convert(zone).dt.tz_localize(None).astype("datetime64[ns]")

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
        "user_id": pd.array([None if pd.isna(u) else str(u) for u in user[keep]], dtype="string"),
        "connect_time": con.to_numpy()[keep], "disconnect_time": dis.to_numpy()[keep],
        "done_time": done.to_numpy()[keep], "kwh": kwh[keep],
        "requested_kwh": req_kwh[keep], "requested_miles": req_mi[keep],
        "source": path.name, "row": np.flatnonzero(keep).astype(np.int64),
    })
    report = RejectReport(n, int(keep.sum()), rejected_frame(path.name, code, reasons), dict(SESSION_REJECT_REASONS))
    return Ingested(frame, report)


def _last_input(inputs, key: str) -> float:
    if not isinstance(inputs, list) or not inputs:
        return np.nan
    val = inputs[-1].get(key) if isinstance(inputs[-1], dict) else None
    try:
        return float(val) if val is not None else np.nan
    except (TypeError, ValueError):
        return np.nan


@dataclass
class ChargingVolumes:
    """Hourly charging records per station (CHARGED layout).

    ``volume_kwh`` and ``busy_hours`` are frames indexed by hour (naive local time) with one column
    per station id (int, numerically sorted); ``stations`` is indexed by station id with ``lat``,
    ``lon``, ``piles``.  ``report`` accounts for every hourly row of the volume file.
    """

    volume_kwh: pd.DataFrame
    busy_hours: pd.DataFrame
    stations: pd.DataFrame
    report: RejectReport


def read_melbourne_charging(folder: str | Path) -> ChargingVolumes:
    """Read CHARGED Melbourne ``volume``, ``duration`` and ``stations`` CSVs (plain or .gz).

    An hourly row is rejected as ``missing_timestamp``, ``non_finite_value`` (a NaN/inf cell in
    volume or duration), ``negative_value`` or ``duplicate`` (repeated hour).
    """
    folder = Path(folder)
    vol = _read_table(_pick(folder, "volume"))
    dur = _read_table(_pick(folder, "duration"))
    st = _read_table(_pick(folder, "stations"))
    require_columns(st.columns, ["station_id", "latitude", "longitude", "pile_num"], str(_pick(folder, "stations")))
    tcol_v, tcol_d = vol.columns[0], dur.columns[0]
    if list(vol.columns[1:]) != list(dur.columns[1:]):
        raise DataError(f"{folder}: volume and duration files have different station columns")
    if len(vol) != len(dur):
        raise DataError(f"{folder}: volume has {len(vol)} rows but duration has {len(dur)}")
    station_cols = list(vol.columns[1:])
    try:
        ids = [int(c) for c in station_cols]
    except ValueError as exc:
        raise DataError(f"{folder}: station columns must be integer ids, got {station_cols[:5]}...") from exc
    unknown = sorted(set(ids) - set(st["station_id"].astype(int)))
    if unknown:
        raise DataError(f"{folder}: stations {unknown[:5]} have volumes but no row in stations.csv")
    t = pd.to_datetime(vol[tcol_v], errors="coerce")
    td = pd.to_datetime(dur[tcol_d], errors="coerce")
    v = vol[station_cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    d = dur[station_cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    missing = (t.isna() | td.isna() | (t != td)).to_numpy()
    nonfinite = ~(np.isfinite(v).all(1) & np.isfinite(d).all(1))
    with np.errstate(invalid="ignore"):
        negative = (v < 0).any(1) | (d < 0).any(1)
    conditions = [("missing_timestamp", missing), ("non_finite_value", nonfinite), ("negative_value", negative)]
    code = classify(conditions, len(vol))
    ok = np.flatnonzero(code == 0)
    code[ok[t.iloc[ok].duplicated().to_numpy()]] = 4
    reasons = ["missing_timestamp", "non_finite_value", "negative_value", "duplicate"]
    keep = code == 0
    order = np.argsort(ids)
    idx = pd.DatetimeIndex(t[keep], name="hour")
    cols = pd.Index(np.asarray(ids)[order], name="station")
    stations = pd.DataFrame({"lat": st["latitude"].to_numpy(float), "lon": st["longitude"].to_numpy(float),
                             "piles": st["pile_num"].to_numpy(int)},
                            index=pd.Index(st["station_id"].astype(int).to_numpy(), name="station")).sort_index()
    report = RejectReport(len(vol), int(keep.sum()), rejected_frame("volume.csv", code, reasons), {
        "missing_timestamp": "hour missing/unparseable or differs between volume and duration files",
        "non_finite_value": "a NaN or infinite cell in the hour's row",
        "negative_value": "a negative volume or duration",
        "duplicate": "the same hour appears twice"})
    return ChargingVolumes(pd.DataFrame(v[keep][:, order], index=idx, columns=cols),
                           pd.DataFrame(d[keep][:, order], index=idx, columns=cols), stations, report)


@dataclass
class ShenzhenZones:
    """ST-EVCDP Shenzhen charger zones.

    ``zones``: frame indexed by TAZ id (``name``, ``lat``, ``lon``, ``piles``, ``fast_piles``,
    ``slow_piles``, ``area_km2``, ``cbd``).  ``adjacent_km``: (n, n) straight-line km between
    *adjacent* zones, 0 elsewhere: ``distance.csv`` is not a full distance table (only 1.6 % of its
    entries are non-zero, exactly the adjacent pairs of ``adj.csv``, and they equal the centroid
    great-circle distances to 0.1 %), so build regions with :meth:`region_map` (centroid distances
    times a circuity factor).
    """

    zones: pd.DataFrame
    adjacent_km: np.ndarray

    def region_map(self, circuity: float = 1.3):
        """One region per charger zone, great-circle centroid distances times ``circuity``."""
        from data_pipeline.regions import RegionMap

        return RegionMap.from_zones(self.zones, circuity)


def read_shenzhen_zones(folder: str | Path) -> ShenzhenZones:
    """Read ``information.csv`` and ``distance.csv`` of ST-EVCDP (247 charger zones, adjacent-pair km)."""
    folder = Path(folder)
    info_path, dist_path = folder / "information.csv", folder / "distance.csv"
    info = _read_table(info_path)
    require_columns(info.columns, ["grid", "count", "fast_count", "slow_count", "area", "lon", "la", "CBD"],
                    str(info_path))
    dist = _read_table(dist_path)
    ids = info["grid"].astype(int).to_numpy()
    header = [c for c in dist.columns[1:]]
    try:
        dist_ids = np.array([int(float(c)) for c in header])
    except ValueError as exc:
        raise DataError(f"{dist_path}: header must be TAZ ids, got {header[:5]}") from exc
    if len(dist) != len(dist_ids):
        raise DataError(f"{dist_path}: {len(dist)} rows for {len(dist_ids)} columns; expected a square matrix")
    if set(dist_ids) != set(ids):
        raise DataError(f"{dist_path}: zone ids differ from information.csv "
                        f"(only in distance: {sorted(set(dist_ids) - set(ids))[:5]}, "
                        f"only in information: {sorted(set(ids) - set(dist_ids))[:5]})")
    mat = dist[header].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    if not np.isfinite(mat).all() or (mat < 0).any():
        raise DataError(f"{dist_path}: distances must be finite and non-negative")
    pos = pd.Index(dist_ids).get_indexer(ids)
    mat = mat[np.ix_(pos, pos)]
    zones = pd.DataFrame({
        "name": [f"TAZ {i}" for i in ids], "lat": info["la"].to_numpy(float), "lon": info["lon"].to_numpy(float),
        "piles": info["count"].to_numpy(int), "fast_piles": info["fast_count"].to_numpy(int),
        "slow_piles": info["slow_count"].to_numpy(int), "area_km2": info["area"].to_numpy(float),
        "cbd": info["CBD"].to_numpy(int).astype(bool)}, index=pd.Index(ids, name="zone"))
    return ShenzhenZones(zones, mat)


# ---------------------------------------------------------------------------------------- plumbing

def _pick(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.csv", f"{stem}.csv.gz", f"{stem}.parquet"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: no {stem}.csv, {stem}.csv.gz or {stem}.parquet file")


def _table_columns(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"trip file {path} not found")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise DataError(f"{path}: not a readable parquet file ({exc})") from exc
    try:
        return list(pd.read_csv(path, nrows=0).columns)
    except Exception as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from exc


def _read_table(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a parquet or CSV (optionally .gz) file; unreadable files raise :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file {path} not found")
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            if columns is not None:
                present = set(pq.read_schema(path).names)
                columns = [c for c in columns if c in present]
            return pq.read_table(path, columns=columns).to_pandas()
        return pd.read_csv(path, usecols=lambda c: columns is None or c in columns, low_memory=False)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc


def _to_datetime(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        if getattr(values.dt, "tz", None) is not None:
            raise DataError("trip timestamps carry a time zone; convert them to naive local time first")
        return values.to_numpy(dtype="datetime64[ns]")
    return pd.to_datetime(values, errors="coerce", format="mixed").to_numpy(dtype="datetime64[ns]")


def _to_float(values: pd.Series) -> np.ndarray:
    """Numbers as floats; unparseable cells become NaN (then rejected as ``non_finite_distance``)."""
    out = pd.to_numeric(values, errors="coerce")
    return out.to_numpy(dtype=float, na_value=np.nan)
