"""The move pairs of one region map under one :class:`~drbalance.config.BalancingConfig`.

A :class:`BalancingPairs` holds what every balancing formulation shares and what never changes for a
:class:`~drbalance.problem.BalancingProblem`: the sparse list of vacant-EV pairs within ``reach_km``
(every region's diagonal included), their road distances and origin / destination incidence matrices,
the candidate low-battery pairs within ``low_battery_reach_km`` (filtered per plug support by
:mod:`drbalance.problem_conic`), and the mobility matrices that carry vacant EVs from one slot to the
next.  Never dense ``n x n`` decision arrays: the pair lists are what scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from drbalance.config import BalancingConfig
from drbalance.errors import DataError


@dataclass(frozen=True)
class BalancingPairs:
    """Pair lists, distances, incidence and mobility of one region map (fixed per problem).

    Attributes
    ----------
    n : number of regions.
    pairs_x : (m_x, 2) int region positions ``(i, j)`` of the vacant-EV pairs within ``reach_km``.
    Wx : (m_x,) road distance of each vacant pair, km.
    Bx_orig, Bx_dest : (n, m_x) sparse 0/1 incidence: pair ``e`` leaves ``pairs_x[e, 0]`` and arrives in
        ``pairs_x[e, 1]`` (``Bx_dest @ X^k`` is the supply after balancing, vehicles per region).
    diag_x : (n,) index into ``pairs_x`` of each region's stay pair ``(i, i)``.
    mean_pair_km : mean distance of the reachable off-diagonal pairs, km (1.0 when there are none).
    lb_pairs : (m_lb, 2) candidate low-battery pairs within ``low_battery_reach_km``.
    Wlb : (m_lb,) their distances, km.
    mobility : None (identity) or ``K - 1`` sparse (n, n) matrices ``P^k``, see :func:`mobility_matrices`.
    """

    n: int
    pairs_x: np.ndarray
    Wx: np.ndarray
    Bx_orig: sp.csr_matrix
    Bx_dest: sp.csr_matrix
    diag_x: np.ndarray
    mean_pair_km: float
    lb_pairs: np.ndarray
    Wlb: np.ndarray
    mobility: list | None

    @classmethod
    def build(cls, regions, config: BalancingConfig, mobility=None) -> BalancingPairs:
        """Pairs of ``regions`` (a RegionMap, ``distance_km`` (n, n) in km) for ``config``'s reaches.

        ``mobility`` as for :class:`~drbalance.problem.BalancingProblem`.  Raises DataError for a pair
        list without every diagonal or for malformed mobility matrices.
        """
        n = int(regions.n)
        dist = np.asarray(regions.distance_km, float)
        pairs_x = regions.reachable_pairs(config.reach)
        Wx = dist[pairs_x[:, 0], pairs_x[:, 1]]
        lb_pairs = regions.reachable_pairs(config.low_battery_reach_km)
        Wlb = dist[lb_pairs[:, 0], lb_pairs[:, 1]]
        m = len(pairs_x)
        cols = np.arange(m)
        Bx_orig = sp.csr_matrix((np.ones(m), (pairs_x[:, 0], cols)), shape=(n, m))
        Bx_dest = sp.csr_matrix((np.ones(m), (pairs_x[:, 1], cols)), shape=(n, m))
        diag_x = np.flatnonzero(pairs_x[:, 0] == pairs_x[:, 1])
        if len(diag_x) != n:
            raise DataError("internal: the reachable pair list must include every region's diagonal")
        off = pairs_x[:, 0] != pairs_x[:, 1]
        mean_pair_km = float(Wx[off].mean()) if off.any() else 1.0
        return cls(n=n, pairs_x=pairs_x, Wx=Wx, Bx_orig=Bx_orig, Bx_dest=Bx_dest, diag_x=diag_x,
                   mean_pair_km=mean_pair_km, lb_pairs=lb_pairs, Wlb=Wlb,
                   mobility=mobility_matrices(mobility, config.horizon, n))

    def propagate(self, k: int, S: np.ndarray) -> np.ndarray:
        """Vacant EVs (n,) of slot ``k`` (0-based) carried to slot ``k + 1``: ``(P^k)^T S`` (``S`` if identity)."""
        return S if self.mobility is None else self.mobility[k].T @ S


def mobility_matrices(mobility, horizon: int, n: int) -> list | None:
    """Validated mobility: None, or the first ``horizon - 1`` matrices as sparse (n, n) CSR.

    ``mobility`` is None, an array ``(K-1, n, n)`` / ``(K, n, n)`` (the last is unused) or a list of
    (n, n) matrices (dense or scipy.sparse); entry ``P_ij`` is the share of EVs vacant in ``i`` during
    slot ``k`` that are vacant in ``j`` at ``k + 1``.  Raises DataError naming the bad matrix.
    """
    K = horizon
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


@dataclass(frozen=True)
class LowBatteryPairs:
    """The low-battery pairs of one plug support (shared by both formulations).

    Attributes
    ----------
    plug : (nP,) region positions with plugs.
    pairs_y : (m_y, 2) pairs within ``low_battery_reach_km`` whose destination has plugs.
    Wy : (m_y,) their distances, km.
    y_origins : (nYo,) regions with at least one such pair.
    By_orig : (nYo, m_y) sparse origin incidence; ``By_dest`` : (nP, m_y) destination incidence (rows follow ``plug``).
    """

    plug: np.ndarray
    pairs_y: np.ndarray
    Wy: np.ndarray
    y_origins: np.ndarray
    By_orig: sp.csr_matrix
    By_dest: sp.csr_matrix

    @classmethod
    def build(cls, pairs: BalancingPairs, plugs: np.ndarray) -> "LowBatteryPairs":
        n = pairs.n
        plug = np.flatnonzero(np.asarray(plugs) > 0)
        plug_pos = np.full(n, -1)
        plug_pos[plug] = np.arange(len(plug))
        keep = plug_pos[pairs.lb_pairs[:, 1]] >= 0
        pairs_y, Wy = pairs.lb_pairs[keep], pairs.Wlb[keep]
        mY = len(pairs_y)
        y_origins = np.unique(pairs_y[:, 0])
        orig_pos = np.full(n, -1)
        orig_pos[y_origins] = np.arange(len(y_origins))
        cy = np.arange(mY)
        By_orig = sp.csr_matrix((np.ones(mY), (orig_pos[pairs_y[:, 0]], cy)), shape=(len(y_origins), mY))
        By_dest = sp.csr_matrix((np.ones(mY), (plug_pos[pairs_y[:, 1]], cy)), shape=(len(plug), mY))
        return cls(plug, pairs_y, Wy, y_origins, By_orig, By_dest)


def slot_layout(pairs: BalancingPairs, config: BalancingConfig, m_y: int, inflow: bool) -> tuple:
    """Which pairs have a variable in each slot: ``(ax, ay, xoff, yoff, y_slots)``.

    Slot 1 has every pair; later slots keep the vacant pairs within ``later_reach_km`` and have low-battery
    moves only when an inflow is forecast.  ``xoff``/``yoff`` (K + 1,) are the starts of each slot's block.
    """
    K, m_x = config.horizon, len(pairs.pairs_x)
    later = pairs.Wx <= config.later_reach + 1e-12
    ax = [np.arange(m_x)] + [np.flatnonzero(later)] * (K - 1)
    ay = [np.arange(m_y)] + [np.arange(m_y) if inflow else np.zeros(0, np.int64)] * (K - 1)
    xoff = np.concatenate([[0], np.cumsum([len(a) for a in ax])])
    yoff = np.concatenate([[0], np.cumsum([len(a) for a in ay])])
    y_slots = np.array([k for k in range(K) if len(ay[k])], dtype=np.int64)
    return ax, ay, xoff, yoff, y_slots


def unpack_moves(x: np.ndarray, y: np.ndarray, ax: list, ay: list, xoff: np.ndarray, yoff: np.ndarray, m_x: int,
                 m_y: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``X`` (K, m_x) and ``Y`` (K, m_y) over the full pair lists from the solver's move blocks ``x``, ``y``
    laid out by :func:`slot_layout` (0 on the pairs without a variable in a slot)."""
    K = len(ax)
    X = np.zeros((K, m_x))
    Y = np.zeros((K, m_y))
    for k in range(K):
        X[k, ax[k]] = x[xoff[k]:xoff[k + 1]]
        Y[k, ay[k]] = y[yoff[k]:yoff[k + 1]]
    return X, Y
