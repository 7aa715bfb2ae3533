"""Policies: what the simulator asks at every slot boundary, and the built-in baselines.

The only call a simulator makes is ``policy.plan(state, t)`` with a :class:`drbalance.state.FleetState`
and the slot's start time; the answer is either a :class:`Moves` or any object with a ``moves()``
method returning one, such as the optimiser's :class:`drbalance.state.Plan` (``Plan.moves()``: its
rounded first slot).  :class:`Moves` is defined in :mod:`drbalance.state` and importable from here.

Built-in policies
-----------------
* :class:`NoopPolicy` (``noop``): never rebalances; every low-battery EV goes to the nearest region
  with a free plug (nearest plug region if none is free within reach: it queues there).
* :class:`GreedyPolicy` (``greedy``): the same charging rule, and vacant EVs are sent, one at a time,
  to the region with the highest forecast demand/supply ratio among those whose forecast demand
  exceeds their expected supply, from the nearest region within reach that has EVs to spare.  Forecasts come from a
  :class:`EstimatesForecast` fitted on days strictly before the simulated day.
* ``oracle_counts`` (:func:`oracle_counts`): the greedy rule fed the realised demand of the slot
  being planned (and the recorded drop-offs) -- an upper reference that sees the future by design.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from drbalance.errors import ConfigError, DataError
from drbalance.state import KINDS, Moves  # noqa: F401  (the value object lives in drbalance.state)


@runtime_checkable
class Policy(Protocol):
    """Anything with ``plan(state: FleetState, t: pd.Timestamp) -> Moves | object with .moves()``."""

    def plan(self, state, t: pd.Timestamp): ...


def as_moves(answer, policy_name: str = "policy") -> Moves:
    """Normalise a policy's answer to :class:`Moves`.

    Accepts a :class:`Moves`; an object with a ``moves()`` method returning one (a
    :class:`drbalance.state.Plan`: its rounded first slot); or an object with rounded first-slot pair
    lists ``pairs_x``, ``moves_x``, ``pairs_y``, ``moves_y`` (read by :meth:`Moves.from_pairs`:
    low-battery moves become ``"charge"``).  Anything else raises :class:`ConfigError` naming the policy.
    """
    if isinstance(answer, Moves):
        return answer
    if answer is None:
        return Moves.empty()
    if callable(getattr(answer, "moves", None)):
        out = answer.moves()
        if not isinstance(out, Moves):
            raise ConfigError(f"policy {policy_name!r}: .moves() returned {type(out).__name__}, expected Moves")
        return out
    if all(hasattr(answer, a) for a in ("pairs_x", "moves_x", "pairs_y", "moves_y")):
        return Moves.from_pairs(answer.pairs_x, answer.moves_x, answer.pairs_y, answer.moves_y)
    raise ConfigError(f"policy {policy_name!r} returned {type(answer).__name__}; expected Moves, an object with "
                      "a moves() method, or a Plan with pairs_x/moves_x/pairs_y/moves_y")


def policy_name(policy) -> str:
    return str(getattr(policy, "name", type(policy).__name__))


# ------------------------------------------------------------------------------------ forecasts

#: A forecast provider: ``t -> (demand (n,), supply (n,) or None)`` for the slot starting at ``t``.
ForecastFn = Callable[[pd.Timestamp], tuple[np.ndarray, np.ndarray | None]]


class EstimatesForecast:
    """Next-slot demand and supply forecasts from a fitted :class:`data_pipeline.estimates.Estimates`.

    ``estimates`` must be fitted on days strictly before every day it is asked about (checked: a
    forecast for a day inside or before the training period raises :class:`ConfigError`, since the
    forecaster would then have seen the realised values).
    """

    def __init__(self, estimates, supply: bool = True) -> None:
        self.estimates = estimates
        self.supply = supply and "supply" in estimates.quantities
        self.slot_minutes = estimates.config.slot_minutes
        self.last_train_day = max(p.days.max() for p in estimates.train.values())

    def __call__(self, t: pd.Timestamp):
        t = pd.Timestamp(t)
        day = t.normalize()
        if day <= self.last_train_day:
            raise ConfigError(f"forecast asked for {day.date()} but the estimates were trained up to "
                              f"{self.last_train_day.date()}; fit them on days strictly before the simulated day")
        slot = int((t - day) / pd.Timedelta(minutes=self.slot_minutes))
        r = self.estimates.forecast_window("demand", day, slot)[0]
        s = self.estimates.forecast_window("supply", day, slot)[0] if self.supply else None
        return np.maximum(r, 0.0), (None if s is None else np.maximum(s, 0.0))


class RealisedCounts:
    """Oracle forecast: realised counts per slot ``(n_slots, n)`` of a window starting at ``start``."""

    def __init__(self, demand: np.ndarray, start, slot_minutes: int, supply: np.ndarray | None = None) -> None:
        self.demand = np.asarray(demand, float)
        self.supply = None if supply is None else np.asarray(supply, float)
        self.start = pd.Timestamp(start)
        self.slot_minutes = int(slot_minutes)

    def __call__(self, t: pd.Timestamp):
        k = int((pd.Timestamp(t) - self.start) / pd.Timedelta(minutes=self.slot_minutes))
        if not (0 <= k < len(self.demand)):
            return np.zeros(self.demand.shape[1]), None
        return self.demand[k], (None if self.supply is None else self.supply[k])


# ------------------------------------------------------------------------------------ policies

def charge_moves(state, distance_km: np.ndarray, reach_km: float) -> Moves:
    """Send every low-battery EV to the nearest region with a free plug within ``reach_km``.

    Free plugs ``F_j = p_j - o_j`` are used up as EVs are assigned (regions taken in index order);
    when no free plug is within reach the EV goes to the nearest plug region within reach (it queues),
    and when no plug at all is within reach, to the nearest plug region (the simulator then redirects
    or strands it by its actual energy).
    """
    L = np.asarray(state.low_battery, np.int64)
    plugs = np.asarray(state.plugs, np.int64)
    free = np.maximum(plugs - np.asarray(state.occupied, np.int64), 0)
    has = plugs > 0
    o_list, d_list, c_list = [], [], []
    for i in np.flatnonzero(L):
        d = distance_km[i]
        order = np.lexsort((np.arange(len(d)), d))
        reach = order[(d[order] <= reach_km) & has[order]]
        for _ in range(int(L[i])):
            avail = reach[free[reach] > 0]
            if len(avail):
                j = avail[0]
                free[j] -= 1
            elif len(reach):
                j = reach[0]
            else:
                j = order[has[order]][0]
            o_list.append(i)
            d_list.append(j)
            c_list.append(1)
    if not o_list:
        return Moves.empty()
    m = pd.DataFrame({"o": o_list, "d": d_list, "c": c_list}).groupby(["o", "d"], sort=True)["c"].sum()
    o, d = m.index.get_level_values(0).to_numpy(), m.index.get_level_values(1).to_numpy()
    return Moves(o, d, m.to_numpy(), np.full(len(m), "charge", object))


@dataclass
class NoopPolicy:
    """Never rebalance; low-battery EVs to the nearest free plug (see :func:`charge_moves`).

    Parameters
    ----------
    distance_km : (n, n) driving distances ``W`` of the simulator's RegionMap (km).
    low_reach_km : range of an EV at the low-battery threshold (km), e.g. ``0.2 * 60 kWh / 0.2 kWh/km``.
    """

    distance_km: np.ndarray
    low_reach_km: float
    name: str = "noop"

    def plan(self, state, t) -> Moves:
        return charge_moves(state, self.distance_km, self.low_reach_km)


@dataclass
class GreedyPolicy:
    """Demand/supply-ratio greedy rebalancing plus nearest-free-plug charging.

    Parameters
    ----------
    distance_km : (n, n) driving distances (km).
    forecast : ``t -> (demand (n,), supply (n,) or None)`` for the slot starting at ``t``.
    reach_km : vacant EVs move only between regions within this distance (km); default in the
        factories: the distance driven in one slot at the simulator's empty-driving speed (MATH.md
        reachability ``travel time <= Δ``).
    low_reach_km : as in :class:`NoopPolicy`.

    Rule (one EV at a time): expected supply of the slot ``S_j = V_j + s_j`` (vacant EVs plus forecast
    drop-offs, or ``V_j`` without a supply forecast).  A region *needs* an EV while its forecast demand
    exceeds its expected supply, ``r_j > S_j``; a region can *give* one while ``V_i`` EVs are left and it
    keeps enough for its own demand, ``S_i - 1 >= r_i``.  The needing region with the highest ratio
    ``r_j / (S_j + 1)`` gets one EV from the nearest giving region within reach (ties: the larger
    surplus ``S_i - r_i``, then the lower index); ``S`` is updated and the loop repeats until no
    needing region has a donor in reach.  Moving only into deficits keeps the policy from churning an
    oversupplied fleet back and forth.
    """

    distance_km: np.ndarray
    forecast: ForecastFn
    reach_km: float
    low_reach_km: float
    name: str = "greedy"

    def plan(self, state, t) -> Moves:
        r, s = self.forecast(t)
        V = np.asarray(state.vacant, np.int64)
        n = len(V)
        r = np.asarray(r, float)
        if r.shape != (n,):
            raise DataError(f"policy {self.name!r}: demand forecast has shape {r.shape}, expected ({n},)")
        S = V.astype(float) + (0.0 if s is None else np.asarray(s, float))
        reach = self.distance_km <= self.reach_km
        np.fill_diagonal(reach, False)
        left = V.copy()
        dead = np.zeros(n, bool)
        moved: dict[tuple[int, int], int] = {}
        while True:
            need = (r > S + 1e-12) & ~dead
            if not need.any():
                break
            ratio = np.where(need, r / (S + 1.0), -np.inf)
            j = int(np.argmax(ratio))
            donors = np.flatnonzero(reach[:, j] & (left > 0) & (S - 1.0 >= r - 1e-12))
            if not len(donors):
                dead[j] = True
                continue
            order = np.lexsort((donors, -(S[donors] - r[donors]), self.distance_km[donors, j]))
            i = int(donors[order[0]])
            moved[(i, j)] = moved.get((i, j), 0) + 1
            S[i] -= 1.0
            S[j] += 1.0
            left[i] -= 1
        parts = [charge_moves(state, self.distance_km, self.low_reach_km)]
        if moved:
            keys = sorted(moved)
            parts.append(Moves([k[0] for k in keys], [k[1] for k in keys], [moved[k] for k in keys],
                               np.full(len(keys), "vacant", object)))
        return Moves.concat(parts)


def make_policy(name: str, sim, estimates=None, **options):
    """Build a built-in policy for a :class:`drbalance.sim.Simulator` by name.

    ``noop`` needs nothing; ``greedy`` needs ``estimates`` fitted on days strictly before the simulated
    window; ``oracle_counts`` reads the simulator's realised demand and recorded drop-offs.
    ``options``: ``reach_km`` (default: one slot of driving at the simulator's speed).
    """
    W = sim.regions.distance_km
    low_reach = sim.low_battery_reach_km
    reach = options.pop("reach_km", None)
    reach = sim.config.speed_kmh * sim.config.slot_minutes / 60.0 if reach is None else float(reach)
    if name == "noop":
        return NoopPolicy(W, low_reach)
    if name == "greedy":
        if estimates is None:
            raise ConfigError("policy 'greedy' needs Estimates fitted on days before the simulated day "
                              "(pass estimates=..., or --train A:B on the command line)")
        if estimates.regions.n != sim.regions.n:
            raise ConfigError(f"estimates cover {estimates.regions.n} regions, the simulator {sim.regions.n}")
        return GreedyPolicy(W, EstimatesForecast(estimates), reach, low_reach, **options)
    if name == "oracle_counts":
        return oracle_counts(sim, reach_km=reach, **options)
    raise ConfigError(f"unknown policy {name!r}; choose noop, greedy or oracle_counts")


def oracle_counts(sim, reach_km: float | None = None) -> GreedyPolicy:
    """Greedy rule fed the realised demand of each slot and the recorded drop-offs (an upper reference)."""
    slot = sim.config.slot_minutes
    reach = sim.config.speed_kmh * slot / 60.0 if reach_km is None else reach_km
    fc = RealisedCounts(sim.requests.counts(slot, sim.regions.n, "origin"), sim.requests.start, slot,
                        sim.requests.counts(slot, sim.regions.n, "destination"))
    return GreedyPolicy(sim.regions.distance_km, fc, reach, sim.low_battery_reach_km, name="oracle_counts")
