"""Model v2 of the balancing problem: expected unserved requests with moment ambiguity (MATH.md 1.1).

Per slot ``k = 0..K-1`` and region ``i`` (vehicles unless stated; slot-major ``(K, n)`` arrays):

* **Available supply** ``A^k = Σ_o B_o (φ ∘ X^{k-o}) + θ^k κ^k``: a move of travel time ``τ`` (at
  ``speed_kmh``) arrives ``o = floor(τ / Δ)`` slots later and serves a share ``φ = P(a >= τ - oΔ -
  patience)`` of that slot's requests (request minutes ``a`` taken uniform inside the slot: vehicles
  arriving within ``patience`` minutes count in full); ``κ^k`` are the EVs known to become vacant during
  slot ``k`` (trips ending, repositioning and charging EVs arriving, from :class:`~drbalance.state.FleetState`
  ``incoming``; without it the supply forecast ``ŝ`` plays this role, see below) credited with the
  timing share ``θ`` (:mod:`data_pipeline.trip_model`).
* **Expected unserved requests** ``U^k_i`` of the net demand ``D = r - θ s̃`` (``s̃`` = the uncertain
  forecast supply when the state has no ``incoming``, else 0):

  - ``nominal``: ``U >= m - A``, ``U >= 0`` (the deterministic twin);
  - ``demand_robust``: the same at each region's worst case over the robust demand set
    (``m + sqrt(γ Σ_ii)``, its bounding box: the classic robust-dispatch baseline);
  - ``saa``: ``U = (1/N) Σ_d W_d``, ``W_d >= D_d - A``, ``W_d >= 0`` over the training days' windows;
  - ``dr``: the worst case of ``E (D - A)^+`` over every distribution with mean in ``[m - δ, m + δ]``
    (``δ`` a simultaneous half-width) and variance ``σ²``: Scarf's bound at ``μ = m + δ``,
    ``U >= ½ (sqrt(σ² + (A - μ)²) + μ - A)`` (one 3-dimensional cone per region and slot).  When the net
    demand is a request count (``D >= 0``: the state gives ``incoming``) the bound is taken over
    distributions on ``[0, ∞)``: Scarf's bound for ``A >= A* = (μ² + σ²) / 2μ`` and its tangent
    ``μ - A μ² / (μ² + σ²)`` below (tight, never above ``μ``), written with one extra variable ``A'``:
    ``U >= Scarf(A') + s (A' - A)``, ``A' >= A``, ``A' >= A*``, ``s = μ² / (μ² + σ²)``.
* **Dynamics**: EVs vacant at the start of slot ``k + 1`` are ``E^k = Sf^k + κ^k + ŝ^k - (h^k - U^k)``
  (``Sf`` = moved EVs that have arrived by the end of slot ``k``; ``h - U`` the expected hires, ``h`` the
  mode's mean demand), carried by the vacant mobility ``P^k``; hires come back through the trip
  mobility ``M_d`` (share of hires from ``i`` vacant again in ``j`` ``d`` slots later) when the state
  gives ``incoming`` (``ŝ`` already holds them otherwise).  ``E >= 0`` follows from ``U >= m - A``.
  A slight preference for earlier slots (``λ ρ^k``, ``ρ = 0.98``) makes inflating ``U`` to keep EVs for
  a later slot strictly unprofitable, so the epigraphs are tight at the optimum.
* **Always feasible**: low-battery EVs with no reachable plug (``strand``) and plug capacity
  (``over``) are elastic, priced at ``elastic_km`` per vehicle and reported; everything else holds for
  any state.  Charging: the distributionally robust chance constraint
  ``Z + μ_a + sqrt((1 - ε)/ε) σ_a <= p - o + q + over`` (Cantelli), and the expected queue
  ``Q >= Z + μ_a - (p - o)``, ``Q >= 0`` priced at ``charge_queue_km``.

Objective (km): ``Σ W (X + Y) + Σ_k λ ρ^k Σ_i U^k_i + charge_queue_km Σ Q + elastic_km Σ (strand + over)``.
The conic data is assembled once per shape (:func:`build`); a solve recomputes ``q``, ``b`` and, in
``dr``, the tangent slopes in ``A`` (same pattern).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from drbalance.config import BalancingConfig
from drbalance.errors import DataError
from drbalance.problem_pairs import BalancingPairs, LowBatteryPairs, slot_layout, unpack_moves
from drbalance.solvers import ConeSpec, ConicSolver

SLOT_DISCOUNT = 0.98


@dataclass
class ShortfallStructure:
    """Everything fixed for one shape of the shortfall model (see :func:`build`)."""

    key: tuple
    mode: str
    support: bool            # dr with the [0, inf) support bound (A' variables)
    returns: bool            # trip-mobility returns modelled
    n_scen: int
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
    offset: np.ndarray       # (m_x,) arrival slot offset of each vacant pair
    phi: np.ndarray          # (m_x,) available share in the arrival slot
    returns_T: list          # M_d^T, d = 1..K-1 (sparse) or []
    off: dict
    n_var: int
    rows: dict
    cones: ConeSpec
    A: sp.csc_matrix | None  # set right after assembly (its values come from a_values)
    coo_vals: np.ndarray
    csc_from_coo: np.ndarray
    slope_slice: np.ndarray  # positions in coo_vals of the tangent-slope entries (dr support)
    coo_unique: np.ndarray   # (len(coo_vals),) the unique (row, col) entry each assembled value adds to
    solver: ConicSolver | None = None


def travel(pairs: BalancingPairs, config: BalancingConfig) -> tuple[np.ndarray, np.ndarray]:
    """(offset (m_x,) int slots, φ (m_x,) share) of every vacant pair at ``config.speed_kmh``."""
    d = float(config.slot_minutes)
    tau = pairs.Wx / config.speed_kmh * 60.0
    o = np.floor(tau / d + 1e-9).astype(np.int64)
    rest = tau - o * d
    phi = np.clip(1.0 - np.maximum(rest - config.patience_minutes, 0.0) / d, 0.0, 1.0)
    return o, phi


def build(pairs: BalancingPairs, config: BalancingConfig, plugs: np.ndarray, mode: str, n_scen: int,
          support: bool, returns: list | None, inflow: bool, key: tuple) -> ShortfallStructure:
    """Assemble the conic data of one shape: plug support, ``mode``, ``n_scen`` scenarios (saa),
    ``support`` (dr bound on [0, inf)), ``returns`` (K-1 sparse trip-mobility matrices or None),
    ``inflow`` (later slots route low-battery EVs)."""
    cfg = config
    K, n = cfg.horizon, pairs.n
    lb = LowBatteryPairs.build(pairs, plugs)
    plug, pairs_y, Wy, y_origins, By_orig, By_dest = lb.plug, lb.pairs_y, lb.Wy, lb.y_origins, lb.By_orig, lb.By_dest
    nP, nYo, mY, mX = len(plug), len(y_origins), len(pairs_y), len(pairs.pairs_x)
    ax, ay, xoff, yoff, y_slots = slot_layout(pairs, cfg, mY, inflow)
    nYs = len(y_slots)
    offset, phi = travel(pairs, cfg)
    saa = mode == "saa"
    nt = K * n
    sizes = [("X", int(xoff[-1])), ("Y", int(yoff[-1])), ("Sf", nt), ("A", nt), ("U", nt),
             ("W", n_scen * nt if saa else 0), ("A1", nt if support else 0), ("Z", nYs * nP),
             ("Q", nYs * nP), ("strand", nYs * nYo), ("over", nYs * nP)]
    off, pos = {}, 0
    for name, size in sizes:
        off[name] = pos
        pos += size
    n_var = pos
    blocks, rows = [], {}
    row = 0

    def add(mat, r0: int, c0: int) -> None:
        m = sp.coo_matrix(mat)
        blocks.append((m.row + r0, m.col + c0, m.data.astype(float)))

    def diag(r0: int, c0: int, size: int, val: float) -> None:
        i = np.arange(size)
        blocks.append((r0 + i, c0 + i, np.full(size, float(val))))

    P_T = [sp.identity(n, format="csr") if pairs.mobility is None else pairs.mobility[k].T.tocsr()
           for k in range(K - 1)]
    ret_T = [sp.csr_matrix(M).T.tocsr() for M in (returns or [])][: K - 1]
    # ---- zero cone
    rows["x_cons"] = row   # B_orig X^k - P^T (Sf + U)^{k-1} + Σ_d M_d^T U^{k-d} = rhs
    for k in range(K):
        add(pairs.Bx_orig[:, ax[k]], row + k * n, off["X"] + xoff[k])
        if k > 0:
            add(-P_T[k - 1], row + k * n, off["Sf"] + (k - 1) * n)
            add(-P_T[k - 1], row + k * n, off["U"] + (k - 1) * n)
            for d in range(1, k + 1):
                if d - 1 < len(ret_T):
                    add(ret_T[d - 1], row + k * n, off["U"] + (k - d) * n)
    row += nt
    rows["sf_def"] = row   # Sf^k - Σ_o B_o X^{k-o} = 0 ;  A^k - Σ_o B_o (φ X^{k-o}) = θ κ^k
    rows["a_def"] = row + nt
    for k in range(K):
        for kk in range(k + 1):
            sel = ax[kk][offset[ax[kk]] == k - kk]
            if not len(sel):
                continue
            cols = off["X"] + xoff[kk] + np.searchsorted(ax[kk], sel)
            dest = pairs.pairs_x[sel, 1]
            blocks.append((row + k * n + dest, cols, -np.ones(len(sel))))
            blocks.append((row + nt + k * n + dest, cols, -phi[sel]))
    diag(row, off["Sf"], nt, 1.0)
    diag(row + nt, off["A"], nt, 1.0)
    row += 2 * nt
    rows["z_def"] = row
    for r, k in enumerate(y_slots):
        add(-By_dest[:, ay[k]], row + r * nP, off["Y"] + yoff[k])
    diag(row, off["Z"], nYs * nP, 1.0)
    row += nYs * nP
    rows["y_cons"] = row
    for r, k in enumerate(y_slots):
        add(By_orig[:, ay[k]], row + r * nYo, off["Y"] + yoff[k])
    diag(row, off["strand"], nYs * nYo, 1.0)
    row += nYs * nYo
    if saa:
        rows["saa_def"] = row  # U - (1/N) Σ_d W_d = 0
        diag(row, off["U"], nt, 1.0)
        for d in range(n_scen):
            diag(row, off["W"] + d * nt, nt, -1.0 / n_scen)
        row += nt
    n_zero = row
    # ---- nonnegative orthant
    rows["nonneg"] = row
    nxy = int(xoff[-1] + yoff[-1])
    diag(row, 0, nxy, -1.0)
    row += nxy
    for name in ("strand", "over", "Q") + (("U",) if mode in ("nominal", "demand_robust", "saa") else ()) + \
            (("W",) if saa else ()):
        size = sizes[[s[0] for s in sizes].index(name)][1]
        diag(row, off[name], size, -1.0)
        row += size
    rows["short"] = row
    if mode in ("nominal", "demand_robust"):   # U + A >= c
        diag(row, off["U"], nt, -1.0)
        diag(row, off["A"], nt, -1.0)
        row += nt
    elif saa:                                   # W_d + A >= D_d
        for d in range(n_scen):
            diag(row + d * nt, off["W"] + d * nt, nt, -1.0)
            diag(row + d * nt, off["A"], nt, -1.0)
        row += n_scen * nt
    elif support:                               # A1 - A >= 0 ; A1 >= A*
        diag(row, off["A1"], nt, -1.0)
        diag(row, off["A"], nt, 1.0)
        diag(row + nt, off["A1"], nt, -1.0)
        row += 2 * nt
    rows["cap"] = row                           # f + q - μ - κσ - Z + over >= 0
    diag(row, off["Z"], nYs * nP, 1.0)
    diag(row, off["over"], nYs * nP, -1.0)
    row += nYs * nP
    rows["queue"] = row                         # Q - Z >= μ - f
    diag(row, off["Q"], nYs * nP, -1.0)
    diag(row, off["Z"], nYs * nP, 1.0)
    row += nYs * nP
    n_nonneg = row - n_zero
    # ---- dr cones (2U + A' - μ [- 2s(A' - A)], σ, A' - μ), A' = A without the support bound
    n_soc = 0
    slope_pos = np.zeros(0, np.int64)
    if mode == "dr":
        rows["soc"] = row
        t = np.arange(nt)
        r0 = row + 3 * t
        av = off["A1"] if support else off["A"]
        blocks.append((r0, off["U"] + t, np.full(nt, -2.0)))
        blocks.append((r0, av + t, -np.ones(nt)))
        blocks.append((r0 + 2, av + t, -np.ones(nt)))
        if support:
            start = sum(len(b[0]) for b in blocks)
            blocks.append((r0, off["A1"] + t, np.zeros(nt)))   # + 2 s A1   (value set per solve)
            blocks.append((r0, off["A"] + t, np.zeros(nt)))    # - 2 s A
            slope_pos = np.arange(start, start + 2 * nt)
        n_soc = nt
        row += 3 * nt
    r_all = np.concatenate([b[0] for b in blocks])
    c_all = np.concatenate([b[1] for b in blocks])
    v_all = np.concatenate([b[2] for b in blocks])
    # merge duplicates (A1 appears twice in the cone's first row): sum values per (row, col)
    lin = r_all.astype(np.int64) * n_var + c_all
    uniq, inv = np.unique(lin, return_inverse=True)
    ids = sp.csc_matrix((np.arange(1, len(uniq) + 1, dtype=float), (uniq // n_var, uniq % n_var)),
                        shape=(row, n_var))
    ids.sort_indices()
    if ids.nnz != len(uniq):
        raise DataError("internal: the shortfall constraint matrix lost entries")
    perm = ids.data.astype(np.int64) - 1      # CSC position -> unique entry
    cones = ConeSpec(zero=n_zero, nonneg=n_nonneg, soc3=n_soc)
    st = ShortfallStructure(key=key, mode=mode, support=support, returns=bool(ret_T), n_scen=n_scen, plug=plug,
                            pairs_y=pairs_y, y_origins=y_origins, By_orig=By_orig, By_dest=By_dest, Wy=Wy, ax=ax,
                            ay=ay, xoff=xoff, yoff=yoff, y_slots=y_slots, offset=offset, phi=phi, returns_T=ret_T,
                            off=off, n_var=n_var, rows=rows, cones=cones, A=None, coo_vals=v_all,
                            csc_from_coo=perm, slope_slice=slope_pos, coo_unique=inv)
    st.A = sp.csc_matrix((a_values(st, None), ids.indices.copy(), ids.indptr.copy()), shape=(row, n_var))
    return st


def a_values(st: ShortfallStructure, slope: np.ndarray | None) -> np.ndarray:
    """``A.data`` in CSC order with the dr tangent slopes ``s`` (K n,) written in (zeros when None)."""
    vals = st.coo_vals.copy()
    if len(st.slope_slice) and slope is not None:
        nt = len(slope)
        vals[st.slope_slice[:nt]] = 2.0 * slope
        vals[st.slope_slice[nt:]] = -2.0 * slope
    summed = np.bincount(st.coo_unique, weights=vals, minlength=len(st.csc_from_coo))
    return summed[st.csc_from_coo]


@dataclass
class ShortfallData:
    """The per-solve numbers of the shortfall model ((K, n) unless stated; vehicles or requests)."""

    V: np.ndarray            # (n,) vacant EVs now
    L: np.ndarray            # low-battery EVs to route per slot
    p: np.ndarray            # (n,) plugs
    occ: np.ndarray          # occupied or queued plugs
    qa: np.ndarray           # (n,) queue allowance
    kappa: np.ndarray        # known arrivals (state.incoming) or 0
    s_hat: np.ndarray        # forecast supply carried into the next slot when the state has no incoming
    theta: np.ndarray        # timing share
    centre: np.ndarray       # the mode's net-demand level in U >= centre - A (nominal, demand_robust, dr: μ)
    nominal: np.ndarray      # the point forecast of the net demand (the nominal twin's centre)
    hires: np.ndarray        # h: the mode's mean demand (expected hires = h - U)
    sigma: np.ndarray        # dr: standard deviation of the net demand
    scenarios: np.ndarray | None   # saa: (N, K, n) net-demand scenarios
    fixed_hires: np.ndarray | None   # lagged returns: hires taken as data (K, n); None = the model's own
    mu_a: np.ndarray         # expected uncontrolled low-battery arrivals at plugs
    sigma_a: np.ndarray      # their standard deviation
    diagnostics: dict


def vectors(pairs: BalancingPairs, config: BalancingConfig, st: ShortfallStructure, dat: ShortfallData,
            returns_T: list | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``q`` (n_var,), ``b`` (rows,) and the dr tangent slopes (K n,) or None for one solve.

    ``returns_T``: the transposed trip-mobility matrices for lagged returns (``dat.fixed_hires`` given and
    the structure built without returns); ignored otherwise."""
    cfg = config
    K, n = cfg.horizon, pairs.n
    off, rows = st.off, st.rows
    nt = K * n
    nP, nYo, ys = len(st.plug), len(st.y_origins), st.y_slots
    q = np.zeros(st.n_var)
    q[off["X"]:off["Y"]] = np.concatenate([pairs.Wx[a] for a in st.ax])
    q[off["Y"]:off["Sf"]] = np.concatenate([st.Wy[a] for a in st.ay])
    lam = cfg.lost_request_km * SLOT_DISCOUNT ** np.arange(K)
    q[off["U"]:off["U"] + nt] = np.repeat(lam, n)
    q[off["Q"]:off["Q"] + len(ys) * nP] = cfg.charge_queue_km
    q[off["strand"]:off["strand"] + len(ys) * nYo] = cfg.elastic_km
    q[off["over"]:off["over"] + len(ys) * nP] = cfg.elastic_km
    b = np.zeros(st.A.shape[0])
    # x conservation
    b[rows["x_cons"]:rows["x_cons"] + n] = dat.V
    carry = dat.kappa + dat.s_hat - dat.hires   # (K, n)
    for k in range(1, K):
        P_T = None if pairs.mobility is None else pairs.mobility[k - 1].T
        rhs = carry[k - 1] if P_T is None else P_T @ carry[k - 1]
        for d in range(1, k + 1):
            if d - 1 < len(st.returns_T):
                rhs = rhs + st.returns_T[d - 1] @ dat.hires[k - d]
            elif dat.fixed_hires is not None and returns_T is not None and d - 1 < len(returns_T):
                rhs = rhs + returns_T[d - 1] @ dat.fixed_hires[k - d]   # lagged: a constant, no coupling
        b[rows["x_cons"] + k * n:rows["x_cons"] + (k + 1) * n] = rhs
    b[rows["a_def"]:rows["a_def"] + nt] = (dat.theta * dat.kappa).ravel()
    b[rows["y_cons"]:rows["y_cons"] + len(ys) * nYo] = dat.L[ys][:, st.y_origins].ravel()
    free = dat.p[None, st.plug] - dat.occ[:, st.plug]                    # (K, nP) free plugs, may be < 0
    chance = np.sqrt((1 - cfg.chance_epsilon) / cfg.chance_epsilon)
    need = dat.mu_a[:, st.plug] + chance * dat.sigma_a[:, st.plug]
    b[rows["cap"]:rows["cap"] + len(ys) * nP] = (free + dat.qa[None, st.plug] - need)[ys].ravel()
    b[rows["queue"]:rows["queue"] + len(ys) * nP] = (free - dat.mu_a[:, st.plug])[ys].ravel()
    slope = None
    c = dat.centre.ravel()
    if st.mode in ("nominal", "demand_robust"):
        b[rows["short"]:rows["short"] + nt] = -c
    elif st.mode == "saa":
        b[rows["short"]:rows["short"] + st.n_scen * nt] = -dat.scenarios.reshape(st.n_scen, nt).ravel()
    elif st.mode == "dr":
        sig = dat.sigma.ravel()
        if st.support:
            mu = np.maximum(c, 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                a_star = np.where(mu > 0, (mu ** 2 + sig ** 2) / (2 * np.maximum(mu, 1e-300)), 0.0)
                slope = np.where(mu > 0, mu ** 2 / (mu ** 2 + sig ** 2), 0.0)
            b[rows["short"] + nt:rows["short"] + 2 * nt] = -a_star
        r0 = rows["soc"] + 3 * np.arange(nt)
        b[r0] = -c
        b[r0 + 1] = sig
        b[r0 + 2] = -c
    return q, b, slope


def unpack(st: ShortfallStructure, x: np.ndarray, m_x: int, K: int, n: int) -> dict:
    """Moves ``X`` (K, m_x), ``Y`` (K, m_y) and the model's per-slot values of a solution ``x``."""
    off = st.off
    X, Y = unpack_moves(x[off["X"]:off["Y"]], x[off["Y"]:off["Sf"]], st.ax, st.ay, st.xoff, st.yoff, m_x,
                        len(st.pairs_y))
    nt = K * n
    nP, nYo, nYs = len(st.plug), len(st.y_origins), len(st.y_slots)
    return {"X": X, "Y": Y, "A": x[off["A"]:off["A"] + nt].reshape(K, n),
            "U": np.maximum(x[off["U"]:off["U"] + nt].reshape(K, n), 0.0),
            "Q": np.maximum(x[off["Q"]:off["Q"] + nYs * nP], 0.0),
            "strand": np.maximum(x[off["strand"]:off["strand"] + nYs * nYo].reshape(nYs, nYo), 0.0),
            "over": np.maximum(x[off["over"]:off["over"] + nYs * nP].reshape(nYs, nP), 0.0)}
