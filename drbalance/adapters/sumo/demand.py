"""Seeded synthetic ride requests on SUMO edges, and the training panels drawn from the same process.

The same :class:`DemandModel` feeds SUMO (persons asking for a taxi, see
:mod:`drbalance.adapters.sumo.rides`) and the :class:`data_pipeline.panels.Panel` s the controller's
estimates are fitted on.  Units: times in simulated seconds, positions on edges in metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_pipeline.panels import Panel, check_slot_minutes, count_panel, day_types
from drbalance.adapters.sumo.network import EdgeRegions
from drbalance.errors import ConfigError

#: Columns of :meth:`DemandModel.sample`.
REQUEST_COLUMNS = ["time_s", "origin", "destination", "from_edge", "to_edge", "depart_pos"]


@dataclass
class DemandModel:
    """Seeded synthetic ride requests.

    Parameters
    ----------
    edges : the :class:`EdgeRegions` requests are drawn on.
    rate_per_hour : (n,) expected requests per hour starting in each region (before the profile).
    destination : (n,) or (n, n) destination weights (rows: origin); None = uniform over regions.
    profile : (24,) multiplier of the rates per hour of the day; None = flat.
    speed_kmh : speed used only to date the drop-offs of the supply panel (km/h).
    pickup_minutes : minutes added to the ride time to date drop-offs (approach + boarding).

    Requests of a region in an interval are Poisson with mean ``rate * profile[hour] * hours``; times
    are uniform in the interval; origin and destination edges uniform among the regions' edges
    (never the same edge); positions on edges uniform in ``[1 m, length - 1 m]``.
    """

    edges: EdgeRegions
    rate_per_hour: np.ndarray
    destination: np.ndarray | None = None
    profile: np.ndarray | None = None
    speed_kmh: float = 30.0
    pickup_minutes: float = 3.0

    def __post_init__(self) -> None:
        n = self.edges.n
        self.rate_per_hour = np.broadcast_to(np.asarray(self.rate_per_hour, float), (n,)).copy()
        if not np.isfinite(self.rate_per_hour).all() or (self.rate_per_hour < 0).any():
            raise ConfigError("rate_per_hour must be finite and >= 0 (requests per hour per region)")
        w = np.ones((n, n)) if self.destination is None else np.broadcast_to(np.asarray(self.destination, float),
                                                                            (n, n)).copy()
        if (w < 0).any() or not (w.sum(axis=1) > 0).all():
            raise ConfigError("destination weights must be >= 0 with a positive sum for every origin")
        self.destination = w / w.sum(axis=1, keepdims=True)
        p = np.ones(24) if self.profile is None else np.asarray(self.profile, float)
        if p.shape != (24,) or (p < 0).any():
            raise ConfigError("profile must hold 24 non-negative hourly multipliers")
        self.profile = p

    def sample(self, start_s: float, end_s: float, seed, clock_s: float = 0.0) -> pd.DataFrame:
        """Requests with times in ``[start_s, end_s)`` (simulated seconds).

        ``seed`` is anything :func:`numpy.random.default_rng` accepts (an int or a sequence of ints).
        ``clock_s`` is the time of day (s after midnight) of simulated second 0, for the profile.
        Returns a frame sorted by time: ``time_s``, ``origin``, ``destination`` (region positions),
        ``from_edge``, ``to_edge``, ``depart_pos`` (m).  The same ``(start_s, end_s, seed, clock_s)``
        give the same frame.
        """
        rng = np.random.default_rng(seed)
        rows = []
        a = float(start_s)
        while a < end_s:  # hour-aligned pieces so the profile applies piecewise
            hour_end = (np.floor((clock_s + a) / 3600.0) + 1) * 3600.0 - clock_s
            b = min(end_s, hour_end)
            hour = int(((clock_s + a) // 3600) % 24)
            counts = rng.poisson(self.rate_per_hour * self.profile[hour] * (b - a) / 3600.0)
            for o in np.flatnonzero(counts):
                c = int(counts[o])
                dests = rng.choice(self.edges.n, size=c, p=self.destination[o])
                times = rng.uniform(a, b, size=c)
                for tt, d in zip(times, dests):
                    fe = rng.choice(self.edges.edges_of(o))
                    te_pool = self.edges.edges_of(int(d))
                    te = rng.choice(te_pool)
                    while te == fe and len(te_pool) > 1:
                        te = rng.choice(te_pool)
                    L = self.edges.length_of(fe)
                    rows.append((tt, int(o), int(d), fe, te, float(rng.uniform(1.0, max(L - 1.0, 1.0)))))
            a = b
        return pd.DataFrame(rows, columns=REQUEST_COLUMNS).sort_values("time_s", kind="stable").reset_index(drop=True)

    def panels(self, first_day: str, n_days: int, slot_minutes: int, seed: int = 0) -> dict[str, Panel]:
        """Training panels ``{"demand", "supply"}`` of ``n_days`` days from ``first_day``.

        Demand counts requests per slot of their origin region; supply counts drop-offs in the
        destination region at ``time + pickup_minutes + distance_km / speed_kmh`` (a drop-off after
        the last day is counted in the supply panel's ``outside``).  Day ``d`` uses seed ``seed + d``
        (a simulation seeded differently sees fresh draws of the same process).  Both panels are
        binned by :func:`data_pipeline.panels.count_panel`, the rule every trip panel follows.
        """
        slot_minutes = check_slot_minutes(slot_minutes)
        days = pd.date_range(pd.Timestamp(first_day).normalize(), periods=int(n_days), freq="D")
        n, W = self.edges.n, self.edges.regions.distance_km
        dem = np.zeros((len(days), 1440 // slot_minutes, n))
        sup, outside = dem.copy(), 0
        if len(days):
            req = [self.sample(0.0, 86400.0, seed + d) for d in range(len(days))]
            midnight = np.repeat(days.to_numpy(), [len(r) for r in req])  # each request's day
            req = pd.concat(req, ignore_index=True)
            o, de = req.origin.to_numpy(np.int64), req.destination.to_numpy(np.int64)
            t = req.time_s.to_numpy(float)
            drop = t + 60 * self.pickup_minutes + W[o, de] / self.speed_kmh * 3600
            dem, _ = count_panel(_at(midnight, t), o, days, slot_minutes, n)
            sup, outside = count_panel(_at(midnight, drop), de, days, slot_minutes, n)
        rid, dt = self.edges.regions.region_ids, day_types(days)
        return {"demand": Panel(dem, days, slot_minutes, rid, "demand", dt),
                "supply": Panel(sup, days, slot_minutes, rid, "supply", dt, outside)}


def _at(midnight: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """``midnight + seconds`` as datetime64[ns] (seconds truncated to whole nanoseconds)."""
    return midnight.astype("datetime64[ns]") + (np.asarray(seconds, float) * 1e9).astype(np.int64).astype(
        "timedelta64[ns]")
