"""Integer first-slot moves from a relaxed plan (MATH.md section 1, receding horizon).

* :func:`round_per_origin`: largest-remainder rounding per origin.  Every pair gets ``floor(x)``; the
  ``V_i - Σ floor`` units an origin still has go to its pairs with the largest fractional parts.
  Per-origin totals are kept exactly and no pair moves by a whole unit or more from its relaxed value.
* :func:`round_capacitated`: the same, then, only if some destination now exceeds its integer
  capacity (plug capacity for low-battery EVs), a repair that moves as few units as possible to the
  origins' nearest destinations with spare capacity.  The repair is a small transportation LP
  (bipartite network, so totally unimodular: its vertex solutions are integral), solved with HiGHS'
  dual simplex; if no integer assignment exists it raises :class:`InfeasibleError`.

All vectorised over pairs (no Python loop over pairs or vehicles).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from drbalance.errors import DataError, InfeasibleError

SNAP = 1e-7  # relaxed values this close to an integer count as that integer (solver tolerance)


def round_per_origin(pairs: np.ndarray, x: np.ndarray, totals: np.ndarray, n: int | None = None) -> np.ndarray:
    """Largest-remainder rounding of relaxed moves per origin.

    Parameters
    ----------
    pairs : (m, 2) int ``(origin, destination)`` region positions.
    x : (m,) relaxed non-negative moves (tiny negatives from solver tolerance are clipped).
    totals : (n,) whole-number vehicles per origin; ``Σ_{pairs from i} x ≈ totals_i``.
    n : number of regions (default ``len(totals)``).

    Returns (m,) int64 moves with ``Σ_{pairs from i} moves = totals_i`` exactly and ``|moves - x| < 1``.
    Raises DataError when the relaxed moves of an origin are off its total by a whole vehicle or more.
    """
    pairs = np.asarray(pairs)
    x = np.maximum(np.asarray(x, float), 0.0)
    totals = np.asarray(totals, float)
    n = len(totals) if n is None else n
    m = len(x)
    if pairs.shape != (m, 2):
        raise DataError(f"pairs has shape {pairs.shape}, expected ({m}, 2)")
    if not np.allclose(totals, np.rint(totals), atol=1e-9):
        raise DataError("rounding needs whole-number totals per origin")
    tot = np.rint(totals).astype(np.int64)
    if m == 0:
        if tot.any():
            raise DataError("no pairs but positive totals to distribute")
        return np.zeros(0, dtype=np.int64)
    near = np.rint(x)
    x = np.where(np.abs(x - near) < SNAP, near, x)
    fl = np.floor(x)
    frac = x - fl
    orig = pairs[:, 0]
    deficit = tot - np.rint(np.bincount(orig, weights=fl, minlength=n)).astype(np.int64)
    order = np.lexsort((-frac, orig))  # by origin, then largest fractional part first
    so = orig[order]
    rank = np.arange(m) - np.searchsorted(so, so, side="left")
    add = rank < deficit[so]
    out = fl.astype(np.int64)
    out[order[add]] += 1
    got = np.bincount(orig, weights=out, minlength=n).astype(np.int64)
    if not np.array_equal(got, tot):
        i = int(np.flatnonzero(got != tot)[0])
        rel = float(np.bincount(orig, weights=x, minlength=n)[i])
        raise DataError(f"relaxed moves from region {i} sum to {rel:.6g} but it holds {tot[i]} vehicles; "
                        "the plan does not conserve vehicles")
    return out


def round_capacitated(pairs: np.ndarray, x: np.ndarray, totals: np.ndarray, capacity: np.ndarray,
                      n: int | None = None, distance_km: np.ndarray | None = None) -> np.ndarray:
    """Largest-remainder rounding per origin that also keeps ``Σ_{pairs into j} moves <= capacity_j``.

    Parameters
    ----------
    pairs, x, totals, n : as :func:`round_per_origin`.
    capacity : (n,) integer capacity per destination (``np.inf`` where unlimited).
    distance_km : (m,) pair distances; the repair prefers near destinations (default: all equal).

    Returns (m,) int64 moves.  When plain rounding already respects capacity it is returned unchanged;
    otherwise the repair keeps as many rounded units as possible and moves the rest to destinations
    with spare capacity (nearest first).  Raises InfeasibleError if no integer assignment fits.
    """
    pairs = np.asarray(pairs)
    capacity = np.asarray(capacity, float)
    n = len(totals) if n is None else n
    out = round_per_origin(pairs, x, totals, n)
    if len(out) == 0:
        return out
    inflow = np.bincount(pairs[:, 1], weights=out, minlength=n)
    if (inflow <= capacity + 1e-9).all():
        return out
    return _repair(pairs, out, np.rint(np.asarray(totals, float)), capacity, n, distance_km)


def _repair(pairs, rounded, totals, capacity, n, distance_km) -> np.ndarray:
    from scipy.optimize import linprog

    m = len(rounded)
    d = np.zeros(m) if distance_km is None else np.asarray(distance_km, float)
    dn = d / d.max() if d.max() > 0 else d
    # variables: keep (m) in [0, rounded], add (m) >= 0 ; y = keep + add
    cost = np.concatenate([-np.ones(m), 1.0 + 0.5 * dn])
    cols = np.arange(m)
    used = np.unique(pairs[:, 0])
    orow = np.searchsorted(used, pairs[:, 0])
    Bo = sp.csr_matrix((np.ones(m), (orow, cols)), shape=(len(used), m))
    finite = np.flatnonzero(np.isfinite(capacity))
    dpos = np.full(n, -1)
    dpos[finite] = np.arange(len(finite))
    keep = dpos[pairs[:, 1]] >= 0
    Bd = sp.csr_matrix((np.ones(int(keep.sum())), (dpos[pairs[keep, 1]], cols[keep])), shape=(len(finite), m))
    A_eq = sp.hstack([Bo, Bo]).tocsr()
    A_ub = sp.hstack([Bd, Bd]).tocsr()
    bounds = np.column_stack([np.zeros(2 * m), np.concatenate([rounded, np.full(m, np.inf)])])
    res = linprog(cost, A_ub=A_ub, b_ub=np.floor(capacity[finite] + 1e-9), A_eq=A_eq, b_eq=totals[used],
                  bounds=bounds, method="highs-ds")
    if res.status != 0:
        raise InfeasibleError("cannot round the low-battery moves to whole vehicles within plug capacity: "
                              f"{int(totals.sum())} EVs but not enough integer free plugs they can reach "
                              f"(HiGHS: {res.message}); raise queue_allowance or the low-battery reach")
    y = res.x[:m] + res.x[m:]
    out = np.rint(y).astype(np.int64)
    if np.abs(y - out).max() > 1e-6:  # pragma: no cover - TU guarantees integral vertices
        raise InfeasibleError("internal: the capacity repair returned a fractional solution")
    return out
