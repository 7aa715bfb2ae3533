"""Estimates (windows, forecasts, persistence) and the estimate/demo CLI end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from data_pipeline.estimates import EstimateConfig, Estimates
from data_pipeline.forecast import HistoricalMeanForecaster, PoissonGLMForecaster
from data_pipeline.panels import Panel, day_types, trip_panels
from data_pipeline.readers import read_tlc_trips
from data_pipeline.regions import RegionMap
from drbalance import datasets
from drbalance.cli import main
from drbalance.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def jan_feb():
    zones = datasets.load_nyc_zones()
    ing = read_tlc_trips(datasets.nyc_green_trip_files(("2021-01", "2021-02")), zones,
                         period=("2021-01-01", "2021-02-28"))
    base = RegionMap.from_zones(zones)
    w = np.bincount(base.region_of(ing.frame.pickup_zone), minlength=base.n).astype(float)
    regions = base.coarsen(6, w, random_state=0)
    panels = trip_panels(ing.frame, regions, "2021-01-01", "2021-02-28", 60)
    return regions, panels


def test_sets_are_centred_on_forecast_and_cross_midnight(jan_feb):
    regions, panels = jan_feb
    train = {q: p.select("2021-01-01", "2021-02-14") for q, p in panels.items()}
    est = Estimates.fit(train, regions, EstimateConfig(slot_minutes=60, horizon=3, n_bootstrap=50))
    robust, dr = est.sets_for("demand", "2021-02-16", 8)  # a Tuesday, 08:00-11:00
    assert robust.dim == 3 * regions.n == est.dim
    hm = HistoricalMeanForecaster().fit(train["demand"])
    # historical mean residuals average to zero: the centre is the weekday mean of slots 8..10
    assert np.allclose(robust.mean, hm.mean_["weekday"][8:11].ravel())
    assert np.allclose(dr.mean, robust.mean) and dr.radius < robust.radius
    # 22:00 Friday window crosses into Saturday: slots 22, 23 weekday mean, then slot 0 weekend mean
    f = est.forecast_window("demand", "2021-02-19", 22)
    assert np.allclose(f, np.vstack([hm.mean_["weekday"][22:24], hm.mean_["weekend"][0:1]]))
    # training windows that cross midnight come from consecutive days of the series
    starts = est.window_index(train["demand"].days, train["demand"].day_type, "weekday", 23, train["demand"].n_days)
    assert (starts + 3 <= train["demand"].n_days * 24).all()


def test_no_lookahead_in_forecasts(jan_feb):
    regions, panels = jan_feb
    a = Estimates.fit({q: p.select("2021-01-01", "2021-01-31") for q, p in panels.items()}, regions,
                      EstimateConfig(slot_minutes=60, n_bootstrap=50))
    # February changes (demand + 1000 from day 40) must not move estimates trained on January
    changed = {q: Panel(p.values + 1000.0 * (q == "demand") * (np.arange(p.n_days)[:, None, None] >= 40), p.days,
                        p.slot_minutes, p.region_ids, q, p.day_type) for q, p in panels.items()}
    b = Estimates.fit({q: p.select("2021-01-01", "2021-01-31") for q, p in changed.items()}, regions,
                      EstimateConfig(slot_minutes=60, n_bootstrap=50))
    assert np.array_equal(a.forecast_window("demand", "2021-02-10", 9), b.forecast_window("demand", "2021-02-10", 9))
    assert a.sets_for("demand", "2021-02-10", 9)[0].radius == b.sets_for("demand", "2021-02-10", 9)[0].radius


def test_save_load_roundtrip(jan_feb, tmp_path):
    regions, panels = jan_feb
    train = {q: p.select("2021-01-01", "2021-02-14") for q, p in panels.items()}
    est = Estimates.fit(train, regions, EstimateConfig(slot_minutes=60, n_bootstrap=60, robust_radius="conformal"))
    r1, m1 = est.sets_for("supply", "2021-02-20", 13)
    est.save(tmp_path)
    back = Estimates.load(tmp_path)
    r2, m2 = back.sets_for("supply", "2021-02-20", 13)
    assert back.config == est.config and back.regions.n == regions.n
    for a, b in ((r1, r2), (m1, m2)):
        assert np.array_equal(a.mean, b.mean) and np.array_equal(a.factor, b.factor) and a.radius == b.radius
    with pytest.raises(DataError, match="no estimates bundle"):
        Estimates.load(tmp_path / "missing")


def test_estimate_errors(jan_feb):
    regions, panels = jan_feb
    one_day = {q: p.select("2021-01-04", "2021-01-04") for q, p in panels.items()}
    with pytest.raises(DataError, match="at least 2 days"):
        Estimates.fit(one_day, regions, EstimateConfig(slot_minutes=60))
    est = Estimates.fit({q: p.select("2021-01-04", "2021-01-06") for q, p in panels.items()}, regions,
                        EstimateConfig(slot_minutes=60, n_bootstrap=20))
    with pytest.raises(DataError, match="weekend"):
        est.sets_for("demand", "2021-01-09", 3)  # no weekend day in training
    with pytest.raises(DataError, match="no estimates for"):
        est.residual_sets("charging", "weekday", 3)
    with pytest.raises(ConfigError):
        EstimateConfig(slot_minutes=15, horizon=0)
    with pytest.raises(ConfigError):
        EstimateConfig(slot_minutes=60, forecaster="crystal_ball")


def test_poisson_glm_forecaster_tracks_daily_profile(jan_feb):
    _, panels = jan_feb
    p = panels["demand"]
    glm = PoissonGLMForecaster(harmonics=6).fit(p)
    hm = HistoricalMeanForecaster().fit(p)
    pred = glm.predict(np.array(["weekday", "weekend"]))
    assert pred.shape == (2, 24, p.n_regions) and (pred >= 0).all()
    # Poisson GLM with an intercept reproduces each region's total per day type (score equations)
    wk = p.day_type == "weekday"
    assert np.allclose(pred[0].sum(0) * wk.sum() + pred[1].sum(0) * (~wk).sum(), p.values.sum((0, 1)), rtol=1e-4)
    # and follows the historical mean profile closely on the busiest region
    r = p.values.sum((0, 1)).argmax()
    assert np.corrcoef(pred[0][:, r], hm.mean_["weekday"][:, r])[0, 1] > 0.95


def test_cli_estimate_end_to_end(tmp_path):
    out, js = tmp_path / "est", tmp_path / "est.json"
    files = [str(p) for p in datasets.nyc_green_trip_files()]
    rc = main(["estimate", *files, "--train", "2021-01-01:2021-02-28", "--heldout", "2021-03-01:2021-03-31",
               "--slot-minutes", "60", "--horizon", "2", "--regions", "8", "--bootstrap", "50",
               "--out", str(out), "--json", str(js)])
    assert rc == 0
    s = json.loads(js.read_text())
    for key in ("rows_read", "rows_accepted", "rows_rejected", "rejected_by_reason", "n_regions", "n_days_train",
                "n_days_heldout", "coverage_robust", "coverage_dr", "seconds"):
        assert key in s, key
    assert s["rows_read"] == 224_917 and s["rows_accepted"] + s["rows_rejected"] == s["rows_read"]
    assert sum(s["rejected_by_reason"].values()) == s["rows_rejected"]
    assert s["n_regions"] == 8 and s["n_days_train"] == 59 and s["n_days_heldout"] == 31
    assert 0 <= s["coverage_robust"] <= 1 and 0 <= s["coverage_dr"] <= 1
    assert s["trips_in_panels"]["demand"] == s["rows_accepted"]
    for f in ("estimates.npz", "regions.csv", "rejects.csv", "rejected_rows.parquet", "sets.parquet",
              "config.json", "summary.json"):
        assert (out / f).is_file(), f
    rej = pd.read_parquet(out / "rejected_rows.parquet")
    assert len(rej) == s["rows_rejected"]
    members = pd.read_csv(out / "regions.csv")
    assert members.region.nunique() == 8 and len(members) == 263
    assert json.loads((out / "config.json").read_text())["horizon"] == 2
    back = Estimates.load(out)
    assert back.regions.n == 8


def test_cli_errors_are_clean(tmp_path, capsys):
    f = str(datasets.nyc_green_trip_files(("2021-01",))[0])
    rc = main(["estimate", f, "--zones", str(tmp_path / "nozones.csv"), "--train", "2021-01-01:2021-01-31",
               "--out", str(tmp_path / "o")])
    assert rc == 1 and "zone lookup" in capsys.readouterr().err
    rc = main(["estimate", f, "--train", "2021-01-31:2021-01-01", "--out", str(tmp_path / "o")])
    assert rc == 1 and "before start" in capsys.readouterr().err
    rc = main(["estimate", f, "--train", "2021-01-01:2021-01-31", "--slot-minutes", "7", "--out", str(tmp_path / "o")])
    assert rc == 1 and "slot length" in capsys.readouterr().err


def test_demo_runs_on_bundled_data(tmp_path, capsys):
    js = tmp_path / "demo.json"
    rc = main(["demo", "--slot-minutes", "60", "--horizon", "2", "--regions", "6", "--bootstrap", "30",
               "--days", "2021-03-02", "--fleet", "100", "--hours", "3", "--policies", "noop,dr",
               "--out", str(tmp_path / "d"), "--json", str(js)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "Reject report" in text and "conformal" in text and "Δ vs noop" in text and "report.html" in text
    s = json.loads(js.read_text())
    assert s["n_days_heldout"] == 31 and s["rows_read"] == 224_917


@pytest.mark.slow
def test_full_resolution_coverage_figures(tmp_path):
    """The figures quoted in docs/estimates.md: 15-min slots, K=4, 20 regions, Jan-Feb -> March."""
    js = tmp_path / "e.json"
    files = [str(p) for p in datasets.nyc_green_trip_files()]
    for method, lo, hi in (("chi2", 0.3, 0.6), ("conformal", 0.82, 0.95)):
        rc = main(["estimate", *files, "--train", "2021-01-01:2021-02-28", "--heldout", "2021-03-01:2021-03-31",
                   "--regions", "20", "--robust-radius", method, "--out", str(tmp_path / method), "--json", str(js)])
        assert rc == 0
        s = json.loads(js.read_text())
        assert lo <= s["coverage_robust"] <= hi, (method, s["coverage_robust"])
