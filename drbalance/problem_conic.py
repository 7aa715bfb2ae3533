"""The conic data of the balancing problem, assembled once per shape with scipy.sparse.

A *shape* is what fixes the sparsity of the constraint matrix: the plug support, whether the mode is
robust, the covariance rank ``r``, and whether a low-battery inflow is forecast (MATH.md section 1; the
formulation is stated in :mod:`drbalance.problem`).  :func:`build_structure` lays out the variables and
assembles ``A`` and the constant part of ``b`` for Clarabel's standard form
``A x + s = b, s in cones``, minimise ``q^T x``; a re-solve only calls :func:`conic_vectors` (``q``,
``b``) and :func:`a_values` (the covariance-factor values of ``A``, same pattern), and
:func:`unpack` reads the moves back from the solution.

Variables, in order: ``X`` (vacant moves, slot by slot on the pairs with a variable in that slot),
``Y`` (low-battery moves), ``S`` (K n) supply after balancing, ``Z`` (one block of nP per slot with
low-battery moves) plug arrivals, ``t`` (K n) supply-demand epigraphs, ``u`` (same blocks as ``Z``)
charging epigraphs, and ``tau`` (robust modes only) the norm epigraph.  Rows, in cone order: zero
(X conservation, S and Z definitions, Y conservation), non-negative (X, Y >= 0 and plug capacity),
three-dimensional second-order cones (supply-demand epigraphs for ``α = 1``, charging epigraphs), the
robust norm cone of size ``1 + r + K n``, then power cones (supply-demand epigraphs for ``α != 1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from drbalance.config import BalancingConfig
from drbalance.errors import DataError
from drbalance.problem_inputs import SolveInputs
from drbalance.problem_pairs import BalancingPairs, LowBatteryPairs, slot_layout, unpack_moves
from drbalance.solvers import ConeSpec, ConicSolver


@dataclass
class ConicStructure:
    """Everything fixed for one shape: pair lists, incidence matrices, variable layout, ``A`` pattern.

    Attributes
    ----------
    key : the cache key (plug support bytes, robust, rank or -1, inflow).
    robust : whether the robust norm cone and ``tau`` exist.
    rank : covariance factor rank ``r``.
    plug : (nP,) region positions with plugs.
    pairs_y : (m_y, 2) low-battery pairs within ``low_battery_reach_km`` whose destination has plugs.
    y_origins : (nYo,) regions with at least one low-battery pair.
    By_orig : (nYo, m_y) sparse origin incidence of the low-battery pairs.
    By_dest : (nP, m_y) sparse destination incidence (rows follow ``plug``).
    Wy : (m_y,) low-battery pair distances, km.
    ax, ay : per slot (K lists), indices into ``pairs_x`` / ``pairs_y`` of the pairs with a variable.
    xoff, yoff : (K + 1,) start of each slot's X / Y block within the X / Y variables.
    y_slots : slots (0-based) with Y variables (Y conservation rows, Z and u exist only for them).
    reach_T : per slot, sparse (n, n): entry ``(i, j) > 0`` when ``j -> i`` has a variable.
    offsets : start of each variable block (``X``, ``Y``, ``S``, ``Z``, ``t``, ``u``, ``tau``).
    n_var : number of variables.
    cones : the cone sizes, in row order.
    A : sparse (rows, n_var) constraint matrix (CSC).
    coo_vals : values of ``A`` in assembly order; ``A.data = coo_vals[csc_from_coo]``.
    csc_from_coo : permutation from assembly order to CSC order.
    big_slice : range of ``coo_vals`` holding ``-F^T`` and ``-sqrt(D)`` (empty unless robust).
    b_template : (rows,) constant part of ``b`` (the cones' constant entries).
    rows : start row of each constraint block.
    solver : the persistent solver object, created on the first solve.
    """

    key: tuple
    robust: bool
    rank: int
    plug: np.ndarray
    pairs_y: np.ndarray
    y_origins: np.ndarray
    By_orig: sp.csr_matrix
    By_dest: sp.csr_matrix
    Wy: np.ndarray
    ax: list
    ay: list
    xoff: np.ndarray
    yoff: np.ndarray
    y_slots: np.ndarray
    reach_T: list
    offsets: dict
    n_var: int
    cones: ConeSpec
    A: sp.csc_matrix
    coo_vals: np.ndarray
    csc_from_coo: np.ndarray
    big_slice: slice
    b_template: np.ndarray
    rows: dict
    solver: ConicSolver | None = None


def build_structure(pairs: BalancingPairs, config: BalancingConfig, plugs: np.ndarray, robust: bool, rank: int,
                    key: tuple, inflow: bool) -> ConicStructure:
    """Assemble the conic data of one shape (see the module docstring for the layout).

    ``plugs`` (n,) plug counts (only their support matters), ``robust`` whether the robust norm cone is
    added, ``rank`` the covariance factor's rank ``r`` (ignored unless robust), ``key`` the cache key
    stored on the result, ``inflow`` whether later slots route low-battery EVs (a forecast inflow).
    The covariance entries of ``A`` are left at 0: :func:`a_values` fills them per solve.
    """
    cfg = config
    K, n = cfg.horizon, pairs.n
    lb = LowBatteryPairs.build(pairs, plugs)
    plug, pairs_y, Wy, y_origins, By_orig, By_dest = lb.plug, lb.pairs_y, lb.Wy, lb.y_origins, lb.By_orig, lb.By_dest
    nP, nYo, mY, mX = len(plug), len(y_origins), len(pairs_y), len(pairs.pairs_x)
    ax, ay, xoff, yoff, y_slots = slot_layout(pairs, cfg, mY, inflow)

    # variable layout: moves X, Y; supply after balancing S = B_dest X and plug arrivals Z = B_dest Y as
    # explicit variables (each move then appears in 2 rows instead of 4: half the KKT entries, less fill)
    off = {"X": 0, "Y": int(xoff[-1])}
    off["S"] = off["Y"] + int(yoff[-1])
    # arrivals Z and charging epigraphs u only in slots with low-battery moves: elsewhere Z = 0 and the
    # charging term is a constant (added to the reported objective, see conic_vectors)
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
        add(pairs.Bx_orig[:, ax[k]], row + k * n, off["X"] + xoff[k])
        if k > 0:
            P_T = sp.identity(n) if pairs.mobility is None else pairs.mobility[k - 1].T
            add(-P_T, row + k * n, off["S"] + (k - 1) * n)
    row += K * n
    # --- zero cone: S^k = B_dest X^k,  Z^k = B_dest_y Y^k
    rows["s_def"] = row
    for k in range(K):
        add(-pairs.Bx_dest[:, ax[k]], row + k * n, off["X"] + xoff[k])
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
    reach_T = [sp.csr_matrix(pairs.Bx_dest[:, a] @ pairs.Bx_orig[:, a].T) for a in ax]
    return ConicStructure(key=key, robust=robust, rank=rank, plug=plug, pairs_y=pairs_y, y_origins=y_origins,
                          By_orig=By_orig, By_dest=By_dest, Wy=Wy, ax=ax, ay=ay, xoff=xoff, yoff=yoff,
                          y_slots=y_slots, reach_T=reach_T, offsets=off, n_var=n_var, cones=cones, A=A,
                          coo_vals=v_all, csc_from_coo=perm, big_slice=big_slice, b_template=b, rows=rows)


def conic_vectors(pairs: BalancingPairs, config: BalancingConfig, st: ConicStructure, inp: SolveInputs, w_km: float,
                  w1: float, w2: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Objective ``q`` (n_var,), right-hand side ``b`` (rows of ``A``,) and the constant objective part
    (the charging terms of slots without low-battery moves), for weights ``w_km`` (per km), ``w1``, ``w2``."""
    cfg = config
    K, n = cfg.horizon, pairs.n
    off, rows = st.offsets, st.rows
    nP, nYo = len(st.plug), len(st.y_origins)
    q = np.zeros(st.n_var)
    q[off["X"]:off["Y"]] = w_km * np.concatenate([pairs.Wx[a] for a in st.ax])
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


def a_values(st: ConicStructure, factor: np.ndarray, diag: np.ndarray) -> np.ndarray:
    """``A.data`` (CSC order) with the robust norm rows set to ``-F^T`` and ``-sqrt(D)``.

    ``factor`` (K n, r) and ``diag`` (K n,) of the demand covariance ``Σ = F F^T + diag(D)``.
    """
    vals = st.coo_vals.copy()
    vals[st.big_slice] = np.concatenate([-factor.T.ravel(), -np.sqrt(diag)])
    return vals[st.csc_from_coo]


def unpack(st: ConicStructure, x: np.ndarray, m_x: int) -> tuple[np.ndarray, np.ndarray]:
    """The moves of a solution ``x`` (n_var,) as dense ``X`` (K, m_x) and ``Y`` (K, m_y) over the full pair
    lists (0 on the pairs without a variable in a slot)."""
    off = st.offsets
    return unpack_moves(x[off["X"]:off["Y"]], x[off["Y"]:off["S"]], st.ax, st.ay, st.xoff, st.yoff, m_x,
                        len(st.pairs_y))
