"""Phase 2 of a simulator minute: requests expire or are matched to the nearest idle EV.

Pending requests are matched oldest first to the nearest idle EV (pick-up region first, then regions
within ``match_radius_km``; ties to the longest idle, then the lowest vehicle number) that has the energy
for the pick-up, the trip and the drive from the drop-off to the nearest plug; with the ``service``
charging priority, plugged EVs above their exit SoC may serve too.  A mixin of
:class:`drbalance.sim.replay.SimRun`.
"""

from __future__ import annotations

import numpy as np

from drbalance.codes import CHARGING, IDLE, PICKUP
from drbalance.sim.fleet import EPS_KWH, NEVER


class Matching:
    """Phase 2 of :class:`drbalance.sim.replay.SimRun`: expiries and matching."""

    def _match(self, m: int, pending: np.ndarray) -> np.ndarray:
        f, req, c = self.f, self.sim.requests, self.c
        age = m - req.arrival[pending]
        gone = pending[age > c.patience_minutes]
        if len(gone):
            self.outcome[gone] = 2
            self.log.add(m, 2, "expire", request=gone, origin=req.origin[gone], region=req.destination[gone])
            pending = pending[age <= c.patience_minutes]
        if not len(pending):
            return pending
        avail = np.flatnonzero(f.status == IDLE)
        av_e = f.energy[avail]
        av_chg = np.zeros(len(avail), bool)
        if self.service_priority:   # exit charging early: plugged EVs above their exit SoC may serve
            chg = np.flatnonzero(f.status == CHARGING)
            cur = f.energy[chg] + np.minimum(self.c.charging.power_kw * (m - self.plug_start[chg]) / 60.0,
                                             np.maximum(self.target_e[chg] - f.energy[chg], 0.0))
            ok = cur > self.exit_e[chg] + EPS_KWH
            avail = np.concatenate([avail, chg[ok]])
            av_e = np.concatenate([av_e, cur[ok]])
            av_chg = np.concatenate([av_chg, np.ones(int(ok.sum()), bool)])
        if not len(avail):
            return pending
        has_chg = bool(av_chg.any())
        av_reg, av_idle = f.region[avail], f.idle_since[avail]
        free = np.ones(len(avail), bool)
        radius, kpk = c.match_radius_km, self.kpk
        taken_req, taken_pos, taken_d = [], [], []
        for r in pending.tolist():
            dd = self.WT[req.origin[r]][av_reg]
            ok = free & (dd <= radius) & (av_e + EPS_KWH >= self.req_need[r] + kpk * dd)
            cand = np.flatnonzero(ok)
            if not len(cand):
                continue
            dc = dd[cand]
            cand = cand[dc == dc.min()]
            if has_chg and len(cand) > 1 and not av_chg[cand].all():
                cand = cand[~av_chg[cand]]     # an idle EV before a plugged one at the same distance
            if len(cand) > 1:
                ic = av_idle[cand]
                cand = cand[ic == ic.min()]
            b = int(cand[0])
            free[b] = False
            taken_req.append(r)
            taken_pos.append(b)
            taken_d.append(float(dd[b]))
            if len(taken_pos) == len(avail):
                break
        if not taken_req:
            return pending
        rr = np.asarray(taken_req, np.int64)
        pos = np.asarray(taken_pos, np.int64)
        veh = avail[pos]
        if has_chg and av_chg[pos].any():
            ex, cur_e = veh[av_chg[pos]], av_e[pos][av_chg[pos]]
            added = cur_e - f.energy[ex]
            f.energy[ex] = cur_e
            self.charged_kwh += float(added.sum())
            self.exits_early += len(ex)
            self.plug_start[ex] = NEVER
            self.log.add(m, 2, "unplug", vehicle=ex, origin=f.region[ex], region=f.region[ex], status=IDLE, kwh=added)
        dist = np.asarray(taken_d)
        pk = np.where(dist > 0, self._travel(dist, 0), 0)
        kwh = kpk * dist
        f.energy[veh] -= kwh
        f.trip_kwh[veh] = kpk * req.km[rr]
        f.request[veh] = rr
        f.status[veh] = PICKUP
        f.origin[veh] = f.region[veh]
        f.region[veh] = req.origin[rr]
        f.until[veh] = m + pk
        f.trip_end[veh] = m + pk + req.duration[rr]
        self.outcome[rr] = 1
        self.wait[rr] = m - req.arrival[rr] + pk
        self.vehicle[rr] = veh
        self.match_minute[rr] = m
        self.pickup_km[rr] = dist
        self.km["assign"][self._slot(m)] += float(dist.sum())
        self.log.add(m, 2, "assign", vehicle=veh, request=rr, origin=f.origin[veh], region=req.origin[rr],
                     status=PICKUP, km=dist, kwh=-kwh)
        now = veh[pk == 0]
        if len(now):
            self._start_trip(m, now, 2)
        return np.setdiff1d(pending, rr, assume_unique=True)

