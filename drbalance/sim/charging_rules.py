"""Minute-level charging-strategy rules of a simulator run (MATH.md section 5): self-dispatch of
low-battery EVs, the idle-time trigger and the opportunistic override.

A mixin of :class:`drbalance.sim.replay.SimRun` (it works on the run's fleet arrays).
"""

from __future__ import annotations

import numpy as np

from drbalance.codes import CHARGING, IDLE, LOW, QUEUED, TO_CHARGE
from drbalance.sim.fleet import EPS_KWH
from drbalance.assignment import group_rank


class ChargingRules:
    """Phase 0 charging rules of :class:`drbalance.sim.replay.SimRun` (see ``ChargingConfig``)."""

    def _strategy(self, m: int) -> None:
        """Minute-level charging rules (phase 0, after plugging in): self-dispatch of low-battery EVs,
        the idle-time trigger, then the opportunistic override (ChargingConfig docstring)."""
        f, ch = self.f, self.c.charging
        if ch.self_dispatch:
            low = np.flatnonzero(f.status == LOW)
            if len(low):
                self.triggered["self_dispatch"] += self._send_to_charge(m, low, np.inf, need_free=False)
        if ch.idle_minutes is not None:
            idle = np.flatnonzero((f.status == IDLE) & (m - f.idle_since >= ch.idle_minutes)
                                  & (f.energy < self.target_e - EPS_KWH))
            if len(idle):
                self.triggered["idle"] += self._send_to_charge(m, idle, np.inf, need_free=False)
        if ch.opportunistic_soc is not None:
            idle = np.flatnonzero((f.status == IDLE) & (f.energy < ch.opportunistic_soc * self.cap - EPS_KWH))
            if len(idle):
                self.triggered["opportunistic"] += self._send_to_charge(m, idle, ch.opportunistic_km, need_free=True)

    def available_plugs(self) -> np.ndarray:
        """(n,) plugs neither in use, nor queued for, nor claimed by an EV driving to them (may be < 0)."""
        f = self.f
        busy = (f.status == CHARGING) | (f.status == QUEUED) | (f.status == TO_CHARGE)
        return self.sim.plugs - np.bincount(f.region[busy], minlength=self.n)

    def _send_to_charge(self, m: int, veh: np.ndarray, within_km: float, need_free: bool) -> int:
        """Send ``veh`` to the nearest region with an available plug within ``within_km`` and their range
        (nearest first, then lowest vehicle number, at most the available plugs per region).  Those left
        over go to the nearest plug region within reach to queue, unless ``need_free``.  Returns #sent."""
        f = self.f
        avail = self.available_plugs()
        o = f.region[veh]
        lim = np.minimum(f.energy[veh] / self.kpk + EPS_KWH, within_km)
        D = self.W[o]
        Dm = np.where((avail[None, :] > 0) & (D <= lim[:, None]), D, np.inf)
        d = np.argmin(Dm, axis=1)
        best = Dm[np.arange(len(veh)), d]
        idx = np.flatnonzero(np.isfinite(best))
        idx = idx[np.lexsort((veh[idx], best[idx], d[idx]))]
        take = idx[group_rank(d[idx]) < avail[d[idx]]]
        go = np.zeros(len(veh), bool)
        go[take] = True
        if not need_free and not go.all():
            rest = np.flatnonzero(~go)
            D2 = np.where((self.sim.plugs[None, :] > 0) & (D[rest] <= lim[rest, None]), D[rest], np.inf)
            d2 = np.argmin(D2, axis=1)
            b2 = D2[np.arange(len(rest)), d2]
            ok = np.isfinite(b2)
            d[rest[ok]] = d2[ok]
            best[rest[ok]] = b2[ok]
            go[rest[ok]] = True
        sel = np.flatnonzero(go)
        if len(sel):
            self._depart(m, veh[sel], o[sel], d[sel], best[sel], TO_CHARGE, "charge_move", phase=0)
        return int(len(sel))

