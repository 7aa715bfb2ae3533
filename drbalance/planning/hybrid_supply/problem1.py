"""Problem 1: the minimum-cost design ``(M, T, Q)`` meeting the three QoS levels (exact, vectorised),
and a brute-force reference for small instances."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drbalance.errors import ConfigError, InfeasibleError
from drbalance.planning.hybrid_supply.checks import check_count, theta_triple
from drbalance.planning.hybrid_supply.costs import CostModel
from drbalance.planning.hybrid_supply.qos import qos_bad, qos_non_surge, qos_surge, smallest_k
from drbalance.planning.hybrid_supply.use_cases import RequestProbabilities


@dataclass(frozen=True)
class Problem1Solution:
    """Minimum-cost design: ``M`` shared items, ``T`` prosumers, ``Q`` reserve (counts).

    ``cost`` is £ over the cost model's horizon; ``qos_*`` the achieved QoS (probabilities);
    ``M_ns`` and ``K_s`` the non-surge and surge quantiles; ``n_candidates`` how many ``M`` values
    the enumeration scored.
    """

    N: int
    theta: tuple[float, float, float]
    M: int
    T: int
    Q: int
    cost: float
    horizon_years: float
    qos_ns: float
    qos_s: float
    qos_b: float
    M_ns: int
    K_s: int
    n_candidates: int

    @property
    def cost_per_consumer_per_year(self) -> float:
        """£ per consumer per year."""
        return self.cost / (self.horizon_years * self.N)

    def as_row(self) -> dict:
        """A row of Tables 4/8: ``N, qos`` (percent, the common θ), ``M, T, Q``, ``cost_million``
        (M£ over the horizon), ``cost_per_consumer`` (£/consumer/yr), plus the achieved QoS (%)."""
        return {
            "N": self.N,
            "qos": round(100.0 * self.theta[1], 6),
            "M": self.M,
            "T": self.T,
            "Q": self.Q,
            "cost_million": self.cost / 1e6,
            "cost_per_consumer": self.cost_per_consumer_per_year,
            "qos_ns": 100.0 * self.qos_ns,
            "qos_s": 100.0 * self.qos_s,
            "qos_b": 100.0 * self.qos_b,
        }


def _reserve_table(need: int, theta_b: float, p_b: float) -> tuple[np.ndarray, np.ndarray]:
    """``Q_b(T)`` and ``g(T) = T - Q_b(T)`` for ``T = 0..T_cap`` with ``g(T_cap) >= need`` when
    reachable (``g`` grows like ``(1 - p_b) T``); otherwise as far as a generous cap."""
    need = max(int(need), 0)
    if p_b >= 1.0:
        T = np.arange(1)
        return T * 0, T * 0
    cap = int(np.ceil((need + 10.0 * np.sqrt(need + 1.0) + 10.0) / (1.0 - p_b)))
    hard_cap = int(50 * (need + 10) / (1.0 - p_b))
    while True:
        T = np.arange(cap + 1)
        Qb = smallest_k(theta_b, T, p_b)
        g = T - Qb
        if g[-1] >= need or cap >= hard_cap:
            return Qb, g
        cap = min(2 * cap, hard_cap)


def solve_problem1(N: int, theta, probs: RequestProbabilities, cost: CostModel) -> Problem1Solution:
    """Exact minimum-cost ``(M, T, Q)`` for ``N`` consumers (see the module docstring).

    ``theta``: one QoS level for the three constraints or a ``(θ_ns, θ_s, θ_b)`` triple.
    Ties in cost go to the smallest ``M`` (then the smallest ``T``, ``Q``).  Vectorised over the
    candidate ``M`` values; exact for any cost increasing in ``T`` with ``shared_cost(M) >=
    shared_cost_lower_bound(M)`` (all models here).
    """
    N = check_count("N", N, minimum=1)
    th_ns, th_s, th_b = theta_triple(theta)
    M_ns = int(smallest_k(th_ns, N, probs.p_ns))
    K_s = int(smallest_k(th_s, N, probs.p_s))
    Qb, g = _reserve_table(K_s - M_ns, th_b, probs.p_b)

    def score(Ms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        need = np.maximum(K_s - Ms, 0)
        Ts = np.searchsorted(g, need, side="left")
        ok = Ts < g.size
        Ts = np.minimum(Ts, g.size - 1)
        Qs = Qb[Ts]
        ok &= Qs <= Ms  # the reserve is part of the pool
        costs = np.where(ok, cost.total(Ms, Ts), np.inf)
        return Ts, Qs, costs, ok

    M_hi = max(M_ns, K_s)
    Ms = np.arange(M_ns, M_hi + 1)
    Ts, Qs, costs, _ = score(Ms)
    best = int(np.argmin(costs))  # first minimum = smallest M
    best_cost = float(costs[best])
    n_candidates = Ms.size
    # Beyond K_s no prosumer is needed (T = 0); a discount may still make a larger M cheaper.
    if np.isfinite(best_cost):
        lb = cost.shared_cost_lower_bound(1.0)
        M_stop = int(np.floor(best_cost / lb)) if lb > 0 else M_hi
        if M_stop > M_hi:
            M2 = np.arange(M_hi + 1, M_stop + 1)
            T2, Q2, c2, _ = score(M2)
            j = int(np.argmin(c2))
            n_candidates += M2.size
            if c2[j] < best_cost:
                Ms, Ts, Qs, costs, best, best_cost = M2, T2, Q2, c2, j, float(c2[j])
    if not np.isfinite(best_cost):
        raise InfeasibleError(
            f"no (M, T, Q) meets QoS >= {theta} for N={N}, {probs}: the prosumer bound cannot be met "
            "with Q <= M; lower theta_b or p_b"
        )
    M, T, Q = int(Ms[best]), int(Ts[best]), int(Qs[best])
    return Problem1Solution(
        N=N,
        theta=(th_ns, th_s, th_b),
        M=M,
        T=T,
        Q=Q,
        cost=best_cost,
        horizon_years=cost.horizon_years,
        qos_ns=float(qos_non_surge(M, N, probs.p_ns)),
        qos_s=float(qos_surge(M, T, Q, N, probs.p_s)),
        qos_b=float(qos_bad(Q, T, probs.p_b)),
        M_ns=M_ns,
        K_s=K_s,
        n_candidates=int(n_candidates),
    )


def solve_problem1_exhaustive(
    N: int, theta, probs: RequestProbabilities, cost: CostModel, M_max: int, T_max: int
) -> tuple[int, int, int, float] | None:
    """Reference brute force over the full grid ``0 <= M <= M_max, 0 <= T <= T_max, 0 <= Q <= M``.

    Returns ``(M, T, Q, cost)`` minimising the cost (ties: smallest ``M``, ``T``, ``Q``) or ``None``
    when nothing on the grid is feasible.  Meant for checking :func:`solve_problem1` on small
    instances: the grid has ``(M_max+1)(T_max+1)(M_max+1)`` points (refused above 2e7).
    """
    th_ns, th_s, th_b = theta_triple(theta)
    size = (M_max + 1) ** 2 * (T_max + 1)
    if size > 2e7:
        raise ConfigError(f"exhaustive grid of {size:.3g} points is too large; lower M_max or T_max")
    M = np.arange(M_max + 1)[:, None, None]
    T = np.arange(T_max + 1)[None, :, None]
    Q = np.arange(M_max + 1)[None, None, :]
    feas = (
        (qos_non_surge(M, N, probs.p_ns) >= th_ns)
        & (qos_surge(M, T, Q, N, probs.p_s) >= th_s)
        & (qos_bad(Q, T, probs.p_b) >= th_b)
        & (Q <= M)
    )
    c = np.where(feas, cost.total(M, T), np.inf)
    if not np.isfinite(c).any():
        return None
    # lexicographic (cost, M, T, Q): argmin on C-ordered flattening already prefers small M, T, Q
    flat = int(np.argmin(c))
    m, t, q = np.unravel_index(flat, c.shape)
    return int(m), int(t), int(q), float(c[m, t, q])
