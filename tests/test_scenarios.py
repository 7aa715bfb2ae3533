"""Peers' benchmark instances: every shared scenario loads, errors name the missing key, sampling
matches the scenario's means."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from data_pipeline.panels import trip_panels
from data_pipeline.scenarios import read_amod_scenario, read_eamod_scenario, read_scenario
from drbalance.errors import DataError

AMOD = ["chicago", "nyc_brooklyn", "nyc_man_middle", "nyc_man_north", "nyc_man_south", "porto", "rome",
        "san_francisco"]


@pytest.mark.parametrize("city", AMOD)
def test_every_rl4amod_scenario_loads(shared_data, city):
    s = read_scenario(shared_data / "amod_macro_scenarios_rl4amod" / f"scenario_{city}.json.gz")
    assert s.kind == "amod" and s.n_regions >= 10
    assert s.reb_time_min.shape[1:] == (s.n_regions, s.n_regions) and np.isfinite(s.reb_time_min).all()
    assert s.window[1] - s.window[0] == 180  # a 3-hour window
    assert s.params.get("json_hr") == s.window[0] // 60
    rm = s.region_map(20.0)
    assert rm.n == s.n_regions and np.all(np.diag(rm.distance_km) == 0)


@pytest.mark.parametrize("n", [5, 10, 15, 20])
def test_every_eamod_graph_loads(shared_data, n):
    s = read_scenario(shared_data / "eamod_nyc_graph_rl" / f"NY_{n}")
    assert s.kind == "eamod" and s.n_regions == n and s.chargers.shape == (n,) and (s.chargers > 0).all()
    assert s.energy["levels_per_trip"].shape == (n, n) and len(s.energy["energy_prices"]) == 48
    assert s.window == (0, 720)
    total = {5: 18_880, 10: 58_300, 15: 100_892, 20: 164_000}[n]  # SOURCE.md
    assert s.demand["mean"].sum() == total


def test_sampled_demand_matches_means(shared_data):
    s = read_amod_scenario(shared_data / "amod_macro_scenarios_rl4amod" / "scenario_san_francisco.json.gz")
    days = 300
    trips = s.sample_trips(days, seed=11, scale=2.0)
    lam = s.expected_daily_od(scale=2.0)
    got = np.zeros_like(lam)
    np.add.at(got, (trips.pickup_zone.to_numpy(), trips.dropoff_zone.to_numpy()), 1.0)
    mean = got / days
    mask = lam > 0
    se = np.sqrt(lam[mask] / days)  # Poisson: variance = mean
    z = np.abs(mean[mask] - lam[mask]) / se
    assert (z <= 3).mean() >= 0.99 and z.max() < 4.5
    assert (got[~mask] == 0).all()  # no trips where the scenario has no demand
    # pick-ups fall inside each row's minute, drop-offs after the travel time
    assert (trips.dropoff_time - trips.pickup_time).dt.total_seconds().div(60).round(6).equals(
        trips.duration_min.round(6))
    mins = (trips.pickup_time - trips.pickup_time.dt.normalize()).dt.total_seconds() / 60
    assert mins.between(s.window[0], s.window[1]).all()
    # same seed, same days; panels work unchanged on sampled trips
    assert s.sample_trips(2, seed=11).equals(s.sample_trips(2, seed=11))
    p = trip_panels(trips, s.region_map(), "2030-01-07", str((pd.Timestamp("2030-01-07") + pd.Timedelta(days=days - 1)).date()), 15)
    assert p["demand"].total() == len(trips)


def _write(tmp_path, data, name="scenario_test.json.gz"):
    p = tmp_path / name
    with gzip.open(p, "wt") as fh:
        json.dump(data, fh)
    return p


def test_malformed_scenarios_name_the_key(shared_data, tmp_path):
    with gzip.open(shared_data / "amod_macro_scenarios_rl4amod" / "scenario_rome.json.gz", "rt") as fh:
        good = json.load(fh)
    for key in ("demand", "rebTime", "totalAcc", "nlat"):
        bad = {k: v for k, v in good.items() if k != key}
        with pytest.raises(DataError, match=repr(key)):
            read_amod_scenario(_write(tmp_path, bad))
    bad = dict(good, demand=[{k: v for k, v in r.items() if k != "travel_time"} for r in good["demand"]])
    with pytest.raises(DataError, match="travel_time"):
        read_amod_scenario(_write(tmp_path, bad))
    off = next(i for i, r in enumerate(good["rebTime"]) if r["origin"] != r["destination"])
    bad = dict(good, rebTime=good["rebTime"][:off] + good["rebTime"][off + 1:])
    with pytest.raises(DataError, match="rebTime"):
        read_amod_scenario(_write(tmp_path, bad))
    bad = dict(good, demand=[dict(r, origin=99) if i == 0 else r for i, r in enumerate(good["demand"])])
    with pytest.raises(DataError, match="outside"):
        read_amod_scenario(_write(tmp_path, bad))
    # truncated gzip
    raw = (shared_data / "amod_macro_scenarios_rl4amod" / "scenario_rome.json.gz").read_bytes()
    t = tmp_path / "scenario_trunc.json.gz"
    t.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated"):
        read_amod_scenario(t)
    with pytest.raises(DataError, match="no NYC_"):
        read_eamod_scenario(tmp_path)
