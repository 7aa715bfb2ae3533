"""``drbalance estimate``: trip records -> reject report, regions, panels, forecasts, uncertainty sets.

CLI contract (relied on by other tools; add options, never rename)::

    drbalance estimate TRIPS... [--zones CSV] --train A:B --heldout C:D --slot-minutes 15 --horizon 4
                       --out DIR --json PATH

JSON keys: ``rows_read``, ``rows_accepted``, ``rows_rejected``, ``rejected_by_reason``, ``n_regions``,
``n_days_train``, ``n_days_heldout``, ``coverage_robust``, ``coverage_dr`` (both for *demand*; every
quantity is under ``coverage``), ``seconds``, plus extras.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from drbalance.commands._common import parse_period, resolve_circuity, write_json
from drbalance.errors import ConfigError, DataError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("estimate", help="build demand/supply estimates and uncertainty sets from trip records",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trips", nargs="+", type=Path, help="trip files (NYC TLC green/yellow/FHV parquet or CSV)")
    add_estimate_options(p)
    p.add_argument("--out", type=Path, required=True, help="folder for the estimates bundle and reports")
    p.add_argument("--json", type=Path, default=None, help="write the summary JSON here")
    p.set_defaults(func=run)


def add_estimate_options(p: argparse.ArgumentParser, train_required: bool = True) -> None:
    """Options shared by ``estimate`` and ``demo``."""
    p.add_argument("--zones", type=Path, default=None,
                   help="TLC taxi_zone_lookup.csv (default: the one beside the first trip file)")
    p.add_argument("--train", required=train_required, help="training period START:END (inclusive dates)")
    p.add_argument("--heldout", default=None, help="held-out period START:END for coverage (optional)")
    p.add_argument("--slot-minutes", type=int, default=15, help="slot length, 5..60 dividing a day (default 15)")
    p.add_argument("--horizon", type=int, default=4, help="slots per window K (default 4)")
    p.add_argument("--regions", type=int, default=None,
                   help="coarsen zones into K regions (demand-weighted k-means, seeded); default: one per zone")
    p.add_argument("--circuity", default="auto",
                   help="road/straight-line distance factor, or 'auto' to estimate it from metered trips")
    p.add_argument("--forecaster", default="historical_mean", choices=["historical_mean", "poisson_glm"])
    p.add_argument("--shrinkage", default="ledoit_wolf", choices=["ledoit_wolf", "oas", "none"])
    p.add_argument("--robust-radius", default="chi2", choices=["chi2", "conformal"],
                   help="robust radius: chi-square quantile (MATH.md) or leave-one-day-out conformal")
    p.add_argument("--epsilon", type=float, default=0.1, help="robust set miss probability (default 0.1)")
    p.add_argument("--delta", type=float, default=0.1, help="DR mean set 1-confidence (default 0.1)")
    p.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples for the DR radius")
    p.add_argument("--rank", type=int, default=None, help="truncate the covariance factor to this rank")
    p.add_argument("--holidays", default=None, choices=["us"], help="count US federal holidays as weekend days")
    p.add_argument("--max-trip-minutes", type=float, default=360.0, help="reject longer trips (default 360)")
    p.add_argument("--keep-negative-fares", action="store_true",
                   help="accept negative-fare (reversal) records instead of rejecting them")
    p.add_argument("--seed", type=int, default=0, help="seed of k-means and the bootstrap")


@dataclass
class EstimateRun:
    """Everything one estimate run produced (the CLI writes it out; the demo prints it)."""

    summary: dict
    report: object
    estimates: object
    coverage: dict = field(default_factory=dict)


def run_estimate(trips: list[Path], args: argparse.Namespace, progress=None) -> EstimateRun:
    """Library entry behind the CLI: read, validate, build regions/panels, fit, measure coverage."""
    from data_pipeline.estimates import EstimateConfig, Estimates
    from data_pipeline.panels import trip_panels
    from data_pipeline.readers import read_nyc_zones, read_tlc_trips
    from data_pipeline.regions import RegionMap

    t0 = time.perf_counter()
    train = parse_period(args.train, "--train")
    heldout = parse_period(args.heldout, "--heldout") if args.heldout else None
    if heldout and not (pd.Timestamp(heldout[0]) > pd.Timestamp(train[1])):
        raise ConfigError(f"--heldout {args.heldout} must start after the training period ends ({train[1]})")
    config = EstimateConfig(slot_minutes=args.slot_minutes, horizon=args.horizon, forecaster=args.forecaster,
                            shrinkage=args.shrinkage, epsilon=args.epsilon, delta=args.delta,
                            n_bootstrap=args.bootstrap, rank=args.rank, robust_radius=args.robust_radius,
                            holidays=args.holidays, random_state=args.seed)
    zones_path = args.zones or trips[0].with_name("taxi_zone_lookup.csv")
    if not zones_path.is_file():
        raise DataError(f"zone lookup {zones_path} not found; pass --zones PATH/taxi_zone_lookup.csv")
    zones = read_nyc_zones(zones_path)
    first, last = train[0], (heldout or train)[1]
    ing = read_tlc_trips(trips, zones, period=(first, last), max_trip_minutes=args.max_trip_minutes,
                         reject_negative_fare=not args.keep_negative_fares)
    if ing.report.rows_accepted == 0:
        raise DataError(f"no trip survived validation (rejects: {ing.report.by_reason}); check the periods and files")
    circuity = resolve_circuity(args.circuity, ing.frame, zones)
    regions = RegionMap.from_zones(zones, circuity)
    panels = trip_panels(ing.frame, regions, first, last, config.slot_minutes, config.holidays)
    if args.regions is not None:
        train_demand = panels["demand"].select(*train).values.sum(axis=(0, 1))
        regions = regions.coarsen(args.regions, train_demand, random_state=args.seed)
        panels = trip_panels(ing.frame, regions, first, last, config.slot_minutes, config.holidays)
    train_p = {q: p.select(*train) for q, p in panels.items()}
    est = Estimates.fit(train_p, regions, config)
    cov = {}
    n_heldout = 0
    if heldout:
        held_p = {q: p.select(*heldout) for q, p in panels.items()}
        n_heldout = held_p["demand"].n_days
        cov = est.coverage(held_p, progress=progress)
    summary = {
        **ing.report.to_dict(),
        "n_regions": regions.n,
        "n_zones": int(len(regions.zone_ids)),
        "n_days_train": train_p["demand"].n_days,
        "n_days_heldout": n_heldout,
        "coverage_robust": cov.get("demand", {}).get("robust"),
        "coverage_dr": cov.get("demand", {}).get("dr"),
        "coverage": cov,
        "robust_radius": config.robust_radius,
        "nominal_coverage_robust": 1 - config.epsilon,
        "nominal_confidence_dr": 1 - config.delta,
        "dimension": est.dim,
        "circuity": circuity,
        "trips_in_panels": {q: p.total() for q, p in panels.items()},
        "trips_outside_panels": {q: p.outside for q, p in panels.items()},
        "config": {**config.to_dict(), "train": train, "heldout": heldout, "regions": args.regions,
                   "trips": [str(t) for t in trips], "zones": str(zones_path),
                   "max_trip_minutes": args.max_trip_minutes, "reject_negative_fare": not args.keep_negative_fares},
    }
    summary["seconds"] = time.perf_counter() - t0
    return EstimateRun(summary, ing.report, est, cov)


def write_outputs(result: EstimateRun, out: Path, json_path: Path | None) -> None:
    """Bundle + reports into ``out``; summary JSON to ``json_path``."""
    out.mkdir(parents=True, exist_ok=True)
    result.estimates.save(out)
    result.estimates.regions.members().to_csv(out / "regions.csv", index=False)
    result.report.summary().to_csv(out / "rejects.csv", index=False)
    result.report.rejected.to_parquet(out / "rejected_rows.parquet", index=False)
    table = result.estimates.set_table()
    if len(table):
        table.to_parquet(out / "sets.parquet", index=False)
    (out / "config.json").write_text(json.dumps(result.summary["config"], indent=2) + "\n")
    write_json(out / "summary.json", result.summary)
    write_json(json_path, result.summary)


def print_report(result: EstimateRun, console=None) -> None:
    """Rich tables: the reject report and the estimate summary with coverage."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    s = result.summary
    t = Table(title=f"Reject report: {s['rows_read']:,} read = {s['rows_accepted']:,} accepted + "
                    f"{s['rows_rejected']:,} rejected")
    for col in ("reason", "rows", "meaning"):
        t.add_column(col, justify="right" if col == "rows" else "left")
    for _, row in result.report.summary().iterrows():
        t.add_row(row["reason"], f"{row['rows']:,}", row["meaning"])
    console.print(t)
    t2 = Table(title=f"Estimates: {s['n_regions']} regions, {s['n_days_train']} training days, "
                     f"{s['n_days_heldout']} held-out days, window dimension {s['dimension']}")
    for col in ("quantity", "robust coverage", "nominal", "DR coverage", "DR two-sample", "windows"):
        t2.add_column(col)
    for q, c in result.coverage.items():
        t2.add_row(q, f"{c['robust']:.3f}", f"{s['nominal_coverage_robust']:.2f}", f"{c['dr']:.3f}",
                   f"{c['dr_two_sample']:.3f}", f"{c['robust_windows']:,}")
    console.print(t2)


def run(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    n_cells = 2 * 2 * (1440 // args.slot_minutes) if args.heldout else 0
    with Progress(transient=True) as bar:
        task = bar.add_task("fitting sets and measuring coverage", total=n_cells or None)
        result = run_estimate(args.trips, args, progress=lambda: bar.advance(task))
    write_outputs(result, args.out, args.json)
    print_report(result)
    print(f"wrote {args.out}/ (estimates.npz, regions.csv, rejects.csv, rejected_rows.parquet, sets.parquet, "
          f"config.json, summary.json) in {result.summary['seconds']:.1f} s")
    return 0
