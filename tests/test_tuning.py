"""``drbalance tune`` (issue 16): model v2's weights chosen on the training period only.

One small tuning run on the bundled February 2021 green-taxi file (8 regions, the first 3 hours of
each day, horizon 3, 20 EVs, one validation week) is shared by the tests: the validation days lie in
the training period and the estimates of their replays never see one of them (checked on the
estimates the replays really use, and by scrambling the validation days' trips), the chosen λ is the
argmin of the sweep's mean realised cost, ``config.toml`` round-trips and ``drbalance evaluate
--config`` runs with the chosen weights, bad options exit 1 with one line before any trip is read.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest

import drbalance.tuning as tuning
from data_pipeline.readers import read_tlc_trips
from drbalance import datasets
from drbalance.cli import main
from drbalance.errors import ConfigError
from drbalance.study import Study
from drbalance.study_config import StudyConfig
from drbalance.tuning import (TuneSettings, choose, fit_period, run_sweep, tuned_config, validation_config,
                              validation_days)

FEB = datasets.nyc_green_trip_files(("2021-02",))
TRAIN = "2021-02-01:2021-02-21"
SMALL = ["--regions=8", "--hours=3", "--horizon=3", "--bootstrap=20", "--fleet=20", "--validation-weeks=1"]


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(map(str, argv)))
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def feb():
    zones = datasets.load_nyc_zones()
    return read_tlc_trips(FEB, zones, period=("2021-02-01", "2021-02-28")).frame, zones


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """``drbalance tune`` on 2021-02-01..21: validation 2021-02-15..19 (Presidents' Day a weekday here)."""
    out = tmp_path_factory.mktemp("tune")
    rc, text, err = cli("tune", *FEB, f"--train={TRAIN}", *SMALL, "--lost-request-km=5,40",
                        f"--out={out / 'run'}", f"--json={out / 'tuned.json'}")
    assert rc == 0, err
    return out, text


def test_validation_days_are_the_last_weeks_weekdays():
    days = validation_days(("2021-01-01", "2021-02-28"), 2)
    assert days == ("2021-02-15", "2021-02-16", "2021-02-17", "2021-02-18", "2021-02-19", "2021-02-22",
                    "2021-02-23", "2021-02-24", "2021-02-25", "2021-02-26")
    assert "2021-02-15" not in validation_days(("2021-01-01", "2021-02-28"), 2, holidays="us")   # Presidents' Day
    assert fit_period(("2021-01-01", "2021-02-28"), days) == ("2021-01-01", "2021-02-14")
    with pytest.raises(ConfigError, match="too short"):
        validation_days(("2021-02-21", "2021-02-28"), 1)
    cfg = validation_config(StudyConfig().with_values({"evaluation.train": ["2021-01-01", "2021-02-28"]}),
                            TuneSettings())
    assert cfg.evaluation.train == ("2021-01-01", "2021-02-14") and cfg.evaluation.days == days
    with pytest.raises(ConfigError, match="shortfall"):
        validation_config(StudyConfig().with_values({"balancing.objective": "ratio", "balancing.mode": "dr"}),
                          TuneSettings())


def test_no_look_ahead(feb, monkeypatch):
    """The replays' estimates are fitted on days strictly before the first validation day; scrambling
    the validation days' trips (the last week of the training period) changes no estimate."""
    trips, zones = feb
    config = StudyConfig(horizon=3).with_values({"evaluation.train": TRAIN.split(":"), "evaluation.regions": 8,
                                                 "evaluation.hours": 1, "estimate.n_bootstrap": 20,
                                                 "sim.fleet_size": 10})
    settings = TuneSettings(modes=("dr",), lost_request_km=(20.0,), validation_weeks=1)
    seen = []
    real = tuning.validation_task

    def spy(study, day, *rest):
        est = study.estimates_for(day)
        seen.append((day, {q: p.days.max() for q, p in est.train.items()}, study.info["train_days"]))
        return real(study, day, *rest)

    monkeypatch.setattr(tuning, "validation_task", spy)
    result = run_sweep(trips, zones, config, settings)
    v0 = pd.Timestamp(min(result.validation_days))
    assert result.validation_days == ("2021-02-15", "2021-02-16", "2021-02-17", "2021-02-18", "2021-02-19")
    assert all(pd.Timestamp(TRAIN.split(":")[0]) <= pd.Timestamp(d) <= pd.Timestamp(TRAIN.split(":")[1])
               for d in result.validation_days)
    assert [d for d, _, _ in seen] == list(result.validation_days)
    assert all(last < v0 for _, lasts, _ in seen for last in lasts.values())
    assert {n for _, _, n in seen} == {14}     # 2021-02-01..14
    # the leak test: the validation week's trips scrambled (zones permuted, times shifted) -> same estimates
    vcfg = validation_config(config, settings)
    rng = np.random.default_rng(0)
    late = trips["pickup_time"] >= v0
    scrambled = trips.copy()
    scrambled.loc[late, "pickup_zone"] = rng.permutation(scrambled.loc[late, "pickup_zone"].to_numpy())
    scrambled.loc[late, "pickup_time"] += pd.Timedelta(minutes=37)
    a, b = Study.from_trips(trips, zones, vcfg), Study.from_trips(scrambled, zones, vcfg)
    for q in a.estimates.train:
        np.testing.assert_array_equal(a.estimates.train[q].values, b.estimates.train[q].values)
        np.testing.assert_array_equal(a.estimates.forecast_window(q, "2021-02-16", 4),
                                      b.estimates.forecast_window(q, "2021-02-16", 4))
    np.testing.assert_array_equal(a.regions.distance_km, b.regions.distance_km)
    np.testing.assert_array_equal(a.pickups, b.pickups)


def test_chosen_lambda_is_the_argmin_of_the_sweeps_mean_cost(tuned):
    out, text = tuned
    sweep = pd.read_csv(out / "run" / "sweep.csv")
    payload = json.loads((out / "tuned.json").read_text())
    assert payload == json.loads((out / "run" / "tuned.json").read_text())
    assert set(sweep["mode"]) == {"nominal", "saa", "dr"} and sorted(set(sweep["lost_request_km"])) == [5, 40]
    assert len(sweep) == 3 * 2 * 5 and {"served", "unserved", "balancing_km", "cost"} <= set(sweep.columns)
    np.testing.assert_allclose(sweep["cost"], sweep["balancing_km"] + 20 * sweep["unserved"])
    assert payload["validation_days"] == ["2021-02-15", "2021-02-16", "2021-02-17", "2021-02-18", "2021-02-19"]
    assert payload["value_km"] == 20 and payload["fit_period"] == ["2021-02-01", "2021-02-14"]
    for mode, g in sweep.groupby("mode"):
        means = g.groupby("lost_request_km")["cost"].mean()
        best = means[means <= means.min() + 1e-9].index.min()      # ties: the smaller lambda
        c = payload["chosen"][mode]
        assert c["lost_request_km"] == best and c["charge_queue_km"] == 2.0
        assert c["cost"] == pytest.approx(means[best])
        rows = g[g["lost_request_km"] == best]
        assert c["served_rate"] == pytest.approx(rows["served"].sum() / rows["requests"].sum())
        assert c["balancing_km"] == pytest.approx(rows["balancing_km"].mean())
    assert "chose" in text and "cost km/day" in text


def test_ties_go_to_the_smaller_lambda_then_charging_weight():
    rows = [{"mode": "dr", "lost_request_km": lam, "charge_queue_km": q, "day": d, "seed": 0, "requests": 10,
             "served": 9, "unserved": 1, "balancing_km": km, "cost": km + 20, "fallbacks": 0}
            for lam, q, km in ((40.0, 2.0, 5.0), (10.0, 4.0, 5.0), (10.0, 1.0, 5.0), (5.0, 2.0, 6.0))
            for d in ("2021-02-15", "2021-02-16")]
    c = choose(pd.DataFrame(rows))["dr"]
    assert (c["lost_request_km"], c["charge_queue_km"], c["cost"]) == (10.0, 1.0, 25.0) and not c["at_grid_edge"]
    assert choose(pd.DataFrame(rows).assign(cost=lambda f: -f["lost_request_km"]))["dr"]["at_grid_edge"]


def test_config_toml_round_trips_and_evaluate_runs_the_tuned_weights(tuned, tmp_path):
    out, _ = tuned
    payload = json.loads((out / "tuned.json").read_text())
    cfg = StudyConfig.from_toml(out / "run" / "config.toml")
    assert StudyConfig.from_toml(cfg.to_toml()) == cfg
    assert cfg.balancing.mode == "dr" and payload["config_mode"] == "dr"
    assert cfg.balancing.lost_request_km == payload["chosen"]["dr"]["lost_request_km"]
    assert cfg.balancing.charge_queue_km == payload["chosen"]["dr"]["charge_queue_km"]
    assert cfg.evaluation.train == tuple(TRAIN.split(":"))          # the whole training period again
    assert (cfg.evaluation.regions, cfg.evaluation.hours, cfg.horizon, cfg.sim.fleet_size) == (8, 3.0, 3, 20)
    assert cfg.evaluation.weights == {m: {"lost_request_km": c["lost_request_km"], "charge_queue_km": c["charge_queue_km"]}
                                      for m, c in payload["chosen"].items()}
    base = StudyConfig.from_toml(out / "run" / "validation.toml").with_values(
        {"evaluation.train": TRAIN.split(":"), "evaluation.days": []})
    assert cfg == tuned_config(base, payload["chosen"])
    assert tuned_config(base, payload["chosen"], "nominal").balancing.lost_request_km == \
        payload["chosen"]["nominal"]["lost_request_km"]
    rc, _, err = cli("evaluate", *FEB, f"--config={out / 'run' / 'config.toml'}", "--days=2021-02-22",
                     "--policies=nominal,dr", f"--json={tmp_path / 'ev.json'}")
    assert rc == 0, err
    ev = json.loads((tmp_path / "ev.json").read_text())
    assert ev["config"]["balancing"]["lost_request_km"] == payload["chosen"]["dr"]["lost_request_km"]
    assert {m: w["lost_request_km"] for m, w in ev["config"]["evaluation"]["weights"].items()} == \
        {m: c["lost_request_km"] for m, c in payload["chosen"].items()}
    assert ev["policies"]["dr"]["runs"] == ev["policies"]["nominal"]["runs"] == 1


@pytest.mark.parametrize("bad, words", [
    ("--modes=bogus", "--modes"), ("--modes=dr,dr", "--modes"), ("--modes=", "--modes"),
    ("--lost-request-km=a,5", "--lost-request-km"), ("--lost-request-km=5,5", "--lost-request-km"),
    ("--lost-request-km=-1", "--lost-request-km"), ("--lost-request-km=nan", "--lost-request-km"),
    ("--lost-request-km=5,,10", "--lost-request-km"), ("--charge-queue-km=inf", "--charge-queue-km"),
    ("--lost-request-value-km=-3", "--lost-request-value-km"), ("--lost-request-value-km=1,2", "--lost-request-value-km"),
    ("--validation-weeks=0", "--validation-weeks"), ("--validation-weeks=1.5", "--validation-weeks"),
    ("--validation-weeks=3", "too short"), ("--train=2021-02-01:2021-02-30", "--train"),
    ("--fleet=0", "--fleet"), ("--seeds=0,0", "--seeds"), ("--regions=-2", "regions"),
])
def test_bad_options_exit_1_with_one_line_before_reading(bad, words, tmp_path):
    """Options are checked before any trip is read: the trip file given does not even exist."""
    rc, _, err = cli("tune", tmp_path / "missing.parquet", f"--train={TRAIN}", "--fleet=10", bad,
                     f"--out={tmp_path / 'out'}")
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1, err
    assert lines[0].startswith("drbalance tune: ConfigError: ") and words in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def test_ratio_config_and_missing_train_are_refused(tmp_path):
    toml = tmp_path / "ratio.toml"
    StudyConfig().with_values({"balancing.objective": "ratio"}).to_toml(toml)
    for argv, words in (([f"--config={toml}", f"--train={TRAIN}"], "shortfall"), ([], "--train")):
        rc, _, err = cli("tune", tmp_path / "missing.parquet", *argv)
        assert rc == 1 and len(err.strip().splitlines()) == 1 and words in err, err
