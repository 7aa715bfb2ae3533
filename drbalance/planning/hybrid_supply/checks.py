"""Argument checks shared by the hybrid-supply modules (probabilities, QoS levels, counts)."""

from __future__ import annotations

import numpy as np

from drbalance.errors import ConfigError


def check_probability(name: str, p: float, *, open_interval: bool = False) -> float:
    """``p`` as a float in ``[0, 1]`` (``(0, 1)`` with ``open_interval``), else :class:`ConfigError`."""
    p = float(p)
    if not np.isfinite(p) or p < 0.0 or p > 1.0 or (open_interval and p in (0.0, 1.0)):
        rng = "(0, 1)" if open_interval else "[0, 1]"
        raise ConfigError(f"{name} must be a probability in {rng}; got {p!r}")
    return p


def check_theta(theta: float, name: str = "theta") -> float:
    """``theta`` as a float strictly between 0 and 1 (a QoS level), else :class:`ConfigError`."""
    theta = float(theta)
    if not np.isfinite(theta) or not 0.0 < theta < 1.0:
        raise ConfigError(
            f"{name} must be a QoS level strictly between 0 and 1 (e.g. 0.98 for 98 %); got {theta!r}"
        )
    return theta


def check_count(name: str, value: int, *, minimum: int = 0) -> int:
    """``value`` as an int ``>= minimum`` (bools refused), else :class:`ConfigError`."""
    if isinstance(value, (bool, np.bool_)) or int(value) != value or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def theta_triple(theta) -> tuple[float, float, float]:
    """``(θ_ns, θ_s, θ_b)`` from one QoS level (used for all three) or a triple, each checked."""
    if np.ndim(theta) == 0:
        t = check_theta(theta)
        return (t, t, t)
    vals = tuple(float(v) for v in theta)
    if len(vals) != 3:
        raise ConfigError(f"theta is one level or three (non-surge, surge, prosumer); got {theta!r}")
    return tuple(check_theta(v, n) for v, n in zip(vals, ("theta_ns", "theta_s", "theta_b")))  # type: ignore[return-value]
