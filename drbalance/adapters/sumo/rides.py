"""Ride requests inside SUMO: persons asking for a taxi, our nearest-idle-taxi dispatch, and the
served / unserved counts.

Dispatching is ours, not one of SUMO's built-in algorithms (``--device.taxi.dispatch-algorithm
traci``), so the split between serving and repositioning is explicit: each waiting reservation,
oldest first, goes to the idle taxi nearest its pick-up edge (straight line, m) that is not on a
repositioning trip; reservations unassigned for ``max_wait_s`` are withdrawn and counted unserved;
a person arriving counts served.  Times in simulated seconds.
"""

from __future__ import annotations

from collections.abc import Container

import numpy as np
import pandas as pd

from drbalance.adapters.sumo.network import EdgeRegions


class Rides:
    """The ride requests of one simulation.

    Attributes
    ----------
    edges : the :class:`EdgeRegions` of the network (pick-up edge midpoints, m).
    requests, served, unserved : cumulative counts of persons added, arrived, and withdrawn.
    """

    def __init__(self, edges: EdgeRegions) -> None:
        self.edges = edges
        self.requests = self.served = self.unserved = 0
        self._persons: set[str] = set()
        self._withdrawn: set[str] = set()

    def add(self, conn, requests: pd.DataFrame, t0: float) -> None:
        """Add one person per row of ``requests`` (a :meth:`DemandModel.sample` frame) departing at
        ``max(time_s, t0)`` and asking for a taxi to ``to_edge``; ids ``p0, p1, ...``."""
        for r in requests.itertuples():
            pid = f"p{self.requests}"
            conn.person.add(pid, r.from_edge, r.depart_pos, depart=max(float(r.time_s), t0))
            conn.person.appendDrivingStage(pid, r.to_edge, "taxi")
            self._persons.add(pid)
            self.requests += 1

    def count_arrivals(self, conn) -> None:
        """Count the persons that arrived in the last step as served (withdrawn ones excepted)."""
        for pid in conn.simulation.getArrivedPersonIDList():
            if pid in self._persons and pid not in self._withdrawn:
                self.served += 1

    def waiting(self, conn) -> int:
        """Persons still in the network (waiting or riding)."""
        return len(set(conn.person.getIDList()))

    def dispatch(self, conn, now: float, max_wait_s: float, exclude: Container[str] = ()) -> None:
        """Assign the waiting reservations (oldest first, ties by id) to the nearest idle taxi not in
        ``exclude`` (one reservation per taxi); withdraw those waiting longer than ``max_wait_s``."""
        waiting = sorted(conn.person.getTaxiReservations(3), key=lambda r: (r.reservationTime, r.id))
        if not waiting:
            return
        idle = [v for v in conn.vehicle.getTaxiFleet(0) if v not in exclude]
        pos = {v: conn.vehicle.getPosition(v) for v in idle}
        for res in waiting:
            if now - res.reservationTime > max_wait_s:
                for pid in res.persons:
                    conn.person.remove(pid)
                    self._withdrawn.add(pid)
                    self.unserved += 1
                continue
            if not pos:
                continue
            px, py = self.edges.xy_of(res.fromEdge) if self.edges.position_of(res.fromEdge) >= 0 else (0.0, 0.0)
            vid = min(pos, key=lambda v: (np.hypot(pos[v][0] - px, pos[v][1] - py), v))
            try:
                conn.vehicle.dispatchTaxi(vid, [res.id])
            except Exception:  # TraCIException: e.g. a stop it cannot leave; retry once after resume
                if not conn.vehicle.isStopped(vid):
                    raise
                conn.vehicle.resume(vid)
                conn.vehicle.dispatchTaxi(vid, [res.id])
            pos.pop(vid)
