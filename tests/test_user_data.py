"""A user's own NYC TLC download: a folder with only the trip parquet files and the official
``taxi_zone_lookup.csv`` (no centroid file) runs ``estimate``, ``simulate`` and ``evaluate`` on the
bundled TLC centroids; and the errors a user meets name the real cause (missing trip file, a lookup id
without a centroid, every row rejected)."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from data_pipeline.readers import read_nyc_zones
from drbalance import datasets
from drbalance.cli import main
from drbalance.commands.common import read_zones
from drbalance.errors import DataError
from drbalance.study import describe_rejects

#: (bundled month, first pick-up day kept, day after the last kept): two training weeks and 3 March days
CUTS = (("2021-02", "2021-02-15", "2021-03-01"), ("2021-03", "2021-03-01", "2021-03-04"))


def _write_official_lookup(path: Path, extra_rows: tuple = ()) -> Path:
    """The TLC lookup as TLC publishes it: quoted text fields, bare LocationIDs."""
    with open(datasets.nyc_zone_lookup(), newline="") as f:
        rows = list(csv.reader(f))
    rows = [rows[0]] + [[int(r[0]), *r[1:]] for r in rows[1:]] + [list(r) for r in extra_rows]
    with open(path, "w", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_NONNUMERIC).writerows(rows)
    return path


def _cut_month(month: str, lo: str, hi: str) -> pa.Table:
    t = pq.read_table(datasets.nyc_green_folder() / f"green_tripdata_{month}.parquet")
    col = t["lpep_pickup_datetime"]
    keep = pc.and_(pc.greater_equal(col, pa.scalar(datetime.fromisoformat(lo), col.type)),
                   pc.less(col, pa.scalar(datetime.fromisoformat(hi), col.type)))
    return t.filter(keep)


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory) -> Path:
    """TLC green-taxi parquet files (the TLC's own layout, cut to 2021-02-15..2021-03-03) and the lookup."""
    folder = tmp_path_factory.mktemp("my_tlc_download")
    for month, lo, hi in CUTS:
        pq.write_table(_cut_month(month, lo, hi), folder / f"green_tripdata_{month}.parquet")
    _write_official_lookup(folder / "taxi_zone_lookup.csv")
    assert sorted(p.name for p in folder.iterdir()) == [
        "green_tripdata_2021-02.parquet", "green_tripdata_2021-03.parquet", "taxi_zone_lookup.csv"]
    return folder


def _trips(folder: Path) -> list[str]:
    return [str(folder / f"green_tripdata_{m}.parquet") for m, _, _ in CUTS]


def test_user_download_runs_estimate_simulate_evaluate_on_bundled_centroids(user_folder, tmp_path, capsys):
    bundled = str(datasets.nyc_zone_centroids())
    trips = _trips(user_folder)
    rc = main(["estimate", *trips, "--train", "2021-02-15:2021-02-28", "--heldout", "2021-03-01:2021-03-03",
               "--slot-minutes", "60", "--horizon", "2", "--regions", "4", "--bootstrap", "20",
               "--out", str(tmp_path / "est"), "--json", str(tmp_path / "est.json")])
    assert rc == 0
    est = json.loads((tmp_path / "est.json").read_text())
    assert est["rows_accepted"] > 0 and est["n_days_train"] == 14 and est["n_days_heldout"] == 3
    cfg = est["config"]
    assert cfg["zones"] == str(user_folder / "taxi_zone_lookup.csv")
    assert cfg["centroids"] == bundled and cfg["centroids_source"] == "bundled"
    assert json.loads((tmp_path / "est" / "config.json").read_text())["centroids_source"] == "bundled"
    assert "bundled TLC centroids" in capsys.readouterr().out

    rc = main(["simulate", *trips, "--day", "2021-03-02", "--fleet", "60", "--policy", "greedy",
               "--regions", "4", "--hours", "2", "--json", str(tmp_path / "sim.json")])
    assert rc == 0
    sim = json.loads((tmp_path / "sim.json").read_text())
    assert sim["requests"] > 0 and sim["served"] + sim["unserved"] == sim["requests"]
    assert sim["config"]["centroids"] == bundled and sim["config"]["centroids_source"] == "bundled"
    assert "bundled TLC centroids" in capsys.readouterr().out

    rc = main(["evaluate", *trips, "--train", "2021-02-15:2021-02-28", "--days", "2021-03-02", "--fleet", "60",
               "--policies", "noop,greedy,nominal", "--regions", "4", "--hours", "2", "--bootstrap", "20",
               "--json", str(tmp_path / "ev.json")])
    assert rc == 0
    ev = json.loads((tmp_path / "ev.json").read_text())
    assert set(ev["policies"]) == {"noop", "greedy", "nominal"}
    assert ev["extra"]["centroids"] == bundled and ev["extra"]["centroids_source"] == "bundled"
    assert "bundled TLC centroids" in capsys.readouterr().out


def test_bundled_fallback_gives_the_bundled_zone_frame(user_folder):
    """Same LocationIDs, same centroids: the user's lookup with the fallback equals the bundled zone frame
    (57/104/105 through the same-name rule, 264/265 without location); the bundled folder keeps using
    the file beside its lookup."""
    mine = read_nyc_zones(user_folder / "taxi_zone_lookup.csv")
    ref = datasets.load_nyc_zones()
    assert mine.attrs["centroids_source"] == "bundled" and ref.attrs["centroids_source"] == "beside_lookup"
    pd.testing.assert_frame_equal(mine, ref)
    assert mine.loc[[57, 104, 105], "location_from"].tolist() == [56, 103, 103]
    assert mine.loc[[264, 265], "lat"].isna().all()
    given = read_nyc_zones(user_folder / "taxi_zone_lookup.csv", datasets.nyc_zone_centroids())
    assert given.attrs["centroids_source"] == "given"


def test_lookup_id_unknown_to_bundled_centroids_is_named(tmp_path, capsys):
    lookup = _write_official_lookup(tmp_path / "taxi_zone_lookup.csv",
                                    [(266, "Queens", "New Zone", "Boro Zone"), (300, "Bronx", "Other", "Boro Zone")])
    with pytest.raises(DataError, match=r"LocationID \[266, 300\].*--centroids PATH"):
        read_nyc_zones(lookup)
    trip = tmp_path / "green_tripdata_2021-03.parquet"
    pq.write_table(_cut_month("2021-03", "2021-03-01", "2021-03-02"), trip)
    rc = main(["simulate", str(trip), "--day", "2021-03-01", "--fleet", "10", "--policy", "noop"])
    err = capsys.readouterr().err
    assert rc == 1 and "[266, 300]" in err and "--centroids" in err and err.count("\n") == 1
    # a centroid table covering them makes it run; it is recorded as given
    cen = pd.read_csv(datasets.nyc_zone_centroids())
    extra = pd.DataFrame({"LocationID": [266, 300], "lon_wgs84": [-73.85, -73.9], "lat_wgs84": [40.7, 40.85],
                          "area_km2": [1.0, 1.0]})
    pd.concat([cen, extra], ignore_index=True).to_csv(tmp_path / "my_centroids.csv", index=False)
    zones = read_zones([trip], None, tmp_path / "my_centroids.csv")
    assert zones.loc[[266, 300], "lat"].notna().all() and zones.attrs["centroids_source"] == "given"
    rc = main(["simulate", str(trip), "--centroids", str(tmp_path / "my_centroids.csv"), "--day", "2021-03-01",
               "--fleet", "10", "--policy", "noop", "--regions", "3", "--hours", "1",
               "--json", str(tmp_path / "s.json")])
    assert rc == 0
    assert json.loads((tmp_path / "s.json").read_text())["config"]["centroids"] == str(tmp_path / "my_centroids.csv")
    rc = main(["estimate", str(trip), "--centroids", str(tmp_path / "nope.csv"), "--train", "2021-03-01:2021-03-01",
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1 and "nope.csv not found" in err


@pytest.mark.parametrize("command", [
    ["estimate", "--train", "2021-02-15:2021-02-28", "--out", "{tmp}/o"],
    ["simulate", "--day", "2021-03-02", "--fleet", "10"],
    ["evaluate", "--train", "2021-02-15:2021-02-28", "--days", "2021-03-02"],
])
def test_missing_trip_file_is_named(user_folder, tmp_path, capsys, command):
    missing = user_folder / "green_tripdata_2021-04.parquet"
    name, *opts = command
    rc = main([name, str(missing), *_trips(user_folder), *[o.format(tmp=tmp_path) for o in opts]])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1
    assert f"trip file {missing} not found" in err and "zone lookup" not in err
    rc = main([name, str(user_folder), *[o.format(tmp=tmp_path) for o in opts]])   # the folder itself
    err = capsys.readouterr().err
    assert rc == 1 and "is a folder" in err and "*.parquet" in err


def test_every_row_rejected_gives_the_breakdown(tmp_path, capsys):
    t = _cut_month("2021-03", "2021-03-01", "2021-03-03").to_pandas()
    t["PULocationID"] = t["PULocationID"].where(t["fare_amount"] < 0, 264)   # "Unknown": no location
    folder = tmp_path / "bad"
    folder.mkdir()
    t.to_parquet(folder / "green_tripdata_2021-03.parquet", index=False)
    _write_official_lookup(folder / "taxi_zone_lookup.csv")
    trip = str(folder / "green_tripdata_2021-03.parquet")
    n = len(t)
    for args in (["estimate", trip, "--train", "2021-03-01:2021-03-02", "--out", str(tmp_path / "o")],
                 ["simulate", trip, "--day", "2021-03-02", "--fleet", "10", "--policy", "noop"],
                 ["evaluate", trip, "--train", "2021-02-01:2021-02-28", "--days", "2021-03-02"]):
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert f"all {n:,} rows rejected: zone_without_location " in err, err
        assert "negative_fare" in err or "duration" in err, err

    # a day without accepted trips (others accepted) quotes the breakdown too
    rc = main(["simulate", str(_write_cut(tmp_path)), "--day", "2021-03-05", "--fleet", "10", "--policy", "noop"])
    err = capsys.readouterr().err
    assert rc == 1 and "no accepted trip has its pick-up on 2021-03-05 (reading:" in err and "rows rejected:" in err


def _write_cut(tmp_path: Path) -> Path:
    folder = tmp_path / "ok"
    folder.mkdir()
    pq.write_table(_cut_month("2021-03", "2021-03-01", "2021-03-03"), folder / "green_tripdata_2021-03.parquet")
    _write_official_lookup(folder / "taxi_zone_lookup.csv")
    return folder / "green_tripdata_2021-03.parquet"


def test_describe_rejects():
    assert describe_rejects({"negative_fare": 34, "duplicate": 0, "zone_without_location": 1200}, 1234) == \
        "all 1,234 rows rejected: zone_without_location 1,200, negative_fare 34"
    assert describe_rejects({"outside_period": 5}, 10) == "5 of 10 rows rejected: outside_period 5"
    assert describe_rejects({"outside_period": 0}) == "" and describe_rejects(None) == ""


def test_evaluate_with_an_empty_training_period_quotes_the_rejects(user_folder, capsys):
    """Training dates outside the files: evaluate's error names the period and the reject breakdown
    (here every row lies outside the requested period)."""
    rc = main(["evaluate", *_trips(user_folder), "--train", "2020-01-01:2020-01-31", "--days", "2021-03-02",
               "--fleet", "20", "--policies", "noop"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1
    assert "training period 2020-01-01..2020-01-31" in err and "outside_period" in err
