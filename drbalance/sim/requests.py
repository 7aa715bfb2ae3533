"""Ride requests replayed from trip records.

Each accepted trip whose pick-up falls in the simulated window becomes one request at its pick-up
region and minute, with its drop-off region, metered distance and recorded duration.

Distance used for energy and km (a documented choice): the metered ``distance_km`` when it is finite,
positive and plausible (implied speed at most ``max_speed_kmh`` over the recorded duration); otherwise
it is *imputed* -- TLC files hold real 0-distance records (meter not run, same-zone hops) and a few
absurd ones -- as the centroid great-circle distance between the pick-up and drop-off zones times the
region map's circuity, or, within one zone, ``0.52 * sqrt(zone area) * circuity`` (0.52 a is the mean
distance between two random points of a square of side a), or ``same_zone_km`` when the zone area is
unknown.  Imputed rows are flagged and counted in the simulation summary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_pipeline.regions import RegionMap, haversine_km
from drbalance.errors import ConfigError, DataError


@dataclass
class Requests:
    """Requests of one simulation window, sorted by pick-up time.

    Attributes
    ----------
    start : window start (naive local time); minute 0 of the simulation.
    minutes : window length in minutes.
    arrival : (m,) int minute of the request (``floor`` of the pick-up time since ``start``).
    pickup_time : (m,) datetime64[ns] recorded pick-up times.
    origin, destination : (m,) int region positions of pick-up and drop-off.
    km : (m,) float trip distance in km used for energy and occupied km (see module docstring).
    duration : (m,) int recorded trip duration in whole minutes (rounded, at least 1).
    imputed : (m,) bool, True where ``km`` was imputed.
    row : (m,) int row of the record in its source file (-1 when unknown).
    outside_regions : trips of the window whose zones lie in no region (excluded, counted).
    """

    start: pd.Timestamp
    minutes: int
    arrival: np.ndarray
    pickup_time: np.ndarray
    origin: np.ndarray
    destination: np.ndarray
    km: np.ndarray
    duration: np.ndarray
    imputed: np.ndarray
    row: np.ndarray
    outside_regions: int = 0

    def __len__(self) -> int:
        return len(self.arrival)

    @classmethod
    def from_trips(cls, trips: pd.DataFrame, regions: RegionMap, start, minutes: int = 1440,
                   zones: pd.DataFrame | None = None, max_speed_kmh: float = 100.0,
                   same_zone_km: float = 1.0) -> "Requests":
        """Requests from a canonical trips frame (:func:`data_pipeline.readers.read_tlc_trips`).

        Parameters
        ----------
        trips : canonical trips (``pickup_time``, ``dropoff_time``, ``pickup_zone``, ``dropoff_zone``,
            ``distance_km``, ``duration_min``).
        regions : the region map; zones outside it are excluded and counted in ``outside_regions``.
        start : first minute of the window (e.g. a day's midnight).
        minutes : window length (default one day).
        zones : canonical zone frame (``lat``, ``lon``, optional ``area_km2``) for zone-level distance
            imputation; None imputes from region centroids.
        max_speed_kmh : metered distances implying a faster mean speed are imputed (default 100 km/h).
        same_zone_km : imputed distance within one zone of unknown area (default 1 km).
        """
        need = ["pickup_time", "pickup_zone", "dropoff_zone", "distance_km", "duration_min"]
        missing = [c for c in need if c not in trips.columns]
        if missing:
            raise DataError(f"trips frame lacks columns {missing}; read it with data_pipeline.readers.read_tlc_trips")
        if int(minutes) != minutes or minutes < 1:
            raise ConfigError(f"window length must be a positive number of minutes, got {minutes}")
        if not (max_speed_kmh > 0):
            raise ConfigError(f"max_speed_kmh must be positive, got {max_speed_kmh}")
        start = pd.Timestamp(start)
        t = trips["pickup_time"].to_numpy(dtype="datetime64[ns]")
        t0 = np.datetime64(start.to_datetime64(), "ns")
        rel = (t - t0).astype(np.int64)
        inside = (~np.isnat(t)) & (rel >= 0) & (rel < int(minutes) * 60 * 10**9)
        sub = trips.loc[inside]
        rel = rel[inside]
        o = regions.region_of(sub["pickup_zone"].to_numpy())
        d = regions.region_of(sub["dropoff_zone"].to_numpy())
        ok = (o >= 0) & (d >= 0)
        outside = int((~ok).sum())
        sub, rel, o, d = sub[ok], rel[ok], o[ok], d[ok]
        order = np.argsort(rel, kind="stable")
        sub, rel, o, d = sub.iloc[order], rel[order], o[order], d[order]
        dur_raw = sub["duration_min"].to_numpy(float)
        duration = np.maximum(1, np.rint(np.nan_to_num(dur_raw, nan=1.0))).astype(np.int64)
        km = sub["distance_km"].to_numpy(float)
        with np.errstate(invalid="ignore"):
            plausible = np.isfinite(km) & (km > 0) & (km <= max_speed_kmh * np.maximum(dur_raw, 1.0) / 60.0)
        fallback = _centroid_km(sub, regions, o, d, zones, same_zone_km)
        imputed = ~plausible
        km = np.where(plausible, km, fallback)
        row = sub["row"].to_numpy(np.int64) if "row" in sub else np.full(len(sub), -1, np.int64)
        return cls(start, int(minutes), (rel // (60 * 10**9)).astype(np.int64), sub["pickup_time"].to_numpy(),
                   o.astype(np.int64), d.astype(np.int64), km, duration, imputed, row, outside)

    def counts(self, slot_minutes: int, n_regions: int, by: str = "origin") -> np.ndarray:
        """Requests per slot and region ``(n_slots, n)`` by pick-up minute (``by='origin'``) or, for the
        recorded drop-offs (``by='destination'``), by recorded drop-off minute clipped to the window."""
        n_slots = self.minutes // slot_minutes
        if by == "origin":
            slot, reg = self.arrival // slot_minutes, self.origin
        elif by == "destination":
            slot, reg = (self.arrival + self.duration) // slot_minutes, self.destination
        else:
            raise ConfigError(f"by must be 'origin' or 'destination', got {by!r}")
        keep = slot < n_slots
        flat = slot[keep] * n_regions + reg[keep]
        return np.bincount(flat, minlength=n_slots * n_regions).reshape(n_slots, n_regions).astype(float)


def _centroid_km(sub: pd.DataFrame, regions: RegionMap, o: np.ndarray, d: np.ndarray, zones, same_zone_km: float):
    circuity = regions.circuity if np.isfinite(regions.circuity) else 1.3
    if zones is None or not {"lat", "lon"} <= set(zones.columns):
        km = regions.distance_km[o, d].copy()
        km[~(km > 0)] = same_zone_km
        return km
    pz, dz = sub["pickup_zone"].to_numpy(), sub["dropoff_zone"].to_numpy()
    a = zones.reindex(pz)
    b = zones.reindex(dz)
    km = haversine_km(a["lat"].to_numpy(float), a["lon"].to_numpy(float), b["lat"].to_numpy(float),
                      b["lon"].to_numpy(float)) * circuity
    same = (pz == dz) | ~(km > 0)  # same zone, or zones sharing a centroid
    if "area_km2" in zones.columns:
        area = a["area_km2"].to_numpy(float)
        intra = np.where(np.isfinite(area) & (area > 0), 0.52 * np.sqrt(np.where(area > 0, area, 0.0)) * circuity,
                         same_zone_km)
    else:
        intra = np.full(len(pz), same_zone_km)
    km = np.where(same, intra, km)
    bad = ~np.isfinite(km)
    km[bad] = regions.distance_km[o[bad], d[bad]]
    return km
