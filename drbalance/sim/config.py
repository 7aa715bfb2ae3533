"""Simulator settings: :class:`SimConfig` (fleet, batteries, matching, charging)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from drbalance.errors import ConfigError
from drbalance.sim.chargers import ChargingConfig, fleet_capacities
from drbalance.validation import check_bool, check_int, check_number, check_slot_minutes


@dataclass(frozen=True)
class SimConfig:
    """Every modelling choice of a simulation run (units in the names; defaults from the issue/MATH.md).

    Attributes
    ----------
    fleet_size : EVs ``N``.
    seed : seed of the run's only random draws (initial positions, then initial SoC).
    slot_minutes : decision slot length ``Δ`` (5..60 dividing a day; default 15).
    battery_kwh : usable battery capacity (default 60 kWh).
    consumption_kwh_per_km : energy per km driven, empty or occupied (default 0.2 kWh/km).
    initial_soc_mean, initial_soc_sd : initial SoC ~ N(0.70, 0.05) clipped to [0, 1] (MATH.md section 5).
    init_window_minutes : initial positions are drawn proportionally to the pick-ups of the first
        ``init_window_minutes`` of the window (all pick-ups if there are none; uniform if none at all).
    patience_minutes : a request not matched within this many whole minutes expires unserved (10).
    match_radius_km : a request may be matched to an idle EV in another region within this distance.
    speed_kmh : empty driving speed for pick-ups, repositioning and drives to chargers (NYC: 20 km/h).
    charging : :class:`ChargingConfig` (power, low-battery threshold, target, queue discipline and the
        charging-strategy rules of MATH.md section 5).
    fleet_mix : mixed-range fleet ``((share, battery_kWh), ...)`` (e.g. from
        :func:`drbalance.sim.chargers.fleet_mix_from_ranges` ``[(0.5, 100), (0.5, 250)]`` miles); None: every
        EV has ``battery_kwh``.
    unconstrained : no range limit (the paper's SAV base case): driving draws no energy and no EV ever
        needs to charge; used as the reference of the demand change.
    """

    fleet_size: int = 1000
    seed: int = 0
    slot_minutes: int = 15
    battery_kwh: float = 60.0
    consumption_kwh_per_km: float = 0.2
    initial_soc_mean: float = 0.70
    initial_soc_sd: float = 0.05
    init_window_minutes: int = 60
    patience_minutes: int = 10
    match_radius_km: float = 3.0
    speed_kmh: float = 20.0
    charging: ChargingConfig = field(default_factory=ChargingConfig)
    fleet_mix: tuple | None = None
    unconstrained: bool = False

    def __post_init__(self) -> None:
        check_slot_minutes(self.slot_minutes)
        check_int("fleet_size", self.fleet_size, low=1)
        check_int("seed", self.seed, low=0)
        for name in ("battery_kwh", "consumption_kwh_per_km", "speed_kmh"):
            check_number(name, getattr(self, name), low=0, low_open=True)
        check_number("initial_soc_mean", self.initial_soc_mean, low=0, high=1)
        check_number("initial_soc_sd", self.initial_soc_sd, low=0)
        check_int("patience_minutes", self.patience_minutes, low=0)
        check_number("match_radius_km", self.match_radius_km, low=0)
        check_int("init_window_minutes", self.init_window_minutes, low=1)
        check_bool("unconstrained", self.unconstrained)
        if isinstance(self.charging, dict):  # from a TOML table
            object.__setattr__(self, "charging", ChargingConfig(**self.charging))
        if not isinstance(self.charging, ChargingConfig):
            raise ConfigError(f"charging must be a ChargingConfig, got {type(self.charging).__name__}")
        if self.fleet_mix is not None:
            mix = tuple((float(a), float(b)) for a, b in self.fleet_mix)
            fleet_capacities(mix, 1)   # validates
            object.__setattr__(self, "fleet_mix", mix)

    def capacities(self) -> np.ndarray:
        """(N,) battery capacity of every EV in kWh."""
        if self.fleet_mix is None:
            return np.full(int(self.fleet_size), float(self.battery_kwh))
        return fleet_capacities(self.fleet_mix, int(self.fleet_size))

    def to_dict(self) -> dict:
        return asdict(self)
