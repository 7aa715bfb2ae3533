"""A provider alone (pure B2C, no prosumers) against the hybrid design."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drbalance.planning.hybrid_supply.checks import check_count, check_theta
from drbalance.planning.hybrid_supply.costs import CostModel
from drbalance.planning.hybrid_supply.problem1 import Problem1Solution, solve_problem1
from drbalance.planning.hybrid_supply.qos import qos_surge, smallest_k
from drbalance.planning.hybrid_supply.use_cases import RequestProbabilities


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
    N = check_count("N", N, minimum=1)
    theta = check_theta(theta)
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
