"""Choosing model v2's weights on the training period: validation replays of its last weeks (MATH.md 1.1).

Model v2 (``BalancingConfig(objective="shortfall")``) minimises ``km + λ x expected unserved requests +
charging term``; ``λ`` (``balancing.lost_request_km``, km of empty driving per lost request) and the
charging weight (``balancing.charge_queue_km``, km per EV-slot waiting for a plug) are knobs of an
approximate model.  They are chosen here on the training period only, never on evaluation days:

1. the *validation days* are the weekdays (:func:`data_pipeline.panels.day_types`, so US holidays
   count as weekend with ``estimate.holidays = "us"``) of the last ``validation_weeks`` weeks of the
   training period ``(A, B)`` (:func:`validation_days`);
2. the estimates, region map, chargers and the ``auto`` fleet size are fitted on the training days
   strictly before the first validation day (``(A, v0 - 1)``, :func:`validation_config`): no look-ahead;
3. every mode x ``λ`` x charging weight x validation day x seed is replayed (:func:`run_sweep`) and
   scored by its *realised cost* ``balancing km + value_km x unserved requests`` (km per replayed day),
   where ``value_km`` is the operator's value of a lost request in km of empty driving.  The model's ``λ``
   need not equal ``value_km``: the model's expected-shortfall term is an approximation (forecast
   errors, rounding, the simulator's matching), and the ``λ`` that makes its decisions cheapest in
   realised cost is what is wanted;
4. per mode the weights with the lowest mean realised cost win (ties: the smaller ``λ``, then the
   smaller charging weight; :func:`choose`), and :func:`tuned_config` writes them into a
   :class:`StudyConfig` (``[evaluation.weights.<mode>]`` per mode, ``[balancing]`` at ``dr``'s) whose
   training period is the whole ``(A, B)`` again.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data_pipeline.panels import day_types
from drbalance.config import MODES
from drbalance.distributed import run_tasks
from drbalance.errors import ConfigError
from drbalance.evaluation import auto_fleet_size, replay_row
from drbalance.policies import make_policy
from drbalance.study import Study
from drbalance.study_config import StudyConfig
from drbalance.validation import check_int, check_number

__all__ = ["TuneSettings", "Tuning", "choose", "fit_period", "main_mode", "mean_table", "run_sweep", "tuned_config",
           "tuned_json", "validation_config", "validation_days", "validation_task"]

#: columns of :attr:`Tuning.sweep` (one row per mode x λ x charging weight x day x seed)
SWEEP_COLUMNS = ("mode", "lost_request_km", "charge_queue_km", "day", "seed", "requests", "served", "unserved",
                 "served_rate", "balancing_km", "cost", "fallbacks", "decisions", "replay_s")


@dataclass(frozen=True)
class TuneSettings:
    """What :func:`run_sweep` tries and how it scores it.

    Attributes
    ----------
    modes : balancing modes tuned, each separately (from :data:`drbalance.config.MODES`; default
        ``nominal``, ``saa``, ``dr``).
    lost_request_km : the ``λ`` grid, km of empty driving per lost request (each >= 0; default 5, 10, 20, 40).
    charge_queue_km : the charging-weight grid, km per EV-slot waiting for a plug (each >= 0); empty (the
        default): the configuration's ``balancing.charge_queue_km`` only.
    validation_weeks : the last this many weeks (7 calendar days each) of the training period are
        validation (default 2; at least 2 earlier training days must remain to fit on).
    value_km : the operator's value of a lost request, km of empty driving (>= 0; default 20): realised
        cost = balancing km + ``value_km`` x unserved requests.
    """

    modes: tuple[str, ...] = ("nominal", "saa", "dr")
    lost_request_km: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0)
    charge_queue_km: tuple[float, ...] = ()
    validation_weeks: int = 2
    value_km: float = 20.0

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 - frozen dataclass
        modes = (self.modes,) if isinstance(self.modes, str) else tuple(self.modes)
        unknown = [m for m in modes if m not in MODES]
        if unknown or not modes:
            raise ConfigError(f"modes: unknown {unknown}; choose one or more of {', '.join(MODES)}")
        if len(set(modes)) != len(modes):
            raise ConfigError(f"modes repeat: {', '.join(modes)}; give each mode once")
        set_("modes", modes)
        for name, low_empty in (("lost_request_km", False), ("charge_queue_km", True)):
            raw = getattr(self, name)
            raw = (raw,) if np.isscalar(raw) else tuple(raw)
            if not raw and not low_empty:
                raise ConfigError(f"{name} is empty; give one or more weights in km (e.g. 5,10,20,40)")
            values = tuple(check_number(name, v, low=0) for v in raw)
            if len(set(values)) != len(values):
                raise ConfigError(f"{name} repeats a value: {', '.join(f'{v:g}' for v in values)}; give each once")
            set_(name, values)
        set_("validation_weeks", check_int("validation_weeks", self.validation_weeks, low=1))
        set_("value_km", check_number("value_km", self.value_km, low=0))


def validation_days(train: tuple[str, str], weeks: int, holidays: str | None = None) -> tuple[str, ...]:
    """The validation days of the training period ``train = (A, B)`` (ISO dates, inclusive): the weekdays
    of its last ``weeks`` weeks, ``B - 7 weeks + 1 .. B`` (holidays count as weekend with
    ``holidays = "us"``).  Raises :class:`ConfigError` when fewer than 2 training days would remain
    before the first validation day, or when the window holds no weekday."""
    start, end = (pd.Timestamp(x) for x in train)
    if (end - start).days + 1 - 7 * int(weeks) < 2:   # whole days: no date arithmetic on a huge ``weeks``
        raise ConfigError(f"training period {train[0]}..{train[1]} is too short for {weeks} validation week(s): "
                          f"fewer than 2 training days would remain before its last {7 * int(weeks)} days to fit "
                          "on; pass a longer --train or fewer --validation-weeks")
    first = end - pd.Timedelta(days=7 * int(weeks) - 1)
    days = pd.date_range(first, end, freq="D")
    days = days[day_types(days, holidays) == "weekday"]
    if not len(days):
        raise ConfigError(f"no weekday in the last {weeks} week(s) of the training period ({first.date()}..{end.date()}); "
                          "pass more --validation-weeks")
    return tuple(str(d.date()) for d in days)


def fit_period(train: tuple[str, str], days) -> tuple[str, str]:
    """``(A, v0 - 1)``: the training days strictly before the first validation day ``v0`` of ``days``."""
    v0 = min(pd.Timestamp(d) for d in days)
    return str(train[0]), str((v0 - pd.Timedelta(days=1)).date())


def validation_config(config: StudyConfig, settings: TuneSettings) -> StudyConfig:
    """The configuration of the validation replays: ``evaluation.train`` = :func:`fit_period` (so every
    estimate, the region map, the chargers and the ``auto`` fleet size see only days before the first
    validation day) and ``evaluation.days`` = :func:`validation_days`.  Raises :class:`ConfigError` for
    ``objective = "ratio"`` (its weights are not in km; nothing to tune)."""
    if config.balancing.objective != "shortfall":
        raise ConfigError(f"tuning chooses the shortfall model's weights (balancing.objective = 'shortfall'), "
                          f"got {config.balancing.objective!r}; pass --objective shortfall")
    days = validation_days(config.evaluation.train, settings.validation_weeks, config.estimate.holidays)
    return config.with_values({"evaluation.train": list(fit_period(config.evaluation.train, days)),
                               "evaluation.days": list(days)})


def validation_task(study: Study, day: str, seed: int, mode: str, lost_request_km: float,
                    charge_queue_km: float, fleet: int, value_km: float) -> dict:
    """Replay ``day`` with ``fleet`` EVs drawn with ``seed`` under a controller solving ``mode`` with
    weights ``lost_request_km`` and ``charge_queue_km`` (the rest of ``[balancing]`` with the mode's
    ``[evaluation.weights.<mode>]``; ``greedy`` as its fallback, as in :meth:`Study.policy`), on :meth:`Study.estimates_for` (fitted before the first validation day).
    A module-level function (a Dask task).  Returns one :data:`SWEEP_COLUMNS` row: ``cost`` =
    ``balancing_km + value_km x unserved`` (km)."""
    d = pd.Timestamp(day)
    sim = study.simulator(d, sim=dataclasses.replace(study.config.sim, fleet_size=int(fleet), seed=int(seed)))
    est = study.estimates_for(d)
    bal = dataclasses.replace(study.config.balancing, **study.config.evaluation.weights.get(mode, {}))
    bal = dataclasses.replace(bal, mode=mode, lost_request_km=float(lost_request_km),
                              charge_queue_km=float(charge_queue_km))
    greedy = make_policy("greedy", sim, est, reach_km=bal.reach_km)
    policy = study.controller(mode, fallback=greedy, balancing=bal, name=mode, estimates=est)
    t0 = time.perf_counter()
    result = sim.run(policy)
    row, steps = replay_row(mode, d, result, policy, time.perf_counter() - t0)
    requests, served, unserved = int(row["requests"]), int(row["served"]), int(row["unserved"])
    km = float(row["balancing_km"])
    return {"mode": mode, "lost_request_km": float(lost_request_km), "charge_queue_km": float(charge_queue_km),
            "day": str(d.date()), "seed": int(seed), "requests": requests, "served": served, "unserved": unserved,
            "served_rate": served / requests if requests else np.nan, "balancing_km": km,
            "cost": km + float(value_km) * unserved, "fallbacks": int(row["fallbacks"]),
            "decisions": int(len(steps)) if steps is not None else 0, "replay_s": float(row["replay_s"])}


@dataclass
class Tuning:
    """Result of :func:`run_sweep`.

    Attributes
    ----------
    sweep : one row per mode x λ x charging weight x validation day x seed (:data:`SWEEP_COLUMNS`; km and
        cost per replayed day, km).
    chosen : ``{mode: {"lost_request_km", "charge_queue_km", "cost", "served_rate", "balancing_km",
        "unserved"}}`` (:func:`choose`).
    config : the input configuration (training period ``(A, B)``).
    validation : the validation replays' configuration (:func:`validation_config`).
    settings : the :class:`TuneSettings`.
    fleet : ``{"size", "sizing", ...}`` the EVs replayed (``auto``: :func:`drbalance.evaluation.auto_fleet_size`
        on the fit period).
    seeds : fleet-draw seeds replayed.
    seconds : wall time (s).
    extra : ``n_regions``, ``train_days`` (fit period), ``dask`` timings.
    """

    sweep: pd.DataFrame
    chosen: dict
    config: StudyConfig
    validation: StudyConfig
    settings: TuneSettings
    fleet: dict
    seeds: tuple[int, ...]
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def validation_days(self) -> tuple[str, ...]:
        """The replayed validation days (ISO dates)."""
        return tuple(self.validation.evaluation.days)


def run_sweep(trips: pd.DataFrame, zones: pd.DataFrame, config: StudyConfig, settings: TuneSettings = TuneSettings(),
              progress=None, *, rejects: dict | None = None) -> Tuning:
    """Replay the validation days of ``config.evaluation.train`` under every mode x λ x charging weight of
    ``settings`` and choose the weights per mode.

    ``trips``: validated canonical trips covering the training period (the validation days included);
    ``zones``: the canonical zone frame.  The :class:`Study` is built once on the fit period
    (:func:`validation_config`); the fleet is ``config.sim.fleet_size`` or, with
    ``evaluation.fleet_sizing = "auto"``, sized on the fit period's weekdays.  Seeds:
    ``evaluation.seeds`` (default: the study seed).  Replays run here or on Dask (``evaluation.workers``,
    ``evaluation.scheduler``) with identical results.  ``progress(done, n, row)`` is called after each replay
    (``done`` of ``n`` finished; ``row`` the replay's :data:`SWEEP_COLUMNS` row).
    """
    t0 = time.perf_counter()
    vcfg = validation_config(config, settings)
    study = Study.from_trips(trips, zones, vcfg, rejects=rejects)
    ev = vcfg.evaluation
    if ev.fleet_sizing == "auto":
        fleet = auto_fleet_size(study.trips, ev.train, ev.trips_per_ev)
    else:
        fleet = {"size": int(vcfg.sim.fleet_size), "trips_per_ev": None}
    fleet["sizing"] = ev.fleet_sizing
    seeds = tuple(ev.seeds or (vcfg.seed,))
    for d in ev.days:   # rolling estimates (if configured): fitted once per day, shipped with the study
        study.estimates_for(d)
    cq = settings.charge_queue_km or (float(vcfg.balancing.charge_queue_km),)
    tasks = [(d, s, m, lam, q, fleet["size"], settings.value_km)
             for m in settings.modes for lam in settings.lost_request_km for q in cq for d in ev.days for s in seeds]

    done = [0]

    def step(i, row):
        done[0] += 1
        if progress is not None:
            progress(done[0], len(tasks), row)

    rows, dask = run_tasks(validation_task, tasks, shared=study, workers=ev.workers, scheduler=ev.scheduler,
                           progress=step)
    sweep = pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))
    extra = {"n_regions": study.regions.n, "train_days": study.info.get("train_days"), "dask": dask}
    return Tuning(sweep, choose(sweep), config, vcfg, settings, fleet, seeds, time.perf_counter() - t0, extra)


def mean_table(sweep: pd.DataFrame) -> pd.DataFrame:
    """Per mode, λ and charging weight (in the sweep's order): ``runs``, ``cost`` (mean realised cost per
    replayed day, km), ``balancing_km`` and ``unserved`` (means per replayed day), ``served_rate`` (served
    / requests pooled over the runs, 0..1) and ``fallbacks`` (total)."""
    keys = ["mode", "lost_request_km", "charge_queue_km"]
    g = sweep.groupby(keys, sort=False)
    out = g.agg(runs=("cost", "size"), cost=("cost", "mean"), balancing_km=("balancing_km", "mean"),
                unserved=("unserved", "mean"), served=("served", "sum"), requests=("requests", "sum"),
                fallbacks=("fallbacks", "sum")).reset_index()
    out["served_rate"] = out["served"] / out["requests"].where(out["requests"] > 0)
    return out[keys + ["runs", "cost", "served_rate", "balancing_km", "unserved", "fallbacks"]]


def choose(sweep: pd.DataFrame, rtol: float = 1e-9) -> dict:
    """Per mode, the weights with the lowest mean realised cost (:func:`mean_table`); costs within
    ``rtol`` (relative) of the lowest tie, and a tie goes to the smaller ``λ``, then the smaller charging
    weight.  Returns ``{mode: {"lost_request_km", "charge_queue_km", "cost" (km per replayed day),
    "served_rate" (0..1), "balancing_km" (km per replayed day), "unserved" (per replayed day),
    "at_grid_edge" (the largest of several λ tried won: the best λ may lie beyond the grid)}}``."""
    chosen = {}
    for mode, g in mean_table(sweep).groupby("mode", sort=False):
        best = float(g["cost"].min())
        ties = g[g["cost"] <= best + rtol * max(1.0, abs(best))]
        row = ties.sort_values(["lost_request_km", "charge_queue_km"], kind="stable").iloc[0]
        chosen[mode] = {"lost_request_km": float(row["lost_request_km"]),
                        "charge_queue_km": float(row["charge_queue_km"]), "cost": float(row["cost"]),
                        "served_rate": float(row["served_rate"]), "balancing_km": float(row["balancing_km"]),
                        "unserved": float(row["unserved"]),
                        "at_grid_edge": bool(len(g["lost_request_km"].unique()) > 1
                                             and row["lost_request_km"] == g["lost_request_km"].max())}
    return chosen


def tuned_config(config: StudyConfig, chosen: dict, mode: str | None = None) -> StudyConfig:
    """``config`` (training period ``(A, B)`` unchanged) with every tuned mode's weights in
    ``[evaluation.weights.<mode>]`` (``lost_request_km``, ``charge_queue_km``; other fields of an existing
    table kept) and ``[balancing]`` set to ``mode``'s (default :func:`main_mode`: ``dr``) mode and weights,
    so ``drbalance evaluate --config`` replays each optimiser at the weights chosen for it (and a policy
    not tuned at ``mode``'s)."""
    mode = main_mode(chosen) if mode is None else mode
    if mode not in chosen:
        raise ConfigError(f"mode {mode!r} was not tuned; tuned: {', '.join(chosen)}")
    weights = {m: dict(t) for m, t in config.evaluation.weights.items()}
    for m, c in chosen.items():
        weights.setdefault(m, {}).update(lost_request_km=float(c["lost_request_km"]),
                                         charge_queue_km=float(c["charge_queue_km"]))
    c = chosen[mode]
    return config.with_values({"balancing.mode": mode, "balancing.lost_request_km": c["lost_request_km"],
                               "balancing.charge_queue_km": c["charge_queue_km"], "evaluation.weights": weights})


def main_mode(chosen: dict) -> str:
    """The mode whose choice goes into ``config.toml``: ``dr`` when tuned, else the first tuned mode."""
    return "dr" if "dr" in chosen else next(iter(chosen))


def tuned_json(tuning: Tuning) -> dict:
    """The ``tuned.json`` payload: ``value_km``, ``validation_days``, ``fit_period`` (the estimates' training
    days), ``train``, ``fleet``, ``seeds``, ``modes``, ``grid`` (``lost_request_km``, ``charge_queue_km``),
    ``chosen`` (:func:`choose`), ``config_mode`` (the mode of ``config.toml``), ``means`` (:func:`mean_table`
    rows), ``n_regions`` and ``seconds``."""
    s, v = tuning.settings, tuning.validation
    means = mean_table(tuning.sweep)
    return {"value_km": s.value_km, "validation_days": list(tuning.validation_days),
            "fit_period": list(v.evaluation.train), "train": list(tuning.config.evaluation.train),
            "fleet": tuning.fleet, "seeds": list(tuning.seeds), "modes": list(s.modes),
            "grid": {"lost_request_km": list(s.lost_request_km),
                     "charge_queue_km": sorted(set(tuning.sweep["charge_queue_km"].tolist()))},
            "chosen": tuning.chosen, "config_mode": main_mode(tuning.chosen) if tuning.chosen else None,
            "means": means.to_dict(orient="records"), "n_regions": tuning.extra.get("n_regions"),
            "seconds": tuning.seconds}
