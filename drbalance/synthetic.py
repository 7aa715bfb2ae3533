"""Seeded synthetic and NYC test cities for the balancing benchmark and tests.

A :class:`City` bundles a :class:`~data_pipeline.regions.RegionMap`, plug counts and a few forecast
windows (point forecasts plus robust / DR sets fitted on a history), and draws perturbed
:class:`~drbalance.state.FleetState` / :class:`~drbalance.state.Forecasts` pairs for re-solve loops.

* :func:`synthetic_city`: ``n`` regions on a jittered square grid (``spacing_km`` apart, centred on
  Manhattan's latitude), road distance = great-circle x 1.3; demand and supply intensities from a
  few Gaussian hotspots times a two-peak daily profile (about 3 requests per region and 15-min slot
  on average); a history of ``n_days`` Poisson days with a shared lognormal day factor and a
  hotspot-specific factor (so the covariance is low rank plus diagonal, as in real data); sets fitted
  with :class:`~data_pipeline.uncertainty.EllipsoidEstimator` (Ledoit-Wolf).  About a quarter of
  the regions get chargers (4 + Poisson(6) plugs), and more are added until every region has two
  charger regions within the low-battery reach.
* :func:`nyc_city`: the 260 located NYC taxi zones with estimates fitted on the bundled green-taxi
  data (Jan-Feb 2021) and windows on March 2021 weekdays; plugs are synthetic (NYC charging data are
  not bundled), drawn like the synthetic city's.

Fleet states: ``V_i ~ Poisson(1.2 μ̂^1_i + 1)``, ``L_i ~ Poisson(0.1 (1.2 μ̂^1_i + 1))``, occupied plugs
``~ Binomial(p, 0.4)`` capped at ``p - 1``.  Forecast perturbations multiply the window's demand and
supply by lognormal(0, 0.1) factors and recentre the sets there (factor and radius unchanged).  States
whose low-battery EVs cannot all reach a free plug within 3 km (a transportation-LP feasibility check)
are redrawn, so benchmark instances are feasible.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from data_pipeline.estimates import EstimateConfig
from data_pipeline.readers import read_tlc_trips
from data_pipeline.regions import RegionMap, haversine_km
from data_pipeline.uncertainty import EllipsoidEstimator, window_moments
from drbalance import datasets
from drbalance.errors import ConfigError
from drbalance.state import FleetState, Forecasts
from drbalance.study import Study
from drbalance.study_config import EvaluationSettings, StudyConfig

LAT0, LON0 = 40.75, -73.98


@dataclass
class City:
    """A test city: regions, plugs and base forecast windows (all seeded).

    Attributes
    ----------
    name : label (``"synthetic"`` or ``"nyc"``).
    regions : RegionMap with ``n`` regions.
    plugs : (n,) plug counts.
    windows : list of :class:`Forecasts` (horizon ``K``) with robust and DR sets.
    min_vacant : vacant EVs every region holds at least (added to the Poisson draw; 1 for NYC, whose
        isolated zones such as Newark Airport have no neighbour within the reach and often zero forecast
        supply, which would make the model infeasible by design).
    trip_returns : None or the trip-mobility matrices ``M_1..`` of model v2 (share of hires from ``i`` vacant
        again in ``j`` ``d`` slots later): the NYC city's come from its training trips, the synthetic city's
        from a gravity model (:func:`gravity_returns`).
    """

    name: str
    regions: RegionMap
    plugs: np.ndarray
    windows: list
    min_vacant: int = 0
    trip_returns: list | None = None

    @property
    def n(self) -> int:
        return self.regions.n

    def draw(self, rng: np.random.Generator, step: int = 0, perturb: bool = True,
             incoming: bool = False) -> tuple[FleetState, Forecasts]:
        """A fleet state and forecast window for re-solve ``step`` (cycles through the windows).

        ``incoming``: the state also reports EVs known to become vacant (Poisson, mean 60 % of the supply
        forecast per slot), as a simulator or a dispatcher does; model v2 then uses them as known supply."""
        base = self.windows[step % len(self.windows)]
        K, n = base.demand.shape
        if perturb:
            fd = rng.lognormal(0.0, 0.1, size=(K, n))
            fs = rng.lognormal(0.0, 0.1, size=(K, n))
        else:
            fd = fs = np.ones((K, n))
        demand, supply = base.demand * fd, base.supply * fs
        fc = Forecasts(demand, supply,
                       demand_robust_set=dataclasses.replace(base.demand_robust_set, mean=demand.ravel()),
                       demand_mean_set=dataclasses.replace(base.demand_mean_set, mean=demand.ravel()),
                       supply_mean_set=dataclasses.replace(base.supply_mean_set, mean=supply.ravel()),
                       demand_moments=_recentre(base.demand_moments, demand),
                       supply_moments=_recentre(base.supply_moments, supply))
        lam = 1.2 * demand[0] + 1.0
        for _ in range(50):
            occ = np.minimum(rng.binomial(self.plugs.astype(np.int64), 0.4), np.maximum(self.plugs - 1, 0))
            state = FleetState(self.min_vacant + rng.poisson(lam), rng.poisson(0.1 * lam), self.plugs, occ)
            if self._chargeable(state):
                if incoming:
                    state = dataclasses.replace(state, incoming=rng.poisson(0.6 * np.maximum(supply, 0.0)))
                return state, fc
        raise ConfigError("could not draw a fleet state whose low-battery EVs all reach a free plug; "
                          "the city has too few plugs")

    def _chargeable(self, state: FleetState, reach_km: float = 3.0, margin: float = 0.5) -> bool:
        """Whether every low-battery EV can reach a free plug (transportation LP feasibility, HiGHS)."""
        pairs = self.regions.reachable_pairs(reach_km)
        pairs = pairs[state.plugs[pairs[:, 1]] > 0]
        orig = np.flatnonzero(state.low_battery > 0)
        pairs = pairs[np.isin(pairs[:, 0], orig)]
        if len(orig) and not np.isin(orig, pairs[:, 0]).all():
            return False
        m = len(pairs)
        if m == 0:
            return True
        cols = np.arange(m)
        A_eq = sp.csr_matrix((np.ones(m), (np.searchsorted(orig, pairs[:, 0]), cols)), shape=(len(orig), m))
        A_ub = sp.csr_matrix((np.ones(m), (pairs[:, 1], cols)), shape=(self.n, m))
        cap = state.plugs - state.occupied - margin
        res = linprog(np.zeros(m), A_ub=A_ub, b_ub=np.where(state.plugs > 0, cap, 0), A_eq=A_eq,
                      b_eq=state.low_battery[orig], bounds=(0, None), method="highs")
        return res.status == 0


def gravity_returns(regions: RegionMap, horizon: int, scale_km: float = 3.0, max_destinations: int = 16,
                    shares: tuple = (0.55, 0.3, 0.1)) -> list:
    """Synthetic trip mobility: a hire from ``i`` is vacant again ``d`` slots later with probability
    ``shares[d-1]`` (the rest beyond), in ``j`` with weight ``exp(-W_ij / scale_km)`` over its
    ``max_destinations`` likeliest destinations.  Returns ``K - 1`` sparse (n, n) matrices."""
    W = np.asarray(regions.distance_km, float)
    G = np.exp(-W / scale_km)
    k = min(max_destinations, G.shape[1])
    top = np.argpartition(-G, k - 1, axis=1)[:, :k]
    keep = np.zeros(G.shape, bool)
    np.put_along_axis(keep, top, True, axis=1)
    G = np.where(keep, G, 0.0)
    G /= G.sum(axis=1, keepdims=True)
    return [sp.csr_matrix(G * (shares[d] if d < len(shares) else 0.0)) for d in range(horizon - 1)]


def _recentre(moments, centre: np.ndarray):
    """``moments`` moved to the centre ``centre`` (K, n) (scenarios shifted with it); None stays None."""
    if moments is None:
        return None
    return moments.shifted(np.asarray(centre, float).ravel() - moments.mean)


def _plugs(rng: np.random.Generator, regions: RegionMap, reach_km: float, share: float = 0.25) -> np.ndarray:
    n = regions.n
    plugs = np.where(rng.random(n) < share, 4 + rng.poisson(6, n), 0)
    near = regions.distance_km <= reach_km
    need = np.minimum(2, near.sum(axis=1))  # two charger regions within reach (one where only itself is near)
    for _ in range(4 * n + 10):
        covered = near[:, plugs > 0].sum(axis=1) >= need
        if covered.all():
            return plugs.astype(float)
        idx = np.flatnonzero(~covered)
        idx = idx[rng.random(len(idx)) < 0.3] if len(idx) > 3 else idx[:1]
        # add a charger at a random near region of each picked one that has none yet
        score = np.where(near[idx] & (plugs == 0)[None, :], rng.random((len(idx), n)), -1.0)
        plugs[np.unique(score.argmax(axis=1))] = 4 + rng.poisson(6)
    raise ConfigError("internal: could not place chargers covering every region")


def _profile(slots: np.ndarray, slot_minutes: int) -> np.ndarray:
    h = (slots * slot_minutes / 60.0) % 24
    return 0.35 + np.exp(-0.5 * ((h - 8.5) / 1.5) ** 2) + 0.9 * np.exp(-0.5 * ((h - 18.0) / 2.0) ** 2)


def synthetic_city(n: int, horizon: int = 4, seed: int = 0, spacing_km: float = 1.5, n_days: int = 30,
                   start_slots: tuple[int, ...] = (32, 33, 34, 35), slot_minutes: int = 15,
                   low_battery_reach_km: float = 3.0, n_bootstrap: int = 200, rank: int | None = None) -> City:
    """A seeded synthetic city of ``n`` regions (see the module docstring).

    ``rank``: truncate the sets' covariance factor to this rank (None keeps all ``n_days``
    directions; see :class:`~data_pipeline.uncertainty.EllipsoidEstimator`).
    ``start_slots``: the window start slots fitted (default 08:00-08:45 with 15-min slots); each gets
    its own sets from the ``n_days``-day history.
    """
    if n < 2:
        raise ConfigError(f"a synthetic city needs at least 2 regions, got {n}")
    rng = np.random.default_rng(seed)
    g = int(np.ceil(np.sqrt(n)))
    a, b = np.divmod(np.arange(n), g)
    xy = np.stack([b, a], axis=1).astype(float) * spacing_km
    xy += rng.uniform(-0.3, 0.3, size=(n, 2)) * spacing_km
    lat = LAT0 + xy[:, 1] / 111.0
    lon = LON0 + xy[:, 0] / (111.0 * np.cos(np.radians(LAT0)))
    dist = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :]) * 1.3
    np.fill_diagonal(dist, 0.0)
    ids = np.arange(n)
    regions = RegionMap(ids, np.array([f"r{i}" for i in ids], dtype=object), lat, lon, dist, ids, ids, 1.3)
    # spatial intensities from hotspots
    n_hot = 4
    span = xy.max(axis=0) - xy.min(axis=0) + spacing_km
    centres = xy.min(axis=0) + rng.random((n_hot, 2)) * span
    sigma = 0.25 * span.mean()
    d2 = ((xy[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    bumps = np.exp(-0.5 * d2 / sigma**2)  # (n, hot)
    w_dem = rng.uniform(1.0, 3.0, n_hot)
    w_sup = rng.uniform(1.0, 3.0, n_hot)
    dem_base = 0.3 + bumps @ w_dem
    sup_base = 0.3 + bumps @ w_sup
    dem_base *= 3.0 / dem_base.mean()
    sup_base *= 2.5 / sup_base.mean()
    plugs = _plugs(rng, regions, low_battery_reach_km)
    windows = []
    K = horizon
    for s0 in start_slots:
        prof = _profile(np.arange(s0, s0 + K), slot_minutes)  # (K,)
        lam_d = prof[:, None] * dem_base[None, :]
        lam_s = prof[:, None] * sup_base[None, :]
        day = rng.lognormal(0, 0.15, size=(n_days, 1, 1))
        hot = rng.lognormal(0, 0.2, size=(n_days, n_hot))
        spatial = (hot @ bumps.T) / bumps.sum(1)[None, :]  # (days, n) smooth regional factor
        hist_d = rng.poisson(lam_d[None] * day * spatial[:, None, :]).reshape(n_days, -1).astype(float)
        hist_s = rng.poisson(lam_s[None] * day * spatial[:, None, :]).reshape(n_days, -1).astype(float)
        seeds = rng.integers(2**31, size=2)
        est_d = EllipsoidEstimator(n_bootstrap=n_bootstrap, rank=rank, random_state=int(seeds[0])).fit(hist_d)
        est_s = EllipsoidEstimator(n_bootstrap=n_bootstrap, rank=rank, random_state=int(seeds[1])).fit(hist_s)
        dmean = np.maximum(est_d.robust_set_.mean, 0.0)
        smean = np.maximum(est_s.mean_set_.mean, 0.0)
        mom_d = window_moments(hist_d - hist_d.mean(0), 0.9, n_bootstrap, int(seeds[0])).shifted(dmean)
        mom_s = window_moments(hist_s - hist_s.mean(0), 0.9, n_bootstrap, int(seeds[1])).shifted(smean)
        windows.append(Forecasts(dmean.reshape(K, n), smean.reshape(K, n),
                                 demand_robust_set=dataclasses.replace(est_d.robust_set_, mean=dmean),
                                 demand_mean_set=dataclasses.replace(est_d.mean_set_, mean=dmean),
                                 supply_mean_set=dataclasses.replace(est_s.mean_set_, mean=smean),
                                 demand_moments=mom_d, supply_moments=mom_s))
    return City("synthetic", regions, plugs, windows, trip_returns=gravity_returns(regions, K))


def nyc_city(horizon: int = 4, seed: int = 0, slot_minutes: int = 15, dates=("2021-03-02", "2021-03-03"),
             start_slots: tuple[int, ...] = (32, 33), low_battery_reach_km: float = 3.0,
             n_bootstrap: int = 200, rank: int | None = None) -> City:
    """The 260 located NYC taxi zones with estimates from the bundled green-taxi data (Jan-Feb 2021).

    Windows: every ``(date, start slot)`` combination; plugs synthetic and seeded (see module docstring).
    ``rank`` truncates the sets' covariance factor (``EstimateConfig.rank``).
    """
    zones = datasets.load_nyc_zones()
    ing = read_tlc_trips(datasets.nyc_green_trip_files(("2021-01", "2021-02")), zones,
                         period=("2021-01-01", "2021-02-28"))
    config = StudyConfig(slot_minutes=slot_minutes, horizon=horizon, seed=seed,
                         estimate=EstimateConfig(n_bootstrap=n_bootstrap, rank=rank),
                         evaluation=EvaluationSettings(train=("2021-01-01", "2021-02-28"), regions=0, circuity=1.3))
    study = Study.from_trips(ing.frame, zones, config)   # every located zone, distances x 1.3
    regions, est = study.regions, study.estimates
    rng = np.random.default_rng(seed)
    plugs = _plugs(rng, regions, low_battery_reach_km)
    windows = []
    for d in dates:
        for s in start_slots:
            fc = Forecasts.from_estimates(est, d, s)
            dm, sm = np.maximum(fc.demand, 0), np.maximum(fc.supply, 0)
            windows.append(Forecasts(dm, sm,
                                     demand_robust_set=dataclasses.replace(fc.demand_robust_set, mean=dm.ravel()),
                                     demand_mean_set=dataclasses.replace(fc.demand_mean_set, mean=dm.ravel()),
                                     supply_mean_set=dataclasses.replace(fc.supply_mean_set, mean=sm.ravel()),
                                     demand_moments=_recentre(fc.demand_moments, dm),
                                     supply_moments=_recentre(fc.supply_moments, sm),
                                     demand_supply_cov=fc.demand_supply_cov))
    returns = est.trip_model.return_matrices(horizon) if est.trip_model is not None else None
    return City("nyc", regions, plugs, windows, min_vacant=1, trip_returns=returns)
