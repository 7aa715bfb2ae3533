#!/usr/bin/env python
"""Benchmark: our NYC trip ingest + demand/supply panels against an equivalent DuckDB ``GROUP BY``.

Run from the repository root::

    .venv/bin/python benchmarks/bench_ingest.py                 # 5 timed repeats after 1 warm-up
    .venv/bin/python benchmarks/bench_ingest.py --repeats 10    # more repeats on a noisy machine
    .venv/bin/python benchmarks/bench_ingest.py --profile       # also print a cProfile of our path
    .venv/bin/python benchmarks/bench_ingest.py --synthetic-rows 20000000 --json out/ingest20M.json

With ``--synthetic-rows N`` (the scale benchmark, issue 19) the input is N yellow-format trips over
a year in 12 monthly files from ``benchmarks/synth_tlc.py`` (generated once, cached), and:

* **ours** = the streamed path ``count_tlc_trips(files, zones, period, slot_minutes=15)`` +
  ``.panels(regions)``, run in a *child process* (``--child``) so that its peak resident memory
  (``ru_maxrss``) is ours alone; timed from the call to the panels (imports and the zone table excluded);
* **DuckDB** = the same SQL as below on the yellow columns, in this process, all cores;
* panels compared cell by cell; the reject report must balance and match the injected rejects per
  reason (manifest of the generator; accidental duplicates of the resampling excepted).

JSON keys: ``rows``, ``seconds``, ``duckdb_seconds``, ``ratio``, ``rows_per_s``, ``peak_rss_mb``,
``report`` (rows_read/accepted/rejected, by reason), ``injected``, ``batch_rows``, ``load``.

What is timed (best of N after one warm-up, same process, ``time.perf_counter``):

* **ours**: ``read_tlc_trips(files, zones, period)`` + ``trip_panels(frame, regions, ..., 15)`` on the
  three bundled green-taxi months (2021-01..03).  Zone table and RegionMap are built once, untimed.
* **DuckDB**: one SQL statement that reads the same parquet files, applies the acceptance rules of
  ``data_pipeline.readers.validate_trips`` and counts pick-ups and drop-offs ``GROUP BY day, slot,
  region`` (result fetched to numpy).  The zone -> region table is registered once, untimed.
  Timed with ``threads`` = the machine's core count and with 1 thread.

The DuckDB counts are scattered into ``(n_days, 96, n_regions)`` arrays (via ``RegionMap.region_of``)
and asserted equal to our panels cell by cell; the script exits non-zero if they differ.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

try:
    import duckdb
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("duckdb is not installed: .venv/bin/pip install duckdb")

from data_pipeline import RegionMap, read_tlc_trips, trip_panels
from data_pipeline.readers import (
    TLC_FORMATS,
    canonical_trips,
    detect_tlc_format,
    read_table,
    table_columns,
    validate_trips,
)
from data_pipeline.readers import count_tlc_trips
from data_pipeline.units import KM_PER_MILE
from drbalance import datasets

FIRST_DAY, LAST_DAY = "2021-01-01", "2021-03-31"
SLOT_MINUTES = 15
MAX_TRIP_MINUTES = 360.0


# ----------------------------------------------------------------------------------------- our path

def ours(files, zones, regions):
    ing = read_tlc_trips(files, zones, period=(FIRST_DAY, LAST_DAY), max_trip_minutes=MAX_TRIP_MINUTES)
    panels = trip_panels(ing.frame, regions, FIRST_DAY, LAST_DAY, SLOT_MINUTES)
    return ing, panels


# The stages of read_tlc_trips, called one by one (same private functions, same order), for the breakdown.
def stage_read(files):
    raws, specs = [], []
    for p in files:
        spec = TLC_FORMATS[detect_tlc_format(table_columns(p), str(p))]
        raws.append(read_table(p, columns=spec.required()))
        specs.append(spec)
    return raws, specs


def stage_canonical(files, raws, specs):
    parts = [canonical_trips(raw, spec, p.name) for p, raw, spec in zip(files, raws, specs)]
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def stage_validate(trips, zones):
    return validate_trips(trips, zones, (FIRST_DAY, LAST_DAY), MAX_TRIP_MINUTES, True)


def stage_panels(frame, regions):
    return trip_panels(frame, regions, FIRST_DAY, LAST_DAY, SLOT_MINUTES)


# ------------------------------------------------------------------------------------------- DuckDB

def duckdb_sql(files, prefix: str = "lpep", first_day: str = FIRST_DAY, last_day: str = LAST_DAY) -> str:
    """Same acceptance rules as validate_trips (first reason wins there, but only acceptance matters here).

    * period on pick-up: [FIRST_DAY, LAST_DAY + 1 day); NULL timestamps fail the comparison (missing_timestamp);
    * both zones in ``zone_region`` (zone ids of the zone frame with non-null lat/lon; the table maps each
      zone to its region anchor = zones['location_from'], so 57 -> 56, 104/105 -> 103); the inner join also
      drops NULL zones (missing_zone), unknown ids and 264/265 (zone_without_location);
    * duration: ours truncates (dropoff - pickup) to whole seconds, then needs 0 < seconds/60 <= 360;
      integer ``//`` on the positive microsecond difference is that same truncation (negative differences
      are rejected either way);
    * distance in km finite and >= 0 (NULL fails isfinite); fare not < 0 (NULL/NaN fares are accepted,
      as ``NaN < 0`` is False in numpy);
    * duplicates on (pickup, dropoff, PU, DO, distance_km) among otherwise-accepted rows: DISTINCT (which
      copy is kept cannot change the counts: every counted field is in the key).
    """
    file_list = ", ".join(f"'{str(p)}'" for p in files)
    n_slots = 1440 // SLOT_MINUTES
    slot_us = SLOT_MINUTES * 60 * 1_000_000
    return f"""
