"""Charger siting by the seed paper's x/y/z rule (MATH.md section 5; Gurumurthy, Dean, Kockelman).

Run the fleet; wherever an EV had to drive more than ``y`` km to reach a charger (the region it left
from) or queued more than ``z`` minutes for a plug (the charger's region), add a station of ``x``
plugs (at most one new station per region per round); rerun; stop when a round flags no region (stable)
or after ``max_rounds``.  Region-level version of the paper's 2-mile grid rule: a region stands for a
grid cell, a station for ``x`` plugs in it.  Paper values: ``x = 5`` plugs, ``y = 15`` mi, ``z = 15`` min.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data_pipeline.units import KM_PER_MILE
from drbalance.errors import ConfigError
from drbalance.sim.log import EVENT_CODES
from drbalance.sim.replay import Simulator


@dataclass
class SitingReport:
    """Outcome of :func:`site_xyz`.

    plugs : (n,) final plugs per region; stations_added : stations (of ``x`` plugs) added in total;
    stations : regions with at least one plug at the end; rounds : simulations run; stable : True when
    the last round flagged nothing; history : one dict per round (plugs, flagged regions, metrics).
    """

    plugs: np.ndarray
    stations_added: int
    stations: int
    rounds: int
    stable: bool
    history: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"plugs_total": int(self.plugs.sum()), "stations": self.stations,
                "stations_added": self.stations_added, "rounds": self.rounds, "stable": self.stable,
                "plugs": self.plugs.tolist(), "history": self.history}


def long_charge_drives(events: pd.DataFrame, y_km: float) -> np.ndarray:
    """Origin regions (positions) of drives to a charger longer than ``y_km``."""
    cm = events[(events["event"] == EVENT_CODES["charge_move"]) & (events["km"] > y_km)]
    return cm["origin"].to_numpy(np.int64)


def queue_waits(events: pd.DataFrame, end_minute: int) -> pd.DataFrame:
    """One row per queue episode: ``region``, ``wait`` (minutes until plugged, or until the end)."""
    ev = events
    q = ev[ev["event"] == EVENT_CODES["queue"]][["vehicle", "minute", "region"]].sort_values("minute")
    p = ev[ev["event"] == EVENT_CODES["plug_in"]][["vehicle", "minute"]].rename(columns={"minute": "plug"})
    p = p.sort_values("plug")
    if not len(q):
        return pd.DataFrame({"region": np.zeros(0, np.int64), "wait": np.zeros(0, np.int64)})
    m = pd.merge_asof(q, p, left_on="minute", right_on="plug", by="vehicle", direction="forward")
    plug = m["plug"].fillna(end_minute).to_numpy(np.int64)
    return pd.DataFrame({"region": m["region"].to_numpy(np.int64), "wait": plug - m["minute"].to_numpy(np.int64)})


def site_xyz(sim, make_policy, x: int = 5, y_km: float = 15 * KM_PER_MILE, z_min: float = 15.0,
             max_rounds: int = 10) -> SitingReport:
    """Apply the x/y/z rule starting from ``sim.plugs``.

    ``sim``: a :class:`drbalance.sim.Simulator` (its requests, regions and config are reused);
    ``make_policy``: ``simulator -> policy`` (called every round, as plugs change).
    """
    if int(x) != x or x < 1 or not (y_km > 0) or not (z_min >= 0) or max_rounds < 1:
        raise ConfigError("x/y/z siting needs x >= 1 plugs, y > 0 km, z >= 0 min and max_rounds >= 1")
    plugs = sim.plugs.copy()
    history, added, stable = [], 0, False
    n = len(plugs)
    for r in range(int(max_rounds)):
        s = Simulator(sim.requests, sim.regions, plugs, sim.config)
        res = s.run(make_policy(s))
        far = long_charge_drives(res.events, y_km)
        qw = queue_waits(res.events, res.summary["end_minute"])
        slow = qw["region"].to_numpy()[qw["wait"].to_numpy() > z_min]
        flag = np.zeros(n, bool)
        flag[far] = True
        flag[slow] = True
        history.append({"round": r, "plugs_total": int(plugs.sum()), "stations": int((plugs > 0).sum()),
                        "long_drives": int(len(far)), "long_queues": int(len(slow)),
                        "flagged_regions": np.flatnonzero(flag).tolist(), "served": res.summary["served"],
                        "charge_queue_mean_min": res.summary["charge_queue_mean_min"]})
        if not flag.any():
            stable = True
            break
        plugs = plugs + int(x) * flag
        added += int(flag.sum())
    rounds = len(history)
    return SitingReport(plugs=plugs, stations_added=added, stations=int((plugs > 0).sum()), rounds=rounds,
                        stable=stable, history=history)
