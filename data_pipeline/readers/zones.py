"""Zone tables: the NYC TLC taxi zones and any city's zone table, in the canonical zone frame."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from data_pipeline.readers.common import read_table
from data_pipeline.validate import require_columns
from drbalance.errors import DataError

#: File name of the TLC zone centroids looked for beside ``taxi_zone_lookup.csv``.
CENTROIDS_NAME = "taxi_zone_centroids_DERIVED.csv"

#: TLC LocationIDs documented as having no place: 264 "Unknown" (zone "NV" or "N/A") and 265 "Outside
#: of NYC".  They have no polygon in the TLC shapefile; trips there are rejected as ``zone_without_location``.
TLC_LOCATIONLESS_IDS = frozenset({264, 265})


def bundled_tlc_centroids() -> Path:
    """Path of the TLC taxi-zone centroids shipped with drbalance (derived from the TLC shapefile; the
    LocationIDs are stable across years, so they serve any year's ``taxi_zone_lookup.csv``)."""
    return Path(str(resources.files("drbalance") / "datasets" / "nyc_green_2021q1" / CENTROIDS_NAME))


def read_zone_table(path: str | Path, id_col: str, lat_col: str, lon_col: str,
                    name_col: str | None = None) -> pd.DataFrame:
    """Read a generic zone table (CSV/parquet) into the canonical zone frame.

    Returns a frame indexed by zone id with columns ``name``, ``lat``, ``lon`` (degrees WGS84;
    NaN where the zone has no location).  Duplicate ids raise :class:`DataError`.
    """
    path = Path(path)
    raw = read_table(path)
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
        ``LocationID, lon_wgs84, lat_wgs84, area_km2``); default: the file beside ``lookup``, else
        the TLC centroids bundled with drbalance (:func:`bundled_tlc_centroids`), which must then
        locate every LocationID of ``lookup`` but 264 and 265 (:data:`TLC_LOCATIONLESS_IDS`) -
        directly or through the same-name rule below - or :class:`DataError` names the others.

    Returns
    -------
    Frame indexed by ``LocationID`` (all lookup rows) with ``name``, ``borough``, ``lat``, ``lon``,
    ``area_km2`` and ``location_from`` (the LocationID whose polygons gave the centroid).  Its
    ``attrs`` record the files read: ``lookup``, ``centroids`` (paths as strings) and
    ``centroids_source`` (``"given"``, ``"beside_lookup"`` or ``"bundled"``).

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
    if not lookup.is_file():
        raise DataError(f"zone lookup {lookup} not found (the TLC taxi_zone_lookup.csv)")
    if centroids is not None:
        centroids, source = Path(centroids), "given"
        if not centroids.is_file():
            raise DataError(f"zone centroids file {centroids} not found; pass --centroids PATH "
                            f"(centroids= in Python) to a {CENTROIDS_NAME} table")
    elif lookup.with_name(CENTROIDS_NAME).is_file():
        centroids, source = lookup.with_name(CENTROIDS_NAME), "beside_lookup"
    else:
        centroids, source = bundled_tlc_centroids(), "bundled"
    lk = read_table(lookup)
    require_columns(lk.columns, ["LocationID", "Borough", "Zone"], str(lookup),
                    "Expected the TLC taxi_zone_lookup.csv layout")
    if lk.empty:
        raise DataError(f"{lookup}: the zone lookup has no rows; pass the TLC taxi_zone_lookup.csv")
    ids = pd.to_numeric(lk["LocationID"], errors="coerce").to_numpy(float)
    bad = ~np.isfinite(ids) | (ids != np.round(ids))
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{lookup}: LocationID must be a whole number in every row; row {i + 1} has "
                        f"{lk['LocationID'].iloc[i]!r}")
    lk["LocationID"] = ids.astype(np.int64)
    ce = read_table(centroids)
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
    if source == "bundled":
        missing = [int(z) for z in out.index[out["lat"].isna()] if z not in TLC_LOCATIONLESS_IDS]
        if missing:
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise DataError(f"{lookup}: LocationID {missing[:10]}{more} not in drbalance's bundled TLC zone "
                            f"centroids (no {CENTROIDS_NAME} beside the lookup); pass --centroids PATH "
                            "(centroids= in Python) to a table with LocationID,lon_wgs84,lat_wgs84,area_km2 "
                            "covering them")
    _check_coordinates(out, centroids)
    out.attrs.update(lookup=str(lookup), centroids=str(centroids), centroids_source=source)
    return out


def _check_coordinates(zones: pd.DataFrame, path: Path | str) -> None:
    lat, lon = zones["lat"].to_numpy(), zones["lon"].to_numpy()
    ok = np.isnan(lat) | ((lat >= -90) & (lat <= 90))
    ok &= np.isnan(lon) | ((lon >= -180) & (lon <= 180))
    if not ok.all():
        bad = zones.index[~ok].tolist()[:5]
        raise DataError(f"{path}: latitude/longitude out of range for zones {bad}; expected WGS84 degrees")
