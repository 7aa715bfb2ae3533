"""QoS functions: binomial CDFs of the three scenarios, their continuous extensions (used by the
AIMD agents), the normal approximation and the binomial θ-quantile :func:`smallest_k`."""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from drbalance.errors import ConfigError
from drbalance.planning.hybrid_supply.checks import check_theta


def qos_non_surge(M, N, p_ns):
    """``QoS_ns = F(M; N, p_ns)``: probability that ``M`` shared items serve a non-surge day.

    ``M``, ``N`` broadcast (counts); returns float array (or scalar) in ``[0, 1]``.
    """
    return stats.binom.cdf(M, N, p_ns)


def qos_surge(M, T, Q, N, p_s):
    """``QoS_s = F(M - Q + T; N, p_s)``: consumers served on a surge day by the unreserved pool plus
    the ``T`` prosumer items.  Arguments broadcast (counts)."""
    return stats.binom.cdf(np.asarray(M) - np.asarray(Q) + np.asarray(T), N, p_s)


def qos_bad(Q, T, p_b):
    """``QoS_b = F(Q; T, p_b)``: the reserve ``Q`` covers every prosumer let down by a consumer.
    ``T = 0`` gives 1 (no prosumer, no risk).  Arguments broadcast (counts)."""
    return stats.binom.cdf(Q, T, p_b)


def binom_cdf_continuous(x, n, p):
    """Continuous extension of the binomial CDF in ``x`` (and ``n``): ``I_{1-p}(n - x, x + 1)``.

    Equals ``binom.cdf(x, n, p)`` at integers ``0 <= x < n``; 0 for ``x <= -1``, 1 for ``x >= n``;
    continuous and increasing in between.  ``x``, ``n`` broadcast (real item counts), ``0 < p < 1``.
    This is the smooth QoS the AIMD agents evaluate at their non-integer running averages.
    """
    x, n = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(n, dtype=float))
    out = np.where(x >= n, 1.0, 0.0)
    inside = (x > -1.0) & (x < n)
    if np.any(inside):
        out = out.copy()
        out[inside] = special.betainc(n[inside] - x[inside], x[inside] + 1.0, 1.0 - p)
    return out[()] if out.ndim == 0 else out


def binom_pmf_continuous(x, n, p):
    """Continuous extension of the binomial pmf (gamma functions): the "derivative" ``f'`` of the
    QoS functions in the AIMD rule (paper eq. 21).  Equals ``binom.pmf`` at integers; 0 outside
    ``(-1, n + 1)``.  ``x``, ``n`` broadcast (real item counts), ``0 < p < 1``."""
    x, n = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(n, dtype=float))
    inside = (x > -1.0) & (x < n + 1.0)
    xs, ns = np.where(inside, x, 0.0), np.where(inside, n, 1.0)
    logpmf = (
        special.gammaln(ns + 1.0)
        - special.gammaln(xs + 1.0)
        - special.gammaln(ns - xs + 1.0)
        + xs * np.log(p)
        + (ns - xs) * np.log1p(-p)
    )
    out = np.where(inside, np.exp(logpmf), 0.0)
    return out[()] if out.ndim == 0 else out


def qos_normal(k, n, p, *, continuity: bool = True):
    """Normal approximation ``Φ((k + ½ - n p) / sqrt(n p (1 - p)))`` of ``F(k; n, p)``
    (``continuity=False`` drops the ½).  Arrays broadcast."""
    k = np.asarray(k, dtype=float)
    sd = np.sqrt(np.asarray(n, dtype=float) * p * (1.0 - p))
    return stats.norm.cdf((k + (0.5 if continuity else 0.0) - np.asarray(n) * p) / sd)


def normal_contour_T(M, theta, N, p_s, Q, *, continuity: bool = True):
    """The "pseudo-linear" surge contour ``QoS_s(M, T) = θ`` under the normal approximation:

    ``T = Q - M + N p_s + z_θ sqrt(N p_s (1 - p_s)) - ½``  (items; ``M`` array-like),

    a line of slope -1 in the ``(M, T)`` plane, which is why the paper's contours look linear.
    """
    theta = check_theta(theta)
    z = stats.norm.ppf(theta)
    return (
        Q
        - np.asarray(M, dtype=float)
        + N * p_s
        + z * np.sqrt(N * p_s * (1.0 - p_s))
        - (0.5 if continuity else 0.0)
    )


def smallest_k(theta, n, p, *, max_corrections: int = 64):
    """Smallest integer ``K`` with ``F(K; n, p) >= θ`` (the binomial θ-quantile), vectorised.

    ``binom.ppf`` gives the starting point; it is then corrected by explicit CDF checks in both
    directions (``F(K) >= θ`` and ``F(K - 1) < θ``), because the ppf's inversion is off by one when a
    CDF value sits within round-off of ``θ`` (e.g. ``θ = binom.cdf(k)`` itself, or ``θ = 0.98``,
    ``0.99``).  The definition therefore matches :func:`qos_non_surge` & co. evaluated with
    ``binom.cdf`` exactly.  ``theta``, ``n``, ``p`` broadcast; ``n >= 0`` counts.  Returns int64.
    """
    theta_a, n_a, p_a = np.broadcast_arrays(
        np.asarray(theta, dtype=float), np.asarray(n, dtype=float), np.asarray(p, dtype=float)
    )
    if np.any(~((theta_a > 0) & (theta_a < 1))):
        raise ConfigError("smallest_k: theta must lie strictly between 0 and 1 (e.g. 0.98)")
    if np.any(n_a < 0) or np.any((p_a < 0) | (p_a > 1)):
        raise ConfigError("smallest_k: n must be >= 0 and p in [0, 1]")
    k = stats.binom.ppf(theta_a, n_a, p_a)
    k = np.clip(np.nan_to_num(k, nan=0.0), 0.0, n_a).astype(np.int64)
    for _ in range(max_corrections):
        up = stats.binom.cdf(k, n_a, p_a) < theta_a
        up &= k < n_a
        down = (k > 0) & (stats.binom.cdf(k - 1, n_a, p_a) >= theta_a)
        if not (up.any() or down.any()):
            break
        k = k + up.astype(np.int64) - down.astype(np.int64)
    else:  # pragma: no cover - would need a ppf off by more than max_corrections
        raise ConfigError("smallest_k did not settle; raise max_corrections")
    return k[()] if k.ndim == 0 else k
