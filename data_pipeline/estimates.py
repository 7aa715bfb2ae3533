"""Estimates: forecasts and horizon-window uncertainty sets fitted on a training period.

For each quantity (demand, supply, ...) a forecaster gives the per-slot mean; the residuals
(actual - forecast) over the training days define, for every *window* of ``K`` consecutive slots
starting at slot ``t`` of a day of type ``τ``, the stacked residual vector of length ``d = K n``
(slot-major: entry ``k * n + i`` is slot ``t + k``, region ``i``).  Windows may cross midnight into
the next calendar day.  The robust and DR sets of a window are built from the training windows of
the same ``(τ, t)`` and centred at the forecast of the target window plus the mean residual.

Sets are built lazily and cached; each ``(quantity, τ, t)`` has its own seed derived from
``random_state``, so results do not depend on the order they are requested in.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from data_pipeline.forecast import FORECASTERS, make_forecaster
from data_pipeline.panels import Panel, day_types
from data_pipeline.regions import RegionMap
from data_pipeline.trip_model import TripModel
from data_pipeline.uncertainty import EllipsoidEstimator, UncertaintySet, WindowMoments, window_moments
from drbalance.errors import ConfigError, DataError
from drbalance.validation import check_choice, check_horizon, check_int, check_number, check_slot_minutes

BUNDLE_FILE = "estimates.npz"


def _small_blas():
    """Single-threaded BLAS for the many small products of set fitting: measured 70x faster than
    OpenBLAS's 2 threads on a loaded 2-core machine (d=80, rank 40, 500 bootstrap rows)."""
    return threadpool_limits(limits=1, user_api="blas")


