"""Evaluation metrics of a simulated day (MATH.md section 1, "Evaluation metrics").

Fairness (larger is better, 0 is perfectly fair), per slot ``k``:

* mobility fairness ``u_m = - Σ_i | D_i / V_i - Σ_j D_j / Σ_j V_j |`` where ``D_i`` are the requests
  arriving in region ``i`` during the slot and ``V_i`` the vacant EVs above the low-battery threshold
  available to ``i`` at the start of the slot *after* the policy's moves (idle in ``i`` or
  repositioning towards ``i``: the paper's post-dispatch supply ``S_i``).  Regions with ``V_i = 0``
  have no defined ratio: they are left out of the sum and reported separately as
  ``zero_supply_regions`` (those with ``D_i > 0``) and ``zero_supply_requests`` (their ``Σ D_i``);
  the reference ratio ``Σ_j D_j / Σ_j V_j`` runs over *all* regions.  ``u_m`` is NaN when no region
  has a vacant EV.  Because dropping regions flatters a policy that empties them, ``u_m_all`` is
  also given: the same sum over every region with ``D_i > 0 or V_i > 0``, with ``V_i`` floored at 1.
* charging fairness ``u_c = - Σ_i | E_i / C_i - Σ_j E_j / Σ_j C_j |`` with ``C_i`` plugs and ``E_i`` the
  occupied plugs averaged over the slot's minutes, over regions with ``C_i > 0`` (regions without a
  charger have no charging ratio).

Day values are means over the slots where the metric is defined.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from drbalance.codes import CHARGING, EVENT_CODES, IDLE, LOW, N_STATUS, REPOSITION, STATUS_NAMES


def mobility_fairness(D: np.ndarray, V: np.ndarray) -> dict[str, np.ndarray]:
    """``u_m`` per slot from demand ``D`` and post-dispatch vacant supply ``V``, both ``(S, n)``.

    Returns a dict of ``(S,)`` arrays: ``u_m`` (NaN where ``Σ V = 0``), ``u_m_all``,
    ``zero_supply_regions`` (regions with ``V = 0 < D``), ``zero_supply_requests``.
    """
    D = np.asarray(D, float)
    V = np.asarray(V, float)
    totD, totV = D.sum(axis=1), V.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.where(totV > 0, totD / totV, np.nan)
        has = V > 0
        ratio = np.where(has, D / np.where(has, V, 1.0), 0.0)
        u_m = -np.where(has, np.abs(ratio - ref[:, None]), 0.0).sum(axis=1)
        u_m = np.where(totV > 0, u_m, np.nan)
        active = (D > 0) | has
        ratio_all = D / np.maximum(V, 1.0)
        u_all = -np.where(active, np.abs(ratio_all - ref[:, None]), 0.0).sum(axis=1)
        u_all = np.where(totV > 0, u_all, np.nan)
    zero = (~has) & (D > 0)
    return {"u_m": u_m, "u_m_all": u_all, "zero_supply_regions": zero.sum(axis=1).astype(np.int64),
            "zero_supply_requests": np.where(zero, D, 0.0).sum(axis=1)}


def mobility_fairness_common(D: np.ndarray, V: list[np.ndarray]) -> list[np.ndarray]:
    """``u_m_common`` per slot of each of several policies replaying the same requests: ``u_m``
    restricted to the regions where *every* policy has vacant supply (``V > 0`` for all of them).

    ``D`` ``(S, n)`` demand (identical for the policies: same requests), ``V`` a list of ``(S, n)``
    post-dispatch vacant supplies, one per policy.  Per slot and policy ``p``,
    ``u_m_common = - Σ_{i in C} | D_i / V_pi - Σ_j D_j / Σ_j V_pj |`` with ``C`` the common regions and
    the reference ratio over all regions, as in :func:`mobility_fairness`; NaN where ``C`` is empty or
    the policy has no vacant EV.  Unlike ``u_m`` it cannot reward a policy for emptying a region the
    other covers: both are scored on the same regions.  Returns a list of ``(S,)`` arrays.
    """
    D = np.asarray(D, float)
    Vs = [np.asarray(v, float) for v in V]
    for v in Vs:
        if v.shape != D.shape:
            raise ValueError(f"vacant supply of shape {v.shape} does not match demand {D.shape}")
    common = np.logical_and.reduce([v > 0 for v in Vs]) if Vs else np.zeros(D.shape, bool)
    out = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for v in Vs:
            totV = v.sum(axis=1)
            ref = np.where(totV > 0, D.sum(axis=1) / totV, np.nan)
            ratio = np.where(common, D / np.where(common, v, 1.0), 0.0)
            u = -np.where(common, np.abs(ratio - ref[:, None]), 0.0).sum(axis=1)
            out.append(np.where((totV > 0) & common.any(axis=1), u, np.nan))
    return out


def charging_fairness(E: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``u_c`` per slot from occupied plugs ``E`` ``(S, n)`` (slot means) and plugs ``C`` ``(n,)``."""
    E = np.asarray(E, float)
    C = np.asarray(C, float)
    has = C > 0
    ref = E[:, has].sum(axis=1) / C[has].sum()
    return -np.abs(E[:, has] / C[has] - ref[:, None]).sum(axis=1)


