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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w
from scipy import stats

from data_pipeline.estimates import Estimates
from data_pipeline.panels import trip_panels
from drbalance.codes import EVENT_CODES
from drbalance.config import BalancingConfig, ControllerConfig
from drbalance.controller import Controller
from drbalance.errors import ConfigError, DataError
from drbalance.evaluation import Evaluation, compare, policies_json, replay_row
from drbalance.io import write_text_atomic
from drbalance.policies import make_policy
from drbalance.sim import PlugSiting, Simulator
from drbalance.sim.config import SimConfig
from drbalance.study_config import OPTIMISERS, StudyConfig, drop_none, tomllib
from drbalance.validation import check_bool, check_int, check_number

#: Monday; history days are consecutive weekdays from here, fresh days follow.
FIRST_DAY = "2030-01-07"


def scenario_study_config() -> StudyConfig:
    """The study settings of the peers' protocol: the :class:`StudyConfig` defaults except that a
    request is served only by an EV idle in its own region (``sim.match_radius_km = 0``), as in the
    peers' macroscopic models."""
    return StudyConfig(sim=SimConfig(match_radius_km=0.0))


@dataclass(frozen=True, kw_only=True)
class ScenarioEvalConfig:
    """Every choice of a scenario evaluation: the study settings plus what only a scenario has.

    Attributes
    ----------
    study : :class:`StudyConfig` (estimates, balancing, controller, simulator, ``evaluation.policies`` and
        ``evaluation.plugs_per_vehicle``; the training period and days come from the scenario's sampled
        dates instead of ``evaluation.train``/``days``).  Default: :func:`scenario_study_config`.
    days : fresh sampled days replayed.
    history_days : sampled days the estimates are fitted on (>= 2).
    scale : demand multiplier; None = RL4AMOD's calibrated ``demand_ratio`` (eAMoD: 1).
    window_minutes : replay only the first M minutes of the demand window; None = all of it.
    fleet_from_scenario : True: the scenario's fleet at the window's start hour (else ``study.sim.fleet_size``).
    reach_from_scenario : True: the vacant-EV reach is :func:`default_reach_km` of the scenario's
        distances (else ``study.balancing.reach_km``).
    low_reach_from_scenario : True: the charger reach equals the resolved vacant-EV reach (else
        ``study.balancing.low_battery_reach_km``).
    beta2_from_chargers : True: ``beta2`` is 1 where the scenario has chargers, 0 where it has none
        (else ``study.balancing.beta2``).

    Units: km, minutes.  The resolved values are reported in the evaluation's ``extra``.
    """

    study: StudyConfig = field(default_factory=scenario_study_config)
    days: int = 2
    history_days: int = 28
    scale: float | None = None
    window_minutes: int | None = None
    fleet_from_scenario: bool = True
    reach_from_scenario: bool = True
    low_reach_from_scenario: bool = True
    beta2_from_chargers: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.study, StudyConfig):
            raise ConfigError(f"study must be a StudyConfig, got {type(self.study).__name__}")
        check_int("days", self.days, low=1)
        check_int("history_days", self.history_days, low=2)
        check_number("scale", self.scale, low=0, low_open=True, allow_none=True)
        slot = self.study.slot_minutes
        if self.window_minutes is not None and (check_int("window_minutes", self.window_minutes, low=slot) % slot):
            raise ConfigError(f"window_minutes ({self.window_minutes}) must be a positive multiple of "
                              f"slot_minutes ({slot})")
        for name in ("fleet_from_scenario", "reach_from_scenario", "low_reach_from_scenario", "beta2_from_chargers"):
            check_bool(name, getattr(self, name))

    @property
    def policies(self) -> tuple[str, ...]:
        return self.study.evaluation.policies

    @property
    def seed(self) -> int:
        return self.study.seed

    def to_dict(self) -> dict:
        """Nested plain dict: the study's :meth:`StudyConfig.to_dict` under ``study`` and the scenario fields."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "study"}
        return {"study": self.study.to_dict(), **out}

    def to_toml(self, path=None) -> str:
        """TOML: the study's tables plus a ``[scenario]`` table (None values left out)."""
        tree = self.study.to_dict()
        tree["scenario"] = {k: v for k, v in self.to_dict().items() if k != "study"}
        text = "# drbalance scenario evaluation configuration (ScenarioEvalConfig)\n" + tomli_w.dumps(drop_none(tree))
        if path is not None:
            write_text_atomic(path, text)
        return text

    @classmethod
    def from_toml(cls, path) -> "ScenarioEvalConfig":
        """Load a file written by :meth:`to_toml` (a study TOML without ``[scenario]`` works too)."""
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"configuration file {p} not found")
        try:
            tree = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: not valid TOML ({exc})") from None
        scen = tree.pop("scenario", {})
        if not isinstance(scen, dict):
            raise ConfigError(f"{p}: scenario must be a table ([scenario] with key = value lines)")
        known = {f.name for f in dataclasses.fields(cls)} - {"study"}
        unknown = sorted(set(scen) - known)
        if unknown:
            raise ConfigError(f"[scenario] has unknown key(s) {unknown}; known: {', '.join(sorted(known))}")
        return cls(study=StudyConfig.from_dict(tree), **scen)


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
    t0 = time.perf_counter()
    c = config
    study = c.study
    slot_minutes, speed_kmh = study.slot_minutes, study.sim.speed_kmh
    w0, w1 = scenario.window
    if w0 % slot_minutes:
        raise ConfigError(f"the window starts at minute {w0}, not on a {slot_minutes}-min slot boundary")
    minutes = int(c.window_minutes or (w1 - w0))
    minutes -= minutes % slot_minutes
    if minutes < slot_minutes:
        raise ConfigError(f"the demand window ({w1 - w0} min) is shorter than one {slot_minutes}-min slot")
    if c.window_minutes and c.window_minutes > w1 - w0:
        raise ConfigError(f"window_minutes {c.window_minutes} exceeds the scenario's window of {w1 - w0} min")
    scale = c.scale if c.scale is not None else float(scenario.params.get("demand_ratio", 1.0))
    fleet = study.sim.fleet_size
    if c.fleet_from_scenario:
        fbh = scenario.fleet_by_hour
        hour = w0 // 60
        fleet = int(fbh.loc[hour]) if hour in fbh.index else int(fbh.iloc[0])
    has_chargers = scenario.chargers is not None
    beta2 = (1.0 if has_chargers else 0.0) if c.beta2_from_chargers else study.balancing.beta2
    regions = scenario.region_map(speed_kmh)
    reach = default_reach_km(regions.distance_km) if c.reach_from_scenario else study.balancing.reach_km
    low_reach = reach if c.low_reach_from_scenario else study.balancing.low_battery_reach_km
    balancing = dataclasses.replace(study.balancing, reach_km=reach, low_battery_reach_km=low_reach, beta2=beta2)
    cpm = cost_per_minute(scenario)

    dates = weekday_dates(FIRST_DAY, c.history_days + c.days)
    hist_dates, eval_dates = dates[:c.history_days], dates[c.history_days:]
    hist = sample_days(scenario, hist_dates, c.seed, 0, scale, speed_kmh)
    if len(hist) == 0:
        raise DataError(f"{scenario.name}: the sampled history has no trips (scale {scale})")
    first, last = str(hist_dates[0].date()), str(hist_dates[-1].date())
    panels = trip_panels(hist, regions, first, last, slot_minutes, study.estimate.holidays)
    est = Estimates.fit(panels, regions, study.estimate)
    demand_w = np.bincount(hist["pickup_zone"].to_numpy(np.int64), minlength=regions.n).astype(float)
    if has_chargers:
        plugs = np.rint(scenario.chargers).astype(np.int64)
    else:
        plugs = PlugSiting(per_vehicle=study.evaluation.plugs_per_vehicle).plugs(demand_w, fleet)

    runs, slot_frames, step_frames = [], [], []
    for d, day in enumerate(eval_dates):
        day_trips = sample_days(scenario, [day], c.seed, 1, scale, speed_kmh)
        start = day + pd.Timedelta(minutes=w0)
        sim_cfg = dataclasses.replace(study.sim, fleet_size=fleet, seed=_day_seed(c.seed, 2, d))
        for name in c.policies:
            sim = Simulator.from_trips(day_trips, regions, start, sim_cfg, plugs=plugs, minutes=minutes)
            policy = scenario_policy(name, sim, est, balancing, study.controller)
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
    table = compare(ev, baseline)
    runs = ev.runs
    base = runs[runs["policy"] == baseline]
    rows = []
    for name, g in runs.groupby("policy", sort=False):
        for key, label in (("rebalancing_cost", "rebalancing cost / day"),
                           ("rebalancing_minutes", "rebalancing minutes / day")):
            v = g[key].to_numpy(float)
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
    payload = policies_json(ev, table)
    for name, g in ev.runs.groupby("policy", sort=False):
        p = payload["policies"][name]
        p["rebalancing_cost"] = float(g["rebalancing_cost"].mean())
        p["rebalancing_minutes"] = float(g["rebalancing_minutes"].mean())
        if g["u_c_mean"].isna().all():
            p["u_c_mean"] = None
    return payload


def scenario_policy(name: str, sim, estimates, balancing: BalancingConfig, controller: ControllerConfig):
    """Policy ``name`` for simulator ``sim``: a :class:`Controller` solving ``name`` with ``balancing``
    (greedy fallback) for the optimisers, else the built-in policy."""
    if name not in OPTIMISERS:
        return make_policy(name, sim, estimates)
    return Controller(estimates, dataclasses.replace(balancing, mode=name), controller,
                      fallback=make_policy("greedy", sim, estimates), name=name)
