"""Log-replay simulation of an electric MoD fleet: :class:`Simulator` and :class:`SimConfig`.

One run replays a window of real requests (usually one day) minute by minute against a synthetic
fleet of ``N`` EVs.  Each minute, in this order:

0. *completions and plugging-in* (phase 0): pick-ups start their passenger leg, trips and
   repositioning moves end (the EV becomes vacant in its region: low-battery when its SoC is at or
   below the threshold), EVs reaching a charger join its FIFO queue, charged EVs unplug and become
   vacant, queued EVs take free plugs;
1. at each slot boundary (every ``slot_minutes`` during the window) the policy is called once with a
   :class:`drbalance.state.FleetState` and its moves are validated and applied (phase 1);
2. requests of the minute arrive, requests older than ``patience_minutes`` expire (counted unserved),
   and pending requests are matched oldest first to the nearest idle EV (pick-up region first, then
   regions within ``match_radius_km``; ties to the longest idle, then the lowest vehicle number)
   that has the energy for the pick-up, the trip and the drive from the drop-off to the nearest plug.

Energy is drawn when a leg starts (pick-up, passenger trip, move) and added when an EV unplugs, so
feasibility is checked before a leg and energy never goes negative; an EV that cannot reach any plug
is marked stranded.  After the window the clock runs on without new requests or policy calls until
every request is served or expired and every matched passenger is picked up.

Times are whole minutes; empty legs take ``ceil(km / speed_kmh * 60)`` minutes (at least one for a
move, zero for a pick-up in the EV's own region); passenger legs take the recorded duration.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from data_pipeline.regions import RegionMap
from drbalance.assignment import group_rank
from drbalance.errors import ConfigError, DataError
from drbalance.policies import as_moves, policy_name
from drbalance.sim.chargers import PlugSiting, check_plugs, nearest_plug
from drbalance.sim.charging_rules import ChargingRules
from drbalance.sim.config import SimConfig
from drbalance.sim.dispatch import Dispatch
from drbalance.sim.fleet import (CHARGING, IDLE, LOW, N_STATUS, NEVER, PICKUP, QUEUED, REPOSITION, SERVING,
                                 STRANDED, TO_CHARGE, EPS_KWH, Fleet)
from drbalance.sim.log import EventLog
from drbalance.sim.matching import Matching
from drbalance.sim.requests import Requests
from drbalance.sim.result import SimResult, build_result
from drbalance.state import FleetState

#: slots ahead covered by the observed state's ``incoming`` (EVs known to become vacant): 4 h at 15 min
INCOMING_SLOTS = 16


class Simulator:
    """Replay ``requests`` over ``regions`` with ``plugs`` chargers; ``run(policy) -> SimResult``.

    Parameters
    ----------
    requests : :class:`Requests` of the window (its length must be a whole number of slots).
    regions : :class:`data_pipeline.regions.RegionMap` (``n`` regions, ``distance_km`` (n, n)).
    plugs : (n,) int plugs per region (at least one in total).
    config : :class:`SimConfig`.

    A simulator holds no run state: every :meth:`run` draws the same fleet from ``config.seed`` and
    can be repeated with other policies.
    """

    def __init__(self, requests: Requests, regions: RegionMap, plugs, config: SimConfig = SimConfig()) -> None:
        if requests.minutes % config.slot_minutes:
            raise ConfigError(f"window of {requests.minutes} min is not a whole number of {config.slot_minutes}-min slots")
        if len(requests) and (requests.origin.max() >= regions.n or requests.destination.max() >= regions.n):
            raise DataError("requests refer to regions outside the region map; build them with the same RegionMap")
        self.requests = requests
        self.regions = regions
        self.config = config
        self.plugs = check_plugs(plugs, regions.n)
        self.plug_region, self.plug_km = nearest_plug(regions.distance_km, self.plugs)

    @classmethod
    def from_trips(cls, trips: pd.DataFrame, regions: RegionMap, start, config: SimConfig = SimConfig(),
                   plugs=None, siting: PlugSiting = PlugSiting(), siting_weights=None, zones=None,
                   minutes: int = 1440) -> "Simulator":
        """Build from a canonical trips frame.

        ``plugs``: (n,) counts from data (e.g. Shenzhen piles), or None to site them with ``siting``
        proportionally to ``siting_weights`` ((n,) e.g. pick-ups on the days before; default: the
        window's own pick-ups -- a mild look-ahead for infrastructure, recorded in the summary).
        """
        req = Requests.from_trips(trips, regions, start, minutes, zones=zones)
        if plugs is None:
            w = siting_weights
            if w is None:
                w = np.bincount(req.origin, minlength=regions.n).astype(float)
            plugs = siting.plugs(np.asarray(w, float), config.fleet_size)
        return cls(req, regions, plugs, config)

    @property
    def low_battery_reach_km(self) -> float:
        """Range of an EV at the low-battery threshold (km)."""
        c = self.config
        return c.charging.low_soc * c.battery_kwh / c.consumption_kwh_per_km

    @property
    def n_slots(self) -> int:
        return self.requests.minutes // self.config.slot_minutes

    def run(self, policy, progress=None):
        """Simulate the window under ``policy``; returns a :class:`drbalance.sim.result.SimResult`.

        ``progress``: optional callable ``(minute) -> None`` called at every slot boundary.
        """
        return self.start(policy, progress).finish()

    def run_many(self, policies, progress=None) -> list:
        """:meth:`run` for each policy on the same requests, fleet draw and chargers."""
        return [self.run(p, progress) for p in policies]

    def start(self, policy=None, progress=None) -> "SimRun":
        """Start a run that the caller steps slot by slot (:class:`SimRun`).

        With ``policy`` the run can ask it (``step()``); without, every :meth:`SimRun.step` must be given
        the moves (a host such as a Gymnasium environment or a learning agent decides them).
        """
        return SimRun(self, policy, progress)


class SimRun(ChargingRules, Dispatch, Matching):
    """One run of a :class:`Simulator`, stepped one decision slot at a time.

    After construction (``Simulator.start``) the run waits at its first decision epoch:
    :meth:`state` is the :class:`drbalance.state.FleetState` observed there and :attr:`t` its time.
    :meth:`step` applies the moves of that slot (given, or asked of the run's policy), simulates until
    the next decision epoch (or the end of the window and the drain after it) and returns
    :attr:`done`.  :meth:`result` gives the :class:`drbalance.sim.SimResult` once done;
    :meth:`slot_record` the counters of a simulated slot.  Arrays over vehicles and requests live
    here; no state outlives the run.
    """

    def __init__(self, sim: Simulator, policy=None, progress=None) -> None:
        self.sim, self.policy, self.progress = sim, policy, progress
        self.name = policy_name(policy) if policy is not None else "external"
        c = sim.config
        self.c = c
        self.n = sim.regions.n
        self.W = sim.regions.distance_km
        self.WT = np.ascontiguousarray(self.W.T)
        self.kpk = 0.0 if c.unconstrained else c.consumption_kwh_per_km
        ch = c.charging
        self.cap = c.capacities()
        if c.unconstrained:
            self.low_e = np.full(len(self.cap), -np.inf)
        else:
            self.low_e = np.maximum(ch.low_soc * self.cap, ch.min_range_km * c.consumption_kwh_per_km)
        self.target_e = ch.target_soc * self.cap
        self.exit_e = (self.low_e if ch.exit_min_soc is None else np.maximum(self.low_e, ch.exit_min_soc * self.cap))
        self.service_priority = ch.priority == "service" and not c.unconstrained
        self.strategy = ch.strategy_active and not c.unconstrained
        self.plug_start = np.full(len(self.cap), NEVER, np.int64)
        self.charge_trips = np.zeros(len(self.cap), np.int64)    # drives to a charger started, per EV
        self.charger_minutes = np.zeros(len(self.cap), np.int64)  # minutes queued or plugged, per EV
        self.exits_early = 0
        self.triggered = {"idle": 0, "opportunistic": 0, "self_dispatch": 0}
        self.S = sim.n_slots
        self.log = EventLog()
        req = sim.requests
        m = len(req)
        self.outcome = np.zeros(m, np.int8)        # 0 not yet resolved, 1 served, 2 unserved
        self.wait = np.full(m, -1, np.int64)
        self.vehicle = np.full(m, -1, np.int64)
        self.match_minute = np.full(m, -1, np.int64)
        self.pickup_km = np.zeros(m)
        # energy reserve a request needs beyond the pick-up leg: trip + drop-off -> nearest plug
        self.req_need = self.kpk * (req.km + sim.plug_km[req.destination])
        S, n = self.S, self.n
        self.acc = np.zeros((S, N_STATUS, n))      # vehicle-minutes per slot, status, region
        self.V_post = np.zeros((S, n))
        self.L_post = np.zeros((S, n))
        self.km = {k: np.zeros(S) for k in ("move", "charge_move", "assign", "pickup")}
        self.queue_times: list[np.ndarray] = []
        self.charged_kwh = 0.0
        self.refused = 0
        self.redirected = 0
        self.plan_seconds = 0.0
        self._result: SimResult | None = None
        self._gen = self._loop()
        try:
            self._next = next(self._gen)
        except StopIteration as stop:  # a window without decisions
            self._next, self._result = None, stop.value

    # ----------------------------------------------------------------------------- helpers
    def _slot(self, m: int) -> int:
        return min(m // self.c.slot_minutes, self.S - 1)

    def _travel(self, km: np.ndarray, minimum: int) -> np.ndarray:
        return np.maximum(minimum, np.ceil(km / self.c.speed_kmh * 60.0 - 1e-9)).astype(np.int64)

    def _becomes_vacant(self, m: int, idx: np.ndarray, event: str) -> None:
        f = self.f
        low = f.energy[idx] <= self.low_e[idx] + EPS_KWH
        f.status[idx] = np.where(low, LOW, IDLE)
        f.until[idx] = NEVER
        f.idle_since[idx] = m
        f.request[idx] = -1
        self.log.add(m, 0, event, vehicle=idx, origin=f.origin[idx], region=f.region[idx], status=f.status[idx])
        self._strand_check(m, 0, idx[low])

    def _strand_check(self, m: int, phase: int, idx: np.ndarray) -> None:
        """Low-battery EVs that cannot reach the nearest plug become stranded."""
        if not len(idx):
            return
        f = self.f
        bad = idx[f.energy[idx] + EPS_KWH < self.kpk * self.sim.plug_km[f.region[idx]]]
        if len(bad):
            f.status[bad] = STRANDED
            f.until[bad] = NEVER
            self.log.add(m, phase, "stranded", vehicle=bad, origin=f.region[bad], region=f.region[bad], status=STRANDED)

    # ----------------------------------------------------------------------------- phase 0
    def _complete(self, m: int) -> None:
        f = self.f
        due = np.flatnonzero(f.until <= m)
        if not len(due):
            return
        st = f.status[due]
        a = due[st == PICKUP]
        if len(a):
            self._start_trip(m, a, 0)
        for status, event in ((SERVING, "dropoff"), (REPOSITION, "arrive")):
            b = due[st == status]
            if len(b):
                self._becomes_vacant(m, b, event)
        d = due[st == TO_CHARGE]
        if len(d):
            f.status[d] = QUEUED
            f.until[d] = NEVER
            f.queue_since[d] = m
            self.log.add(m, 0, "queue", vehicle=d, origin=f.origin[d], region=f.region[d], status=QUEUED)
        e = due[st == CHARGING]
        if len(e):
            added = np.maximum(self.target_e[e] - f.energy[e], 0.0)
            f.energy[e] += added
            self.charged_kwh += float(added.sum())
            f.status[e] = IDLE
            f.until[e] = NEVER
            f.idle_since[e] = m
            self.log.add(m, 0, "unplug", vehicle=e, origin=f.region[e], region=f.region[e], status=IDLE, kwh=added)

    def _start_trip(self, m: int, a: np.ndarray, phase: int) -> None:
        f = self.f
        req = self.sim.requests
        r = f.request[a]
        f.energy[a] -= f.trip_kwh[a]
        f.status[a] = SERVING
        f.until[a] = f.trip_end[a]
        f.origin[a] = req.origin[r]
        f.region[a] = req.destination[r]
        self.km["pickup"][self._slot(m)] += float(req.km[r].sum())
        self.log.add(m, phase, "pickup", vehicle=a, request=r, origin=req.origin[r], region=req.destination[r],
                     status=SERVING, km=req.km[r], kwh=-f.trip_kwh[a])

    def _plug(self, m: int) -> None:
        f = self.f
        q = np.flatnonzero(f.status == QUEUED)
        if not len(q):
            return
        busy = np.bincount(f.region[f.status == CHARGING], minlength=self.n)
        free = self.sim.plugs - busy
        qs = q[np.lexsort((q, f.queue_since[q], f.region[q]))]
        rank = group_rank(f.region[qs])
        go = qs[rank < free[f.region[qs]]]
        if not len(go):
            return
        need = np.maximum(self.target_e[go] - f.energy[go], 0.0)
        dur = np.maximum(1, np.ceil(need / self.c.charging.power_kw * 60.0 - 1e-9)).astype(np.int64)
        f.status[go] = CHARGING
        self.plug_start[go] = m
        f.until[go] = m + dur
        self.queue_times.append(m - f.queue_since[go])
        self.log.add(m, 0, "plug_in", vehicle=go, origin=f.region[go], region=f.region[go], status=CHARGING)

    # ----------------------------------------------------------------------------- phase 1
    def observe(self) -> FleetState:
        """Counts per region now (vacant, low-battery, plugs, occupied or queued plugs) and the EVs known to
        become vacant in each of the next :data:`INCOMING_SLOTS` slots (``incoming``)."""
        cnt = self.f.counts(self.n)
        return FleetState(vacant=cnt[IDLE], low_battery=cnt[LOW], plugs=self.sim.plugs,
                          occupied=cnt[CHARGING] + cnt[QUEUED] + cnt[TO_CHARGE], incoming=self._incoming())

    def _incoming(self) -> np.ndarray:
        """(INCOMING_SLOTS, n) EVs that will become vacant above the low-battery threshold, by slot from now
        and region: passenger trips ending (drop-off region known to the dispatcher), repositioning EVs
        arriving and charging EVs finishing."""
        f, m, slot = self.f, self._now, self.c.slot_minutes
        req = self.sim.requests
        ends, regs, energy = [], [], []
        for status in (SERVING, REPOSITION, CHARGING):
            v = np.flatnonzero(f.status == status)
            ends.append(f.until[v])
            regs.append(f.region[v])
            energy.append(np.full(len(v), np.inf) if status == CHARGING else f.energy[v] - self.low_e[v])
        v = np.flatnonzero(f.status == PICKUP)
        ends.append(f.trip_end[v])
        regs.append(req.destination[f.request[v]])
        energy.append(f.energy[v] - f.trip_kwh[v] - self.low_e[v])
        end, reg, e = np.concatenate(ends), np.concatenate(regs), np.concatenate(energy)
        k = np.maximum(end - m, 0) // slot
        ok = (e > EPS_KWH) & (k < INCOMING_SLOTS)
        out = np.zeros((INCOMING_SLOTS, self.n))
        np.add.at(out, (k[ok], reg[ok]), 1.0)
        return out

    def _depart(self, m, veh, o, d, dist, status, event, phase: int = 1) -> None:
        if not len(veh):
            return
        f = self.f
        if status == TO_CHARGE:
            np.add.at(self.charge_trips, veh, 1)
        tm = self._travel(dist, 1)
        kwh = self.kpk * dist
        f.energy[veh] -= kwh
        f.status[veh] = status
        f.origin[veh] = o
        f.region[veh] = d
        f.until[veh] = m + tm
        self.km[event][self._slot(m)] += float(dist.sum())
        self.log.add(m, phase, event, vehicle=veh, origin=o, region=d, target=d, status=status, km=dist, kwh=-kwh)

    # ----------------------------------------------------------------------------- loop
    def _loop(self):
        """The minute loop as a generator: yields ``(state, t)`` at every decision epoch and receives
        the moves; returns the :class:`SimResult`."""
        t_run = time.perf_counter()
        sim, c = self.sim, self.c
        req = sim.requests
        rng = np.random.default_rng(c.seed)
        early = np.bincount(req.origin[req.arrival < c.init_window_minutes], minlength=self.n).astype(float)
        if early.sum() == 0:
            early = np.bincount(req.origin, minlength=self.n).astype(float)
        self.f = f = Fleet.synthetic(c.fleet_size, early, self.cap, c.initial_soc_mean, c.initial_soc_sd, rng)
        self.initial_energy = f.energy.copy()
        f.status[:] = np.where(f.energy <= self.low_e + EPS_KWH, LOW, IDLE)
        every = np.arange(f.size)
        self.log.add(0, 0, "init", vehicle=every, origin=f.region, region=f.region, status=f.status, kwh=f.energy)
        self._strand_check(0, 0, every[f.status == LOW])

        day_minutes = req.minutes
        slot = c.slot_minutes
        pending = np.zeros(0, np.int64)
        ptr = 0
        m = 0
        start = req.start
        while m < day_minutes or len(pending) or (f.status == PICKUP).any():
            self._complete(m)
            self._plug(m)
            if self.strategy:
                self._strategy(m)
            if m < day_minutes and m % slot == 0:
                k = m // slot
                t = start + pd.Timedelta(minutes=m)
                self._now = m
                moves = yield self.observe(), t
                self._apply(m, moves, t)
                cnt = f.counts(self.n)
                self.V_post[k] = cnt[IDLE] + cnt[REPOSITION]
                self.L_post[k] = cnt[LOW]
                if self.progress is not None:
                    self.progress(m)
            if m < day_minutes:
                j = int(np.searchsorted(req.arrival, m, side="right"))
                if j > ptr:
                    new = np.arange(ptr, j)
                    self.log.add(m, 2, "request", request=new, origin=req.origin[new], region=req.destination[new],
                                 km=req.km[new])
                    pending = np.concatenate([pending, new])
                    ptr = j
            if len(pending):
                pending = self._match(m, pending)
            if m < day_minutes:
                self.acc[m // slot] += f.counts(self.n)
            self.charger_minutes += (f.status == QUEUED) | (f.status == CHARGING)
            if (f.energy < -EPS_KWH).any():  # cannot happen by construction; guard the invariant loudly
                bad = int(np.flatnonzero(f.energy < -EPS_KWH)[0])
                raise AssertionError(f"internal error: vehicle {bad} has negative energy {f.energy[bad]:.6f} kWh at minute {m}")
            m += 1
        self.end_minute = m
        if ptr != len(req) or (self.outcome == 0).any():
            raise AssertionError("internal error: some requests were neither served nor expired")
        return build_result(self, time.perf_counter() - t_run)

    # ----------------------------------------------------------------------------- public stepping
    @property
    def done(self) -> bool:
        """True once the window and its drain are simulated."""
        return self._result is not None

    @property
    def t(self) -> pd.Timestamp | None:
        """Time of the pending decision (None when done)."""
        return None if self._next is None else self._next[1]

    @property
    def slot(self) -> int | None:
        """Index of the pending decision slot in the window (None when done)."""
        t = self.t
        return None if t is None else int((t - self.sim.requests.start) / pd.Timedelta(minutes=self.c.slot_minutes))

    def state(self) -> FleetState:
        """The :class:`FleetState` observed at the pending decision."""
        if self._next is None:
            raise ConfigError("the run is done: no decision is pending (see result())")
        return self._next[0]

    def step(self, moves=None) -> bool:
        """Apply the pending decision's ``moves`` (a :class:`drbalance.policies.Moves`, a
        :class:`drbalance.state.Plan` or what :func:`drbalance.policies.as_moves` accepts; None asks
        the run's policy) and simulate to the next decision.  Returns :attr:`done`."""
        if self._next is None:
            raise ConfigError("the run is done or ended with an error; start a new one with Simulator.start()")
        state, t = self._next
        if moves is None:
            if self.policy is None:
                raise ConfigError("this run has no policy: pass the moves to step(moves)")
            t0 = time.perf_counter()
            answer = self.policy.plan(state, t)
            self.plan_seconds += time.perf_counter() - t0
            moves = as_moves(answer, self.name)
        else:
            moves = as_moves(moves, self.name)
        try:
            self._next = self._gen.send(moves)
        except StopIteration as stop:
            self._next, self._result = None, stop.value
        except BaseException:
            self._next = None   # the minute loop ended with the error: the run cannot continue
            raise
        return self.done

    def finish(self) -> SimResult:
        """Step with the run's policy until done; returns :meth:`result`."""
        while not self.done:
            self.step()
        return self._result

    def result(self) -> SimResult:
        """The :class:`SimResult` of a finished run."""
        if self._result is None:
            raise ConfigError("the run is not done yet: step() until done (or call finish())")
        return self._result

    def slot_record(self, k: int) -> dict:
        """Counters of simulated slot ``k`` (read-only copies): ``vacant_after`` and ``low_after`` (n,)
        EVs per region right after the slot's moves (vacant includes those repositioning),
        ``charging_minutes`` (n,) vehicle-minutes plugged in, ``km_move`` and ``km_charge_move`` (km)."""
        if not 0 <= k < self.S:
            raise ConfigError(f"slot {k} is outside the window's 0..{self.S - 1}")
        out = {"vacant_after": self.V_post[k].copy(), "low_after": self.L_post[k].copy(),
               "charging_minutes": self.acc[k, CHARGING].copy(),
               "km_move": float(self.km["move"][k]), "km_charge_move": float(self.km["charge_move"][k])}
        for v in out.values():
            if isinstance(v, np.ndarray):
                v.setflags(write=False)
        return out
