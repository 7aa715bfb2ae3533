"""Vehicle state of the simulated EV fleet: one numpy array per attribute, indexed by vehicle.

Every vehicle is in exactly one :data:`STATUS_NAMES` status at any time; the simulator changes
statuses with vectorised masks (no Python loop over vehicles).  Units: energy in kWh, time in whole
minutes since the start of the simulation, distances in km.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drbalance.assignment import group_rank  # noqa: F401 - kept importable from here
from drbalance.errors import ConfigError

from drbalance.codes import (CHARGING, IDLE, LOW, N_STATUS, PICKUP, QUEUED, REPOSITION, SERVING,  # noqa: F401
                             STATUS_NAMES, STRANDED, TO_CHARGE)

#: Energy tolerance (kWh) of every feasibility comparison.
EPS_KWH = 1e-9

#: ``until`` value of statuses that do not end by themselves (idle, low, queued, stranded).
NEVER = np.iinfo(np.int64).max // 4


@dataclass
class Fleet:
    """Per-vehicle arrays, all of shape ``(N,)``.

    Attributes
    ----------
    status : int8 status code (module constants).
    region : int64 region position where the vehicle is, or where it is heading while in transit
        (``PICKUP``: the passenger's region; ``SERVING``: the drop-off region; moves: the destination).
    origin : int64 region position where the current activity started.
    energy : float64 battery energy in kWh (never negative).
    until : int64 minute at which the current activity ends (:data:`NEVER` when it does not end by itself).
    trip_end : int64 minute the passenger trip ends (valid while ``PICKUP``/``SERVING``).
    trip_kwh : float64 energy of the passenger leg, drawn at pick-up (valid while ``PICKUP``).
    request : int64 request index being served, -1 otherwise.
    idle_since : int64 minute the vehicle last became vacant (tie-break of the matching).
    queue_since : int64 minute the vehicle joined a charger queue.
    """

    status: np.ndarray
    region: np.ndarray
    origin: np.ndarray
    energy: np.ndarray
    until: np.ndarray
    trip_end: np.ndarray
    trip_kwh: np.ndarray
    request: np.ndarray
    idle_since: np.ndarray
    queue_since: np.ndarray

    @property
    def size(self) -> int:
        return len(self.status)

    @classmethod
    def synthetic(cls, n_vehicles: int, weights: np.ndarray, battery_kwh: float, soc_mean: float, soc_sd: float,
                  rng: np.random.Generator) -> "Fleet":
        """Draw a fleet: region positions ~ multinomial(``weights``), SoC ~ N(mean, sd) clipped to [0, 1].

        Parameters
        ----------
        n_vehicles : fleet size ``N`` (>= 1).
        weights : (n,) non-negative weights of the regions (e.g. early-morning pick-ups); uniform when
            they sum to zero.
        battery_kwh : capacity in kWh.
        soc_mean, soc_sd : initial state of charge distribution (shares of capacity).
        rng : the run's generator; positions are drawn first, then the SoC.
        """
        if int(n_vehicles) != n_vehicles or n_vehicles < 1:
            raise ConfigError(f"fleet size must be a positive integer, got {n_vehicles}")
        w = np.asarray(weights, float)
        if w.ndim != 1 or len(w) == 0 or not np.isfinite(w).all() or (w < 0).any():
            raise ConfigError("initial-position weights must be a non-empty vector of finite non-negative numbers")
        p = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
        n = int(n_vehicles)
        region = rng.choice(len(w), size=n, p=p).astype(np.int64)
        soc = np.clip(rng.normal(soc_mean, soc_sd, size=n), 0.0, 1.0)
        return cls(
            status=np.zeros(n, np.int8),
            region=region,
            origin=region.copy(),
            energy=soc * battery_kwh,
            until=np.full(n, NEVER, np.int64),
            trip_end=np.full(n, NEVER, np.int64),
            trip_kwh=np.zeros(n),
            request=np.full(n, -1, np.int64),
            idle_since=np.zeros(n, np.int64),
            queue_since=np.full(n, NEVER, np.int64),
        )

    def counts(self, n_regions: int) -> np.ndarray:
        """Vehicles per status and region, shape ``(N_STATUS, n_regions)``."""
        flat = self.status.astype(np.int64) * n_regions + self.region
        return np.bincount(flat, minlength=N_STATUS * n_regions).reshape(N_STATUS, n_regions)
