"""Sample-size bounds: scenario count of program (6) and App. C's evaluation sample count."""

from __future__ import annotations

import math

from scipy.stats import binom

from drbalance.errors import ConfigError
from drbalance.planning.battery_sharing.checks import check_int
from drbalance.planning.battery_sharing.config import SCENARIO_BOUNDS


def scenario_count(n_drivers: int, alpha: float, delta: float, bound: str = "campi-garatti") -> int:
    """Number of scenarios ``M_sc`` making the solution of (6) feasible for P-SI w.p. ``>= 1 - δ``.

    The program has ``d = N + 1`` decision variables and violation level ``ε = 1 - α``.
    ``"campi-garatti"``: smallest ``m`` with ``Σ_{i<d} C(m,i) ε^i (1-ε)^{m-i} <= δ`` (Campi & Garatti
    2008, exact for fully-supported problems); ``"explicit"``: ``ceil((2/ε)(ln(1/δ) + d))``.
    """
    check_int("n_drivers", n_drivers, 1)
    if not 0.0 < alpha < 1.0 or not 0.0 < delta < 1.0:
        raise ConfigError(f"alpha and delta must lie in (0, 1); got alpha={alpha}, delta={delta}")
    d, eps = n_drivers + 1, 1.0 - alpha
    if bound == "explicit":
        return int(math.ceil((2.0 / eps) * (math.log(1.0 / delta) + d)))
    if bound != "campi-garatti":
        raise ConfigError(f"bound must be one of {SCENARIO_BOUNDS}; got {bound!r}")
    lo, hi = d - 1, max(d, int(math.ceil(d / eps)))
    while binom.cdf(d - 1, hi, eps) > delta:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:  # binom.cdf(d-1, m, eps) decreases in m
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if binom.cdf(d - 1, mid, eps) <= delta else (mid, hi)
    return hi


def eval_sample_count(n_drivers: int, epsilon: float, delta: float) -> int:
    """App. C: ``M_eval = ceil(4 ln(2N/δ) / ε²)`` samples estimate all ``N`` drivers' reliabilities
    within ``ε`` simultaneously with probability ``>= 1 - δ``."""
    check_int("n_drivers", n_drivers, 1)
    if not 0.0 < epsilon < 1.0 or not 0.0 < delta < 1.0:
        raise ConfigError(f"epsilon and delta must lie in (0, 1); got epsilon={epsilon}, delta={delta}")
    return int(math.ceil(4.0 * math.log(2.0 * n_drivers / delta) / epsilon**2))


def reliability_epsilon(n_samples: int, n_drivers: int, delta: float) -> float:
    """Inverse of :func:`eval_sample_count`: ``ε = sqrt(4 ln(2N/δ) / m)`` (App. C, eq. 9)."""
    check_int("n_samples", n_samples, 1)
    return float(math.sqrt(4.0 * math.log(2.0 * n_drivers / delta) / n_samples))
