"""RegionMap construction/coarsening and panel counting (conservation, occupancy integrals)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_pipeline.panels import Panel, charging_panels, check_slot_minutes, count_panel, day_types, trip_panels
from data_pipeline.readers import read_tlc_trips
from data_pipeline.regions import RegionMap, estimate_circuity, haversine_km
from drbalance import datasets
from drbalance.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def nyc():
    zones = datasets.load_nyc_zones()
    ing = read_tlc_trips(datasets.nyc_green_trip_files(("2021-01",)), zones, period=("2021-01-01", "2021-01-31"))
    return zones, ing


def test_haversine_known_distance():
    # JFK (40.6413, -73.7781) to LaGuardia (40.7769, -73.8740): about 17.0 km great-circle
    d = haversine_km(40.6413, -73.7781, 40.7769, -73.8740)
    assert 16.5 < d < 17.5


def test_region_map_from_zones(nyc):
    zones, _ = nyc
    rm = RegionMap.from_zones(zones, circuity=1.3)
    assert rm.n == 260  # 263 located zones, 57/104/105 share 56's/103's location
    assert rm.region_of([56])[0] == rm.region_of([57])[0]
    assert rm.region_of([264, 999]).tolist() == [-1, -1]
    assert np.allclose(rm.distance_km, rm.distance_km.T) and np.all(np.diag(rm.distance_km) == 0)
    pairs = rm.reachable_pairs(3.0)
    assert {(i, i) for i in range(rm.n)} <= set(map(tuple, pairs))
    assert (rm.distance_km[pairs[:, 0], pairs[:, 1]] <= 3.0).all()
    assert len(pairs) == int((rm.distance_km <= 3.0).sum())
    with pytest.raises(ConfigError):
        RegionMap.from_zones(zones, circuity=0.5)


def test_circuity_estimated_from_metered_trips(nyc):
    zones, ing = nyc
    c = estimate_circuity(ing.frame, zones)
    assert 1.1 < c < 1.6  # Manhattan-grid streets: metered ~ 1.3 x straight line
    with pytest.raises(DataError, match="100"):
        estimate_circuity(ing.frame.head(10), zones)


def test_coarsen_assigns_every_zone_deterministically(nyc):
    zones, ing = nyc
    rm = RegionMap.from_zones(zones)
    w = np.bincount(rm.region_of(ing.frame.pickup_zone), minlength=rm.n).astype(float)
    a = rm.coarsen(12, w, random_state=3)
    b = rm.coarsen(12, w, random_state=3)
    assert a.n == 12 and np.array_equal(a.zone_region, b.zone_region)
    assert set(a.zone_region) == set(range(12))
    # region 0 is the heaviest by construction
    tot = np.bincount(a.region_of(ing.frame.pickup_zone), minlength=12)
    assert tot[0] == tot.max()
    m = a.members()
    assert len(m) == len(rm.zone_ids) and set(m.region) == set(range(12))
    with pytest.raises(ConfigError):
        rm.coarsen(0)
    with pytest.raises(DataError):
        rm.coarsen(3, np.zeros(rm.n))


def test_slot_minutes_validation():
    assert check_slot_minutes(15) == 15
    for bad in (4, 7, 90, 14.5):
        with pytest.raises(ConfigError):
            check_slot_minutes(bad)


def test_trip_panels_conserve_accepted_trips(nyc):
    zones, ing = nyc
    rm = RegionMap.from_zones(zones)
    for slot in (5, 15, 60):
        p = trip_panels(ing.frame, rm, "2021-01-01", "2021-01-31", slot)
        assert p["demand"].values.shape == (31, 1440 // slot, rm.n)
        assert p["demand"].total() + p["demand"].outside == len(ing.frame)
        assert p["supply"].total() + p["supply"].outside == len(ing.frame)
        assert p["demand"].outside == 0  # pick-ups were filtered to the period
    # counts per region equal a direct groupby
    p = trip_panels(ing.frame, rm, "2021-01-01", "2021-01-31", 15)
    direct = pd.Series(rm.region_of(ing.frame.pickup_zone)).value_counts()
    assert all(p["demand"].values[:, :, r].sum() == n for r, n in direct.items())
    # a specific cell: trips picked up 2021-01-05 08:00-08:15 in the region of zone 74
    r74 = rm.region_of([74])[0]
    f = ing.frame
    sel = (f.pickup_time >= "2021-01-05 08:00") & (f.pickup_time < "2021-01-05 08:15") & \
          (rm.region_of(f.pickup_zone) == r74)
    assert p["demand"].values[4, 32, r74] == sel.sum()


def test_day_types_and_holidays():
    days = pd.date_range("2021-01-01", "2021-01-04")  # Fri (New Year), Sat, Sun, Mon
    assert day_types(days).tolist() == ["weekday", "weekend", "weekend", "weekday"]
    assert day_types(days, "us").tolist() == ["weekend", "weekend", "weekend", "weekday"]


def test_panel_select_and_shape_errors():
    days = pd.date_range("2021-01-01", periods=3)
    p = Panel(np.ones((3, 24, 2)), days, 60, np.array([0, 1]), "demand", day_types(days))
    assert p.select("2021-01-02", "2021-01-03").n_days == 2
    with pytest.raises(DataError):
        p.select("2022-01-01", "2022-01-02")
    with pytest.raises(DataError):
        Panel(np.ones((3, 24, 2)), pd.DatetimeIndex(["2021-01-01", "2021-01-03", "2021-01-04"]), 60,
              np.array([0, 1]), "demand", day_types(days))


def test_charging_occupancy_integral():
    sessions = pd.DataFrame({
        "station_id": ["a", "a", "b"],
        "connect_time": pd.to_datetime(["2021-05-01 10:05", "2021-05-01 10:20", "2021-05-01 23:50"]),
        "disconnect_time": pd.to_datetime(["2021-05-01 10:35", "2021-05-01 10:25", "2021-05-02 00:20"]),
    })
    station_region = pd.Series({"a": 0, "b": 1})
    p = charging_panels(sessions, station_region, np.array([10, 11]), "2021-05-01", "2021-05-02", 15)
    occ, arr = p["occupancy"].values, p["charging_arrivals"].values
    assert arr[0, 40, 0] == 1 and arr[0, 41, 0] == 1 and arr[0, 95, 1] == 1 and arr.sum() == 3
    assert occ[0, 40, 0] == pytest.approx(10 / 15)
    assert occ[0, 41, 0] == pytest.approx(1 + 5 / 15)  # whole slot + the 5-min session
    assert occ[0, 42, 0] == pytest.approx(5 / 15)
    assert occ[0, 95, 1] == pytest.approx(10 / 15) and occ[1, 1, 1] == pytest.approx(5 / 15)
    # total occupancy x slot length = total connected minutes
    assert occ.sum() * 15 == pytest.approx(30 + 5 + 30)


def test_count_panel_rejects_bad_regions():
    days = pd.date_range("2021-01-01", periods=1)
    with pytest.raises(DataError):
        count_panel(np.array(["2021-01-01T01:00"], dtype="datetime64[ns]"), np.array([5]), days, 60, 2)


def test_panel_and_region_map_are_frozen_with_read_only_arrays():
    import dataclasses

    days = pd.date_range("2021-01-01", periods=3)
    vals = np.ones((3, 24, 2))
    p = Panel(vals, days, 60, np.array([0, 1]), "demand", day_types(days))
    W = np.array([[0.0, 2.0], [2.0, 0.0]])
    rm = RegionMap(np.array([7, 8]), np.array(["a", "b"]), np.zeros(2), np.zeros(2), W, np.array([1, 2, 3]),
                   np.array([0, 1, 1]))
    for obj, arrays in ((p, ("values", "region_ids", "day_type")),
                        (rm, ("region_ids", "names", "lat", "lon", "distance_km", "zone_ids", "zone_region"))):
        for f in dataclasses.fields(obj):
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(obj, f.name, getattr(obj, f.name))
        for name in arrays:
            with pytest.raises(ValueError, match="assignment destination is read-only"):
                getattr(obj, name)[0] = getattr(obj, name)[-1]
    with pytest.raises(ValueError, match="read-only"):
        p.series()[0] += 1  # views are read-only too
    with pytest.raises(ValueError, match="read-only"):
        np.fill_diagonal(rm.distance_km, 1.0)
    # the caller's arrays are copied, not frozen, and later writes to them do not leak in
    assert vals.flags.writeable and W.flags.writeable
    vals[0, 0, 0] = -1.0
    W[0, 1] = -1.0
    assert p.values[0, 0, 0] == 1.0 and rm.distance_km[0, 1] == 2.0
    # validation cannot be undone: a changed copy is validated again
    with pytest.raises(DataError, match="non-negative"):
        dataclasses.replace(rm, distance_km=-np.ones((2, 2)))
    with pytest.raises(DataError, match="day_type"):
        dataclasses.replace(p, day_type=np.array(["weekday"]))
    sub = p.select("2021-01-02", "2021-01-03")
    assert not sub.values.flags.writeable and sub.region_ids is p.region_ids  # frozen arrays are shared
    assert rm.region_of([3, 9]).tolist() == [1, -1]
