"""Plain data passed into and out of the balancer: fleet state, forecasts, plan (MATH.md section 1).

* :class:`FleetState` -- what the controller observes at a decision epoch (counts per region).
* :class:`Forecasts` -- the ``K``-slot window of demand, supply and charging forecasts, and the
  uncertainty sets the robust modes use.
* :class:`Plan` -- what :class:`drbalance.problem.BalancingProblem` returns: the relaxed moves of every
  slot on the sparse pair lists, the rounded first-slot moves, objective terms, solver status, timings.

Units: counts in vehicles (EVs), plugs or requests per slot; distances in km; time in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drbalance.errors import DataError

#: Default low-battery threshold (share of full charge) separating ``V`` from ``L`` (MATH.md).
LOW_BATTERY_THRESHOLD = 0.20


def _counts(name: str, value, shape: tuple[int, ...], integer: bool) -> np.ndarray:
    """Validate a non-negative, finite count array of the given shape (raises DataError)."""
    a = np.asarray(value, dtype=float)
    if a.shape != shape:
        raise DataError(f"{name} has shape {a.shape}, expected {shape}")
    if not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0].tolist()
        raise DataError(f"{name} holds NaN or infinite values (first at index {bad}); fill or drop them")
    if (a < 0).any():
        bad = np.argwhere(a < 0)[0].tolist()
        raise DataError(f"{name} holds negative counts (first at index {bad}: {a[tuple(bad)]}); counts must be >= 0")
    if integer and not np.allclose(a, np.rint(a), rtol=0, atol=1e-9):
        bad = np.argwhere(np.abs(a - np.rint(a)) > 1e-9)[0].tolist()
        raise DataError(f"{name} must hold whole numbers of vehicles/plugs (index {bad} is {a[tuple(bad)]})")
    return np.rint(a) if integer else a


@dataclass
class FleetState:
    """Observed state at one decision epoch, per region.

    Attributes
    ----------
    vacant : (n,) int counts ``V_i``: vacant EVs with state of charge above the low-battery threshold.
    low_battery : (n,) int counts ``L_i``: vacant EVs at or below the threshold (they must go to a charger).
    plugs : (n,) int counts ``p_j``: charging plugs in region ``j`` (0 where there is no charger).
    occupied : (n,) int counts ``o_j``: plugs occupied or queued now (may exceed ``plugs`` when a queue
        forms; the balancer then needs a queue allowance, see :class:`drbalance.problem.BalancingConfig`).

    All counts are validated on construction (shape, finite, non-negative, whole numbers) and stored
    as float arrays holding integers.
    """

    vacant: np.ndarray
    low_battery: np.ndarray
    plugs: np.ndarray
    occupied: np.ndarray

    def __post_init__(self) -> None:
        v = np.asarray(self.vacant)
        if v.ndim != 1 or v.shape[0] == 0:
            raise DataError(f"vacant must be a non-empty 1-D array of counts per region, got shape {v.shape}")
        n = v.shape[0]
        self.vacant = _counts("vacant", self.vacant, (n,), True)
        self.low_battery = _counts("low_battery", self.low_battery, (n,), True)
        self.plugs = _counts("plugs", self.plugs, (n,), True)
        self.occupied = _counts("occupied", self.occupied, (n,), True)

    @property
    def n(self) -> int:
        """Number of regions."""
        return self.vacant.shape[0]

    @classmethod
    def from_vehicles(cls, region: np.ndarray, soc: np.ndarray, plugs: np.ndarray, occupied: np.ndarray,
                      threshold: float = LOW_BATTERY_THRESHOLD) -> "FleetState":
        """Count vacant EVs per region from per-vehicle arrays.

        Parameters
        ----------
        region : (v,) int region position (0..n-1) of each vacant EV.
        soc : (v,) state of charge in [0, 1] of each vacant EV.
        plugs, occupied : (n,) plug counts and occupied/queued plugs per region.
        threshold : EVs with ``soc <= threshold`` count as low-battery (default 0.20, MATH.md).
        """
        region = np.asarray(region)
        soc = np.asarray(soc, float)
        n = np.asarray(plugs).shape[0]
        if region.shape != soc.shape or region.ndim != 1:
            raise DataError(f"region and soc must be 1-D arrays of equal length, got {region.shape} and {soc.shape}")
        if len(region) and (region.min() < 0 or region.max() >= n):
            raise DataError(f"vehicle region positions must lie in 0..{n - 1}")
        if not np.isfinite(soc).all() or (soc < 0).any() or (soc > 1).any():
            raise DataError("state of charge must lie in [0, 1] for every vehicle")
        if not (0 <= threshold < 1):
            raise DataError(f"low-battery threshold must lie in [0, 1), got {threshold}")
        low = soc <= threshold
        return cls(np.bincount(region[~low], minlength=n), np.bincount(region[low], minlength=n), plugs, occupied)


@dataclass
class Forecasts:
    """Forecast window of ``K`` slots starting at the decision epoch.

    Attributes
    ----------
    demand : (K, n) expected requests ``μ̂_r`` per slot and region (the centre of the demand sets).
    supply : (K, n) expected EVs becoming vacant ``ŝ`` per slot and region (trip ends + charging completions).
    charging : (K, n) expected charging demand ``c_j^k`` (low-battery arrivals) or None, in which case
        ``c_j^k = p_j`` (charging demand proportional to plug count; chosen here, MATH.md is silent).
    low_battery_inflow : (K, n) EVs newly falling to low battery during slot ``k``, routed to chargers
        in slot ``k + 1`` (row ``K - 1`` lies beyond the horizon and is unused), or None for zeros.
    occupied : (K, n) plugs occupied or queued in each slot ``o_j^k``, or None to hold the state's
        ``occupied`` constant over the horizon.
    demand_robust_set : robust set (kind ``"robust"``) of the stacked demand window, dimension ``K n``
        slot-major (entry ``k n + i``); needed by mode ``demand_robust``.
    demand_mean_set : DR mean ambiguity set (kind ``"mean"``) of demand; needed by mode ``dr``.
    supply_mean_set : DR mean ambiguity set of supply; needed by mode ``dr``.

    The sets' centres must equal ``demand`` / ``supply`` (checked by the problem), so that the three
    modes share one point forecast. :meth:`from_estimates` builds a consistent object.
    """

    demand: np.ndarray
    supply: np.ndarray
    charging: np.ndarray | None = None
    low_battery_inflow: np.ndarray | None = None
    occupied: np.ndarray | None = None
    demand_robust_set: Any = None
    demand_mean_set: Any = None
    supply_mean_set: Any = None

    def __post_init__(self) -> None:
        d = np.asarray(self.demand, float)
        if d.ndim != 2 or 0 in d.shape:
            raise DataError(f"demand forecast must have shape (K, n), got {d.shape}")
        shape = d.shape
        for name in ("demand", "supply", "charging", "low_battery_inflow", "occupied"):
            value = getattr(self, name)
            if value is None:
                continue
            a = np.asarray(value, float)
            if a.shape != shape:
                raise DataError(f"{name} forecast has shape {a.shape}, expected {shape} (K slots, n regions)")
            if not np.isfinite(a).all():
                raise DataError(f"{name} forecast holds NaN or infinite values")
            if name in ("charging", "low_battery_inflow", "occupied") and (a < 0).any():
                raise DataError(f"{name} forecast holds negative values; it counts vehicles or plugs")
            setattr(self, name, a)

    @property
    def horizon(self) -> int:
        return self.demand.shape[0]

    @property
    def n(self) -> int:
        return self.demand.shape[1]

    @classmethod
    def from_estimates(cls, estimates, date, start_slot: int, demand: str = "demand", supply: str = "supply",
                       **extra) -> "Forecasts":
        """Forecast window and sets from a fitted :class:`data_pipeline.estimates.Estimates`.

        The point forecasts are the sets' centres (forecast + mean training residual), reshaped to
        ``(K, n)``; ``extra`` passes ``charging``, ``low_battery_inflow`` or ``occupied``.
        """
        K, n = estimates.config.horizon, estimates.regions.n
        d_rob, d_mean = estimates.sets_for(demand, date, start_slot)
        _, s_mean = estimates.sets_for(supply, date, start_slot)
        return cls(d_rob.mean.reshape(K, n), s_mean.mean.reshape(K, n), demand_robust_set=d_rob,
                   demand_mean_set=d_mean, supply_mean_set=s_mean, **extra)


@dataclass
class Plan:
    """A balancing decision over the horizon and how it was obtained.

    Attributes
    ----------
    mode : ``"nominal"``, ``"demand_robust"`` or ``"dr"``.
    pairs_x : (m_x, 2) int region positions ``(i, j)`` of the vacant-EV pair list (staying = ``i == j``).
    pairs_y : (m_y, 2) int ``(i, j)`` of the low-battery pair list (``j`` has plugs, within low-battery reach).
    X : (K, m_x) relaxed vacant EVs sent ``i -> j`` in each slot.
    Y : (K, m_y) relaxed low-battery EVs sent from ``i`` to a charger in ``j`` in each slot.
    moves_x : (m_x,) int first-slot vacant moves after largest-remainder rounding (row sums = ``V``).
    moves_y : (m_y,) int first-slot low-battery moves after rounding (row sums = ``L``, plug capacity kept).
    supply_after : (K, n) ``S^k_j = Σ_i X^k_ij`` vacant EVs in each region after balancing.
    free_plugs : (K, n) ``F^k_j = p_j - o^k_j - Σ_i Y^k_ij`` (NaN where a region has no plug).
    objective : weighted objective value the solver minimised (dimensionless when normalised).
    terms : dict of raw terms: ``idle_km`` (km, all slots), ``supply_demand`` (``Σ μ̂ t``, requests per
        vehicle), ``charging`` (``Σ c / F``), ``robust_premium`` (mode objective minus the nominal
        objective at this same plan, in objective units), and their weighted contributions
        ``weighted_idle_km``, ``weighted_supply_demand``, ``weighted_charging``.
    solver : name of the backend that solved it (e.g. ``"clarabel"``).
    status : solver status string.
    solve_seconds : time inside the conic solver (s).
    total_seconds : wall time of the whole :meth:`solve` call including data updates and rounding (s).
    diagnostics : dict of counts and scales (iterations, floored supply components, normalisers, ...).
    """

    mode: str
    pairs_x: np.ndarray
    pairs_y: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    moves_x: np.ndarray
    moves_y: np.ndarray
    supply_after: np.ndarray
    free_plugs: np.ndarray
    objective: float
    terms: dict[str, float]
    solver: str
    status: str
    solve_seconds: float
    total_seconds: float
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def horizon(self) -> int:
        return self.X.shape[0]

    def first_slot_moves(self):
        """First-slot rounded moves that leave their region, as a frame ``origin, dest, vehicles, kind``
        (``kind`` is ``"vacant"`` or ``"low_battery"``); staying vehicles are omitted."""
        import pandas as pd

        frames = []
        for kind, pairs, moves in (("vacant", self.pairs_x, self.moves_x), ("low_battery", self.pairs_y, self.moves_y)):
            keep = (moves > 0) & (pairs[:, 0] != pairs[:, 1])
            frames.append(pd.DataFrame({"origin": pairs[keep, 0], "dest": pairs[keep, 1],
                                        "vehicles": moves[keep].astype(np.int64), "kind": kind}))
        return pd.concat(frames, ignore_index=True)
