"""Uncertainty sets: coverage on known Gaussians, algebra of the low-rank form, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_pipeline.estimates import EstimateConfig, Estimates
from data_pipeline.panels import Panel, day_types
from data_pipeline.regions import RegionMap
from data_pipeline.uncertainty import EllipsoidEstimator, UncertaintySet, _loo_mahalanobis2, coverage
from drbalance.errors import ConfigError, DataError


def _gaussian(seed, d=8):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(d, d))
    cov = A @ A.T / d + np.eye(d)
    mu = rng.normal(size=d) * 3
    return rng, mu, cov


def test_robust_coverage_on_known_gaussian_is_nominal():
    rng, mu, cov = _gaussian(0)
    X = rng.multivariate_normal(mu, cov, size=3000)
    H = rng.multivariate_normal(mu, cov, size=5000)
    for method in ("chi2", "conformal"):
        est = EllipsoidEstimator(epsilon=0.1, robust_radius=method, n_bootstrap=200).fit(X)
        assert abs(coverage(est.robust_set_, H) - 0.90) <= 0.03, method


def test_robust_coverage_through_the_panel_pipeline():
    """Synthetic Gaussian panels with known mean and covariance, end to end through Estimates."""
    rng = np.random.default_rng(7)
    n, S, K = 3, 24, 2  # 3 regions, hourly slots, 2-slot windows -> d = 6
    days = pd.date_range("2020-01-01", periods=1400)
    prof = 5 + 3 * np.sin(np.linspace(0, 2 * np.pi, S))[:, None] * np.array([1.0, 0.5, 2.0])
    L = np.linalg.cholesky(np.array([[1.0, 0.6, 0.2], [0.6, 1.5, 0.3], [0.2, 0.3, 0.8]]))
    vals = prof[None] + rng.normal(size=(len(days), S, n)) @ L.T
    panel = Panel(vals, days, 60, np.arange(n), "demand", day_types(days))
    rm = RegionMap(np.arange(n), np.array(["a", "b", "c"]), np.zeros(n), np.zeros(n), np.zeros((n, n)),
                   np.arange(n), np.arange(n))
    est = Estimates.fit({"demand": panel.select("2020-01-01", "2021-06-30")}, rm,
                        EstimateConfig(slot_minutes=60, horizon=K, n_bootstrap=100))
    cov = est.coverage({"demand": panel.select("2021-07-01", "2023-10-31")})["demand"]
    assert abs(cov["robust"] - 0.90) <= 0.03
    assert est.dim == K * n


def test_woodbury_and_membership_algebra():
    rng, mu, cov = _gaussian(1, d=6)
    X = rng.multivariate_normal(mu, cov, size=40)
    s = EllipsoidEstimator(rank=3).fit(X).robust_set_
    dense = s.covariance()
    v = rng.normal(size=6)
    assert np.allclose(s.solve(v), np.linalg.solve(dense, v))
    assert np.allclose(s.mahalanobis2(s.mean + v), v @ np.linalg.solve(dense, v))
    # boundary points: mean + sqrt(radius) * L u, |u| = 1
    L = np.linalg.cholesky(dense)
    u = rng.normal(size=(200, 6))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    pts = s.mean + np.sqrt(s.radius) * u @ L.T
    assert s.contains(pts).all()
    assert not s.contains(s.mean + 1.01 * np.sqrt(s.radius) * u @ L.T).any()
    # support function: max over the set of g.(x - mean) = sqrt(radius g' Σ g), attained on the boundary
    g = rng.normal(size=6)
    assert s.support_norm(g) == pytest.approx(np.sqrt(s.radius * g @ dense @ g))
    assert ((pts - s.mean) @ g <= s.support_norm(g) + 1e-9).all()
    lo, hi = s.component_bounds()
    assert np.allclose(hi - s.mean, np.sqrt(s.radius * np.diag(dense)))


def test_rank_truncation_keeps_marginal_variances():
    rng, mu, cov = _gaussian(2, d=10)
    X = rng.multivariate_normal(mu, cov, size=30)
    full = EllipsoidEstimator().fit(X).robust_set_
    low = EllipsoidEstimator(rank=2).fit(X).robust_set_
    assert low.rank == 2 and full.rank == 10  # m = 30 > d = 10: a (d, d) factor
    assert np.allclose(low.variances(), full.variances())
    assert np.allclose(full.covariance(), EllipsoidEstimator(rank=30).fit(X).robust_set_.covariance())


def test_shrinkage_form_matches_sklearn():
    from sklearn.covariance import LedoitWolf

    rng, mu, cov = _gaussian(3, d=12)
    X = rng.multivariate_normal(mu, cov, size=9)  # d > m: sample covariance singular
    est = EllipsoidEstimator().fit(X)
    lw = LedoitWolf(assume_centered=True).fit(X - X.mean(0))
    # ours uses the unbiased 1/(m-1) scale; same shrinkage weight
    assert est.shrinkage_ == pytest.approx(lw.shrinkage_)
    assert np.allclose(est.robust_set_.covariance(), lw.covariance_ * 9 / 8)
    assert np.linalg.eigvalsh(est.robust_set_.covariance()).min() > 0


def test_conformal_loo_matches_brute_force():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(10, 25))
    s = EllipsoidEstimator().fit(X).shrinkage_
    loo = _loo_mahalanobis2(X, s)
    for i in (0, 5, 9):
        J = np.delete(np.arange(10), i)
        Xc = X[J] - X[J].mean(0)
        S = Xc.T @ Xc / 8
        sig = (1 - s) * S + s * np.trace(S) / 25 * np.eye(25)
        v = X[i] - X[J].mean(0)
        assert loo[i] == pytest.approx(v @ np.linalg.solve(sig, v), rel=1e-8)


def test_dr_mean_set_and_bootstrap_seed():
    rng, mu, cov = _gaussian(5)
    X = rng.multivariate_normal(mu, cov, size=200)
    a = EllipsoidEstimator(random_state=1).fit(X).mean_set_
    b = EllipsoidEstimator(random_state=1).fit(X).mean_set_
    c = EllipsoidEstimator(random_state=2).fit(X).mean_set_
    assert a.radius == b.radius and a.radius != c.radius
    # radius ~ chi2_d(0.9) / m for Gaussian data
    assert 0.5 * 13.36 / 200 < a.radius < 2 * 13.36 / 200
    assert a.kind == "mean" and a.contains(X.mean(0))
    # block coverage: the mean of many fresh draws is close to mu, inside a set that covers mu
    H = rng.multivariate_normal(mu, cov, size=20000)
    assert coverage(a, H, block_size=20000) in (0.0, 1.0)
    assert coverage(a, H) == float(a.contains(H.mean(0)))


def test_errors_are_specific():
    with pytest.raises(DataError, match="at least 2 days"):
        EllipsoidEstimator().fit(np.ones((1, 4)))
    with pytest.raises(DataError, match="degenerate"):
        EllipsoidEstimator().fit(np.ones((5, 4)))
    with pytest.raises(DataError, match="NaN"):
        EllipsoidEstimator().fit(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(DataError, match="singular"):
        EllipsoidEstimator(shrinkage="none").fit(np.random.default_rng(0).normal(size=(3, 5)))
    with pytest.raises(ConfigError):
        EllipsoidEstimator(epsilon=1.5)
    with pytest.raises(ConfigError):
        EllipsoidEstimator(robust_radius="magic")
    with pytest.raises(DataError, match="positive"):
        UncertaintySet(np.zeros(2), np.zeros((2, 0)), np.array([1.0, 0.0]), 1.0, "robust", 3, 0.9)
    with pytest.raises(DataError):
        coverage(UncertaintySet(np.zeros(2), np.zeros((2, 0)), np.ones(2), 1.0, "robust", 3, 0.9), np.ones((3, 5)))
