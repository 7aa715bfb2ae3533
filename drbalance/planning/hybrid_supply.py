"""Hybrid supply for demand surges: QoS dimensioning of a shared pool plus prosumer surge supply.

Model (MATH.md section 4, reconstructed from Mohamadzadehoqaz et al.): ``N`` consumers each request
one item on a given day with probability ``p``; an operator owns ``M`` shared items (EVs, charge
points) of which ``Q`` are a reserve kept for prosumers; ``T`` prosumers lend their own items during
surges.  Each QoS is the probability that every request of its scenario is served, a binomial CDF
``F(k; n, p) = P(Bin(n, p) <= k)``:

* non-surge ``QoS_ns(M)      = F(M;          N, p_ns)``
* surge     ``QoS_s(M, T, Q) = F(M - Q + T;  N, p_s)``
* prosumer  ``QoS_b(Q, T)    = F(Q;          T, p_b)``  (``Bin(0, p)`` has CDF 1: no prosumer, no risk)

Problem 1 (minimum-cost design) minimises ``cost(M, T)`` over non-negative integers subject to the
three QoS ``>= θ``, with ``Q <= M``.  Its structure makes it exact and cheap (:func:`solve_problem1`):

1. ``QoS_ns`` only involves ``M``: ``M >= M_ns`` := smallest ``K`` with ``F(K; N, p_ns) >= θ``.
2. ``Q`` costs nothing and only helps ``QoS_b`` while hurting ``QoS_s``, so for a given ``T`` the best
   ``Q`` is ``Q_b(T)`` := smallest ``K`` with ``F(K; T, p_b) >= θ``.
3. The surge bound reads ``M + g(T) >= K_s`` with ``g(T) = T - Q_b(T)`` and ``K_s`` the surge quantile.
   ``Q_b(T) <= Q_b(T+1) <= Q_b(T) + 1``, so ``g`` is non-decreasing and, for each ``M``, the cheapest
   ``T`` is the smallest one with ``g(T) >= K_s - M`` (a ``searchsorted``).
4. The cost only depends on ``(M, T)`` and rises with ``T``; minimise over ``M`` by enumeration,
   which handles non-monotone (step-discount) costs exactly.  ``M`` beyond ``K_s`` needs no prosumer;
   the enumeration stops where a lower bound of the shared-item cost exceeds the best cost found.

Problem 2 (fixed ``N, M, T``) chooses ``Q`` in ``0..M``: 2a maximises ``QoS_s + QoS_b``, 2b
minimises ``|QoS_s - QoS_b|`` (:func:`solve_problem2`, by enumeration).  The distributed AIMD
solution is in :mod:`drbalance.planning.aimd`; it uses the continuous extensions
:func:`binom_cdf_continuous` (regularised incomplete beta) and :func:`binom_pmf_continuous`.

Units: items are counts; costs are pounds over the cost model's horizon (``horizon_years``);
QoS values are probabilities in ``[0, 1]`` (rows meant for tables carry percentages).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol, Sequence

import numpy as np
from scipy import optimize, special, stats

from drbalance.errors import ConfigError, InfeasibleError

__all__ = [
    "RequestProbabilities",
    "NoDiscount",
    "StepDiscount",
    "ExponentialDiscount",
    "CostModel",
    "UseCase",
    "CAR_SHARING",
    "CHARGE_POINTS",
    "PAPER_POPULATIONS",
    "PAPER_THETAS",
    "TABLE5_SCENARIOS",
    "qos_non_surge",
    "qos_surge",
    "qos_bad",
    "binom_cdf_continuous",
    "binom_pmf_continuous",
    "qos_normal",
    "normal_contour_T",
    "smallest_k",
    "Problem1Solution",
    "solve_problem1",
    "solve_problem1_exhaustive",
    "Problem2Solution",
    "solve_problem2",
    "OperatorOnlyComparison",
    "operator_only",
    "problem1_table",
    "problem2_table",
]


# ----------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------


def _check_prob(name: str, p: float, *, open_interval: bool = False) -> float:
    p = float(p)
    if not np.isfinite(p) or p < 0.0 or p > 1.0 or (open_interval and p in (0.0, 1.0)):
        rng = "(0, 1)" if open_interval else "[0, 1]"
        raise ConfigError(f"{name} must be a probability in {rng}; got {p!r}")
    return p


def _check_theta(theta: float, name: str = "theta") -> float:
    theta = float(theta)
    if not np.isfinite(theta) or not 0.0 < theta < 1.0:
        raise ConfigError(
            f"{name} must be a QoS level strictly between 0 and 1 (e.g. 0.98 for 98 %); got {theta!r}"
        )
    return theta


def _check_count(name: str, value: int, *, minimum: int = 0) -> int:
    if isinstance(value, (bool, np.bool_)) or int(value) != value or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


@dataclass(frozen=True)
class RequestProbabilities:
    """Daily request probabilities of one consumer/prosumer, per scenario (dimensionless).

    ``p_ns``: a consumer requests an item on a non-surge day; ``p_s``: on a surge day;
    ``p_b``: a prosumer needs a reserve item because a consumer misbehaved (late return...).
    """

    p_ns: float
    p_s: float
    p_b: float

    def __post_init__(self) -> None:
        for name in ("p_ns", "p_s", "p_b"):
            _check_prob(name, getattr(self, name))


# ----------------------------------------------------------------------------------------------
# QoS functions
# ----------------------------------------------------------------------------------------------


def qos_non_surge(M, N, p_ns):
    """``QoS_ns = F(M; N, p_ns)``: probability that ``M`` shared items serve a non-surge day.

    ``M``, ``N`` broadcast (counts); returns float array (or scalar) in ``[0, 1]``.
    """
    return stats.binom.cdf(M, N, p_ns)


def qos_surge(M, T, Q, N, p_s):
    """``QoS_s = F(M - Q + T; N, p_s)``: consumers served on a surge day by the unreserved pool plus
    the ``T`` prosumer items.  Arguments broadcast (counts)."""
    return stats.binom.cdf(np.asarray(M) - np.asarray(Q) + np.asarray(T), N, p_s)


def qos_bad(Q, T, p_b):
    """``QoS_b = F(Q; T, p_b)``: the reserve ``Q`` covers every prosumer let down by a consumer.
    ``T = 0`` gives 1 (no prosumer, no risk).  Arguments broadcast (counts)."""
    return stats.binom.cdf(Q, T, p_b)


def binom_cdf_continuous(x, n, p):
    """Continuous extension of the binomial CDF in ``x`` (and ``n``): ``I_{1-p}(n - x, x + 1)``.

    Equals ``binom.cdf(x, n, p)`` at integers ``0 <= x < n``; 0 for ``x <= -1``, 1 for ``x >= n``;
    continuous and increasing in between.  ``x``, ``n`` broadcast (real item counts), ``0 < p < 1``.
    This is the smooth QoS the AIMD agents evaluate at their non-integer running averages.
    """
    x, n = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(n, dtype=float))
    out = np.where(x >= n, 1.0, 0.0)
    inside = (x > -1.0) & (x < n)
    if np.any(inside):
        out = out.copy()
        out[inside] = special.betainc(n[inside] - x[inside], x[inside] + 1.0, 1.0 - p)
    return out[()] if out.ndim == 0 else out


def binom_pmf_continuous(x, n, p):
    """Continuous extension of the binomial pmf (gamma functions): the "derivative" ``f'`` of the
    QoS functions in the AIMD rule (paper eq. 21).  Equals ``binom.pmf`` at integers; 0 outside
    ``(-1, n + 1)``.  ``x``, ``n`` broadcast (real item counts), ``0 < p < 1``."""
    x, n = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(n, dtype=float))
    inside = (x > -1.0) & (x < n + 1.0)
    xs, ns = np.where(inside, x, 0.0), np.where(inside, n, 1.0)
    logpmf = (
        special.gammaln(ns + 1.0)
        - special.gammaln(xs + 1.0)
        - special.gammaln(ns - xs + 1.0)
        + xs * np.log(p)
        + (ns - xs) * np.log1p(-p)
    )
    out = np.where(inside, np.exp(logpmf), 0.0)
    return out[()] if out.ndim == 0 else out


def qos_normal(k, n, p, *, continuity: bool = True):
    """Normal approximation ``Φ((k + ½ - n p) / sqrt(n p (1 - p)))`` of ``F(k; n, p)``
    (``continuity=False`` drops the ½).  Arrays broadcast."""
    k = np.asarray(k, dtype=float)
    sd = np.sqrt(np.asarray(n, dtype=float) * p * (1.0 - p))
    return stats.norm.cdf((k + (0.5 if continuity else 0.0) - np.asarray(n) * p) / sd)


def normal_contour_T(M, theta, N, p_s, Q, *, continuity: bool = True):
    """The "pseudo-linear" surge contour ``QoS_s(M, T) = θ`` under the normal approximation:

    ``T = Q - M + N p_s + z_θ sqrt(N p_s (1 - p_s)) - ½``  (items; ``M`` array-like),

    a line of slope -1 in the ``(M, T)`` plane, which is why the paper's contours look linear.
    """
    theta = _check_theta(theta)
    z = stats.norm.ppf(theta)
    return (
        Q
        - np.asarray(M, dtype=float)
        + N * p_s
        + z * np.sqrt(N * p_s * (1.0 - p_s))
        - (0.5 if continuity else 0.0)
    )


def smallest_k(theta, n, p, *, max_corrections: int = 64):
    """Smallest integer ``K`` with ``F(K; n, p) >= θ`` (the binomial θ-quantile), vectorised.

    ``binom.ppf`` gives the starting point; it is then corrected by explicit CDF checks in both
    directions (``F(K) >= θ`` and ``F(K - 1) < θ``), because the ppf's inversion is off by one when a
    CDF value sits within round-off of ``θ`` (e.g. ``θ = binom.cdf(k)`` itself, or ``θ = 0.98``,
    ``0.99``).  The definition therefore matches :func:`qos_non_surge` & co. evaluated with
    ``binom.cdf`` exactly.  ``theta``, ``n``, ``p`` broadcast; ``n >= 0`` counts.  Returns int64.
    """
    theta_a, n_a, p_a = np.broadcast_arrays(
        np.asarray(theta, dtype=float), np.asarray(n, dtype=float), np.asarray(p, dtype=float)
    )
    if np.any(~((theta_a > 0) & (theta_a < 1))):
        raise ConfigError("smallest_k: theta must lie strictly between 0 and 1 (e.g. 0.98)")
    if np.any(n_a < 0) or np.any((p_a < 0) | (p_a > 1)):
        raise ConfigError("smallest_k: n must be >= 0 and p in [0, 1]")
    k = stats.binom.ppf(theta_a, n_a, p_a)
    k = np.clip(np.nan_to_num(k, nan=0.0), 0.0, n_a).astype(np.int64)
    for _ in range(max_corrections):
        up = stats.binom.cdf(k, n_a, p_a) < theta_a
        up &= k < n_a
        down = (k > 0) & (stats.binom.cdf(k - 1, n_a, p_a) >= theta_a)
        if not (up.any() or down.any()):
            break
        k = k + up.astype(np.int64) - down.astype(np.int64)
    else:  # pragma: no cover - would need a ppf off by more than max_corrections
        raise ConfigError("smallest_k did not settle; raise max_corrections")
    return k[()] if k.ndim == 0 else k


# ----------------------------------------------------------------------------------------------
# cost models
# ----------------------------------------------------------------------------------------------


class Discount(Protocol):
    """A fleet discount rate ``D(M)`` in ``[0, 1)`` as a function of the number of shared items."""

    def __call__(self, m) -> np.ndarray: ...

    @property
    def sup(self) -> float:
        """An upper bound of ``D`` over all ``M`` (used to bound the Problem 1 enumeration)."""
        ...


@dataclass(frozen=True)
class NoDiscount:
    """``D(M) = 0``: the linear cost model."""

    def __call__(self, m):
        return np.zeros_like(np.asarray(m, dtype=float))

    @property
    def sup(self) -> float:
        return 0.0


@dataclass(frozen=True)
class StepDiscount:
    """Volume discount by quantity bracket (paper Tables 3 and 6).

    ``lower_bounds[j]`` is the first quantity of bracket ``j`` (increasing), ``rates[j]`` its
    discount (fraction, e.g. 0.05 for 5 %).  Quantities below the first bound get no discount.
    """

    lower_bounds: tuple[int, ...]
    rates: tuple[float, ...]

    def __post_init__(self) -> None:
        lb, r = np.asarray(self.lower_bounds), np.asarray(self.rates, dtype=float)
        if lb.ndim != 1 or lb.size == 0 or lb.shape != r.shape:
            raise ConfigError("StepDiscount needs equally long, non-empty lower_bounds and rates")
        if np.any(np.diff(lb) <= 0):
            raise ConfigError(f"StepDiscount lower_bounds must increase strictly; got {self.lower_bounds}")
        if np.any((r < 0) | (r >= 1)):
            raise ConfigError(f"StepDiscount rates are fractions in [0, 1); got {self.rates}")

    def __call__(self, m):
        m = np.asarray(m, dtype=float)
        idx = np.searchsorted(np.asarray(self.lower_bounds, dtype=float), m, side="right") - 1
        rates = np.concatenate([[0.0], np.asarray(self.rates, dtype=float)])
        return rates[idx + 1]

    @property
    def sup(self) -> float:
        return float(max(self.rates))


@dataclass(frozen=True)
class ExponentialDiscount:
    """Smooth discount ``D(M) = a (1 - exp(-b M))`` (paper eq. 25): concave, differentiable cost."""

    a: float
    b: float

    def __call__(self, m):
        return self.a * -np.expm1(-self.b * np.asarray(m, dtype=float))

    @property
    def sup(self) -> float:
        return float(max(self.a, 0.0))

    @classmethod
    def fit(cls, step: StepDiscount, m=None) -> "ExponentialDiscount":
        """Least-squares fit of ``a, b`` to a step discount (``scipy.optimize.curve_fit``).

        The paper does not say which points it fitted.  Default: one point per bracket, at its
        first quantity ``(lower_bounds[j], rates[j])`` (the corners of the step function).  Pass
        ``m`` (array of quantities) to fit the step function sampled at those quantities instead.
        """
        if m is None:
            x = np.asarray(step.lower_bounds, dtype=float)
            y = np.asarray(step.rates, dtype=float)
        else:
            x = np.asarray(m, dtype=float)
            y = step(x)
        a0 = max(step.sup, 1e-3)
        b0 = 1.0 / max(float(np.median(x)), 1.0)
        (a, b), _ = optimize.curve_fit(
            lambda mm, a, b: a * -np.expm1(-b * mm), x, y, p0=(a0, b0), bounds=([0.0, 0.0], [1.0, np.inf])
        )
        return cls(float(a), float(b))


@dataclass(frozen=True)
class CostModel:
    """``cost(M, T) = c_M M (1 - D(M)) + c_T T`` in pounds over ``horizon_years``.

    ``shared_unit_cost`` (£ per shared item over the horizon), ``prosumer_unit_cost`` (£ paid per
    participating prosumer over the horizon), ``discount`` the fleet discount ``D``.
    """

    shared_unit_cost: float
    prosumer_unit_cost: float
    horizon_years: float = 1.0
    discount: Discount = field(default_factory=NoDiscount)

    def __post_init__(self) -> None:
        if not (self.shared_unit_cost > 0 and self.prosumer_unit_cost >= 0 and self.horizon_years > 0):
            raise ConfigError(
                "CostModel needs shared_unit_cost > 0, prosumer_unit_cost >= 0 and horizon_years > 0; got "
                f"{self.shared_unit_cost}, {self.prosumer_unit_cost}, {self.horizon_years}"
            )
        if not 0.0 <= self.discount.sup < 1.0:
            raise ConfigError(f"discount must stay in [0, 1); its supremum is {self.discount.sup}")

    def shared_cost(self, M):
        """Cost of ``M`` shared items (£ over the horizon); array-like ``M``."""
        M = np.asarray(M, dtype=float)
        return self.shared_unit_cost * M * (1.0 - self.discount(M))

    def total(self, M, T):
        """``cost(M, T)`` in £ over the horizon; ``M``, ``T`` broadcast."""
        return self.shared_cost(M) + self.prosumer_unit_cost * np.asarray(T, dtype=float)

    def shared_cost_lower_bound(self, M):
        """``c_M (1 - sup D) M <= shared_cost(M)``, used to stop the enumeration over ``M``."""
        return self.shared_unit_cost * (1.0 - self.discount.sup) * np.asarray(M, dtype=float)

    def with_discount(self, discount: Discount) -> "CostModel":
        return replace(self, discount=discount)

    def linear(self) -> "CostModel":
        """The same model without discount."""
        return self.with_discount(NoDiscount())

    def fitted_exponential(self, m=None) -> "CostModel":
        """The same model with its step discount replaced by the fitted ``a (1 - e^{-bM})``."""
        if not isinstance(self.discount, StepDiscount):
            raise ConfigError("fitted_exponential needs a CostModel whose discount is a StepDiscount")
        return self.with_discount(ExponentialDiscount.fit(self.discount, m))


@dataclass(frozen=True)
class UseCase:
    """A use case of the paper: request probabilities and its real (step-discount) cost model."""

    name: str
    probs: RequestProbabilities
    cost: CostModel
    cost_label: str  # how the paper labels the total cost column


#: Car sharing (paper section 5.1): £6500/EV/yr with Table 3 discounts, £2400/prosumer/yr.
CAR_SHARING = UseCase(
    name="car sharing",
    probs=RequestProbabilities(p_ns=0.10, p_s=0.30, p_b=0.01),
    cost=CostModel(
        shared_unit_cost=6500.0,
        prosumer_unit_cost=2400.0,
        horizon_years=1.0,
        discount=StepDiscount((1, 10, 50, 100, 200, 500, 1000), (0.0, 0.03, 0.05, 0.10, 0.15, 0.20, 0.25)),
    ),
    cost_label="annual cost (M£)",
)

#: Shared charge points (paper section 5.2): £26480/charger and £2400/prosumer over 10 years,
#: Table 6 discounts.
CHARGE_POINTS = UseCase(
    name="charge points",
    probs=RequestProbabilities(p_ns=0.005, p_s=0.015, p_b=0.01),
    cost=CostModel(
        shared_unit_cost=26480.0,
        prosumer_unit_cost=2400.0,
        horizon_years=10.0,
        discount=StepDiscount((1, 10, 20, 50, 100, 200), (0.0, 0.05, 0.10, 0.15, 0.20, 0.25)),
    ),
    cost_label="cost over 10 years (M£)",
)

#: The consumer populations and QoS levels of the paper's Tables 4 and 8 (inputs, not results).
PAPER_POPULATIONS: tuple[int, ...] = (1000, 5000, 10000, 50000)
PAPER_THETAS: tuple[float, ...] = (0.98, 0.99)
#: The (N, M, T) of the paper's Table 5 (inputs: M, T rounded from Table 4 by the authors).
TABLE5_SCENARIOS: tuple[tuple[int, int, int], ...] = (
    (1000, 120, 215),
    (5000, 545, 1040),
    (10000, 1060, 2065),
    (50000, 5150, 10200),
)


# ----------------------------------------------------------------------------------------------
# Problem 1
# ----------------------------------------------------------------------------------------------


def _thetas(theta) -> tuple[float, float, float]:
    if np.ndim(theta) == 0:
        t = _check_theta(theta)
        return (t, t, t)
    vals = tuple(float(v) for v in theta)
    if len(vals) != 3:
        raise ConfigError(f"theta is one level or three (non-surge, surge, prosumer); got {theta!r}")
    return tuple(_check_theta(v, n) for v, n in zip(vals, ("theta_ns", "theta_s", "theta_b")))  # type: ignore[return-value]


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
    N = _check_count("N", N, minimum=1)
    th_ns, th_s, th_b = _thetas(theta)
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
    th_ns, th_s, th_b = _thetas(theta)
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


# ----------------------------------------------------------------------------------------------
# Problem 2
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem2Solution:
    """Best split of ``M`` items for fixed ``N, M, T``: ``q_max`` (2a) and ``q_eq`` (2b).

    ``qos_s``/``qos_b``: arrays of shape ``(M + 1,)`` over ``Q = 0..M`` (probabilities).
    """

    N: int
    M: int
    T: int
    probs: RequestProbabilities
    q_max: int
    q_eq: int
    qos_s: np.ndarray
    qos_b: np.ndarray

    def rows(self) -> list[dict]:
        """Two Table 5 rows: ``problem`` "max" / "eq", ``Q``, ``qos_s``, ``qos_b`` (percent) and more."""
        out = []
        for name, q in (("max", self.q_max), ("eq", self.q_eq)):
            s, b = 100.0 * float(self.qos_s[q]), 100.0 * float(self.qos_b[q])
            out.append(
                {
                    "N": self.N,
                    "M": self.M,
                    "T": self.T,
                    "problem": name,
                    "Q": q,
                    "q_over_m": 100.0 * q / self.M,
                    "qos_s": s,
                    "qos_b": b,
                    "average": 0.5 * (s + b),
                }
            )
        return out


def solve_problem2(N: int, M: int, T: int, probs: RequestProbabilities) -> Problem2Solution:
    """Enumerate ``Q = 0..M``: 2a ``argmax QoS_s + QoS_b``, 2b ``argmin |QoS_s - QoS_b|``
    (ties: smallest ``Q``).  ``N, M, T`` counts."""
    N = _check_count("N", N, minimum=1)
    M = _check_count("M", M, minimum=1)
    T = _check_count("T", T, minimum=0)
    Q = np.arange(M + 1)
    s = np.asarray(qos_surge(M, T, Q, N, probs.p_s), dtype=float)
    b = np.asarray(qos_bad(Q, T, probs.p_b), dtype=float)
    return Problem2Solution(
        N=N,
        M=M,
        T=T,
        probs=probs,
        q_max=int(np.argmax(s + b)),
        q_eq=int(np.argmin(np.abs(s - b))),
        qos_s=s,
        qos_b=b,
    )


# ----------------------------------------------------------------------------------------------
# Operator-only comparison
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OperatorOnlyComparison:
    """A provider alone (pure B2C, no prosumers) against the hybrid design, same θ.

    ``M_surge``: items a provider alone needs so that ``QoS_s >= θ`` (and so all scenarios);
    ``qos_s_nonsurge_design``: surge QoS if it only buys ``M_ns`` items (designed for non-surge days);
    ``ownership_cost``: every consumer owning one item at the undiscounted unit cost.
    Costs in £ over the cost model's horizon.
    """

    N: int
    theta: float
    M_ns: int
    qos_s_nonsurge_design: float
    M_surge: int
    cost_surge: float
    hybrid: Problem1Solution
    ownership_cost: float

    @property
    def saving(self) -> float:
        """Fraction of the operator-only (surge-dimensioned) cost saved by the hybrid design."""
        return 1.0 - self.hybrid.cost / self.cost_surge

    def as_row(self) -> dict:
        years = self.hybrid.horizon_years
        return {
            "N": self.N,
            "qos": 100.0 * self.theta,
            "M_nonsurge": self.M_ns,
            "qos_s_nonsurge_design": 100.0 * self.qos_s_nonsurge_design,
            "M_operator_only": self.M_surge,
            "cost_operator_only_million": self.cost_surge / 1e6,
            "cost_hybrid_million": self.hybrid.cost / 1e6,
            "cost_ownership_million": self.ownership_cost / 1e6,
            "per_consumer_operator_only": self.cost_surge / (years * self.N),
            "per_consumer_hybrid": self.hybrid.cost_per_consumer_per_year,
            "saving_percent": 100.0 * self.saving,
        }


def operator_only(N: int, theta: float, probs: RequestProbabilities, cost: CostModel) -> OperatorOnlyComparison:
    """Compare the hybrid optimum with a provider that must cover surges alone (``T = Q = 0``)."""
    N = _check_count("N", N, minimum=1)
    theta = _check_theta(theta)
    hybrid = solve_problem1(N, theta, probs, cost)
    # smallest-cost M >= K_s with T = 0 (a discount step may make a larger M cheaper)
    M_lo = max(int(smallest_k(theta, N, probs.p_s)), hybrid.M_ns)
    c_lo = float(cost.shared_cost(M_lo))
    M_stop = int(np.floor(c_lo / cost.shared_cost_lower_bound(1.0)))
    Ms = np.arange(M_lo, max(M_stop, M_lo) + 1)
    c = cost.shared_cost(Ms)
    j = int(np.argmin(c))
    return OperatorOnlyComparison(
        N=N,
        theta=theta,
        M_ns=hybrid.M_ns,
        qos_s_nonsurge_design=float(qos_surge(hybrid.M_ns, 0, 0, N, probs.p_s)),
        M_surge=int(Ms[j]),
        cost_surge=float(c[j]),
        hybrid=hybrid,
        ownership_cost=cost.shared_unit_cost * N,
    )


# ----------------------------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------------------------


def problem1_table(
    use_case: UseCase,
    populations: Sequence[int] = PAPER_POPULATIONS,
    thetas: Sequence[float] = PAPER_THETAS,
    cost: CostModel | None = None,
) -> list[Problem1Solution]:
    """Problem 1 for every ``(N, θ)`` (Table 4 for :data:`CAR_SHARING`, Table 8 for
    :data:`CHARGE_POINTS`).  ``cost`` overrides the use case's real step-discount model."""
    cm = use_case.cost if cost is None else cost
    return [solve_problem1(n, th, use_case.probs, cm) for n in populations for th in thetas]


def problem2_table(
    use_case: UseCase = CAR_SHARING, scenarios: Sequence[tuple[int, int, int]] = TABLE5_SCENARIOS
) -> list[Problem2Solution]:
    """Problem 2 (2a and 2b) for each ``(N, M, T)`` (Table 5 with the defaults)."""
    return [solve_problem2(n, m, t, use_case.probs) for n, m, t in scenarios]