def nanmean(x) -> float:
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else float("nan")


def wait_summary(wait: np.ndarray) -> dict[str, float]:
    """Passenger wait (minutes from request to pick-up) of served requests: mean and quantiles."""
    w = np.asarray(wait, float)
    if not len(w):
        return {"wait_mean_min": float("nan"), "wait_p50_min": float("nan"), "wait_p90_min": float("nan"),
                "wait_p95_min": float("nan"), "wait_max_min": float("nan")}
    q = np.quantile(w, [0.5, 0.9, 0.95])
    return {"wait_mean_min": float(w.mean()), "wait_p50_min": float(q[0]), "wait_p90_min": float(q[1]),
            "wait_p95_min": float(q[2]), "wait_max_min": float(w.max())}


def wait_histogram(wait: np.ndarray, patience: int) -> dict[str, int]:
    """Served requests by whole minutes of wait: ``{"0": k0, "1": k1, ..., f"{patience+}": rest}``."""
    w = np.asarray(wait, np.int64)
    top = int(patience)
    counts = np.bincount(np.minimum(w, top), minlength=top + 1) if len(w) else np.zeros(top + 1, np.int64)
    out = {str(i): int(c) for i, c in enumerate(counts[:top])}
    out[f"{top}+"] = int(counts[top])
    return out


# ----------------------------------------------------------------------------- from the event log

