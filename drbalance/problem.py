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
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from drbalance.config import MODES, BalancingConfig
from drbalance.errors import ConfigError, DataError, InfeasibleError
from drbalance.solvers import ClarabelOptions, ConeSpec, ConicSolver, check_status, resolve_solver, solve_cvxpy
from drbalance.state import FleetState, Forecasts, Plan

@dataclass
class _Structure:
    """Everything fixed for one shape: pair lists, incidence matrices, variable layout, A pattern."""

    key: tuple
    robust: bool
    rank: int
    plug: np.ndarray  # (nP,) region positions with plugs
    pairs_y: np.ndarray
    y_origins: np.ndarray  # (nYo,) regions with at least one Y pair
    By_orig: sp.csr_matrix  # (nYo, mY)
    By_dest: sp.csr_matrix  # (nP, mY)
    Wy: np.ndarray
    ax: list  # per slot: indices into pairs_x of the pairs with a variable
    ay: list  # per slot: indices into pairs_y of the pairs with a variable
    xoff: np.ndarray  # (K + 1,) start of each slot's X block
    yoff: np.ndarray  # (K + 1,) start of each slot's Y block
    y_slots: np.ndarray  # slots with Y variables (conservation rows exist only for them)
    reach_T: list  # per slot (n, n) sparse: entry (i, j) > 0 when j -> i has a variable
    offsets: dict
    n_var: int
    cones: ConeSpec
    A: sp.csc_matrix
    coo_vals: np.ndarray
    csc_from_coo: np.ndarray  # A.data = coo_vals[csc_from_coo]
    big_slice: slice  # range of coo_vals holding -F^T and -sqrt(D)
    b_template: np.ndarray
    rows: dict
    solver: ConicSolver | None = None


