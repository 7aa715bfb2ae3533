"""Evaluate dispatch policies on a peers' benchmark instance (:class:`data_pipeline.scenarios.Scenario`).

The same machinery as :func:`drbalance.evaluation.evaluate`, fed with sampled scenario demand instead
of trip logs:

1. **History.**  ``history_days`` seeded Poisson days are drawn from the scenario's OD means
   (:meth:`Scenario.sample_trips`, one seed per day from ``SeedSequence([seed, 0, d])``); demand and
   supply panels of ``slot_minutes`` slots are built from them and :class:`Estimates` (forecasts and
   uncertainty sets, horizon ``K``) are fitted on them.
2. **Fresh days.**  ``days`` further days, each from ``SeedSequence([seed, 1, d])`` -- a different
   seed stream, dated after the history, so the controller never sees them (no look-ahead).  Adding
   days does not change the earlier ones.
3. **Replay.**  Every fresh day is replayed under every policy with the same requests, the same
   fleet draw (``SeedSequence([seed, 2, d])``) and the same chargers; only the scenario's demand window
   is replayed: the simulator window starts at ``day + window start`` (e.g. 19:00) and lasts the window
   length (or ``window_minutes``).  The simulator and controller use absolute timestamps, so the
   controller's slot-of-day is the real one (slot 76 at 19:00 for 15-min slots) and matches the
   estimates; nothing is shifted.

Dates: every sampled day is a weekday (history from Monday 2030-01-07, consecutive business days,
then the fresh days).  The scenarios have a single demand profile, and :class:`Estimates` keeps
separate weekday/weekend sets; putting all days on weekdays lets the whole history feed one set.

Chargers: eAMoD graphs give ``carsPerStationCapacity`` per region, used as plugs.  RL4AMOD has no
charging data: plugs are sited with :class:`PlugSiting` (``plugs_per_vehicle`` x fleet, proportional
to the history's pick-ups) only because the simulator needs somewhere to send low-battery EVs; with
the default 60 kWh battery at 70 % SoC and a 3-hour window no EV gets near the 20 % threshold, the
charging weight ``beta2`` is 0 and ``u_c`` is reported as null (MATH: ``u_c`` only where chargers
exist).

Rebalancing cost (the peers' travel-time cost): for every vacant or charging move the simulator's
event log records (``move`` and ``charge_move`` events: departure minute, origin, destination), the
scenario's own rebalancing time ``rebTime[hour of departure][origin, destination]`` in minutes is
summed over the moves *between* regions (a low-battery EV sent to a charger in its own region drives
0 km and is not rebalancing, although the scenarios' ``rebTime`` diagonals are 1 min / one step),
and multiplied by the cost per minute: RL4AMOD ``beta`` (calibrated_parameters.json, per
minute), eAMoD ``operationalCostPerTimestep / 15`` (per 15-min step, so the cost is
``steps x operationalCostPerTimestep``; the eAMoD rebalancing times are whole steps).  Refused moves
(not enough energy) do not depart and cost nothing.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from drbalance.errors import ConfigError, DataError
from drbalance.config import BalancingConfig, ControllerConfig
from drbalance.controller import Controller
from drbalance.evaluation import Evaluation, replay_row
from drbalance.policies import make_policy
from drbalance.study_config import OPTIMISERS, POLICIES

#: Monday; history days are consecutive weekdays from here, fresh days follow.
FIRST_DAY = "2030-01-07"


@dataclass(frozen=True, kw_only=True)
class ReplayOptions:
    """Replay choices of a scenario evaluation (the trip-log evaluation uses :class:`drbalance.study_config.StudyConfig`).

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


