"""Offline policy evaluation: train on one period, replay held-out days under several policies.

Every policy of a day sees the same requests, the same fleet draw (seed) and the same chargers, so
differences are the policies'.  :func:`evaluate` returns an :class:`Evaluation` with one row per
(policy, day), the per-slot frames and the controller steps; :func:`compare` turns it into the
table (mean and 95 % interval over days, percentage change against ``nominal``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from drbalance.controller import Controller
from drbalance.errors import ConfigError
from drbalance.study import Study
from drbalance.study_config import OPTIMISERS, POLICIES, StudyConfig  # noqa: F401 - re-exported

#: Metrics of the comparison table: (summary key, label, direction: +1 larger is better, -1 smaller is better).
METRICS = (
    ("balancing_km", "balancing km / day", -1),
    ("u_m_mean", "mobility fairness u_m", +1),
    ("u_m_all_mean", "u_m incl. empty regions", +1),
    ("u_c_mean", "charging fairness u_c", +1),
    ("served_rate", "served rate", +1),
    ("served", "served / day", +1),
    ("unserved", "unserved / day", -1),
    ("wait_mean_min", "mean wait (min)", -1),
    ("evmt_share", "empty-km share", -1),
    ("step_s_median", "step time median (s)", -1),
    ("fallbacks", "fallbacks / day", -1),
)


@dataclass
class Evaluation:
    """Results: ``runs`` (one row per policy and day: the simulator summary plus controller figures),
    ``slots`` (per-slot frames with ``policy`` and ``day``), ``steps`` (controller decisions),
    ``config`` and wall ``seconds``."""

    runs: pd.DataFrame
    slots: pd.DataFrame
    steps: pd.DataFrame
    config: StudyConfig
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def evaluate(trips: pd.DataFrame, zones: pd.DataFrame, config: StudyConfig, progress=None, *,
             rejects: dict | None = None) -> Evaluation:
    """Train on ``config.evaluation.train`` and replay ``config.evaluation.days`` under its policies.

    ``trips`` is a validated canonical trips frame covering the training period and the days;
    ``zones`` the canonical zone frame.  The study (regions, estimates, chargers) is built once with
    :class:`drbalance.study.Study`; every policy of a day replays the same requests, fleet draw and
    chargers.  ``progress(day, policy)`` is called after each replay; ``rejects`` (the reader's rows
    rejected by reason) is quoted in the errors of a period without accepted trips.
    """
    t0 = time.perf_counter()
    if not config.evaluation.days:
        raise ConfigError("evaluation.days is empty: give the held-out days to replay (--days D1,D2,...)")
    study = Study.from_trips(trips, zones, config, rejects=rejects)
    runs, slot_frames, step_frames = [], [], []
    sim = None
    for day_s in config.evaluation.days:
        day = pd.Timestamp(day_s).normalize()
        for name in config.evaluation.policies:
            sim = study.simulator(day)
            policy = study.policy(name, sim)
            t1 = time.perf_counter()
            result = sim.run(policy)
            row, st = replay_row(name, day, result, policy, time.perf_counter() - t1)
            if st is not None:
                step_frames.append(st)
            runs.append(row)
            slot_frames.append(result.slots.assign(policy=name, day=str(day.date())))
            if progress is not None:
                progress(str(day.date()), name)
    steps = pd.concat(step_frames, ignore_index=True) if step_frames else pd.DataFrame()
    return Evaluation(pd.DataFrame(runs), pd.concat(slot_frames, ignore_index=True), steps, config,
                      time.perf_counter() - t0, {"n_regions": study.regions.n, "circuity": study.circuity,
                                                 "plugs_total": int(np.asarray(sim.plugs).sum())})


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
    row["fallbacks"] = int(policy.fallbacks)
    return row, st.assign(day=str(day.date()))


def compare(ev: Evaluation, baseline: str = "nominal") -> pd.DataFrame:
    """Mean, 95 % interval (Student t over days) and change against ``baseline`` per policy and metric.

    Columns: ``policy``, ``metric``, ``mean``, ``ci_low``, ``ci_high``, ``n_days``, ``change_pct``
    (``100 (mean - baseline mean) / |baseline mean|``; NaN when the baseline is absent or 0).
    """
    rows = []
    base = ev.runs[ev.runs["policy"] == baseline]
    for name, g in ev.runs.groupby("policy", sort=False):
        for key, label, _ in METRICS:
            if key not in g:
                continue
            v = g[key].to_numpy(float)
            v = v[np.isfinite(v)]
            n = len(v)
            mean = float(v.mean()) if n else np.nan
            half = float(stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
            bm = float(base[key].mean()) if len(base) and key in base else np.nan
            change = 100 * (mean - bm) / abs(bm) if np.isfinite(bm) and bm != 0 else np.nan
            rows.append({"policy": name, "metric": key, "label": label, "mean": mean, "ci_low": mean - half,
                         "ci_high": mean + half, "n_days": n, "change_pct": change})
    return pd.DataFrame(rows)


def policies_json(ev: Evaluation, table: pd.DataFrame) -> dict:
    """The ``{"policies": {name: {...}}}`` object of the CLI contract (day means; served/unserved are
    totals over the days so that they add up to the requests)."""
    out = {}
    for name, g in ev.runs.groupby("policy", sort=False):
        t = table[table["policy"] == name].set_index("metric")
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
            "ci95": {m: [float(t.at[m, "ci_low"]), float(t.at[m, "ci_high"])] for m in t.index},
            "change_vs_nominal_pct": {m: (None if not np.isfinite(t.at[m, "change_pct"]) else float(t.at[m, "change_pct"]))
                                      for m in t.index},
        }
    return {"policies": out}


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
