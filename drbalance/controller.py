"""Receding-horizon controller: the balancing problem as a :class:`drbalance.policies.Policy`.

Every slot the simulator (or any host) calls :meth:`Controller.plan` with the observed
:class:`drbalance.state.FleetState`.  The controller

1. builds the forecast window and uncertainty sets for the ``K`` slots from ``t`` out of
   :class:`data_pipeline.estimates.Estimates` fitted on days *strictly before* ``t``'s day (checked:
   a day inside or before the training period raises :class:`ConfigError` - no look-ahead);
2. solves the already-built :class:`drbalance.problem.BalancingProblem` (built once per shape, only
   its vectors updated);
3. returns the :class:`drbalance.state.Plan`, whose first slot is rounded to integer moves.

Faults: when the solve raises (:class:`SolverError`, :class:`InfeasibleError`, :class:`UnboundedError`)
or takes longer than the per-step budget, the controller falls back - first to the previous plan's
slot-2 destinations rescaled to today's vacant EVs (when the previous plan is from the slot just
before), else to the ``fallback`` policy (greedy) - records the event with its reason, and the
replay goes on.  :meth:`Controller.steps` returns one row per decision.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from drbalance.errors import ConfigError, DataError, InfeasibleError, SolverError, UnboundedError
from drbalance.policies import Moves, as_moves, charge_moves
from drbalance.config import BalancingConfig, ControllerConfig
from drbalance.problem import BalancingProblem
from drbalance.rounding import round_per_origin
from drbalance.state import FleetState, Forecasts, Plan

FAULTS = (SolverError, InfeasibleError, UnboundedError)


@dataclass
class Controller:
    """A :class:`drbalance.policies.Policy` that solves the balancing problem every slot.

    Parameters
    ----------
    estimates : fitted :class:`data_pipeline.estimates.Estimates` (demand and supply), on the same
        regions as the host simulator, trained on days strictly before any day it is asked about.
    balancing : :class:`BalancingConfig`: the problem solved every slot, its ``mode`` included (its
        ``horizon`` and ``slot_minutes`` must match the estimates).
    config : :class:`ControllerConfig` (step budget, fallback order, radius scale).
    fallback : a policy answering when the solve fails (e.g. :class:`drbalance.policies.GreedyPolicy`);
        None falls back to "everyone stays, low-battery EVs to the nearest free plug".
    name : label in results (default: the mode).
    """

    estimates: object
    balancing: BalancingConfig = field(default_factory=BalancingConfig)
    config: ControllerConfig = field(default_factory=ControllerConfig)
    fallback: object = None
    name: str = ""
    problem: BalancingProblem = field(init=False, repr=False)
    _records: list = field(init=False, repr=False, default_factory=list)
    _previous: tuple | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        est = self.estimates
        if est.config.horizon != self.balancing.horizon or est.config.slot_minutes != self.balancing.slot_minutes:
            raise ConfigError(f"estimates have horizon {est.config.horizon} and {est.config.slot_minutes}-min slots "
                              f"but the balancing config has {self.balancing.horizon} and "
                              f"{self.balancing.slot_minutes}; fit the estimates with the same K and slot length")
        for q in ("demand", "supply"):
            if q not in est.quantities:
                raise DataError(f"the controller needs {q} estimates; have {est.quantities}")
        self.name = self.name or self.balancing.mode
        trip = getattr(est, "trip_model", None)
        returns = None
        if trip is not None and self.balancing.objective == "shortfall" and self.balancing.horizon > 1:
            returns = trip.return_matrices(self.balancing.horizon)
        self.problem = BalancingProblem(est.regions, self.balancing, returns=returns)
        self.last_train_day = max(p.days.max() for p in est.train.values())

    @property
    def mode(self) -> str:
        """The mode solved every slot (``balancing.mode``)."""
        return self.balancing.mode

    # ------------------------------------------------------------------ the Policy call
    def plan(self, state: FleetState, t) -> Plan | Moves:
        """Decide the moves of the slot starting at ``t`` for the observed ``state``."""
        t = pd.Timestamp(t)
        day = t.normalize()
        if day <= self.last_train_day:
            raise ConfigError(f"{self.name}: asked to plan {t} but the estimates were trained up to "
                              f"{self.last_train_day.date()}; fit them on days strictly before the replayed day")
        slot_min = self.balancing.slot_minutes
        slot = int((t - day) / pd.Timedelta(minutes=slot_min))
        t0 = time.perf_counter()
        record = {"t": t, "policy": self.name, "mode": self.mode}
        try:
            fc = self.forecasts(day, slot)
            plan = self.problem.solve(state, fc)
            elapsed = time.perf_counter() - t0
            if elapsed > self.config.step_budget_s:
                raise SolverError(f"solve took {elapsed:.2f} s, over the step budget of "
                                  f"{self.config.step_budget_s:g} s")
        except FAULTS as exc:
            moves, how = self._fallback(state, t)
            record.update(status=how, reason=f"{type(exc).__name__}: {exc}", solve_s=np.nan,
                          step_s=time.perf_counter() - t0, objective=np.nan, robust_premium=np.nan, iterations=0,
                          slack=np.nan, expected_unserved=np.nan)
            self._records.append(record)
            self._previous = None
            return moves
        self._previous = (t, plan)
        answer = plan
        routed = np.bincount(plan.pairs_y[:, 0], weights=plan.moves_y, minlength=state.n) if len(plan.pairs_y) \
            else np.zeros(state.n)
        left = np.asarray(state.low_battery) - routed
        if (left > 0).any():   # stranded by the elastic model: nearest plug regardless of reach (the sim decides)
            rest = dataclasses.replace(state, low_battery=np.maximum(left, 0), incoming=None)
            extra = charge_moves(rest, self.estimates.regions.distance_km, self.balancing.low_battery_reach_km)
            answer = Moves.concat([plan.moves(), extra])
        record.update(status="solved", reason="", solve_s=plan.solve_seconds, step_s=time.perf_counter() - t0,
                      objective=plan.objective, robust_premium=plan.terms.get("robust_premium", np.nan),
                      iterations=plan.diagnostics.get("iterations", 0), slack=plan.diagnostics.get("slack", 0.0),
                      expected_unserved=plan.terms.get("expected_unserved", np.nan))
        self._records.append(record)
        return answer

    def forecasts(self, day: pd.Timestamp, slot: int) -> Forecasts:
        """Forecast window and sets for the ``K`` slots from ``slot`` of ``day`` (no look-ahead: the
        estimates only hold days before ``day``).  Demand and supply centres are the sets' centres."""
        extra = {}
        trip = getattr(self.estimates, "trip_model", None)
        if trip is not None:
            extra["timing_share"] = trip.window_timing(slot, self.balancing.horizon, self.balancing.patience_minutes)
        prev = self._previous
        if (self.balancing.returns == "lagged" and prev is not None and prev[1].horizon > 1
                and "expected_hires" in prev[1].diagnostics
                and prev[0] + pd.Timedelta(minutes=self.balancing.slot_minutes) == day + pd.Timedelta(
                    minutes=slot * self.balancing.slot_minutes)):
            h = np.asarray(prev[1].diagnostics["expected_hires"], float)
            extra["expected_hires"] = np.vstack([h[1:], h[-1:]])   # the previous plan's hires, one slot on
        fc = Forecasts.from_estimates(self.estimates, day, slot, **extra)
        if self.config.radius_scale != 1.0:
            r = self.config.radius_scale
            scaled = {}
            for name in ("demand_robust_set", "demand_mean_set", "supply_mean_set"):
                u = getattr(fc, name)
                scaled[name] = dataclasses.replace(u, radius=u.radius * r)
            for name in ("demand_moments", "supply_moments"):
                mo = getattr(fc, name)
                scaled[name] = dataclasses.replace(mo, halfwidth=mo.halfwidth * r, variance=mo.variance * r * r)
            fc = dataclasses.replace(fc, **scaled)
        return fc

    # ------------------------------------------------------------------ faults
    def _fallback(self, state: FleetState, t: pd.Timestamp) -> tuple[Moves, str]:
        prev = self._previous
        slot = pd.Timedelta(minutes=self.balancing.slot_minutes)
        if self.config.use_previous and prev is not None and prev[0] + slot == t and prev[1].horizon > 1:
            return self._from_previous(state, prev[1]), "fallback_previous"
        if self.fallback is not None:
            return _as_moves(self.fallback.plan(state, t)), "fallback_policy"
        return charge_moves(state, self.estimates.regions.distance_km, self.balancing.low_battery_reach_km), \
            "fallback_stay"

    def _from_previous(self, state: FleetState, plan: Plan) -> Moves:
        """Previous plan's slot-2 vacant destinations, rescaled per origin to today's ``V`` and
        rounded (largest remainder); origins without planned flow stay.  Low-battery EVs go to the
        nearest free plug."""
        n = state.n
        pairs = plan.pairs_x
        x = np.maximum(plan.X[1], 0.0)
        out = np.bincount(pairs[:, 0], weights=x, minlength=n)
        V = state.vacant
        scale = np.divide(V, out, out=np.zeros(n), where=out > 1e-9)
        xs = x * scale[pairs[:, 0]]
        stay = (out <= 1e-9) & (V > 0)
        diag = pairs[:, 0] == pairs[:, 1]
        own = diag & stay[pairs[:, 0]]
        xs[own] = V[pairs[own, 0]]
        moves = round_per_origin(pairs, xs, V, n)
        keep = (moves > 0) & ~diag
        vacant = Moves(pairs[keep, 0], pairs[keep, 1], moves[keep], np.full(int(keep.sum()), "vacant", object))
        charge = charge_moves(state, self.estimates.regions.distance_km, self.balancing.low_battery_reach_km)
        return Moves.concat([charge, vacant])

    # ------------------------------------------------------------------ results
    def steps(self) -> pd.DataFrame:
        """One row per decision: ``t``, ``policy``, ``mode``, ``status`` (solved / fallback_previous /
        fallback_policy / fallback_stay), ``reason``, ``solve_s``, ``step_s``, ``objective``,
        ``robust_premium``, ``iterations``, ``slack`` (vehicles on the elastic limits: stranded low-battery
        EVs and plugs over capacity; model v2) and ``expected_unserved`` (the plan's, over the horizon)."""
        cols = ["t", "policy", "mode", "status", "reason", "solve_s", "step_s", "objective", "robust_premium",
                "iterations", "slack", "expected_unserved"]
        return pd.DataFrame(self._records, columns=cols)

    @property
    def fallbacks(self) -> int:
        return sum(r["status"] != "solved" for r in self._records)


