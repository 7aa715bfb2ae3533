"""Cost models: ``cost(M, T) = c_M M (1 - D(M)) + c_T T`` with no, step or exponential discount ``D``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
from scipy import optimize

from drbalance.errors import ConfigError


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
