"""Offline policy evaluation: train on one period, replay held-out days under several policies.

The protocol (docs/evaluation.md): every (day, seed) pair is replayed under every policy on identical
requests, fleet draw (``SimConfig.seed`` = the seed) and chargers, so differences within a pair are
the policies'.  The fleet is sized by utilisation (``evaluation.fleet_sizing = "auto"``: the training
weekdays average ``trips_per_ev`` trips per EV per day) or fixed; estimates are fitted once on the
training period or refitted for every day on the N days before it (``estimates = "rolling:N"``); the
(day, seed, policy) replays run here or on Dask (``workers``, ``scheduler``) with identical results.

:func:`evaluate` returns an :class:`Evaluation` (one ``runs`` row per policy, day and seed, the
per-slot frames, the controller steps); :func:`compare` the per-policy table (means with 95 %
cluster-bootstrap intervals over days, clipped to each metric's range); :func:`summary_json` the
JSON of the CLI contract, with the paired comparisons against the baseline
(:func:`drbalance.paired.paired_comparisons`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from drbalance import metrics
from drbalance.report_data import region_slot_frame, regions_table
from drbalance.controller import Controller
from drbalance.distributed import run_tasks
from drbalance.errors import ConfigError
from drbalance.paired import bootstrap_mean, paired_comparisons
from drbalance.study import Study
from drbalance.study_config import OPTIMISERS, POLICIES, StudyConfig  # noqa: F401 - re-exported

#: Metrics of the comparison table: (summary key, label, direction: +1 larger is better, -1 smaller is better).
METRICS = (
    ("balancing_km", "balancing km / day", -1),
    ("u_m_mean", "mobility fairness u_m", +1),
    ("u_m_all_mean", "u_m incl. empty regions", +1),
    ("u_m_common_mean", "u_m on regions all cover", +1),
    ("u_c_mean", "charging fairness u_c", +1),
    ("served_rate", "served rate", +1),
    ("served", "served / day", +1),
    ("unserved", "unserved / day", -1),
    ("wait_mean_min", "mean wait (min)", -1),
    ("wait_p90_min", "p90 wait (min)", -1),
    ("evmt_share", "empty-km share", -1),
    ("step_s_median", "step time median (s)", -1),
    ("fallbacks", "fallbacks / day", -1),
)

#: Physical range (low, high; None = unbounded) of every metric: no interval is reported outside it.
RANGES = {"balancing_km": (0.0, None), "u_m_mean": (None, 0.0), "u_m_all_mean": (None, 0.0),
          "u_m_common_mean": (None, 0.0), "u_c_mean": (None, 0.0), "served_rate": (0.0, 1.0),
          "served": (0.0, None), "unserved": (0.0, None), "wait_mean_min": (0.0, None),
          "wait_p90_min": (0.0, None), "evmt_share": (0.0, 1.0), "step_s_median": (0.0, None),
          "fallbacks": (0.0, None)}

#: ``u_c`` rests on the charging sessions of the day: below this many per replayed day it is flagged
#: ``u_c_reliable: false`` (over a handful of sessions its sign flips with the fleet-draw seed).
U_C_MIN_SESSIONS = 20

#: rough relative cost of a replay (Dask gets the longest first)
_COST = {"noop": 0, "greedy": 1, "oracle_counts": 1}


@dataclass
class Evaluation:
    """Results: ``runs`` (one row per policy, day and seed: the simulator summary plus controller
    figures, ``u_m_common_mean``, ``decisions``, ``wait_counts``), ``slots`` (per-slot frames with
    ``policy``, ``day``, ``seed``, ``u_m_common``), ``steps`` (controller decisions), the resolved
    ``config`` (with the fleet size used), wall ``seconds`` and ``extra`` (``fleet``, ``seeds``,
    ``baseline``, ``estimates``, ``dask``, ``n_regions``, ...)."""

    runs: pd.DataFrame
    slots: pd.DataFrame
    steps: pd.DataFrame
    config: StudyConfig
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    region_slots: pd.DataFrame | None = None   # per (policy, day, seed, slot, region): demand, vacant, unserved
    regions: pd.DataFrame | None = None        # zone -> region with centroids (the report's map)


def auto_fleet_size(trips: pd.DataFrame, train: tuple[str, str], trips_per_ev: float) -> dict:
    """The fleet with which the training weekdays average ``trips_per_ev`` trips per EV per day.

    ``trips``: canonical trips (``pickup_time``); ``train``: ``(start, end)`` ISO dates, inclusive.
    Weekdays are Monday-Friday with at least one trip.  Returns ``{"size": N, "trips_per_ev": target,
    "weekday_trips_per_day": mean trips, "weekdays": count, "achieved_trips_per_ev": mean / N}`` with
    ``N = max(1, round(mean / trips_per_ev))``.  Raises :class:`ConfigError` without a training weekday.
    """
    start, end = (pd.Timestamp(x) for x in train)
    pt = trips["pickup_time"]
    day = pt[(pt >= start) & (pt < end + pd.Timedelta(days=1))].dt.normalize()
    per_day = day[day.dt.day_of_week < 5].value_counts()
    if not len(per_day):
        raise ConfigError(f"--fleet auto: no trip on a weekday of the training period {train[0]}..{train[1]}; "
                          "pass --fleet N or a training period with weekdays")
    mean = float(per_day.mean())
    n = max(1, int(round(mean / float(trips_per_ev))))
    return {"size": n, "trips_per_ev": float(trips_per_ev), "weekday_trips_per_day": mean,
            "weekdays": int(len(per_day)), "achieved_trips_per_ev": mean / n}


def replay_task(study: Study, day: str, seed: int, name: str, fleet: int) -> dict:
    """Replay ``day`` under policy ``name`` with ``fleet`` EVs drawn with ``seed`` (a Dask task: every
    argument is plain data or the scattered study).  Returns ``{"row", "slots", "steps", "D", "V",
    "wait_counts"}``: the ``runs`` row (:func:`replay_row` plus ``seed``, ``decisions``), the per-slot
    frame, the controller steps (or None), demand and post-dispatch vacant supply ``(S, n)`` and
    served requests by whole minutes of wait ``(patience + 1,)``."""
    d = pd.Timestamp(day)
    sim = study.simulator(d, sim=dataclasses.replace(study.config.sim, fleet_size=int(fleet), seed=int(seed)))
    policy = study.policy(name, sim, estimates=study.estimates_for(d))
    t1 = time.perf_counter()
    result = sim.run(policy)
    row, st = replay_row(name, d, result, policy, time.perf_counter() - t1)
    row["seed"] = int(seed)
    row["decisions"] = int(len(st)) if st is not None else np.nan
    served = result.requests["outcome"].to_numpy() == "served"
    waits = result.requests["wait_min"].to_numpy()[served].astype(np.int64)
    rs = result.region_slots
    S, n = len(result.slots), sim.regions.n
    return {"row": row, "slots": result.slots.assign(policy=name, day=str(d.date()), seed=int(seed)),
            "steps": None if st is None else st.assign(seed=int(seed)),
            "D": rs["demand"].to_numpy(float).reshape(S, n), "V": rs["vacant"].to_numpy(float).reshape(S, n),
            "wait_counts": np.bincount(waits, minlength=int(sim.config.patience_minutes) + 1),
            "region_slots": region_slot_frame(result, name, str(d.date())).assign(seed=int(seed))}


def evaluate(trips: pd.DataFrame, zones: pd.DataFrame, config: StudyConfig, progress=None, *,
             rejects: dict | None = None) -> Evaluation:
    """Train on ``config.evaluation.train`` and replay ``config.evaluation.days`` x ``seeds`` under its policies.

    ``trips`` is a validated canonical trips frame covering the training period and the days;
    ``zones`` the canonical zone frame.  The study (regions, estimates, chargers) is built once with
    :class:`drbalance.study.Study`; every policy of a (day, seed) pair replays the same requests,
    fleet draw and chargers.  ``progress(day, policy)`` is called after each replay; ``rejects`` (the
    reader's rows rejected by reason) is quoted in the errors of a period without accepted trips.
    """
    t0 = time.perf_counter()
    ev_cfg = config.evaluation
    if not ev_cfg.days:
        raise ConfigError("evaluation.days is empty: give the held-out days to replay (--days D1,D2,...)")
    study = Study.from_trips(trips, zones, config, rejects=rejects)
    if ev_cfg.fleet_sizing == "auto":
        fleet = auto_fleet_size(study.trips, ev_cfg.train, ev_cfg.trips_per_ev)
        config = config.replace(sim=dataclasses.replace(config.sim, fleet_size=fleet["size"]))
    else:
        fleet = {"size": int(config.sim.fleet_size), "trips_per_ev": None}
    fleet["sizing"] = ev_cfg.fleet_sizing
    seeds = ev_cfg.seeds or (config.seed,)
    days = [str(pd.Timestamp(d).date()) for d in ev_cfg.days]
    for d in days:   # rolling estimates: fitted here once per day, then shipped with the study
        study.estimates_for(d)
    order = {name: i for i, name in enumerate(ev_cfg.policies)}
    tasks = [(d, int(s), name, fleet["size"]) for d in days for s in seeds for name in ev_cfg.policies]
    tasks.sort(key=lambda t: -(_COST.get(t[2], 2)))   # stable: longest kind first, then canonical order

    def step(i, res):
        if progress is not None:
            progress(tasks[i][0], tasks[i][2])

    results, dask = run_tasks(replay_task, tasks, shared=study, workers=ev_cfg.workers,
                              scheduler=ev_cfg.scheduler, progress=step)
    results = [r for _, r in sorted(zip(tasks, results), key=lambda tr: (tr[0][0], tr[0][1], order[tr[0][2]]))]
    _add_u_m_common(results)
    runs = pd.DataFrame([r["row"] for r in results])
    runs["wait_counts"] = [r["wait_counts"].tolist() for r in results]
    steps = [r["steps"] for r in results if r["steps"] is not None]
    sim0 = study.simulator(days[0], sim=config.sim)
    extra = {"n_regions": study.regions.n, "circuity": study.circuity, "plugs_total": int(np.asarray(sim0.plugs).sum()),
             "fleet": fleet, "seeds": [int(s) for s in seeds], "baseline": ev_cfg.baseline_policy,
             "estimates": ev_cfg.estimates, "dask": dask}
    return Evaluation(runs, pd.concat([r["slots"] for r in results], ignore_index=True),
                      pd.concat(steps, ignore_index=True) if steps else pd.DataFrame(), config,
                      time.perf_counter() - t0, extra,
                      region_slots=pd.concat([r["region_slots"] for r in results], ignore_index=True),
                      regions=regions_table(study.regions))


def _add_u_m_common(results: list[dict]) -> None:
    """Fill ``u_m_common_mean`` (rows) and ``u_m_common`` (slots) of each (day, seed) group of
    results: u_m on the regions where every policy of the group has vacant supply."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["row"]["day"], r["row"]["seed"]), []).append(r)
    for group in groups.values():
        common = metrics.mobility_fairness_common(group[0]["D"], [r["V"] for r in group])
        for r, u in zip(group, common):
            r["row"]["u_m_common_mean"] = metrics.nanmean(u)
            r["slots"]["u_m_common"] = u


def replay_row(name: str, day: pd.Timestamp, result, policy, wall_s: float) -> tuple[dict, pd.DataFrame | None]:
    """One ``runs`` row from a replay: the simulator's scalar summary, ``replay_s`` and, for a
    :class:`drbalance.controller.Controller`, its step/solver medians and fallbacks (NaN/0 otherwise);
    also returns the controller's steps frame tagged with the day (None for other policies)."""
    row = {"policy": name, "day": str(day.date()),
           **{k: v for k, v in result.summary.items() if np.isscalar(v) or v is None}}
    row["replay_s"] = wall_s
    if not isinstance(policy, Controller):
        row["step_s_median"], row["solver_s_median"], row["fallbacks"] = np.nan, np.nan, 0
        return row, None
    st = policy.steps()
    row["step_s_median"] = float(st["step_s"].median()) if len(st) else np.nan
    row["solver_s_median"] = float(st["solve_s"].median()) if st["solve_s"].notna().any() else np.nan
    row["fallbacks"] = int((st["status"] != "solved").sum()) if "status" in st else int(policy.fallbacks)
    return row, st.assign(day=str(day.date()))


def compare(ev: Evaluation, baseline: str = "nominal") -> pd.DataFrame:
    """Mean, 95 % interval and change against ``baseline`` per policy and metric.

    The interval is a seeded cluster bootstrap of the mean over the runs, resampling whole days
    (:func:`drbalance.paired.bootstrap_mean`), clipped to the metric's :data:`RANGES`; none with one
    run.  Columns: ``policy``, ``metric``, ``label``, ``mean``, ``ci_low``, ``ci_high`` (NaN: no
    interval), ``n_days``, ``n_runs``, ``change_pct`` (``100 (mean - baseline mean) / |baseline
    mean|``; NaN when the baseline is absent or 0).
    """
    rows = []
    runs = ev.runs
    base = runs[runs["policy"] == baseline]
    seed = int(getattr(ev.config, "seed", 0) or 0)
    for name, g in runs.groupby("policy", sort=False):
        for key, label, _ in METRICS:
            if key not in g:
                continue
            b = bootstrap_mean(g[key].to_numpy(float), g["day"].to_numpy(), RANGES.get(key, (None, None)), seed=seed)
            mean = np.nan if b["mean"] is None else b["mean"]
            lo, hi = b["ci95"] if b["ci95"] is not None else (np.nan, np.nan)
            bm = float(base[key].mean()) if len(base) and key in base else np.nan
            change = 100 * (mean - bm) / abs(bm) if np.isfinite(bm) and bm != 0 else np.nan
            rows.append({"policy": name, "metric": key, "label": label, "mean": mean, "ci_low": lo, "ci_high": hi,
                         "n_days": int(g["day"].nunique()), "n_runs": b["n"], "change_pct": change})
    return pd.DataFrame(rows)


def _pooled_p90(counts) -> float | None:
    """90th percentile (whole minutes) of the waits pooled from per-run ``wait_counts`` lists."""
    arrs = [np.asarray(c, np.int64) for c in counts if c is not None and len(c)]
    if not arrs:
        return None
    total = np.zeros(max(len(a) for a in arrs), np.int64)
    for a in arrs:
        total[:len(a)] += a
    if total.sum() == 0:
        return None
    return float(np.quantile(np.repeat(np.arange(len(total)), total), 0.9))


def _col_mean(g: pd.DataFrame, col: str):
    if col not in g or not g[col].notna().any():
        return None
    return float(g[col].mean())


def policies_json(ev: Evaluation, table: pd.DataFrame) -> dict:
    """The ``{"policies": {name: {...}}}`` object of the CLI contract: ``served_rate`` pooled over the
    requests (0..1), ``balancing_km`` and ``unserved_per_day`` per replayed day, ``wait_min_mean`` and
    ``wait_min_p90`` over the served requests, ``fallback_share`` (controller decisions not
    ``solved`` / decisions; None for policies without decisions), the fairness means (``u_m_mean``,
    ``u_m_all_mean``, ``u_m_common_mean``, ``u_c_mean``), ``u_c_reliable`` (at least
    :data:`U_C_MIN_SESSIONS` charging sessions per replayed day), ``step_s_median``; also the totals
    ``served``/``unserved`` (they add up to the requests), ``fallbacks``, the per-metric ``ci95`` and
    ``change_vs_nominal_pct`` of :func:`compare`'s ``table``."""
    out = {}
    for name, g in ev.runs.groupby("policy", sort=False):
        t = table[table["policy"] == name].set_index("metric")
        served = g["served"].to_numpy(float)
        wm = g["wait_mean_min"].to_numpy(float) if "wait_mean_min" in g else np.full(len(g), np.nan)
        ok = np.isfinite(wm) & (served > 0)
        decisions = float(g["decisions"].sum()) if "decisions" in g and g["decisions"].notna().any() else 0.0
        sessions = _col_mean(g, "charging_sessions")
        out[name] = {
            "balancing_km": float(g["balancing_km"].mean()),
            "u_m_mean": float(g["u_m_mean"].mean()),
            "u_c_mean": float(g["u_c_mean"].mean()),
            "served": int(g["served"].sum()),
            "unserved": int(g["unserved"].sum()),
            "step_s_median": float(g["step_s_median"].median()) if g["step_s_median"].notna().any() else None,
            "fallbacks": int(g["fallbacks"].sum()),
            "u_m_all_mean": float(g["u_m_all_mean"].mean()),
            "served_rate": float(g["served"].sum() / max(g["requests"].sum(), 1)),
            "solver_s_median": float(g["solver_s_median"].median()) if g["solver_s_median"].notna().any() else None,
            "replay_s_mean": float(g["replay_s"].mean()),
            "unserved_per_day": float(g["unserved"].mean()),
            "wait_min_mean": float((wm[ok] * served[ok]).sum() / served[ok].sum()) if ok.any() else None,
            "wait_min_p90": _pooled_p90(g["wait_counts"]) if "wait_counts" in g else _col_mean(g, "wait_p90_min"),
            "fallback_share": float(g["fallbacks"].sum() / decisions) if decisions > 0 else None,
            "decisions": int(decisions),
            "u_m_common_mean": _col_mean(g, "u_m_common_mean"),
            "charging_sessions_per_day": sessions,
            "u_c_reliable": bool(sessions is not None and sessions >= U_C_MIN_SESSIONS),
            "runs": int(len(g)),
            "ci95": {m: (None if not np.isfinite(t.at[m, "ci_low"]) else [float(t.at[m, "ci_low"]),
                                                                           float(t.at[m, "ci_high"])])
                     for m in t.index},
            "change_vs_nominal_pct": {m: (None if not np.isfinite(t.at[m, "change_pct"]) else float(t.at[m, "change_pct"]))
                                      for m in t.index},
        }
    return {"policies": out}


def summary_json(ev: Evaluation, table: pd.DataFrame) -> dict:
    """The JSON of ``drbalance evaluate`` without the configuration: :func:`policies_json` plus
    ``fleet`` (EVs replayed), ``fleet_sizing`` (how it was chosen), ``days``, ``seeds``, ``baseline``,
    ``paired`` (:func:`drbalance.paired.paired_comparisons` of every other policy against the
    baseline, per (day, seed) pair), ``estimates``, ``n_regions``, ``workers`` and ``seconds``."""
    cfg = ev.config
    baseline = ev.extra.get("baseline", "nominal")
    payload = policies_json(ev, table)
    payload.update(
        fleet=int(cfg.sim.fleet_size), fleet_sizing=ev.extra.get("fleet"), days=list(cfg.evaluation.days),
        seeds=ev.extra.get("seeds"), baseline=baseline,
        paired=paired_comparisons(ev.runs, baseline, patience_min=cfg.sim.patience_minutes, seed=cfg.seed),
        estimates=ev.extra.get("estimates"), n_regions=ev.extra.get("n_regions"),
        workers=(ev.extra.get("dask") or {}).get("workers"), seconds=ev.seconds)
    return payload


def plot_day_profiles(ev: Evaluation, folder) -> list:
    """One PNG per metric over the day (mean over days per slot), one line per policy."""
    from matplotlib.figure import Figure  # lazy (b): heavy (~0.7 s), only when plotting

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    s = ev.slots.copy()
    s["km_balancing"] = s.get("km_vacant_moves", 0) + s.get("km_charge_moves", 0)
    paths = []
    for col, label in (("u_m", "mobility fairness u_m"), ("u_m_all", "u_m incl. empty regions"),
                       ("u_c", "charging fairness u_c"), ("served_rate", "served rate"),
                       ("km_balancing", "balancing km per slot")):
        if col not in s:
            continue
        fig = Figure(figsize=(8, 4))
        ax = fig.subplots()
        for name, g in s.groupby("policy", sort=False):
            prof = g.groupby("slot")[col].mean()
            ax.plot(prof.index * ev.config.slot_minutes / 60, prof.to_numpy(), label=name)
        ax.set_xlabel("hour of day")
        ax.set_ylabel(label)
        ax.set_title(f"{label}: mean over {s['day'].nunique()} day(s)")
        ax.legend()
        fig.tight_layout()
        p = folder / f"profile_{col}.png"
        fig.savefig(p, dpi=110)
        paths.append(p)
    return paths
