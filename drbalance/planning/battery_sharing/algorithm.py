"""Algorithms 2 (binary search on the scenario count) and 1 (seeded trials, then a fresh check)."""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from drbalance.errors import ConfigError, DataError
from drbalance.planning.battery_sharing.allocation import aggregate_reliability, driver_reliability
from drbalance.planning.battery_sharing.checks import check_samples
from drbalance.planning.battery_sharing.config import METHODS, RULES, PlanningConfig, ProgressFn
from drbalance.planning.battery_sharing.need_models import NeedModel
from drbalance.planning.battery_sharing.results import PlanningResult, SearchResult, TrialResult
from drbalance.planning.battery_sharing.scenario_counts import eval_sample_count, reliability_epsilon, scenario_count
from drbalance.planning.battery_sharing.scenario_program import ScenarioLP, SharedSolution, solve_nonshared


def binary_search(
    scenarios: np.ndarray,
    evaluation: np.ndarray,
    alpha: float,
    method: str = "pool",
    program: ScenarioLP | None = None,
) -> SearchResult:
    """Algorithm 2: binary search on the number of scenarios of (6).

    scenarios: ``(M_sc, N)`` kWh, used in prefixes ``[:m]``; evaluation: ``(M_eval, N)`` kWh, fresh.
    Solves at ``M_sc`` first (the paper's ``m_hi`` is assumed feasible; we check it), then bisects
    ``(m_lo, m_hi]`` keeping ``m_hi`` the smallest count whose reliability exceeds ``α``.
    ``method="lp"`` needs ``program`` (a :class:`ScenarioLP` for ``N`` drivers; one is built if None).
    """
    scenarios, evaluation = check_samples(scenarios), check_samples(evaluation)
    if scenarios.shape[1] != evaluation.shape[1]:
        raise DataError(f"scenarios have {scenarios.shape[1]} drivers, evaluation samples {evaluation.shape[1]}")
    n = scenarios.shape[1]
    if method == "pool":
        running = np.maximum.accumulate(np.maximum(scenarios, 0.0).sum(axis=1))
        eval_totals = np.sort(np.maximum(evaluation, 0.0).sum(axis=1))

        def solve(m: int) -> tuple[SharedSolution, float]:
            pool = float(running[m - 1])
            rel = np.searchsorted(eval_totals, pool * (1 + 1e-12) + 1e-9, side="right") / eval_totals.size
            return SharedSolution(np.zeros(n), pool, m, "pool"), float(rel)

    elif method == "lp":
        program = program or ScenarioLP(n)
        warm: list[np.ndarray | None] = [None]

        def solve(m: int) -> tuple[SharedSolution, float]:
            sol, warm[0] = program.solve(scenarios[:m], warm=warm[0])
            return sol, aggregate_reliability(sol.personal_kwh, sol.pool_kwh, evaluation)

    else:
        raise ConfigError(f"method must be one of {METHODS}; got {method!r}")

    m_hi = scenarios.shape[0]
    best, best_rel = solve(m_hi)
    steps = [(m_hi, best_rel)]
    if best_rel <= alpha:
        return SearchResult(best, best_rel, False, m_hi, tuple(steps))
    m_lo = 1
    while m_hi - m_lo > 1:
        mid = (m_lo + m_hi + 1) // 2
        sol, rel = solve(mid)
        steps.append((mid, rel))
        if rel > alpha:
            m_hi, best, best_rel = mid, sol, rel
        else:
            m_lo = mid
    return SearchResult(best, best_rel, True, scenarios.shape[0], tuple(steps))