@dataclass
class _Inputs:
    """Per-solve numbers derived from state and forecasts (all validated)."""

    V: np.ndarray
    L: np.ndarray  # (K, n) low-battery EVs to route in each slot
    p: np.ndarray
    occ: np.ndarray  # (K, n)
    qa: np.ndarray  # (n,) queue allowance
    mu: np.ndarray  # (K, n) demand centre (floored at 0)
    s_hat: np.ndarray  # (K, n) supply point forecast (floored at 0)
    s_cone: np.ndarray  # (K, n) supply in the denominators (ŝ or s⁻)
    c: np.ndarray  # (K, n) charging demand
    gamma: float
    factor: np.ndarray | None
    diag: np.ndarray | None
    diagnostics: dict = field(default_factory=dict)


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

    The conic data is built lazily per shape (plug support, mode, covariance rank) and cached on the
    instance together with its solver object, so re-solves update numbers only.
    """

    def __init__(self, regions, config: BalancingConfig = BalancingConfig(), mobility=None):
        self.regions = regions
        self.config = config
        self.n = int(regions.n)
        dist = np.asarray(regions.distance_km, float)
        self.pairs_x = regions.reachable_pairs(config.reach)
        self.Wx = dist[self.pairs_x[:, 0], self.pairs_x[:, 1]]
        self._lb_pairs = regions.reachable_pairs(config.low_battery_reach_km)
        self._Wlb = dist[self._lb_pairs[:, 0], self._lb_pairs[:, 1]]
        n, m = self.n, len(self.pairs_x)
        cols = np.arange(m)
        self.Bx_orig = sp.csr_matrix((np.ones(m), (self.pairs_x[:, 0], cols)), shape=(n, m))
        self.Bx_dest = sp.csr_matrix((np.ones(m), (self.pairs_x[:, 1], cols)), shape=(n, m))
        self.diag_x = np.flatnonzero(self.pairs_x[:, 0] == self.pairs_x[:, 1])
        if len(self.diag_x) != n:
            raise DataError("internal: the reachable pair list must include every region's diagonal")
        off = self.pairs_x[:, 0] != self.pairs_x[:, 1]
        self.mean_pair_km = float(self.Wx[off].mean()) if off.any() else 1.0
        self.mobility = self._mobility(mobility)
        q = np.asarray(config.queue_allowance, float)
        if q.ndim == 1 and q.shape != (n,):
            raise ConfigError(f"queue_allowance has shape {q.shape}, expected ({n},)")
        self.queue_allowance = np.broadcast_to(q, (n,)).astype(float)
        self._structures: dict[tuple, _Structure] = {}

    # ------------------------------------------------------------------------------ set-up helpers
    def _mobility(self, mobility) -> list | None:
        K, n = self.config.horizon, self.n
        if mobility is None:
            return None
        if sp.issparse(mobility) or (isinstance(mobility, np.ndarray) and mobility.ndim == 2):
            raise DataError("mobility must hold one (n, n) matrix per slot transition: (K-1, n, n) or a list")
        mats = list(mobility)
        if len(mats) < K - 1:
            raise DataError(f"mobility holds {len(mats)} matrices; need K-1 = {K - 1}")
        out = []
        for k, P in enumerate(mats[: K - 1]):
            P = sp.csr_matrix(P, dtype=float)
            if P.shape != (n, n):
                raise DataError(f"mobility matrix {k} has shape {P.shape}, expected ({n}, {n})")
            if not np.isfinite(P.data).all() or (P.data < 0).any():
                raise DataError(f"mobility matrix {k} must be finite and non-negative")
            out.append(P)
        return out

    def _propagate(self, k: int, S: np.ndarray) -> np.ndarray:
        return S if self.mobility is None else self.mobility[k].T @ S

    def _structure(self, plugs: np.ndarray, mode: str, rank: int, inflow: bool) -> _Structure:
        robust = mode != "nominal"
        key = (np.flatnonzero(plugs > 0).tobytes(), robust, rank if robust else -1, bool(inflow))
        if key not in self._structures:
            self._structures[key] = self._build(plugs, robust, rank, key, bool(inflow))
        return self._structures[key]

    def _build(self, plugs: np.ndarray, robust: bool, rank: int, key: tuple, inflow: bool) -> _Structure:
        cfg = self.config
        K, n = cfg.horizon, self.n
        plug = np.flatnonzero(plugs > 0)
        nP = len(plug)
        plug_pos = np.full(n, -1)
        plug_pos[plug] = np.arange(nP)
        keep = plug_pos[self._lb_pairs[:, 1]] >= 0
        pairs_y = self._lb_pairs[keep]
        Wy = self._Wlb[keep]
        mY, mX = len(pairs_y), len(self.pairs_x)
        y_origins = np.unique(pairs_y[:, 0])
        orig_pos = np.full(n, -1)
        orig_pos[y_origins] = np.arange(len(y_origins))
        cy = np.arange(mY)
        By_orig = sp.csr_matrix((np.ones(mY), (orig_pos[pairs_y[:, 0]], cy)), shape=(len(y_origins), mY))
        By_dest = sp.csr_matrix((np.ones(mY), (plug_pos[pairs_y[:, 1]], cy)), shape=(nP, mY))
        nYo = len(y_origins)
        # pairs with a variable in each slot: all in slot 1; later slots keep the pairs within
        # later_reach_km, and have low-battery moves only when an inflow forecast is given (else Y^k = 0)
        later = self.Wx <= cfg.later_reach + 1e-12
        ax = [np.arange(mX)] + [np.flatnonzero(later)] * (K - 1)
        ay = [np.arange(mY)] + [np.arange(mY) if inflow else np.zeros(0, np.int64)] * (K - 1)
        xoff = np.concatenate([[0], np.cumsum([len(a) for a in ax])])
        yoff = np.concatenate([[0], np.cumsum([len(a) for a in ay])])
        y_slots = np.array([k for k in range(K) if len(ay[k])], dtype=np.int64)

        # variable layout: moves X, Y; supply after balancing S = B_dest X and plug arrivals Z = B_dest Y as
        # explicit variables (each move then appears in 2 rows instead of 4: half the KKT entries, less fill)
        off = {"X": 0, "Y": int(xoff[-1])}
        off["S"] = off["Y"] + int(yoff[-1])
        # arrivals Z and charging epigraphs u only in slots with low-battery moves: elsewhere Z = 0 and the
        # charging term is a constant (added to the reported objective, see _vectors)
        nYs = len(y_slots)
        off["Z"] = off["S"] + K * n
        off["t"] = off["Z"] + nYs * nP
        off["u"] = off["t"] + K * n
        off["tau"] = off["u"] + nYs * nP
        n_var = off["tau"] + (1 if robust else 0)

        blocks = []  # (rows, cols, vals) in global indices
        row = 0
        rows = {}

        def add(mat: sp.spmatrix, r0: int, c0: int) -> None:
            m = sp.coo_matrix(mat)
            blocks.append((m.row + r0, m.col + c0, m.data.astype(float)))

        nt, nu = K * n, nYs * nP
        tt, uu = np.arange(nt), np.arange(nu)
        # --- zero cone: X conservation  B_orig X^k - (P^{k-1})^T S^{k-1} = V (k=0) or s_hat^{k-1}
        rows["x_cons"] = row
        for k in range(K):
            add(self.Bx_orig[:, ax[k]], row + k * n, off["X"] + xoff[k])
            if k > 0:
                P_T = sp.identity(n) if self.mobility is None else self.mobility[k - 1].T
                add(-P_T, row + k * n, off["S"] + (k - 1) * n)
        row += K * n
        # --- zero cone: S^k = B_dest X^k,  Z^k = B_dest_y Y^k
        rows["s_def"] = row
        for k in range(K):
            add(-self.Bx_dest[:, ax[k]], row + k * n, off["X"] + xoff[k])
        blocks.append((row + tt, off["S"] + tt, np.ones(nt)))
        row += nt
        rows["z_def"] = row
        for r, k in enumerate(y_slots):
            add(-By_dest[:, ay[k]], row + r * nP, off["Y"] + yoff[k])
        blocks.append((row + uu, off["Z"] + uu, np.ones(nu)))
        row += nu
        # --- zero cone: Y conservation
        rows["y_cons"] = row
        for r, k in enumerate(y_slots):
            add(By_orig[:, ay[k]], row + r * nYo, off["Y"] + yoff[k])
        row += len(y_slots) * nYo
        n_zero = row
        # --- nonneg: X, Y >= 0 ; plug capacity Z <= p - o + q - eps
        rows["nonneg"] = row
        nxy = int(xoff[-1] + yoff[-1])
        add(-sp.identity(nxy, format="coo"), row, 0)
        row += nxy
        rows["cap"] = row
        blocks.append((row + uu, off["Z"] + uu, np.ones(nu)))
        row += nu
        n_nonneg = row - n_zero
        # --- supply-demand epigraphs t^k_i >= (S + s)^-alpha
        rows["sd"] = row
        use_soc = cfg.alpha == 1.0
        if use_soc:
            # cone (t + w, t - w, 2), w = S + s
            r0 = row + 3 * tt
            blocks += [(r0, off["t"] + tt, -np.ones(nt)), (r0 + 1, off["t"] + tt, -np.ones(nt)),
                       (r0, off["S"] + tt, -np.ones(nt)), (r0 + 1, off["S"] + tt, np.ones(nt))]
            row += 3 * nt
        # --- charging epigraphs u_j >= 1 / (F_j + q_j): cone (u + F', u - F', 2), F' = p - o + q - Z
        rows["ch"] = row
        r0 = row + 3 * uu
        blocks += [(r0, off["u"] + uu, -np.ones(nu)), (r0 + 1, off["u"] + uu, -np.ones(nu)),
                   (r0, off["Z"] + uu, np.ones(nu)), (r0 + 1, off["Z"] + uu, -np.ones(nu))]
        row += 3 * nu
        n_soc3 = (nt if use_soc else 0) + nu
        # --- robust norm: tau >= || [F^T t ; sqrt(D) t] ||
        big = 0
        big_start = sum(len(b[0]) for b in blocks)
        if robust:
            rows["big"] = row
            blocks.append((np.array([row]), np.array([off["tau"]]), np.array([-1.0])))
            rr, cc = np.meshgrid(np.arange(rank), np.arange(nt), indexing="ij")
            blocks.append((row + 1 + rr.ravel(), off["t"] + cc.ravel(), np.zeros(rank * nt)))
            blocks.append((row + 1 + rank + tt, off["t"] + tt, -np.ones(nt)))
            big = 1 + rank + nt
            row += big
        big_slice = slice(big_start + 1, big_start + 1 + rank * nt + nt) if robust else slice(0, 0)
        # --- power cones for alpha != 1: (t, S + s, 1), x^a y^(1-a) >= |z| with a = 1/(1+alpha)
        n_pow = 0
        if not use_soc:
            rows["sd"] = row
            blocks.append((row + 3 * tt, off["t"] + tt, -np.ones(nt)))
            blocks.append((row + 3 * tt + 1, off["S"] + tt, -np.ones(nt)))
            n_pow = nt
            row += 3 * nt
        cones = ConeSpec(zero=n_zero, nonneg=n_nonneg, soc3=n_soc3, big_soc=big, n_pow=n_pow,
                         pow_alpha=1.0 / (1.0 + cfg.alpha))
        r_all = np.concatenate([b[0] for b in blocks])
        c_all = np.concatenate([b[1] for b in blocks])
        v_all = np.concatenate([b[2] for b in blocks])
        ids = sp.csc_matrix((np.arange(1, len(v_all) + 1, dtype=float), (r_all, c_all)), shape=(row, n_var))
        ids.sort_indices()
        if ids.nnz != len(v_all):
            raise DataError("internal: duplicate entries in the constraint matrix")
        perm = ids.data.astype(np.int64) - 1
        A = sp.csc_matrix((v_all[perm], ids.indices.copy(), ids.indptr.copy()), shape=(row, n_var))
        # constant part of b
        b = np.zeros(row)
        if use_soc:
            b[rows["sd"] + 3 * tt + 2] = 2.0
        else:
            b[rows["sd"] + 3 * tt + 2] = 1.0
        b[rows["ch"] + 3 * uu + 2] = 2.0
        st = _Structure(key=key, robust=robust, rank=rank, plug=plug, pairs_y=pairs_y, y_origins=y_origins,
                        By_orig=By_orig, By_dest=By_dest, Wy=Wy, ax=ax, ay=ay, xoff=xoff, yoff=yoff,
                        y_slots=y_slots, reach_T=[sp.csr_matrix(self.Bx_dest[:, a] @ self.Bx_orig[:, a].T) for a in ax],
                        offsets=off, n_var=n_var, cones=cones, A=A,
                        coo_vals=v_all, csc_from_coo=perm, big_slice=big_slice, b_template=b, rows=rows)
        return st

    # ------------------------------------------------------------------------------ inputs
    def _inputs(self, state: FleetState, fc: Forecasts, mode: str) -> _Inputs:
        cfg = self.config
        K, n = cfg.horizon, self.n
        if not isinstance(state, FleetState):
            raise DataError(f"state must be a FleetState, got {type(state).__name__}")
        if not isinstance(fc, Forecasts):
            raise DataError(f"forecasts must be a Forecasts, got {type(fc).__name__}")
        if state.n != n:
            raise DataError(f"state has {state.n} regions but the region map has {n}")
        if fc.demand.shape != (K, n):
            raise DataError(f"forecasts have shape {fc.demand.shape}, expected (K={K}, n={n})")
        diag: dict = {}
        scale = max(float(np.abs(fc.demand).max()), 1.0)
        neg_d = fc.demand < -1e-9 * scale
        mu = np.maximum(fc.demand, 0.0)
        s_scale = max(float(np.abs(fc.supply).max()), 1.0)
        neg_s = fc.supply < -1e-9 * s_scale
        s_hat = np.maximum(fc.supply, 0.0)
        diag["demand_centre_floored"] = int(neg_d.sum())  # negative expected demand floored at 0 (conservative)
        diag["supply_forecast_floored"] = int(neg_s.sum())
        L = np.zeros((K, n))
        L[0] = state.low_battery
        if fc.low_battery_inflow is not None and K > 1:
            L[1:] = fc.low_battery_inflow[: K - 1]
        occ = np.broadcast_to(state.occupied, (K, n)).copy() if fc.occupied is None else fc.occupied.copy()
        c = np.broadcast_to(state.plugs, (K, n)).astype(float) if fc.charging is None else fc.charging
        gamma, factor, dvec = 0.0, None, None
        s_cone = s_hat
        if mode != "nominal":
            uset = fc.demand_robust_set if mode == "demand_robust" else fc.demand_mean_set
            want = "robust" if mode == "demand_robust" else "mean"
            name = "demand_robust_set" if mode == "demand_robust" else "demand_mean_set"
            self._check_set(uset, name, want, fc.demand)
            gamma, factor, dvec = float(uset.radius), uset.factor, uset.diag
            if mode == "dr":
                sset = fc.supply_mean_set
                self._check_set(sset, "supply_mean_set", "mean", fc.supply)
                lo, _ = sset.component_bounds()
                floored = lo < 0
                s_cone = np.maximum(lo, 0.0).reshape(K, n)
                diag["supply_worst_case_floored"] = int(floored.sum())  # MATH.md: s⁻ floored at 0
                diag["supply_radius"] = float(sset.radius)
            diag["demand_radius"] = gamma
            diag["rank"] = int(factor.shape[1])
        return _Inputs(state.vacant, L, state.plugs, occ, self.queue_allowance, mu, s_hat, s_cone, c, gamma,
                       factor, dvec, diag)

    def _check_set(self, uset, name: str, kind: str, centre: np.ndarray) -> None:
        K, n = self.config.horizon, self.n
        if uset is None:
            raise DataError(f"mode needs forecasts.{name} (an UncertaintySet of kind {kind!r}, dimension "
                            f"K n = {K * n}); "
                            "build forecasts with Forecasts.from_estimates(...)")
        if getattr(uset, "kind", None) != kind:
            raise DataError(f"forecasts.{name} must be of kind {kind!r}, got {getattr(uset, 'kind', None)!r}")
        if uset.dim != K * n:
            raise DataError(f"forecasts.{name} has dimension {uset.dim}, expected K n = {K * n} (slot-major)")
        if not np.allclose(uset.mean, centre.ravel(), rtol=1e-9, atol=1e-9 * max(1.0, np.abs(centre).max())):
            raise DataError(f"forecasts.{name} is centred away from the point forecast; the modes must share one "
                            "centre (set the forecast to the set's mean, as Forecasts.from_estimates does)")

    def _precheck(self, st: _Structure, inp: _Inputs) -> None:
        """Named InfeasibleErrors for the instances that cannot be solved, before calling a solver."""
        cfg = self.config
        K, n = cfg.horizon, self.n
        names = np.asarray(self.regions.names)
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
            nxt = self._propagate(k, s_support.astype(float)) if k < K - 1 else None
            if nxt is not None:
                pos = (np.asarray(nxt).ravel() > 0) | (inp.s_hat[k] > 0)

    def _weights(self, st: _Structure, inp: _Inputs) -> tuple[float, float, float, dict]:
        """(w_km, w1, w2, normalisers) -- see the module docstring."""
        cfg = self.config
        K = cfg.horizon
        if not cfg.normalise:
            return 1.0, cfg.beta1, cfg.beta2, {"normalise": False}
        S0 = np.zeros_like(inp.mu)
        S0[0] = inp.V
        for k in range(1, K):
            S0[k] = self._propagate(k - 1, S0[k - 1]) + inp.s_hat[k - 1]
        den = np.maximum(S0 + inp.s_hat + cfg.supply_floor, 1.0)
        N1 = float((inp.mu * den ** (-cfg.alpha)).sum())
        Lp = inp.L[:, st.plug]
        F0 = inp.p[st.plug][None, :] - inp.occ[:, st.plug] + inp.qa[st.plug][None, :] - Lp
        N2 = float((inp.c[:, st.plug] / np.maximum(F0, cfg.plug_margin)).sum())
        scale_km = max(float(inp.V.sum() + inp.L[0].sum()), 1.0) * self.mean_pair_km
        w1 = cfg.beta1 / N1 if N1 > 0 else cfg.beta1
        w2 = cfg.beta2 / N2 if N2 > 0 else cfg.beta2
        return 1.0 / scale_km, w1, w2, {"normalise": True, "N1_supply_demand": N1, "N2_charging": N2,
                                         "scale_km": scale_km}

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
        if self.config.backend == "cvxpy" or backend == "mosek":
            return self.solve_reference(state, forecasts, mode=mode, solver=backend, _t_start=t_start)
        rank = 0
        inp = self._inputs(state, forecasts, mode)
        if inp.factor is not None:
            rank = inp.factor.shape[1]
        st = self._structure(state.plugs, mode, rank, forecasts.low_battery_inflow is not None)
        self._precheck(st, inp)
        w_km, w1, w2, norms = self._weights(st, inp)
        q, b, constant = self._vectors(st, inp, w_km, w1, w2)
        if st.solver is None or st.solver.backend != backend:
            st.solver = ConicSolver(st.A, st.cones, backend, ClarabelOptions(self.config.tol, self.config.tol,
                                                                             self.config.tol),
                                    scs_eps=self.config.scs_eps)
        if st.robust:
            vals = st.coo_vals.copy()
            vals[st.big_slice] = np.concatenate([-inp.factor.T.ravel(), -np.sqrt(inp.diag)])
            st.solver.set_A_values(vals[st.csc_from_coo])
        res = st.solver.solve(q, b)
        status = check_status(res.status, res.solver, self._infeasible_hint(), self.config.accept_inaccurate)
        x = res.x
        off, K = st.offsets, self.config.horizon
        mX, mY = len(self.pairs_x), len(st.pairs_y)
        X, Y = self._unpack(st, x[off["X"]:off["Y"]], x[off["Y"]:off["S"]])
        diag = dict(inp.diagnostics, iterations=res.iterations, n_pairs_x=mX, n_pairs_y=mY, n_variables=st.n_var,
                    n_constraints=st.A.shape[0], **norms)
        return self._plan(st, inp, X, Y, mode, (w_km, w1, w2), res.objective + constant, res.solver, status,
                          res.solve_seconds, t_start, diag)

    def _unpack(self, st: _Structure, xv: np.ndarray, yv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-slot variable blocks -> dense (K, m_x), (K, m_y) arrays over the full pair lists."""
        K = self.config.horizon
        X = np.zeros((K, len(self.pairs_x)))
        Y = np.zeros((K, len(st.pairs_y)))
        for k in range(K):
            X[k, st.ax[k]] = xv[st.xoff[k]:st.xoff[k + 1]]
            Y[k, st.ay[k]] = yv[st.yoff[k]:st.yoff[k + 1]]
        return X, Y

    def _vectors(self, st: _Structure, inp: _Inputs, w_km: float, w1: float,
                 w2: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Objective ``q``, right-hand side ``b`` and the constant objective part (charging terms of
        slots without low-battery moves)."""
        cfg = self.config
        K, n = cfg.horizon, self.n
        off, rows = st.offsets, st.rows
        nP, nYo = len(st.plug), len(st.y_origins)
        q = np.zeros(st.n_var)
        q[off["X"]:off["Y"]] = w_km * np.concatenate([self.Wx[a] for a in st.ax])
        q[off["Y"]:off["S"]] = w_km * np.concatenate([st.Wy[a] for a in st.ay])
        q[off["t"]:off["u"]] = w1 * inp.mu.ravel()
        ys = st.y_slots
        q[off["u"]:off["tau"]] = w2 * inp.c[ys][:, st.plug].ravel()
        if st.robust:
            q[off["tau"]] = w1 * np.sqrt(inp.gamma)
        b = st.b_template.copy()
        b[rows["x_cons"]:rows["x_cons"] + n] = inp.V
        if K > 1:
            b[rows["x_cons"] + n:rows["x_cons"] + K * n] = inp.s_hat[: K - 1].ravel()
        b[rows["y_cons"]:rows["y_cons"] + len(st.y_slots) * nYo] = inp.L[st.y_slots][:, st.y_origins].ravel()
        free = inp.p[None, st.plug] - inp.occ[:, st.plug] + inp.qa[None, st.plug]  # (K, nP)
        b[rows["cap"]:rows["cap"] + len(ys) * nP] = (free[ys] - cfg.plug_margin).ravel()
        rest = np.setdiff1d(np.arange(K), ys)
        constant = float(w2 * (inp.c[rest][:, st.plug] / free[rest]).sum()) if len(rest) and nP else 0.0
        w = (inp.s_cone + cfg.supply_floor).ravel()
        if cfg.alpha == 1.0:
            b[rows["sd"] + 3 * np.arange(K * n)] = w
            b[rows["sd"] + 3 * np.arange(K * n) + 1] = -w
        else:
            b[rows["sd"] + 3 * np.arange(K * n) + 1] = w
        ch = rows["ch"] + 3 * np.arange(len(ys) * nP)
        b[ch] = free[ys].ravel()
        b[ch + 1] = -free[ys].ravel()
        return q, b, constant

    def _infeasible_hint(self) -> str:
        return ("the low-battery EVs probably exceed the free plugs reachable within "
                f"{self.config.low_battery_reach_km:g} km "
                "of them (a regional shortage the per-region pre-checks cannot see); raise queue_allowance, "
                "low_battery_reach_km, or add plugs")

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
        inp = self._inputs(state, forecasts, mode)
        rank = 0 if inp.factor is None else inp.factor.shape[1]
        st = self._structure(state.plugs, mode, rank, forecasts.low_battery_inflow is not None)
        w = self._weights(st, inp)[:3]
        return self._terms(st, inp, np.asarray(X, float), np.asarray(Y, float), mode, w)

    def _terms(self, st: _Structure, inp: _Inputs, X, Y, mode: str, weights) -> dict:
        cfg = self.config
        w_km, w1, w2 = weights
        S = (self.Bx_dest @ X.T).T  # (K, n)
        idle = float((X @ self.Wx).sum() + (Y @ st.Wy).sum())
        # a plan leaving a region with no supply (S + s = 0) or no free plug scores +inf, by definition
        with np.errstate(divide="ignore", invalid="ignore"):
            t_nom = (S + inp.s_hat + cfg.supply_floor) ** (-cfg.alpha)
            sd_nom = float(np.where(inp.mu > 0, inp.mu * t_nom, 0.0).sum())
            if mode == "nominal":
                sd_mode = sd_nom
            else:
                t = (S + inp.s_cone + cfg.supply_floor) ** (-cfg.alpha)
                g = t.ravel()
                if np.isfinite(g).all():
                    norm = np.sqrt(np.sum((inp.factor.T @ g) ** 2) + np.sum(inp.diag * g * g))
                    sd_mode = float(np.where(inp.mu > 0, inp.mu * t, 0.0).sum() + np.sqrt(inp.gamma) * norm)
                else:
                    sd_mode = np.inf
            F = inp.p[None, st.plug] - inp.occ[:, st.plug] - (st.By_dest @ Y.T).T
            Fq = F + inp.qa[None, st.plug]
            charging = float(np.where(Fq > 0, inp.c[:, st.plug] / Fq, np.inf).sum())
        nominal = w_km * idle + w1 * sd_nom + w2 * charging
        objective = w_km * idle + w1 * sd_mode + w2 * charging
        return {"objective": objective, "nominal_objective": nominal, "idle_km": idle, "supply_demand": sd_nom,
                "supply_demand_mode": sd_mode, "charging": charging, "robust_premium": objective - nominal,
                "weighted_idle_km": w_km * idle, "weighted_supply_demand": w1 * sd_mode,
                "weighted_charging": w2 * charging}

    def _plan(self, st, inp, X, Y, mode, weights, objective, solver, status, solve_s, t_start, diag) -> Plan:
        from drbalance.rounding import round_capacitated, round_per_origin

        K, n = self.config.horizon, self.n
        X = np.maximum(X, 0.0)
        Y = np.maximum(Y, 0.0)
        terms = self._terms(st, inp, X, Y, mode, weights)
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

    # ------------------------------------------------------------------------------ cvxpy reference
    def solve_reference(self, state: FleetState, forecasts: Forecasts, mode: str | None = None,
                        solver: str | None = None, accept_inaccurate: bool | None = None,
                        _t_start: float | None = None) -> Plan:
        """Solve the same problem modelled independently in cvxpy (rebuilt per call, constants only).

        Slower than :meth:`solve`; used to check the fast path and to reach MOSEK.  ``solver`` defaults
        to ``config.solver`` and is always passed to cvxpy explicitly; ``accept_inaccurate`` defaults to
        ``config.accept_inaccurate`` (cvxpy's canonicalisation of ``inv_pos`` is numerically harder for
        Clarabel than the direct conic data, and sometimes ends "almost solved").
        """
        import cvxpy as cp

        t_start = time.perf_counter() if _t_start is None else _t_start
        cfg = self.config
        mode = mode or cfg.mode
        K, n = cfg.horizon, self.n
        inp = self._inputs(state, forecasts, mode)
        rank = 0 if inp.factor is None else inp.factor.shape[1]
        st = self._structure(state.plugs, mode, rank, forecasts.low_battery_inflow is not None)
        self._precheck(st, inp)
        w_km, w1, w2, norms = self._weights(st, inp)
        mX, mY = len(self.pairs_x), len(st.pairs_y)
        X = [cp.Variable(len(st.ax[k]), nonneg=True) for k in range(K)]
        Y = [cp.Variable(len(st.ay[k]), nonneg=True) if len(st.ay[k]) else None for k in range(K)]
        Bo = [self.Bx_orig[:, st.ax[k]] for k in range(K)]
        Bd = [self.Bx_dest[:, st.ax[k]] for k in range(K)]
        cons = [Bo[0] @ X[0] == inp.V]
        for k in range(1, K):
            Sk = Bd[k - 1] @ X[k - 1]
            prev = Sk if self.mobility is None else self.mobility[k - 1].T @ Sk
            cons.append(Bo[k] @ X[k] == prev + inp.s_hat[k - 1])
        free = inp.p[None, st.plug] - inp.occ[:, st.plug] + inp.qa[None, st.plug]
        charge_terms, idle = [], 0
        for k in range(K):
            idle = idle + w_km * (self.Wx[st.ax[k]] @ X[k])
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
        status, solve_s, iters = solve_cvxpy(prob, backend, self._infeasible_hint(), accept,
                                             cfg.scs_eps, ClarabelOptions(cfg.tol, cfg.tol, cfg.tol))
        Xv, Yv = np.zeros((K, mX)), np.zeros((K, mY))
        for k in range(K):
            Xv[k, st.ax[k]] = X[k].value
            if Y[k] is not None:
                Yv[k, st.ay[k]] = Y[k].value
        diag = dict(inp.diagnostics, iterations=iters, n_pairs_x=mX, n_pairs_y=mY, backend="cvxpy", **norms)
        return self._plan(st, inp, Xv, Yv, mode, (w_km, w1, w2), float(prob.value), backend, status, solve_s,
                          t_start, diag)

    def do_nothing(self, state: FleetState, forecasts: Forecasts) -> tuple[np.ndarray, np.ndarray]:
        """The do-nothing vacant plan ``X`` (K, m_x) (everyone stays, propagated with the supply forecast);
        low-battery EVs are not representable when their region has no plug, so only ``X`` is returned
        with a zero ``Y`` of the right shape (use it for the idle/supply terms)."""
        K = self.config.horizon
        S0 = np.zeros((K, self.n))
        S0[0] = state.vacant
        for k in range(1, K):
            S0[k] = self._propagate(k - 1, S0[k - 1]) + np.maximum(forecasts.supply[k - 1], 0)
        X = np.zeros((K, len(self.pairs_x)))
        X[:, self.diag_x] = S0
        st = self._structure(state.plugs, "nominal", 0, forecasts.low_battery_inflow is not None)
        return X, np.zeros((K, len(st.pairs_y)))


def with_mode(config: BalancingConfig, mode: str) -> BalancingConfig:
    """A copy of ``config`` with another mode."""
    return replace(config, mode=mode)
