"""Embedding API: FleetState from frames/arrays, moves as frames, per-vehicle assignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from drbalance.embedding import assign_vehicles, fleet_state_from_arrays, fleet_state_from_frame, moves_frame
from drbalance.errors import DataError
from drbalance.policies import Moves
from drbalance.problem import BalancingConfig, BalancingProblem
from drbalance.state import Forecasts

W = np.array([[0.0, 2.0, 5.0], [2.0, 0.0, 3.0], [5.0, 3.0, 0.0]])
PLUGS = np.array([2, 0, 3])


def _vehicles():
    return pd.DataFrame({
        "id": ["a", "b", "c", "d", "e", "f", "g", "h", "i"],
        "region": [0, 0, 0, 0, 1, 1, 2, 2, 2],
        "soc": [0.9, 0.5, 0.7, 0.1, 0.15, 0.6, 0.8, 0.3, 0.95],
        "status": ["idle", "idle", "IDLE", "idle", "vacant", "serving", "charging", "queued", "idle"],
    })


def test_fleet_state_from_frame_counts():
    s = fleet_state_from_frame(_vehicles(), PLUGS)
    np.testing.assert_array_equal(s.vacant, [3, 0, 1])        # a, b, c | (f serving) | i
    np.testing.assert_array_equal(s.low_battery, [1, 1, 0])   # d | e (vacant alias)
    np.testing.assert_array_equal(s.occupied, [0, 0, 2])      # g charging, h queued
    s2 = fleet_state_from_frame(_vehicles(), PLUGS, occupied=[1, 0, 0], threshold=0.5)
    np.testing.assert_array_equal(s2.vacant, [2, 0, 1])       # b (0.5) is now at the threshold
    np.testing.assert_array_equal(s2.occupied, [1, 0, 0])


def test_fleet_state_region_labels_and_arrays_agree():
    v = _vehicles().assign(region=lambda f: f.region.map({0: "north", 1: "mid", 2: "south"}))
    a = fleet_state_from_frame(v, PLUGS, region_ids=["north", "mid", "south"])
    b = fleet_state_from_frame(_vehicles(), PLUGS)
    np.testing.assert_array_equal(a.vacant, b.vacant)
    c = fleet_state_from_arrays(_vehicles().region, _vehicles().soc, PLUGS, [0, 0, 2], status=_vehicles().status)
    np.testing.assert_array_equal(c.low_battery, b.low_battery)
    d = fleet_state_from_arrays([0, 2, 2], [0.1, 0.5, 0.9], PLUGS, [0, 0, 0])   # all idle
    np.testing.assert_array_equal(d.vacant, [0, 0, 2])
    np.testing.assert_array_equal(d.low_battery, [1, 0, 0])


@pytest.mark.parametrize("change, match", [
    (lambda f: f.assign(status=["idle"] * 7 + ["parked", "flying"]), r"column 'status': 2 row\(s\)"),
    (lambda f: f.assign(region=[0, 0, 0, 0, 1, 1, 2, 7, 3]), r"column 'region': 2 row\(s\)"),
    (lambda f: f.assign(soc=[np.nan, 0.5, np.nan, 0.1, 0.15, 0.6, np.nan, 0.3, 0.95]), r"column 'soc': 3 row\(s\)"),
    (lambda f: f.assign(soc=[1.5] + [0.5] * 8), r"outside \[0, 1\]"),
    (lambda f: f.assign(id=["a"] * 9), r"column 'id'"),
    (lambda f: f.drop(columns="soc"), r"lacks column\(s\) \['soc'\]"),
])
def test_fleet_state_rejects_bad_frames(change, match):
    with pytest.raises(DataError, match=match):
        fleet_state_from_frame(change(_vehicles()), PLUGS)


def test_moves_frame_drops_stays_and_keeps_own_region_charging():
    m = Moves([0, 0, 1, 2, 1], [0, 1, 1, 2, 2], [3, 2, 0, 1, 4], ["vacant", "vacant", "vacant", "charge", "charge"])
    f = moves_frame(m)
    assert list(f.columns) == ["origin", "destination", "count", "kind"]
    assert f.to_dict("records") == [
        {"origin": 0, "destination": 1, "count": 2, "kind": "vacant"},
        {"origin": 1, "destination": 2, "count": 4, "kind": "charge"},
        {"origin": 2, "destination": 2, "count": 1, "kind": "charge"},
    ]
    assert len(moves_frame(m, include_stays=True)) == 4



def test_moves_frame_of_a_plan_is_its_moves_table():
    from drbalance.state import Plan

    # vacant: stay 0 -> 0 (2 EVs), 0 -> 1 (1); low battery: 1 -> 1, charge in one's own region (1)
    plan = Plan("nominal", np.array([[0, 0], [0, 1]]), np.array([[1, 1]]), np.zeros((1, 2)), np.zeros((1, 1)),
                np.array([2, 1]), np.array([1]), np.zeros((1, 3)), np.zeros((1, 3)), 0.0, {}, "x", "ok", 0, 0)
    f = moves_frame(plan)
    assert f.equals(plan.moves().to_frame())
    assert f.to_dict("records") == [{"origin": 0, "destination": 1, "count": 1, "kind": "vacant"},
                                    {"origin": 1, "destination": 1, "count": 1, "kind": "charge"}]
    assert moves_frame(plan, include_stays=True)[["origin", "destination", "count"]].values.tolist() == [
        [0, 0, 2], [0, 1, 1], [1, 1, 1]]
    assert moves_frame(Moves.empty()).equals(Moves.empty().to_frame())


def test_assign_vehicles_soc_and_distance_rule():
    # region 0 has idle a (0.9), c (0.7), b (0.5) above 0.2 and d (0.1) below
    m = Moves([0, 0, 0], [1, 2, 2], [1, 1, 1], ["vacant", "vacant", "charge"])
    out = assign_vehicles(m, _vehicles(), W)
    assert list(out.columns) == ["vehicle_id", "origin", "destination", "kind", "km"]
    got = {(r.vehicle_id, r.destination, r.kind) for r in out.itertuples()}
    # longest vacant move (0 -> 2, 5 km) takes the fullest battery (a), the next one c; b stays
    assert got == {("a", 2, "vacant"), ("c", 1, "vacant"), ("d", 2, "charge")}
    np.testing.assert_allclose(out.set_index("vehicle_id").loc[["a", "c", "d"], "km"], [5.0, 2.0, 5.0])
    # charge moves: lowest SoC first
    v = pd.DataFrame({"id": [1, 2, 3], "region": [1, 1, 1], "soc": [0.2, 0.05, 0.1], "status": "idle"})
    out = assign_vehicles(Moves([1, 1], [0, 2], [1, 1], ["charge", "charge"]), v, W)
    assert out.set_index("vehicle_id")["destination"].to_dict() == {2: 0, 3: 2}   # nearest plug to the emptiest


def test_assign_vehicles_never_trims():
    m = Moves([0], [1], [4], ["vacant"])   # region 0 has three idle EVs above the threshold
    with pytest.raises(DataError, match="only 3 idle vehicles above"):
        assign_vehicles(m, _vehicles(), W)
    assert len(assign_vehicles(Moves.empty(), _vehicles(), W)) == 0


def test_plan_round_trip_with_the_optimiser():
    """A dispatcher's loop: frame -> FleetState -> BalancingProblem plan -> frame -> vehicles."""
    from data_pipeline.regions import RegionMap

    rng = np.random.default_rng(0)
    n = 3
    zones = pd.DataFrame({"zone_id": [1, 2, 3], "name": ["a", "b", "c"], "borough": "x",
                          "lat": [40.70, 40.72, 40.74], "lon": [-74.0, -74.0, -74.0]}).set_index("zone_id")
    regions = RegionMap.from_distance_matrix(zones, W)
    v = pd.DataFrame({"id": np.arange(30), "region": rng.integers(0, n, 30), "soc": rng.uniform(0.05, 1, 30),
                      "status": "idle"})
    v.loc[v.region == 2, "region"] = 0   # all vacant EVs start in regions 0 and 1; demand is in 2
    state = fleet_state_from_frame(v, PLUGS, occupied=[0, 0, 0])
    fc = Forecasts(demand=np.array([[0.0, 0.0, 12.0]] * 2), supply=np.zeros((2, n)))
    plan = BalancingProblem(regions, BalancingConfig(horizon=2, reach_km=6.0, low_battery_reach_km=6.0,
                                                     speed_kmh=30.0)).solve(   # 5 km within the slot
        state, fc, "nominal")
    f = moves_frame(plan)
    vac = f[f.kind == "vacant"]
    # every vacant move heads for the demand in region 2 (some may stage in region 1, on the way: a tie)
    assert (W[vac.destination, 2] < W[vac.origin, 2]).all() and vac["count"].sum() > 0
    assert vac[vac.destination == 2]["count"].sum() >= 12   # slot 1's demand is covered directly
    assert f[f.kind == "charge"]["count"].sum() == state.low_battery.sum()
    orders = assign_vehicles(plan, v, W)
    assert len(orders) == f["count"].sum() and orders.vehicle_id.is_unique
    soc = v.set_index("id").soc
    assert (soc[orders[orders.kind == "vacant"].vehicle_id] > 0.2).all()
    assert (soc[orders[orders.kind == "charge"].vehicle_id] <= 0.2).all()
    # the vehicles sent are the fullest of their region
    for i, g in orders[orders.kind == "vacant"].groupby("origin"):
        pool = v[(v.region == i) & (v.soc > 0.2)].soc
        assert soc[g.vehicle_id].min() >= pool.nlargest(len(g)).min()


def test_docs_example_runs(capsys):
    """The dispatcher example of docs/embedding.md runs as written."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "embedding.md").read_text()
    block = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    ns: dict = {}
    exec(compile(block, "docs/embedding.md", "exec"), ns)
    orders, vehicles, plan = ns["orders"], ns["vehicles"], ns["plan"]
    assert len(orders) == moves_frame(plan)["count"].sum() > 0
    ok = vehicles.set_index("id").loc[orders.vehicle_id]
    assert (ok.status == "idle").all()
