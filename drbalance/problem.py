"""The balancing core: nominal, demand-robust and distributionally robust EV balancing (MATH.md section 1).

One constraint set, three objectives (``mode``):

* ``nominal``: demand ``r = μ̂`` and supply ``ŝ`` at their point forecasts;
* ``demand_robust`` (the paper's robust baseline): worst case of the demand term over the *robust*
  demand set ``{r : (r - μ̂)^T Σ^-1 (r - μ̂) <= γ}``, i.e. ``μ̂^T t + sqrt(γ) ‖Σ^{1/2} t‖``;
* ``dr``: worst-case *expectation* over the DR mean ambiguity set of demand (the same closed form
  with the mean set's ``γ``), and supply at its per-component worst case
  ``s⁻ = max(μ̂_s - sqrt(γ_s Σ_ii), 0)`` over the DR supply mean set.

Decisions, on the sparse pair lists (never dense ``n x n``), for every slot ``k = 1..K``:
``X^k`` vacant EVs sent ``i -> j`` for pairs within ``reach_km``; ``Y^k`` low-battery EVs sent from
``i`` to a charger in ``j`` for pairs within ``low_battery_reach_km`` whose destination has plugs.

Constraints:

* conservation: ``Σ_j X^1_ij = V_i``, ``Σ_j Y^1_ij = L_i``; ``Σ_j X^{k+1}_ij = ((P^k)^T S^k + ŝ^k)_i`` with
  ``S^k_j = Σ_i X^k_ij`` (the point forecast of supply drives the dynamics; robustness enters only
  the objective -- a choice, MATH.md is silent); ``Σ_j Y^{k+1}_ij = l̂^k_i``, the forecast inflow of
  newly low-battery EVs (default 0);
* charging capacity in every region with plugs: ``F^k_j = p_j - o^k_j - Σ_i Y^k_ij >= ε - q_j``
  (``ε`` = ``plug_margin``, ``q`` = ``queue_allowance``).

Objective (summed over slots):
``w_km Σ W (X + Y)  +  w1 [demand term over t]  +  w2 Σ_j c_j u_j`` with epigraphs
``t_i >= (S_i + s_i + s_floor)^-α`` (rotated second-order cone for ``α = 1``, power cone otherwise) and
``u_j >= 1 / (F_j + q_j)``.  The norm ``‖Σ^{1/2} t‖`` is the norm of ``[F^T t; sqrt(D) ∘ t]`` for the
low-rank-plus-diagonal ``Σ = F F^T + diag(D)``: one second-order cone of size ``1 + r + nK``.

Normalisation (default on): ``w1 = β1 / N1`` and ``w2 = β2 / N2`` where ``N1``, ``N2`` are the nominal
supply-demand and charging terms at the *do-nothing* plan (everyone stays; EVs propagate with the
mobility matrices and the supply forecast); the do-nothing denominators are floored at 1 vehicle
(supply) and at ``ε`` free plugs (charging) so that the normalisers stay finite when doing nothing
would violate plug capacity.  ``w_km = 1 / (total EVs x mean distance of the reachable off-diagonal
pairs)``: the km driven if every EV moved once to a typical neighbour.  The normalisers use the
point forecasts only, so they do not depend on the mode or on ``γ`` (``γ = 0`` reproduces nominal).

Speed: the conic data ``(q, A, b, cones)`` is assembled once per *shape* (plug support, mode,
covariance rank, whether a low-battery inflow is forecast) with scipy.sparse; a re-solve only
recomputes ``q``, ``b`` and the covariance-factor values in ``A`` (same pattern) and calls Clarabel's
Python API on a persistent solver object.  ``later_reach_km`` shrinks the pair lists of slots 2..K
(the coupling of the slots is what makes the factorisation expensive; see docs/balancing.md for the
measured cost and its effect on the optimum).  The cvxpy model
(:meth:`BalancingProblem.solve_reference`) is an independent formulation used to check the fast path
and to reach MOSEK.

Where things are: this module holds :class:`BalancingProblem` (the public object: caching shapes,
calling the solver, building the :class:`~drbalance.state.Plan`); the pair lists and mobility are in
:mod:`drbalance.problem_pairs`, the validated per-solve numbers in :mod:`drbalance.problem_inputs`, the
named pre-solve infeasibility errors in :mod:`drbalance.problem_feasibility`, the weights and the
closed-form terms in :mod:`drbalance.problem_objective`, the conic layout, assembly and per-solve
vectors in :mod:`drbalance.problem_conic`, and the cvxpy model in :mod:`drbalance.problem_reference`.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from drbalance.config import MODES, BalancingConfig
from drbalance.errors import ConfigError, InfeasibleError
from drbalance.problem_conic import ConicStructure, a_values, build_structure, conic_vectors, unpack
from drbalance.problem_feasibility import make_elastic, precheck, shortage_hint
from drbalance.problem_inputs import SolveInputs, solve_inputs
from drbalance.problem_objective import objective_terms, objective_weights
from drbalance.problem_pairs import BalancingPairs, mobility_matrices
from drbalance.problem_reference import solve_reference_model
from drbalance import problem_shortfall as shortfall
from drbalance.problem_shortfall_inputs import shortfall_data
from drbalance.rounding import round_capacitated, round_per_origin
from drbalance.solvers import ClarabelOptions, ConicSolver, check_status, resolve_solver
from drbalance.state import FleetState, Forecasts, Plan


class BalancingProblem:
    """Balancing problem over a fixed region map; solve it for any state and forecast window.

    Parameters
    ----------
    regions : :class:`data_pipeline.regions.RegionMap` (``n`` regions, ``distance_km`` (n, n) in km).
    config : :class:`BalancingConfig`.
    mobility : None (identity: a vacant EV stays where it was balanced to), or the matrices ``P^k``
        for ``k = 1..K-1``: an array ``(K-1, n, n)`` or ``(K, n, n)`` (the last is unused), or a list of
        scipy.sparse ``(n, n)`` matrices; entry ``P_ij`` is the share of EVs vacant in ``i`` during slot
        ``k`` that are vacant in ``j`` at ``k + 1``.  Fixed per problem (it shapes the constraint matrix).

    Attributes
    ----------
    n : number of regions.
    pairs : the :class:`~drbalance.problem_pairs.BalancingPairs` of the region map; its ``pairs_x``
        (m_x, 2), ``Wx`` (m_x,) km, ``Bx_orig`` / ``Bx_dest`` (n, m_x), ``diag_x`` (n,), ``mean_pair_km``
        (km) and ``mobility`` (None or K-1 sparse (n, n)) are also attributes of the problem.
    queue_allowance : (n,) plug queue allowance per region, vehicles.

    The conic data is built lazily per shape (plug support, mode, covariance rank) and cached on the
    instance together with its solver object, so re-solves update numbers only.
    """

    def __init__(self, regions, config: BalancingConfig = BalancingConfig(), mobility=None, returns=None):
        self.regions = regions
        self.config = config
        self.n = int(regions.n)
        self.pairs = BalancingPairs.build(regions, config, mobility)
        # trip mobility of hires (model v2): K-1 sparse (n, n) matrices M_1..M_{K-1}, or None
        self.returns = None if returns is None else mobility_matrices(returns, config.horizon, self.n)
        self._returns_T = None if self.returns is None else [M.T.tocsr() for M in self.returns]
        n = self.n
        q = np.asarray(config.queue_allowance, float)
        if q.ndim == 1 and q.shape != (n,):
            raise ConfigError(f"queue_allowance has shape {q.shape}, expected ({n},)")
        self.queue_allowance = np.broadcast_to(q, (n,)).astype(float)
        self._structures: dict[tuple, ConicStructure] = {}

    # ------------------------------------------------------------------------------ pair lists
    @property
    def pairs_x(self) -> np.ndarray:
        """(m_x, 2) vacant-EV pairs ``(i, j)`` within ``reach_km`` (diagonal included)."""
        return self.pairs.pairs_x

    @property
    def Wx(self) -> np.ndarray:
        """(m_x,) distance of each vacant pair, km."""
        return self.pairs.Wx

    @property
    def Bx_orig(self) -> sp.csr_matrix:
        """(n, m_x) origin incidence of the vacant pairs."""
        return self.pairs.Bx_orig

    @property
    def Bx_dest(self) -> sp.csr_matrix:
        """(n, m_x) destination incidence of the vacant pairs."""
        return self.pairs.Bx_dest

    @property
    def diag_x(self) -> np.ndarray:
        """(n,) index into ``pairs_x`` of each region's stay pair."""
        return self.pairs.diag_x

    @property
    def mean_pair_km(self) -> float:
        """Mean distance of the reachable off-diagonal pairs, km."""
        return self.pairs.mean_pair_km

    @property
    def mobility(self) -> list | None:
        """None (identity) or the K-1 validated sparse (n, n) mobility matrices."""
        return self.pairs.mobility

    def _structure(self, plugs: np.ndarray, mode: str, rank: int, inflow: bool) -> ConicStructure:
        robust = mode != "nominal"
        key = (np.flatnonzero(plugs > 0).tobytes(), robust, rank if robust else -1, bool(inflow))
        if key not in self._structures:
            self._structures[key] = build_structure(self.pairs, self.config, plugs, robust, rank, key, bool(inflow))
        return self._structures[key]

    def _prepare(self, state: FleetState, forecasts: Forecasts, mode: str) -> tuple[SolveInputs, ConicStructure]:
        """Validated inputs and the (cached) structure of their shape."""
        inp = solve_inputs(state, forecasts, mode, self.config, self.n, self.queue_allowance)
        st = self._structure(state.plugs, mode, inp.rank, forecasts.low_battery_inflow is not None)
        return inp, st

    # ------------------------------------------------------------------------------ solving
    def solve(self, state: FleetState, forecasts: Forecasts, mode: str | None = None) -> Plan:
        """Solve for ``state`` and the forecast window; returns a :class:`Plan` (first slot rounded).

        ``mode`` overrides ``config.mode`` for this call.  Raises DataError (bad shapes, NaN, negative
        counts, missing sets), InfeasibleError (named region), UnboundedError, SolverError, LicenceError.
        """
        t_start = time.perf_counter()
        mode = mode or self.config.mode
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        backend = resolve_solver(self.config.solver)
        if self.config.objective == "shortfall":
            return self._solve_shortfall(state, forecasts, mode, backend, t_start)
        if self.config.backend == "cvxpy" or backend == "mosek":
            return self.solve_reference(state, forecasts, mode=mode, solver=backend, _t_start=t_start)
        cfg = self.config
        inp, st = self._prepare(state, forecasts, mode)
        inp, elastic = make_elastic(self.pairs, cfg, st, inp)
        precheck(self.pairs, cfg, st, inp, self.regions.names)
        w_km, w1, w2, norms = objective_weights(self.pairs, cfg, st, inp)
        q, b, constant = conic_vectors(self.pairs, cfg, st, inp, w_km, w1, w2)
        if st.solver is None or st.solver.backend != backend:
            st.solver = ConicSolver(st.A, st.cones, backend, ClarabelOptions(cfg.tol, cfg.tol, cfg.tol),
                                    scs_eps=cfg.scs_eps)
        if st.robust:
            st.solver.set_A_values(a_values(st, inp.factor, inp.diag))
        res = st.solver.solve(q, b)
        status = check_status(res.status, res.solver, shortage_hint(cfg), cfg.accept_inaccurate)
        mX, mY = len(self.pairs_x), len(st.pairs_y)
        X, Y = unpack(st, res.x, mX)
        diag = dict(inp.diagnostics, iterations=res.iterations, n_pairs_x=mX, n_pairs_y=mY, n_variables=st.n_var,
                    n_constraints=st.A.shape[0], **norms, **elastic)
        return self._plan(st, inp, X, Y, mode, (w_km, w1, w2), res.objective + constant, res.solver, status,
                          res.solve_seconds, t_start, diag)

    # ------------------------------------------------------------------------------ model v2
    def _shortfall_structure(self, state: FleetState, dat, mode: str, inflow: bool):
        known = state.incoming is not None
        n_scen = 0 if dat.scenarios is None else len(dat.scenarios)
        support = mode == "dr" and known
        returns = self.returns if known and self.config.returns == "exact" else None
        key = ("shortfall", np.flatnonzero(state.plugs > 0).tobytes(), mode, n_scen, support, returns is not None,
               bool(inflow))
        if key not in self._structures:
            self._structures[key] = shortfall.build(self.pairs, self.config, state.plugs, mode, n_scen, support,
                                                    returns, bool(inflow), key)
        return self._structures[key]

    def _solve_shortfall(self, state: FleetState, forecasts: Forecasts, mode: str, backend: str, t_start: float) -> Plan:
        """Model v2 (:mod:`drbalance.problem_shortfall`): always feasible, one conic solve."""
        cfg = self.config
        dat = shortfall_data(state, forecasts, mode, cfg, self.n, self.queue_allowance)
        eff = dat.diagnostics["effective_mode"]   # dr without any ambiguity left solves as its nominal twin
        st = self._shortfall_structure(state, dat, eff, forecasts.low_battery_inflow is not None)
        q, b, slope = shortfall.vectors(self.pairs, cfg, st, dat, self._returns_T)
        if backend == "mosek" or cfg.backend == "cvxpy":
            from drbalance.problem_reference import solve_conic_cvxpy  # lazy (b): cvxpy only for MOSEK / checks

            res = solve_conic_cvxpy(st.A if slope is None else _with_values(st.A, shortfall.a_values(st, slope)),
                                    st.cones, q, b, backend, cfg.accept_inaccurate)
        else:
            if st.solver is None or st.solver.backend != backend:
                st.solver = ConicSolver(st.A, st.cones, backend, ClarabelOptions(cfg.tol, cfg.tol, cfg.tol),
                                        scs_eps=cfg.scs_eps)
            if slope is not None:
                st.solver.set_A_values(shortfall.a_values(st, slope))
            res = st.solver.solve(q, b)
        # model v2 accepts a reduced-accuracy optimum (Clarabel "AlmostSolved"): its moves are rounded per origin
        # to the exact vehicle counts anyway, and 1e-7 is far below a vehicle; the status says so
        status = check_status(res.status, res.solver, "internal: model v2 is always feasible; report this instance",
                              True)
        K, n = cfg.horizon, self.n
        sol = shortfall.unpack(st, res.x, len(self.pairs_x), K, n)
        X, Y = np.maximum(sol["X"], 0.0), np.maximum(sol["Y"], 0.0)
        moves_x = round_per_origin(self.pairs_x, X[0], dat.V, n)
        routed = np.bincount(st.pairs_y[:, 0], weights=Y[0], minlength=n) if len(st.pairs_y) else np.zeros(n)
        totals = np.minimum(np.floor(routed + 0.5), dat.L[0])
        cap = np.full(n, np.inf)
        cap[st.plug] = np.maximum(np.floor(dat.p[st.plug] - dat.occ[0, st.plug] + dat.qa[st.plug] + 1e-9), 0)
        try:
            moves_y = round_capacitated(st.pairs_y, Y[0], totals, cap, n, st.Wy)
        except InfeasibleError:   # the relaxed plan used the elastic capacity: queue beyond the allowance
            moves_y = round_capacitated(st.pairs_y, Y[0], totals, np.full(n, np.inf), n, st.Wy)
        idle = float((X @ self.pairs.Wx).sum() + (Y @ st.Wy).sum())
        A = sol["A"]
        U = sol["U"]
        u_nom = np.maximum(dat.nominal - A, 0.0)
        lam = cfg.lost_request_km * shortfall.SLOT_DISCOUNT ** np.arange(K)
        no_pair = np.ones(n, bool)
        no_pair[st.y_origins] = False   # low-battery EVs with no charger pair at all are stranded by construction
        stranded = float(sol["strand"].sum() + dat.L[0][no_pair].sum())
        over = float(sol["over"].sum())
        terms = {"objective": float(res.objective), "idle_km": idle, "expected_unserved": float(U.sum()),
                 "expected_unserved_first_slot": float(U[0].sum()), "expected_unserved_nominal":
                 float(u_nom.sum()),
                 "charging_queue": float(sol["Q"].sum()), "stranded": stranded, "over_capacity": over,
                 "robust_premium": float((lam[:, None] * (U - u_nom)).sum()),
                 "weighted_unserved": float((lam[:, None] * U).sum())}
        S = np.zeros((K, n))
        for k in range(K):
            S[k] = np.bincount(self.pairs_x[:, 1], weights=X[k], minlength=n)
        F = np.full((K, n), np.nan)
        F[:, st.plug] = dat.p[None, st.plug] - dat.occ[:, st.plug] - (st.By_dest @ Y.T).T
        diag = dict(dat.diagnostics, iterations=res.iterations, n_pairs_x=len(self.pairs_x), n_pairs_y=len(st.pairs_y),
                    n_variables=st.n_var, n_constraints=st.A.shape[0], objective_kind="shortfall",
                    stranded=stranded, over_capacity=over, slack=stranded + over, solver_objective=float(res.objective),
                    available=A, expected_unserved=U, expected_hires=np.maximum(dat.hires - U, 0.0))
        return Plan(mode=mode, pairs_x=self.pairs_x, pairs_y=st.pairs_y, X=X, Y=Y, moves_x=moves_x, moves_y=moves_y,
                    supply_after=S, free_plugs=F, objective=float(res.objective), terms=terms, solver=res.solver,
                    status=status, solve_seconds=float(res.solve_seconds),
                    total_seconds=time.perf_counter() - t_start, diagnostics=diag)

    def solve_reference(self, state: FleetState, forecasts: Forecasts, mode: str | None = None,
                        solver: str | None = None, accept_inaccurate: bool | None = None,
                        _t_start: float | None = None) -> Plan:
        """Solve the same problem modelled independently in cvxpy (rebuilt per call, constants only).

        Slower than :meth:`solve`; used to check the fast path and to reach MOSEK.  ``solver`` defaults
        to ``config.solver`` and is always passed to cvxpy explicitly; ``accept_inaccurate`` defaults to
        ``config.accept_inaccurate`` (cvxpy's canonicalisation of ``inv_pos`` is numerically harder for
        Clarabel than the direct conic data, and sometimes ends "almost solved").  The model is
        :func:`drbalance.problem_reference.solve_reference_model`.
        """
        t_start = time.perf_counter() if _t_start is None else _t_start
        mode = mode or self.config.mode
        inp, st = self._prepare(state, forecasts, mode)
        precheck(self.pairs, self.config, st, inp, self.regions.names)
        w_km, w1, w2, norms = objective_weights(self.pairs, self.config, st, inp)
        ref = solve_reference_model(self.pairs, self.config, st, inp, mode, (w_km, w1, w2), solver, accept_inaccurate)
        diag = dict(inp.diagnostics, iterations=ref.iterations, n_pairs_x=len(self.pairs_x), n_pairs_y=len(st.pairs_y),
                    backend="cvxpy", **norms)
        return self._plan(st, inp, ref.X, ref.Y, mode, (w_km, w1, w2), ref.objective, ref.solver, ref.status,
                          ref.solve_seconds, t_start, diag)

    def _plan(self, st, inp, X, Y, mode, weights, objective, solver, status, solve_s, t_start, diag) -> Plan:
        """The :class:`Plan` of relaxed moves ``X`` (K, m_x), ``Y`` (K, m_y): terms, rounded first slot,
        supply after balancing (K, n) and free plugs (K, n; NaN where no plugs)."""
        K, n = self.config.horizon, self.n
        X = np.maximum(X, 0.0)
        Y = np.maximum(Y, 0.0)
        terms = objective_terms(self.pairs, self.config, st, inp, X, Y, mode, weights)
        moves_x = round_per_origin(self.pairs_x, X[0], inp.V, n)
        cap = np.full(n, np.inf)
        # integer capacity: every routed EV gets a plug or an allowed queue spot (F + q >= 0); the margin ε
        # is a device of the relaxed problem (it keeps 1/F finite), not a physical limit
        cap[st.plug] = np.floor(inp.p[st.plug] - inp.occ[0, st.plug] + inp.qa[st.plug] + 1e-9)
        moves_y = round_capacitated(st.pairs_y, Y[0], inp.L[0], cap, n, st.Wy)
        S = (self.Bx_dest @ X.T).T
        F = np.full((K, n), np.nan)
        F[:, st.plug] = inp.p[None, st.plug] - inp.occ[:, st.plug] - (st.By_dest @ Y.T).T
        diag = dict(diag, solver_objective=float(objective))
        return Plan(mode=mode, pairs_x=self.pairs_x, pairs_y=st.pairs_y, X=X, Y=Y, moves_x=moves_x, moves_y=moves_y,
                    supply_after=S, free_plugs=F, objective=terms["objective"], terms=terms, solver=solver,
                    status=status, solve_seconds=float(solve_s), total_seconds=time.perf_counter() - t_start,
                    diagnostics=diag)

    # ------------------------------------------------------------------------------ evaluation
    def evaluate(self, X: np.ndarray, Y: np.ndarray, state: FleetState, forecasts: Forecasts,
                 mode: str | None = None) -> dict:
        """Objective terms of a plan ``X`` (K, m_x), ``Y`` (K, m_y) in closed form (no solver).

        Returns ``objective`` (weighted, as minimised in ``mode``), ``nominal_objective`` (the nominal
        mode's objective at the same plan, same weights), raw ``idle_km``, ``supply_demand`` (nominal
        ``Σ μ̂ (S + ŝ)^-α``), ``supply_demand_mode`` (the mode's worst case), ``charging`` (``Σ c / (F + q)``),
        ``robust_premium`` (``objective - nominal_objective``) and the weighted contributions.
        """
        mode = mode or self.config.mode
        inp, st = self._prepare(state, forecasts, mode)
        w = objective_weights(self.pairs, self.config, st, inp)[:3]
        return objective_terms(self.pairs, self.config, st, inp, np.asarray(X, float), np.asarray(Y, float), mode, w)

    def do_nothing(self, state: FleetState, forecasts: Forecasts) -> tuple[np.ndarray, np.ndarray]:
        """The do-nothing vacant plan ``X`` (K, m_x) (everyone stays, propagated with the supply forecast);
        low-battery EVs are not representable when their region has no plug, so only ``X`` is returned
        with a zero ``Y`` of the right shape (use it for the idle/supply terms)."""
        K = self.config.horizon
        S0 = np.zeros((K, self.n))
        S0[0] = state.vacant
        for k in range(1, K):
            S0[k] = self.pairs.propagate(k - 1, S0[k - 1]) + np.maximum(forecasts.supply[k - 1], 0)
        X = np.zeros((K, len(self.pairs_x)))
        X[:, self.diag_x] = S0
        st = self._structure(state.plugs, "nominal", 0, forecasts.low_battery_inflow is not None)
        return X, np.zeros((K, len(st.pairs_y)))


def _with_values(A: sp.csc_matrix, data: np.ndarray) -> sp.csc_matrix:
    return sp.csc_matrix((data, A.indices, A.indptr), shape=A.shape)


def with_mode(config: BalancingConfig, mode: str) -> BalancingConfig:
    """A copy of ``config`` with another mode."""
    return replace(config, mode=mode)
