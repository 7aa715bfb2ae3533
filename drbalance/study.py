"""One way to build a study: trips -> region map -> panels -> estimates -> chargers -> simulators.

:class:`Study` is the single place where the pipeline of a trip-log study is written out; every
command (``evaluate``, ``simulate``, ``estimate``), the Gymnasium environment, the evaluation and the
docs build it from a :class:`drbalance.study_config.StudyConfig`::

    study = Study.from_trips(trips, zones, StudyConfig.from_toml("examples/study.toml"))
    sim = study.simulator("2021-03-02")
    result = sim.run(study.policy("dr", sim))

Steps (all seeded from ``config.seed``): the training trips are those picked up in
``config.evaluation.train`` (both ends inclusive); the zone map's distances use the configured
circuity (``"auto"``: estimated from the training trips' metered distances); with
``evaluation.regions > 0`` the located zones are coarsened into that many k-means regions weighted by
training pick-ups; panels and :class:`data_pipeline.estimates.Estimates` are fitted on the training
days only (no look-ahead); chargers are sited per EV in proportion to training pick-ups.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data_pipeline.estimates import EstimateConfig, Estimates
from data_pipeline.panels import Panel, trip_panels
from data_pipeline.regions import RegionMap, estimate_circuity
from drbalance.config import BalancingConfig
from drbalance.controller import Controller, OracleController
from drbalance.errors import ConfigError, DataError
from drbalance.policies import make_policy
from drbalance.sim import PlugSiting, Simulator
from drbalance.sim.config import SimConfig
from drbalance.study_config import OPTIMISERS, StudyConfig


@dataclass(frozen=True)
class Study:
    """Everything a trip-log study builds once: use :meth:`from_trips`.

    Attributes
    ----------
    config : the resolved :class:`StudyConfig`.
    zones : canonical zone frame (``zone``, ``borough``, ``name``, centroid columns).
    trips : validated canonical trips covering the training period and the replayed days.
    regions : :class:`data_pipeline.regions.RegionMap` (``n`` regions, ``distance_km`` (n, n) km).
    panels : training panels ``{"demand", "supply"}`` (:class:`data_pipeline.panels.Panel`, day x slot x region).
    estimates : :class:`Estimates` fitted on the training days.
    pickups : (n,) training pick-ups per region (the charger-siting weights).
    circuity : road / straight-line distance factor used for ``distance_km``.
    info : counts worth reporting (training days and trips, pick-ups outside every region).
    """

    config: StudyConfig
    zones: pd.DataFrame
    trips: pd.DataFrame
    regions: RegionMap
    panels: dict[str, Panel]
    estimates: Estimates
    pickups: np.ndarray
    circuity: float
    info: dict = field(default_factory=dict)
    #: rolling estimates already fitted, by day (see :meth:`estimates_for`); not part of the value
    _rolling: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_trips(cls, trips: pd.DataFrame, zones: pd.DataFrame, config: StudyConfig = StudyConfig(), *,
                   rejects: dict | None = None) -> "Study":
        """Build the region map, panels and estimates from ``trips`` (a validated canonical trips frame,
        e.g. :func:`data_pipeline.readers.read_tlc_trips`'s) and ``zones`` for ``config``.  ``rejects``
        (the reader's ``report.by_reason``, optional) is quoted by the errors about periods without
        accepted trips and kept in ``info["rejected_by_reason"]``."""
        if not isinstance(config, StudyConfig):
            raise ConfigError(f"config must be a StudyConfig, got {type(config).__name__}")
        ev = config.evaluation
        start, end = (pd.Timestamp(x) for x in ev.train)
        pt = trips["pickup_time"]
        train = trips[(pt >= start) & (pt < end + pd.Timedelta(days=1))]
        n_days = int(train["pickup_time"].dt.normalize().nunique())
        if n_days < 2:
            raise DataError(f"{n_days} day(s) with accepted trips in the training period {ev.train[0]}..{ev.train[1]}"
                            f"{_rejects_clause(rejects, len(trips))}; the uncertainty sets need at least 2 "
                            "(check --train against the files' period)")
        circuity = estimate_circuity(train, zones) if ev.circuity == "auto" else float(ev.circuity)
        regions = RegionMap.from_zones(zones, circuity)
        pickups, outside = _pickups(regions, train)
        if ev.regions:
            regions = regions.coarsen(ev.regions, pickups, random_state=config.seed)
            pickups, outside = _pickups(regions, train)
        panels = trip_panels(train, regions, ev.train[0], ev.train[1], config.slot_minutes, config.estimate.holidays)
        estimates = Estimates.fit(panels, regions, config.estimate).with_trip_model(train)  # timing share, mobility
        info = {"train_days": n_days, "train_trips": int(len(train)), "pickups_outside_regions": outside,
                "n_regions": regions.n, "circuity": circuity}
        if rejects is not None:
            info["rejected_by_reason"] = dict(rejects)
        return cls(config, zones, trips, regions, panels, estimates, pickups, circuity, info)

    # ------------------------------------------------------------------ replays
    def day_trips(self, day) -> pd.DataFrame:
        """Trips picked up on ``day`` (raises :class:`DataError` when there are none)."""
        d = pd.Timestamp(day).normalize()
        pt = self.trips["pickup_time"]
        out = self.trips[(pt >= d) & (pt < d + pd.Timedelta(days=1))]
        if len(out) == 0:
            rejects = _rejects_clause(self.info.get("rejected_by_reason"), len(self.trips))
            raise DataError(f"no accepted trips on {d.date()}{rejects}; "
                            "check the days against the trip files")
        return out

    def simulator(self, day, *, start_minute: int = 0, minutes: int | None = None,
                  sim: SimConfig | None = None) -> Simulator:
        """A :class:`Simulator` replaying ``day`` from ``start_minute`` for ``minutes`` (default: the
        evaluation's hours) with the configured fleet (``sim`` overrides ``config.sim``, e.g. another seed)
        and chargers sited per EV in proportion to training pick-ups."""
        d = pd.Timestamp(day).normalize()
        if d <= pd.Timestamp(self.config.evaluation.train[1]):
            raise ConfigError(f"day {d.date()} is not after the training period ending "
                              f"{self.config.evaluation.train[1]} (no look-ahead)")
        minutes = self.config.evaluation.minutes if minutes is None else int(minutes)
        start = d + pd.Timedelta(minutes=int(start_minute))
        return Simulator.from_trips(self.day_trips(d), self.regions, start, sim or self.config.sim,
                                    siting=PlugSiting(per_vehicle=self.config.evaluation.plugs_per_vehicle),
                                    siting_weights=self.pickups, zones=self.zones, minutes=minutes)

    def estimates_for(self, day) -> Estimates:
        """The estimates a policy replaying ``day`` may use (no look-ahead either way).

        ``evaluation.estimates = "fixed"``: :attr:`estimates` (fitted on the training period, which
        ends before every replayed day).  ``"rolling:N"``: :class:`Estimates` refitted on the N calendar
        days strictly before ``day`` (``day - N`` .. ``day - 1``; the region map stays the training
        period's), cached per day.  Raises :class:`ConfigError` for a day not after the training
        period and :class:`DataError` when the window holds trips on fewer than 2 days.
        """
        d = pd.Timestamp(day).normalize()
        if d <= pd.Timestamp(self.config.evaluation.train[1]):
            raise ConfigError(f"day {d.date()} is not after the training period ending "
                              f"{self.config.evaluation.train[1]} (no look-ahead)")
        n = self.config.evaluation.rolling_days
        if n is None:
            return self.estimates
        key = str(d.date())
        if key not in self._rolling:
            first, last = d - pd.Timedelta(days=n), d - pd.Timedelta(days=1)
            pt = self.trips["pickup_time"]
            window = self.trips[(pt >= first) & (pt < d)]
            window = window[self.regions.region_of(window["pickup_zone"].to_numpy()) >= 0]
            window = window[self.regions.region_of(window["dropoff_zone"].to_numpy()) >= 0]
            days_with_trips = int(window["pickup_time"].dt.normalize().nunique())
            if days_with_trips < 2:
                raise DataError(f"rolling estimates for {d.date()}: trips on {days_with_trips} of the {n} days "
                                f"{first.date()}..{last.date()}; give trip files covering them or use "
                                "--estimates fixed")
            cfg = self.config
            panels = trip_panels(window, self.regions, str(first.date()), str(last.date()), cfg.slot_minutes,
                                 cfg.estimate.holidays)
            # the same fit as the training-period estimates, trip model included (model v2's saa, timing)
            self._rolling[key] = Estimates.fit(panels, self.regions, cfg.estimate).with_trip_model(window)
        return self._rolling[key]

    def controller(self, mode: str | None = None, fallback=None, balancing: BalancingConfig | None = None,
                   name: str = "", estimates: Estimates | None = None) -> Controller:
        """A :class:`Controller` solving ``mode`` (default: the configured one) on ``estimates``
        (default: the study's training-period estimates)."""
        bal = balancing or self.config.balancing
        if mode is not None:
            bal = dataclasses.replace(bal, mode=mode)
        est = self.estimates if estimates is None else estimates
        return Controller(est, bal, self.config.controller, fallback=fallback, name=name)

    def policy(self, name: str, sim: Simulator, estimates: Estimates | None = None):
        """Policy ``name`` for ``sim`` on ``estimates`` (default: the study's; see :meth:`estimates_for`):
        a :meth:`controller` (with ``greedy`` as its fallback) for the optimisers, else the built-in
        policy (:func:`drbalance.policies.make_policy`).  ``greedy`` (alone or as the fallback) moves
        vacant EVs as far as the optimisers do: ``balancing.reach_km``."""
        est = self.estimates if estimates is None else estimates
        reach = self.config.balancing.reach_km
        if name == "oracle":   # the deterministic twin fed the day's realised requests (upper reference)
            bal = dataclasses.replace(self.config.balancing, **self.config.evaluation.weights.get("nominal", {}))
            slot = self.config.slot_minutes
            return OracleController(est, bal, self.config.controller, name="oracle",
                                    fallback=make_policy("greedy", sim, est, reach_km=reach),
                                    realised=sim.requests.counts(slot, sim.regions.n, "origin"),
                                    start=sim.requests.start)
        if name in OPTIMISERS:
            bal = dataclasses.replace(self.config.balancing, **self.config.evaluation.weights.get(name, {}))
            return self.controller(name, fallback=make_policy("greedy", sim, est, reach_km=reach), name=name,
                                   estimates=est, balancing=bal)
        return make_policy(name, sim, est, reach_km=reach)


def _pickups(regions: RegionMap, trips: pd.DataFrame) -> tuple[np.ndarray, int]:
    r = regions.region_of(trips["pickup_zone"].to_numpy())
    inside = r >= 0
    return np.bincount(r[inside], minlength=regions.n).astype(float), int((~inside).sum())


def describe_rejects(by_reason: dict | None, rows_read: int | None = None) -> str:
    """A reject report's counts on one line, largest first (reasons with no row left out), e.g.
    ``"all 1,234 rows rejected: zone_without_location 1,200, negative_fare 34"`` (``"all"`` when
    ``rows_read`` equals the rejects, ``"N of M"`` when it is larger); ``""`` when nothing was rejected."""
    counts = sorted(((str(k), int(n)) for k, n in (by_reason or {}).items() if n), key=lambda kv: -kv[1])
    total = sum(n for _, n in counts)
    if not total:
        return ""
    head = (f"all {total:,}" if rows_read == total else f"{total:,} of {rows_read:,}" if rows_read else f"{total:,}")
    return f"{head} rows rejected: " + ", ".join(f"{k} {n:,}" for k, n in counts)


def _rejects_clause(by_reason: dict | None, n_accepted: int | None = None) -> str:
    """`` (reading: N of M rows rejected: ...)`` for the "no trips" errors; "" without rejects."""
    total = sum(int(n) for n in (by_reason or {}).values())
    text = describe_rejects(by_reason, None if n_accepted is None else n_accepted + total)
    return f" (reading: {text})" if text else ""



@dataclass(frozen=True)
class DayReplay:
    """The set-up of one replayed day that needs no training data: use :meth:`from_trips`.

    Where :class:`Study` fits estimates on a training period and replays held-out days, a day replay
    (``drbalance simulate``, ``drbalance sweep``) may run policies that need no forecasts (``noop``,
    ``oracle_counts``) on a day with no history before it.  It builds the region map (coarsened by the
    training pick-ups, or by the day's own when no training day has trips), the charger-siting
    weights (training pick-ups; None when there are none, and the simulator then sites by the day's
    own pick-ups, a mild look-ahead it records), and fits estimates only on request (:meth:`estimates`).

    Attributes
    ----------
    day : the replayed day (midnight).
    train : ``(start, end)`` ISO dates of the training trips (before ``day``).
    zones, regions : zone frame and :class:`RegionMap` (``n`` regions, ``distance_km`` (n, n) km).
    day_trips, train_trips : trips picked up on ``day`` / in ``train``.
    circuity : road / straight-line distance factor of ``distance_km``.
    weights : (n,) training pick-ups per region, or None without training trips.
    rejects : the reader's rejected-row counts by reason (quoted by the "no trips" errors), or None.
    """

    day: pd.Timestamp
    train: tuple[str, str]
    zones: pd.DataFrame
    regions: RegionMap
    day_trips: pd.DataFrame
    train_trips: pd.DataFrame
    circuity: float
    weights: np.ndarray | None
    rejects: dict | None = None

    @classmethod
    def from_trips(cls, trips: pd.DataFrame, zones: pd.DataFrame, day, train: tuple[str, str], *,
                   regions: int = 0, seed: int = 0, circuity: float | str = "auto",
                   rejects: dict | None = None) -> "DayReplay":
        """Split ``trips`` (validated canonical trips of the training period and the day) and build the
        regions: ``regions`` k-means regions (0 = one per zone) seeded with ``seed``; ``circuity`` a
        number >= 1 or ``"auto"`` (estimated from the metered distances of all the ``trips`` given);
        ``rejects`` (the reader's ``report.by_reason``, optional) is quoted by the "no trips" errors."""
        d = pd.Timestamp(day).normalize()
        pt = trips["pickup_time"]
        day_trips = trips[(pt >= d) & (pt < d + pd.Timedelta(days=1))]
        if len(day_trips) == 0:
            raise DataError(f"no accepted trip has its pick-up on {d.date()}"
                            f"{_rejects_clause(rejects, len(trips))}; check the day and the trip files")
        t0, t1 = (pd.Timestamp(x) for x in train)
        if t1 >= d:
            raise ConfigError(f"training period {train[0]}:{train[1]} must end before the day {d.date()} (no look-ahead)")
        train_trips = trips[(pt >= t0) & (pt < t1 + pd.Timedelta(days=1))]
        factor = estimate_circuity(trips, zones) if circuity == "auto" else float(circuity)
        region_map = RegionMap.from_zones(zones, factor)
        has_train = len(train_trips) > 0
        if regions:
            w, _ = _pickups(region_map, train_trips if has_train else day_trips)
            region_map = region_map.coarsen(int(regions), w, random_state=int(seed))
        weights = _pickups(region_map, train_trips)[0] if has_train else None
        return cls(d, (str(train[0]), str(train[1])), zones, region_map, day_trips, train_trips, factor, weights,
                   None if rejects is None else dict(rejects))

    @property
    def train_days(self) -> int:
        """Days of the training period with at least one trip."""
        return int(self.train_trips["pickup_time"].dt.normalize().nunique()) if len(self.train_trips) else 0

    def estimates(self, config: EstimateConfig, holidays: str | None = None) -> Estimates:
        """:class:`Estimates` fitted on the training trips (raises :class:`DataError` with fewer than 2
        training days with trips)."""
        if self.train_days < 2:
            raise DataError(f"forecasts need trips on at least 2 days before {self.day.date()}; found "
                            f"{self.train_days} in {self.train[0]}..{self.train[1]}{_rejects_clause(self.rejects)}; "
                            "widen the training period inside the files' period, or use a policy without "
                            "forecasts: noop, oracle_counts")
        panels = trip_panels(self.train_trips, self.regions, self.train[0], self.train[1], config.slot_minutes,
                             config.holidays if holidays is None else holidays)
        return Estimates.fit(panels, self.regions, config)
