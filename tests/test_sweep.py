"""``drbalance sweep`` (issue 7): grid expansion and hashing, resume without recomputation, identical
seeds -> identical tables, the CLI JSON contract, and one run on a real Dask LocalCluster (1 worker)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from drbalance.cli import main
from drbalance.distributed import expand, load_grid, parse_grid, run_sweep, scenario_key
from drbalance.errors import ConfigError

GRID = """
[base]
day = "2021-03-02"
start_hour = 8
hours = 1
train_days = 3
regions = 10
fleet = 20
plugs_total = 3
seed = 11
idle_minutes = 15
min_range_mi = 30

[fleet_mixes]
MIX = [[0.25, 100], [0.75, 250]]

[grid]
fleet_mix = ["SR", "MIX"]
priority = ["charging", "service"]
"""


@pytest.fixture()
def grid_file(tmp_path) -> Path:
    p = tmp_path / "grid.toml"
    p.write_text(GRID)
    return p


def test_expand_is_stable_and_seeded_per_scenario(grid_file):
    a, b = expand(load_grid(grid_file)), expand(load_grid(grid_file))
    assert len(a) == 4 and [s["key"] for s in a] == [s["key"] for s in b]
    assert [s["varied"] for s in a] == [{"fleet_mix": m, "priority": p} for m in ("SR", "MIX")
                                        for p in ("charging", "service")]
    assert len({s["seed"] for s in a}) == 4                  # derived from grid seed + parameters
    g2 = load_grid(grid_file)
    g2["base"]["seed"] = 12
    assert all(x["seed"] != y["seed"] for x, y in zip(expand(g2), a))   # a new grid seed changes every seed
    g3 = load_grid(grid_file)
    g3["base"]["seed_mode"] = "common"
    assert {s["seed"] for s in expand(g3)} == {11}
    g4 = load_grid(grid_file)
    g4["fleet_mixes"]["MIX"] = [[0.5, 100.0], [0.5, 250.0]]   # redefining a mix changes its scenarios' keys
    k4 = [s["key"] for s in expand(g4)]
    assert k4[:2] == [s["key"] for s in a][:2] and k4[2:] != [s["key"] for s in a][2:]
    assert scenario_key({"a": 1, "b": 2}) == scenario_key({"b": 2, "a": 1})


def test_grid_validation():
    with pytest.raises(ConfigError):
        parse_grid({"grid": {"nope": [1]}})
    with pytest.raises(ConfigError):
        parse_grid({"base": {"fleet_mix": "XX"}})
    with pytest.raises(ConfigError):
        parse_grid({"grid": {"fleet": []}})
    with pytest.raises(ConfigError):
        expand(parse_grid({"grid": {"fleet": [10, 10]}}))     # the same scenario twice
    with pytest.raises(ConfigError):
        parse_grid({"base": {"seed_mode": "random"}})


def test_sweep_resumes_without_recomputation_and_is_deterministic(grid_file, tmp_path):
    out = tmp_path / "run"
    j1 = tmp_path / "first.json"
    assert main(["sweep", "--grid", str(grid_file), "--out", str(out), "--workers", "0", "--json", str(j1)]) == 0
    s1 = json.loads(j1.read_text())
    assert (s1["scenarios"], s1["computed"], s1["skipped"]) == (4, 4, 0) and s1["seconds"] > 0
    t1 = pd.read_parquet(out / "sweep.parquet")
    assert len(t1) == 4 and (out / "sweep.png").is_file()
    assert len(list((out / "scenarios").glob("*.json"))) == 4
    assert {"empty_vmt_pct", "charging_vmt_pct", "trips_per_vehicle_day", "charger_hours_per_charging_vehicle",
            "charging_trips_per_charging_vehicle_day", "response_time_mean_min", "demand_change_pct"} <= set(t1.columns)
    assert (t1["served"] + t1["unserved"] == t1["requests"]).all()

    # rerun, nothing deleted: everything skipped, identical table
    j2 = tmp_path / "second.json"
    main(["sweep", "--grid", str(grid_file), "--out", str(out), "--workers", "0", "--json", str(j2)])
    s2 = json.loads(j2.read_text())
    assert (s2["computed"], s2["skipped"]) == (0, 4)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "sweep.parquet"), t1)

    # interrupted sweep: only some scenario files exist (one missing, one truncated mid-write)
    files = sorted((out / "scenarios").glob("*.json"))
    kept = {f.name: f.stat().st_mtime_ns for f in files[2:]}
    files[0].unlink()
    files[1].write_text('{"key": "trunc')
    s3 = run_sweep(load_grid(grid_file), out, workers=0)
    assert (s3["computed"], s3["skipped"]) == (2, 2)
    assert {f.name: f.stat().st_mtime_ns for f in files[2:]} == kept      # finished files untouched
    pd.testing.assert_frame_equal(pd.read_parquet(out / "sweep.parquet"), t1)

    # identical seeds in a fresh folder -> identical table
    s4 = run_sweep(load_grid(grid_file), tmp_path / "again", workers=0)
    assert s4["computed"] == 4
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "again" / "sweep.parquet"), t1)


def test_sweep_on_dask_local_cluster_matches_inline(grid_file, tmp_path):
    g = load_grid(grid_file)
    g["grid"] = {"fleet_mix": ["SR", "MIX"]}
    inline = run_sweep(g, tmp_path / "inline", workers=0)
    dask = run_sweep(g, tmp_path / "dask", workers=1)
    assert dask["workers"] == 1 and dask["computed"] == 2 and dask["scheduler"] == "local"
    pd.testing.assert_frame_equal(pd.read_parquet(dask["table"]), pd.read_parquet(inline["table"]))


def test_sweep_connects_to_an_existing_scheduler(grid_file, tmp_path):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        j = tmp_path / "s.json"
        assert main(["sweep", "--grid", str(grid_file), "--out", str(tmp_path / "o"), "--workers", "5",
                     "--scheduler", cluster.scheduler_address, "--json", str(j)]) == 0
        s = json.loads(j.read_text())
    assert s["workers"] == 1 and s["scheduler"] == cluster.scheduler_address and s["computed"] == 4
    inline = run_sweep(load_grid(grid_file), tmp_path / "inline", workers=0)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "o" / "sweep.parquet"), pd.read_parquet(inline["table"]))


def test_results_folder_grid_toml_reruns_the_same_sweep(tmp_path):
    """The sweep writes its resolved grid (defaults filled in) to OUT/grid.toml; sweeping that file
    gives the same scenarios (keys) and the same table."""
    grid = parse_grid({"base": {"day": "2021-03-02", "start_hour": 7, "hours": 1, "fleet": 20, "plugs_total": 2,
                                "regions": 6, "seed": 3}, "grid": {"power_kw": [50, 11]}})
    first = run_sweep(grid, tmp_path / "a", workers=0)
    again = load_grid(tmp_path / "a" / "grid.toml")
    assert [s["key"] for s in expand(again)] == [s["key"] for s in expand(grid)]
    run_sweep(again, tmp_path / "b", workers=0)
    a, b = (pd.read_parquet(tmp_path / d / "sweep.parquet") for d in ("a", "b"))
    assert first["scenarios"] == 2 and len(a) == 2
    pd.testing.assert_frame_equal(a, b)
