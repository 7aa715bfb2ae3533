"""Property tests: malformed inputs give a DataError or a balanced report, never a crash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_pipeline.panels import trip_panels
from data_pipeline.readers import TripColumns, read_trips, read_zone_table
from data_pipeline.regions import RegionMap
from data_pipeline.uncertainty import EllipsoidEstimator
from drbalance.errors import DataError

COLS = TripColumns("start", "end", "from", "to", "km", "fare", "km")

times = st.one_of(
    st.datetimes(min_value=pd.Timestamp("2021-04-25").to_pydatetime(),
                 max_value=pd.Timestamp("2021-06-05").to_pydatetime()).map(lambda t: t.isoformat(sep=" ")),
    st.sampled_from(["", "garbage", "2021-13-45 99:99", "NaT", "nan"]),
    st.none(),
)
zone_vals = st.one_of(st.sampled_from(["A", "B", "C", "Z", ""]), st.none(), st.integers(-3, 3).map(str))
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.none(),
                    st.sampled_from(["x", "1e400", "-0.0", "  3 "]))
junk_row = st.tuples(times, times, zone_vals, zone_vals, numbers, numbers)
good_row = st.builds(
    lambda t, mins, a, b, km, fare: ((t).isoformat(sep=" "), (t + pd.Timedelta(minutes=mins)).isoformat(sep=" "),
                                     a, b, km, fare),
    st.datetimes(min_value=pd.Timestamp("2021-05-01").to_pydatetime(),
                 max_value=pd.Timestamp("2021-05-31 23:00").to_pydatetime()),
    st.integers(-5, 500), st.sampled_from(["A", "B"]), st.sampled_from(["A", "B"]),
    st.floats(0, 50), st.floats(-5, 50))
row = st.one_of(junk_row, good_row)


@pytest.fixture(scope="module")
def zones(tmp_path_factory):
    p = tmp_path_factory.mktemp("z") / "zones.csv"
    pd.DataFrame({"zid": ["A", "B", "C"], "lat": [40.70, 40.75, np.nan], "lon": [-74.0, -73.95, np.nan]}).to_csv(
        p, index=False)
    return read_zone_table(p, "zid", "lat", "lon")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row, min_size=0, max_size=40), drop=st.sampled_from([None, "start", "to", "km"]))
def test_malformed_trip_tables_error_or_balance(tmp_path_factory, zones, rows, drop):
    path = tmp_path_factory.mktemp("t") / "trips.csv"
    df = pd.DataFrame(rows, columns=["start", "end", "from", "to", "km", "fare"])
    if drop:
        df = df.drop(columns=[drop])
    df.to_csv(path, index=False)
    try:
        frame, report = read_trips(path, COLS, zones, period=("2021-05-01", "2021-05-31"))
    except DataError as exc:
        assert drop is not None or len(rows) == 0, exc  # only schema problems may raise
        if drop:
            assert drop in str(exc) and "trips.csv" in str(exc)
        return
    assert drop is None
    assert report.rows_read == len(rows)
    assert report.rows_accepted + report.rows_rejected == report.rows_read == len(frame) + len(report.rejected)
    assert set(report.rejected.reason) <= set(report.reasons)
    if len(frame):
        assert (frame.dropoff_time > frame.pickup_time).all()
        assert frame.pickup_zone.isin(["A", "B"]).all() and frame.dropoff_zone.isin(["A", "B"]).all()
        assert np.isfinite(frame.distance_km).all() and (frame.distance_km >= 0).all()
        assert (frame.pickup_time >= "2021-05-01").all() and (frame.pickup_time < "2021-06-01").all()
        # accepted trips are conserved by the panels
        rm = RegionMap.from_zones(zones, 1.3)
        p = trip_panels(frame, rm, "2021-05-01", "2021-05-31", 30)
        assert p["demand"].total() == len(frame)
        assert p["supply"].total() + p["supply"].outside == len(frame)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(0, 6), d=st.integers(1, 5), scale=st.sampled_from([0.0, 1e-300, 1.0, 1e12]),
       seed=st.integers(0, 10))
def test_sets_never_nan(m, d, scale, seed):
    X = np.random.default_rng(seed).normal(size=(m, d)) * scale
    try:
        est = EllipsoidEstimator(n_bootstrap=20).fit(X)
    except DataError:
        return
    for s in (est.robust_set_, est.mean_set_):
        assert np.isfinite(s.radius) and np.isfinite(s.mean).all() and (s.diag > 0).all()
        assert np.isfinite(s.mahalanobis2(X)).all()
