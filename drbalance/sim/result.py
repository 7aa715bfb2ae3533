"""What a simulation run returns: :class:`SimResult` (frames, summary, parquet output, plots)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from drbalance import metrics
from drbalance.io import write_json
from drbalance.codes import CHARGING, IDLE, LOW, N_STATUS, QUEUED, STATUS_NAMES, STRANDED


@dataclass
class SimResult:
    """Result of :meth:`drbalance.sim.Simulator.run`.

    Attributes
    ----------
    slots : per-slot frame (one row per decision slot of the window): ``start`` time, ``requests``
        (arriving in the slot), ``served``/``unserved`` (of those requests), ``served_rate``,
        ``u_m``, ``u_m_all``, ``u_c``, ``zero_supply_regions``, ``zero_supply_requests``,
        ``vacant``/``low_battery`` (post-dispatch ``Σ V``, ``Σ L``), km per slot (``km_vacant_moves``,
        ``km_charge_moves``, ``km_pickup``, ``km_occupied``; legs counted in the slot they start, the
        after-window tail in the last slot), ``idle_vehicle_minutes``, ``wait_mean_min`` and
        ``mean_<status>`` (vehicles in each status, averaged over the slot's minutes).
    region_slots : long frame ``slot, region, demand, vacant, low_battery, plugs, occupied_plugs``
        (``D``, post-dispatch ``V``, ``L``, ``C``, slot-mean ``E``).
    events : the event log (:mod:`drbalance.sim.log`).
    requests : one row per request: times, regions, km, ``outcome`` (``served``/``unserved``),
        ``wait_min``, ``vehicle``, ``pickup_km``, ``km_imputed``.
    summary : dict of day metrics (see :func:`build_result`).
    config : the resolved configuration (dict).
    final_status, final_energy, initial_energy : ``(N,)`` per-vehicle arrays at the end / start (kWh).
    """

    slots: pd.DataFrame
    region_slots: pd.DataFrame
    events: pd.DataFrame
    requests: pd.DataFrame
    summary: dict
    config: dict
    final_status: np.ndarray
    final_energy: np.ndarray
    initial_energy: np.ndarray
    plugs: np.ndarray = field(repr=False, default=None)

    def frame_hash(self) -> str:
        """SHA-256 of the per-slot frame (values and index): equal for equal runs."""
        h = pd.util.hash_pandas_object(self.slots, index=True).to_numpy()
        return hashlib.sha256(h.tobytes()).hexdigest()

    def to_parquet(self, folder) -> dict[str, Path]:
        """Write ``slots``, ``region_slots``, ``events``, ``requests`` as parquet and ``summary.json``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = {}
        for name in ("slots", "region_slots", "events", "requests"):
            p = folder / f"{name}.parquet"
            getattr(self, name).to_parquet(p, index=False)
            out[name] = p
        write_json(folder / "summary.json", self.summary)
        out["summary"] = folder / "summary.json"
        return out

    def plot(self, folder) -> list[Path]:
        """Three PNGs (matplotlib, Agg): fairness over the day, served rate, fleet state stack."""
        from matplotlib.figure import Figure  # lazy (b): heavy (~0.7 s), only when plotting

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        s = self.slots
        x = pd.to_datetime(s["start"])
        paths = []
        fig = Figure(figsize=(9, 4))
        ax = fig.subplots()
        ax.plot(x, s["u_m"], label="u_m (mobility, V>0 regions)")
        ax.plot(x, s["u_m_all"], label="u_m_all (V floored at 1)", linestyle="--")
        ax2 = ax.twinx()
        ax2.plot(x, s["u_c"], color="tab:green", label="u_c (charging)")
        ax.set_ylabel("mobility fairness (0 = fair)")
        ax2.set_ylabel("charging fairness (0 = fair)")
        ax.set_title(f"Fairness per slot — policy {self.config.get('policy', '?')}")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="lower left", fontsize=8)
        fig.autofmt_xdate()
        paths.append(_save(fig, folder / "fairness.png"))
        fig = Figure(figsize=(9, 4))
        ax = fig.subplots()
        ax.bar(x, s["requests"], width=pd.Timedelta(minutes=int(self.config["slot_minutes"])) * 0.9, alpha=0.3,
               label="requests", align="edge")
        ax.set_ylabel("requests per slot")
        ax2 = ax.twinx()
        ax2.plot(x, s["served_rate"], color="tab:red", label="served rate")
        ax2.set_ylim(0, 1.05)
        ax2.set_ylabel("served / requests")
        ax.set_title("Requests and served rate per slot")
        fig.autofmt_xdate()
        paths.append(_save(fig, folder / "served_rate.png"))
        fig = Figure(figsize=(9, 4))
        ax = fig.subplots()
        ax.stackplot(x, *[s[f"mean_{n}"] for n in STATUS_NAMES], labels=list(STATUS_NAMES))
        ax.set_ylabel("vehicles (slot mean)")
        ax.set_title("Fleet state")
        ax.legend(loc="upper left", fontsize=7, ncol=3)
        fig.autofmt_xdate()
        paths.append(_save(fig, folder / "fleet_state.png"))
        return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def fleet_charging_metrics(run, served, waits, km_charge: float, empty_km: float, total_km: float) -> dict:
    """Fleet-operation metrics of the seed paper's Table 4 (MATH.md section 5).

    ``*_day`` values scale the window to 24 h (``x * 1440 / window minutes``); the others are window totals.
    A *charging trip* is a drive to a charger (policy charge move or strategy rule); a *charging vehicle*
    made at least one.  Hours at chargers count queued + plugged minutes over the whole run.
    """
    N = int(run.f.size)
    day = 1440.0 / run.sim.requests.minutes
    ct = run.charge_trips
    charging_vehicles = int((ct > 0).sum())
    n_served = int(np.sum(served))
    nan = float("nan")
    return {
        "empty_vmt_pct": 100.0 * empty_km / total_km if total_km > 0 else nan,
        "charging_vmt_pct": 100.0 * km_charge / total_km if total_km > 0 else nan,
        "trips_per_vehicle": n_served / N,
        "trips_per_vehicle_day": n_served / N * day,
        "charging_trips": int(ct.sum()),
        "charging_vehicles": charging_vehicles,
        "charging_trips_per_charging_vehicle": float(ct.sum()) / charging_vehicles if charging_vehicles else 0.0,
        "charging_trips_per_charging_vehicle_day": (float(ct.sum()) / charging_vehicles * day
                                                    if charging_vehicles else 0.0),
        "charger_hours_total": float(run.charger_minutes.sum()) / 60.0,
        "charger_hours_per_charging_vehicle": (float(run.charger_minutes[ct > 0].sum()) / 60.0 / charging_vehicles
                                               if charging_vehicles else 0.0),
        "response_time_mean_min": metrics.nanmean(waits),
        "exits_early": int(run.exits_early),
        "triggered_idle": int(run.triggered["idle"]),
        "triggered_opportunistic": int(run.triggered["opportunistic"]),
        "triggered_self_dispatch": int(run.triggered["self_dispatch"]),
        "battery_kwh_mean": float(run.cap.mean()),
    }