def run_trial(
    model: NeedModel,
    alphas: Sequence[float],
    config: PlanningConfig,
    rng: np.random.Generator,
    program: ScenarioLP | None,
    timings: dict,
) -> list[TrialResult]:
    """One trial of Algorithm 2 for several ``α`` sharing its draws: ``M_sc`` scenarios for the largest
    ``α`` (prefixes serve the others) and one evaluation set of ``M_eval`` samples, both from ``rng``.

    Adds the seconds spent sampling, in quantiles and in the search to ``timings``; ``program`` is
    the :class:`ScenarioLP` for ``method="lp"`` (None for ``"pool"``).  One :class:`TrialResult` per ``α``.
    """
    n = model.n_drivers
    m_sc = max(scenario_count(n, a, config.delta, config.scenario_bound) for a in alphas)
    m_eval = eval_sample_count(n, config.eval_epsilon, config.delta)
    t0 = time.perf_counter()
    scenarios = model.sample(rng, m_sc)
    evaluation = model.sample(rng, m_eval)
    t1 = time.perf_counter()
    timings["sampling"] = timings.get("sampling", 0.0) + t1 - t0
    out = []
    for a in alphas:
        m_a = scenario_count(n, a, config.delta, config.scenario_bound)
        search = binary_search(scenarios[:m_a], evaluation, a, config.method, program)
        t2 = time.perf_counter()
        nonshared = solve_nonshared(evaluation, a, config.delta)
        timings["quantiles"] = timings.get("quantiles", 0.0) + time.perf_counter() - t2
        out.append(TrialResult(search, nonshared, 1.0 - search.solution.total_kwh / nonshared.total_kwh))
    timings["search"] = timings.get("search", 0.0) + time.perf_counter() - t1
    return out


def plan_shared_capacity(
    model: NeedModel,
    config: PlanningConfig = PlanningConfig(),
    progress: ProgressFn | None = None,
) -> PlanningResult:
    """Algorithm 1: ``config.trials`` independent trials of Algorithm 2, then the check.

    Keeps the trial with the smallest selection reliability above ``α`` (ties: smaller total; if no
    trial reaches ``α``, the one with the highest reliability), and evaluates it on ``M_eval`` fresh
    samples under the three allocation rules.  Trial ``t`` uses the ``t``-th child of
    ``SeedSequence(config.seed)``, so results do not depend on the order trials run in.
    ``progress(k)`` is called after each trial with ``k`` trials done.
    """
    start = time.perf_counter()
    n = model.n_drivers
    children = np.random.SeedSequence(config.seed).spawn(config.trials + 1)
    program = ScenarioLP(n, solver=config.solver) if config.method == "lp" else None
    timings: dict = {}
    trials = []
    for t in range(config.trials):
        trials.extend(run_trial(model, [config.alpha], config, np.random.default_rng(children[t]), program, timings))
        if progress is not None:
            progress(t + 1)
    key = []
    for t, trial in enumerate(trials):
        s = trial.search
        key.append((0, s.reliability, s.solution.total_kwh, t) if s.meets_target else (1, -s.reliability, s.solution.total_kwh, t))
    chosen = min(range(len(trials)), key=lambda t: key[t])
    best = trials[chosen]
    t0 = time.perf_counter()
    check_rng = np.random.default_rng(children[-1])
    m_check = eval_sample_count(n, config.eval_epsilon, config.delta)
    fresh = model.sample(check_rng, m_check)
    x, s = best.search.solution.personal_kwh, best.search.solution.pool_kwh
    by_rule = {rule: driver_reliability(x, s, fresh, rule, check_rng) for rule in RULES}
    aggregate = aggregate_reliability(x, s, fresh)
    nonshared_rel = (fresh <= best.nonshared.capacity_kwh).mean(axis=0)
    timings["check"] = time.perf_counter() - t0
    return PlanningResult(
        config=config,
        n_drivers=n,
        chosen_trial=chosen,
        trials=tuple(trials),
        shared=best.search.solution,
        nonshared=best.nonshared,
        reduction=best.reduction,
        reliability_by_rule=by_rule,
        reliability_aggregate=aggregate,
        reliability_nonshared=nonshared_rel,
        n_eval=eval_sample_count(n, config.eval_epsilon, config.delta),
        n_check=m_check,
        check_epsilon=reliability_epsilon(m_check, n, config.delta),
        scenario_bound=scenario_count(n, config.alpha, config.delta, config.scenario_bound),
        seconds=time.perf_counter() - start,
        solver_seconds=program.solver_seconds if program is not None else 0.0,
        lp_solves=program.solves if program is not None else 0,
        timings=timings,
    )
