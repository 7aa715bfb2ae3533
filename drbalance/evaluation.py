"""Offline policy evaluation: train on one period, replay held-out days under several policies.

Every policy of a day sees the same requests, the same fleet draw (seed) and the same chargers, so
differences are the policies'.  :func:`evaluate` returns an :class:`Evaluation` with one row per
(policy, day), the per-slot frames and the controller steps; :func:`compare` turns it into the
table (mean and 95 % interval over days, percentage change against ``nominal``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from drbalance.errors import ConfigError, DataError

POLICIES = ("noop", "greedy", "nominal", "demand_robust", "dr")
OPTIMISERS = ("nominal", "demand_robust", "dr")

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


@dataclass(frozen=True, kw_only=True)
class ReplayOptions:
    """Choices shared by every policy replay (:class:`EvaluationConfig`, the scenario evaluation).

    Units: km, minutes, seconds.  ``later_reach_km`` is the optimisers' reach for slots 2..K (None =
    their full reach; 2.0 makes per-zone NYC 2.3x faster, see docs/balancing.md); ``supply_floor``
    (vehicles) keeps ``r / (S + s)`` finite where no EV can reach a region; ``queue_allowance`` lets a
    full charger region take that many queued EVs; ``radius_scale`` multiplies every set radius γ (for
    sweeps); ``robust_radius``, ``epsilon``, ``delta``, ``n_bootstrap``, ``rank`` configure the
    uncertainty sets (:class:`data_pipeline.estimates.EstimateConfig`); ``step_budget_s`` is the
    controller's per-step budget.
    """

    policies: tuple[str, ...] = POLICIES
    seed: int = 0
    slot_minutes: int = 15
    horizon: int = 4
    speed_kmh: float = 20.0
    plugs_per_vehicle: float = 0.1
    later_reach_km: float | None = None
    supply_floor: float = 1.0
    queue_allowance: float = 1.0
    alpha: float = 1.0
    beta1: float = 1.0
    radius_scale: float = 1.0
    robust_radius: str = "chi2"
    epsilon: float = 0.1
    delta: float = 0.1
    n_bootstrap: int = 500
    rank: int | None = None
    step_budget_s: float = 30.0

    def __post_init__(self) -> None:
        unknown = [p for p in self.policies if p not in POLICIES]
        if unknown or not self.policies:
            raise ConfigError(f"unknown policies {unknown}; choose from {', '.join(POLICIES)}")
        if len(set(self.policies)) != len(self.policies):
            raise ConfigError(f"policies repeat: {self.policies}")
        if not self.radius_scale >= 0:
            raise ConfigError(f"radius_scale must be >= 0, got {self.radius_scale}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class EvaluationConfig(ReplayOptions):
    """Every choice of an evaluation run on trip logs (the CLI writes it next to the results).

    Units: km, minutes, seconds; ``fleet`` in EVs.  ``regions`` coarsens the zones with seeded
    demand-weighted k-means (None keeps every zone).  ``reach_km`` is the vacant-EV reach of the
    optimisers (None: one slot of driving at ``speed_kmh``), ``low_battery_reach_km`` their charger
    reach; the other options are :class:`ReplayOptions`.
    """

    train: tuple[str, str]
    days: tuple[str, ...]
    fleet: int
    regions: int | None = 20
    hours: float = 24.0
    reach_km: float | None = 10.0
    low_battery_reach_km: float = 9.0
    beta2: float = 1.0
    circuity: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.days:
            raise ConfigError("no evaluation days given (--days D1,D2,...)")
        last_train = pd.Timestamp(self.train[1]).normalize()
        early = [d for d in self.days if pd.Timestamp(d).normalize() <= last_train]
        if early:
            raise ConfigError(f"evaluation days {early} are not after the training period ending {last_train.date()} "
                              "(no look-ahead: evaluate on held-out days only)")
        if self.fleet < 1:
            raise ConfigError(f"fleet must be >= 1 EV, got {self.fleet}")


@dataclass
class Evaluation:
    """Results: ``runs`` (one row per policy and day: the simulator summary plus controller figures),
    ``slots`` (per-slot frames with ``policy`` and ``day``), ``steps`` (controller decisions),
    ``config`` and wall ``seconds``."""

    runs: pd.DataFrame
    slots: pd.DataFrame
    steps: pd.DataFrame
    config: EvaluationConfig
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def evaluate(trips: pd.DataFrame, zones: pd.DataFrame, config: EvaluationConfig, progress=None) -> Evaluation:
    """Train on ``config.train`` and replay ``config.days`` under ``config.policies``.

    ``trips`` is a validated canonical trips frame covering the training period and the days;
    ``zones`` the canonical zone frame.  ``progress(day, policy)`` is called after each replay.
    """
    from data_pipeline.estimates import EstimateConfig, Estimates
    from data_pipeline.panels import trip_panels
    from data_pipeline.regions import RegionMap, estimate_circuity
    from drbalance.sim import PlugSiting, SimConfig, Simulator

    t0 = time.perf_counter()
    c = config
    train_start, train_end = (pd.Timestamp(x).normalize() for x in c.train)
    pt = trips["pickup_time"]
    train_trips = trips[(pt >= train_start) & (pt < train_end + pd.Timedelta(days=1))]
    if train_trips["pickup_time"].dt.normalize().nunique() < 2:
        raise DataError(f"fewer than 2 days with trips in the training period {c.train[0]}..{c.train[1]}")
    circuity = c.circuity if c.circuity is not None else estimate_circuity(train_trips, zones)
    regions = RegionMap.from_zones(zones, circuity)
    demand_w = np.bincount(regions.region_of(train_trips["pickup_zone"].to_numpy()), minlength=regions.n).astype(float)
    if c.regions is not None:
        regions = regions.coarsen(c.regions, demand_w, random_state=c.seed)
        demand_w = np.bincount(regions.region_of(train_trips["pickup_zone"].to_numpy()),
                               minlength=regions.n).astype(float)
    panels = trip_panels(train_trips, regions, c.train[0], c.train[1], c.slot_minutes)
    est = Estimates.fit(panels, regions, EstimateConfig(
        slot_minutes=c.slot_minutes, horizon=c.horizon, epsilon=c.epsilon, delta=c.delta, n_bootstrap=c.n_bootstrap,
        rank=c.rank, robust_radius=c.robust_radius, random_state=c.seed))
    sim_cfg = SimConfig(fleet_size=c.fleet, seed=c.seed, slot_minutes=c.slot_minutes, speed_kmh=c.speed_kmh)
    minutes = int(round(c.hours * 60))
    runs, slot_frames, step_frames = [], [], []
    for day_s in c.days:
        day = pd.Timestamp(day_s).normalize()
        day_trips = trips[(pt >= day) & (pt < day + pd.Timedelta(days=1))]
        if len(day_trips) == 0:
            raise DataError(f"no accepted trips on evaluation day {day.date()}; check --days against the files")
        for name in c.policies:
            sim = Simulator.from_trips(day_trips, regions, day, sim_cfg,
                                       siting=PlugSiting(per_vehicle=c.plugs_per_vehicle),
                                       siting_weights=demand_w, zones=zones, minutes=minutes)
            policy = build_policy(name, sim, est, c, c.reach_km, c.low_battery_reach_km, c.beta2)
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
                      time.perf_counter() - t0, {"n_regions": regions.n, "circuity": circuity,
                                                 "plugs_total": int(np.asarray(sim.plugs).sum())})


def build_policy(name: str, sim, estimates, c, reach_km: float | None, low_battery_reach_km: float,
                 beta2: float):
    """Policy ``name`` for simulator ``sim``: a :class:`drbalance.controller.Controller` for the
    optimisers (with ``greedy`` as its fallback) configured from ``c`` (an evaluation config with the
    balancing fields), else the built-in policy.  Reaches in km."""
    from drbalance.controller import Controller, ControllerConfig
    from drbalance.policies import make_policy
    from drbalance.problem import BalancingConfig

    if name not in OPTIMISERS:
        return make_policy(name, sim, estimates)
    bal = BalancingConfig(mode=name, horizon=c.horizon, slot_minutes=c.slot_minutes, reach_km=reach_km,
                          later_reach_km=c.later_reach_km, speed_kmh=c.speed_kmh,
                          low_battery_reach_km=low_battery_reach_km, alpha=c.alpha, beta1=c.beta1, beta2=beta2,
                          supply_floor=c.supply_floor, queue_allowance=c.queue_allowance)
    ctl = ControllerConfig(mode=name, step_budget_s=c.step_budget_s, low_battery_reach_km=low_battery_reach_km,
                           radius_scale=c.radius_scale)
    return Controller(estimates, bal, ctl, fallback=make_policy("greedy", sim, estimates), name=name)


def replay_row(name: str, day: pd.Timestamp, result, policy, wall_s: float) -> tuple[dict, pd.DataFrame | None]:
    """One ``runs`` row from a replay: the simulator's scalar summary, ``replay_s`` and, for a
    :class:`drbalance.controller.Controller`, its step/solver medians and fallbacks (NaN/0 otherwise);
    also returns the controller's steps frame tagged with the day (None for other policies)."""
    from drbalance.controller import Controller

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pathlib import Path

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
        fig, ax = plt.subplots(figsize=(8, 4))
        for name, g in s.groupby("policy", sort=False):
            prof = g.groupby("slot")[col].mean()
            ax.plot(prof.index * ev.config.slot_minutes / 60, prof.to_numpy(), label=name)
        ax.set_xlabel("hour of day")
        ax.set_ylabel(label)
        ax.set_title(f"{label}: mean over {len(ev.config.days)} day(s)")
        ax.legend()
        fig.tight_layout()
        p = folder / f"profile_{col}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths
