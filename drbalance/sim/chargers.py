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

from data_pipeline.units import KM_PER_MILE
from drbalance.errors import ConfigError, DataError
from drbalance.rounding import largest_remainder  # noqa: F401  (also importable from here)
from drbalance.validation import check_choice, check_int, check_number


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

    Charging strategy (MATH.md section 5, seed paper 004; every default switches the rule off):

    min_range_km : minimum absolute range: an EV also counts as low-battery when its remaining range
        is at or below this (paper: 30 mi = 48.3 km).  Low threshold = ``max(low_soc * capacity,
        min_range_km * kWh/km)``.
    idle_minutes : idle-time trigger: an idle EV that has been vacant for at least this many minutes and
        is below ``target_soc`` drives on its own to the nearest region with an available plug (paper:
        15 or 60 min).  None: off.
    opportunistic_soc : opportunistic override: an idle EV below this SoC (paper: 0.60) drives to the
        nearest region within ``opportunistic_km`` that has an available (not taken, not claimed) plug.
        None: off.
    opportunistic_km : reach of the opportunistic override (km).
    priority : ``"charging"`` (a plugged EV stays until ``target_soc``) or ``"service"`` (exit charging
        early: a plugged EV may be matched to a request once its linearly charged SoC is above
        ``exit_min_soc``; it unplugs with the energy charged so far).
    exit_min_soc : SoC a plugged EV needs before it may exit early; None: its low-battery threshold.
    self_dispatch : low-battery EVs drive on their own, the minute they become low, to the nearest
        region with an available plug within reach (else the nearest plug, where they queue) instead of
        waiting for the policy's next charge move.
    """

    power_kw: float = 50.0
    low_soc: float = 0.20
    target_soc: float = 0.80
    queue: str = "fifo"
    min_range_km: float = 0.0
    idle_minutes: int | None = None
    opportunistic_soc: float | None = None
    opportunistic_km: float = 3.0
    priority: str = "charging"
    exit_min_soc: float | None = None
    self_dispatch: bool = False

    def __post_init__(self) -> None:
        # the shared rules (drbalance.validation): a wrong type or NaN is refused naming the field
        check_number("power_kw (charging power, kW)", self.power_kw, low=0, low_open=True)
        check_number("low_soc (low-battery threshold)", self.low_soc, low=0, high=1, high_open=True)
        check_number("target_soc (charging target)", self.target_soc, high=1)
        if not self.low_soc < self.target_soc:
            raise ConfigError(f"target_soc (charging target) {self.target_soc} must lie above low_soc, the "
                              f"low-battery threshold ({self.low_soc}), and at most 1")
        if self.queue != "fifo":
            raise ConfigError(f"unknown queue discipline {self.queue!r}; only 'fifo' is implemented")
        check_number("min_range_km", self.min_range_km, low=0)
        check_int("idle_minutes", self.idle_minutes, low=1, allow_none=True)
        check_number("opportunistic_soc", self.opportunistic_soc, low=0, high=1, low_open=True, allow_none=True)
        check_number("opportunistic_km", self.opportunistic_km, low=0)
        check_choice("priority", self.priority, ("charging", "service"))
        check_number("exit_min_soc", self.exit_min_soc, low=0, high=1, allow_none=True)

    @property
    def strategy_active(self) -> bool:
        """True when a minute-level rule (idle trigger, opportunistic, self-dispatch) is switched on."""
        return self.idle_minutes is not None or self.opportunistic_soc is not None or self.self_dispatch

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


MI_KM = KM_PER_MILE  #: km per statute mile


def kwh_per_km(mi_per_kwh: float) -> float:
    """Consumption in kWh/km from an efficiency in mi/kWh (paper: 3.33 mi/kWh -> 0.1866 kWh/km)."""
    if not (mi_per_kwh > 0):
        raise ConfigError(f"efficiency must be a positive number of mi/kWh, got {mi_per_kwh}")
    return 1.0 / (mi_per_kwh * MI_KM)


def fleet_mix_from_ranges(ranges_mi, mi_per_kwh: float = 3.33) -> tuple[tuple[float, float], ...]:
    """``[(share, range_mi), ...]`` -> ``((share, battery_kWh), ...)`` at ``mi_per_kwh`` (100 mi -> 30.03 kWh)."""
    if not (mi_per_kwh > 0):
        raise ConfigError(f"efficiency must be a positive number of mi/kWh, got {mi_per_kwh}")
    return tuple((float(share), float(rng) / mi_per_kwh) for share, rng in ranges_mi)


def fleet_capacities(mix, n_vehicles: int) -> np.ndarray:
    """Battery capacity (kWh) of each of ``n_vehicles`` EVs for a mix ``((share, kWh), ...)``.

    Counts per class by largest-remainder rounding of the shares; vehicles ``0..k1-1`` get the first
    class, and so on (positions are drawn independently of the vehicle number, so this is not a bias).
    """
    shares = np.asarray([float(s) for s, _ in mix])
    kwh = np.asarray([float(k) for _, k in mix])
    if len(shares) == 0 or (shares < 0).any() or shares.sum() <= 0 or not (kwh > 0).all():
        raise ConfigError(f"fleet mix needs (share >= 0, capacity > 0) pairs with positive total share, got {mix!r}")
    counts = largest_remainder(shares, int(n_vehicles))
    return np.repeat(kwh, counts)


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
