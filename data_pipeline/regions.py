"""Regions: the spatial units the balancer decides over.

A :class:`RegionMap` holds ``n`` regions (ids, names, centroids), the driving-distance matrix
``W`` in km, and the zone -> region assignment, so that raw records keyed by zone can be counted
per region.  Regions are either the zones themselves, or clusters of zones (:meth:`RegionMap.coarsen`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from drbalance.errors import ConfigError, DataError
from drbalance.state import readonly

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in km between points given in degrees (broadcasting arrays)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@dataclass(frozen=True)
class RegionMap:
    """Regions, distances and the zone -> region assignment.

    Attributes
    ----------
    region_ids : (n,) int array, region labels ``0..n-1`` or the zone ids for an uncoarsened map.
    names : (n,) str array.
    lat, lon : (n,) float arrays, region centroids (degrees WGS84).
    distance_km : (n, n) float array, driving distance ``W_ij`` in km (``W_ii = 0``).
    zone_ids : (z,) array of zone labels that belong to some region.
    zone_region : (z,) int array, region *position* (0..n-1) of each zone in ``zone_ids``.
    circuity : float, road-distance / great-circle ratio used to build ``distance_km`` (NaN when
        distances came from a table).

    Frozen: attributes cannot be reassigned and every array is read-only (a private copy of the
    caller's); ``distance_km.copy()`` gives a scratch matrix.
    """

    region_ids: np.ndarray
    names: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    distance_km: np.ndarray
    zone_ids: np.ndarray
    zone_region: np.ndarray
    circuity: float = float("nan")
    _zone_index: pd.Index = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.region_ids)
        for name, dtype in (("region_ids", None), ("names", object), ("lat", float), ("lon", float),
                            ("distance_km", float), ("zone_ids", None), ("zone_region", np.int64)):
            object.__setattr__(self, name, readonly(getattr(self, name), dtype))
        if n == 0:
            raise DataError("a RegionMap needs at least one region")
        if self.distance_km.shape != (n, n):
            raise DataError(f"distance matrix has shape {self.distance_km.shape}, expected ({n}, {n})")
        if not np.isfinite(self.distance_km).all() or (self.distance_km < 0).any():
            raise DataError("distance matrix must be finite and non-negative")
        if len(self.zone_ids) != len(self.zone_region):
            raise DataError("zone_ids and zone_region must have the same length")
        if len(self.zone_region) and (self.zone_region.min() < 0 or self.zone_region.max() >= n):
            raise DataError("zone_region holds a position outside 0..n-1")
        object.__setattr__(self, "_zone_index", pd.Index(self.zone_ids))
        if not self._zone_index.is_unique:
            raise DataError("zone ids must be unique in a RegionMap")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_zones(cls, zones: pd.DataFrame, circuity: float = 1.3) -> "RegionMap":
        """One region per located zone position; zones sharing a centroid (``location_from``) merge.

        ``zones`` is a canonical zone frame (``name``, ``lat``, ``lon`` and optionally
        ``location_from``).  Distances are great-circle distances between centroids times
        ``circuity`` (road distance / straight line; 1.3 is a common urban value, or use
        :func:`estimate_circuity` on metered trips).  Zones without a location belong to no region.
        """
        if not (circuity >= 1.0):
            raise ConfigError(f"circuity must be >= 1 (road distance over straight line), got {circuity}")
        located = zones[zones["lat"].notna() & zones["lon"].notna()]
        if located.empty:
            raise DataError("no zone has a location (lat/lon); cannot build regions")
        anchor = located["location_from"].to_numpy() if "location_from" in located else located.index.to_numpy()
        anchor = np.where(anchor == -1, located.index.to_numpy(), anchor)
        region_ids, zone_region = np.unique(anchor, return_inverse=True)
        first = pd.Index(located.index).get_indexer(region_ids)
        first = np.where(first >= 0, first, 0)
        lat = located["lat"].to_numpy(float)[first]
        lon = located["lon"].to_numpy(float)[first]
        names = located["name"].to_numpy(object)[first]
        dist = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :]) * circuity
        np.fill_diagonal(dist, 0.0)
        return cls(region_ids, names, lat, lon, dist, located.index.to_numpy(), zone_region, float(circuity))

    @classmethod
    def from_distance_matrix(cls, zones: pd.DataFrame, distance_km: np.ndarray) -> "RegionMap":
        """One region per zone with a given distance table (e.g. Shenzhen ``distance.csv``), in km."""
        d = np.asarray(distance_km, float).copy()
        np.fill_diagonal(d, 0.0)
        n = len(zones)
        return cls(zones.index.to_numpy(), zones["name"].to_numpy(object), zones["lat"].to_numpy(float),
                   zones["lon"].to_numpy(float), d, zones.index.to_numpy(), np.arange(n))

    # ------------------------------------------------------------------ queries
    @property
    def n(self) -> int:
        return len(self.region_ids)

    def region_of(self, zones) -> np.ndarray:
        """Region position (0..n-1) of each zone label; -1 for zones outside every region."""
        pos = self._zone_index.get_indexer(np.asarray(zones))
        out = np.full(len(pos), -1, dtype=np.int64)
        ok = pos >= 0
        out[ok] = self.zone_region[pos[ok]]
        return out

    def reachable_pairs(self, max_km: float) -> np.ndarray:
        """Sparse pair list ``(m, 2)`` of region positions ``(i, j)`` with ``W_ij <= max_km``.

        The diagonal (staying) is always included; rows sorted by ``i`` then ``j``.
        """
        if not (max_km >= 0):
            raise ConfigError(f"reachability radius must be >= 0 km, got {max_km}")
        i, j = np.nonzero((self.distance_km <= max_km) | np.eye(self.n, dtype=bool))
        return np.stack([i, j], axis=1)

    def members(self) -> pd.DataFrame:
        """Which zones each region holds: frame with ``zone``, ``region`` (id) and ``region_name``."""
        return pd.DataFrame({"zone": self.zone_ids, "region": self.region_ids[self.zone_region],
                             "region_name": self.names[self.zone_region]})

    # ------------------------------------------------------------------ coarsening
    def coarsen(self, k: int, weights: np.ndarray | None = None, random_state: int = 0,
                circuity: float | None = None) -> "RegionMap":
        """Cluster the regions into ``k`` regions with weighted k-means on their centroids.

        Parameters
        ----------
        k : number of regions wanted (1 <= k <= n).
        weights : (n,) non-negative weights per current region (e.g. pick-ups); regions of zero
            weight are still assigned (to the nearest cluster centre).  Default: equal weights.
        random_state : seed of :class:`sklearn.cluster.KMeans`.
        circuity : road/straight-line factor for the new distances (default: this map's, or 1.3).

        Returns a new map whose region ``r`` centroid is the weighted mean of its members' centroids
        and whose name is that of its heaviest member plus the member count.
        """
        from sklearn.cluster import KMeans  # lazy (b): heavy (~0.5 s), only when coarsening

        if not (1 <= k <= self.n):
            raise ConfigError(f"cannot coarsen {self.n} regions into k={k}; choose 1 <= k <= {self.n}")
        w = np.ones(self.n) if weights is None else np.asarray(weights, float)
        if w.shape != (self.n,) or not np.isfinite(w).all() or (w < 0).any():
            raise DataError(f"coarsening weights must be {self.n} finite non-negative numbers")
        if w.sum() <= 0:
            raise DataError("coarsening weights are all zero; there is no demand to cluster by")
        xy = self._planar_km()
        km = KMeans(n_clusters=k, random_state=random_state, n_init=10)
        km.fit(xy, sample_weight=np.maximum(w, 1e-9))
        label = km.predict(xy)
        # Relabel clusters by descending weight so that ids are stable for a given seed.
        tot = np.bincount(label, weights=w, minlength=k)
        order = np.argsort(-tot, kind="stable")
        rank = np.empty(k, dtype=np.int64)
        rank[order] = np.arange(k)
        label = rank[label]
        if np.bincount(label, minlength=k).min() == 0:
            raise DataError(f"k-means left an empty cluster for k={k}; choose a smaller k")
        ww = np.maximum(w, 1e-9)
        sw = np.bincount(label, weights=ww, minlength=k)
        lat = np.bincount(label, weights=ww * self.lat, minlength=k) / sw
        lon = np.bincount(label, weights=ww * self.lon, minlength=k) / sw
        names = []
        for r in range(k):
            idx = np.flatnonzero(label == r)
            top = idx[np.argmax(w[idx])]
            names.append(f"{self.names[top]}" + (f" +{len(idx) - 1}" if len(idx) > 1 else ""))
        c = circuity if circuity is not None else (self.circuity if np.isfinite(self.circuity) else 1.3)
        dist = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :]) * c
        np.fill_diagonal(dist, 0.0)
        return RegionMap(np.arange(k), np.array(names, dtype=object), lat, lon, dist,
                         self.zone_ids, label[self.zone_region], float(c))

    def _planar_km(self) -> np.ndarray:
        lat0 = np.radians(np.nanmean(self.lat))
        x = np.radians(self.lon) * EARTH_RADIUS_KM * np.cos(lat0)
        y = np.radians(self.lat) * EARTH_RADIUS_KM
        return np.stack([x, y], axis=1)

    # ------------------------------------------------------------------ persistence
    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"region_ids": self.region_ids, "region_names": self.names.astype(str), "region_lat": self.lat,
                "region_lon": self.lon, "distance_km": self.distance_km,
                "zone_ids": self.zone_ids.astype(str) if self.zone_ids.dtype == object else self.zone_ids,
                "zone_region": self.zone_region, "circuity": np.array(self.circuity)}

    @classmethod
    def from_arrays(cls, a) -> "RegionMap":
        return cls(a["region_ids"], a["region_names"].astype(object), a["region_lat"], a["region_lon"],
                   a["distance_km"], a["zone_ids"], a["zone_region"], float(a["circuity"]))


def estimate_circuity(trips: pd.DataFrame, zones: pd.DataFrame, min_km: float = 1.0) -> float:
    """Median ratio of metered trip distance to centroid great-circle distance.

    Uses accepted trips between different located zones whose centroid distance is at least
    ``min_km`` and whose metered distance is positive.  Raises :class:`DataError` when fewer than
    100 trips qualify (too little evidence to estimate it).
    """
    pu = zones.reindex(trips["pickup_zone"].to_numpy())
    do = zones.reindex(trips["dropoff_zone"].to_numpy())
    straight = haversine_km(pu["lat"].to_numpy(), pu["lon"].to_numpy(), do["lat"].to_numpy(), do["lon"].to_numpy())
    metered = trips["distance_km"].to_numpy(float)
    ok = np.isfinite(straight) & (straight >= min_km) & np.isfinite(metered) & (metered > 0)
    if ok.sum() < 100:
        raise DataError(f"only {int(ok.sum())} trips have a metered distance between zones >= {min_km} km apart; "
                        "need >= 100 to estimate circuity; pass a fixed --circuity instead")
    ratio = float(np.median(metered[ok] / straight[ok]))
    if ratio < 1.0:
        raise DataError(f"metered trip distances are shorter than straight lines (median ratio {ratio:.3f}); "
                        "check the distance unit (km vs miles) of the trip file")
    return ratio
