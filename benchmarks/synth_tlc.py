#!/usr/bin/env python
"""Large realistic NYC TLC *yellow*-format trip files, made by resampling the bundled green months.

No download: the bundled green-taxi trips of 2021-01..03 that pass our checks are the pool.  Each
synthetic trip is one pool trip (its pick-up/drop-off zones, duration, metered distance and fare, so
zone pairs, distances and durations stay realistic) moved to a random day of ``YEAR`` with the same
day type (weekday/weekend) at the same time of day, plus a uniform jitter of +-300 s on the pick-up;
distances get +-5 % noise, rounded to 0.01 mi as TLC meters do.  Then a known share of rows is
corrupted, one reason each (:data:`INJECTED`), so that the row is rejected with exactly that reason.

Files: one per month, ``yellow_tripdata_YEAR-MM.parquet``, with TLC yellow column names and types,
written in row groups of 1,000,000 rows (generation is chunked, so memory stays bounded).  Every draw
comes from ``numpy.random.default_rng(seed)`` (per month: ``[seed, month]``), so a size and seed give
the same files.  Files are cached under ``benchmarks/.cache/synth_tlc/rows{N}_seed{S}/`` with a
``manifest.json`` (rows per file, injected rejects per reason).

    .venv/bin/python benchmarks/synth_tlc.py --rows 1000000 [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from data_pipeline import read_tlc_trips  # noqa: E402
from drbalance import datasets  # noqa: E402

YEAR = 2023
PERIOD = (f"{YEAR}-01-01", f"{YEAR}-12-31")
CACHE = Path(__file__).resolve().parent / ".cache" / "synth_tlc"
ROW_GROUP = 1_000_000

#: Share of rows corrupted per reject reason (the rest, about 95 %, are clean).
INJECTED: dict[str, float] = {
    "missing_timestamp": 0.002, "outside_period": 0.005, "missing_zone": 0.002, "unknown_zone": 0.002,
    "zone_without_location": 0.01, "dropoff_not_after_pickup": 0.004, "duration_too_long": 0.001,
    "non_finite_distance": 0.001, "negative_distance": 0.002, "negative_fare": 0.006, "duplicate": 0.005,
}

SCHEMA = pa.schema([
    ("VendorID", pa.int32()), ("tpep_pickup_datetime", pa.timestamp("us")),
    ("tpep_dropoff_datetime", pa.timestamp("us")), ("passenger_count", pa.float64()),
    ("trip_distance", pa.float64()), ("RatecodeID", pa.float64()), ("store_and_fwd_flag", pa.string()),
    ("PULocationID", pa.int32()), ("DOLocationID", pa.int32()), ("payment_type", pa.int64()),
    ("fare_amount", pa.float64()), ("tip_amount", pa.float64()), ("total_amount", pa.float64()),
])


def pool() -> pd.DataFrame:
    """Accepted bundled trips: pick-up second of day, weekday flag, zones, duration s, miles, fare."""
    zones = datasets.load_nyc_zones()
    fr = read_tlc_trips(datasets.nyc_green_trip_files(), zones, period=("2021-01-01", "2021-03-31")).frame
    pt = fr["pickup_time"]
    return pd.DataFrame({
        "sod": ((pt - pt.dt.normalize()).dt.total_seconds()).to_numpy(np.int64),
        "weekend": (pt.dt.day_of_week >= 5).to_numpy(),
        "pu": fr["pickup_zone"].to_numpy(np.int32), "do": fr["dropoff_zone"].to_numpy(np.int32),
        "dur": np.maximum(fr["duration_min"].to_numpy() * 60, 1).astype(np.int64),
        "mi": fr["distance_km"].to_numpy() / 1.609344,
        "fare": np.maximum(pd.Series(fr["distance_km"]).to_numpy() * 1.9 + 3.0, 3.0),
    })


def month_rows(total: int) -> list[int]:
    """Rows per month, proportional to the month's days (they add up to ``total``)."""
    days = np.array([pd.Timestamp(YEAR, m, 1).days_in_month for m in range(1, 13)], float)
    n = np.floor(total * days / days.sum()).astype(int)
    n[: total - n.sum()] += 1
    return n.tolist()


