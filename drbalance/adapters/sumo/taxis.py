"""Bookkeeping of the SUMO taxis: where each one is, which are idle or repositioning, and the
:class:`drbalance.state.FleetState` counted from them.

A taxi on a repositioning trip counts in its *destination* region until it reaches its target edge
(it is committed there; counting it where it happens to drive would let the next plan move it again).
Units: positions in metres (network coordinates), times in simulated seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from drbalance.adapters.sumo.config import SumoConfig
from drbalance.adapters.sumo.network import EdgeRegions
from drbalance.errors import ConfigError, DataError
from drbalance.state import FleetState

#: Columns of :meth:`TaxiBook.positions`.
POSITION_COLUMNS = ["taxi", "edge", "region", "x", "y", "idle", "repositioning"]


class TaxiBook:
    """The taxis of one simulation and their open repositioning trips.

    Attributes
    ----------
    edges : the :class:`EdgeRegions` the taxis drive on.
    taxis : ids of the inserted taxis, in insertion order.
    repositioning : taxi id -> its open reposition record (a row of ``reposition_log``, ``arrived_s``
        still NaN), until the taxi is on its target edge.
    reposition_log : every reposition record issued (columns of
        :data:`drbalance.adapters.sumo.result.REPOSITION_COLUMNS`).

    Every method reading SUMO takes the TraCI connection ``conn``.
    """

    def __init__(self, edges: EdgeRegions) -> None:
        self.edges = edges
        self.taxis: list[str] = []
        self.repositioning: dict[str, dict] = {}
        self.reposition_log: list[dict] = []

    # ------------------------------------------------------------------ inserting
    def insert(self, conn, config: SumoConfig) -> None:
        """Add ``config.n_taxis`` taxis ``taxi0, taxi1, ...`` (regions ``config.taxi_regions`` or
        round-robin; edge and position drawn with ``config.seed``) and step until all are in the
        network (at most 60 simulated seconds, else :class:`DataError`)."""
        cfg = config
        rng = np.random.default_rng([cfg.seed, 1])
        n = self.edges.n
        regions = (np.arange(cfg.n_taxis) % n if cfg.taxi_regions is None
                   else np.asarray(cfg.taxi_regions, int).reshape(-1))
        if len(regions) != cfg.n_taxis or (regions < 0).any() or (regions >= n).any():
            raise ConfigError(f"taxi_regions must hold {cfg.n_taxis} region positions in 0..{n - 1}")
        for i, r in enumerate(regions):
            edge = rng.choice(self.edges.edges_of(int(r)))
            L = self.edges.length_of(edge)
            vid = f"taxi{i}"
            conn.route.add(f"start_{vid}", [edge])
            conn.vehicle.add(vid, f"start_{vid}", typeID="taxi", depart="now",
                             departPos=f"{rng.uniform(5.0, max(L - 5.0, 5.0)):.2f}")
            self.taxis.append(vid)
        for _ in range(int(60 / cfg.step_length)):
            conn.simulationStep()
            if len(conn.vehicle.getTaxiFleet(-1)) == cfg.n_taxis:
                break
        else:
            raise DataError(f"only {len(conn.vehicle.getTaxiFleet(-1))} of {cfg.n_taxis} taxis could be inserted "
                            "within 60 s; use fewer taxis or a larger network")

    # ------------------------------------------------------------------ observing
    def edge_of(self, conn, vid: str) -> str:
        """The normal edge a vehicle is on (the route edge when it is inside a junction)."""
        road = conn.vehicle.getRoadID(vid)
        if road.startswith(":") or self.edges.region_of_edge(road) < 0:
            route = conn.vehicle.getRoute(vid)
            idx = conn.vehicle.getRouteIndex(vid)
            road = route[min(max(idx, 0), len(route) - 1)]
        return road

    def positions(self, conn) -> pd.DataFrame:
        """Every taxi now: ``taxi``, ``edge``, ``region`` (of the edge), ``x``, ``y`` (m), ``idle``
        (in ``getTaxiFleet(0)``), ``repositioning``."""
        idle = set(conn.vehicle.getTaxiFleet(0))
        rows = []
        for vid in conn.vehicle.getTaxiFleet(-1):
            e = self.edge_of(conn, vid)
            x, y = conn.vehicle.getPosition(vid)
            rows.append((vid, e, self.edges.region_of_edge(e), x, y, vid in idle, vid in self.repositioning))
        return pd.DataFrame(rows, columns=POSITION_COLUMNS)

    def idle(self, conn) -> pd.DataFrame:
        """Idle taxis (rows of :meth:`positions`) with ``count_region``, the region they count in (the
        target region while repositioning)."""
        p = self.positions(conn)
        p = p[p.idle].copy()
        p["count_region"] = [self.repositioning[v]["destination"] if v in self.repositioning else r
                             for v, r in zip(p.taxi, p.region)]
        return p.reset_index(drop=True)

    def state(self, conn, plugs: np.ndarray) -> FleetState:
        """The :class:`FleetState` now: idle taxis per ``count_region`` are vacant; there are no
        batteries (every taxi counts as fully charged, so ``low_battery`` and ``occupied`` are zeros).
        ``plugs`` (n,) are reported as given."""
        region = self.idle(conn).count_region.to_numpy(np.int64)
        return FleetState.from_vehicles(region, np.ones(len(region)), plugs, np.zeros(self.edges.n))

    # ------------------------------------------------------------------ repositioning trips
    def begin_reposition(self, record: dict) -> None:
        """Open a reposition record (keys :data:`~drbalance.adapters.sumo.result.REPOSITION_COLUMNS`)."""
        self.repositioning[record["taxi"]] = record
        self.reposition_log.append(record)

    def mark_arrivals(self, conn, now: float) -> None:
        """Close the records of the taxis now on their target edge (``arrived_s = now``)."""
        for vid in list(self.repositioning):
            if conn.vehicle.getRoadID(vid) == self.repositioning[vid]["target_edge"]:
                self.repositioning.pop(vid)["arrived_s"] = now