@dataclass(frozen=True)
class EstimateConfig:
    """Every choice behind an :class:`Estimates` (MATH.md section 2 defaults)."""

    slot_minutes: int = 15
    horizon: int = 4
    forecaster: str = "historical_mean"
    shrinkage: str = "ledoit_wolf"
    epsilon: float = 0.1
    delta: float = 0.1
    n_bootstrap: int = 500
    rank: int | None = None
    robust_radius: str = "chi2"
    holidays: str | None = None
    random_state: int = 0

    def __post_init__(self) -> None:
        check_slot_minutes(self.slot_minutes)
        check_horizon(self.horizon, self.slot_minutes)
        check_choice("forecaster", self.forecaster, FORECASTERS)
        check_number("epsilon", self.epsilon, low=0, high=1, low_open=True, high_open=True)
        check_number("delta", self.delta, low=0, high=1, low_open=True, high_open=True)
        check_int("n_bootstrap", self.n_bootstrap, low=1)
        check_int("rank", self.rank, low=0, allow_none=True)
        check_choice("holidays", self.holidays, ("us",), allow_none=True)
        check_int("random_state", self.random_state, low=0)
        EllipsoidEstimator(self.shrinkage, self.epsilon, self.delta, self.n_bootstrap, self.rank,
                           robust_radius=self.robust_radius)  # validates
        make_forecaster(self.forecaster)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Estimates:
    """Fitted forecasts and residual history for several quantities over one region map.

    Attributes
    ----------
    config : :class:`EstimateConfig`.
    regions : :class:`RegionMap` (n regions).
    train : dict quantity -> training :class:`Panel`.
    forecasters : dict quantity -> fitted forecaster.
    residuals : dict quantity -> (n_train_days * n_slots, n) residual series (actual - forecast).
    trip_model : :class:`data_pipeline.trip_model.TripModel` of the training trips (timing share and
        trip mobility for model v2), or None when fitted from panels alone (see :meth:`with_trip_model`).
    """

    config: EstimateConfig
    regions: RegionMap
    train: dict[str, Panel]
    forecasters: dict = field(default_factory=dict)
    residuals: dict[str, np.ndarray] = field(default_factory=dict)
    trip_model: TripModel | None = None
    _cache: dict = field(default_factory=dict, repr=False)
    _moments: dict = field(default_factory=dict, repr=False)

    @classmethod
    def fit(cls, panels: dict[str, Panel], regions: RegionMap, config: EstimateConfig = EstimateConfig()) -> "Estimates":
        """Fit forecasters on training ``panels`` (dict quantity -> Panel over the same days)."""
        if not panels:
            raise DataError("no panels to estimate from")
        days = None
        for q, p in panels.items():
            if p.slot_minutes != config.slot_minutes:
                raise ConfigError(f"{q} panel has {p.slot_minutes}-min slots but config says {config.slot_minutes}")
            if p.n_regions != regions.n:
                raise DataError(f"{q} panel has {p.n_regions} regions, region map has {regions.n}")
            if days is not None and not p.days.equals(days):
                raise DataError("all training panels must cover the same days")
            days = p.days
        if len(days) < 2:
            raise DataError(f"training period has {len(days)} day(s); uncertainty sets need at least 2 days")
        est = cls(config, regions, dict(panels))
        for q, p in panels.items():
            f = make_forecaster(config.forecaster).fit(p)
            est.forecasters[q] = f
            est.residuals[q] = (p.values - f.predict(p.day_type)).reshape(-1, p.n_regions)
        return est

    # ------------------------------------------------------------------ shapes
    @property
    def n_slots(self) -> int:
        return 1440 // self.config.slot_minutes

    @property
    def dim(self) -> int:
        return self.config.horizon * self.regions.n

    @property
    def quantities(self) -> list[str]:
        return list(self.train)

    def _quantity(self, quantity: str) -> Panel:
        try:
            return self.train[quantity]
        except KeyError:
            raise DataError(f"no estimates for {quantity!r}; have {self.quantities}") from None

    def window_index(self, days: pd.DatetimeIndex, day_type: np.ndarray, wanted_type: str, start_slot: int,
                     n_days_total: int) -> np.ndarray:
        """Absolute slot index of the first slot of each window of ``wanted_type`` starting at
        ``start_slot`` that fits in a series of ``n_days_total`` days."""
        K, S = self.config.horizon, self.n_slots
        starts = np.flatnonzero(np.asarray(day_type) == wanted_type) * S + start_slot
        return starts[starts + K <= n_days_total * S]

    def training_windows(self, quantity: str, day_type: str, start_slot: int) -> np.ndarray:
        """(N, K n) training residual windows of ``quantity`` for ``(day_type, start_slot)`` (slot-major).

        Raises ConfigError for a start slot outside the day, DataError with fewer than 2 windows."""
        if not (0 <= start_slot < self.n_slots):
            raise ConfigError(f"start slot must be in 0..{self.n_slots - 1}, got {start_slot}")
        p = self._quantity(quantity)
        starts = self.window_index(p.days, p.day_type, day_type, start_slot, p.n_days)
        if len(starts) < 2:
            raise DataError(f"{quantity}: only {len(starts)} training window(s) of type {day_type!r} start at "
                            f"slot {start_slot}; need >= 2 (lengthen the training period)")
        return self._windows(self.residuals[quantity], starts)

    def _window_seed(self, quantity: str, day_type: str, start_slot: int, *stream: int) -> int:
        """The seed of one window's bootstrap: fixed by (random_state, quantity, day type, slot, stream), so
        results do not depend on the order windows are requested in."""
        seq = np.random.SeedSequence([self.config.random_state, self.quantities.index(quantity),
                                      0 if day_type == "weekday" else 1, int(start_slot), *stream])
        return int(np.random.default_rng(seq).integers(2**32))

    def _windows(self, series: np.ndarray, starts: np.ndarray) -> np.ndarray:
        K = self.config.horizon
        idx = starts[:, None] + np.arange(K)[None, :]
        return series[idx].reshape(len(starts), -1)

    # ------------------------------------------------------------------ sets
    def residual_sets(self, quantity: str, day_type: str, start_slot: int) -> tuple[UncertaintySet, UncertaintySet]:
        """(robust, mean) sets of the *residual* window for ``(day_type, start_slot)``, centred at the
        mean residual (add a forecast window to get sets for a target window)."""
        key = (quantity, day_type, int(start_slot))
        if key not in self._cache:
            X = self.training_windows(quantity, day_type, start_slot)
            c = self.config
            with _small_blas():
                est = EllipsoidEstimator(c.shrinkage, c.epsilon, c.delta, c.n_bootstrap, c.rank,
                                         random_state=self._window_seed(quantity, day_type, start_slot),
                                         robust_radius=c.robust_radius).fit(X)
            self._cache[key] = (est.robust_set_, est.mean_set_, est.shrinkage_)
        r, m, _ = self._cache[key]
        return r, m

    def forecast_window(self, quantity: str, date, start_slot: int, holidays: str | None = None) -> np.ndarray:
        """Forecast of the ``K`` slots from ``start_slot`` of ``date`` (crossing midnight if needed),
        shape ``(K, n)``; uses only the fitted training data."""
        K, S = self.config.horizon, self.n_slots
        day = pd.Timestamp(date).normalize()
        n_days = (start_slot + K - 1) // S + 1
        days = pd.date_range(day, periods=n_days, freq="D")
        prof = self.forecasters[quantity].predict(day_types(days, self.config.holidays))
        return prof.reshape(-1, self.regions.n)[start_slot:start_slot + K]

    def sets_for(self, quantity: str, date, start_slot: int) -> tuple[UncertaintySet, UncertaintySet]:
        """(robust, mean) sets for the window of ``quantity`` starting at ``start_slot`` on ``date``,
        each of dimension ``K n`` (slot-major), centred at forecast + mean training residual."""
        day = pd.Timestamp(date).normalize()
        tau = day_types(pd.DatetimeIndex([day]), self.config.holidays)[0]
        r, m = self.residual_sets(quantity, tau, start_slot)
        f = self.forecast_window(quantity, day, start_slot).ravel()
        return dataclasses.replace(r, mean=r.mean + f), dataclasses.replace(m, mean=m.mean + f)

    def with_trip_model(self, trips: pd.DataFrame) -> "Estimates":
        """Attach the :class:`TripModel` of ``trips`` (the training trips only: no look-ahead) and return self."""
        self.trip_model = TripModel.fit(trips, self.regions, self.config.slot_minutes)
        return self

    def residual_moments(self, quantity: str, day_type: str, start_slot: int) -> WindowMoments:
        """Moments of the residual window for ``(day_type, start_slot)`` (zero forecast; cached, seeded)."""
        key = (quantity, day_type, int(start_slot))
        if key not in self._moments:
            X = self.training_windows(quantity, day_type, start_slot)
            c = self.config
            self._moments[key] = window_moments(X, 1 - c.delta, c.n_bootstrap,
                                                self._window_seed(quantity, day_type, start_slot, 1))
        return self._moments[key]

    def moments_for(self, quantity: str, date, start_slot: int) -> WindowMoments:
        """:class:`WindowMoments` of ``quantity`` for the window starting at ``start_slot`` on ``date``
        (centre = forecast + mean residual, the sets' centre; scenarios = forecast + training residual windows)."""
        day = pd.Timestamp(date).normalize()
        tau = day_types(pd.DatetimeIndex([day]), self.config.holidays)[0]
        return self.residual_moments(quantity, tau, start_slot).shifted(
            self.forecast_window(quantity, day, start_slot).ravel())

    def cross_covariance(self, a: str, b: str, date, start_slot: int) -> np.ndarray:
        """(K n,) per-component covariance of the residual windows of ``a`` and ``b`` (same training days)."""
        day = pd.Timestamp(date).normalize()
        tau = day_types(pd.DatetimeIndex([day]), self.config.holidays)[0]
        ma, mb = self.residual_moments(a, tau, start_slot), self.residual_moments(b, tau, start_slot)
        Xa, Xb = ma.scenarios - ma.mean, mb.scenarios - mb.mean
        if Xa.shape != Xb.shape:
            raise DataError(f"{a} and {b} have different training windows; fit them on the same days")
        return (Xa * Xb).sum(axis=0) / (len(Xa) - 1)

    def set_table(self) -> pd.DataFrame:
        """One row per cached set: quantity, day_type, start_slot, dim, rank, shrinkage, radii."""
        rows = [{"quantity": q, "day_type": t, "start_slot": s, "dim": r.dim, "rank": r.rank, "shrinkage": sh,
                 "n_days": r.n_samples, "radius_robust": r.radius, "radius_mean": m.radius}
                for (q, t, s), (r, m, sh) in sorted(self._cache.items())]
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------ coverage
    def coverage(self, heldout: dict[str, Panel], progress=None) -> dict[str, dict]:
        """Empirical coverage on held-out panels (same slots and regions), per quantity.

        * ``robust``: share of held-out windows (every day, every start slot whose window fits in the
          held-out days) whose realised vector lies in the robust set of its day type and slot.
        * ``dr``: share of ``(day type, start slot)`` cells whose held-out *mean* window (block of all
          held-out days of that type) lies in the DR mean set.  The held-out mean is itself noisy
          (covariance ``Σ / m_h``), so even with no shift it falls outside a set sized for the
          training mean's error ``Σ / m`` most of the time;
        * ``dr_two_sample``: the same test with the radius scaled by ``1 + m / m_h``, i.e. a
          two-sample test of "same mean" at level ``δ`` (the fair check of the DR set).
        Also returns the counts behind each share and the median squared Mahalanobis distance
        relative to the radius.
        """
        out = {}
        with _small_blas():
            for q, hp in heldout.items():
                out[q] = self._coverage_one(q, hp, progress)
        return out

    def _coverage_one(self, q: str, hp: Panel, progress) -> dict:
        tp = self._quantity(q)
        if hp.n_regions != tp.n_regions or hp.slot_minutes != tp.slot_minutes:
            raise DataError(f"held-out {q} panel has a different shape from the training panel")
        resid = (hp.values - self.forecasters[q].predict(hp.day_type)).reshape(-1, hp.n_regions)
        in_r = n_r = in_m = in_m2 = n_m = 0
        ratios = []
        for tau in ("weekday", "weekend"):
            if tau not in set(tp.day_type) or tau not in set(hp.day_type):
                continue
            for s in range(self.n_slots):
                starts = self.window_index(hp.days, hp.day_type, tau, s, hp.n_days)
                if len(starts) == 0:
                    continue
                r, m = self.residual_sets(q, tau, s)
                H = self._windows(resid, starts)
                d2 = r.mahalanobis2(H)
                in_r += int((d2 <= r.radius).sum())
                n_r += len(H)
                ratios.append(np.median(d2) / r.radius)
                d2m = float(m.mahalanobis2(H.mean(axis=0)))
                in_m += d2m <= m.radius
                in_m2 += d2m <= m.radius * (1 + m.n_samples / len(H))
                n_m += 1
                if progress is not None:
                    progress()
        if n_r == 0:
            raise DataError(f"no held-out {q} window matches a training day type; check the periods")
        return {"robust": in_r / n_r, "robust_windows": n_r, "dr": in_m / n_m, "dr_two_sample": in_m2 / n_m,
                "dr_cells": n_m,
                "median_d2_over_radius": float(np.median(ratios))}

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> Path:
        """Write the bundle (``estimates.npz``): config, regions, training panels; sets are rebuilt
        identically on load (seeded per window)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {f"region.{k}": v for k, v in self.regions.to_arrays().items()}
        for q, p in self.train.items():
            arrays[f"panel.{q}"] = p.values
        first = next(iter(self.train.values()))
        arrays["days"] = first.days.values.astype("datetime64[ns]")
        arrays["day_type"] = first.day_type.astype(str)
        arrays["config"] = np.array(json.dumps(self.config.to_dict()))
        arrays["quantities"] = np.array(self.quantities)
        if self.trip_model is not None:
            arrays.update({f"trip.{k}": v for k, v in self.trip_model.to_arrays().items()})
        path = folder / BUNDLE_FILE
        np.savez_compressed(path, **arrays)
        return path

    @classmethod
    def load(cls, folder: str | Path) -> "Estimates":
        """Read a bundle written by :meth:`save` and refit (deterministic)."""
        path = Path(folder)
        path = path / BUNDLE_FILE if path.is_dir() else path
        if not path.is_file():
            raise DataError(f"no estimates bundle at {path}; run `drbalance estimate ... --out DIR` first")
        with np.load(path, allow_pickle=False) as z:
            config = EstimateConfig(**json.loads(str(z["config"])))
            regions = RegionMap.from_arrays({k[len("region."):]: z[k] for k in z.files if k.startswith("region.")})
            days = pd.DatetimeIndex(z["days"])
            types = z["day_type"].astype(object)
            panels = {str(q): Panel(z[f"panel.{q}"], days, config.slot_minutes, regions.region_ids, str(q), types)
                      for q in z["quantities"]}
            trip = {k[len("trip."):]: z[k] for k in z.files if k.startswith("trip.")}
        est = cls.fit(panels, regions, config)
        if trip:
            est.trip_model = TripModel.from_arrays(trip)
        return est
