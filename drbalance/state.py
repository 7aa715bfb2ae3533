"""Plain data passed into and out of the balancer: fleet state, forecasts, plan (MATH.md section 1).

* :class:`FleetState` -- what the controller observes at a decision epoch (counts per region).
* :class:`Forecasts` -- the ``K``-slot window of demand, supply and charging forecasts, and the
  uncertainty sets the robust modes use.
* :class:`Plan` -- what :class:`drbalance.problem.BalancingProblem` returns: the relaxed moves of every
  slot on the sparse pair lists, the rounded first-slot moves, objective terms, solver status, timings.
* :class:`Moves` -- integer region-to-region moves of one slot, the answer every policy gives the
  simulator (``Plan.moves()`` turns a plan into one); ``Moves.to_frame()`` is the one move table
  ``origin, destination, count, kind`` with ``kind`` in :data:`KINDS`.

All four are frozen value objects: validated once in ``__post_init__``, attributes cannot be
reassigned (:class:`dataclasses.FrozenInstanceError`) and every numpy array they hold is read-only
(a private copy when the caller's array was passed in, so the caller's array stays writable).  Build
a changed object with :func:`dataclasses.replace` (it validates again); take ``.copy()`` of an array
to get a scratch one.

Units: counts in vehicles (EVs), plugs or requests per slot; distances in km; time in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import pandas as pd

from drbalance.errors import DataError

#: Default low-battery threshold (share of full charge) separating ``V`` from ``L`` (MATH.md).
LOW_BATTERY_THRESHOLD = 0.20

#: Move kinds: ``"vacant"`` (EVs above the low-battery threshold, rebalancing) and ``"charge"``
#: (low-battery EVs sent to a charger in the destination), in the order move tables list them.
KINDS = ("vacant", "charge")


def readonly(value, dtype=None) -> np.ndarray:
    """``value`` as a read-only numpy array of ``dtype`` that no one else can write through.

    A new array (converted from a list, or cast to ``dtype``) is frozen in place; the caller's own array
    (or a view into someone's memory) is copied first, so the caller's array stays writable.  An array
    that is already read-only and owns its memory (e.g. another frozen object's) is shared as it is.
    """
    a = np.asarray(value, dtype=dtype)
    if not a.flags.writeable and a.flags.owndata:
        return a
    if a is value or not a.flags.owndata:
        a = a.copy()
    a.setflags(write=False)
    return a


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
    return readonly(np.rint(a)) if integer else readonly(value, float)


@dataclass(frozen=True)
class FleetState:
    """Observed state at one decision epoch, per region.

    Attributes
    ----------
    vacant : (n,) int counts ``V_i``: vacant EVs with state of charge above the low-battery threshold.
    low_battery : (n,) int counts ``L_i``: vacant EVs at or below the threshold (they must go to a charger).
    plugs : (n,) int counts ``p_j``: charging plugs in region ``j`` (0 where there is no charger).
    occupied : (n,) int counts ``o_j``: plugs occupied or queued now (may exceed ``plugs`` when a queue
        forms; the balancer then needs a queue allowance, see :class:`drbalance.problem.BalancingConfig`).
    incoming : None, or (H, n) counts of EVs known to become vacant (with charge above the threshold) in
        region ``i`` during slot ``k = 0..H-1`` from now: passenger trips ending, repositioning EVs
        arriving, charging EVs finishing.  A host that knows its vehicles' destinations (every ride-hailing
        dispatcher does) passes it; model v2 then uses it as the known supply instead of the supply forecast.

    All counts are validated on construction (shape, finite, non-negative, whole numbers) and stored
    as read-only float arrays holding integers (frozen: see the module docstring).
    """

    vacant: np.ndarray
    low_battery: np.ndarray
    plugs: np.ndarray
    occupied: np.ndarray
    incoming: np.ndarray | None = None

    def __post_init__(self) -> None:
        v = np.asarray(self.vacant)
        if v.ndim != 1 or v.shape[0] == 0:
            raise DataError(f"vacant must be a non-empty 1-D array of counts per region, got shape {v.shape}")
        n = v.shape[0]
        for name in ("vacant", "low_battery", "plugs", "occupied"):
            object.__setattr__(self, name, _counts(name, getattr(self, name), (n,), True))
        if self.incoming is not None:
            a = np.asarray(self.incoming)
            if a.ndim != 2 or a.shape[1] != n:
                raise DataError(f"incoming must have shape (H, n={n}) (slots ahead x regions), got {a.shape}")
            object.__setattr__(self, "incoming", _counts("incoming", a, a.shape, True))

    def incoming_window(self, horizon: int) -> np.ndarray:
        """(K, n) known arrivals of the next ``horizon`` slots (zeros beyond ``incoming`` or without it)."""
        out = np.zeros((int(horizon), self.n))
        if self.incoming is not None:
            h = min(int(horizon), self.incoming.shape[0])
            out[:h] = self.incoming[:h]
        return out

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


@dataclass(frozen=True)
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
    demand_moments, supply_moments : :class:`data_pipeline.uncertainty.WindowMoments` (per-component
        variance, simultaneous mean half-width, training scenarios) for model v2's ``dr`` and ``saa``.
    demand_supply_cov : (K, n) per-component covariance of demand and supply residuals, or None (0).
    timing_share : (K, n) timing share ``θ`` (share of a slot's requests a vehicle becoming vacant during
        the slot can serve), or None (the balancing config decides).
    charging_std : (K, n) standard deviation of ``charging`` (uncontrolled low-battery arrivals), or None
        (Poisson: ``sqrt(charging)``).
    expected_hires : (K, n) hires expected per slot and region (model v2 with ``returns = "lagged"``: their
        trips bring vehicles back through the trip mobility), or None (the mean demand).

    The sets' centres must equal ``demand`` / ``supply`` (checked by the problem), so that the three
    modes share one point forecast. :meth:`from_estimates` builds a consistent object.  Frozen, arrays
    read-only; e.g. scale a set's radius with ``dataclasses.replace(fc, demand_mean_set=...)``.
    """

    demand: np.ndarray
    supply: np.ndarray
    charging: np.ndarray | None = None
    low_battery_inflow: np.ndarray | None = None
    occupied: np.ndarray | None = None
    demand_robust_set: Any = None
    demand_mean_set: Any = None
    supply_mean_set: Any = None
    demand_moments: Any = None
    supply_moments: Any = None
    demand_supply_cov: np.ndarray | None = None
    timing_share: np.ndarray | None = None
    charging_std: np.ndarray | None = None
    expected_hires: np.ndarray | None = None

    def __post_init__(self) -> None:
        d = np.asarray(self.demand, float)
        if d.ndim != 2 or 0 in d.shape:
            raise DataError(f"demand forecast must have shape (K, n), got {d.shape}")
        shape = d.shape
        if self.timing_share is not None:
            t = np.asarray(self.timing_share, float)
            t = np.broadcast_to(t[:, None] if t.ndim == 1 else t, shape) if t.ndim in (1, 2) else t
            if t.shape != shape or not np.isfinite(t).all() or (t < 0).any() or (t > 1).any():
                raise DataError(f"timing_share must hold shares in [0, 1] of shape (K,) or {shape}")
            object.__setattr__(self, "timing_share", readonly(t, float))
        for m in ("demand_moments", "supply_moments"):
            mo = getattr(self, m)
            if mo is not None and getattr(mo, "dim", None) != d.size:
                raise DataError(f"{m} has dimension {getattr(mo, 'dim', None)}, expected K n = {d.size}")
        for name in ("demand", "supply", "charging", "low_battery_inflow", "occupied", "demand_supply_cov",
                     "charging_std", "expected_hires"):
            value = getattr(self, name)
            if value is None:
                continue
            a = readonly(value, float)
            if a.shape != shape:
                raise DataError(f"{name} forecast has shape {a.shape}, expected {shape} (K slots, n regions)")
            if not np.isfinite(a).all():
                raise DataError(f"{name} forecast holds NaN or infinite values")
            if name in ("charging", "low_battery_inflow", "occupied", "charging_std", "expected_hires") and (a < 0).any():
                raise DataError(f"{name} forecast holds negative values; it counts vehicles or plugs")
            object.__setattr__(self, name, a)

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
        extra.setdefault("demand_moments", estimates.moments_for(demand, date, start_slot))
        extra.setdefault("supply_moments", estimates.moments_for(supply, date, start_slot))
        extra.setdefault("demand_supply_cov", estimates.cross_covariance(demand, supply, date, start_slot).reshape(K, n))
        return cls(d_rob.mean.reshape(K, n), s_mean.mean.reshape(K, n), demand_robust_set=d_rob,
                   demand_mean_set=d_mean, supply_mean_set=s_mean, **extra)


@dataclass(frozen=True)
class Moves:
    """Integer moves between regions for one slot: what a policy answers and the simulator applies.

    Attributes
    ----------
    origin, destination : (m,) int64 region positions (0..n-1 of the simulator's RegionMap).
    count : (m,) int64 vehicles moved (>= 0).  A vacant move with ``origin == destination`` means "stay";
        a charge move with ``origin == destination`` means "charge in my own region" (an order, kept).
    kind : (m,) object array of str, ``"vacant"`` (EVs above the low-battery threshold) or ``"charge"``
        (low-battery EVs sent to a charger in ``destination``), see :data:`KINDS`.

    Frozen, arrays read-only.  :meth:`to_frame` gives the one move table of the package.
    """

    origin: np.ndarray
    destination: np.ndarray
    count: np.ndarray
    kind: np.ndarray

    def __post_init__(self) -> None:
        origin = readonly(np.asarray(self.origin, dtype=np.int64).reshape(-1))
        destination = readonly(np.asarray(self.destination, dtype=np.int64).reshape(-1))
        cf = np.asarray(self.count).astype(float).reshape(-1)
        if len(cf) and (not np.isfinite(cf).all() or not np.allclose(cf, np.rint(cf), rtol=0, atol=1e-9)):
            raise DataError("move counts must be whole numbers of vehicles (round the plan first)")
        count = readonly(np.rint(cf).astype(np.int64))
        kind = readonly(np.asarray(self.kind, dtype=object).reshape(-1))
        m = len(origin)
        if not (len(destination) == len(count) == len(kind) == m):
            raise DataError(f"Moves arrays differ in length: origin {m}, destination {len(destination)}, "
                            f"count {len(count)}, kind {len(kind)}")
        if (count < 0).any():
            raise DataError(f"negative move count {int(count.min())}; counts are vehicles (>= 0)")
        bad = ~np.isin(kind.astype(str), KINDS) if m else np.zeros(0, bool)
        if bad.any():
            raise DataError(f"unknown move kind {kind[bad][0]!r}; use 'vacant' or 'charge'")
        for name, value in (("origin", origin), ("destination", destination), ("count", count), ("kind", kind)):
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(self.origin)

    @classmethod
    def empty(cls) -> "Moves":
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, object))

    @classmethod
    def concat(cls, parts: list["Moves"]) -> "Moves":
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("origin", "destination", "count", "kind")))

    @classmethod
    def from_pairs(cls, pairs_x, moves_x, pairs_y, moves_y, include_stays: bool = False) -> "Moves":
        """Moves from rounded pair lists (as :class:`Plan` holds them).

        ``pairs_x`` (m_x, 2) / ``moves_x`` (m_x,) vacant moves, ``pairs_y`` (m_y, 2) / ``moves_y`` (m_y,)
        low-battery moves (they become ``"charge"``).  Zero counts are left out, and vacant stays
        (``i -> i``) too unless ``include_stays``; own-region charge moves are kept (they are orders).
        Vacant rows come first, each kind in pair-list order.
        """
        px, py = np.asarray(pairs_x).reshape(-1, 2), np.asarray(pairs_y).reshape(-1, 2)
        mx, my = np.asarray(moves_x).reshape(-1), np.asarray(moves_y).reshape(-1)
        kx = mx > 0
        if not include_stays:
            kx &= px[:, 0] != px[:, 1]
        ky = my > 0
        nx, ny = int(kx.sum()), int(ky.sum())
        return cls(np.r_[px[kx, 0], py[ky, 0]], np.r_[px[kx, 1], py[ky, 1]], np.r_[mx[kx], my[ky]],
                   np.r_[np.full(nx, KINDS[0], object), np.full(ny, KINDS[1], object)])

    def total(self, kind: str) -> int:
        """Vehicles moved of one kind (stays included)."""
        return int(self.count[self.kind == kind].sum())

    def to_frame(self, include_stays: bool = False) -> pd.DataFrame:
        """The move table: columns ``origin``, ``destination`` (int64 region positions), ``count`` (int64
        vehicles > 0) and ``kind`` (str, ``"vacant"`` or ``"charge"``).

        One row per ``(kind, origin, destination)`` (repeated moves summed), vacant rows first, then by
        origin and destination.  Zero counts are left out; so are vacant stays (``origin ==
        destination``) unless ``include_stays``.  A charge row with ``origin == destination`` ("charge in
        your own region") is always kept: it is an order.
        """
        f = pd.DataFrame({"origin": self.origin, "destination": self.destination, "count": self.count,
                          "kind": self.kind.astype(str)})
        keep = f["count"] > 0
        if not include_stays:
            keep &= ~((f["kind"] == KINDS[0]) & (f["origin"] == f["destination"]))
        f = f[keep].groupby(["kind", "origin", "destination"], as_index=False, sort=True)["count"].sum()
        f = f.assign(_k=f["kind"].map({k: i for i, k in enumerate(KINDS)})).sort_values(["_k", "origin", "destination"])
        return f.loc[:, ["origin", "destination", "count", "kind"]].reset_index(drop=True).astype(
            {"origin": np.int64, "destination": np.int64, "count": np.int64})