def make_chunk(p: pd.DataFrame, month: int, n: int, rng: np.random.Generator) -> tuple[pa.Table, dict]:
    """``n`` yellow-format rows of ``month`` (a pyarrow table) and the injected counts per reason."""
    days = pd.date_range(f"{YEAR}-{month:02d}-01", periods=pd.Timestamp(YEAR, month, 1).days_in_month, freq="D")
    wkend = days.day_of_week >= 5
    idx = rng.integers(0, len(p), n)
    src = p.iloc[idx]
    is_we = src["weekend"].to_numpy()
    we_days, wd_days = days[wkend].to_numpy(), days[~wkend].to_numpy()
    day = np.where(is_we, we_days[rng.integers(0, len(we_days), n)], wd_days[rng.integers(0, len(wd_days), n)])
    sod = np.clip(src["sod"].to_numpy() + rng.integers(-300, 301, n), 0, 86399)
    pu_t = day.astype("datetime64[s]") + sod.astype("timedelta64[s]")
    do_t = pu_t + src["dur"].to_numpy().astype("timedelta64[s]")
    mi = np.round(src["mi"].to_numpy() * rng.uniform(0.95, 1.05, n), 2)
    fare = np.round(src["fare"].to_numpy() * rng.uniform(0.95, 1.05, n), 2)
    pu, do = src["pu"].to_numpy().copy(), src["do"].to_numpy().copy()
    pu_v = np.ones(n, bool)
    pu_t_ok = np.ones(n, bool)
    # one reason per corrupted row, drawn with the INJECTED shares
    names = list(INJECTED)
    probs = np.array([INJECTED[k] for k in names])
    pick = rng.choice(len(names) + 1, size=n, p=np.append(probs, 1 - probs.sum()))
    counts = {}
    for k, name in enumerate(names):
        m = np.flatnonzero(pick == k)
        if name == "duplicate":
            m = m[m > 0]
        counts[name] = int(len(m))
        if name == "missing_timestamp":
            pu_t_ok[m] = False
        elif name == "outside_period":
            pu_t[m] -= np.timedelta64(400, "D")
            do_t[m] -= np.timedelta64(400, "D")
        elif name == "missing_zone":
            pu_v[m] = False
        elif name == "unknown_zone":
            pu[m] = 300
        elif name == "zone_without_location":
            do[m] = rng.choice([264, 265], len(m))
        elif name == "dropoff_not_after_pickup":
            do_t[m] = pu_t[m] - rng.integers(0, 600, len(m)).astype("timedelta64[s]")
        elif name == "duration_too_long":
            do_t[m] = pu_t[m] + np.timedelta64(7, "h")
        elif name == "non_finite_distance":
            mi[m] = np.nan
        elif name == "negative_distance":
            mi[m] = -mi[m] - 0.01
        elif name == "negative_fare":
            fare[m] = -fare[m]
        elif name == "duplicate":
            # copy the nearest earlier clean row (so the copy's original is itself accepted)
            clean = np.flatnonzero(pick == len(names))
            j = np.searchsorted(clean, m) - 1
            ok = j >= 0
            m, j = m[ok], clean[j[ok]]
            counts[name] = int(len(m))
            pu_t[m], do_t[m], pu[m], do[m], mi[m], fare[m] = pu_t[j], do_t[j], pu[j], do[j], mi[j], fare[j]
            pu_t_ok[m] = True
    table = pa.table({
        "VendorID": pa.array(rng.integers(1, 3, n).astype(np.int32)),
        "tpep_pickup_datetime": pa.array(pu_t.astype("datetime64[us]"), mask=~pu_t_ok),
        "tpep_dropoff_datetime": pa.array(do_t.astype("datetime64[us]")),
        "passenger_count": pa.array(rng.integers(1, 5, n).astype(float)),
        "trip_distance": pa.array(mi),
        "RatecodeID": pa.array(np.ones(n)),
        "store_and_fwd_flag": pa.array(np.full(n, "N", dtype=object), pa.string()),
        "PULocationID": pa.array(pu, mask=~pu_v),
        "DOLocationID": pa.array(do),
        "payment_type": pa.array(rng.integers(1, 3, n)),
        "fare_amount": pa.array(fare),
        "tip_amount": pa.array(np.round(np.abs(fare) * 0.15, 2)),
        "total_amount": pa.array(np.round(fare * 1.3, 2)),
    }, schema=SCHEMA)
    return table, counts


def generate(rows: int, seed: int = 0, out: Path | None = None, chunk: int = 2_000_000, quiet: bool = False
             ) -> tuple[list[Path], dict]:
    """Write (or reuse, when the manifest is there) the files for ``rows`` trips; returns (files, manifest)."""
    if rows < 12:
        raise ValueError(f"rows must be >= 12 (one per month), got {rows}")
    folder = Path(out) if out is not None else CACHE / f"rows{rows}_seed{seed}"
    man_path = folder / "manifest.json"
    if man_path.is_file():
        man = json.loads(man_path.read_text())
        files = [folder / f for f in man["files"]]
        if all(f.is_file() for f in files):
            return files, man
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    p = pool()
    files, injected, per_file = [], dict.fromkeys(INJECTED, 0), {}
    for month, n_month in enumerate(month_rows(rows), start=1):
        rng = np.random.default_rng([seed, month])
        path = folder / f"yellow_tripdata_{YEAR}-{month:02d}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        with pq.ParquetWriter(tmp, SCHEMA) as w:
            left = n_month
            while left > 0:
                n = min(chunk, left)
                table, counts = make_chunk(p, month, n, rng)
                w.write_table(table, row_group_size=ROW_GROUP)
                for k, v in counts.items():
                    injected[k] += v
                left -= n
        tmp.replace(path)
        files.append(path)
        per_file[path.name] = n_month
        if not quiet:
            print(f"  {path.name}: {n_month:,} rows ({time.perf_counter() - t0:.0f} s)", flush=True)
    man = {"rows": rows, "seed": seed, "year": YEAR, "period": list(PERIOD), "files": [f.name for f in files],
           "rows_per_file": per_file, "injected": injected,
           "injected_share": {k: v / rows for k, v in injected.items()}, "seconds": time.perf_counter() - t0}
    man_path.write_text(json.dumps(man, indent=1))
    return files, man


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, required=True, help="total trips over the 12 monthly files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help=f"folder (default {CACHE}/rows{{N}}_seed{{S}})")
    args = ap.parse_args(argv)
    files, man = generate(args.rows, args.seed, args.out)
    print(json.dumps({k: man[k] for k in ("rows", "seed", "injected", "seconds") if k in man}, indent=1))
    print(f"{len(files)} files in {files[0].parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
