"""Duplicate detection across record batches without keeping the rows: hashed keys in sorted runs.

A trip key is ``(pick-up ns, drop-off ns, pick-up zone code, drop-off zone code, distance km)``
(:func:`~data_pipeline.readers.trips.validate_trips`'s).  :func:`key_hash` folds it into 64 bits
(splitmix64 finaliser, deterministic, no seed needed); :class:`SeenKeys` keeps ``(hash, pick-up ns)``
of every accepted key (16 bytes each) in a few sorted runs (merged like an LSM tree, so inserting n
keys costs O(n log n) in all) and answers "seen before?" with binary searches.  A key counts as seen
when hash *and* pick-up time match: distinct trips are confused only if they share the pick-up
instant and a 64-bit hash.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (in place where possible)."""
    x = x ^ (x >> np.uint64(30))
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def key_hash(pickup_ns: np.ndarray, dropoff_ns: np.ndarray, pu_code: np.ndarray, do_code: np.ndarray,
             distance: np.ndarray) -> np.ndarray:
    """(n,) uint64 hash of each trip key; all inputs shape (n,).  ``-0.0`` and ``0.0`` hash alike."""
    with np.errstate(over="ignore"):
        h = _mix(np.asarray(pickup_ns).astype(np.uint64) + _GOLDEN)
        h = _mix(h ^ np.asarray(dropoff_ns).astype(np.uint64))
        zones = (np.asarray(pu_code).astype(np.uint64) << np.uint64(32)) | (np.asarray(do_code).astype(np.uint64)
                                                                            & np.uint64(0xFFFFFFFF))
        h = _mix(h ^ zones)
        d = np.ascontiguousarray(np.asarray(distance, dtype=np.float64) + 0.0)
        h = _mix(h ^ d.view(np.uint64))
    return h


class SeenKeys:
    """Keys (hash, pick-up ns) seen so far; :meth:`add` marks duplicates and remembers the new keys."""

    def __init__(self) -> None:
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return sum(len(h) for h, _ in self.runs)

    def add(self, h: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Mark duplicates among ``(h, a)`` (shape (n,) each, in row order) and remember the rest.

        A row is a duplicate when an earlier row of this call or of an earlier call has the same hash
        and pick-up time.  Returns the (n,) boolean duplicate mask (first occurrences are False).
        """
        n = len(h)
        dup = np.zeros(n, bool)
        if n == 0:
            return dup
        # within the batch: first occurrence of each (hash, pick-up); ``cand`` = first occurrences, by hash
        order = np.argsort(h, kind="stable")                 # stable: a group's first row comes first
        hs = h[order]
        start = np.ones(n, bool)
        start[1:] = hs[1:] != hs[:-1]
        first = order[start]
        later = order[~start]
        group_first = first[np.cumsum(start)[~start] - 1]
        dup = np.zeros(n, bool)
        if (a[later] != a[group_first]).any():                 # same hash, other pick-up: exact fallback
            dup = pd.DataFrame({"h": h, "a": a}).duplicated(keep="first").to_numpy(copy=True)
            cand = np.flatnonzero(~dup)
            cand = cand[np.argsort(h[cand], kind="stable")]
        else:
            dup[later] = True
            cand = first
        # against earlier batches: sorted needles make numpy's binary search cache-friendly
        ch, ca = h[cand], a[cand]
        new = np.ones(len(cand), bool)
        for rh, ra in self.runs:
            pos = np.searchsorted(rh, ch)
            pos_c = np.minimum(pos, len(rh) - 1)
            hit = np.flatnonzero((pos < len(rh)) & (rh[pos_c] == ch) & new)
            if not len(hit):
                continue
            same_a = ra[pos_c[hit]] == ca[hit]
            new[hit[same_a]] = False
            for i in hit[~same_a]:                             # hash collision or ties: check every equal hash
                lo, hi = np.searchsorted(rh, ch[i], "left"), np.searchsorted(rh, ch[i], "right")
                new[i] = not bool((ra[lo:hi] == ca[i]).any())
        dup[cand[~new]] = True
        if new.any():
            self.runs.append((ch[new], ca[new]))
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= 2 * len(self.runs[-1][0]):
            (h1, a1), (h2, a2) = self.runs.pop(), self.runs.pop()
            hh, aa = np.concatenate([h2, h1]), np.concatenate([a2, a1])
            o = np.argsort(hh, kind="stable")
            self.runs.append((hh[o], aa[o]))
        return dup
