"""Other charging sources: CHARGED Melbourne hourly volumes and ST-EVCDP Shenzhen charger zones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data_pipeline.readers.common import pick_file, read_table
from data_pipeline.regions import RegionMap
from data_pipeline.validate import RejectReport, classify, rejected_frame, require_columns
from drbalance.errors import DataError


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
    vol = read_table(pick_file(folder, "volume"))
    dur = read_table(pick_file(folder, "duration"))
    st = read_table(pick_file(folder, "stations"))
    require_columns(st.columns, ["station_id", "latitude", "longitude", "pile_num"], str(pick_file(folder, "stations")))
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
        return RegionMap.from_zones(self.zones, circuity)


def read_shenzhen_zones(folder: str | Path) -> ShenzhenZones:
    """Read ``information.csv`` and ``distance.csv`` of ST-EVCDP (247 charger zones, adjacent-pair km)."""
    folder = Path(folder)
    info_path, dist_path = folder / "information.csv", folder / "distance.csv"
    info = read_table(info_path)
    require_columns(info.columns, ["grid", "count", "fast_count", "slow_count", "area", "lon", "la", "CBD"],
                    str(info_path))
    dist = read_table(dist_path)
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
