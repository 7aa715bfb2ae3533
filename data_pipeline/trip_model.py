"""What the trip records say about timing inside a slot and where hired vehicles become vacant again.

Model v2 of the balancing problem (MATH.md section 1.1) needs two facts that slot counts cannot give:

* **timing share** ``θ``: the share of a slot's requests that a vehicle becoming vacant *during* the
  slot can still serve (requests wait ``patience`` minutes, then leave).  With pick-up minute ``a`` and
  drop-off minute ``τ`` inside the slot, ``θ = P(a >= τ - patience)``, estimated from the training
  trips' within-slot minute histograms (pooled over regions and days, per slot of the day; pick-up and
  drop-off timing taken as independent within a slot).  ``θ = 1`` credits every drop-off in full (the
  first model's bias), ``θ = 0`` counts drop-offs from the next slot only.
* **trip mobility** ``M_d``: the share of trips picked up in region ``i`` that end in region ``j``
  ``d`` slots after their pick-up slot (``d >= 1``; trips ending in their own slot count as ``d = 1``,
  i.e. the hired vehicle is back for the next slot, a conservative choice), pooled over the training
  period.  Expected hires leave the vacant supply and come back through these matrices.

:class:`TripModel` holds both, fitted by :meth:`TripModel.fit` on the training trips only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from drbalance.errors import DataError
from drbalance.validation import check_int, check_slot_minutes

#: slots after the pick-up slot tracked by the mobility matrices (later drop-offs are beyond any horizon we solve)
MAX_RETURN_SLOTS = 12


@dataclass(frozen=True)
class TripModel:
    """Within-slot timing and trip mobility of a training period.

    Attributes
    ----------
    slot_minutes : slot length ``Δ`` (minutes).
    pickup_minutes : (S, Δ) pick-ups by slot of the day and minute inside the slot (counts).
    dropoff_minutes : (S, Δ) drop-offs by slot of the day and minute inside the slot (counts).
    returns : (D, n, n) dense shares ``M_d[i, j]`` for ``d = 1..D`` (row sums <= 1: the rest ends later).
    n_trips : training trips the model was fitted on.
    """

    slot_minutes: int
    pickup_minutes: np.ndarray
    dropoff_minutes: np.ndarray
    returns: np.ndarray
    n_trips: int

    @classmethod
    def fit(cls, trips: pd.DataFrame, regions, slot_minutes: int = 15) -> "TripModel":
        """Fit on a validated canonical trips frame (``pickup_time``, ``dropoff_time``, ``pickup_zone``,
        ``dropoff_zone``) over ``regions`` (a :class:`data_pipeline.regions.RegionMap`).

        Trips outside the region map are left out of the mobility (they are counted in ``n_trips`` only
        when inside).  Raises DataError when no trip is usable.
        """
        check_slot_minutes(slot_minutes)
        d = int(slot_minutes)
        S = 1440 // d
        pu = pd.to_datetime(trips["pickup_time"]).to_numpy()
        do = pd.to_datetime(trips["dropoff_time"]).to_numpy()
        o = regions.region_of(trips["pickup_zone"].to_numpy())
        j = regions.region_of(trips["dropoff_zone"].to_numpy())
        ok = (o >= 0) & (j >= 0) & (do >= pu)
        if not ok.any():
            raise DataError("no trip lies inside the region map with a drop-off after its pick-up; cannot fit "
                            "the timing share and trip mobility")
        pu, do, o, j = pu[ok], do[ok], o[ok], j[ok]
        day0 = pu.astype("datetime64[D]")
        pu_min = (pu - day0).astype("timedelta64[s]").astype(np.int64) // 60
        do_min = (do - day0).astype("timedelta64[s]").astype(np.int64) // 60   # may exceed 1440 (next day)
        pick = np.zeros((S, d))
        np.add.at(pick, ((pu_min // d) % S, pu_min % d), 1.0)
        drop = np.zeros((S, d))
        np.add.at(drop, ((do_min // d) % S, do_min % d), 1.0)
        offset = np.maximum(do_min // d - pu_min // d, 1)
        keep = offset <= MAX_RETURN_SLOTS
        n = regions.n
        counts = np.zeros((MAX_RETURN_SLOTS, n, n))
        np.add.at(counts, (offset[keep] - 1, o[keep], j[keep]), 1.0)
        per_origin = np.bincount(o, minlength=n).astype(float)
        returns = np.divide(counts, per_origin[None, :, None], out=np.zeros_like(counts),
                            where=per_origin[None, :, None] > 0)
        return cls(d, pick, drop, returns, int(ok.sum()))

    @property
    def n_slots(self) -> int:
        return self.pickup_minutes.shape[0]

    @property
    def n(self) -> int:
        return self.returns.shape[1]

    def _pick_share(self, slot: int) -> np.ndarray:
        """(Δ + 1,) share of slot ``slot``'s pick-ups at minute >= m, for m = 0..Δ (uniform if none)."""
        h = self.pickup_minutes[slot % self.n_slots]
        if h.sum() <= 0:
            h = np.ones(self.slot_minutes)
        tail = np.concatenate([np.cumsum(h[::-1])[::-1], [0.0]])
        return tail / h.sum()

    def arrival_share(self, slot: int, minute: np.ndarray, patience: int) -> np.ndarray:
        """Share of slot ``slot``'s requests a vehicle becoming vacant at ``minute`` (array, minutes after
        the slot start, may be fractional) can still serve: ``P(a >= minute - patience)``; 0 from ``Δ``."""
        m = np.asarray(minute, float)
        first = np.clip(np.ceil(m - patience - 1e-9), 0, self.slot_minutes).astype(np.int64)
        out = self._pick_share(slot)[first]
        return np.where(m >= self.slot_minutes, 0.0, out)

    def timing_share(self, slot: int, patience: int) -> float:
        """``θ`` of slot ``slot`` (of the day): drop-off-weighted mean of :meth:`arrival_share`."""
        check_int("patience", patience, low=0)
        h = self.dropoff_minutes[slot % self.n_slots]
        if h.sum() <= 0:
            h = np.ones(self.slot_minutes)
        share = self.arrival_share(slot, np.arange(self.slot_minutes), patience)
        return float((h * share).sum() / h.sum())

    def window_timing(self, start_slot: int, horizon: int, patience: int) -> np.ndarray:
        """(K,) ``θ`` of the ``K`` slots from ``start_slot`` (wrapping past midnight)."""
        return np.array([self.timing_share(start_slot + k, patience) for k in range(horizon)])

    def return_matrices(self, horizon: int, max_destinations: int | None = 16) -> list:
        """The ``K - 1`` sparse (n, n) matrices ``M_1..M_{K-1}`` (share of hires from ``i`` vacant again in
        ``j`` ``d`` slots later).

        ``max_destinations`` keeps each origin's most frequent destinations per ``d`` and scales them up so
        the origin's share returning after ``d`` slots is unchanged (None keeps all): the matrices couple the
        slots of the balancing problem, and a dense ``n x n`` block per pair of slots would dominate its
        factorisation at city scale.
        """
        K = int(horizon)
        out = []
        for d in range(min(K - 1, len(self.returns))):
            M = self.returns[d].copy()
            if max_destinations is not None and M.shape[1] > max_destinations:
                total = M.sum(axis=1)
                top = np.argpartition(-M, max_destinations - 1, axis=1)[:, :max_destinations]
                keep = np.zeros(M.shape, bool)
                np.put_along_axis(keep, top, True, axis=1)
                M = np.where(keep, M, 0.0)
                kept = M.sum(axis=1)   # the origin's mass is restored exactly
                M *= np.divide(total, kept, out=np.zeros_like(total), where=kept > 0)[:, None]
            out.append(sp.csr_matrix(M))
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for an ``.npz`` bundle (see :meth:`from_arrays`)."""
        return {"slot_minutes": np.array(self.slot_minutes), "pickup_minutes": self.pickup_minutes,
                "dropoff_minutes": self.dropoff_minutes, "returns": self.returns, "n_trips": np.array(self.n_trips)}

    @classmethod
    def from_arrays(cls, a) -> "TripModel":
        return cls(int(a["slot_minutes"]), np.asarray(a["pickup_minutes"], float),
                   np.asarray(a["dropoff_minutes"], float), np.asarray(a["returns"], float), int(a["n_trips"]))
