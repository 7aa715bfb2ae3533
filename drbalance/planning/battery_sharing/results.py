"""Results of Algorithms 2 and 1: :class:`SearchResult`, :class:`TrialResult`, :class:`PlanningResult`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from drbalance.planning.battery_sharing.config import PlanningConfig
from drbalance.planning.battery_sharing.scenario_program import NonSharedSolution, SharedSolution


@dataclass(frozen=True)
class SearchResult:
    """Algorithm 2's output: the solution at the smallest scenario count ``m`` tried whose
    empirical P-SI reliability exceeds ``α`` (or at ``M_sc`` when none does: ``meets_target`` False).

    steps: ``(m, reliability)`` pairs in the order tried.
    """

    solution: SharedSolution
    reliability: float
    meets_target: bool
    max_scenarios: int
    steps: tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class TrialResult:
    """One trial of Algorithm 1: Algorithm 2's search, the P-NS solution from the same evaluation
    samples, and the relative reduction ``1 - total_shared / total_nonshared``."""

    search: SearchResult
    nonshared: NonSharedSolution
    reduction: float


@dataclass(frozen=True)
class PlanningResult:
    """Algorithm 1's outcome and its check on fresh samples.

    shared / nonshared: configurations of the chosen trial (kWh; ``(N,)`` arrays inside).
    reduction: ``1 - shared.total / nonshared.total`` of the chosen trial.
    reliability_by_rule: rule -> ``(N,)`` per-driver reliability on ``n_check`` fresh samples.
    reliability_aggregate: P-SI event frequency on the fresh samples (a lower bound for every rule).
    reliability_nonshared: ``(N,)`` per-driver ``P̂(ξ_i <= x_i^ns)`` on the same fresh samples.
    check_epsilon: App. C accuracy of these fresh estimates at confidence ``1 - δ``.
    """

    config: PlanningConfig
    n_drivers: int
    chosen_trial: int
    trials: tuple[TrialResult, ...]
    shared: SharedSolution
    nonshared: NonSharedSolution
    reduction: float
    reliability_by_rule: dict
    reliability_aggregate: float
    reliability_nonshared: np.ndarray
    n_eval: int
    n_check: int
    check_epsilon: float
    scenario_bound: int
    seconds: float
    solver_seconds: float
    lp_solves: int = 0
    timings: dict = field(default_factory=dict)

    @property
    def reliability_shared(self) -> float:
        """Worst driver under the worst of the three rules, on fresh samples."""
        return float(min(r.min() for r in self.reliability_by_rule.values()))

    def summary(self) -> dict:
        """JSON-ready record (totals in kWh, per-driver arrays as lists)."""
        reductions = np.array([t.reduction for t in self.trials])
        return {
            "n_drivers": self.n_drivers,
            "alpha": self.config.alpha,
            "capacity_nonshared_kwh": self.nonshared.total_kwh,
            "capacity_shared_kwh": self.shared.total_kwh,
            "personal_kwh": float(self.shared.personal_kwh.sum()),
            "pool_kwh": self.shared.pool_kwh,
            "reduction": self.reduction,
            "reliability_shared": self.reliability_shared,
            "reliability_aggregate": self.reliability_aggregate,
            "reliability_by_rule": {k: float(v.min()) for k, v in self.reliability_by_rule.items()},
            "reliability_nonshared": float(self.reliability_nonshared.min()),
            "reliability_selection": self.trials[self.chosen_trial].search.reliability,
            "meets_target": self.trials[self.chosen_trial].search.meets_target,
            "chosen_trial": self.chosen_trial,
            "n_scenarios": self.shared.n_scenarios,
            "scenario_bound": self.scenario_bound,
            "n_eval": self.n_eval,
            "n_check": self.n_check,
            "check_epsilon": self.check_epsilon,
            "nonshared_epsilon": self.nonshared.epsilon,
            "reduction_by_trial": reductions,
            "reduction_median": float(np.median(reductions)),
            "reduction_quartiles": np.quantile(reductions, [0.25, 0.75]),
            "method": self.shared.method,
            "lp_solves": self.lp_solves,
            "seconds": self.seconds,
            "solver_seconds": self.solver_seconds,
            "timings": self.timings,
            "capacity_nonshared_per_driver_kwh": self.nonshared.capacity_kwh,
            "personal_per_driver_kwh": self.shared.personal_kwh,
            "config": self.config.to_dict(),
        }