def _as_moves(answer) -> Moves:
    return as_moves(answer, "fallback")


@dataclass
class OracleController(Controller):
    """The deterministic twin fed the *realised* requests of the replayed day (an upper reference, never a
    policy an operator could run): the ``nominal`` problem with the demand window read from ``realised``.

    ``realised`` : (S, n) requests per slot and region of the replayed window starting at ``start``
    (e.g. ``Requests.counts``); slots past its end count 0.  The known arrivals come from the state, as for
    every optimiser; without them the supply forecast of the estimates is used.
    """

    realised: np.ndarray = None
    start: pd.Timestamp = None

    def __post_init__(self) -> None:
        self.balancing = dataclasses.replace(self.balancing, mode="nominal")
        self.name = self.name or "oracle"
        super().__post_init__()
        self.realised = np.asarray(self.realised, float)
        self.start = pd.Timestamp(self.start)

    def forecasts(self, day: pd.Timestamp, slot: int) -> Forecasts:
        """The estimates' window with its demand replaced by the realised requests (K, n) of those slots; no
        demand sets or moments (the twin needs none)."""
        fc = super().forecasts(day, slot)
        K, slot_min = self.balancing.horizon, self.balancing.slot_minutes
        k0 = int((day + pd.Timedelta(minutes=slot * slot_min) - self.start) / pd.Timedelta(minutes=slot_min))
        window = np.zeros((K, self.realised.shape[1]))
        lo, hi = max(k0, 0), min(k0 + K, len(self.realised))
        if hi > lo:
            window[lo - k0:hi - k0] = self.realised[lo:hi]
        return dataclasses.replace(fc, demand=window, demand_robust_set=None, demand_mean_set=None,
                                   demand_moments=None)
