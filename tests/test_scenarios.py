"""Peers' benchmark instances: the vendored cuts (default suite) and every shared scenario (slow) load
with the values of their files, errors name the missing key, sampling matches the scenario's means."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from data_pipeline.panels import trip_panels
from data_pipeline.scenarios import read_amod_scenario, read_eamod_scenario, read_scenario
from drbalance.errors import DataError
from tests.conftest import EAMOD_FIXTURE, ROME_FIXTURE

AMOD = ["chicago", "nyc_brooklyn", "nyc_man_middle", "nyc_man_north", "nyc_man_south", "porto", "rome",
        "san_francisco"]


def test_rl4amod_cut_loads_with_its_values():
    """tests/fixtures/amod_macro_scenarios_rl4amod: Rome regions 8, 9, 10, 12 -> 0..3, 08:00-08:59."""
    s = read_scenario(ROME_FIXTURE)
    assert (s.kind, s.name, s.n_regions, s.window) == ("amod", "rome", 4, (480, 540))
    assert s.params == {"demand_ratio": 1.8, "json_hr": 8, "beta": 0.1}  # calibrated_parameters.json beside it
    assert len(s.demand) == 405 and (s.demand["span_min"] == 1).all()
    od = s.expected_daily_od()
    assert od.sum() == pytest.approx(48.0)
    # hand-checked from the original file: 12 trips 8 -> 9 and 10 trips 9 -> 8 between 08:00 and 08:59
    assert od[0, 1] == pytest.approx(12.0) and od[1, 0] == pytest.approx(10.0) and od[2, 0] == pytest.approx(1.0)
    assert s.reb_time_min.shape == (3, 4, 4) and s.reb_hours.tolist() == [8, 9, 10]
    assert s.reb_time_min[0, 0, 1] == pytest.approx(7.10342539) and s.reb_time_min[0, 2, 0] == pytest.approx(13.89344845)
    assert np.array_equal(s.reb_time_at(9 * 60 + 30), s.reb_time_min[1]) and s.reb_time_min[1, 0, 1] == pytest.approx(6.77981128)
    assert s.fleet_by_hour.to_dict() == {8: 44, 9: 54, 10: 59}
    # topology pairs 8-9, 9-10, 8-12, 9-12 (renumbered); 10-12 are not adjacent
    assert s.adjacency[0, 1] and s.adjacency[1, 2] and s.adjacency[0, 3] and s.adjacency[1, 3]
    assert not s.adjacency[2, 3] and not s.adjacency[0, 2]
    first = s.demand.iloc[0]
    assert (first.minute, first.origin, first.destination, first.travel_time_min, first.price) == (495, 0, 1, 14.0, 26.0)
    rm = s.region_map(20.0)
    assert rm.distance_km[0, 1] == pytest.approx(7.10342539 * 20 / 60) and np.all(np.diag(rm.distance_km) == 0)


def test_eamod_cut_loads_with_its_values():
    """tests/fixtures/eamod_nyc_graph_rl/NY_3: NY_5 regions 1, 3, 4 -> 0..2, steps 0-7."""
    s = read_scenario(EAMOD_FIXTURE)
    assert (s.kind, s.name, s.n_regions, s.window) == ("eamod", "NY_3", 3, (0, 120))
    assert s.chargers.tolist() == [16, 16, 16] and s.fleet_by_hour.unique().tolist() == [156]
    assert len(s.demand) == 72 and (s.demand["span_min"] == 15).all()
    assert s.expected_daily_od().tolist() == [[480, 40, 132], [40, 208, 92], [160, 72, 188]]
    # rebalancing times: one 15-min step everywhere except 2 steps from region 1 to 0 (NY_5: 3 -> 1)
    expect = np.full((3, 3), 15.0)
    expect[1, 0] = 30.0
    assert s.reb_hours.tolist() == [0, 1] and all(np.array_equal(m, expect) for m in s.reb_time_min)
    # travel times from duration_matrix.npy (seconds, hour 0): NY_5 [1, 1, 0] = 594.3 s
    first = s.demand.iloc[0]
    assert first["travel_time_min"] == pytest.approx(594.3 / 60) and first["mean"] == 70
    assert s.energy["levels_per_trip"].tolist() == [[1, 2, 1], [2, 1, 1], [1, 1, 1]]
    assert len(s.energy["energy_prices"]) == 8 and s.energy["operational_cost_per_step"] == 0.1848
    assert s.energy["distance_km"].shape == (3, 3, 24)


@pytest.mark.slow
@pytest.mark.parametrize("city", AMOD)
def test_every_rl4amod_scenario_loads(shared_data, city):
    s = read_scenario(shared_data / "amod_macro_scenarios_rl4amod" / f"scenario_{city}.json.gz")
    assert s.kind == "amod" and s.n_regions >= 10
    assert s.reb_time_min.shape[1:] == (s.n_regions, s.n_regions) and np.isfinite(s.reb_time_min).all()
    assert s.window[1] - s.window[0] == 180  # a 3-hour window
    assert s.params.get("json_hr") == s.window[0] // 60
    rm = s.region_map(20.0)
    assert rm.n == s.n_regions and np.all(np.diag(rm.distance_km) == 0)


@pytest.mark.slow
@pytest.mark.parametrize("n", [5, 10, 15, 20])
def test_every_eamod_graph_loads(shared_data, n):
    s = read_scenario(shared_data / "eamod_nyc_graph_rl" / f"NY_{n}")
    assert s.kind == "eamod" and s.n_regions == n and s.chargers.shape == (n,) and (s.chargers > 0).all()
    assert s.energy["levels_per_trip"].shape == (n, n) and len(s.energy["energy_prices"]) == 48
    assert s.window == (0, 720)
    total = {5: 18_880, 10: 58_300, 15: 100_892, 20: 164_000}[n]  # SOURCE.md
    assert s.demand["mean"].sum() == total


@pytest.fixture(params=["cut", pytest.param("full", marks=pytest.mark.slow)])
def sampled_scenario(request):
    """The Rome cut by default; San Francisco (10 regions, 5,370 demand rows) in the slow run."""
    if request.param == "cut":
        return ROME_FIXTURE
    return request.getfixturevalue("shared_data") / "amod_macro_scenarios_rl4amod" / "scenario_san_francisco.json.gz"


def test_sampled_demand_matches_means(sampled_scenario):
    s = read_amod_scenario(sampled_scenario)
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


def test_malformed_scenarios_name_the_key(tmp_path):
    with gzip.open(ROME_FIXTURE, "rt") as fh:
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
    raw = ROME_FIXTURE.read_bytes()
    t = tmp_path / "scenario_trunc.json.gz"
    t.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated"):
        read_amod_scenario(t)
    with pytest.raises(DataError, match="no NYC_"):
        read_eamod_scenario(tmp_path)
