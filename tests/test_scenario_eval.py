"""``drbalance evaluate-scenario`` on the peers' benchmark instances: CLI contract, errors, seeding,
and the rebalancing cost formula.

The ``rome`` and ``eamod`` fixtures (tests/conftest.py) are the vendored cuts in the default suite and
the full shared files in the slow run."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from data_pipeline.scenarios import read_scenario
from drbalance.cli import main
from drbalance.scenario_eval import (ScenarioEvalConfig, default_reach_km, scenario_study_config, evaluate_scenario, rebalancing_minutes,
                                     weekday_dates)
from drbalance.sim.log import EVENT_CODES
from tests.conftest import ROME_FIXTURE

CONTRACT = ("balancing_km", "u_m_mean", "u_c_mean", "served", "unserved", "step_s_median", "fallbacks",
            "served_rate", "rebalancing_cost")
FAST = ["--history-days", "6", "--window-minutes", "60", "--bootstrap", "40"]


def _cli(tmp_path, scenario, *extra, name="out.json"):
    out = tmp_path / name
    rc = main(["evaluate-scenario", str(scenario), "--days", "2", "--seed", "3", "--json", str(out), *FAST, *extra])
    return rc, out


def test_cli_contract_on_rome(tmp_path, rome):
    rc, out = _cli(tmp_path, rome, "--policies", "noop,greedy,nominal,demand_robust,dr")
    assert rc == 0
    payload = json.loads(out.read_text())
    pol = payload["policies"]
    assert list(pol) == ["noop", "greedy", "nominal", "demand_robust", "dr"]
    s = read_scenario(rome)
    for name, p in pol.items():
        for k in CONTRACT:
            assert k in p, (name, k)
        assert p["u_c_mean"] is None  # RL4AMOD has no chargers
        assert p["served"] + p["unserved"] > 0
        assert p["served_rate"] == pytest.approx(p["served"] / (p["served"] + p["unserved"]))
        # cost = scenario rebalancing minutes x beta; the km are those minutes at the map's speed (20 km/h):
        # hour-dependent times make it differ from km/speed, but not by much
        assert p["rebalancing_cost"] == pytest.approx(p["rebalancing_minutes"] * s.params["beta"])
        if p["balancing_km"] > 0:
            assert p["rebalancing_minutes"] == pytest.approx(p["balancing_km"] / 20 * 60, rel=0.35)
    assert pol["noop"]["balancing_km"] == 0 and pol["noop"]["rebalancing_cost"] == 0
    assert pol["greedy"]["balancing_km"] > 0
    assert pol["dr"]["step_s_median"] is not None and pol["noop"]["step_s_median"] is None
    # every policy replays the same requests
    assert len({p["served"] + p["unserved"] for p in pol.values()}) == 1
    x = payload["extra"]
    assert x["fleet"] == int(s.fleet_by_hour.loc[s.window[0] // 60]) and x["demand_scale"] == s.params["demand_ratio"]
    assert x["replay_minutes"] == 60 and len(x["days"]) == 2 and x["days"][0] > x["history_days"][1]


def test_same_seed_same_results_other_seed_differs(tmp_path, rome):
    keys = ("served", "unserved", "balancing_km", "rebalancing_cost", "u_m_mean")
    _, a = _cli(tmp_path, rome, "--policies", "greedy,dr", name="a.json")
    _, b = _cli(tmp_path, rome, "--policies", "greedy,dr", name="b.json")
    pa, pb = (json.loads(p.read_text())["policies"] for p in (a, b))
    for name in pa:
        assert {k: pa[name][k] for k in keys} == {k: pb[name][k] for k in keys}
    out = tmp_path / "c.json"
    assert main(["evaluate-scenario", str(rome), "--days", "2", "--seed", "4", "--json", str(out), *FAST,
                 "--policies", "greedy,dr"]) == 0
    pc = json.loads(out.read_text())["policies"]
    assert pc["greedy"]["served"] + pc["greedy"]["unserved"] != pa["greedy"]["served"] + pa["greedy"]["unserved"]


def test_eamod_uses_scenario_chargers_and_step_cost(eamod):
    s = read_scenario(eamod)
    study = scenario_study_config().with_values({"evaluation.policies": ["noop", "greedy"], "seed": 1,
                                                 "estimate.n_bootstrap": 30})
    cfg = ScenarioEvalConfig(study=study, days=1, history_days=4, window_minutes=60)
    ev = evaluate_scenario(s, cfg)
    assert ev.extra["plugs_total"] == int(s.chargers.sum()) and ev.extra["chargers"] == "scenario"
    assert ev.extra["fleet"] == int(s.fleet_by_hour.iloc[0]) and ev.extra["beta2"] == 1.0
    assert ev.extra["cost_per_minute"] == pytest.approx(s.energy["operational_cost_per_step"] / 15)
    g = ev.runs.set_index("policy").loc["greedy"]
    assert g["balancing_km"] > 0 and np.isfinite(g["u_c_mean"])
    # eAMoD rebalancing times are whole 15-min steps, so the cost is a whole number of step costs
    steps = g["rebalancing_cost"] / s.energy["operational_cost_per_step"]
    assert steps == pytest.approx(round(steps)) and steps > 0


def test_rebalancing_minutes_use_the_hour_of_departure():
    class Fake:  # two hours with different rebalancing times
        reb_hours = np.array([19, 20])
        reb_time_min = np.array([[[0, 3], [4, 0]], [[0, 7], [9, 0]]], float)

        def reb_time_at(self, minute):
            idx = np.searchsorted(self.reb_hours, minute // 60, side="right") - 1
            return self.reb_time_min[max(idx, 0)]

    ev = pd.DataFrame({"event": [EVENT_CODES["move"], EVENT_CODES["move"], EVENT_CODES["charge_move"],
                                 EVENT_CODES["refused"], EVENT_CODES["assign"], EVENT_CODES["charge_move"]],
                       "minute": [0, 61, 59, 10, 5, 3], "origin": [0, 1, 1, 0, 0, 1], "region": [1, 0, 0, 1, 1, 1]})
    Fake.reb_time_min[:, [0, 1], [0, 1]] = 5.0  # diagonal times (as in the files) must not be charged
    vac, chg = rebalancing_minutes(ev, Fake(), 19 * 60)
    assert vac == 3 + 9 and chg == 4  # refused moves, pick-ups and in-region charge moves cost nothing


def test_reach_and_dates():
    W = np.array([[0, 2, 9], [2, 0, 8], [9, 8, 0]], float)
    r = default_reach_km(W)
    assert r >= 8 and (W <= r).sum(axis=1).min() >= 2  # every region reaches a neighbour
    d = weekday_dates("2030-01-11", 3)  # a Friday
    assert [x.day_name() for x in d] == ["Friday", "Monday", "Tuesday"]


def test_malformed_scenario_names_missing_key_through_cli(tmp_path, capsys):
    rome = ROME_FIXTURE
    with gzip.open(rome, "rt") as fh:
        data = json.load(fh)
    del data["rebTime"]
    bad = tmp_path / "scenario_rome.json.gz"
    with gzip.open(bad, "wt") as fh:
        json.dump(data, fh)
    rc = main(["evaluate-scenario", str(bad), "--days", "1", "--json", str(tmp_path / "x.json")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "DataError" in err and "'rebTime'" in err
    assert not (tmp_path / "x.json").exists()
    # truncated file
    raw = rome.read_bytes()
    (tmp_path / "scenario_trunc.json.gz").write_bytes(raw[: len(raw) // 2])
    rc = main(["evaluate-scenario", str(tmp_path / "scenario_trunc.json.gz"), "--days", "1"])
    assert rc == 1 and "DataError" in capsys.readouterr().err
    # a scenario without its calibrated beta cannot price rebalancing: named, not guessed
    rc = main(["evaluate-scenario", str(bad.with_name("scenario_x.json.gz")), "--days", "1"])
    assert rc == 1 and "not found" in capsys.readouterr().err


def test_missing_beta_is_a_data_error(tmp_path, capsys):
    data = ROME_FIXTURE.read_bytes()
    target = tmp_path / "scenario_rome.json.gz"  # no calibrated_parameters.json beside it
    target.write_bytes(data)
    rc = main(["evaluate-scenario", str(target), "--days", "1", *FAST, "--policies", "noop"])
    assert rc == 1 and "'beta'" in capsys.readouterr().err


def test_scenario_config_toml_reproduces_the_run(eamod, tmp_path):
    """evaluate-scenario writes its resolved configuration (study tables + [scenario]) to config.toml;
    re-running it gives the same figures, and options given on the command line override it."""
    ny5 = eamod
    out = tmp_path / "run"
    args = ["--days", "1", "--policies", "noop,greedy", "--history-days", "4", "--window-minutes", "60",
            "--bootstrap", "30", "--seed", "2"]
    assert main(["evaluate-scenario", str(ny5), *args, "--out", str(out), "--json", str(tmp_path / "a.json")]) == 0
    cfg = ScenarioEvalConfig.from_toml(out / "config.toml")
    assert (cfg.days, cfg.history_days, cfg.window_minutes, cfg.seed) == (1, 4, 60, 2)
    assert cfg.study.sim.match_radius_km == 0.0 and cfg.fleet_from_scenario
    assert main(["evaluate-scenario", str(ny5), "--config", str(out / "config.toml"),
                 "--json", str(tmp_path / "b.json")]) == 0
    a, b = (json.loads((tmp_path / f).read_text())["policies"] for f in ("a.json", "b.json"))
    for name in ("noop", "greedy"):
        for key in ("served", "unserved", "balancing_km", "rebalancing_cost"):
            assert a[name][key] == b[name][key], (name, key)
    assert main(["evaluate-scenario", str(ny5), "--config", str(out / "config.toml"), "--fleet", "50",
                 "--json", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["extra"]["fleet"] == 50
