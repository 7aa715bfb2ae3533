"""Per-solve inputs of the balancing problem: the validated numbers of one state and forecast window.

:func:`solve_inputs` checks a :class:`~drbalance.state.FleetState` and a
:class:`~drbalance.state.Forecasts` window against the problem's shape (``K`` slots, ``n`` regions),
checks the uncertainty sets the mode needs (:func:`check_set`), and derives the arrays every later
stage reads (:class:`SolveInputs`): demand centre and supply floored at 0, low-battery EVs to route per
slot, plug occupancy per slot, charging demand, and the mode's radius and covariance factors.  Arrays
of a window are slot-major ``(K, n)``; the uncertainty sets have dimension ``K n`` in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from drbalance.config import BalancingConfig
from drbalance.errors import DataError
from drbalance.state import FleetState, Forecasts


@dataclass
class SolveInputs:
    """Per-solve numbers derived from state and forecasts (all validated; vehicles unless stated).

    Attributes
    ----------
    V : (n,) vacant EVs now.
    L : (K, n) low-battery EVs to route in each slot (slot 1: now; later: the forecast inflow, else 0).
    p : (n,) plugs per region.
    occ : (K, n) occupied or queued plugs per slot.
    qa : (n,) queue allowance.
    mu : (K, n) demand centre (floored at 0), requests per slot.
    s_hat : (K, n) supply point forecast (floored at 0).
    s_cone : (K, n) supply in the supply-demand denominators: ``θ ŝ``, or ``θ s⁻`` in mode ``dr`` (``s⁻`` the
        simultaneous lower bound of the supply mean, MATH.md 1.1).
    c : (K, n) charging demand (the plug counts when no charging forecast is given).
    gamma : radius of the mode's demand set (0 in mode ``nominal``).
    factor : (K n, r) low-rank covariance factor ``F`` of the demand set, or None (nominal).
    diag : (K n,) diagonal ``D`` of the demand covariance, or None (nominal).
    diagnostics : counts of floored values and the radii / rank, copied into the plan's diagnostics.
    """

    V: np.ndarray
    L: np.ndarray
    p: np.ndarray
    occ: np.ndarray
    qa: np.ndarray
    mu: np.ndarray
    s_hat: np.ndarray
    s_cone: np.ndarray
    c: np.ndarray
    gamma: float
    factor: np.ndarray | None
    diag: np.ndarray | None
    diagnostics: dict = field(default_factory=dict)
    s_nominal: np.ndarray | None = None   # (K, n) θ ŝ: the nominal mode's supply credit

    @property
    def rank(self) -> int:
        """Rank ``r`` of the covariance factor (0 when there is none)."""
        return 0 if self.factor is None else self.factor.shape[1]


def solve_inputs(state: FleetState, fc: Forecasts, mode: str, config: BalancingConfig, n: int,
                 queue_allowance: np.ndarray) -> SolveInputs:
    """Validate ``state`` (``n`` regions) and ``fc`` (``config.horizon`` slots) for ``mode``.

    ``queue_allowance`` is the (n,) per-region allowance.  Raises DataError naming the bad value:
    wrong types or shapes, a missing, mis-kinded or off-centre uncertainty set.
    """
    K = config.horizon
    check_window(state, fc, K, n)
    diag: dict = {}
    scale = max(float(np.abs(fc.demand).max()), 1.0)
    neg_d = fc.demand < -1e-9 * scale
    mu = np.maximum(fc.demand, 0.0)
    s_scale = max(float(np.abs(fc.supply).max()), 1.0)
    neg_s = fc.supply < -1e-9 * s_scale
    s_hat = np.maximum(fc.supply, 0.0)
    diag["demand_centre_floored"] = int(neg_d.sum())  # negative expected demand floored at 0 (conservative)
    diag["supply_forecast_floored"] = int(neg_s.sum())
    L, occ = window_counts(state, fc, K, n)
    c = np.broadcast_to(state.plugs, (K, n)).astype(float) if fc.charging is None else fc.charging
    gamma, factor, dvec = 0.0, None, None
    # MATH.md 1.1 (a): a drop-off during slot k serves only a share θ of slot k's requests
    if config.timing_share is not None:
        theta, diag["timing_share_source"] = np.full((K, n), float(config.timing_share)), "config"
    elif fc.timing_share is not None:
        theta, diag["timing_share_source"] = np.asarray(fc.timing_share, float), "estimates"
    else:
        theta, diag["timing_share_source"] = np.full((K, n), config.uniform_timing_share()), "uniform"
    s_cone = theta * s_hat
    if mode not in ("nominal", "demand_robust", "dr"):
        raise DataError(f"mode {mode!r} needs objective 'shortfall'")
    if mode != "nominal":
        uset = fc.demand_robust_set if mode == "demand_robust" else fc.demand_mean_set
        want = "robust" if mode == "demand_robust" else "mean"
        name = "demand_robust_set" if mode == "demand_robust" else "demand_mean_set"
        check_set(uset, name, want, fc.demand, K, n)
        gamma, factor, dvec = float(uset.radius), uset.factor, uset.diag
        if mode == "dr":
            sset = fc.supply_mean_set
            check_set(sset, "supply_mean_set", "mean", fc.supply, K, n)
            if fc.supply_moments is not None:
                # MATH.md 1.1 (c): the simultaneous lower bound of the supply mean, not the bounding box of
                # its K n-dimensional ellipsoid
                lo = fc.supply - fc.supply_moments.halfwidth.reshape(K, n)
                diag["supply_lower_bound"] = "simultaneous"
            else:
                lo, _ = sset.component_bounds()
                lo = lo.reshape(K, n)
                diag["supply_lower_bound"] = "bounding_box"
            floored = lo < 0
            s_cone = theta * np.maximum(lo, 0.0)
            diag["supply_worst_case_floored"] = int(floored.sum())  # MATH.md: s⁻ floored at 0
            diag["supply_radius"] = float(sset.radius)
        diag["demand_radius"] = gamma
        diag["rank"] = int(factor.shape[1])
    return SolveInputs(state.vacant, L, state.plugs, occ, queue_allowance, mu, s_hat, s_cone, c, gamma,
                       factor, dvec, diag, theta * s_hat)


def check_window(state: FleetState, fc: Forecasts, horizon: int, n: int) -> None:
    """Raise DataError unless ``state`` is a FleetState of ``n`` regions and ``fc`` a Forecasts of shape (K, n)."""
    if not isinstance(state, FleetState):
        raise DataError(f"state must be a FleetState, got {type(state).__name__}")
    if not isinstance(fc, Forecasts):
        raise DataError(f"forecasts must be a Forecasts, got {type(fc).__name__}")
    if state.n != n:
        raise DataError(f"state has {state.n} regions but the region map has {n}")
    if fc.demand.shape != (horizon, n):
        raise DataError(f"forecasts have shape {fc.demand.shape}, expected (K={horizon}, n={n})")


def window_counts(state: FleetState, fc: Forecasts, horizon: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(L, occ)``, each (K, n): low-battery EVs to route per slot (now, then the forecast inflow or 0) and
    plugs occupied or queued per slot (the forecast, else the state's held constant)."""
    K = horizon
    L = np.zeros((K, n))
    L[0] = state.low_battery
    if fc.low_battery_inflow is not None and K > 1:
        L[1:] = fc.low_battery_inflow[: K - 1]
    occ = np.broadcast_to(state.occupied, (K, n)).copy() if fc.occupied is None else fc.occupied.copy()
    return L, occ


def check_set(uset, name: str, kind: str, centre: np.ndarray, horizon: int, n: int) -> None:
    """Check that ``forecasts.<name>`` is an UncertaintySet of ``kind``, dimension ``K n`` (slot-major),
    centred on the point forecast ``centre`` (K, n).  Raises DataError saying how to build it."""
    K = horizon
    if uset is None:
        raise DataError(f"mode needs forecasts.{name} (an UncertaintySet of kind {kind!r}, dimension "
                        f"K n = {K * n}); "
                        "build forecasts with Forecasts.from_estimates(...)")
    if getattr(uset, "kind", None) != kind:
        raise DataError(f"forecasts.{name} must be of kind {kind!r}, got {getattr(uset, 'kind', None)!r}")
    if uset.dim != K * n:
        raise DataError(f"forecasts.{name} has dimension {uset.dim}, expected K n = {K * n} (slot-major)")
    if not np.allclose(uset.mean, centre.ravel(), rtol=1e-9, atol=1e-9 * max(1.0, np.abs(centre).max())):
        raise DataError(f"forecasts.{name} is centred away from the point forecast; the modes must share one "
                        "centre (set the forecast to the set's mean, as Forecasts.from_estimates does)")
