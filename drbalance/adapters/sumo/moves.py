"""Turning a plan's region-level moves into TraCI orders for chosen idle taxis.

For each vacant move ``i -> j`` (``i != j``) the ``count`` idle taxis counted in ``i`` that are nearest
region ``j``'s centroid (straight line, m) are sent: their idling stop is ended, ``changeTarget`` to
an edge of ``j`` (nearest its centroid first, one per taxi, cycling), and a stop marked
``actType=idling`` is put halfway along that edge, so that SUMO's taxi device keeps it as the taxi's
idle stop and ``dispatchTaxi`` may end it.  Charge moves are logged as not executed (no batteries).

(:func:`drbalance.embedding.assign_vehicles` is the library's per-vehicle rule for hosts that know
each vehicle's state of charge; here there are no batteries, and the taxi is chosen by where it is.)
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from drbalance.adapters.sumo.taxis import TaxiBook

#: Duration (s) of the stop a repositioned taxi waits at on its target edge; marked as SUMO's own
#: ``idling`` stop, so the taxi device keeps it as the idle stop and ``dispatchTaxi`` may end it.
IDLE_STOP_S = 1e6

#: ``reason`` of a charge move in the move log.
CHARGE_NOT_EXECUTED = "no batteries in the SUMO scenario: charge moves are not executed"


def issue_moves(conn, book: TaxiBook, moves, slot: int, t: pd.Timestamp, t_s: float) -> list[dict]:
    """Send idle taxis for the moves of ``moves`` (a :class:`drbalance.policies.Moves`).

    ``slot`` and ``t`` (wall-clock time) label the log rows, ``t_s`` (simulated s) is the issue time
    of the reposition records opened in ``book``.  Returns one move-log row per move leaving its
    region (keys :data:`drbalance.adapters.sumo.result.MOVE_COLUMNS`): ``executed`` taxis sent, their
    ids, and the reason of a shortfall (too few idle taxis, a TraCI error naming the taxi, or a charge
    move).
    """
    edges = book.edges
    idle = book.idle(conn)
    free = dict(zip(idle.taxi, idle.count_region))
    xy = dict(zip(idle.taxi, zip(idle.x, idle.y)))
    targets = {}
    rows = []
    for o, d, k, kind in zip(moves.origin, moves.destination, moves.count, moves.kind):
        if k <= 0 or o == d:
            continue
        row = dict(slot=slot, t=t, origin=int(o), destination=int(d), kind=str(kind), planned=int(k),
                   executed=0, taxis=(), reason="")
        if kind != "vacant":
            row["reason"] = CHARGE_NOT_EXECUTED
            rows.append(row)
            continue
        cand = [v for v, r in free.items() if r == o]
        cx, cy = edges.centroid_xy[d]
        cand.sort(key=lambda v: (np.hypot(xy[v][0] - cx, xy[v][1] - cy), v))
        sent = []
        pool = targets.setdefault(int(d), itertools.cycle(edges.edges_of(int(d))))
        for vid in cand[:k]:
            target = next(pool)
            try:
                route_m = send_taxi(conn, vid, target, edges.length_of(target))
            except Exception as exc:  # TraCIException: no route
                row["reason"] = f"{vid}: {exc}"
                continue
            free.pop(vid)
            sent.append(vid)
            book.begin_reposition(dict(taxi=vid, slot=slot, origin=int(o), destination=int(d), target_edge=target,
                                       issued_s=t_s, arrived_s=np.nan, route_m=route_m))
        row["executed"], row["taxis"] = len(sent), tuple(sent)
        if len(sent) < k and not row["reason"]:
            row["reason"] = f"only {len(sent)} idle taxis in region {o}"
        rows.append(row)
    return rows


def send_taxi(conn, vid: str, target: str, target_length: float) -> float:
    """Send idle taxi ``vid`` to edge ``target`` (length ``target_length``, m) to idle there halfway
    along; returns its planned driving distance (m).  TraCI errors (e.g. no route) propagate."""
    release(conn, vid)
    conn.vehicle.changeTarget(vid, target)
    conn.vehicle.setStop(vid, target, pos=float(target_length / 2), duration=IDLE_STOP_S)
    conn.vehicle.setStopParameter(vid, 0, "actType", "idling")
    return float(conn.vehicle.getDrivingDistance(vid, target, 1.0))


def release(conn, vid: str) -> None:
    """End an idle taxi's idling stop (``resume`` when it is stopped; remove it with ``replaceStop``
    while it is still ahead), so that a new target makes it drive."""
    if conn.vehicle.isStopped(vid):
        conn.vehicle.resume(vid)
        return
    for _ in range(len(conn.vehicle.getStops(vid))):
        conn.vehicle.replaceStop(vid, 0, "")
