"""Inputs of the model: request probabilities per scenario and the paper's two use cases."""

from __future__ import annotations

from dataclasses import dataclass

from drbalance.planning.hybrid_supply.checks import check_probability
from drbalance.planning.hybrid_supply.costs import CostModel, StepDiscount


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
            check_probability(name, getattr(self, name))


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
