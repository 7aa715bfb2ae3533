"""Per-solve numbers of model v2 (:mod:`drbalance.problem_shortfall`) from a state and a forecast window.

:func:`shortfall_data` validates a :class:`~drbalance.state.FleetState` and a
:class:`~drbalance.state.Forecasts` window for a mode and derives the (K, n) arrays of
:class:`~drbalance.problem_shortfall.ShortfallData`:

* **known supply** ``κ``: the state's ``incoming`` (EVs known to become vacant per slot) when the host
  gives it; the net demand is then the request count ``D = r`` (>= 0) and hires come back through the
  trip mobility.  Without it, the supply forecast ``ŝ`` is uncertain: ``D = r - θ s`` with
  ``Var D = Var r + θ² Var s - 2 θ Cov(r, s)`` and mean half-width ``δ_r + θ δ_s`` (a simultaneous bound
  by the triangle inequality), and ``ŝ`` carries vacant EVs into the next slot;
* **timing share** ``θ``: ``config.timing_share`` if set, else the forecast's (the estimates' trip
  timing), else the uniform-timing value (recorded in the diagnostics as ``timing_share_source``);
* per mode, the level ``μ`` in ``U >= μ - A`` and the mean demand ``h`` (expected hires ``h - U``):
  ``nominal`` the centre ``m``; ``demand_robust`` ``m + sqrt(γ Σ_ii)`` of the robust demand set;
  ``dr`` ``m + δ`` with the net demand's standard deviation ``σ``; ``saa`` the training scenarios
  (request counts floored at 0 in the known-supply case).
"""

from __future__ import annotations

import numpy as np

from drbalance.config import BalancingConfig
from drbalance.errors import DataError
from drbalance.problem_inputs import check_window, window_counts
from drbalance.problem_shortfall import ShortfallData
from drbalance.state import FleetState, Forecasts

#: smallest standard deviation of the net demand used in the dr cones (requests per region and slot)
SIGMA_FLOOR = 0.02


def _moments(fc: Forecasts, name: str, K: int, n: int):
    mo = getattr(fc, name)
    if mo is None:
        raise DataError(f"mode needs forecasts.{name} (WindowMoments of dimension K n = {K * n}); build forecasts "
                        "with Forecasts.from_estimates(...)")
    return mo


def shortfall_data(state: FleetState, fc: Forecasts, mode: str, config: BalancingConfig, n: int,
                   queue_allowance: np.ndarray) -> ShortfallData:
    """Validated :class:`ShortfallData` for ``mode``; raises DataError naming a bad or missing input."""
    K = config.horizon
    check_window(state, fc, K, n)
    diag: dict = {"requested_mode": mode}
    m_r = np.maximum(fc.demand, 0.0)
    s_f = np.maximum(fc.supply, 0.0)
    diag["demand_centre_floored"] = int((fc.demand < 0).sum())
    L, occ = window_counts(state, fc, K, n)
    if config.timing_share is not None:
        theta, source = np.full((K, n), float(config.timing_share)), "config"
    elif fc.timing_share is not None:
        theta, source = np.asarray(fc.timing_share, float), "estimates"
    else:
        theta, source = np.full((K, n), config.uniform_timing_share()), "uniform"
    diag["timing_share_source"] = source
    diag["timing_share_mean"] = float(theta.mean())
    known = state.incoming is not None
    diag["supply_source"] = "state" if known else "forecast"
    kappa = state.incoming_window(K) if known else np.zeros((K, n))
    s_hat = np.zeros((K, n)) if known else s_f
    sigma = np.zeros((K, n))
    scenarios = None
    if mode == "nominal":
        centre = m_r - theta * s_hat
    elif mode == "demand_robust":
        uset = fc.demand_robust_set
        if uset is None or getattr(uset, "dim", None) != K * n:
            raise DataError(f"mode 'demand_robust' needs forecasts.demand_robust_set of dimension {K * n}; build "
                            "forecasts with Forecasts.from_estimates(...)")
        box = np.sqrt(uset.radius * uset.variances()).reshape(K, n)
        centre = m_r + box - theta * s_hat
        diag["demand_radius"] = float(uset.radius)
    elif mode == "dr":
        dm = _moments(fc, "demand_moments", K, n)
        delta = dm.halfwidth.reshape(K, n)
        var = dm.variance.reshape(K, n).copy()
        if not known:
            sm = _moments(fc, "supply_moments", K, n)
            cov = np.zeros((K, n)) if fc.demand_supply_cov is None else fc.demand_supply_cov
            var = var + theta ** 2 * sm.variance.reshape(K, n) - 2 * theta * cov
            delta = delta + theta * sm.halfwidth.reshape(K, n)
        sigma = np.sqrt(np.maximum(var, 0.0))
        centre = m_r + delta - theta * s_hat
        if not (delta > 0).any() and not (sigma > 0).any():
            mode = "nominal"   # no ambiguity left (e.g. radius_scale = 0): exactly the deterministic twin
        # a floor keeps every cone strictly interior (σ = 0 puts the optimum on the cone's boundary, which
        # left Clarabel "almost solved" at night); it moves U by at most SIGMA_FLOOR / 2 per region and slot
        sigma = np.maximum(sigma, SIGMA_FLOOR)
        diag["mean_halfwidth_mean"] = float(delta.mean())
        diag["sigma_mean"] = float(sigma.mean())
    elif mode == "saa":
        dm = _moments(fc, "demand_moments", K, n)
        r_d = dm.scenarios.reshape(-1, K, n)
        if known:
            scenarios = np.maximum(r_d, 0.0)
        else:
            sm = _moments(fc, "supply_moments", K, n)
            s_d = sm.scenarios.reshape(-1, K, n)
            if len(s_d) != len(r_d):
                raise DataError("demand and supply moments hold different numbers of training days")
            scenarios = r_d - theta[None] * s_d
        centre = scenarios.mean(axis=0)
        diag["n_scenarios"] = int(len(scenarios))
    else:
        raise DataError(f"unknown mode {mode!r} for the shortfall objective")
    hires = centre + theta * s_hat if mode != "saa" else (
        scenarios.mean(axis=0) if known else np.maximum(dm.scenarios.reshape(-1, K, n), 0).mean(axis=0))
    diag["effective_mode"] = mode
    mu_a = np.zeros((K, n)) if fc.charging is None else np.asarray(fc.charging, float)
    sigma_a = np.sqrt(mu_a) if fc.charging_std is None else np.asarray(fc.charging_std, float)
    fixed = None
    if known and config.returns == "lagged":
        fixed = np.maximum(hires, 0.0) if fc.expected_hires is None else np.asarray(fc.expected_hires, float)
        diag["returns"] = "lagged" if fc.expected_hires is not None else "lagged_mean_demand"
    return ShortfallData(V=state.vacant, L=L, p=state.plugs, occ=occ, qa=queue_allowance, kappa=kappa, s_hat=s_hat,
                         theta=theta, centre=centre, nominal=m_r - theta * s_hat, hires=np.maximum(hires, 0.0), sigma=sigma, scenarios=scenarios,
                         fixed_hires=fixed, mu_a=mu_a, sigma_a=sigma_a, diagnostics=diag)