@dataclass(frozen=True)
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
    moves_y : (m_y,) int first-slot low-battery moves after rounding (row sums = ``L``, plug capacity kept);
        :meth:`moves` gives both as :class:`Moves`.
    supply_after : (K, n) ``S^k_j = Σ_i X^k_ij`` vacant EVs in each region after balancing.
    free_plugs : (K, n) ``F^k_j = p_j - o^k_j - Σ_i Y^k_ij`` (NaN where a region has no plug).
    objective : weighted objective value the solver minimised (dimensionless when normalised).
    terms : read-only mapping (:class:`types.MappingProxyType` over a private dict) of raw terms: ``idle_km`` (km, all slots), ``supply_demand`` (``Σ μ̂ t``, requests per
        vehicle), ``charging`` (``Σ c / F``), ``robust_premium`` (mode objective minus the nominal
        objective at this same plan, in objective units), and their weighted contributions
        ``weighted_idle_km``, ``weighted_supply_demand``, ``weighted_charging``.
    solver : name of the backend that solved it (e.g. ``"clarabel"``).
    status : solver status string.
    solve_seconds : time inside the conic solver (s).
    total_seconds : wall time of the whole :meth:`solve` call including data updates and rounding (s).
    diagnostics : read-only mapping of counts and scales (iterations, floored supply components,
        normalisers, ...).

    Frozen: arrays read-only, ``terms`` and ``diagnostics`` read-only mappings (``dict(plan.terms)``
    for a scratch copy).  Plans pickle and deep-copy (rebuilt through the constructor).
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
    terms: Mapping[str, float]
    solver: str
    status: str
    solve_seconds: float
    total_seconds: float
    diagnostics: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arrays = {}
        for name in ("pairs_x", "pairs_y", "X", "Y", "moves_x", "moves_y", "supply_after", "free_plugs"):
            arrays[name] = readonly(getattr(self, name))
        for name in ("pairs_x", "pairs_y"):
            if arrays[name].ndim != 2 or arrays[name].shape[1] != 2:
                raise DataError(f"plan {name} must have shape (m, 2), got {arrays[name].shape}")
        for mat, vec, pairs in (("X", "moves_x", "pairs_x"), ("Y", "moves_y", "pairs_y")):
            m = len(arrays[pairs])
            if arrays[mat].ndim != 2 or arrays[mat].shape[1] != m or arrays[vec].shape != (m,):
                raise DataError(f"plan {mat} {arrays[mat].shape} and {vec} {arrays[vec].shape} do not match "
                                f"the {m} pairs of {pairs}; expected (K, {m}) and ({m},)")
        for name, value in arrays.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "terms", MappingProxyType(dict(self.terms)))
        object.__setattr__(self, "diagnostics", MappingProxyType(dict(self.diagnostics)))

    def __reduce__(self):
        # mapping proxies do not pickle: rebuild from plain dicts through the constructor (which validates)
        values = [getattr(self, f.name) for f in fields(self)]
        return type(self), tuple(dict(v) if isinstance(v, MappingProxyType) else v for v in values)

    @property
    def horizon(self) -> int:
        return self.X.shape[0]

    def moves(self, include_stays: bool = False) -> Moves:
        """The rounded first slot (``moves_x``, ``moves_y``) as :class:`Moves`: vacant moves, then the
        low-battery moves as ``"charge"``.  Zero counts and vacant stays are left out (stays only with
        ``include_stays``); a charge move to one's own region is kept, it is an order to charge there.
        ``plan.moves().to_frame()`` is the move table ``origin, destination, count, kind``."""
        return Moves.from_pairs(self.pairs_x, self.moves_x, self.pairs_y, self.moves_y, include_stays)
