"""Embedding API: call the controller from another fleet system with plain frames and arrays.

A host (a company dispatcher, another simulator) keeps its own vehicles.  At each decision epoch it

1. builds a :class:`drbalance.state.FleetState` from its vehicles with :func:`fleet_state_from_frame`
   (a pandas frame ``id, region, soc, status``) or :func:`fleet_state_from_arrays`;
2. calls ``Controller.plan(state, t)`` (or any :class:`drbalance.policies.Policy`);
3. reads the answer as region-level moves with :func:`moves_frame` and as per-vehicle orders with
   :func:`assign_vehicles` (which vehicle drives where).

See ``docs/embedding.md`` for a worked example.  Units: state of charge as a share of a full battery
in ``[0, 1]``; distances in km; counts in vehicles or plugs.

Vehicle statuses understood (column ``status``, case-insensitive):

* ``idle`` (alias ``vacant``): waiting for a request; counted as vacant (``V``) when its SoC is above
  the low-battery threshold, as low-battery (``L``) otherwise.  Only idle vehicles are rebalanced.
* ``charging``, ``queued``: at a charger; counted as occupied plugs when ``occupied`` is not given.
* ``serving``, ``pickup``, ``repositioning``, ``to_charge``, ``offline``: busy; not counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from drbalance.assignment import KINDS, assign
from drbalance.errors import DataError
from drbalance.policies import as_moves
from drbalance.state import LOW_BATTERY_THRESHOLD, FleetState, Plan

#: Statuses of a vehicle available for rebalancing.
IDLE_STATUSES = ("idle", "vacant")
#: Statuses counted as an occupied (or queued-for) plug when ``occupied`` is derived from the frame.
CHARGER_STATUSES = ("charging", "queued")
#: Every status accepted in the ``status`` column.
STATUSES = IDLE_STATUSES + CHARGER_STATUSES + ("serving", "pickup", "repositioning", "to_charge", "offline")

VEHICLE_COLUMNS = ("id", "region", "soc", "status")


def _region_positions(region: pd.Series | np.ndarray, n: int, region_ids=None) -> np.ndarray:
    """Map the ``region`` column to positions 0..n-1 (raises DataError naming the bad rows)."""
    r = pd.Series(np.asarray(region))
    if region_ids is not None:
        ids = pd.Index(np.asarray(region_ids))
        if len(ids) != n:
            raise DataError(f"region_ids has {len(ids)} entries but plugs covers {n} regions")
        if not ids.is_unique:
            raise DataError("region_ids repeat; each region needs one id")
        pos = ids.get_indexer(r.to_numpy())
        bad = pos < 0
        if bad.any():
            raise DataError(f"column 'region': {int(bad.sum())} row(s) name a region not in region_ids "
                            f"(first: {r[bad].iloc[0]!r})")
        return pos.astype(np.int64)
    num = pd.to_numeric(r, errors="coerce")
    bad = num.isna().to_numpy() | (num.to_numpy() % 1 != 0) | (num.to_numpy() < 0) | (num.to_numpy() >= n)
    if bad.any():
        raise DataError(f"column 'region': {int(bad.sum())} row(s) are not region positions 0..{n - 1} "
                        f"(first: {r[bad].iloc[0]!r}); pass region_ids=... to map your own region labels")
    return num.to_numpy().astype(np.int64)


def _check_vehicles(vehicles: pd.DataFrame, n: int, region_ids=None) -> pd.DataFrame:
    """Validate a vehicles frame; returns a copy with ``pos`` (region position) and lower-case status."""
    if not isinstance(vehicles, pd.DataFrame):
        raise DataError(f"vehicles must be a pandas DataFrame with columns {', '.join(VEHICLE_COLUMNS)}")
    missing = [c for c in VEHICLE_COLUMNS if c not in vehicles.columns]
    if missing:
        raise DataError(f"vehicles frame lacks column(s) {missing}; expected {list(VEHICLE_COLUMNS)}")
    v = vehicles.loc[:, list(VEHICLE_COLUMNS)].reset_index(drop=True).copy()
    if v["id"].isna().any() or not v["id"].is_unique:
        raise DataError(f"column 'id': {int(v['id'].isna().sum() + v['id'].duplicated().sum())} row(s) are missing "
                        "or repeat an id; every vehicle needs a unique id")
    status = v["status"].astype(str).str.strip().str.lower()
    bad = ~status.isin(STATUSES)
    if bad.any():
        raise DataError(f"column 'status': {int(bad.sum())} row(s) have an unknown status "
                        f"(first: {v['status'][bad].iloc[0]!r}); use one of {', '.join(STATUSES)}")
    v["status"] = status
    soc = pd.to_numeric(v["soc"], errors="coerce")
    nan = soc.isna() | ~np.isfinite(soc.to_numpy(float))
    if nan.any():
        raise DataError(f"column 'soc': {int(nan.sum())} row(s) hold NaN or non-numeric state of charge "
                        f"(first vehicle id {v['id'][nan].iloc[0]!r}); fill or drop them")
    out = (soc < 0) | (soc > 1)
    if out.any():
        raise DataError(f"column 'soc': {int(out.sum())} row(s) lie outside [0, 1] (first: {soc[out].iloc[0]}); "
                        "state of charge is a share of a full battery")
    v["soc"] = soc.astype(float)
    v["pos"] = _region_positions(v["region"], n, region_ids)
    return v


def fleet_state_from_frame(vehicles: pd.DataFrame, plugs, occupied=None,
                           threshold: float = LOW_BATTERY_THRESHOLD, region_ids=None) -> FleetState:
    """Count a vehicles frame into a :class:`FleetState`.

    Parameters
    ----------
    vehicles : frame with columns ``id`` (unique), ``region`` (position 0..n-1, or a label of
        ``region_ids``), ``soc`` (state of charge in [0, 1]) and ``status`` (see the module docstring).
    plugs : (n,) int charging plugs per region; fixes ``n``.
    occupied : (n,) int plugs occupied or queued for, or None to count vehicles whose status is
        ``charging`` or ``queued`` per region.
    threshold : idle vehicles with ``soc <= threshold`` count as low-battery ``L`` (default 0.20).
    region_ids : (n,) region labels in position order, when ``region`` holds labels instead of positions.

    Raises :class:`DataError` for missing columns, unknown statuses or regions, NaN or out-of-range SoC
    and repeated ids; each message names the column and the number of offending rows.
    """
    plugs = np.asarray(plugs)
    if plugs.ndim != 1 or len(plugs) == 0:
        raise DataError(f"plugs must be a non-empty 1-D array of plugs per region, got shape {plugs.shape}")
    if not (0 <= threshold < 1):
        raise DataError(f"low-battery threshold must lie in [0, 1), got {threshold}")
    n = len(plugs)
    v = _check_vehicles(vehicles, n, region_ids)
    idle = v["status"].isin(IDLE_STATUSES).to_numpy()
    low = v["soc"].to_numpy() <= threshold
    pos = v["pos"].to_numpy()
    V = np.bincount(pos[idle & ~low], minlength=n)
    L = np.bincount(pos[idle & low], minlength=n)
    if occupied is None:
        occupied = np.bincount(pos[v["status"].isin(CHARGER_STATUSES).to_numpy()], minlength=n)
    return FleetState(V, L, plugs, occupied)


def fleet_state_from_arrays(region, soc, plugs, occupied, status=None,
                            threshold: float = LOW_BATTERY_THRESHOLD) -> FleetState:
    """:class:`FleetState` from per-vehicle arrays.

    ``region`` (v,) int positions 0..n-1, ``soc`` (v,) in [0, 1], ``plugs`` and ``occupied`` (n,) counts;
    ``status`` (v,) strings as in :func:`fleet_state_from_frame`, or None when every vehicle given is idle.
    """
    region = np.asarray(region)
    soc = np.asarray(soc, float)
    if region.shape != soc.shape or region.ndim != 1:
        raise DataError(f"region and soc must be 1-D arrays of equal length, got {region.shape} and {soc.shape}")
    if status is None:
        status = np.full(len(region), "idle", object)
    status = np.asarray(status, object)
    if status.shape != region.shape:
        raise DataError(f"status has shape {status.shape}, expected {region.shape} (one per vehicle)")
    frame = pd.DataFrame({"id": np.arange(len(region)), "region": region, "soc": soc, "status": status})
    return fleet_state_from_frame(frame, plugs, occupied, threshold)


def moves_frame(plan_or_moves, include_stays: bool = False) -> pd.DataFrame:
    """Region-level moves of a :class:`drbalance.state.Plan` (its rounded first slot), a :class:`Moves`
    or anything :func:`drbalance.policies.as_moves` accepts, as the move table of
    :meth:`drbalance.state.Moves.to_frame`.

    Columns ``origin``, ``destination`` (int region positions), ``count`` (int vehicles > 0) and
    ``kind`` (``"vacant"`` or ``"charge"``: low-battery EVs sent to a charger in ``destination``),
    sorted by kind (vacant first), origin, destination.  Vacant "stay" rows (``origin == destination``)
    are left out unless ``include_stays``; a charge row with ``origin == destination`` (charge in one's
    own region) is always kept, it is an order.
    """
    if include_stays and isinstance(plan_or_moves, Plan):
        return plan_or_moves.moves(include_stays=True).to_frame(include_stays=True)
    return as_moves(plan_or_moves, "plan").to_frame(include_stays)


def assign_vehicles(plan_or_moves, vehicles: pd.DataFrame, distance_km,
                    threshold: float = LOW_BATTERY_THRESHOLD, region_ids=None) -> pd.DataFrame:
    """Turn region-level moves into per-vehicle orders: which vehicle drives where.

    Rule (the same as the simulator's): in each origin region,

    * vacant moves go to idle vehicles above ``threshold``, **highest SoC first**, the longest moves
      being served first (the fullest battery takes the longest drive);
    * charge moves go to idle vehicles at or below ``threshold``, **lowest SoC first**, the nearest
      chargers being served first (the emptiest battery takes the shortest drive).

    Ties break on the vehicles' row order.  Vacant stays are not orders and are skipped.

    Parameters
    ----------
    plan_or_moves : a :class:`drbalance.state.Plan`, :class:`Moves` or anything :func:`as_moves` accepts.
    vehicles : frame ``id, region, soc, status`` as in :func:`fleet_state_from_frame`.
    distance_km : (n, n) driving distances between regions (km), e.g. ``RegionMap.distance_km``.

    Returns
    -------
    Frame ``vehicle_id, origin, destination, kind, km`` (one row per vehicle ordered; ``km`` is the
    region-to-region distance).  Raises :class:`DataError` when a region has fewer suitable vehicles
    than the moves take out of it (moves are never trimmed silently).
    """
    W = np.asarray(distance_km, float)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise DataError(f"distance_km must be a square (n, n) matrix, got shape {W.shape}")
    n = W.shape[0]
    v = _check_vehicles(vehicles, n, region_ids)
    mf = moves_frame(plan_or_moves)
    cols = ["vehicle_id", "origin", "destination", "kind", "km"]
    if len(mf) and (mf[["origin", "destination"]].to_numpy().max() >= n):
        raise DataError(f"moves refer to regions outside 0..{n - 1} (distance_km has {n} regions)")
    idle = v[v["status"].isin(IDLE_STATUSES)].copy()
    idle["kind"] = np.where(idle["soc"].to_numpy() <= threshold, "charge", "vacant")
    parts = []
    for kind in KINDS:
        mk = mf[mf["kind"] == kind]
        if not len(mk):
            continue
        # one row per vehicle to move; the simulator's rule picks the vehicle (drbalance.assignment)
        rep = mk.loc[mk.index.repeat(mk["count"].to_numpy())].reset_index(drop=True)
        o, d = rep["origin"].to_numpy(np.int64), rep["destination"].to_numpy(np.int64)
        cand = idle[idle["kind"] == kind]
        what = f"idle vehicles {'above' if kind == 'vacant' else 'at or below'} the {threshold:g} SoC threshold"
        try:
            order, pos = assign(kind, o, W[o, d], cand["pos"].to_numpy(), cand["soc"].to_numpy(), what)
        except DataError as exc:
            raise DataError(f"{exc}; rebuild the FleetState from the same frame") from None
        got = pd.DataFrame({"vehicle_id": cand["id"].to_numpy()[pos], "origin": o[order], "destination": d[order],
                            "kind": kind, "km": W[o[order], d[order]], "row": order})
        parts.append(got.sort_values("row", kind="stable")[cols])
    if not parts:
        return pd.DataFrame({"vehicle_id": pd.Series([], dtype=v["id"].dtype),
                             "origin": pd.Series([], dtype=np.int64), "destination": pd.Series([], dtype=np.int64),
                             "kind": pd.Series([], dtype=object), "km": pd.Series([], dtype=float)})
    return pd.concat(parts, ignore_index=True)


__all__ = ["STATUSES", "assign_vehicles", "fleet_state_from_arrays", "fleet_state_from_frame", "moves_frame"]
