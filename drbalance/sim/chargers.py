"""Chargers: plug counts per region (from data or a siting rule) and the charging rules.

:class:`ChargingConfig` groups every charging choice of the simulator.  It is the place where the
charging strategies of MATH.md section 5 (idle-time trigger, opportunistic top-up, priority rules)
will be added as further fields; the defaults below reproduce the IROS 2020 set-up (MATH.md
section 1: low-battery threshold 20 %, policy-directed charging, FIFO queues).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from drbalance.errors import ConfigError, DataError


@dataclass(frozen=True)
class ChargingConfig:
    """How EVs charge.

    Attributes
    ----------
    power_kw : charging power of one plug in kW, linear in time (MATH.md section 5: 50 kW).
    low_soc : low-battery threshold (share of capacity): a vacant EV at or below it stops serving and
        waits for the policy to send it to a charger (MATH.md section 1 default 0.20).
    target_soc : an EV unplugs when it reaches this share of capacity (default 0.80), then is vacant.
    queue : queue discipline at a region's plugs; only ``"fifo"`` (first arrived, first plugged; ties
        by vehicle number) for now.
    """

    power_kw: float = 50.0
    low_soc: float = 0.20
    target_soc: float = 0.80
    queue: str = "fifo"

    def __post_init__(self) -> None:
        if not (self.power_kw > 0 and math.isfinite(self.power_kw)):
            raise ConfigError(f"charging power must be a positive number of kW, got {self.power_kw}")
        if not (0 <= self.low_soc < 1):
            raise ConfigError(f"low-battery threshold must lie in [0, 1), got {self.low_soc}")
        if not (self.low_soc < self.target_soc <= 1):
            raise ConfigError(f"charging target ({self.target_soc}) must lie above the low-battery threshold "
                              f"({self.low_soc}) and at most 1")
        if self.queue != "fifo":
            raise ConfigError(f"unknown queue discipline {self.queue!r}; only 'fifo' is implemented")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PlugSiting:
    """Siting rule for cities without charger data (e.g. NYC): plugs proportional to demand.

    Attributes
    ----------
    total : total plugs to place; None means ``ceil(per_vehicle * fleet size)``.
    per_vehicle : plugs per EV when ``total`` is None (default 0.1: one plug per ten EVs).
    min_per_region : plugs every region gets before the proportional share (default 0).

    The proportional share uses largest-remainder rounding of ``total - n * min_per_region`` plugs over
    the siting weights (pick-ups per region, by default over the days *before* the simulated day).
    """

    total: int | None = None
    per_vehicle: float = 0.1
    min_per_region: int = 0

    def __post_init__(self) -> None:
        if self.total is not None and (int(self.total) != self.total or self.total < 1):
            raise ConfigError(f"total plugs must be a positive integer, got {self.total}")
        if not (self.per_vehicle > 0):
            raise ConfigError(f"plugs per vehicle must be positive, got {self.per_vehicle}")
        if int(self.min_per_region) != self.min_per_region or self.min_per_region < 0:
            raise ConfigError(f"min_per_region must be a non-negative integer, got {self.min_per_region}")

    def plugs(self, weights: np.ndarray, fleet_size: int) -> np.ndarray:
        """Plugs per region, shape ``(n,)`` int, summing to the total."""
        w = np.asarray(weights, float)
        if w.ndim != 1 or not np.isfinite(w).all() or (w < 0).any():
            raise DataError("siting weights must be a vector of finite non-negative numbers")
        if w.sum() <= 0:
            raise DataError("siting weights are all zero (no demand to site chargers by); pass plugs explicitly")
        total = int(self.total) if self.total is not None else int(math.ceil(self.per_vehicle * fleet_size))
        base = np.full(len(w), int(self.min_per_region), np.int64)
        rest = total - int(base.sum())
        if rest < 0:
            raise ConfigError(f"{total} plugs cannot give {self.min_per_region} to each of {len(w)} regions")
        return base + largest_remainder(w, rest)

    def to_dict(self) -> dict:
        return asdict(self)


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integers ``>= 0`` proportional to ``weights`` summing to ``total`` (ties to the lower index)."""
    w = np.asarray(weights, float)
    share = w / w.sum() * total
    out = np.floor(share).astype(np.int64)
    left = int(total - out.sum())
    if left > 0:
        order = np.lexsort((np.arange(len(w)), -(share - out)))
        out[order[:left]] += 1
    return out


def check_plugs(plugs, n_regions: int) -> np.ndarray:
    """Validate plug counts: ``(n,)`` non-negative integers with at least one plug somewhere."""
    p = np.asarray(plugs)
    if p.shape != (n_regions,):
        raise DataError(f"plugs must have one count per region, shape ({n_regions},), got {p.shape}")
    pf = p.astype(float)
    if not np.isfinite(pf).all() or (pf < 0).any() or not np.allclose(pf, np.rint(pf)):
        raise DataError("plug counts must be non-negative whole numbers")
    if pf.sum() < 1:
        raise ConfigError("there is no charging plug in any region; EVs could never charge (site some plugs)")
    return np.rint(pf).astype(np.int64)


def nearest_plug(distance_km: np.ndarray, plugs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every region, the nearest region with plugs and its distance (0 where the region has plugs).

    Returns ``(region, km)``, both ``(n,)``.
    """
    has = np.flatnonzero(plugs > 0)
    sub = distance_km[:, has]
    k = np.argmin(sub, axis=1)
    return has[k], sub[np.arange(len(k)), k]
