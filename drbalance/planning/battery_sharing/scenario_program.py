"""P-NS (per-driver quantiles) and P-SI's scenario program (6): closed-form pool and cvxpy LP."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drbalance.errors import ConfigError, DataError, SolverError
from drbalance.planning.battery_sharing.checks import check_int, check_samples
from drbalance.planning.battery_sharing.config import METHODS
from drbalance.planning.battery_sharing.scenario_counts import reliability_epsilon


@dataclass(frozen=True)
class NonSharedSolution:
    """P-NS: ``capacity_kwh`` ``(N,)`` = each driver's empirical ``α``-quantile (definition (1)).

    epsilon: with probability ``>= 1 - delta`` every driver's true reliability at these capacities
        is within ``epsilon`` of its empirical one (``>= α``), App. C with ``n_samples``.
    """

    capacity_kwh: np.ndarray
    alpha: float
    n_samples: int
    epsilon: float
    delta: float

    @property
    def total_kwh(self) -> float:
        return float(self.capacity_kwh.sum())


def solve_nonshared(samples: np.ndarray, alpha: float, delta: float = 0.01) -> NonSharedSolution:
    """Empirical P-NS solution from ``samples`` ``(m, N)`` kWh: ``x_i = inf{x : F̂_i(x) >= α}``, floored at 0."""
    samples = check_samples(samples)
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie in (0, 1); got {alpha}")
    m, n = samples.shape
    rank = max(1, int(math.ceil(round(alpha * m, 9))))  # F̂(x_(rank)) = rank/m >= α, rank minimal
    q = np.partition(samples, rank - 1, axis=0)[rank - 1]
    return NonSharedSolution(np.maximum(q, 0.0), float(alpha), m, reliability_epsilon(m, n, delta), float(delta))


@dataclass(frozen=True)
class SharedSolution:
    """A battery configuration with sharing: ``personal_kwh`` ``(N,)`` and ``pool_kwh`` (kWh).

    n_scenarios: scenarios of (6) it satisfies; method: ``"pool"`` or ``"lp"``;
    lp_solves / solver_seconds: LP solves and time inside the solver (0 for ``"pool"``).
    """

    personal_kwh: np.ndarray
    pool_kwh: float
    n_scenarios: int
    method: str
    lp_solves: int = 0
    solver_seconds: float = 0.0

    @property
    def total_kwh(self) -> float:
        return float(self.personal_kwh.sum() + self.pool_kwh)


def scenario_optimum(scenarios: np.ndarray) -> float:
    """Optimal value of (6) for ``scenarios`` ``(m, N)``: ``max_j Σ_i (ξ_ij)^+`` kWh (see module doc)."""
    scenarios = check_samples(scenarios)
    return float(np.maximum(scenarios, 0.0).sum(axis=1).max())


def max_shortfall(personal_kwh: np.ndarray, scenarios: np.ndarray) -> float:
    """``max_j Σ_i (ξ_ij - x_i)^+`` over ``scenarios`` ``(m, N)``: the smallest feasible pool for ``x``."""
    return float(np.maximum(scenarios - personal_kwh, 0.0).sum(axis=1).max())


class ScenarioLP:
    """The scenario program (6) as a cvxpy LP, built once per ``(n_drivers, capacity)``.

        minimize  s + Σ_i x_i
        s.t.      U >= Ξ - 1 xᵀ,  U >= 0,  U 1 <= s 1,  x >= 0,  s >= 0

    ``Ξ`` is a ``(capacity, N)`` Parameter (DPP: re-solves skip canonicalisation); all scenario
    constraints are one vectorised expression.  :meth:`solve` handles any number ``m`` of scenarios
    by constraint generation: it solves over a working set of at most ``capacity`` scenarios (rows
    beyond the set are zero, hence inactive), adds the most violated of all ``m`` scenarios and
    repeats until every scenario holds; the pool is then set to the exact ``max_j Σ_i (ξ_ij - x_i)^+``.
    The capacity doubles (one rebuild) if the working set outgrows it.
    """

    def __init__(self, n_drivers: int, capacity: int = 128, solver: str = "CLARABEL", batch: int = 32) -> None:
        check_int("n_drivers", n_drivers, 1)
        check_int("capacity", capacity, 1)
        self.n_drivers, self.solver, self.batch = n_drivers, solver.upper(), batch
        self.solves, self.solver_seconds = 0, 0.0
        self._build(capacity)

    def _build(self, capacity: int) -> None:
        import cvxpy as cp  # lazy (b): heavy (~0.4 s); this package loads with the CLI (drbalance battery)

        n = self.n_drivers
        self.capacity = capacity
        self._xi = cp.Parameter((capacity, n), nonneg=True, name="scenarios")
        self._x = cp.Variable(n, nonneg=True, name="personal")
        self._s = cp.Variable(nonneg=True, name="pool")
        u = cp.Variable((capacity, n), nonneg=True, name="shortfall")
        constraints = [u >= self._xi - cp.reshape(self._x, (1, n), order="C"), cp.sum(u, axis=1) <= self._s]
        self._problem = cp.Problem(cp.Minimize(self._s + cp.sum(self._x)), constraints)

    def _solve_working(self, rows: np.ndarray) -> np.ndarray:
        import cvxpy as cp  # lazy (b): heavy (~0.4 s), see _build

        if rows.shape[0] > self.capacity:
            self._build(1 << int(math.ceil(math.log2(rows.shape[0]))))
        value = np.zeros((self.capacity, self.n_drivers))
        value[: rows.shape[0]] = rows
        self._xi.value = value
        try:
            self._problem.solve(solver=self.solver)
        except cp.error.SolverError as exc:
            raise SolverError(f"{self.solver} failed on the scenario LP ({exc}); try solver='CLARABEL'") from exc
        if self._problem.status not in ("optimal", "optimal_inaccurate") or self._x.value is None:
            raise SolverError(f"{self.solver} returned status {self._problem.status!r} on the scenario LP")
        self.solves += 1
        stats = self._problem.solver_stats
        self.solver_seconds += float(stats.solve_time or 0.0)
        return np.maximum(np.asarray(self._x.value, dtype=float), 0.0)

    def solve(self, scenarios: np.ndarray, warm: np.ndarray | None = None, max_rounds: int = 200) -> tuple[SharedSolution, np.ndarray]:
        """Solve (6) over ``scenarios`` ``(m, N)`` kWh; return the solution and the final working set
        (row indices, usable as ``warm`` for a re-solve on a superset or prefix of the scenarios)."""
        scenarios = np.maximum(check_samples(scenarios), 0.0)  # x >= 0: negative needs act as zero
        if scenarios.shape[1] != self.n_drivers:
            raise DataError(f"scenarios have {scenarios.shape[1]} drivers; this LP was built for {self.n_drivers}")
        m = scenarios.shape[0]
        totals = scenarios.sum(axis=1)
        solves0, seconds0 = self.solves, self.solver_seconds
        if warm is not None and len(warm):
            working = np.unique(warm[warm < m])
            working = np.union1d(working, [int(totals.argmax())])
        else:
            working = np.sort(np.argsort(-totals, kind="stable")[: min(m, self.batch)])
        tol = 1e-7 * max(1.0, float(totals.max()))
        for _ in range(max_rounds):
            x = self._solve_working(scenarios[working])
            shortfall = np.maximum(scenarios - x, 0.0).sum(axis=1)
            s = float(shortfall[working].max())
            violated = np.flatnonzero(shortfall > s + tol)
            if violated.size == 0:
                break
            worst = violated[np.argsort(-shortfall[violated], kind="stable")[: self.batch]]
            working = np.union1d(working, worst)
        else:
            raise SolverError(f"constraint generation did not converge in {max_rounds} rounds ({m} scenarios)")
        solution = SharedSolution(
            personal_kwh=x,
            pool_kwh=float(shortfall.max()),
            n_scenarios=m,
            method="lp",
            lp_solves=self.solves - solves0,
            solver_seconds=self.solver_seconds - seconds0,
        )
        return solution, working


def solve_scenario_program(
    scenarios: np.ndarray, method: str = "pool", solver: str = "CLARABEL"
) -> SharedSolution:
    """Solve (6) for ``scenarios`` ``(m, N)`` kWh.  ``method="pool"``: ``x = 0``,
    ``s = max_j Σ_i (ξ_ij)^+`` (an optimal vertex); ``"lp"``: :class:`ScenarioLP` with ``solver``."""
    scenarios = check_samples(scenarios)
    if method == "pool":
        return SharedSolution(np.zeros(scenarios.shape[1]), scenario_optimum(scenarios), scenarios.shape[0], "pool")
    if method == "lp":
        return ScenarioLP(scenarios.shape[1], solver=solver).solve(scenarios)[0]
    raise ConfigError(f"method must be one of {METHODS}; got {method!r}")
