"""Phase 1 of a simulator minute: a policy's moves validated and applied to the fleet.

Moves are checked (region positions, plugs at charge destinations, enough vacant EVs in every origin:
moves are never trimmed), matched to vehicles by the one rule of :mod:`drbalance.assignment`, and
started (vacant moves refused when the EV could not then reach a plug; charge moves redirected to the
nearest reachable plug, or the EV stranded).  A mixin of :class:`drbalance.sim.replay.SimRun`.
"""

from __future__ import annotations

import numpy as np

from drbalance.codes import IDLE, LOW, REPOSITION, STRANDED, TO_CHARGE
from drbalance.sim.fleet import EPS_KWH, NEVER
from drbalance.assignment import assign
from drbalance.errors import ConfigError


class Dispatch:
    """Phase 1 of :class:`drbalance.sim.replay.SimRun`: apply a policy's moves."""

    def _apply(self, m: int, moves, t) -> None:
        f, n = self.f, self.n
        if not len(moves):
            return
        names = self.sim.regions.names
        for arr, what in ((moves.origin, "origin"), (moves.destination, "destination")):
            if len(arr) and (arr.min() < 0 or arr.max() >= n):
                bad = int(arr[(arr < 0) | (arr >= n)][0])
                raise ConfigError(f"policy {self.name!r} at {t}: move {what} {bad} is not a region position 0..{n - 1}")
        kind = moves.kind.astype(str)
        noplug = (kind == "charge") & (moves.count > 0) & (self.sim.plugs[moves.destination] == 0)
        if noplug.any():
            j = int(moves.destination[noplug][0])
            raise ConfigError(f"policy {self.name!r} at {t}: charge move to region {j} ({names[j]}) which has no plug")
        cnt = f.counts(n)
        for k, pool, label in (("vacant", IDLE, "vacant EVs above the low-battery threshold"),
                               ("charge", LOW, "low-battery vacant EVs")):
            sel = (kind == k) & (moves.count > 0)
            need = np.bincount(moves.origin[sel], weights=moves.count[sel], minlength=n).astype(np.int64)
            over = np.flatnonzero(need > cnt[pool])
            if len(over):
                i = int(over[0])
                raise ConfigError(f"policy {self.name!r} at {t}: moves {need[i]} {k} EVs out of region {i} "
                                  f"({names[i]}, id {self.sim.regions.region_ids[i]}) but only {cnt[pool][i]} "
                                  f"{label} are there ({len(over)} region(s) over-drawn); moves are never trimmed")
        for k, pool in (("vacant", IDLE), ("charge", LOW)):
            sel = (kind == k) & (moves.count > 0)
            if not sel.any():
                continue
            o = np.repeat(moves.origin[sel], moves.count[sel])
            d = np.repeat(moves.destination[sel], moves.count[sel])
            cand = np.flatnonzero(f.status == pool)
            order, pos = assign(k, o, self.W[o, d], f.region[cand], f.energy[cand])
            o, d = o[order], d[order]
            dist = self.W[o, d]
            veh = cand[pos]
            if k == "vacant":
                self._start_vacant(m, veh, o, d, dist)
            else:
                self._start_charge(m, veh, o, d, dist)

    def _start_vacant(self, m, veh, o, d, dist) -> None:
        f = self.f
        move = o != d
        veh, o, d, dist = veh[move], o[move], d[move], dist[move]
        ok = f.energy[veh] + EPS_KWH >= self.kpk * (dist + self.sim.plug_km[d])
        if (~ok).any():
            r = veh[~ok]
            self.refused += len(r)
            self.log.add(m, 1, "refused", vehicle=r, origin=o[~ok], region=o[~ok], target=d[~ok], status=f.status[r])
        veh, o, d, dist = veh[ok], o[ok], d[ok], dist[ok]
        self._depart(m, veh, o, d, dist, REPOSITION, "move")

    def _start_charge(self, m, veh, o, d, dist) -> None:
        f = self.f
        ok = f.energy[veh] + EPS_KWH >= self.kpk * dist
        if (~ok).any():
            bad = np.flatnonzero(~ok)
            has = np.flatnonzero(self.sim.plugs > 0)
            reach = f.energy[veh[bad]] / self.kpk + EPS_KWH
            sub = self.W[o[bad]][:, has]
            sub = np.where(sub <= reach[:, None], sub, np.inf)
            k = np.argmin(sub, axis=1)
            best = sub[np.arange(len(bad)), k]
            can = np.isfinite(best)
            rd = bad[can]
            if len(rd):
                self.redirected += len(rd)
                self.log.add(m, 1, "redirect", vehicle=veh[rd], origin=o[rd], region=o[rd], target=d[rd],
                             status=f.status[veh[rd]])
                d = d.copy()
                dist = dist.copy()
                d[rd] = has[k[can]]
                dist[rd] = best[can]
            sb = veh[bad[~can]]
            if len(sb):
                f.status[sb] = STRANDED
                f.until[sb] = NEVER
                self.log.add(m, 1, "stranded", vehicle=sb, origin=f.region[sb], region=f.region[sb], status=STRANDED)
            keep = np.ones(len(veh), bool)
            keep[bad[~can]] = False
            veh, o, d, dist = veh[keep], o[keep], d[keep], dist[keep]
        self._depart(m, veh, o, d, dist, TO_CHARGE, "charge_move")

