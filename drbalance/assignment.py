"""Which vehicle takes which move: the one assignment rule of the simulator and of embedding hosts.

Region-level moves (``origin -> destination`` counts) become per-vehicle orders by one rule, used by
:class:`drbalance.sim.Simulator` when it applies a policy's moves and by
:func:`drbalance.embedding.assign_vehicles` for a host's fleet.  In each origin region:

* **vacant** moves go to the vehicles with the **most charge first**, the **longest** moves being
  served first (the fullest battery takes the longest drive);
* **charge** moves go to the vehicles with the **least charge first**, the **nearest** chargers being
  served first (the emptiest battery takes the shortest drive).

Ties break on the moves' row order, then on the candidates' order.  "Charge" is whatever the caller
ranks by: energy in kWh in the simulator (mixed battery sizes), state of charge in a host's frame.
"""

from __future__ import annotations

import numpy as np

from drbalance.errors import DataError

KINDS = ("vacant", "charge")


def group_rank(keys: np.ndarray) -> np.ndarray:
    """Rank of each element within its run of equal ``keys`` (``keys`` must be sorted): 0, 1, 2, ..."""
    keys = np.asarray(keys)
    if len(keys) == 0:
        return np.zeros(0, np.int64)
    start = np.r_[True, keys[1:] != keys[:-1]]
    first = np.flatnonzero(start)
    run = np.cumsum(start) - 1
    return np.arange(len(keys)) - first[run]


def assign(kind: str, origin: np.ndarray, km: np.ndarray, cand_region: np.ndarray,
           cand_charge: np.ndarray, what: str = "suitable vehicles") -> tuple[np.ndarray, np.ndarray]:
    """Match vehicles to moves by the module's rule.

    Parameters
    ----------
    kind : ``"vacant"`` or ``"charge"``.
    origin : (m,) int origin region of each vehicle-move (one row per vehicle to move).
    km : (m,) length of each move (km), e.g. ``distance_km[origin, destination]``.
    cand_region : (c,) int region of each candidate vehicle.
    cand_charge : (c,) energy (kWh) or state of charge of each candidate (ranks them).
    what : how the error message calls the candidates.

    Returns
    -------
    ``(order, chosen)``: ``order`` (m,) the rows of the moves in assignment order (by origin, then
    longest/nearest first, then row), and ``chosen`` (m,) the candidate position taking move row
    ``order[i]``.  Raises :class:`DataError` naming the first region with fewer candidates than moves.
    """
    if kind not in KINDS:
        raise DataError(f"kind must be one of {KINDS}, got {kind!r}")
    origin = np.asarray(origin, np.int64)
    km = np.asarray(km, float)
    cand_region = np.asarray(cand_region, np.int64)
    cand_charge = np.asarray(cand_charge, float)
    sign = -1.0 if kind == "vacant" else 1.0  # vacant: longest moves and fullest batteries first
    order = np.lexsort((np.arange(len(origin)), sign * km, origin))
    o = origin[order]
    cand = np.arange(len(cand_region))
    ranked = cand[np.lexsort((cand, sign * cand_charge, cand_region))]
    regions_sorted = cand_region[ranked]
    first = np.searchsorted(regions_sorted, o, side="left")
    have = np.searchsorted(regions_sorted, o, side="right") - first
    rank = group_rank(o)
    short = rank >= have
    if short.any():
        i = int(o[short][0])
        need = int((o == i).sum())
        raise DataError(f"{kind} moves take {need} vehicles out of region {i} but only "
                        f"{int(have[short][0])} {what} are there ({len(np.unique(o[short]))} region(s) short)")
    return order, ranked[first + rank]