WITH raw AS (
    SELECT {prefix}_pickup_datetime AS pu_t, {prefix}_dropoff_datetime AS do_t,
           PULocationID AS pu_z, DOLocationID AS do_z,
           trip_distance * {KM_PER_MILE!r} AS dist_km, fare_amount AS fare
    FROM read_parquet([{file_list}])
),
accepted AS (
    SELECT DISTINCT r.pu_t, r.do_t, r.pu_z, r.do_z, r.dist_km, zp.region AS pu_r, zd.region AS do_r
    FROM raw r
    JOIN zone_region zp ON r.pu_z = zp.zone
    JOIN zone_region zd ON r.do_z = zd.zone
    WHERE r.pu_t >= TIMESTAMP '{first_day}' AND r.pu_t < TIMESTAMP '{last_day}' + INTERVAL 1 DAY
      AND (epoch_us(r.do_t) - epoch_us(r.pu_t)) // 1000000 > 0
      AND (epoch_us(r.do_t) - epoch_us(r.pu_t)) // 1000000 <= {int(MAX_TRIP_MINUTES * 60)}
      AND isfinite(r.dist_km) AND r.dist_km >= 0
      AND NOT coalesce(r.fare < 0, false)
),
events AS (
    SELECT 0 AS q, (epoch_us(pu_t) - epoch_us(TIMESTAMP '{first_day}')) // {slot_us} AS slot_abs, pu_r AS region
    FROM accepted
    UNION ALL
    SELECT 1 AS q, (epoch_us(do_t) - epoch_us(TIMESTAMP '{first_day}')) // {slot_us} AS slot_abs, do_r AS region
    FROM accepted
)
SELECT q, slot_abs // {n_slots} AS day, slot_abs % {n_slots} AS slot, region, count(*) AS n
FROM events
WHERE slot_abs >= 0 AND slot_abs < {n_slots} * (DATE '{last_day}' - DATE '{first_day}' + 1)
GROUP BY q, day, slot, region
"""


def zone_region_table(zones: pd.DataFrame) -> pd.DataFrame:
    """Located zones -> region anchor zone id (``location_from``; -1 there means the zone itself)."""
    located = zones[zones["lat"].notna() & zones["lon"].notna()]
    anchor = located["location_from"].to_numpy()
    anchor = np.where(anchor == -1, located.index.to_numpy(), anchor)
    return pd.DataFrame({"zone": located.index.to_numpy().astype(np.int64), "region": anchor.astype(np.int64)})


def run_duckdb(con, sql):
    return con.execute(sql).fetchnumpy()


def duckdb_arrays(res, regions, n_days):
    """Scatter the GROUP BY rows into two dense (n_days, n_slots, n_regions) arrays (demand, supply)."""
    n_slots = 1440 // SLOT_MINUTES
    out = np.zeros((2, n_days, n_slots, regions.n))
    pos = regions.region_of(np.asarray(res["region"]))
    if (pos < 0).any():
        raise AssertionError("DuckDB produced a region id that is not in the RegionMap")
    out[np.asarray(res["q"]), np.asarray(res["day"]), np.asarray(res["slot"]), pos] = np.asarray(res["n"])
    return out[0], out[1]


# ------------------------------------------------------------------------------------------ helpers

def best_of(fn, repeats):
    """Run once (warm-up), then ``repeats`` timed runs; return (times, last result)."""
    result = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return times, result


def fmt(times):
    t = np.asarray(times)
    return f"best {t.min():8.4f} s   median {np.median(t):8.4f} s   max {t.max():8.4f} s"


def load_average():
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average n/a"


# --------------------------------------------------------------------- synthetic scale (issue 19)

def child(folder: Path, out: Path, batch_rows: int, profile: bool) -> int:
    """Our streamed path on the generated files; writes panels (npz) and timings (json) to ``out``."""
    import resource

    man = json.loads((folder / "manifest.json").read_text())
    files = [folder / f for f in man["files"]]
    first, last = man["period"]
    zones = datasets.load_nyc_zones()
    regions = RegionMap.from_zones(zones, 1.3)
    pr = cProfile.Profile() if profile else None
    t = time.perf_counter()
    if pr:
        pr.enable()
    counts = count_tlc_trips(files, zones, (first, last), slot_minutes=SLOT_MINUTES,
                             max_trip_minutes=MAX_TRIP_MINUTES, batch_rows=batch_rows)
    panels = counts.panels(regions, first, last)
    if pr:
        pr.disable()
    seconds = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    np.savez(out.with_suffix(".npz"), demand=panels["demand"].values, supply=panels["supply"].values)
    rep = counts.report
    rep.check()
    out.write_text(json.dumps({"seconds": seconds, "peak_rss_mb": rss, "report": rep.to_dict(),
                               "supply_outside": panels["supply"].outside}))
    if pr:
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(15)
        print(s.getvalue())
    return 0


def synthetic(args) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import synth_tlc

    cores = os.cpu_count() or 1
    t = time.perf_counter()
    files, man = synth_tlc.generate(args.synthetic_rows, args.seed)
    print(f"synthetic files: {len(files)} in {files[0].parent} ({time.perf_counter() - t:.0f} s incl. generation)")
    first, last = man["period"]
    zones = datasets.load_nyc_zones()
    regions = RegionMap.from_zones(zones, 1.3)
    n_days = len(pd.date_range(first, last, freq="D"))
    load0 = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ours.json"
        cmd = [sys.executable, __file__, "--child", str(files[0].parent), "--child-out", str(out),
               "--batch-rows", str(args.batch_rows)] + (["--profile"] if args.profile else [])
        subprocess.run(cmd, check=True)
        mine = json.loads(out.read_text())
        arrays = np.load(out.with_suffix(".npz"))
        dem, sup = arrays["demand"], arrays["supply"]
    con = duckdb.connect()
    con.execute(f"SET threads = {cores}")
    con.register("zone_region_df", zone_region_table(zones))
    con.execute("CREATE TABLE zone_region AS SELECT * FROM zone_region_df")
    sql = duckdb_sql(files, "tpep", first, last)
    t = time.perf_counter()
    res = run_duckdb(con, sql)
    t_duck = time.perf_counter() - t
    con.close()
    d_dem, d_sup = duckdb_arrays(res, regions, n_days)
    for name, a, b in (("demand", dem, d_dem), ("supply", sup, d_sup)):
        if a.shape != b.shape or not np.array_equal(a, b):
            raise AssertionError(f"{name} panel differs from DuckDB: totals {a.sum():.0f} vs {b.sum():.0f}")
    rep = mine["report"]
    assert rep["rows_accepted"] + rep["rows_rejected"] == rep["rows_read"] == args.synthetic_rows
    assert d_dem.sum() == rep["rows_accepted"], "DuckDB accepted count differs from ours"
    summary = {
        "rows": rep["rows_read"], "seconds": mine["seconds"], "duckdb_seconds": t_duck,
        "ratio": mine["seconds"] / t_duck, "rows_per_s": rep["rows_read"] / mine["seconds"],
        "peak_rss_mb": mine["peak_rss_mb"], "duckdb_threads": cores, "batch_rows": args.batch_rows,
        "report": rep, "injected": man["injected"], "files": len(files),
        "panel_shape": list(dem.shape), "load": [load0, load_average()],
    }
    print(f"rows {summary['rows']:,}: ours {summary['seconds']:.2f} s ({summary['rows_per_s']:,.0f} rows/s, "
          f"peak RSS {summary['peak_rss_mb']:.0f} MB), DuckDB ({cores} threads) {t_duck:.2f} s, "
          f"ratio {summary['ratio']:.2f}; panels equal cell by cell")
    print(f"reject report: {rep['rows_read']:,} read = {rep['rows_accepted']:,} accepted + "
          f"{rep['rows_rejected']:,} rejected")
    for k, v in rep["rejected_by_reason"].items():
        print(f"  {k:26s}{v:>12,d}   injected {man['injected'].get(k, 0):>12,d}")
    print(f"{load0} -> {load_average()}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats after one warm-up (default 5)")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of our path (top functions)")
    ap.add_argument("--synthetic-rows", type=int, default=None,
                    help="scale mode: N generated yellow-format trips over a year (benchmarks/synth_tlc.py)")
    ap.add_argument("--seed", type=int, default=0, help="generator seed (scale mode)")
    ap.add_argument("--batch-rows", type=int, default=1_000_000, help="record batch size of ours (scale mode)")
    ap.add_argument("--json", type=Path, default=None, help="write the summary JSON here")
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        return child(args.child, args.child_out, args.batch_rows, args.profile)
    if args.synthetic_rows is not None:
        return synthetic(args)
    n_rep = max(1, args.repeats)

    cores = os.cpu_count() or 1
    print(f"drbalance ingest benchmark: NYC green taxi {FIRST_DAY}..{LAST_DAY}, {SLOT_MINUTES}-min slots")
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__}, "
          f"duckdb {duckdb.__version__}; {cores} cores; {load_average()} (start)")

    # Untimed setup shared by both sides.
    zones = datasets.load_nyc_zones()
    files = datasets.nyc_green_trip_files()
    regions = RegionMap.from_zones(zones, 1.3)
    n_days = len(pd.date_range(FIRST_DAY, LAST_DAY, freq="D"))

    # ---- ours
    t_ours, (ing, panels) = best_of(lambda: ours(files, zones, regions), n_rep)
    rows = ing.report.rows_read
    accepted = ing.report.rows_accepted

    # ---- DuckDB (same counts), all cores and single thread
    sql = duckdb_sql(files)
    zr = zone_region_table(zones)
    t_duck = {}
    for threads in sorted({cores, 1}, reverse=True):
        con = duckdb.connect()
        con.execute(f"SET threads = {threads}")
        con.register("zone_region_df", zr)
        con.execute("CREATE TABLE zone_region AS SELECT * FROM zone_region_df")
        t_duck[threads], res = best_of(lambda: run_duckdb(con, sql), n_rep)
        con.close()
    t_dense, (d_dem, d_sup) = best_of(lambda: duckdb_arrays(res, regions, n_days), n_rep)

    # ---- correctness: cell by cell
    for name, mine, theirs in (("demand", panels["demand"].values, d_dem), ("supply", panels["supply"].values, d_sup)):
        if mine.shape != theirs.shape or not np.array_equal(mine, theirs):
            diff = np.argwhere(mine != theirs) if mine.shape == theirs.shape else []
            raise AssertionError(
                f"{name} panel differs from DuckDB: shapes {mine.shape} vs {theirs.shape}; "
                f"{len(diff)} cells differ (first [day, slot, region]: {diff[:5].tolist() if len(diff) else '-'}); "
                f"totals {mine.sum():.0f} vs {theirs.sum():.0f}")
    assert d_dem.sum() + panels["demand"].outside == accepted, "DuckDB accepted count differs from ours"

    # ---- breakdown of our time (the stages of read_tlc_trips, then trip_panels)
    t_read, (raws, specs) = best_of(lambda: stage_read(files), n_rep)
    t_canon, trips = best_of(lambda: stage_canonical(files, raws, specs), n_rep)
    t_valid, ing2 = best_of(lambda: stage_validate(trips, zones), n_rep)
    t_pan, _ = best_of(lambda: stage_panels(ing2.frame, regions), n_rep)
    import pyarrow.parquet as pq
    cols = TLC_FORMATS["green"].required()
    t_arrow, _ = best_of(lambda: [pq.read_table(p, columns=cols) for p in files], n_rep)

    best_ours = min(t_ours)
    print(f"{load_average()} (end)")
    print()
    print(f"rows read              {rows:>10,d}   (3 parquet files)")
    print(f"rows accepted          {accepted:>10,d}   (rejected {ing.report.rows_rejected:,d}: "
          + ", ".join(f"{k} {v}" for k, v in ing.report.by_reason.items() if v) + ")")
    print(f"panel cells            {d_dem.size:>10,d} x 2   demand {d_dem.sum():,.0f}, supply {d_sup.sum():,.0f} "
          f"(+{panels['supply'].outside} drop-offs after {LAST_DAY})")
    print("check                  DuckDB counts == our panels, cell by cell: OK")
    print()
    print(f"timings, {n_rep} repeats after 1 warm-up:")
    print(f"  ours (read_tlc_trips + trip_panels)    {fmt(t_ours)}")
    for threads, t in t_duck.items():
        print(f"  DuckDB, {threads} thread{'s' if threads > 1 else ' '}                       {fmt(t)}")
    print(f"  (DuckDB rows -> dense arrays, numpy)   {fmt(t_dense)}   [not in the ratio]")
    print()
    print(f"{'':24s}{'seconds':>10s}{'rows/s':>14s}{'ours/DuckDB':>14s}")
    print(f"{'ours':24s}{best_ours:10.4f}{rows / best_ours:14,.0f}{'':>14s}")
    for threads, t in t_duck.items():
        b = min(t)
        label = f"DuckDB {threads} thread{'s' if threads > 1 else ''}"
        print(f"{label:24s}{b:10.4f}{rows / b:14,.0f}{best_ours / b:14.2f}")
    ratio = best_ours / min(t_duck[cores])
    worst = best_ours / min(min(t) for t in t_duck.values())
    print(f"ratio ours / DuckDB ({cores} threads) = {ratio:.2f}   (goal <= 2: {'met' if ratio <= 2 else 'NOT met'}); "
          f"vs the fastest DuckDB setting = {worst:.2f}")
    print()
    print("breakdown of ours (each stage timed alone, best of N):")
    stages = [
        ("read parquet (pyarrow read + to_pandas)", t_read),
        ("  of which pyarrow read_table only", t_arrow),
        ("canonical frame (canonical_trips+concat)", t_canon),
        ("validate (validate_trips)", t_valid),
        ("panels (trip_panels)", t_pan),
    ]
    total = min(t_read) + min(t_canon) + min(t_valid) + min(t_pan)
    for label, t in stages:
        print(f"  {label:44s}{min(t):8.4f} s  {100 * min(t) / total:5.1f} %")
    print(f"  {'sum of stages':44s}{total:8.4f} s  (end-to-end best {best_ours:.4f} s)")

    if args.profile:
        print()
        print("cProfile of ours (5 runs), top 25 by cumulative time:")
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(5):
            ours(files, zones, regions)
        pr.disable()
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(25)
        print(s.getvalue())
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(20)
        print("top 20 by own time:")
        print(s.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
