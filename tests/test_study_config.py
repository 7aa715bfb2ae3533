"""The configuration tree: validation at construction, TOML round trips, and re-running a results
folder's config.toml."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

import drbalance
from data_pipeline.estimates import EstimateConfig
from drbalance import datasets
from drbalance.cli import main
from drbalance.config import BalancingConfig, ControllerConfig
from drbalance.errors import ConfigError
from drbalance.sim import ChargingConfig, SimConfig
from drbalance.study_config import EvaluationSettings, StudyConfig

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "study.toml"


@pytest.mark.parametrize("cls, kwargs, field", [
    (BalancingConfig, {"reach_km": -1.0}, "reach_km"),
    (BalancingConfig, {"low_battery_reach_km": 20.0}, "low_battery_reach_km"),
    (BalancingConfig, {"mode": "robustish"}, "mode"),
    (BalancingConfig, {"slot_minutes": 7}, "slot_minutes"),
    (BalancingConfig, {"horizon": 0}, "horizon"),
    (BalancingConfig, {"beta1": "a lot"}, "beta1"),
    (ControllerConfig, {"step_budget_s": 0.0}, "step_budget_s"),
    (ControllerConfig, {"radius_scale": float("nan")}, "radius_scale"),
    (SimConfig, {"fleet_size": 0}, "fleet_size"),
    (SimConfig, {"slot_minutes": 61}, "slot_minutes"),
    (SimConfig, {"speed_kmh": -5.0}, "speed_kmh"),
    (EstimateConfig, {"epsilon": 1.5}, "epsilon"),
    (EstimateConfig, {"n_bootstrap": 0}, "n_bootstrap"),
    (EstimateConfig, {"forecaster": "prophet"}, "forecaster"),
    (EvaluationSettings, {"hours": 30.0}, "evaluation.hours"),
    (EvaluationSettings, {"days": ("2021-02-01",)}, "evaluation.days"),
    (EvaluationSettings, {"policies": ("noop", "magic")}, "evaluation.policies"),
    (EvaluationSettings, {"train": ("2021-02-28", "2021-01-01")}, "evaluation.train"),
    (StudyConfig, {"slot_minutes": 7}, "slot_minutes"),
    (StudyConfig, {"seed": -1}, "seed"),
])
def test_bad_value_raises_config_error_naming_the_field(cls, kwargs, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        cls(**kwargs)


def test_slot_length_has_one_rule():
    """5..60 *and* dividing a day, for every config that holds a slot length."""
    for cls in (BalancingConfig, SimConfig, EstimateConfig, StudyConfig):
        with pytest.raises(ConfigError, match="dividing 1440"):
            cls(slot_minutes=25)  # within 5..60 but does not divide a day
        assert cls(slot_minutes=20).slot_minutes == 20


def test_shared_values_are_pushed_into_the_parts_and_conflicts_refused():
    c = StudyConfig(slot_minutes=30, horizon=2, seed=7)
    assert (c.estimate.slot_minutes, c.balancing.slot_minutes, c.sim.slot_minutes) == (30, 30, 30)
    assert (c.estimate.horizon, c.balancing.horizon) == (2, 2)
    assert (c.estimate.random_state, c.sim.seed) == (7, 7)
    with pytest.raises(ConfigError, match="balancing.slot_minutes = 30 conflicts"):
        StudyConfig(slot_minutes=15, balancing=BalancingConfig(slot_minutes=30))
    assert StudyConfig(slot_minutes=30, balancing=BalancingConfig(slot_minutes=30)).slot_minutes == 30


def test_toml_round_trip_and_errors(tmp_path):
    c = StudyConfig(horizon=3, seed=2, balancing=BalancingConfig(mode="nominal", beta1=2.5, later_reach_km=2.0),
                    sim=SimConfig(fleet_size=321, charging=ChargingConfig(idle_minutes=15)),
                    estimate=EstimateConfig(rank=5, robust_radius="conformal"),
                    evaluation=EvaluationSettings(days=("2021-03-02", "2021-03-03"), policies=("noop", "dr"),
                                                  regions=0, circuity=1.3))
    path = tmp_path / "c.toml"
    c.to_toml(path)
    assert StudyConfig.from_toml(path) == c
    assert StudyConfig.from_toml(c.to_toml()) == c      # TOML text works too
    with pytest.raises(ConfigError, match="unknown key.*'reach'"):
        StudyConfig.from_toml("[balancing]\nreach = 3.0\n")
    with pytest.raises(ConfigError, match="set slot_minutes once at the top level"):
        StudyConfig.from_toml("[sim]\nslot_minutes = 30\n")
    with pytest.raises(ConfigError, match=r"\[balancing\].*beta1"):
        StudyConfig.from_toml("[balancing]\nbeta1 = -1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        StudyConfig.from_toml("[balancing\n")
    with pytest.raises(ConfigError, match="not found"):
        StudyConfig.from_toml(tmp_path / "missing.toml")
    assert c.with_values({"balancing.beta1": 1.0}).balancing.beta1 == 1.0
    with pytest.raises(ConfigError, match="unknown"):
        c.with_values({"balancing.gamma": 1.0})


def test_example_shows_every_field_and_loads_to_the_defaults():
    text = EXAMPLE.read_text()
    loaded = StudyConfig.from_toml(EXAMPLE)
    assert loaded == StudyConfig().with_values({"evaluation.days": ["2021-03-02"]})  # runnable as it is
    tree = StudyConfig().to_dict()
    missing = []
    for section, values in tree.items():
        items = values.items() if isinstance(values, dict) else [(section, values)]
        for key, value in items:
            if isinstance(value, dict):
                missing += [k for k in value if f"\n{k} =" not in text and f"\n# {k} =" not in text]
            elif f"\n{key} =" not in text and f"\n# {key} =" not in text:
                missing.append(f"{section}.{key}")
    assert not missing, f"examples/study.toml does not show {missing}"


def test_public_api_is_importable_lazily():
    import subprocess
    import sys

    code = ("import sys, drbalance; assert 'cvxpy' not in sys.modules; "
            "print(drbalance.Study, drbalance.Simulator, drbalance.Controller, drbalance.evaluate)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "drbalance.study.Study" in out.stdout
    for name in drbalance.__all__:
        assert getattr(drbalance, name) is not None


@pytest.mark.skipif(not datasets.nyc_green_trip_files(("2021-02", "2021-03")), reason="bundled data missing")
def test_results_folder_config_toml_reproduces_the_results(tmp_path):
    files = [str(p) for p in datasets.nyc_green_trip_files(("2021-02", "2021-03"))]
    first = tmp_path / "first"
    rc = main(["evaluate", *files, "--train", "2021-02-01:2021-02-28", "--days", "2021-03-02", "--fleet", "150",
               "--policies", "greedy,dr", "--regions", "8", "--horizon", "3", "--hours", "8", "--bootstrap", "50",
               "--lost-request-km", "15", "--seed", "3", "--out", str(first)])
    assert rc == 0
    cfg = StudyConfig.from_toml(first / "config.toml")
    assert (cfg.seed, cfg.horizon, cfg.balancing.lost_request_km, cfg.sim.fleet_size) == (3, 3, 15.0, 150)
    again = tmp_path / "again"
    assert main(["evaluate", *files, "--config", str(first / "config.toml"), "--out", str(again)]) == 0
    timing = [c for c in pd.read_parquet(first / "runs.parquet").columns if c.endswith("_s") or "seconds" in c
              or c.endswith("_s_median") or c == "vehicle_minutes_per_second"]
    a = pd.read_parquet(first / "runs.parquet").drop(columns=timing)
    b = pd.read_parquet(again / "runs.parquet").drop(columns=timing)
    assert a["balancing_km"].gt(0).any()            # the runs do something
    pd.testing.assert_frame_equal(a, b)
    assert (again / "config.toml").read_text() == (first / "config.toml").read_text()
    # a flag overrides the file's value
    third = tmp_path / "third"
    assert main(["evaluate", *files, "--config", str(first / "config.toml"), "--lost-request-km", "40",
                 "--out", str(third)]) == 0
    assert StudyConfig.from_toml(third / "config.toml").balancing.lost_request_km == 40.0
    c = pd.read_parquet(third / "runs.parquet").drop(columns=timing)
    assert not c.equals(a)


@pytest.mark.skipif(not datasets.nyc_green_trip_files(("2021-02", "2021-03")), reason="bundled data missing")
def test_estimate_writes_config_toml_that_reproduces_it(tmp_path):
    import json

    files = [str(p) for p in datasets.nyc_green_trip_files(("2021-02", "2021-03"))]
    first = tmp_path / "e1"
    assert main(["estimate", *files, "--train", "2021-02-01:2021-02-28", "--heldout", "2021-03-01:2021-03-07",
                 "--regions", "6", "--horizon", "2", "--bootstrap", "30", "--seed", "4", "--out", str(first)]) == 0
    cfg = StudyConfig.from_toml(first / "config.toml")
    assert (cfg.evaluation.regions, cfg.horizon, cfg.estimate.n_bootstrap, cfg.seed) == (6, 2, 30, 4)
    again = tmp_path / "e2"
    assert main(["estimate", *files, "--config", str(first / "config.toml"), "--heldout", "2021-03-01:2021-03-07",
                 "--out", str(again)]) == 0
    a, b = (json.loads((d / "summary.json").read_text()) for d in (first, again))
    for key in ("coverage", "n_regions", "dimension", "circuity", "trips_in_panels", "rows_accepted"):
        assert a[key] == b[key], key
    assert (first / "regions.csv").read_text() == (again / "regions.csv").read_text()


@pytest.mark.skipif(not datasets.nyc_green_trip_files(("2021-02", "2021-03")), reason="bundled data missing")
def test_simulate_writes_config_toml_that_reproduces_it(tmp_path):
    import json

    files = [str(p) for p in datasets.nyc_green_trip_files(("2021-02", "2021-03"))]
    first = tmp_path / "s1"
    assert main(["simulate", *files, "--day", "2021-03-02", "--fleet", "90", "--policy", "greedy", "--regions", "12",
                 "--hours", "10", "--seed", "5", "--patience", "8", "--out", str(first),
                 "--json", str(tmp_path / "s1.json")]) == 0
    cfg = StudyConfig.from_toml(first / "config.toml")
    assert (cfg.sim.fleet_size, cfg.seed, cfg.sim.patience_minutes, cfg.evaluation.regions) == (90, 5, 8, 12)
    assert main(["simulate", *files, "--day", "2021-03-02", "--config", str(first / "config.toml"),
                 "--json", str(tmp_path / "s2.json")]) == 0
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("s1.json", "s2.json"))
    for key in ("requests", "served", "unserved", "balancing_km", "u_m_mean", "u_c_mean", "train", "n_regions"):
        assert a[key] == b[key], key
    assert a["balancing_km"] > 0


def test_per_policy_weights_round_trip_and_reject_unknown_keys(tmp_path):
    """[evaluation.weights.<policy>]: each optimiser at its own tuned weights (drbalance tune -> --tuned)."""
    from drbalance.errors import ConfigError as CE

    ev = EvaluationSettings(weights={"dr": {"lost_request_km": 40}, "nominal": {"lost_request_km": 10.0,
                                                                                 "charge_queue_km": 1}})
    c = StudyConfig(evaluation=ev)
    again = StudyConfig.from_toml(c.to_toml())
    assert again == c and again.evaluation.weights["dr"] == {"lost_request_km": 40.0}
    with pytest.raises(CE, match="unknown"):
        EvaluationSettings(weights={"dr": {"lambda": 3}})
    with pytest.raises(CE, match="optimiser"):
        EvaluationSettings(weights={"greedy": {"lost_request_km": 3}})
    with pytest.raises(CE, match="lost_request_km"):
        EvaluationSettings(weights={"dr": {"lost_request_km": -1}})
    # the CLI reads drbalance tune's tuned.json
    tuned = tmp_path / "tuned.json"
    tuned.write_text('{"chosen": {"dr": {"lost_request_km": 40, "charge_queue_km": 2, "cost": 1}}}')
    from drbalance.commands.evaluate import tuned_weights
    assert tuned_weights(tuned) == {"dr": {"lost_request_km": 40.0, "charge_queue_km": 2.0}}
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CE, match="--tuned"):
        tuned_weights(tmp_path / "bad.json")
