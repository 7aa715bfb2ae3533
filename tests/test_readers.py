"""Readers: real slices and full bundled files, every reject reason, schema errors.

ACN, Melbourne and Shenzhen readers run on the vendored cuts under tests/fixtures/ (values checked
against their SOURCE.md) in the default suite and on the full shared files in the slow run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_pipeline.readers import (
    TripColumns,
    detect_tlc_format,
    read_acn_sessions,
    read_melbourne_charging,
    read_shenzhen_zones,
    read_tlc_trips,
    read_trips,
    read_zone_table,
)
from data_pipeline.validate import TRIP_REJECT_REASONS
from drbalance import datasets
from drbalance.errors import DataError
from tests.conftest import FIXTURES, MELBOURNE_FIXTURE, SHENZHEN_FIXTURE

SLICES = sorted(FIXTURES.glob("green_slice_2021-0*.parquet"))


@pytest.fixture(scope="module")
def zones():
    return datasets.load_nyc_zones()


def test_zone_table_handles_tlc_quirks(zones):
    assert len(zones) == 265
    # 57 "Corona" has no polygon: it borrows 56's centroid; 264/265 have no location.
    assert zones.loc[57, "location_from"] == 56
    assert zones.loc[57, ["lat", "lon"]].tolist() == zones.loc[56, ["lat", "lon"]].tolist()
    assert zones.loc[[264, 265], "lat"].isna().all()
    # 56 has two polygons: its centroid is their area-weighted mean, so it lies between them.
    assert 40.7414 < zones.loc[56, "lat"] < 40.7518
    assert zones["lat"].notna().sum() == 263  # 260 own polygons + 57, 104, 105 borrowed


def test_real_slices_balance_and_name_reasons(zones):
    ing = read_tlc_trips(SLICES, zones, period=("2021-01-01", "2021-03-31"))
    r = ing.report
    assert r.rows_read == sum(len(pd.read_parquet(p)) for p in SLICES)
    assert r.rows_accepted + r.rows_rejected == r.rows_read == len(ing.frame) + len(r.rejected)
    by = r.by_reason
    for reason in ("outside_period", "zone_without_location", "dropoff_not_after_pickup", "duration_too_long",
                   "negative_fare"):
        assert by[reason] > 0, reason
    assert list(by) == list(TRIP_REJECT_REASONS)
    # rejected rows point back to real rows with the stated problem
    rej = r.rejected
    row = rej[rej.reason == "dropoff_not_after_pickup"].iloc[0]
    raw = pd.read_parquet(FIXTURES / row.source).iloc[row.row]
    assert raw.lpep_dropoff_datetime <= raw.lpep_pickup_datetime
    row = rej[rej.reason == "outside_period"].iloc[0]
    raw = pd.read_parquet(FIXTURES / row.source).iloc[row.row]
    assert not (pd.Timestamp("2021-01-01") <= raw.lpep_pickup_datetime < pd.Timestamp("2021-04-01"))
    f = ing.frame
    assert (f.dropoff_time > f.pickup_time).all()
    assert np.allclose(f.duration_min, (f.dropoff_time - f.pickup_time).dt.total_seconds() / 60)
    assert (f.distance_km >= 0).all()
    assert 57 in set(f.pickup_zone) | set(f.dropoff_zone)  # accepted through the same-name centroid


def test_full_bundled_months_match_source_facts(zones):
    ing = read_tlc_trips(datasets.nyc_green_trip_files(), zones)
    r = ing.report
    assert r.rows_read == 76_518 + 64_572 + 83_827
    assert r.rows_accepted + r.rows_rejected == r.rows_read
    ing2 = read_tlc_trips(datasets.nyc_green_trip_files(), zones, period=("2021-01-01", "2021-03-31"))
    # SOURCE.md: 2 rows dated 2009 + 1 row of 2020-12 in January, 1 row of 2009 in February
    assert ing2.report.by_reason["outside_period"] == 4
    # TLC reversal pairs: rejecting the negative fare leaves no key duplicate behind
    assert ing2.report.by_reason["duplicate"] == 0
    ing3 = read_tlc_trips(datasets.nyc_green_trip_files(), zones, period=("2021-01-01", "2021-03-31"),
                          reject_negative_fare=False)
    assert ing3.report.by_reason["negative_fare"] == 0
    assert ing3.report.by_reason["duplicate"] > 0


def _generic(tmp_path, rows, zones_csv=True):
    zt = pd.DataFrame({"zid": ["A", "B", "C"], "lat": [40.70, 40.75, np.nan], "lon": [-74.0, -73.95, np.nan]})
    zpath = tmp_path / "zones.csv"
    zt.to_csv(zpath, index=False)
    zones = read_zone_table(zpath, "zid", "lat", "lon")
    tp = tmp_path / "trips.csv"
    pd.DataFrame(rows, columns=["start", "end", "from", "to", "km", "fare"]).to_csv(tp, index=False)
    cols = TripColumns("start", "end", "from", "to", "km", "fare", "km")
    return read_trips(tp, cols, zones, period=("2021-05-01", "2021-05-31"))


def test_every_trip_reject_reason(tmp_path):
    ok = ["2021-05-03 08:00", "2021-05-03 08:10", "A", "B", 2.0, 9.0]
    rows = [
        ok,
        ["not a time", "2021-05-03 08:10", "A", "B", 2.0, 9.0],            # missing_timestamp
        ["2021-06-03 08:00", "2021-06-03 08:10", "A", "B", 2.0, 9.0],      # outside_period
        ["2021-05-03 08:00", "2021-05-03 08:10", None, "B", 2.0, 9.0],     # missing_zone
        ["2021-05-03 08:00", "2021-05-03 08:10", "A", "Z", 2.0, 9.0],      # unknown_zone
        ["2021-05-03 08:00", "2021-05-03 08:10", "C", "B", 2.0, 9.0],      # zone_without_location
        ["2021-05-03 08:00", "2021-05-03 08:00", "A", "B", 2.0, 9.0],      # dropoff_not_after_pickup
        ["2021-05-03 08:00", "2021-05-03 15:00", "A", "B", 2.0, 9.0],      # duration_too_long
        ["2021-05-03 08:00", "2021-05-03 08:10", "A", "B", "inf", 9.0],    # non_finite_distance
        ["2021-05-03 08:00", "2021-05-03 08:10", "A", "B", -1.0, 9.0],     # negative_distance
        ["2021-05-03 08:00", "2021-05-03 08:10", "A", "B", 2.0, -9.0],     # negative_fare
        ok,                                                                 # duplicate
    ]
    ing = _generic(tmp_path, rows)
    expected = [None] + list(TRIP_REJECT_REASONS)
    got = dict(zip(ing.report.rejected.row, ing.report.rejected.reason))
    assert [got.get(i) for i in range(len(rows))] == expected
    assert ing.report.rows_accepted == 1 and ing.report.rows_read == len(rows)
    assert ing.frame.pickup_zone.tolist() == ["A"]
    assert ing.frame.distance_km.tolist() == [2.0]


def test_first_reason_wins(tmp_path):
    # outside the period AND drop-off before pick-up AND negative fare: reported once, as outside_period
    ing = _generic(tmp_path, [["2021-07-01 08:00", "2021-07-01 07:00", "A", "Z", -3.0, -1.0]])
    assert ing.report.rejected.reason.tolist() == ["outside_period"]


def test_missing_column_names_column_and_file(tmp_path, zones):
    df = pd.read_parquet(SLICES[0]).drop(columns=["DOLocationID"])
    p = tmp_path / "broken.parquet"
    df.to_parquet(p)
    with pytest.raises(DataError, match=r"broken\.parquet.*(green|recognised)"):
        read_tlc_trips(p, zones)
    cols = TripColumns("lpep_pickup_datetime", "lpep_dropoff_datetime", "PULocationID", "DOLocationID")
    with pytest.raises(DataError, match=r"broken\.parquet.*DOLocationID"):
        read_trips(p, cols, zones)


def test_format_detection():
    assert detect_tlc_format(["tpep_pickup_datetime", "tpep_dropoff_datetime", "PULocationID", "DOLocationID",
                              "trip_distance", "fare_amount", "x"]) == "yellow"
    assert detect_tlc_format(pd.read_parquet(SLICES[0]).columns) == "green"
    with pytest.raises(DataError, match="not a recognised NYC TLC"):
        detect_tlc_format(["a", "b"])


def test_unreadable_and_missing_files(tmp_path, zones):
    bad = tmp_path / "junk.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="junk.parquet"):
        read_tlc_trips(bad, zones)
    with pytest.raises(DataError, match="not found"):
        read_tlc_trips(tmp_path / "nope.parquet", zones)


def test_zone_table_errors(tmp_path):
    p = tmp_path / "z.csv"
    pd.DataFrame({"id": [1, 1], "lat": [1.0, 2.0], "lon": [1.0, 2.0]}).to_csv(p, index=False)
    with pytest.raises(DataError, match="unique"):
        read_zone_table(p, "id", "lat", "lon")
    pd.DataFrame({"id": [1], "lat": [100.0], "lon": [1.0]}).to_csv(p, index=False)
    with pytest.raises(DataError, match="out of range"):
        read_zone_table(p, "id", "lat", "lon")
    with pytest.raises(DataError, match="latitude"):
        read_zone_table(p, "id", "latitude", "lon")


def test_acn_sessions(acn_file):
    ing = read_acn_sessions(acn_file.path)
    r = ing.report
    assert r.rows_read == acn_file.sessions and r.rows_accepted == acn_file.sessions and r.rows_rejected == 0
    f = ing.frame
    assert (f.disconnect_time > f.connect_time).all()
    assert f.kwh.between(0, 100).all()
    assert f.user_id.isna().sum() == acn_file.no_user and f.station_id.nunique() == acn_file.stations
    # local (Los Angeles) time: the first session connected 2021-05-01 20:42:47 GMT = 13:42:47 PDT
    assert f.connect_time.min() == pd.Timestamp("2021-05-01 13:42:47")
    first = f.iloc[0]  # the file's first record, field by field
    assert (first.session_id, first.station_id, first.user_id) == (
        "2_39_81_4550_2021-05-01 20:42:39.133163", "2-39-81-4550", "000000915")
    assert first.disconnect_time == pd.Timestamp("2021-05-01 14:32:12") and pd.isna(first.done_time)
    assert (first.kwh, first.requested_kwh, first.requested_miles) == (30.936, 71.5, 250.0)
    assert f.row.tolist() == list(range(acn_file.sessions))


def test_acn_malformed(tmp_path):
    p = tmp_path / "s.json"
    p.write_text('[{"sessionID": "a", "stationID": "s", "connectionTime": "Sat, 01 May 2021 20:42:47 GMT", '
                 '"disconnectTime": "Sat, 01 May 2021 19:00:00 GMT", "kWhDelivered": 3.0, '
                 '"timezone": "America/Los_Angeles"}, {"sessionID": "b", "stationID": "s", '
                 '"connectionTime": "Sat, 01 May 2021 20:42:47 GMT", "disconnectTime": "Sat, 01 May 2021 23:00:00 GMT", '
                 '"kWhDelivered": "NaN", "timezone": "America/Los_Angeles"}]')
    ing = read_acn_sessions(p)
    assert ing.report.by_reason["disconnect_not_after_connect"] == 1
    assert ing.report.by_reason["non_finite_energy"] == 1
    p.write_text('[{"sessionID": "a"}]')
    with pytest.raises(DataError, match="stationID"):
        read_acn_sessions(p)
    p.write_text("{not json")
    with pytest.raises(DataError, match="JSON"):
        read_acn_sessions(p)


def _acn_record(sid, connect, disconnect, **extra):
    return {"sessionID": sid, "stationID": "s", "connectionTime": connect, "disconnectTime": disconnect,
            "kWhDelivered": 1.0, **extra}


def test_acn_time_zone_rule_without_timezone_field(tmp_path):
    """No ``timezone`` field: times are America/Los_Angeles (the ACN sites' zone), not UTC."""
    import json

    from data_pipeline.readers import ACN_SITE_TIMEZONE, ACN_TIMEZONE_RULE

    assert ACN_SITE_TIMEZONE == "America/Los_Angeles" and ACN_SITE_TIMEZONE in ACN_TIMEZONE_RULE
    p = tmp_path / "notz.json"
    p.write_text(json.dumps([_acn_record("a", "Sat, 01 May 2021 05:00:00 GMT", "Sat, 01 May 2021 07:30:00 GMT")]))
    f = read_acn_sessions(p).frame
    assert f.connect_time.iloc[0] == pd.Timestamp("2021-04-30 22:00:00")  # PDT = GMT - 7 h
    assert f.disconnect_time.iloc[0] == pd.Timestamp("2021-05-01 00:30:00")
    assert f.timezone.astype(str).tolist() == ["America/Los_Angeles"]
    # same local days when filtering by period: the session belongs to 30 April local time
    assert len(read_acn_sessions(p, period=("2021-04-30", "2021-04-30")).frame) == 1
    # a null field and a missing field follow the same rule; a given zone is used as is, per record
    p.write_text(json.dumps([
        _acn_record("a", "Sat, 01 May 2021 05:00:00 GMT", "Sat, 01 May 2021 06:00:00 GMT", timezone=None),
        _acn_record("b", "Sat, 01 May 2021 05:00:00 GMT", "Sat, 01 May 2021 06:00:00 GMT"),
        _acn_record("c", "Sat, 01 May 2021 05:00:00 GMT", "Sat, 01 May 2021 06:00:00 GMT", timezone="America/New_York"),
    ]))
    f = read_acn_sessions(p).frame
    assert f.connect_time.tolist() == [pd.Timestamp("2021-04-30 22:00"), pd.Timestamp("2021-04-30 22:00"),
                                       pd.Timestamp("2021-05-01 01:00")]
    assert f.timezone.astype(str).tolist() == ["America/Los_Angeles", "America/Los_Angeles", "America/New_York"]
    p.write_text(json.dumps([_acn_record("a", "Sat, 01 May 2021 05:00:00 GMT", "Sat, 01 May 2021 06:00:00 GMT",
                                         timezone="Nowhere/Atlantis")]))
    with pytest.raises(DataError, match="Nowhere/Atlantis"):
        read_acn_sessions(p)


def test_acn_frame_is_los_angeles_time(acn_file):
    ing = read_acn_sessions(acn_file.path)
    assert set(ing.frame.timezone.astype(str)) == {"America/Los_Angeles"}


def test_readers_package_reexports_and_units():
    import data_pipeline
    import data_pipeline.readers as readers
    from data_pipeline.units import KM_PER_MILE

    assert KM_PER_MILE == 1.609344 and readers.KM_PER_MILE is KM_PER_MILE
    for name in readers.__all__:
        assert getattr(readers, name) is not None
    assert data_pipeline.read_acn_sessions is readers.read_acn_sessions
    assert data_pipeline.read_tlc_trips is readers.read_tlc_trips


def test_melbourne_cut():
    """tests/fixtures/ev_charging_charged_melbourne: stations 1, 10, 2 (file order) x 72 hours."""
    cv = read_melbourne_charging(MELBOURNE_FIXTURE)
    r = cv.report
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (72, 72, 0)
    assert list(cv.volume_kwh.columns) == [1, 2, 10]  # numeric order, not the file's string order 1, 10, 2
    assert list(cv.busy_hours.columns) == [1, 2, 10] and list(cv.stations.index) == [1, 2, 10]
    assert cv.volume_kwh.index[0] == pd.Timestamp("2023-04-01 00:00") and cv.volume_kwh.index[-1] == pd.Timestamp(
        "2023-04-03 23:00")
    assert cv.volume_kwh.sum().tolist() == pytest.approx([2988.3333333333, 187.25, 781.0])
    # hand-checked cells: station 10 at 03:00 on 1 April, station 2 at midnight (volume and duration)
    assert cv.volume_kwh.loc["2023-04-01 03:00", 10] == 3.6666666666666665
    assert cv.volume_kwh.loc["2023-04-01 00:00", 2] == pytest.approx(7.0)
    assert cv.busy_hours.loc["2023-04-01 03:00", 10] == pytest.approx(0.1666666666666666)
    assert cv.stations.loc[10, ["lat", "lon"]].tolist() == [-37.7236235654, 144.920987406]
    assert cv.stations.piles.tolist() == [1, 1, 1]


def test_melbourne_reject_reasons_on_the_cut(tmp_path):
    """Each hourly-row reject reason, on copies of the cut with one row broken each way."""
    vol = (MELBOURNE_FIXTURE / "volume.csv").read_text().splitlines()
    dur = (MELBOURNE_FIXTURE / "duration.csv").read_text().splitlines()
    (tmp_path / "stations.csv").write_text((MELBOURNE_FIXTURE / "stations.csv").read_text())
    vol[3] = vol[3].replace("0.0,", "nan,", 1)                      # data row 2: non_finite_value
    dur[5] = dur[5].rsplit(",", 1)[0] + ",-1.0"                    # data row 4: negative_value
    vol[7] = "not a time," + vol[7].split(",", 1)[1]                # data row 6: missing_timestamp
    vol.append(vol[10])                                             # row 72 repeats data row 9: duplicate
    dur.append(dur[10])
    (tmp_path / "volume.csv").write_text("\n".join(vol) + "\n")
    (tmp_path / "duration.csv").write_text("\n".join(dur) + "\n")
    cv = read_melbourne_charging(tmp_path)
    r = cv.report
    assert r.rows_read == 73 and r.rows_accepted == 69 and len(cv.volume_kwh) == 69
    assert dict(zip(r.rejected.row, r.rejected.reason)) == {
        2: "non_finite_value", 4: "negative_value", 6: "missing_timestamp", 72: "duplicate"}
    (tmp_path / "duration.csv").write_text("\n".join(dur[:-2]) + "\n")
    with pytest.raises(DataError, match="rows"):
        read_melbourne_charging(tmp_path)
    (tmp_path / "stations.csv").write_text((MELBOURNE_FIXTURE / "stations.csv").read_text().splitlines()[0] + "\n")
    (tmp_path / "duration.csv").write_text("\n".join(dur) + "\n")
    with pytest.raises(DataError, match="no row in stations.csv"):
        read_melbourne_charging(tmp_path)


@pytest.mark.slow
def test_melbourne(shared_data):
    cv = read_melbourne_charging(shared_data / "ev_charging_charged_melbourne")
    assert cv.report.rows_read == 4392
    assert cv.report.rows_accepted + cv.report.rows_rejected == 4392
    assert list(cv.volume_kwh.columns) == sorted(cv.volume_kwh.columns)  # numeric order, not string order
    assert cv.volume_kwh.shape[1] == 63 and len(cv.stations) == 63
    assert (cv.volume_kwh.to_numpy() >= 0).all()


def test_shenzhen_cut():
    """tests/fixtures/shenzhen_charging_zones_st_evcdp: zones 1061 - 202 - 204 - 1168, a path of neighbours."""
    sz = read_shenzhen_zones(SHENZHEN_FIXTURE)
    z = sz.zones
    assert z.index.tolist() == [202, 204, 1061, 1168]  # information.csv order
    assert z.piles.tolist() == [57, 57, 122, 43] and z.piles.sum() == 279
    assert z.fast_piles.tolist() == [0, 0, 0, 12] and z.cbd.tolist() == [True, True, True, False]
    assert z.loc[1168, ["lat", "lon", "area_km2"]].tolist() == [22.57147, 114.0487, 1.43]
    # distance.csv lists its columns as 202, 204, 1061, 1168 too; adjacent pairs only, symmetric
    expected = np.zeros((4, 4))
    for a, b, km in ((0, 1, 1.2311499616403738), (0, 2, 1.103140177504265), (1, 3, 1.6392827221129282)):
        expected[a, b] = expected[b, a] = km
    assert np.array_equal(sz.adjacent_km, expected)
    rm = sz.region_map(circuity=1.0)
    adj = sz.adjacent_km > 0
    assert np.allclose(sz.adjacent_km[adj], rm.distance_km[adj], rtol=0.01)  # centroid great-circle km


def test_shenzhen_cut_reordered_and_broken(tmp_path):
    """distance.csv rows/columns are matched to information.csv by TAZ id; mismatches are named."""
    info = (SHENZHEN_FIXTURE / "information.csv").read_text().splitlines()
    dist = (SHENZHEN_FIXTURE / "distance.csv").read_text().splitlines()
    (tmp_path / "information.csv").write_text("\n".join([info[0]] + info[1:][::-1]) + "\n")  # reversed rows
    (tmp_path / "distance.csv").write_text("\n".join(dist) + "\n")
    sz = read_shenzhen_zones(tmp_path)
    assert sz.zones.index.tolist() == [1168, 1061, 204, 202]
    assert sz.adjacent_km[0, 2] == pytest.approx(1.6392827221129282)  # 1168 - 204
    assert sz.adjacent_km[1, 3] == pytest.approx(1.103140177504265)   # 1061 - 202
    (tmp_path / "information.csv").write_text("\n".join(info[:-1]) + "\n")  # 1168 dropped
    with pytest.raises(DataError, match=r"only in distance: \[[^]]*1168"):
        read_shenzhen_zones(tmp_path)
    (tmp_path / "information.csv").write_text("\n".join(info) + "\n")
    (tmp_path / "distance.csv").write_text("\n".join(dist[:-1]) + "\n")
    with pytest.raises(DataError, match="square"):
        read_shenzhen_zones(tmp_path)


@pytest.mark.slow
def test_shenzhen(shared_data):
    sz = read_shenzhen_zones(shared_data / "shenzhen_charging_zones_st_evcdp")
    assert len(sz.zones) == 247 and sz.adjacent_km.shape == (247, 247)
    assert sz.zones.piles.sum() == 18_061
    rm = sz.region_map(circuity=1.0)
    adj = sz.adjacent_km > 0
    assert 0 < adj.mean() < 0.05 and np.array_equal(adj, adj.T)
    # the adjacent-pair distances of the file are centroid great-circle distances
    assert np.allclose(sz.adjacent_km[adj], rm.distance_km[adj], rtol=0.01)


def test_acn_sessions_to_charging_panels(acn_file):
    from data_pipeline.panels import charging_panels

    ing = read_acn_sessions(acn_file.path, period=("2021-06-01", "2021-06-30"))
    f = ing.frame
    assert len(f) == acn_file.june and ing.report.by_reason["outside_period"] == acn_file.sessions - acn_file.june
    assert f.connect_time.dt.month.eq(6).all()
    stations = sorted(f.station_id.unique())
    # each EVSE its own region: a station serves one session at a time, so occupancy never exceeds 1
    p = charging_panels(f, pd.Series(range(len(stations)), index=stations), np.arange(len(stations)),
                        "2021-06-01", "2021-07-15", 15)
    assert p["charging_arrivals"].total() == len(f)  # every accepted session counted once
    occ = p["occupancy"].values
    assert occ.max() <= 1 + 1e-9
    minutes = (f.disconnect_time - f.connect_time).dt.total_seconds().sum() / 60
    assert occ.sum() * 15 == pytest.approx(minutes, rel=1e-9)  # panel covers every session to its end
