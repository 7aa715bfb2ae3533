"""Panels: counts per ``[day, slot, region]`` for demand, supply, charging arrivals and occupancy.

Time is naive local time; a day runs from local midnight and is cut into ``1440 / slot_minutes``
slots.  On the spring daylight-saving day the skipped hour simply has no records; on the autumn day
the repeated hour is counted twice in its wall-clock slots (documented, not corrected).
Every day of the requested period is present, including days without any record (zeros are data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.holiday import USFederalHolidayCalendar

from data_pipeline.regions import RegionMap
from drbalance import validation as _validation
from drbalance.errors import ConfigError, DataError
from drbalance.state import readonly

QUANTITIES = ("demand", "supply", "charging_arrivals", "occupancy")


def check_slot_minutes(slot_minutes: int) -> int:
    """Validate a slot length (the one rule: :func:`drbalance.validation.check_slot_minutes`)."""
    return _validation.check_slot_minutes(slot_minutes)


def day_types(days: pd.DatetimeIndex, holidays: str | None = None) -> np.ndarray:
    """``'weekday'`` or ``'weekend'`` per day; with ``holidays='us'`` US federal holidays count as weekend."""
    days = pd.DatetimeIndex(days).normalize()
    weekend = days.day_of_week >= 5
    if holidays == "us":
        hol = USFederalHolidayCalendar().holidays(days.min(), days.max()) if len(days) else []
        weekend |= days.isin(hol)
    elif holidays is not None:
        raise ConfigError(f"unknown holiday calendar {holidays!r}; use None or 'us'")
    return np.where(weekend, "weekend", "weekday").astype(object)


@dataclass(frozen=True)
class Panel:
    """Counts of one quantity per day, slot and region.

    Attributes
    ----------
    values : (n_days, n_slots, n_regions) float array (counts; occupancy is time-averaged).
    days : (n_days,) DatetimeIndex of local midnights, consecutive.
    slot_minutes : slot length in minutes.
    region_ids : (n_regions,) region labels (``RegionMap.region_ids``).
    quantity : one of :data:`QUANTITIES`.
    day_type : (n_days,) ``'weekday'``/``'weekend'``.
    outside : events that fell outside the panel's days (e.g. drop-offs after the last day);
        with the counted events they add up to the accepted records.

    Frozen: attributes cannot be reassigned and ``values``, ``region_ids``, ``day_type`` are read-only
    arrays (private copies of the caller's); ``values.copy()`` gives a scratch array.
    """

    values: np.ndarray
    days: pd.DatetimeIndex
    slot_minutes: int
    region_ids: np.ndarray
    quantity: str
    day_type: np.ndarray
    outside: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", pd.DatetimeIndex(self.days))
        for name, dtype in (("values", float), ("region_ids", None), ("day_type", None)):
            object.__setattr__(self, name, readonly(getattr(self, name), dtype))
        if self.values.ndim != 3:
            raise DataError(f"panel values must have shape (n_days, n_slots, n_regions), got {self.values.shape}")
        if self.day_type.shape != (len(self.days),):
            raise DataError(f"panel day_type has shape {self.day_type.shape}, expected ({len(self.days)},): "
                            "one type per day")
        nd, ns, nr = self.values.shape
        if nd != len(self.days) or ns * self.slot_minutes != 1440 or nr != len(self.region_ids):
            raise DataError(f"panel shape {self.values.shape} inconsistent with {len(self.days)} days, "
                            f"{self.slot_minutes}-min slots and {len(self.region_ids)} regions")
        if len(self.days) > 1 and not (np.diff(self.days.to_numpy("datetime64[D]").astype(np.int64)) == 1).all():
            raise DataError("panel days must be consecutive calendar days")

    @property
    def n_days(self) -> int:
        return self.values.shape[0]

    @property
    def n_slots(self) -> int:
        return self.values.shape[1]

    @property
    def n_regions(self) -> int:
        return self.values.shape[2]

    def series(self) -> np.ndarray:
        """The panel as one time series, shape ``(n_days * n_slots, n_regions)``."""
        return self.values.reshape(-1, self.n_regions)

    def select(self, first_day: str, last_day: str) -> "Panel":
        """Sub-panel of the days ``first_day..last_day`` (inclusive ISO dates)."""
        a, b = pd.Timestamp(first_day).normalize(), pd.Timestamp(last_day).normalize()
        mask = (self.days >= a) & (self.days <= b)
        if not mask.any():
            raise DataError(f"no {self.quantity} panel days between {a.date()} and {b.date()} "
                            f"(panel covers {self.days.min().date()}..{self.days.max().date()})")
        return Panel(self.values[mask], self.days[mask], self.slot_minutes, self.region_ids, self.quantity,
                     self.day_type[mask], 0)

    def total(self) -> float:
        return float(self.values.sum())

    def to_frame(self) -> pd.DataFrame:
        """Long frame (day, slot, region, value) of the non-zero cells."""
        d, s, r = np.nonzero(self.values)
        return pd.DataFrame({"day": self.days[d], "slot": s, "region": self.region_ids[r],
                             "value": self.values[d, s, r]})


def _ns(ts) -> int:
    """Nanoseconds since the epoch of a timestamp (whatever its pandas resolution)."""
    return int(np.datetime64(pd.Timestamp(ts).to_datetime64(), "ns").astype(np.int64))


def _days(first_day: str, last_day: str) -> pd.DatetimeIndex:
    a, b = pd.Timestamp(first_day).normalize(), pd.Timestamp(last_day).normalize()
    if b < a:
        raise ConfigError(f"period end {b.date()} is before its start {a.date()}")
    return pd.date_range(a, b, freq="D")


def count_panel(times: np.ndarray, regions: np.ndarray, days: pd.DatetimeIndex, slot_minutes: int,
                n_regions: int, weights: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Bin events into ``(n_days, n_slots, n_regions)`` counts.

    ``times``: datetime64 array; ``regions``: region positions (all must be in 0..n_regions-1).
    Returns the counts and the number of events outside ``days``.
    """
    s = check_slot_minutes(slot_minutes)
    n_slots = 1440 // s
    t = np.asarray(times, dtype="datetime64[ns]").astype(np.int64)
    regions = np.asarray(regions, dtype=np.int64)
    if len(regions) and (regions.min() < 0 or regions.max() >= n_regions):
        raise DataError("events with a region outside the region map; validate records first")
    t0 = _ns(days[0])
    minutes = (t - t0) // (60 * 10**9)
    slot_abs = minutes // s
    inside = (slot_abs >= 0) & (slot_abs < len(days) * n_slots)
    flat = slot_abs[inside] * n_regions + regions[inside]
    w = None if weights is None else np.asarray(weights, float)[inside]
    counts = np.bincount(flat, weights=w, minlength=len(days) * n_slots * n_regions).astype(float)
    return counts.reshape(len(days), n_slots, n_regions), int((~inside).sum())


def trip_panels(trips: pd.DataFrame, regions: RegionMap, first_day: str, last_day: str, slot_minutes: int = 15,
                holidays: str | None = None) -> dict[str, Panel]:
    """Demand (pick-ups by pick-up time and region) and supply (drop-offs by drop-off time and region).

    ``trips`` is a validated canonical trips frame.  Trips whose zone lies in no region raise
    :class:`DataError` (filter or re-validate with the same zones).  Returns
    ``{"demand": Panel, "supply": Panel}``; ``demand.total() + demand.outside == len(trips)``, same for
    supply.
    """
    days = _days(first_day, last_day)
    types = day_types(days, holidays)
    out = {}
    for quantity, tcol, zcol in (("demand", "pickup_time", "pickup_zone"), ("supply", "dropoff_time", "dropoff_zone")):
        reg = regions.region_of(trips[zcol].to_numpy())
        if (reg < 0).any():
            bad = pd.unique(trips[zcol].to_numpy()[reg < 0])[:5]
            raise DataError(f"{int((reg < 0).sum())} trips have {zcol} outside the region map (e.g. {list(bad)}); "
                            "validate trips with the same zone table used for the regions")
        vals, outside = count_panel(trips[tcol].to_numpy(), reg, days, slot_minutes, regions.n)
        out[quantity] = Panel(vals, days, slot_minutes, regions.region_ids, quantity, types, outside)
    return out


def charging_panels(sessions: pd.DataFrame, station_region: pd.Series, region_ids: np.ndarray, first_day: str,
                    last_day: str, slot_minutes: int = 15, holidays: str | None = None) -> dict[str, Panel]:
    """Charging arrivals and time-averaged occupancy per slot and region from session intervals.

    Parameters
    ----------
    sessions : frame with ``station_id``, ``connect_time``, ``disconnect_time`` (naive local time).
    station_region : Series mapping station id -> region position (0..n-1).
    region_ids : (n,) region labels.

    Returns
    -------
    ``{"charging_arrivals": Panel, "occupancy": Panel}``; occupancy is the mean number of connected
    sessions during the slot (session-minutes in the slot / slot minutes), so it counts plugs in use.
    """
    s = check_slot_minutes(slot_minutes)
    days = _days(first_day, last_day)
    types = day_types(days, holidays)
    n = len(region_ids)
    reg = station_region.reindex(sessions["station_id"].to_numpy()).to_numpy()
    if pd.isna(reg).any():
        bad = pd.unique(sessions["station_id"].to_numpy()[pd.isna(reg)])[:5]
        raise DataError(f"stations {list(bad)} have no region; extend station_region")
    reg = reg.astype(np.int64)
    arrivals, outside = count_panel(sessions["connect_time"].to_numpy(), reg, days, s, n)
    # Occupancy integral G(T) = sum_i clip(T - c_i, 0, d_i - c_i) at every slot boundary T, per region,
    # computed with sorted prefix sums (O((sessions + boundaries) log sessions)).
    n_slots = 1440 // s
    t0 = _ns(days[0])
    c = (sessions["connect_time"].to_numpy("datetime64[ns]").astype(np.int64) - t0) / 6e10  # minutes
    d = (sessions["disconnect_time"].to_numpy("datetime64[ns]").astype(np.int64) - t0) / 6e10
    if (d < c).any():
        raise DataError("sessions with disconnect before connect; validate sessions first")
    bounds = np.arange(len(days) * n_slots + 1) * float(s)
    occ = np.zeros((len(days) * n_slots, n))
    for r in range(n):
        m = reg == r
        if not m.any():
            continue
        cs, ds = np.sort(c[m]), np.sort(d[m])
        pc = np.concatenate([[0.0], np.cumsum(cs)])
        pd_ = np.concatenate([[0.0], np.cumsum(ds)])
        kc = np.searchsorted(cs, bounds, side="left")
        kd = np.searchsorted(ds, bounds, side="left")
        g = (kc * bounds - pc[kc]) - (kd * bounds - pd_[kd])
        occ[:, r] = np.diff(g) / s
    occ = occ.reshape(len(days), n_slots, n)
    return {
        "charging_arrivals": Panel(arrivals, days, s, np.asarray(region_ids), "charging_arrivals", types, outside),
        "occupancy": Panel(occ, days, s, np.asarray(region_ids), "occupancy", types, 0),
    }
