"""Forecasters of the per-slot, per-region mean of a panel (scikit-learn-style ``fit``/``predict``).

* :class:`HistoricalMeanForecaster` (default): mean over the training days of the same day type
  (weekday/weekend) and slot — the centre MATH.md section 2 prescribes.
* :class:`PoissonGLMForecaster`: per-region statsmodels Poisson GLM with a smooth daily profile
  (Fourier harmonics of the time of day) for each day type; borrows strength across slots, so it
  is less noisy than the historical mean when there are few training days.

Both predict ``(n_days, n_slots, n_regions)`` arrays for a sequence of day types, so forecasts of
any day (past or future) use only the training panel.
"""

from __future__ import annotations

import warnings

import numpy as np

from data_pipeline.panels import Panel
from drbalance.errors import ConfigError, DataError


class HistoricalMeanForecaster:
    """Mean of the same day type and slot over the training days.

    Fitted attributes: ``mean_`` (dict day type -> (n_slots, n_regions) array), ``n_days_`` (dict
    day type -> training days), ``n_slots_``, ``n_regions_``.
    """

    name = "historical_mean"

    def fit(self, panel: Panel) -> "HistoricalMeanForecaster":
        if panel.n_days < 1:
            raise DataError("cannot fit a forecaster on an empty panel")
        self.mean_ = {}
        self.n_days_ = {}
        for t in np.unique(panel.day_type):
            m = panel.day_type == t
            self.mean_[t] = panel.values[m].mean(axis=0)
            self.n_days_[t] = int(m.sum())
        self.n_slots_, self.n_regions_ = panel.n_slots, panel.n_regions
        return self

    def predict(self, day_type: np.ndarray) -> np.ndarray:
        """Mean profile per requested day: ``(len(day_type), n_slots, n_regions)``."""
        return _stack(self, day_type)


class PoissonGLMForecaster:
    """Per-region Poisson GLM: ``log E[y] = a + weekend + sum_h (b_h cos + c_h sin)(2 pi h s / S)``,
    with separate harmonic coefficients for weekdays and weekends (statsmodels GLM, IRLS).

    Parameters
    ----------
    harmonics : number of daily Fourier harmonics (default 6: a profile resolving ~2-hour features).

    Regions with no event at all in training are predicted as exactly 0 (listed in
    ``zero_regions_``); a fit that does not converge raises :class:`DataError`.
    """

    name = "poisson_glm"

    def __init__(self, harmonics: int = 6):
        if not (1 <= harmonics <= 24):
            raise ConfigError(f"harmonics must be in 1..24, got {harmonics}")
        self.harmonics = harmonics

    def _design(self, n_slots: int, weekend: np.ndarray) -> np.ndarray:
        s = np.arange(n_slots)
        cols = []
        for h in range(1, self.harmonics + 1):
            ang = 2 * np.pi * h * s / n_slots
            cols += [np.cos(ang), np.sin(ang)]
        base = np.stack(cols, axis=1)  # (n_slots, 2H)
        rows = []
        for w in weekend:
            x = np.concatenate([np.ones((n_slots, 1)), np.full((n_slots, 1), float(w)), base * (1 - w), base * w],
                               axis=1)
            rows.append(x)
        return np.concatenate(rows, axis=0)

    def fit(self, panel: Panel) -> "PoissonGLMForecaster":
        import statsmodels.api as sm  # lazy (b): heavy (~1.3 s), only for the Poisson GLM

        types = np.unique(panel.day_type)
        if panel.n_days < 2:
            raise DataError("the Poisson GLM needs at least 2 training days")
        weekend = (panel.day_type == "weekend").astype(float)
        X = self._design(panel.n_slots, weekend)
        keep = np.ones(X.shape[1], bool)
        if len(types) == 1:  # drop the columns of the absent day type (they are all zero)
            w = float(types[0] == "weekend")
            h2 = 2 * self.harmonics
            keep[1] = False
            keep[2:2 + h2] = w == 0
            keep[2 + h2:] = w == 1
        self.keep_ = keep
        self.types_ = set(types.tolist())
        self.coef_ = np.zeros((panel.n_regions, keep.sum()))
        self.zero_regions_ = []
        y = panel.values.reshape(-1, panel.n_regions)
        for r in range(panel.n_regions):
            if y[:, r].sum() == 0:
                self.zero_regions_.append(r)
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = sm.GLM(y[:, r], X[:, keep], family=sm.families.Poisson()).fit(maxiter=100)
            if not res.converged or not np.isfinite(res.params).all():
                raise DataError(f"Poisson GLM did not converge for region position {r}; "
                                "use fewer harmonics or the historical-mean forecaster")
            self.coef_[r] = res.params
        self.n_slots_, self.n_regions_ = panel.n_slots, panel.n_regions
        return self

    def predict(self, day_type: np.ndarray) -> np.ndarray:
        day_type = np.asarray(day_type, dtype=object)
        unknown = set(day_type.tolist()) - self.types_
        if unknown:
            raise DataError(f"no training days of type {sorted(unknown)}; include such days in the training period")
        X = self._design(self.n_slots_, (day_type == "weekend").astype(float))[:, self.keep_]
        mu = np.exp(X @ self.coef_.T)
        mu[:, self.zero_regions_] = 0.0
        return mu.reshape(len(day_type), self.n_slots_, self.n_regions_)


def _stack(model: HistoricalMeanForecaster, day_type: np.ndarray) -> np.ndarray:
    day_type = np.asarray(day_type, dtype=object)
    missing = sorted(set(day_type.tolist()) - set(model.mean_))
    if missing:
        raise DataError(f"no training days of type {missing}; include such days in the training period")
    if len(day_type) == 0:
        return np.zeros((0, model.n_slots_, model.n_regions_))
    return np.stack([model.mean_[t] for t in day_type])


FORECASTERS = {"historical_mean": HistoricalMeanForecaster, "poisson_glm": PoissonGLMForecaster}


def make_forecaster(name: str):
    """Forecaster by name: ``historical_mean`` (default) or ``poisson_glm``."""
    try:
        return FORECASTERS[name]()
    except KeyError:
        raise ConfigError(f"unknown forecaster {name!r}; choose one of {sorted(FORECASTERS)}") from None
