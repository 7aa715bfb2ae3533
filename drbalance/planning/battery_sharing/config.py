"""Configuration of Algorithm 1 (:class:`PlanningConfig`) and the names of its choices."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from drbalance.errors import ConfigError

#: Allocation rules of the shared pool (:mod:`~drbalance.planning.battery_sharing.allocation`).
RULES = ("proportional", "fcfs", "utilitarian")
#: Ways to solve the scenario program (6): closed-form optimal vertex or cvxpy LP.
METHODS = ("pool", "lp")
#: Scenario-count bounds (:func:`~drbalance.planning.battery_sharing.scenario_counts.scenario_count`).
SCENARIO_BOUNDS = ("campi-garatti", "explicit")

#: ``progress(k)`` is called with the number of trials done.
ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class PlanningConfig:
    """Everything Algorithm 1 needs besides the need model; validated on construction.

    alpha: target reliability in (0, 1) (same for every driver).
    trials: ``T``, independent trials of Algorithm 2.
    delta: confidence parameter: the scenario count makes a scenario solution P-SI-feasible with
        probability ``>= 1 - delta``; App. C's sample count bounds every driver's reliability
        estimate within ``eval_epsilon`` with probability ``>= 1 - delta``.
    eval_epsilon: App. C accuracy ``ε`` of the empirical reliabilities.
    scenario_bound: ``"campi-garatti"`` (exact binomial tail, smallest valid count) or
        ``"explicit"`` (``(2/(1-α)) (ln(1/δ) + N + 1)``, MATH.md §3).
    method: ``"pool"`` (optimal vertex ``x = 0`` of LP (6), closed form) or ``"lp"`` (cvxpy LP).
    solver: cvxpy solver for ``method="lp"``: ``"CLARABEL"`` or ``"HIGHS"``.
    seed: seed of the ``numpy`` Generator; every random draw derives from it.
    """

    alpha: float = 0.85
    trials: int = 20
    delta: float = 0.01
    eval_epsilon: float = 0.02
    scenario_bound: str = "campi-garatti"
    method: str = "pool"
    solver: str = "CLARABEL"
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < float(self.alpha) < 1.0:
            raise ConfigError(f"alpha must lie strictly between 0 and 1 (a reliability); got {self.alpha}")
        if int(self.trials) != self.trials or self.trials < 1:
            raise ConfigError(f"trials must be a positive integer; got {self.trials}")
        if not 0.0 < float(self.delta) < 1.0:
            raise ConfigError(f"delta must lie strictly between 0 and 1 (1 - confidence); got {self.delta}")
        if not 0.0 < float(self.eval_epsilon) < 1.0:
            raise ConfigError(f"eval_epsilon must lie strictly between 0 and 1; got {self.eval_epsilon}")
        if self.scenario_bound not in SCENARIO_BOUNDS:
            raise ConfigError(f"scenario_bound must be one of {SCENARIO_BOUNDS}; got {self.scenario_bound!r}")
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}; got {self.method!r}")
        if self.solver.upper() not in ("CLARABEL", "HIGHS"):
            raise ConfigError(f"solver must be CLARABEL or HIGHS; got {self.solver!r}")
        if int(self.seed) != self.seed or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer; got {self.seed}")

    def to_dict(self) -> dict:
        return asdict(self)
