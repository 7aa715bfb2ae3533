"""The paper's tables: Problem 1 over populations and QoS levels (Tables 4, 8), Problem 2 (Table 5)."""

from __future__ import annotations

from typing import Sequence

from drbalance.planning.hybrid_supply.costs import CostModel
from drbalance.planning.hybrid_supply.problem1 import Problem1Solution, solve_problem1
from drbalance.planning.hybrid_supply.problem2 import Problem2Solution, solve_problem2
from drbalance.planning.hybrid_supply.use_cases import (
    CAR_SHARING,
    PAPER_POPULATIONS,
    PAPER_THETAS,
    TABLE5_SCENARIOS,
    UseCase,
)


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
