"""Named infeasibility of a balancing instance, found before any solver is called.

:func:`precheck` raises :class:`~drbalance.errors.InfeasibleError` naming the region and the fix for
the instances that cannot be solved region by region: low-battery EVs with no charger within
``low_battery_reach_km``, plugs occupied beyond the margin and queue allowance, more low-battery EVs
than free plugs in the whole city, and demand with no reachable supply.  What these per-region checks
cannot see (a regional plug shortage) is left to the solver, whose infeasibility status carries
:func:`shortage_hint`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from drbalance.config import BalancingConfig
from drbalance.errors import InfeasibleError
from drbalance.problem_conic import ConicStructure
from drbalance.problem_inputs import SolveInputs
from drbalance.problem_pairs import BalancingPairs


def precheck(pairs: BalancingPairs, config: BalancingConfig, st: ConicStructure, inp: SolveInputs,
             names) -> None:
    """Raise a named InfeasibleError for an instance that cannot be solved; ``names`` (n,) region names."""
    cfg = config
    K, n = cfg.horizon, pairs.n
    names = np.asarray(names)
    has_y = np.zeros(n, bool)
    has_y[st.y_origins] = True
    for k in range(K):
        bad = np.flatnonzero((inp.L[k] > 0) & ~has_y)
        if len(bad):
            i = bad[np.argmax(inp.L[k][bad])]
            when = "now" if k == 0 else f"in slot {k + 1} (forecast inflow)"
            raise InfeasibleError(
                f"{inp.L[k][i]:g} low-battery EVs in region {i} ({names[i]}) {when} have no charger within "
                f"{cfg.low_battery_reach_km:g} km ({len(bad)} region(s) affected); add plugs nearby or raise "
                "low_battery_reach_km")
    cap = inp.p[None, :] - inp.occ + inp.qa[None, :] - cfg.plug_margin  # (K, n)
    for k in range(K):
        over = np.flatnonzero((inp.p > 0) & (cap[k] < -1e-12))
        if len(over):
            j = over[np.argmin(cap[k][over])]
            raise InfeasibleError(
                f"region {j} ({names[j]}) has {inp.occ[k, j]:g} occupied or queued of {inp.p[j]:g} plugs in slot "
                f"{k + 1}: free plugs cannot stay >= {cfg.plug_margin:g}; set queue_allowance >= "
                f"{-(cap[k, j] - inp.qa[j]):g} for it or lower plug_margin")
        total = float(inp.L[k].sum())
        avail = float(np.maximum(cap[k], 0)[st.plug].sum())
        if total > avail + 1e-9:
            raise InfeasibleError(f"{total:g} low-battery EVs in slot {k + 1} but only {avail:g} free plugs "
                                  "(minus the margin) in the whole city; raise queue_allowance or add plugs")
    # supply support: can S^k_i + s^k_i be positive?
    pos = inp.V > 0
    for k in range(K):
        s_support = np.asarray(st.reach_T[k] @ pos.astype(float) > 0).ravel()
        ok = s_support | (inp.s_cone[k] + cfg.supply_floor > 0)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise InfeasibleError(
                f"demand in region {i} ({names[i]}) has no reachable supply in slot {k + 1}: no vacant EV within "
                f"{cfg.reach:g} km and a zero supply forecast ({int((~ok).sum())} region(s)); set supply_floor > 0 "
                "or widen reach_km")
        nxt = pairs.propagate(k, s_support.astype(float)) if k < K - 1 else None
        if nxt is not None:
            pos = (np.asarray(nxt).ravel() > 0) | (inp.s_hat[k] > 0)


def shortage_hint(config: BalancingConfig) -> str:
    """The fix to print when a solver reports the problem infeasible (see the module docstring)."""
    return ("the low-battery EVs probably exceed the free plugs reachable within "
            f"{config.low_battery_reach_km:g} km "
            "of them (a regional shortage the per-region pre-checks cannot see); raise queue_allowance, "
            "low_battery_reach_km, or add plugs")


def make_elastic(pairs: BalancingPairs, config: BalancingConfig, st: ConicStructure, inp: SolveInputs) -> tuple:
    """The ratio model's state-driven limits made elastic before solving (model v2 prices them instead).

    Returns ``(inp, report)``: plugs occupied beyond ``plugs + queue_allowance - plug_margin`` are counted as
    ``over_capacity`` and the region is taken as full (no new arrival); low-battery EVs with no charger pair,
    or beyond what the free plugs within their reach can take (a transportation LP, HiGHS: integral), are
    ``stranded`` (left out of ``Y``; the controller sends them to the nearest plug).  One stranded EV no
    longer cancels the vacant moves.
    """
    from scipy.optimize import linprog  # lazy (b): only when low-battery EVs exceed the reachable free plugs

    cfg = config
    K, n = cfg.horizon, pairs.n
    full = inp.p[None, :] + inp.qa[None, :] - cfg.plug_margin
    over = np.where(inp.p[None, :] > 0, np.maximum(inp.occ - full, 0.0), 0.0)
    occ = inp.occ - over
    L = inp.L.copy()
    has_y = np.zeros(n, bool)
    has_y[st.y_origins] = True
    stranded = float(L[:, ~has_y].sum())
    L[:, ~has_y] = 0.0
    py = st.pairs_y
    for k in st.y_slots:
        cap = np.where(inp.p > 0, np.maximum(np.floor(inp.p - occ[k] + inp.qa - cfg.plug_margin + 1e-9), 0.0), 0.0)
        if L[k].sum() <= 0 or not len(py) or _fits(py, L[k], cap):
            continue
        m = len(py)   # max flow: as many low-battery EVs as the free plugs within their reach take
        A_o = sp.csr_matrix((np.ones(m), (py[:, 0], np.arange(m))), shape=(n, m))
        A_d = sp.csr_matrix((np.ones(m), (py[:, 1], np.arange(m))), shape=(n, m))
        res = linprog(-np.ones(m), A_ub=sp.vstack([A_o, A_d]), b_ub=np.concatenate([L[k], cap]),
                      bounds=(0, None), method="highs")
        routed = np.rint(A_o @ res.x) if res.status == 0 else np.zeros(n)
        stranded += float((L[k] - routed).sum())
        L[k] = np.minimum(routed, L[k])
    now = float(over[0].sum())   # plugs over capacity now (later slots repeat the state's occupancy)
    report = {"stranded": stranded, "over_capacity": now, "slack": stranded + now}
    return dataclasses.replace(inp, L=L, occ=occ), report


def _fits(py: np.ndarray, L: np.ndarray, cap: np.ndarray) -> bool:
    """Greedy check that every low-battery EV finds a plug (nearest-pair order); False means: solve the LP."""
    left = cap.copy()
    for i in np.flatnonzero(L > 0):
        need = L[i]
        for j in py[py[:, 0] == i, 1]:
            take = min(need, left[j])
            left[j] -= take
            need -= take
            if need <= 0:
                break
        if need > 0:
            return False
    return True