@dataclass(frozen=True, kw_only=True)
class ScenarioEvalConfig(ReplayOptions):
    """Every choice of a scenario evaluation (the CLI writes it next to the results); the options
    shared with trip-log evaluation are :class:`drbalance.evaluation.ReplayOptions`.

    ``fleet`` None = the scenario's fleet at the window's start hour; ``scale`` None = RL4AMOD's
    calibrated ``demand_ratio`` (eAMoD: 1); ``window_minutes`` None = the whole demand window;
    ``reach_km`` None = :func:`default_reach_km`; ``low_battery_reach_km`` None = the reach
    (the optimiser requires it to be <= the reach); ``beta2`` None = 1 where the scenario has chargers,
    0 where it has none; ``match_radius_km`` 0 = a request is served only by an EV in its own region
    (the peers' macroscopic model).  Units: km, minutes, seconds, kWh.
    """

    days: int = 2
    history_days: int = 28
    fleet: int | None = None
    scale: float | None = None
    window_minutes: int | None = None
    reach_km: float | None = None
    low_battery_reach_km: float | None = None
    match_radius_km: float = 0.0
    patience_minutes: int = 10
    battery_kwh: float = 60.0
    beta2: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if int(self.days) != self.days or self.days < 1:
            raise ConfigError(f"--days must be a positive number of fresh days, got {self.days}")
        if int(self.history_days) != self.history_days or self.history_days < 2:
            raise ConfigError(f"history_days must be >= 2 (uncertainty sets need 2 days), got {self.history_days}")
        if self.fleet is not None and self.fleet < 1:
            raise ConfigError(f"fleet must be >= 1 EV, got {self.fleet}")
        if self.scale is not None and not self.scale > 0:
            raise ConfigError(f"scale must be positive, got {self.scale}")
        if self.window_minutes is not None and (self.window_minutes < self.slot_minutes
                                                or self.window_minutes % self.slot_minutes):
            raise ConfigError(f"window_minutes ({self.window_minutes}) must be a positive multiple of "
                              f"slot_minutes ({self.slot_minutes})")
        if self.reach_km is not None and not self.reach_km >= 0:
            raise ConfigError(f"reach_km must be >= 0, got {self.reach_km}")


def default_reach_km(distance_km: np.ndarray) -> float:
    """Vacant-EV reach covering neighbours: the larger of the median off-diagonal distance and the
    largest nearest-neighbour distance (so every region has at least one reachable neighbour), plus
    1 m so that ties on the (often discrete) distances are inside."""
    W = np.asarray(distance_km, float)
    n = len(W)
    if n < 2:
        return 0.0
    off = W[~np.eye(n, dtype=bool)]
    nn = np.where(np.eye(n, dtype=bool), np.inf, W).min(axis=1)
    return float(max(np.median(off), nn.max()) + 1e-3)


def weekday_dates(first: str, n: int) -> list[pd.Timestamp]:
    """``n`` consecutive business days (Mon-Fri) from ``first`` (rolled forward to a weekday)."""
    start = np.busday_offset(np.datetime64(pd.Timestamp(first).date(), "D"), 0, roll="forward")
    return [pd.Timestamp(np.busday_offset(start, k)) for k in range(n)]


def _day_seed(seed: int, stream: int, day: int) -> int:
    return int(np.random.SeedSequence([int(seed), stream, day]).generate_state(1)[0])


def sample_days(scenario, dates, seed: int, stream: int, scale: float, speed_kmh: float) -> pd.DataFrame:
    """One seeded Poisson day per date (seed ``SeedSequence([seed, stream, d])``), concatenated."""
    parts = [scenario.sample_trips(1, seed=_day_seed(seed, stream, d), first_day=str(day.date()), scale=scale,
                                   speed_kmh=speed_kmh) for d, day in enumerate(dates)]
    return pd.concat(parts, ignore_index=True)


def cost_per_minute(scenario) -> float:
    """The scenario's rebalancing cost per vehicle-minute (see the module docstring)."""
    if scenario.kind == "amod":
        if "beta" not in scenario.params:
            raise DataError(f"{scenario.name}: no calibrated 'beta' (rebalancing cost per minute); "
                            "calibrated_parameters.json must sit beside the scenario file")
        return float(scenario.params["beta"])
    cost = scenario.energy.get("operational_cost_per_step", np.nan) if scenario.energy else np.nan
    if not np.isfinite(cost):
        raise DataError(f"{scenario.name}: missing key 'operationalCostPerTimestep' (rebalancing cost)")
    return float(cost) / float(scenario.params.get("step_minutes", 15.0))


