"""Regions made of a SUMO network's edges: a ``k x k`` block grid over the edge midpoints, with the
:class:`data_pipeline.regions.RegionMap` the balancer plans on (distances are driving paths in km).

Units: positions and lengths in metres (SUMO), region distances in km.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data_pipeline.regions import RegionMap
from drbalance.adapters.sumo.resources import data_path, import_sumolib
from drbalance.errors import ConfigError, DataError


@dataclass
class EdgeRegions:
    """Regions made of SUMO edges.

    Attributes
    ----------
    regions : :class:`RegionMap` with one zone per edge (``zone_ids`` = edge ids); ``lat``/``lon`` are
        NaN (the bundled grid has no geo-reference), the centroids in metres are ``centroid_xy``.
    edge_ids : (e,) str ids of the network's normal (non-internal) edges that taxis may use.
    edge_region : (e,) int region position of each edge.
    edge_xy : (e, 2) edge midpoints in network coordinates (m).
    edge_length : (e,) edge lengths (m).
    centroid_xy : (n, 2) mean midpoint of each region's edges (m).
    anchor_edge : (n,) str, the edge of each region whose midpoint is nearest the centroid (distances
        are measured between anchor edges).
    net_file : the network file.
    k : blocks per side.
    """

    regions: RegionMap
    edge_ids: np.ndarray
    edge_region: np.ndarray
    edge_xy: np.ndarray
    edge_length: np.ndarray
    centroid_xy: np.ndarray
    anchor_edge: np.ndarray
    net_file: Path
    k: int
    _pos: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pos = {e: i for i, e in enumerate(self.edge_ids)}

    @property
    def n(self) -> int:
        """Number of regions."""
        return self.regions.n

    def position_of(self, edge: str) -> int:
        """Row of an edge id in ``edge_ids`` (and ``edge_xy``, ``edge_length``); -1 for internal
        (junction) or unknown edges."""
        return self._pos.get(edge, -1)

    def length_of(self, edge: str) -> float:
        """Length of a known edge (m); KeyError for an internal or unknown edge."""
        return self.edge_length[self._pos[edge]]

    def xy_of(self, edge: str) -> np.ndarray:
        """Midpoint ``(x, y)`` of a known edge (m); KeyError for an internal or unknown edge."""
        return self.edge_xy[self._pos[edge]]

    def region_of_edge(self, edge: str) -> int:
        """Region position of an edge id; -1 for internal (junction) or unknown edges."""
        i = self._pos.get(edge)
        return -1 if i is None else int(self.edge_region[i])

    def edges_of(self, region: int) -> np.ndarray:
        """Edge ids of a region, nearest to its centroid first (ties by id)."""
        idx = np.flatnonzero(self.edge_region == region)
        d = np.hypot(*(self.edge_xy[idx] - self.centroid_xy[region]).T)
        return self.edge_ids[idx[np.lexsort((self.edge_ids[idx], d))]]


def edge_regions(net_file: str | Path | None = None, k: int = 3, vclass: str = "taxi") -> EdgeRegions:
    """Partition a network's edges into a ``k x k`` block grid over edge midpoints.

    Parameters
    ----------
    net_file : SUMO ``.net.xml`` (default: the bundled 6 x 6 grid with 200 m edges, 1 km x 1 km).
    k : blocks per side (``k**2`` regions); a block without an edge is an error.
    vclass : only edges allowing this vehicle class count.

    The block of an edge is ``floor(k (x - x_min) / (x_max - x_min))`` (clipped to ``k - 1``) on each
    axis of its midpoint.  ``distance_km[i, j]`` is the shortest driving path (``sumolib`` Dijkstra on
    edge lengths) from the middle of region ``i``'s anchor edge to the middle of region ``j``'s,
    symmetrised as ``(d_ij + d_ji) / 2``, in km.
    """
    sumolib = import_sumolib()
    if int(k) != k or k < 1:
        raise ConfigError(f"k (blocks per side) must be a positive integer, got {k}")
    k = int(k)
    net_file = Path(net_file) if net_file is not None else data_path("grid.net.xml")
    net = sumolib.net.readNet(str(net_file))
    edges = [e for e in net.getEdges(withInternal=False) if e.allows(vclass)]
    if not edges:
        raise DataError(f"{net_file} has no edge allowing vehicle class {vclass!r}")
    ids = np.array([e.getID() for e in edges], dtype=object)
    xy = np.array([_midpoint(e.getShape()) for e in edges])
    length = np.array([e.getLength() for e in edges])
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    block = np.clip(np.floor(k * (xy - lo) / span).astype(int), 0, k - 1)
    region = block[:, 1] * k + block[:, 0]  # row-major from the south-west corner
    n = k * k
    counts = np.bincount(region, minlength=n)
    if (counts == 0).any():
        raise DataError(f"blocks {np.flatnonzero(counts == 0).tolist()} of the {k}x{k} grid hold no edge; use a "
                        "smaller k for this network")
    centroid = np.array([xy[region == r].mean(axis=0) for r in range(n)])
    anchor = np.empty(n, dtype=object)
    for r in range(n):
        idx = np.flatnonzero(region == r)
        d = np.hypot(*(xy[idx] - centroid[r]).T)
        anchor[r] = ids[idx[np.lexsort((ids[idx], d))[0]]]
    dist = np.zeros((n, n))
    for i, j in itertools.permutations(range(n), 2):
        ei, ej = net.getEdge(anchor[i]), net.getEdge(anchor[j])
        path, cost = net.getShortestPath(ei, ej, vClass=vclass)
        if path is None:
            raise DataError(f"no driving path from region {i} ({anchor[i]}) to region {j} ({anchor[j]})")
        dist[i, j] = (cost - ei.getLength() / 2 - ej.getLength() / 2) / 1000.0
    dist = (dist + dist.T) / 2
    names = np.array([f"r{r // k}_{r % k}" for r in range(n)], dtype=object)
    rm = RegionMap(np.arange(n), names, np.full(n, np.nan), np.full(n, np.nan), dist, ids, region)
    return EdgeRegions(rm, ids, region, xy, length, centroid, anchor, net_file, k)


def _midpoint(shape) -> tuple[float, float]:
    """Point halfway along a polyline (m)."""
    pts = np.asarray(shape, float)
    seg = np.hypot(*np.diff(pts, axis=0).T)
    half = seg.sum() / 2
    cum = np.r_[0.0, np.cumsum(seg)]
    i = min(int(np.searchsorted(cum, half, side="right")) - 1, len(seg) - 1)
    f = 0.0 if seg[i] == 0 else (half - cum[i]) / seg[i]
    p = pts[i] + f * (pts[i + 1] - pts[i])
    return float(p[0]), float(p[1])
