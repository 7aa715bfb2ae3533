"""Allocation rules for the shared pool (proportional, FCFS, utilitarian) and reliability estimates."""

from __future__ import annotations

import numpy as np

from drbalance.errors import ConfigError
from drbalance.planning.battery_sharing.checks import check_samples
from drbalance.planning.battery_sharing.config import RULES


def aggregate_reliability(personal_kwh: np.ndarray, pool_kwh: float, samples: np.ndarray) -> float:
    """Empirical ``P(Σ_i (ξ_i - x_i)^+ <= s)`` over ``samples`` ``(m, N)`` (Alg. 2, line 6)."""
    samples = check_samples(samples)
    need = np.maximum(samples - np.asarray(personal_kwh, dtype=float), 0.0).sum(axis=1)
    return float(np.mean(need <= pool_kwh * (1 + 1e-12) + 1e-9))


def allocate(
    personal_kwh: np.ndarray,
    pool_kwh: float,
    samples: np.ndarray,
    rule: str,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Pool energy given to each driver, ``(m, N)`` kWh, under ``rule`` for each sample ``(m, N)``.

    proportional: ``s (ξ_i - x_i)^+ / Σ_j (ξ_j - x_j)^+``.
    fcfs: drivers ask in a random order (one permutation per sample, drawn from ``rng``); driver
        ``i`` gets its shortfall iff the shortfalls of everyone up to and including it fit in ``s``.
    utilitarian: as fcfs with drivers ordered by increasing shortfall (ties by index).
    """
    samples = check_samples(samples)
    shortfall = np.maximum(samples - np.asarray(personal_kwh, dtype=float), 0.0)
    if rule == "proportional":
        total = shortfall.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, shortfall / np.where(total > 0, total, 1.0), 0.0)
        return pool_kwh * share
    if rule == "fcfs":
        if rng is None:
            raise ConfigError("rule 'fcfs' draws a random arrival order: pass rng=np.random.default_rng(seed)")
        order = np.argsort(rng.random(shortfall.shape), axis=1)
    elif rule == "utilitarian":
        order = np.argsort(shortfall, axis=1, kind="stable")
    else:
        raise ConfigError(f"rule must be one of {RULES}; got {rule!r}")
    queued = np.take_along_axis(shortfall, order, axis=1)
    served = np.cumsum(queued, axis=1) <= pool_kwh * (1 + 1e-12) + 1e-9
    out = np.empty_like(shortfall)
    np.put_along_axis(out, order, np.where(served, queued, 0.0), axis=1)
    return out


def satisfied(
    personal_kwh: np.ndarray,
    pool_kwh: float,
    samples: np.ndarray,
    rule: str,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """``(m, N)`` booleans: driver ``i``'s need met in sample ``j`` (``x_i + f_i >= ξ_i``) under ``rule``."""
    samples = check_samples(samples)
    x = np.asarray(personal_kwh, dtype=float)
    given = allocate(x, pool_kwh, samples, rule, rng)
    shortfall = np.maximum(samples - x, 0.0)
    return given >= shortfall - 1e-9 * np.maximum(1.0, shortfall)


def driver_reliability(
    personal_kwh: np.ndarray,
    pool_kwh: float,
    samples: np.ndarray,
    rule: str,
    rng: np.random.Generator | None = None,
    chunk: int = 20_000,
) -> np.ndarray:
    """Each driver's empirical reliability ``(N,)`` under ``rule`` over ``samples`` ``(m, N)`` kWh.

    The fleet's reliability is the minimum over drivers (App. C); with ``m >= M_eval`` samples it
    is within ``reliability_epsilon(m, N, δ)`` of the truth for all drivers w.p. ``>= 1 - δ``.
    Works in row chunks to bound memory.
    """
    samples = check_samples(samples)
    hits = np.zeros(samples.shape[1])
    for start in range(0, samples.shape[0], chunk):
        hits += satisfied(personal_kwh, pool_kwh, samples[start : start + chunk], rule, rng).sum(axis=0)
    return hits / samples.shape[0]