def build_result(run, seconds: float) -> SimResult:
    """Assemble the :class:`SimResult` of a finished run from its own counters (not from the log)."""
    sim, c = run.sim, run.c
    req = sim.requests
    S, n, slot = run.S, run.n, c.slot_minutes
    D = req.counts(slot, n, "origin")
    fair = metrics.mobility_fairness(D, run.V_post)
    E = run.acc[:, CHARGING, :] / slot
    u_c = metrics.charging_fairness(E, sim.plugs)
    served = run.outcome == 1
    arr_slot = req.arrival // slot
    served_slot = np.bincount(arr_slot[served], minlength=S)
    unserved_slot = np.bincount(arr_slot[run.outcome == 2], minlength=S)
    wait_sum = np.bincount(arr_slot[served], weights=run.wait[served], minlength=S)
    idle_vm = run.acc[:, IDLE, :].sum(axis=1) + run.acc[:, LOW, :].sum(axis=1)
    start = req.start
    reqs = D.sum(axis=1).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        slots = pd.DataFrame({
            "slot": np.arange(S),
            "start": pd.date_range(start, periods=S, freq=f"{slot}min"),
            "requests": reqs, "served": served_slot, "unserved": unserved_slot,
            "served_rate": np.where(reqs > 0, served_slot / np.maximum(reqs, 1), np.nan),
            "u_m": fair["u_m"], "u_m_all": fair["u_m_all"], "u_c": u_c,
            "zero_supply_regions": fair["zero_supply_regions"], "zero_supply_requests": fair["zero_supply_requests"],
            "vacant": run.V_post.sum(axis=1), "low_battery": run.L_post.sum(axis=1),
            "km_vacant_moves": run.km["move"], "km_charge_moves": run.km["charge_move"],
            "km_pickup": run.km["assign"], "km_occupied": run.km["pickup"],
            "idle_vehicle_minutes": idle_vm,
            "wait_mean_min": np.where(served_slot > 0, wait_sum / np.maximum(served_slot, 1), np.nan),
            **{f"mean_{name}": run.acc[:, i, :].sum(axis=1) / slot for i, name in enumerate(STATUS_NAMES)},
        })
    rs = pd.DataFrame({
        "slot": np.repeat(np.arange(S), n), "region": np.tile(sim.regions.region_ids, S),
        "demand": D.ravel(), "vacant": run.V_post.ravel(), "low_battery": run.L_post.ravel(),
        "plugs": np.tile(sim.plugs, S), "occupied_plugs": E.ravel()})
    events = run.log.frame()
    waits = run.wait[served]
    qt = np.concatenate(run.queue_times) if run.queue_times else np.zeros(0, np.int64)
    f = run.f
    km_vac, km_chg = float(run.km["move"].sum()), float(run.km["charge_move"].sum())
    km_pick, km_occ = float(run.km["assign"].sum()), float(run.km["pickup"].sum())
    empty = km_vac + km_chg + km_pick
    total = empty + km_occ
    cap = run.cap
    soc0 = run.initial_energy / cap
    summary = {
        "policy": run.name,
        "requests": int(len(req)),
        "served": int(served.sum()),
        "unserved": int((run.outcome == 2).sum()),
        "served_rate": float(served.mean()) if len(req) else float("nan"),
        "u_m_mean": metrics.nanmean(fair["u_m"]),
        "u_m_all_mean": metrics.nanmean(fair["u_m_all"]),
        "u_c_mean": metrics.nanmean(u_c),
        "slots_without_vacant": int(np.isnan(fair["u_m"]).sum()),
        "zero_supply_region_slots": int(fair["zero_supply_regions"].sum()),
        "zero_supply_requests": float(fair["zero_supply_requests"].sum()),
        "balancing_km": km_vac + km_chg,
        "balancing_km_vacant": km_vac,
        "balancing_km_charge": km_chg,
        "pickup_km": km_pick,
        "occupied_km": km_occ,
        "empty_km": empty,
        "total_km": total,
        "evmt_share": empty / total if total > 0 else float("nan"),
        **metrics.wait_summary(waits),
        "wait_histogram": metrics.wait_histogram(waits, c.patience_minutes),
        "charging_sessions": int(len(qt)),
        "energy_charged_kwh": run.charged_kwh,
        "charge_queue_mean_min": metrics.nanmean(qt),
        "charge_queue_p90_min": float(np.quantile(qt, 0.9)) if len(qt) else float("nan"),
        "queued_at_end": int((f.status == QUEUED).sum()),
        "stranded": int((f.status == STRANDED).sum()),
        "idle_vehicle_minutes": float(idle_vm.sum()),
        "idle_minutes_per_vehicle": float(idle_vm.sum()) / f.size,
        "moves_refused_energy": int(run.refused),
        "charge_redirected": int(run.redirected),
        "vehicles": int(f.size),
        "vehicles_end": int(np.bincount(f.status, minlength=N_STATUS).sum()),
        "vehicle_minutes": int(f.size) * int(run.end_minute),
        "end_minute": int(run.end_minute),
        "plugs": int(sim.plugs.sum()),
        "initial_soc_mean": float(soc0.mean()),
        "initial_soc_sd": float(soc0.std()),
        "final_soc_mean": float((f.energy / cap).mean()),
        "km_imputed_requests": int(req.imputed.sum()),
        "requests_outside_regions": int(req.outside_regions),
        **fleet_charging_metrics(run, served, waits, km_chg, empty, total),
        "plan_seconds": run.plan_seconds,
        "seconds": seconds,
    }
    summary["vehicle_minutes_per_second"] = summary["vehicle_minutes"] / seconds if seconds > 0 else float("nan")
    rq = pd.DataFrame({
        "pickup_time": req.pickup_time, "arrival_minute": req.arrival,
        "origin": sim.regions.region_ids[req.origin], "destination": sim.regions.region_ids[req.destination],
        "km": req.km, "km_imputed": req.imputed, "duration_min": req.duration,
        "outcome": np.where(served, "served", "unserved"), "wait_min": np.where(served, run.wait, -1),
        "match_minute": run.match_minute, "vehicle": run.vehicle, "pickup_km": run.pickup_km, "source_row": req.row})
    config = {**c.to_dict(), "policy": run.name, "n_regions": n, "start": str(start), "minutes": req.minutes}
    return SimResult(slots, rs, events, rq, summary, json.loads(json.dumps(config, default=str)),
                     f.status.copy(), f.energy.copy(), run.initial_energy, sim.plugs.copy())