def recompute_from_events(events: pd.DataFrame, n_regions: int, n_vehicles: int, plugs: np.ndarray,
                          slot_minutes: int, n_slots: int, end_minute: int, patience: int) -> dict:
    """Rebuild the day's metrics from the event log alone (an independent check of the simulator).

    The log (:class:`drbalance.sim.log.EventLog`) has one row per state change in chronological
    order: ``minute``, ``phase`` (0 completions and plugging-in, 1 the policy's moves, 2 requests and
    matching), ``event``, ``vehicle`` (-1 for request events), ``request``, ``origin``, ``region``,
    ``status`` (after the event), ``km``, ``kwh`` (energy change of the vehicle).  Vehicle states are
    replayed minute by minute; a vehicle's status during minute ``m`` is its status after the last of
    its events at or before ``m``.

    Returns a dict with ``summary`` (the same keys as the simulator's metric summary), ``slots``
    (per-slot frame), ``energy_min`` (lowest battery energy any vehicle reached, kWh),
    ``final_energy`` ``(N,)`` and ``vehicles_per_minute`` (min, max of the vehicle count over minutes).
    """
    ev = events
    code = EVENT_CODES
    minute = ev["minute"].to_numpy(np.int64)
    phase = ev["phase"].to_numpy(np.int64)
    kind = ev["event"].to_numpy(np.int64)
    veh = ev["vehicle"].to_numpy(np.int64)
    req = ev["request"].to_numpy(np.int64)
    region = ev["region"].to_numpy(np.int64)
    origin = ev["origin"].to_numpy(np.int64)
    status = ev["status"].to_numpy(np.int64)
    km = ev["km"].to_numpy(float)
    kwh = ev["kwh"].to_numpy(float)
    S, n = n_slots, n_regions
    day_minutes = S * slot_minutes

    # requests
    is_req = kind == code["request"]
    req_min = np.full(req.max() + 1 if len(req) and req.max() >= 0 else 0, -1, np.int64)
    req_min[req[is_req]] = minute[is_req]
    req_region = np.zeros_like(req_min)
    req_region[req[is_req]] = origin[is_req]
    req_slot = req_min // slot_minutes
    D = np.bincount(req_slot * n + req_region, minlength=S * n).reshape(S, n).astype(float)
    picked = kind == code["pickup"]
    expired = kind == code["expire"]
    wait = minute[picked] - req_min[req[picked]]
    served_by_slot = np.bincount(req_slot[req[picked]], minlength=S)
    unserved_by_slot = np.bincount(req_slot[req[expired]], minlength=S)

    # vehicle timelines: status during minute m = status after the vehicle's last event at or before m
    vmask = veh >= 0
    order = np.flatnonzero(vmask)  # already chronological
    v_veh, v_min, v_phase = veh[order], minute[order], phase[order]
    v_stat, v_reg, v_kwh = status[order], region[order], kwh[order]
    srt = np.lexsort((np.arange(len(order)), v_veh))  # by vehicle, chronological within vehicle
    v_veh, v_min, v_phase, v_stat, v_reg, v_kwh = (a[srt] for a in (v_veh, v_min, v_phase, v_stat, v_reg, v_kwh))
    energy = np.zeros(len(v_kwh))
    starts = np.r_[True, v_veh[1:] != v_veh[:-1]] if len(v_veh) else np.zeros(0, bool)
    csum = np.cumsum(v_kwh)
    grp_first = np.flatnonzero(starts)
    offset = np.repeat(np.r_[0.0, csum[grp_first[1:] - 1]] if len(grp_first) else np.zeros(0),
                       np.diff(np.r_[grp_first, len(v_kwh)]))
    energy = csum - offset
    final_energy = np.zeros(n_vehicles)
    last = np.r_[grp_first[1:] - 1, len(v_kwh) - 1] if len(grp_first) else np.zeros(0, np.int64)
    final_energy[v_veh[last]] = energy[last]

    # last event per (vehicle, minute) -> intervals [minute, next minute of that vehicle)
    keep = np.r_[(v_veh[1:] != v_veh[:-1]) | (v_min[1:] != v_min[:-1]), True] if len(v_veh) else np.zeros(0, bool)
    k_veh, k_min, k_stat, k_reg = v_veh[keep], v_min[keep], v_stat[keep], v_reg[keep]
    nxt = np.r_[k_min[1:], end_minute]
    nxt = np.where(np.r_[k_veh[1:] != k_veh[:-1], True], end_minute, nxt)
    lo, hi = np.minimum(k_min, day_minutes), np.minimum(nxt, day_minutes)
    cell = k_stat * n + k_reg
    diff = np.zeros((N_STATUS * n, day_minutes + 1))
    np.add.at(diff, (cell, lo), 1.0)
    np.add.at(diff, (cell, hi), -1.0)
    per_min = np.cumsum(diff, axis=1)[:, :day_minutes].reshape(N_STATUS, n, day_minutes)
    tot_per_min = per_min.sum(axis=(0, 1))
    slot_sum = per_min.reshape(N_STATUS, n, S, slot_minutes).sum(axis=3)  # (status, n, S)
    E = slot_sum[CHARGING].T / slot_minutes
    idle_vm = (slot_sum[IDLE] + slot_sum[LOW]).sum(axis=0)

    # post-dispatch supply at each slot start: state after phase <= 1 of the boundary minute
    key = v_veh * (4 * (end_minute + 2)) + v_min * 4 + v_phase
    V = np.zeros((S, n))
    Lk = np.zeros((S, n))
    for k in range(S):
        q = np.arange(n_vehicles) * (4 * (end_minute + 2)) + (k * slot_minutes) * 4 + 1
        pos = np.searchsorted(key, q, side="right") - 1
        ok = (pos >= 0) & (v_veh[np.maximum(pos, 0)] == np.arange(n_vehicles))
        st, rg = v_stat[pos[ok]], v_reg[pos[ok]]
        sup = (st == IDLE) | (st == REPOSITION)
        V[k] = np.bincount(rg[sup], minlength=n)
        Lk[k] = np.bincount(rg[st == LOW], minlength=n)

    fair = mobility_fairness(D, V)
    u_c = charging_fairness(E, plugs)

    def slot_of(mask):
        return np.minimum(minute[mask] // slot_minutes, S - 1)

    km_by = {}
    for name in ("assign", "pickup", "move", "charge_move"):
        m = kind == code[name]
        km_by[name] = np.bincount(slot_of(m), weights=km[m], minlength=S)
    plug_in = kind == code["plug_in"]
    queued = kind == code["queue"]
    # queue time per session: plug-in minute minus the same vehicle's latest queue minute
    q_rows = np.flatnonzero(queued)
    p_rows = np.flatnonzero(plug_in)
    qtimes = []
    if len(p_rows):
        # match each plug-in to the latest preceding queue event of the same vehicle
        qf = pd.DataFrame({"row": q_rows, "veh": veh[q_rows], "m": minute[q_rows]})
        pf = pd.DataFrame({"row": p_rows, "veh": veh[p_rows], "m": minute[p_rows]})
        mm = pd.merge_asof(pf.sort_values("row"), qf.sort_values("row"), on="row", by="veh", direction="backward",
                           suffixes=("", "_q"))
        qtimes = (mm["m"] - mm["m_q"]).to_numpy(float)

    summary = {
        "requests": int(is_req.sum()),
        "served": int(picked.sum()),
        "unserved": int(expired.sum()),
        "u_m_mean": nanmean(fair["u_m"]),
        "u_m_all_mean": nanmean(fair["u_m_all"]),
        "u_c_mean": nanmean(u_c),
        "zero_supply_region_slots": int(fair["zero_supply_regions"].sum()),
        "zero_supply_requests": float(fair["zero_supply_requests"].sum()),
        "balancing_km_vacant": float(km[kind == code["move"]].sum()),
        "balancing_km_charge": float(km[kind == code["charge_move"]].sum()),
        "pickup_km": float(km[kind == code["assign"]].sum()),
        "occupied_km": float(km[picked].sum()),
        "charging_sessions": int(plug_in.sum()),
        "energy_charged_kwh": float(kwh[kind == code["unplug"]].sum()),
        "charge_queue_mean_min": nanmean(qtimes),
        "stranded": int(len(np.unique(veh[kind == code["stranded"]]))),
        "idle_vehicle_minutes": float(idle_vm.sum()),
        **wait_summary(wait),
    }
    summary["balancing_km"] = summary["balancing_km_vacant"] + summary["balancing_km_charge"]
    empty = summary["balancing_km"] + summary["pickup_km"]
    total = empty + summary["occupied_km"]
    summary["evmt_share"] = empty / total if total > 0 else float("nan")
    slots = pd.DataFrame({
        "requests": D.sum(axis=1).astype(np.int64), "served": served_by_slot[:S], "unserved": unserved_by_slot[:S],
        "u_m": fair["u_m"], "u_m_all": fair["u_m_all"], "u_c": u_c,
        "zero_supply_regions": fair["zero_supply_regions"], "vacant": V.sum(axis=1), "low_battery": Lk.sum(axis=1),
        "km_vacant_moves": km_by["move"], "km_charge_moves": km_by["charge_move"], "km_pickup": km_by["assign"],
        "km_occupied": km_by["pickup"], "idle_vehicle_minutes": idle_vm,
        **{f"mean_{s}": slot_sum[i].sum(axis=0) / slot_minutes for i, s in enumerate(STATUS_NAMES)},
    })
    return {"summary": summary, "slots": slots, "energy_min": float(energy.min()) if len(energy) else 0.0,
            "final_energy": final_energy, "vehicles_per_minute": (float(tot_per_min.min()), float(tot_per_min.max())),
            "D": D, "V": V, "E": E}
