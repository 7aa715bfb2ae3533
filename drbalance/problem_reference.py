"""The independent cvxpy model of the balancing problem (the reference, and the route to MOSEK).

:func:`solve_reference_model` states the same problem as :mod:`drbalance.problem_conic` directly in
cvxpy, from the same pair lists, inputs and weights but none of the conic layout: per-slot move
variables, conservation written with the incidence matrices, ``inv_pos`` / ``power`` epigraphs and the
robust norm as ``cp.norm``.  It is rebuilt per call with constants only (no ``Parameter``: the
DPP path exploded in memory at city scale, docs/architecture.md), so it is slow and exists to check the
fast path and to reach MOSEK.  cvxpy is imported inside the function: only this path needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drbalance.config import BalancingConfig
from drbalance.problem_conic import ConicStructure
from drbalance.problem_feasibility import shortage_hint
from drbalance.problem_inputs import SolveInputs
from drbalance.problem_pairs import BalancingPairs
from drbalance.solvers import ClarabelOptions, resolve_solver, solve_cvxpy


@dataclass(frozen=True)
class ReferenceSolution:
    """What the cvxpy model returns.

    Attributes
    ----------
    X : (K, m_x) relaxed vacant moves over the full pair list (0 where a slot has no variable).
    Y : (K, m_y) relaxed low-battery moves.
    objective : the optimal value as cvxpy reports it (weighted, in the solved mode).
    solver : the backend used (``clarabel``, ``scs`` or ``mosek``).
    status : mapped solver status (``optimal`` or ``optimal_inaccurate``).
    solve_seconds : solver time, s.
    iterations : solver iterations (0 when the backend does not report them).
    """

    X: np.ndarray
    Y: np.ndarray
    objective: float
    solver: str
    status: str
    solve_seconds: float
    iterations: int


def solve_reference_model(pairs: BalancingPairs, config: BalancingConfig, st: ConicStructure, inp: SolveInputs,
                          mode: str, weights: tuple[float, float, float], solver: str | None = None,
                          accept_inaccurate: bool | None = None) -> ReferenceSolution:
    """Build and solve the cvxpy model for ``mode`` with ``weights = (w_km, w1, w2)``.

    ``st`` supplies the pair lists and which pairs have a variable in each slot; ``inp`` the validated
    numbers (already pre-checked).  ``solver`` defaults to ``config.solver`` and is always passed to
    cvxpy explicitly; ``accept_inaccurate`` defaults to ``config.accept_inaccurate``.  Raises
    InfeasibleError, UnboundedError, SolverError or LicenceError via :func:`drbalance.solvers.solve_cvxpy`.
    """
    import cvxpy as cp

    cfg = config
    K, n = cfg.horizon, pairs.n
    w_km, w1, w2 = weights
    mX, mY = len(pairs.pairs_x), len(st.pairs_y)
    X = [cp.Variable(len(st.ax[k]), nonneg=True) for k in range(K)]
    Y = [cp.Variable(len(st.ay[k]), nonneg=True) if len(st.ay[k]) else None for k in range(K)]
    Bo = [pairs.Bx_orig[:, st.ax[k]] for k in range(K)]
    Bd = [pairs.Bx_dest[:, st.ax[k]] for k in range(K)]
    cons = [Bo[0] @ X[0] == inp.V]
    for k in range(1, K):
        Sk = Bd[k - 1] @ X[k - 1]
        prev = Sk if pairs.mobility is None else pairs.mobility[k - 1].T @ Sk
        cons.append(Bo[k] @ X[k] == prev + inp.s_hat[k - 1])
    free = inp.p[None, st.plug] - inp.occ[:, st.plug] + inp.qa[None, st.plug]
    charge_terms, idle = [], 0
    for k in range(K):
        idle = idle + w_km * (pairs.Wx[st.ax[k]] @ X[k])
        if Y[k] is not None:
            idle = idle + w_km * (st.Wy[st.ay[k]] @ Y[k])
            cons.append(st.By_orig[:, st.ay[k]] @ Y[k] == inp.L[k, st.y_origins])
            arrivals = st.By_dest[:, st.ay[k]] @ Y[k]
            if len(st.plug):
                cons.append(free[k] - arrivals >= cfg.plug_margin)
        else:
            arrivals = np.zeros(len(st.plug))  # no moves: F >= margin holds (pre-checked)
        if len(st.plug):
            charge_terms.append(inp.c[k, st.plug] @ cp.inv_pos(free[k] - arrivals))
    S = cp.hstack([Bd[k] @ X[k] for k in range(K)])  # slot-major (K n,)
    den = S + (inp.s_cone + cfg.supply_floor).ravel()
    t = cp.Variable(K * n)  # epigraph: the norm term below mixes signs, so t must be a variable (DCP)
    cons.append(t >= (cp.inv_pos(den) if cfg.alpha == 1.0 else cp.power(den, -cfg.alpha)))
    sd = inp.mu.ravel() @ t
    if mode != "nominal":
        sd = sd + np.sqrt(inp.gamma) * cp.norm(cp.hstack([inp.factor.T @ t, cp.multiply(np.sqrt(inp.diag), t)]), 2)
    obj = idle + w1 * sd + (w2 * cp.sum(cp.hstack(charge_terms)) if charge_terms else 0)
    prob = cp.Problem(cp.Minimize(obj), cons)
    backend = resolve_solver(solver or cfg.solver)
    accept = cfg.accept_inaccurate if accept_inaccurate is None else accept_inaccurate
    status, solve_s, iters = solve_cvxpy(prob, backend, shortage_hint(cfg), accept,
                                         cfg.scs_eps, ClarabelOptions(cfg.tol, cfg.tol, cfg.tol))
    Xv, Yv = np.zeros((K, mX)), np.zeros((K, mY))
    for k in range(K):
        Xv[k, st.ax[k]] = X[k].value
        if Y[k] is not None:
            Yv[k, st.ay[k]] = Y[k].value
    return ReferenceSolution(Xv, Yv, float(prob.value), backend, status, solve_s, iters)


def solve_conic_cvxpy(A, cones, q, b, solver: str, accept_inaccurate: bool = False):
    """Solve ``min q^T x  s.t.  b - A x in cones`` (a :class:`~drbalance.solvers.ConeSpec` with zero,
    nonnegative and 3-dimensional second-order cones) through cvxpy with ``solver`` (the route of model v2
    to MOSEK and to any cvxpy backend).  Returns a :class:`~drbalance.solvers.ConicResult`."""
    import cvxpy as cp  # lazy (b): only this path needs it

    from drbalance.solvers import ConicResult

    x = cp.Variable(A.shape[1])
    s = b - A @ x
    z, nn, k = cones.zero, cones.nonneg, cones.soc3
    cons = []
    if z:
        cons.append(s[:z] == 0)
    if nn:
        cons.append(s[z:z + nn] >= 0)
    if k:
        sc = cp.reshape(s[z + nn:z + nn + 3 * k], (3, k), order="F")
        cons.append(cp.SOC(sc[0], sc[1:], axis=0))
    prob = cp.Problem(cp.Minimize(q @ x), cons)
    status, secs, iters = solve_cvxpy(prob, solver, "internal: model v2 is always feasible; report this instance",
                                      accept_inaccurate)
    return ConicResult(np.asarray(x.value), float(prob.value), status, secs, iters, resolve_solver(solver))
