"""Shared battery capacity planning with chance constraints (Alexeenko & Charisopoulos).

``N`` drivers have random daily energy needs ``ξ_i`` (kWh).  Each driver owns a personal battery
``x_i`` (kWh) and the fleet shares one range-extender pool ``s`` (kWh).  This module sizes them:

* **P-NS** (no sharing): ``x_i`` is driver ``i``'s ``α``-quantile, estimated empirically
  (:func:`solve_nonshared`), with the sample-size confidence of the paper's App. C.
* **P-SI** (sharing, inner approximation): ``min Σ x_i + s`` s.t. ``P(Σ_i (ξ_i - x_i)^+ <= s) >= α``,
  approximated by the scenario program (6), an LP (:class:`ScenarioLP`), with the scenario count
  from scenario theory (:func:`scenario_count`).
* **Algorithms 1 and 2**: binary search on the number of scenarios until the empirical reliability
  on ``M_eval`` fresh samples is just above ``α`` (:func:`binary_search`), repeated over ``T``
  seeded trials, keeping the trial with the smallest reliability above ``α``
  (:func:`plan_shared_capacity`).
* **Allocation rules** proportional, first-come-first-served and utilitarian, and a vectorised
  per-driver reliability evaluator (:func:`driver_reliability`) to check Theorem III.1: a P-SI
  solution meets every driver's need with probability ``>= α`` under each of them.
* **Data**: daily needs per driver from a table (:func:`read_needs_table`), from the ACN charging
  sessions read by :func:`data_pipeline.readers.read_acn_sessions` (:func:`daily_needs_from_sessions`;
  :func:`read_acn_sessions` does both for a file), or the independent-Gaussian case of App. B
  (:class:`GaussianNeeds`, closed form in :func:`gaussian_closed_form`).

A structural fact drives the design (see ``docs/battery_sharing.md``): with ``x >= 0`` the LP (6)
has the optimal value ``max_j Σ_i (ξ_ij)^+`` (every feasible point has
``s + Σ x_i >= Σ_i (ξ_ij - x_i)^+ + x_i >= Σ_i (ξ_ij)^+``, and ``x = 0, s = max_j Σ_i (ξ_ij)^+``
attains it), so its optimal face is large and which point a solver returns is arbitrary.  The
default ``method="pool"`` returns the optimal vertex ``x = 0`` (the one with the highest P-SI
reliability for the optimal total, hence the least conservative); ``method="lp"`` solves (6) with
cvxpy and returns the solver's point, as the paper did.

Modules, one idea each: ``config`` (:class:`PlanningConfig`, rule/method names), ``scenario_counts``
(sample-size bounds), ``daily_needs`` (:class:`DailyNeeds` and its readers), ``need_models``
(samplers, App. B closed form), ``scenario_program`` (P-NS, LP (6)), ``allocation`` (allocation rules,
reliabilities), ``results`` (result records), ``algorithm`` (Algorithms 2 and 1), ``sweep`` (Fig. 3),
``checks`` (argument checks).  Everything public is re-exported here.
"""

from data_pipeline.readers import ACN_TIME_FORMAT
from drbalance.planning.battery_sharing.algorithm import binary_search, plan_shared_capacity, run_trial
from drbalance.planning.battery_sharing.allocation import aggregate_reliability, allocate, driver_reliability, satisfied
from drbalance.planning.battery_sharing.config import METHODS, RULES, SCENARIO_BOUNDS, PlanningConfig, ProgressFn
from drbalance.planning.battery_sharing.daily_needs import (
    MILES_PER_KWH,
    DailyNeeds,
    daily_needs_from_sessions,
    read_acn_sessions,
    read_needs_table,
)
from drbalance.planning.battery_sharing.need_models import (
    EmpiricalNeeds,
    GaussianClosedForm,
    GaussianNeeds,
    NeedModel,
    gaussian_closed_form,
)
from drbalance.planning.battery_sharing.results import PlanningResult, SearchResult, TrialResult
from drbalance.planning.battery_sharing.scenario_counts import eval_sample_count, reliability_epsilon, scenario_count
from drbalance.planning.battery_sharing.scenario_program import (
    NonSharedSolution,
    ScenarioLP,
    SharedSolution,
    max_shortfall,
    scenario_optimum,
    solve_nonshared,
    solve_scenario_program,
)
from drbalance.planning.battery_sharing.sweep import plot_reduction, reduction_sweep, summarise_sweep

__all__ = [
    "ACN_TIME_FORMAT", "METHODS", "MILES_PER_KWH", "RULES", "SCENARIO_BOUNDS",
    "DailyNeeds", "EmpiricalNeeds", "GaussianClosedForm", "GaussianNeeds", "NeedModel", "NonSharedSolution",
    "PlanningConfig", "PlanningResult", "ProgressFn", "ScenarioLP", "SearchResult", "SharedSolution", "TrialResult",
    "aggregate_reliability", "allocate", "binary_search", "daily_needs_from_sessions", "driver_reliability",
    "eval_sample_count", "gaussian_closed_form", "max_shortfall", "plan_shared_capacity", "plot_reduction",
    "read_acn_sessions", "read_needs_table", "reduction_sweep", "reliability_epsilon", "run_trial", "satisfied",
    "scenario_count", "scenario_optimum", "solve_nonshared", "solve_scenario_program", "summarise_sweep",
]
