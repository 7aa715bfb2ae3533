"""Ellipsoidal uncertainty sets (MATH.md section 2).

An :class:`UncertaintySet` is ``{x : (x - mean)^T Σ^{-1} (x - mean) <= radius}`` with
``Σ = factor @ factor.T + diag(diag)`` (low rank plus diagonal, so an ``nK``-dimensional set costs
``O(nK * rank)`` memory).  Two kinds:

* ``"robust"``: a set for the realised vector itself, radius ``χ²_d(1 - ε)``;
* ``"mean"``: the distributionally robust (DR) ambiguity set for the *mean*, radius the ``(1 - δ)``
  bootstrap quantile of ``(μ̂_b - μ̂)^T Σ^{-1} (μ̂_b - μ̂)`` over day resamples.

:class:`EllipsoidEstimator` builds both from ``m`` historical samples (days) of the stacked vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, stats

from drbalance.errors import ConfigError, DataError


@dataclass(frozen=True)
class UncertaintySet:
    """Ellipsoid ``{x : (x - mean)^T Σ^{-1} (x - mean) <= radius}``, ``Σ = F F^T + diag(D)``.

    Attributes
    ----------
    mean : (d,) centre.
    factor : (d, r) low-rank factor ``F`` (r may be 0).
    diag : (d,) positive diagonal ``D``.
    radius : γ >= 0 (squared Mahalanobis radius).
    kind : ``"robust"`` (set for realisations) or ``"mean"`` (DR ambiguity set for the mean).
    n_samples : days the set was estimated from.
    level : nominal coverage ``1 - ε`` (robust) or confidence ``1 - δ`` (mean).
    """

    mean: np.ndarray
    factor: np.ndarray
    diag: np.ndarray
    radius: float
    kind: str
    n_samples: int
    level: float

    def __post_init__(self) -> None:
        d = self.mean.shape[0]
        if self.factor.ndim != 2 or self.factor.shape[0] != d or self.diag.shape != (d,):
            raise DataError(f"inconsistent set shapes: mean {self.mean.shape}, factor {self.factor.shape}, "
                            f"diag {self.diag.shape}")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.factor).all() and np.isfinite(self.diag).all()):
            raise DataError("uncertainty set has non-finite entries")
        if (self.diag <= 0).any():
            raise DataError("uncertainty set diagonal must be strictly positive (singular covariance)")
        if not (np.isfinite(self.radius) and self.radius >= 0):
            raise DataError(f"uncertainty set radius must be finite and >= 0, got {self.radius}")
        if self.kind not in ("robust", "mean"):
            raise DataError(f"kind must be 'robust' or 'mean', got {self.kind!r}")

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    @property
    def rank(self) -> int:
        return self.factor.shape[1]

    def covariance(self) -> np.ndarray:
        """Dense ``(d, d)`` Σ (only for small d: tests and plots)."""
        return self.factor @ self.factor.T + np.diag(self.diag)

    def variances(self) -> np.ndarray:
        """``diag(Σ)``, shape (d,)."""
        return np.einsum("ij,ij->i", self.factor, self.factor) + self.diag

    def solve(self, v: np.ndarray) -> np.ndarray:
        """``Σ^{-1} v`` by the Woodbury identity; ``v`` of shape (d,) or (d, k)."""
        v = np.asarray(v, float)
        dinv_v = v / (self.diag if v.ndim == 1 else self.diag[:, None])
        if self.rank == 0:
            return dinv_v
        F = self.factor
        dinv_F = F / self.diag[:, None]
        cap = np.eye(self.rank) + F.T @ dinv_F
        cho = linalg.cho_factor(cap, lower=True)
        return dinv_v - dinv_F @ linalg.cho_solve(cho, F.T @ dinv_v)

    def mahalanobis2(self, x: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each row of ``x`` (shape (..., d)) to the centre."""
        x = np.asarray(x, float)
        diff = (x - self.mean).reshape(-1, self.dim)
        sol = self.solve(diff.T).T
        return np.einsum("ij,ij->i", diff, sol).reshape(x.shape[:-1])

    def contains(self, x: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
        """Membership of each row of ``x`` (shape (..., d)); boolean array of shape (...)."""
        return self.mahalanobis2(x) <= self.radius * (1 + rtol) + 1e-12

    def support_norm(self, g: np.ndarray) -> np.ndarray:
        """``sqrt(radius) * ||Σ^{1/2} g||`` = ``max_{x in set} (x - mean)^T g`` for rows of ``g`` (..., d)."""
        g = np.asarray(g, float)
        q = np.einsum("...i,i->...", g * g, self.diag) + ((g @ self.factor) ** 2).sum(-1)
        return np.sqrt(self.radius * q)

    def component_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-component extremes over the set: ``mean ∓ sqrt(radius * Σ_ii)``, each shape (d,)."""
        half = np.sqrt(self.radius * self.variances())
        return self.mean - half, self.mean + half


@dataclass(frozen=True)
class WindowMoments:
    """Per-component moments of a forecast window (model v2, MATH.md 1.1), dimension ``d = K n`` slot-major.

    Attributes
    ----------
    mean : (d,) centre (forecast + mean training residual: the same centre as the sets).
    variance : (d,) day-to-day variance of the quantity (sample variance of the training residual windows).
    halfwidth : (d,) simultaneous half-width ``δ`` of the mean: ``q σ / sqrt(N)`` with ``q`` the ``1 - level``
        quantile of the bootstrap max-statistic ``max_c |mean*_c - mean_c| / se_c`` (every component inside
        its interval at once with probability ``1 - level``), not the bounding box of the joint ellipsoid.
    scenarios : (N, d) the training days' windows moved to the target window (forecast + residual), for
        sample-average approximation.
    level : the confidence ``1 - δ`` of the half-widths.
    """

    mean: np.ndarray
    variance: np.ndarray
    halfwidth: np.ndarray
    scenarios: np.ndarray
    level: float

    def __post_init__(self) -> None:
        d = np.asarray(self.mean).shape[0]
        for name in ("variance", "halfwidth"):
            a = np.asarray(getattr(self, name), float)
            if a.shape != (d,) or not np.isfinite(a).all() or (a < 0).any():
                raise DataError(f"moments: {name} must be a finite non-negative ({d},) array")
        if np.asarray(self.scenarios).ndim != 2 or np.asarray(self.scenarios).shape[1] != d:
            raise DataError(f"moments: scenarios must have shape (N, {d})")

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    def shifted(self, forecast: np.ndarray) -> "WindowMoments":
        """The same moments with ``forecast`` (d,) added to the centre and the scenarios."""
        f = np.asarray(forecast, float)
        return WindowMoments(self.mean + f, self.variance, self.halfwidth, self.scenarios + f[None, :], self.level)


def window_moments(residuals: np.ndarray, level: float, n_bootstrap: int, random_state: int) -> WindowMoments:
    """Moments of residual windows ``residuals`` (N days, d) around a zero forecast (see :class:`WindowMoments`).

    The half-width uses a seeded bootstrap of the days (``n_bootstrap`` resamples).  Raises DataError
    with fewer than 2 days.
    """
    X = np.asarray(residuals, float)
    if X.ndim != 2 or X.shape[0] < 2:
        raise DataError(f"moments need at least 2 days of history, got shape {X.shape}")
    m = X.shape[0]
    mean = X.mean(axis=0)
    var = X.var(axis=0, ddof=1)
    se = np.sqrt(var / m)
    rng = np.random.default_rng(random_state)
    W = rng.multinomial(m, np.full(m, 1.0 / m), size=n_bootstrap) / m
    diffs = np.abs(W @ (X - mean))                        # (B, d)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diffs / np.where(se > 0, se, 1.0), 0.0)
    q = float(np.quantile(z.max(axis=1), level)) if z.size else 0.0
    return WindowMoments(mean, var, q * se, X, level)


class EllipsoidEstimator:
    """Build the robust and the DR mean set from ``m`` samples of a ``d``-vector.

    Parameters
    ----------
    shrinkage : ``"ledoit_wolf"`` (default), ``"oas"`` or ``"none"`` (sample covariance; singular when
        ``m <= d``, which raises).  Shrinkage targets ``μ I`` with ``μ = trace(S)/d``, so
        ``Σ = (1 - s) S + s μ I`` is exactly low rank (the samples) plus a diagonal.
    epsilon : robust-set miss probability ``ε`` (radius ``χ²_d(1 - ε)``), default 0.1.
    delta : DR-set confidence ``1 - δ`` for the mean, default 0.1.
    n_bootstrap : day resamples for the DR radius (default 500).
    robust_radius : ``"chi2"`` (default, MATH.md: ``χ²_d(1 - ε)``, exact for Gaussian data with known
        Σ) or ``"conformal"``: the ``ceil((m + 1)(1 - ε))``-th smallest leave-one-day-out squared
        Mahalanobis distance (split-free conformal calibration; valid for exchangeable days whatever
        their distribution, and the better choice when ``d >> m`` makes χ² meaningless).  Computed
        in the ``m x m`` Gram space, ``O(m^2 d + m^4)``.
    rank : keep only the top ``rank`` directions of ``S`` (their dropped variance moves to the
        diagonal so marginal variances stay exact); None keeps all (``<= m - 1``).
    random_state : seed of the bootstrap.

    Fitted attributes: ``robust_set_``, ``mean_set_``, ``shrinkage_`` (the weight ``s``), ``n_samples_``.
    """

    def __init__(self, shrinkage: str = "ledoit_wolf", epsilon: float = 0.1, delta: float = 0.1,
                 n_bootstrap: int = 500, rank: int | None = None, random_state: int = 0,
                 robust_radius: str = "chi2"):
        if shrinkage not in ("ledoit_wolf", "oas", "none"):
            raise ConfigError(f"shrinkage must be 'ledoit_wolf', 'oas' or 'none', got {shrinkage!r}")
        if not (0 < epsilon < 1) or not (0 < delta < 1):
            raise ConfigError(f"epsilon and delta must lie in (0, 1); got {epsilon}, {delta}")
        if n_bootstrap < 10:
            raise ConfigError(f"n_bootstrap must be at least 10, got {n_bootstrap}")
        if robust_radius not in ("chi2", "conformal"):
            raise ConfigError(f"robust_radius must be 'chi2' or 'conformal', got {robust_radius!r}")
        self.robust_radius = robust_radius
        if rank is not None and rank < 0:
            raise ConfigError(f"rank must be >= 0 or None, got {rank}")
        self.shrinkage, self.epsilon, self.delta = shrinkage, epsilon, delta
        self.n_bootstrap, self.rank, self.random_state = n_bootstrap, rank, random_state

    def fit(self, samples: np.ndarray, center: np.ndarray | None = None) -> "EllipsoidEstimator":
        """Fit from ``samples`` of shape ``(m, d)``.

        ``center`` (d,) is the forecast the samples deviate from; the sets are centred at
        ``center + mean(samples - center)`` (= the sample mean when ``center`` is None).
        """
        X = np.asarray(samples, float)
        if X.ndim != 2:
            raise DataError(f"samples must be a 2-D array (days, dimension), got shape {X.shape}")
        m, d = X.shape
        if m < 2:
            raise DataError(f"an uncertainty set needs at least 2 days of history, got {m}; "
                            "lengthen the training period")
        if not np.isfinite(X).all():
            raise DataError("samples contain NaN or infinite values; clean the panel first")
        base = np.zeros(d) if center is None else np.asarray(center, float)
        if base.shape != (d,):
            raise DataError(f"center has shape {base.shape}, expected ({d},)")
        resid = X - base
        mu_resid = resid.mean(axis=0)
        Xc = resid - mu_resid
        S_scale = 1.0 / (m - 1)  # unbiased: one degree of freedom spent on the mean
        total_var = float((Xc * Xc).sum() * S_scale)
        mu = total_var / d
        if not mu > 0:
            raise DataError(f"degenerate panel: all {d} components are constant over the {m} days "
                            "(zero variance); coarsen the regions, lengthen the slots or the training period")
        s = self._shrinkage(Xc, m, d)
        if s == 0.0 and m - 1 < d:
            raise DataError(f"sample covariance is singular ({m} days for dimension {d}) and shrinkage is 'none'; "
                            "use shrinkage='ledoit_wolf' or 'oas'")
        F, extra = self._factor(Xc, S_scale * (1 - s))
        diag = s * mu + extra
        if (diag <= 0).any():
            raise DataError("covariance is singular (a component has zero variance and no shrinkage); "
                            "use shrinkage='ledoit_wolf' or coarsen the regions")
        centre = base + mu_resid
        if self.robust_radius == "chi2":
            robust_r = float(stats.chi2.ppf(1 - self.epsilon, d))
        else:
            if m < 3:
                raise DataError(f"conformal calibration needs at least 3 days, got {m}")
            loo = _loo_mahalanobis2(resid, s)
            k = min(m, int(np.ceil((m + 1) * (1 - self.epsilon))))
            robust_r = float(np.sort(loo)[k - 1])
        self.robust_set_ = UncertaintySet(centre, F, diag, robust_r, "robust", m, 1 - self.epsilon)
        proto = UncertaintySet(centre, F, diag, 0.0, "mean", m, 1 - self.delta)
        rng = np.random.default_rng(self.random_state)
        W = rng.multinomial(m, np.full(m, 1.0 / m), size=self.n_bootstrap) / m  # (B, m) resample weights
        diffs = W @ Xc  # bootstrap mean minus sample mean, (B, d)
        q = proto.mahalanobis2(diffs + centre)
        mean_r = float(np.quantile(q, 1 - self.delta))
        self.mean_set_ = UncertaintySet(centre, F, diag, mean_r, "mean", m, 1 - self.delta)
        self.shrinkage_, self.n_samples_ = s, m
        return self

    def _shrinkage(self, Xc: np.ndarray, m: int, d: int) -> float:
        if self.shrinkage == "none":
            return 0.0
        if self.shrinkage == "ledoit_wolf":
            from sklearn.covariance import ledoit_wolf_shrinkage  # lazy (b): heavy (~0.4 s), only when fitting

            return float(ledoit_wolf_shrinkage(Xc, assume_centered=True))
        from sklearn.covariance import oas  # lazy (b): heavy (~0.4 s), only when fitting

        return float(oas(Xc, assume_centered=True)[1])

    def _factor(self, Xc: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """Low-rank factor of ``scale * Xc^T Xc`` and the diagonal of what truncation drops."""
        m, d = Xc.shape
        keep = min(m, d) if self.rank is None else min(self.rank, m, d)
        if self.rank is None and m <= d:
            # Exact: F = sqrt(scale) Xc^T (rank <= m - 1), no eigen-decomposition needed.
            return np.sqrt(scale) * Xc.T, np.zeros(d)
        if self.rank is None and m > d:
            # More days than dimensions: a (d, d) factor from the eigen-decomposition is smaller.
            lam, V = np.linalg.eigh(scale * (Xc.T @ Xc))
            return V * np.sqrt(np.clip(lam, 0.0, None)), np.zeros(d)
        U, sv, Vt = np.linalg.svd(Xc, full_matrices=False)
        F = (Vt[:keep].T * sv[:keep]) * np.sqrt(scale)
        dropped = ((Vt[keep:].T * sv[keep:]) ** 2).sum(axis=1) * scale
        return F, dropped


def _loo_mahalanobis2(X: np.ndarray, shrinkage: float) -> np.ndarray:
    """Squared Mahalanobis distance of each row of ``X`` (m, d) to the set fitted on the other rows.

    The left-out fit uses the same shrinkage weight ``s`` (from all rows) and the exact covariance.
    When ``d > m`` everything is computed from the Gram matrix ``G = X X^T`` (``O(m^2 d + m^4)``);
    otherwise in ``d``-space with the leave-one-out covariance downdate (``O(m d^3)``).
    """
    m, d = X.shape
    if d <= m:
        xbar = X.mean(axis=0)
        E = X - xbar
        S = E.T @ E / (m - 1)
        # S_J = ((m-1) S - m/(m-1) e e^T) / (m-2);  v = x_i - mean_J = m/(m-1) e
        SJ = ((m - 1) * S[None] - (m / (m - 1)) * np.einsum("ki,kj->kij", E, E)) / (m - 2)
        mu = np.trace(SJ, axis1=1, axis2=2) / d
        sig = (1 - shrinkage) * SJ + (shrinkage * mu)[:, None, None] * np.eye(d)[None]
        V = (m / (m - 1)) * E
        return np.einsum("ki,ki->k", V, np.linalg.solve(sig, V[:, :, None])[:, :, 0])
    G = X @ X.T
    out = np.empty(m)
    for i in range(m):
        J = np.delete(np.arange(m), i)
        n = m - 1
        C = np.eye(n) - 1.0 / n
        K = C @ G[np.ix_(J, J)] @ C  # Gram of centred others
        w = np.full(n, -1.0 / n)  # v = x_i - mean_J = X^T [e_i + w on J]
        vv = G[i, i] + 2 * w @ G[J, i] + w @ G[np.ix_(J, J)] @ w
        b = C @ (G[J, i] + G[np.ix_(J, J)] @ w)  # Xc_J v
        c2 = (1 - shrinkage) / (n - 1)
        mu = np.trace(K) / ((n - 1) * d)
        D = shrinkage * mu
        if not D > 0:
            out[i] = np.inf
            continue
        inner = np.linalg.solve(np.eye(n) + (c2 / D) * K, b)
        out[i] = vv / D - (c2 / D**2) * (b @ inner)
    return out


def coverage(uset: UncertaintySet, held_out: np.ndarray, block_size: int | None = None) -> float:
    """Empirical coverage of a set on held-out samples ``(m, d)``.

    * ``robust`` set: share of held-out rows inside the set.
    * ``mean`` set: the held-out rows are split into consecutive blocks of ``block_size`` (default: all
      rows form one block) and the share of block means inside the set is returned.
    """
    H = np.asarray(held_out, float)
    if H.ndim != 2 or H.shape[1] != uset.dim:
        raise DataError(f"held-out samples must have shape (m, {uset.dim}), got {H.shape}")
    if len(H) == 0:
        raise DataError("no held-out samples to measure coverage on")
    if uset.kind == "robust":
        return float(uset.contains(H).mean())
    b = len(H) if block_size is None else int(block_size)
    if not (1 <= b <= len(H)):
        raise ConfigError(f"block_size must be in 1..{len(H)}, got {block_size}")
    nb = len(H) // b
    means = H[: nb * b].reshape(nb, b, -1).mean(axis=1)
    return float(uset.contains(means).mean())
