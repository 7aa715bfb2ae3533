"""Configuration of the balancing problem and of the receding-horizon controller.

* :class:`BalancingConfig` -- every modelling choice of the balancing SOCP (MATH.md section 1),
  including the ``mode`` it solves;
* :class:`ControllerConfig` -- how the controller runs it (step budget, fallback order, radius scale).

Each setting is declared once, here, with its default, and validated when the object is built
(:mod:`drbalance.validation`).  :class:`drbalance.study_config.StudyConfig` composes these with the
estimate, simulator and evaluation settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drbalance.errors import ConfigError
from drbalance.validation import check_bool, check_choice, check_horizon, check_int, check_number, check_slot_minutes

MODES = ("nominal", "saa", "demand_robust", "dr")
OBJECTIVES = ("shortfall", "ratio")
SOLVERS = ("clarabel", "scs", "mosek", "auto")
BACKENDS = ("conic", "cvxpy")


@dataclass(frozen=True)
class BalancingConfig:
    """Every choice of the balancing problem.

    Attributes
    ----------
    objective : ``"shortfall"`` (default; model v2, MATH.md 1.1: km + λ x expected unserved requests +
        expected charging queue, in km, see :mod:`drbalance.problem_shortfall`) or ``"ratio"`` (the IROS 2020
        model ``r / (S + s)^α`` with the 1.1 fixes: timing share, per-mode normalisation, supply at its
        simultaneous lower bound; for reproducing the paper).
    mode : ``"nominal"`` (deterministic twin), ``"saa"`` (sample-average approximation over the training
        days' windows; shortfall only), ``"demand_robust"`` (the paper's robust baseline) or ``"dr"``
        (default): how uncertainty enters the objective.
    lost_request_km : ``λ``, km of empty driving worth one lost request (shortfall; default 20).  A knob of
        an approximate model, chosen per mode on the training period by ``drbalance tune`` (on the bundled
        Jan-Feb 2021 data: nominal 10, saa 40, dr 40 for a value of 20 km per lost request; docs/tuning.md;
        ``drbalance evaluate --tuned`` applies them).
    charge_queue_km : km worth one EV-slot waiting for a plug (shortfall; default 2.0).
    elastic_km : price per vehicle of the elastic state-driven limits (low-battery EVs with no reachable
        plug, plugs over capacity), km (default 1000): large, so they are used only when nothing else works,
        and reported per decision.
    chance_epsilon : ``ε`` of the plug chance constraint ``P(a <= F) >= 1 - ε`` (default 0.1).
    speed_kmh : empty driving speed (default 20, the simulator's): a move longer than the slot arrives
        in a later slot.
    patience_minutes : minutes a request waits (default 10, the simulator's); sets the timing share.
    returns : how hires come back through the trip mobility (shortfall with known arrivals): ``"exact"``
        (default: the hires ``h - U`` are the model's own, coupling every slot's shortfall to the later
        slots' supply) or ``"lagged"`` (the hires are data: the previous decision's plan, shifted by a slot,
        or the mean demand when there is none; no coupling, much faster at city scale, see docs/balancing.md).
    timing_share : ``θ`` as a number in [0, 1], or None (default) to use the estimates' trip timing
        (the uniform-timing value ``1 - (Δ - patience)² / (2Δ²)`` when they have none).
    horizon : slots ``K`` (default 4).
    slot_minutes : slot length ``Δ`` in minutes (default 15; 5..60 dividing a day).
    reach_km : vacant-EV reachability radius ``w_max`` in km (default 10: the demand-weighted regions of
        a coarsened city lie 5-10 km apart; use ~4.5 km for per-zone NYC).  For a travel-time rule use
        ``speed_kmh * slot_minutes / 60``.
    later_reach_km : reach for the moves of slots ``2..K`` (None = ``reach_km``).  A speed option:
        later slots are re-planned at the next epoch anyway, and their pair variables couple the slots,
        which is what makes the interior-point factorisation grow superlinearly with ``K``.  Must be
        <= ``reach_km``; the first slot always uses the full reach.
    low_battery_reach_km : remaining range of a low-battery EV in km (default 9, <= ``reach_km``);
        chargers farther than this are not candidates for ``Y`` (nor for the controller's fallback).
    alpha : exponent ``α`` of the supply-demand term ``r / (S + s)^α`` (default 1).
    beta1, beta2 : weights of the supply-demand and charging terms (default 1, after normalisation).
    normalise : divide the terms by their do-nothing values (see :mod:`drbalance.problem`); False uses
        raw weights (``w_km = 1`` per km, ``w1 = β1``, ``w2 = β2``).
    plug_margin : ``ε``, free plugs that must remain in every charger region (default 0.5 plugs: strictly
        positive so ``1/F`` stays finite, and below one plug so that a region may fill all but its last).
    queue_allowance : ``q_j >= 0`` queue positions allowed per charger region (scalar or (n,) array;
        default 1): relaxes ``F >= ε`` to ``F >= ε - q`` and the charging term uses ``F + q``.
    supply_floor : vehicles added to every supply denominator ``S + s`` (default 1).  With 0 (MATH.md
        exactly), a region that no vacant EV can reach and with zero supply forecast makes the problem
        infeasible (raised before solving, naming the region).
    solver : ``"clarabel"`` (default), ``"scs"``, ``"mosek"`` (needs a licence) or ``"auto"``.
    backend : ``"conic"`` (assembled once per shape, updated per solve; clarabel or scs) or ``"cvxpy"``
        (rebuilt per call; any solver).  MOSEK always goes through cvxpy.
    tol : Clarabel gap and feasibility tolerance (default 1e-7; Clarabel's own 1e-8 stopped at
        "AlmostSolved" on 3 of 8 NYC DR instances, measured, while 1e-7 solved all 8).
    scs_eps : SCS tolerance (default 1e-6).
    accept_inaccurate : accept "almost solved" results (status ``optimal_inaccurate``) instead of raising.
    """

    objective: str = "shortfall"
    mode: str = "dr"
    horizon: int = 4
    slot_minutes: int = 15
    reach_km: float = 10.0
    later_reach_km: float | None = None
    low_battery_reach_km: float = 9.0
    alpha: float = 1.0
    beta1: float = 1.0
    beta2: float = 1.0
    normalise: bool = True
    plug_margin: float = 0.5
    queue_allowance: object = 1.0
    supply_floor: float = 1.0
    solver: str = "clarabel"
    backend: str = "conic"
    tol: float = 1e-7
    scs_eps: float = 1e-6
    accept_inaccurate: bool = False
    lost_request_km: float = 20.0
    charge_queue_km: float = 2.0
    elastic_km: float = 1000.0
    chance_epsilon: float = 0.1
    speed_kmh: float = 20.0
    patience_minutes: int = 10
    timing_share: float | None = None
    returns: str = "exact"

    def __post_init__(self) -> None:
        check_choice("objective", self.objective, OBJECTIVES)
        check_choice("mode", self.mode, MODES)
        if self.mode == "saa" and self.objective == "ratio":
            raise ConfigError("mode 'saa' needs objective 'shortfall' (the ratio model has no scenario form)")
        check_number("lost_request_km", self.lost_request_km, low=0)
        check_number("charge_queue_km", self.charge_queue_km, low=0)
        check_number("elastic_km", self.elastic_km, low=0, low_open=True)
        check_number("chance_epsilon", self.chance_epsilon, low=0, high=1, low_open=True, high_open=True)
        check_number("speed_kmh", self.speed_kmh, low=0, low_open=True)
        check_int("patience_minutes", self.patience_minutes, low=0)
        check_number("timing_share", self.timing_share, low=0, high=1, allow_none=True)
        check_choice("returns", self.returns, ("exact", "lagged"))
        check_slot_minutes(self.slot_minutes)
        check_horizon(self.horizon, self.slot_minutes)
        check_number("reach_km", self.reach_km, low=0)
        check_number("later_reach_km", self.later_reach_km, low=0, high=self.reach_km, allow_none=True)
        check_number("low_battery_reach_km", self.low_battery_reach_km, low=0, high=self.reach_km)
        check_number("alpha", self.alpha, low=0, low_open=True)
        check_number("beta1", self.beta1, low=0)
        check_number("beta2", self.beta2, low=0)
        check_bool("normalise", self.normalise)
        check_number("plug_margin", self.plug_margin, low=0, low_open=True)
        q = np.asarray(self.queue_allowance, float) if not isinstance(self.queue_allowance, str) else np.nan
        if not np.all(np.isfinite(q)) or np.any(q < 0) or np.ndim(q) > 1:
            raise ConfigError(f"queue_allowance must be a finite non-negative number or (n,) array, "
                              f"got {self.queue_allowance!r}")
        check_number("supply_floor", self.supply_floor, low=0)
        check_choice("solver", self.solver, SOLVERS)
        check_choice("backend", self.backend, BACKENDS)
        check_number("tol", self.tol, low=0, high=1e-2, low_open=True, high_open=True)
        check_number("scs_eps", self.scs_eps, low=0, high=1e-1, low_open=True, high_open=True)
        check_bool("accept_inaccurate", self.accept_inaccurate)

    def uniform_timing_share(self) -> float:
        """``θ`` when pick-ups and drop-offs are uniform inside the slot: ``1 - (Δ - p)^2 / (2 Δ^2)`` (p < Δ)."""
        d, p = float(self.slot_minutes), float(self.patience_minutes)
        return 1.0 if p >= d else 1.0 - (d - p) ** 2 / (2 * d * d)

    @property
    def reach(self) -> float:
        """Vacant-EV reach of the first slot (km)."""
        return float(self.reach_km)

    @property
    def later_reach(self) -> float:
        """Reach (km) of the moves of slots 2..K."""
        return self.reach if self.later_reach_km is None else float(self.later_reach_km)


@dataclass(frozen=True)
class ControllerConfig:
    """How the :class:`drbalance.controller.Controller` runs the balancing problem.

    The mode it solves and the charger reach of its fallback come from its :class:`BalancingConfig`
    (one source of truth).

    Attributes
    ----------
    step_budget_s : wall-clock budget of one decision (s); a solve that takes longer is treated as a
        timeout (its plan arrives too late to be used) and the fallback answers instead.
    use_previous : try the previous plan's slot-2 moves before the fallback policy.
    radius_scale : multiplies the radius γ of every uncertainty set and model v2's mean half-widths ``δ`` and
        standard deviations ``σ`` (1 = as estimated; 0 = nominal data in a robust mode: v2's ``dr`` then solves
        its deterministic twin exactly), for ambiguity sweeps.
    """

    step_budget_s: float = 30.0
    use_previous: bool = True
    radius_scale: float = 1.0

    def __post_init__(self) -> None:
        check_number("step_budget_s", self.step_budget_s, low=0, low_open=True)
        check_bool("use_previous", self.use_previous)
        check_number("radius_scale", self.radius_scale, low=0)