def rebalancing_minutes(events: pd.DataFrame, scenario, window_start: int) -> tuple[float, float]:
    """(vacant-move minutes, charge-move minutes) of a run, by the scenario's rebalancing times at the
    hour of departure; ``events`` is :attr:`SimResult.events` (minutes relative to the window start)."""
    from drbalance.sim.log import EVENT_CODES

    out = []
    for name in ("move", "charge_move"):
        e = events[events["event"] == EVENT_CODES[name]]
        if not len(e):
            out.append(0.0)
            continue
        mod = (window_start + e["minute"].to_numpy(np.int64)) % 1440
        o, d = e["origin"].to_numpy(np.int64), e["region"].to_numpy(np.int64)
        between = o != d  # staying / charging in the own region is not rebalancing (0 km in the simulator)
        mod, o, d = mod[between], o[between], d[between]
        total = 0.0
        for hour in np.unique(mod // 60):
            sel = (mod // 60) == hour
            total += float(scenario.reb_time_at(int(hour) * 60)[o[sel], d[sel]].sum())
        out.append(total)
    return out[0], out[1]


def evaluate_scenario(scenario, config: ScenarioEvalConfig, progress=None) -> Evaluation:
    """Fit on sampled history, replay ``config.days`` fresh sampled days under ``config.policies``.

    Returns an :class:`Evaluation` whose ``runs`` hold, besides the simulator summary and controller
    figures, ``rebalancing_minutes`` and ``rebalancing_cost`` per (policy, day).
    """
    from data_pipeline.estimates import EstimateConfig, Estimates
    from data_pipeline.panels import trip_panels
    from drbalance.sim import PlugSiting, SimConfig, Simulator

    t0 = time.perf_counter()
    c = config
    w0, w1 = scenario.window
    if w0 % c.slot_minutes:
        raise ConfigError(f"the window starts at minute {w0}, not on a {c.slot_minutes}-min slot boundary")
    minutes = int(c.window_minutes or (w1 - w0))
    minutes -= minutes % c.slot_minutes
    if minutes < c.slot_minutes:
        raise ConfigError(f"the demand window ({w1 - w0} min) is shorter than one {c.slot_minutes}-min slot")
    if c.window_minutes and c.window_minutes > w1 - w0:
        raise ConfigError(f"window_minutes {c.window_minutes} exceeds the scenario's window of {w1 - w0} min")
    scale = c.scale if c.scale is not None else float(scenario.params.get("demand_ratio", 1.0))
    fleet = c.fleet
    if fleet is None:
        fbh = scenario.fleet_by_hour
        hour = w0 // 60
        fleet = int(fbh.loc[hour]) if hour in fbh.index else int(fbh.iloc[0])
    has_chargers = scenario.chargers is not None
    beta2 = c.beta2 if c.beta2 is not None else (1.0 if has_chargers else 0.0)
    regions = scenario.region_map(c.speed_kmh)
    reach = c.reach_km if c.reach_km is not None else default_reach_km(regions.distance_km)
    low_reach = c.low_battery_reach_km if c.low_battery_reach_km is not None else reach
    cpm = cost_per_minute(scenario)

    dates = weekday_dates(FIRST_DAY, c.history_days + c.days)
    hist_dates, eval_dates = dates[:c.history_days], dates[c.history_days:]
    hist = sample_days(scenario, hist_dates, c.seed, 0, scale, c.speed_kmh)
    if len(hist) == 0:
        raise DataError(f"{scenario.name}: the sampled history has no trips (scale {scale})")
    first, last = str(hist_dates[0].date()), str(hist_dates[-1].date())
    panels = trip_panels(hist, regions, first, last, c.slot_minutes)
    est = Estimates.fit(panels, regions, EstimateConfig(
        slot_minutes=c.slot_minutes, horizon=c.horizon, epsilon=c.epsilon, delta=c.delta, n_bootstrap=c.n_bootstrap,
        rank=c.rank, robust_radius=c.robust_radius, random_state=c.seed))
    demand_w = np.bincount(hist["pickup_zone"].to_numpy(np.int64), minlength=regions.n).astype(float)
    if has_chargers:
        plugs = np.rint(scenario.chargers).astype(np.int64)
    else:
        plugs = PlugSiting(per_vehicle=c.plugs_per_vehicle).plugs(demand_w, fleet)

    runs, slot_frames, step_frames = [], [], []
    for d, day in enumerate(eval_dates):
        day_trips = sample_days(scenario, [day], c.seed, 1, scale, c.speed_kmh)
        start = day + pd.Timedelta(minutes=w0)
        sim_cfg = SimConfig(fleet_size=fleet, seed=_day_seed(c.seed, 2, d), slot_minutes=c.slot_minutes,
                            speed_kmh=c.speed_kmh, battery_kwh=c.battery_kwh, match_radius_km=c.match_radius_km,
                            patience_minutes=c.patience_minutes)
        for name in c.policies:
            sim = Simulator.from_trips(day_trips, regions, start, sim_cfg, plugs=plugs, minutes=minutes)
            policy = build_policy(name, sim, est, c, reach, low_reach, beta2)
            t1 = time.perf_counter()
            result = sim.run(policy)
            row, st = replay_row(name, day, result, policy, time.perf_counter() - t1)
            if st is not None:
                step_frames.append(st)
            if not has_chargers:
                row["u_c_mean"] = np.nan  # no charging data: u_c is not defined for this scenario
            vac_min, chg_min = rebalancing_minutes(result.events, scenario, w0)
            row["rebalancing_minutes"] = vac_min + chg_min
            row["rebalancing_cost"] = (vac_min + chg_min) * cpm
            runs.append(row)
            slot_frames.append(result.slots.assign(policy=name, day=str(day.date())))
            if progress is not None:
                progress(str(day.date()), name)
    steps = pd.concat(step_frames, ignore_index=True) if step_frames else pd.DataFrame()
    extra = {"scenario": scenario.name, "kind": scenario.kind, "n_regions": regions.n, "fleet": fleet,
             "demand_scale": scale, "window_start_minute": w0, "replay_minutes": minutes, "reach_km": reach, "low_battery_reach_km": low_reach,
             "beta2": beta2, "cost_per_minute": cpm, "plugs_total": int(plugs.sum()),
             "chargers": "scenario" if has_chargers else "sited (no charging data)",
             "history_days": [str(hist_dates[0].date()), str(hist_dates[-1].date())],
             "days": [str(x.date()) for x in eval_dates], "history_trips": int(len(hist))}
    return Evaluation(pd.DataFrame(runs), pd.concat(slot_frames, ignore_index=True), steps, config,  # type: ignore[arg-type]
                      time.perf_counter() - t0, extra)


def scenario_compare(ev: Evaluation, baseline: str = "nominal") -> pd.DataFrame:
    """:func:`drbalance.evaluation.compare` plus the ``rebalancing_cost`` metric."""
    from drbalance.evaluation import compare

    table = compare(ev, baseline)
    runs = ev.runs
    base = runs[runs["policy"] == baseline]
    rows = []
    for name, g in runs.groupby("policy", sort=False):
        for key, label in (("rebalancing_cost", "rebalancing cost / day"),
                           ("rebalancing_minutes", "rebalancing minutes / day")):
            v = g[key].to_numpy(float)
            from scipy import stats

            n = len(v)
            mean = float(v.mean())
            half = float(stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
            bm = float(base[key].mean()) if len(base) else np.nan
            change = 100 * (mean - bm) / abs(bm) if np.isfinite(bm) and bm != 0 else np.nan
            rows.append({"policy": name, "metric": key, "label": label, "mean": mean, "ci_low": mean - half,
                         "ci_high": mean + half, "n_days": n, "change_pct": change})
    return pd.concat([table, pd.DataFrame(rows)], ignore_index=True)


def scenario_policies_json(ev: Evaluation, table: pd.DataFrame) -> dict:
    """``{"policies": {name: {...}}}``: the keys of ``drbalance evaluate`` plus ``rebalancing_cost``
    (mean per day) and ``rebalancing_minutes``; ``u_c_mean`` is null where the scenario has no chargers."""
    from drbalance.evaluation import policies_json

    payload = policies_json(ev, table)
    for name, g in ev.runs.groupby("policy", sort=False):
        p = payload["policies"][name]
        p["rebalancing_cost"] = float(g["rebalancing_cost"].mean())
        p["rebalancing_minutes"] = float(g["rebalancing_minutes"].mean())
        if g["u_c_mean"].isna().all():
            p["u_c_mean"] = None
    return payload


def build_policy(name: str, sim, estimates, c, reach_km: float | None, low_battery_reach_km: float,
                 beta2: float):
    """Policy ``name`` for simulator ``sim``: a :class:`drbalance.controller.Controller` for the
    optimisers (with ``greedy`` as its fallback) configured from ``c`` (an evaluation config with the
    balancing fields), else the built-in policy.  Reaches in km."""
    if name not in OPTIMISERS:
        return make_policy(name, sim, estimates)
    bal = BalancingConfig(mode=name, horizon=c.horizon, slot_minutes=c.slot_minutes, reach_km=reach_km,
                          later_reach_km=c.later_reach_km,
                          low_battery_reach_km=low_battery_reach_km, alpha=c.alpha, beta1=c.beta1, beta2=beta2,
                          supply_floor=c.supply_floor, queue_allowance=c.queue_allowance)
    ctl = ControllerConfig(step_budget_s=c.step_budget_s, radius_scale=c.radius_scale)
    return Controller(estimates, bal, ctl, fallback=make_policy("greedy", sim, estimates), name=name)
