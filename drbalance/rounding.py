"""Integer counts from fractional ones by largest-remainder rounding (MATH.md section 1, receding horizon).

One rule, used everywhere a share must become whole vehicles or plugs: every entry gets ``floor(x)``;
the units still missing from a total go, one each, to the entries with the largest fractional parts,
ties to the lower index.  Totals are kept exactly and no entry moves by a whole unit or more.

* :func:`largest_remainder`: integers proportional to weights summing to one total (plug siting,
  fleet mixes, target distributions).
* :func:`round_per_origin`: the same rule applied per origin to relaxed moves on a pair list, each
  origin's moves summing to the vehicles it holds.
* :func:`round_capacitated`: per-origin rounding, then, only if some destination now exceeds its integer
  capacity (plug capacity for low-battery EVs), a repair that moves as few units as possible to the
  origins' nearest destinations with spare capacity.  The repair is a small transportation LP
  (bipartite network, so totally unimodular: its vertex solutions are integral), solved with HiGHS'
  dual simplex; if no integer assignment exists it raises :class:`InfeasibleError`.

All vectorised over entries (no Python loop over pairs or vehicles).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from drbalance.errors import DataError, InfeasibleError

SNAP = 1e-7  # relaxed values this close to an integer count as that integer (solver tolerance)


def _round_groups(x: np.ndarray, group: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """The largest-remainder rule on groups: ``floor(x)``, then ``totals_g - Σ_g floor`` extra units in
    each group ``g`` to its entries with the largest fractional parts (ties: lower index first).

    ``x`` (m,) non-negative floats, ``group`` (m,) int in ``0..len(totals)-1``, ``totals`` int64.
    Returns (m,) int64; a group short of entries (or over its total already) is left as it is, the
    callers check the sums.
    """
    m = len(x)
    fl = np.floor(x)
    frac = x - fl
    deficit = totals - np.rint(np.bincount(group, weights=fl, minlength=len(totals))).astype(np.int64)
    order = np.lexsort((-frac, group))  # by group, then largest fractional part first (stable: lower index)
    sg = group[order]
    rank = np.arange(m) - np.searchsorted(sg, sg, side="left")
    out = fl.astype(np.int64)
    out[order[rank < deficit[sg]]] += 1
    return out


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integers ``>= 0`` proportional to ``weights`` summing to ``total`` (ties to the lower index).

    Parameters
    ----------
    weights : (m,) finite non-negative weights with a positive sum (any unit; only shares matter).
    total : whole number ``>= 0`` of units to share out (vehicles, plugs).

    Returns (m,) int64 counts ``c`` with ``Σ c = total`` and ``|c - total * w / Σ w| < 1``.
    Raises DataError for weights that are not a non-empty vector of finite non-negative numbers with
    a positive sum, or a total that is not a whole number ``>= 0``.
    """
    w = np.asarray(weights, float)
    if w.ndim != 1 or len(w) == 0 or not np.isfinite(w).all() or (w < 0).any():
        raise DataError(f"largest-remainder weights must be a non-empty vector of finite numbers >= 0, "
                        f"got shape {w.shape}")
    if not w.sum() > 0:
        raise DataError("largest-remainder weights are all zero; there is nothing to share the total by")
    if int(total) != total or total < 0:
        raise DataError(f"largest-remainder total must be a whole number >= 0, got {total}")
    share = w / w.sum() * total
    return _round_groups(share, np.zeros(len(w), np.int64), np.array([int(total)], np.int64))


def round_per_origin(pairs: np.ndarray, x: np.ndarray, totals: np.ndarray, n: int | None = None) -> np.ndarray:
    """Largest-remainder rounding of relaxed moves per origin (the rule of :func:`largest_remainder`).

    Parameters
    ----------
    pairs : (m, 2) int ``(origin, destination)`` region positions.
    x : (m,) relaxed non-negative moves (tiny negatives from solver tolerance are clipped; values within
        ``SNAP`` of an integer count as that integer).
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
    orig = pairs[:, 0]
    out = _round_groups(x, orig, tot)
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
    from scipy.optimize import linprog  # lazy (b): ~0.4 s on top of `import drbalance.problem`, rare repair path

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
