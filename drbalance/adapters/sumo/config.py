"""How a :class:`drbalance.adapters.sumo.SumoFleet` runs SUMO: one validated settings object."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from drbalance.errors import ConfigError


@dataclass
class SumoConfig:
    """How :class:`SumoFleet` runs SUMO.

    Attributes
    ----------
    n_taxis : taxis inserted at simulated second 0.
    taxi_regions : (n_taxis,) region position of each taxi's start edge, or None for round-robin over
        regions; the edge inside the region and the position on it are drawn with ``seed``.
    seed : seeds SUMO (``--seed``), the demand draws and the taxi placement.
    start : wall-clock time of simulated second 0 (what policies receive as ``t``).
    slot_seconds : decision interval (s); the policy is called at every slot start.
    step_length : SUMO step (s).
    dispatch_period_s : how often waiting requests are dispatched to idle taxis (s).
    max_wait_s : a request not assigned to a taxi within this time is withdrawn (counted unserved).
    plugs : (n,) plug counts reported in the FleetState (there are no batteries in this scenario:
        ``low_battery`` and ``occupied`` are zeros); None = zeros.
    extra_args : more ``sumo`` command-line arguments.
    """

    n_taxis: int = 10
    taxi_regions: object = None
    seed: int = 0
    start: object = "2026-01-08 08:00"
    slot_seconds: float = 300.0
    step_length: float = 1.0
    dispatch_period_s: float = 5.0
    max_wait_s: float = 600.0
    plugs: object = None
    extra_args: tuple = ()

    def __post_init__(self) -> None:
        if int(self.n_taxis) != self.n_taxis or self.n_taxis < 1:
            raise ConfigError(f"n_taxis must be a positive integer, got {self.n_taxis}")
        for name in ("slot_seconds", "step_length", "dispatch_period_s", "max_wait_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive (seconds), got {getattr(self, name)}")
        self.start = pd.Timestamp(self.start)

    @property
    def clock_s(self) -> float:
        """Time of day of simulated second 0 (s after midnight of ``start``)."""
        return (self.start - self.start.normalize()).total_seconds()
