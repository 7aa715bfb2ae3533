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

Modules, one idea each: ``use_cases`` (request probabilities, the paper's use cases and inputs),
``costs`` (cost models and discounts), ``qos`` (QoS functions, continuous extensions, quantiles),
``problem1``, ``problem2``, ``comparison`` (operator alone vs hybrid), ``tables`` (the paper's
tables), ``checks`` (argument checks).  Everything public is re-exported here.
"""

from drbalance.planning.hybrid_supply.comparison import OperatorOnlyComparison, operator_only
from drbalance.planning.hybrid_supply.costs import CostModel, Discount, ExponentialDiscount, NoDiscount, StepDiscount
from drbalance.planning.hybrid_supply.problem1 import Problem1Solution, solve_problem1, solve_problem1_exhaustive
from drbalance.planning.hybrid_supply.problem2 import Problem2Solution, solve_problem2
from drbalance.planning.hybrid_supply.qos import (
    binom_cdf_continuous,
    binom_pmf_continuous,
    normal_contour_T,
    qos_bad,
    qos_non_surge,
    qos_normal,
    qos_surge,
    smallest_k,
)
from drbalance.planning.hybrid_supply.tables import problem1_table, problem2_table
from drbalance.planning.hybrid_supply.use_cases import (
    CAR_SHARING,
    CHARGE_POINTS,
    PAPER_POPULATIONS,
    PAPER_THETAS,
    TABLE5_SCENARIOS,
    RequestProbabilities,
    UseCase,
)

__all__ = [
    "RequestProbabilities",
    "Discount",
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
