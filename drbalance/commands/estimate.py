"""``drbalance estimate``: trip records -> reject report, regions, panels, forecasts, uncertainty sets.

CLI contract (relied on by other tools; add options, never rename)::

    drbalance estimate TRIPS... [--zones CSV] --train A:B --heldout C:D --slot-minutes 15 --horizon 4
                       --out DIR --json PATH [--centroids CSV]

JSON keys: ``rows_read``, ``rows_accepted``, ``rows_rejected``, ``rejected_by_reason``, ``n_regions``,
``n_days_train``, ``n_days_heldout``, ``coverage_robust``, ``coverage_dr`` (both for *demand*; every
quantity is under ``coverage``), ``seconds``, plus extras.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from data_pipeline.readers import count_tlc_trips
from drbalance.commands.common import (add_centroids_option, centroids_note, check_outputs, option_values,
                                       parse_period, read_zones, require_accepted, with_options, write_json,
                                       zone_files)
from drbalance.errors import ConfigError
from drbalance.io import atomic_folder
from drbalance.study import Study
from drbalance.study_config import StudyConfig
from drbalance.validation import check_number


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("estimate", help="build demand/supply estimates and uncertainty sets from trip records",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trips", nargs="+", type=Path, help="trip files (NYC TLC green/yellow/FHV parquet or CSV)")
    add_estimate_options(p)
    p.add_argument("--out", type=Path, required=True, help="folder for the estimates bundle and reports")
    p.add_argument("--json", type=Path, default=None, help="write the summary JSON here")
    p.set_defaults(func=run)


#: ``--option`` -> dotted :class:`StudyConfig` key (flags given override ``--config``'s values).
OPTION_KEYS = {
    "slot_minutes": "slot_minutes", "horizon": "horizon", "seed": "seed", "regions": "evaluation.regions",
    "circuity": "evaluation.circuity", "forecaster": "estimate.forecaster", "shrinkage": "estimate.shrinkage",
    "robust_radius": "estimate.robust_radius", "epsilon": "estimate.epsilon", "delta": "estimate.delta",
    "bootstrap": "estimate.n_bootstrap", "rank": "estimate.rank", "holidays": "estimate.holidays",
    "train": "evaluation.train",
}


def add_estimate_options(p: argparse.ArgumentParser, train_required: bool = True) -> None:
    """Options shared by ``estimate`` and ``demo``; their defaults live in :class:`StudyConfig`."""
    d = StudyConfig()
    p.add_argument("--config", type=Path, default=None,
                   help="study configuration TOML (examples/study.toml); options given here override it")
    p.add_argument("--zones", type=Path, default=None,
                   help="TLC taxi_zone_lookup.csv (default: the one beside the first trip file)")
    add_centroids_option(p)
    p.add_argument("--train", default=None, help="training period START:END (inclusive dates)" +
                   ("; required unless --config sets it" if train_required else ""))
    p.add_argument("--heldout", default=None, help="held-out period START:END for coverage (optional)")
    p.add_argument("--slot-minutes", type=int, default=None,
                   help=f"slot length, 5..60 dividing a day (default {d.slot_minutes})")
    p.add_argument("--horizon", type=int, default=None, help=f"slots per window K (default {d.horizon})")
    p.add_argument("--regions", type=int, default=None,
                   help=f"coarsen zones into K regions (demand-weighted k-means, seeded); 0 = one per zone "
                        f"(default {d.evaluation.regions})")
    p.add_argument("--circuity", default=None,
                   help="road/straight-line distance factor, or 'auto' to estimate it from the training trips")
    p.add_argument("--forecaster", default=None, choices=["historical_mean", "poisson_glm"])
    p.add_argument("--shrinkage", default=None, choices=["ledoit_wolf", "oas", "none"])
    p.add_argument("--robust-radius", default=None, choices=["chi2", "conformal"],
                   help="robust radius: chi-square quantile (MATH.md) or leave-one-day-out conformal")
    p.add_argument("--epsilon", type=float, default=None, help="robust set miss probability (default 0.1)")
    p.add_argument("--delta", type=float, default=None, help="DR mean set 1-confidence (default 0.1)")
    p.add_argument("--bootstrap", type=int, default=None, help="bootstrap resamples for the DR radius (default 500)")
    p.add_argument("--rank", type=int, default=None, help="truncate the covariance factor to this rank")
    p.add_argument("--holidays", default=None, choices=["us"], help="count US federal holidays as weekend days")
    p.add_argument("--max-trip-minutes", type=float, default=360.0, help="reject longer trips (default 360)")
    p.add_argument("--keep-negative-fares", action="store_true",
                   help="accept negative-fare (reversal) records instead of rejecting them")
    p.add_argument("--seed", type=int, default=None, help="seed of k-means and the bootstrap (default 0)")


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    """The resolved :class:`StudyConfig`: ``--config`` file (or the defaults), then the options given."""
    if args.config is None and args.train is None:
        raise ConfigError("--train is required (or --config FILE.toml that sets evaluation.train)")
    # estimate replays no day: with --train, a --config file's days would be stale
    extra = {"evaluation.days": []} if "evaluation.train" in option_values(args, OPTION_KEYS) else {}
    base = StudyConfig.from_toml(args.config) if args.config is not None else StudyConfig()
    return with_options(base, args, OPTION_KEYS, extra)


@dataclass
class EstimateRun:
    """Everything one estimate run produced (the CLI writes it out; the demo prints it)."""

    summary: dict
    report: object
    estimates: object
    coverage: dict = field(default_factory=dict)
    config: StudyConfig | None = None


def run_estimate(trips: list[Path], args: argparse.Namespace, progress=None) -> EstimateRun:
    """Library entry behind the CLI: read and validate the trips, build the :class:`Study` (regions,
    panels, estimates of the training period) and measure coverage on the held-out period."""
    t0 = time.perf_counter()
    config = config_from_args(args)
    train = config.evaluation.train
    heldout = parse_period(args.heldout, "--heldout") if args.heldout is not None else None
    if heldout and not (pd.Timestamp(heldout[0]) > pd.Timestamp(train[1])):
        raise ConfigError(f"--heldout {args.heldout} must start after the training period ends ({train[1]})")
    check_number("--max-trip-minutes", args.max_trip_minutes, low=0, low_open=True)
    zones = read_zones(trips, args.zones, getattr(args, "centroids", None))
    first, last = train[0], (heldout or train)[1]
    # streamed in record batches: counts per zone for the whole period, trips kept for training only
    counts = count_tlc_trips(trips, zones, (first, last), slot_minutes=config.slot_minutes,
                             max_trip_minutes=args.max_trip_minutes, reject_negative_fare=not args.keep_negative_fares,
                             keep=train)
    report = counts.report
    require_accepted(report, (first, last))
    study = Study.from_trips(counts.frame, zones, config, rejects=report.by_reason)
    est, regions, ec = study.estimates, study.regions, config.estimate
    # every accepted trip counted over the whole period (the reject report's rows end up here)
    panels = counts.panels(regions, first, last, ec.holidays)
    cov = {}
    n_heldout = 0
    if heldout:
        held_p = {q: p.select(*heldout) for q, p in panels.items()}
        n_heldout = held_p["demand"].n_days
        cov = est.coverage(held_p, progress=progress)
    summary = {
        **report.to_dict(),
        "n_regions": regions.n,
        "n_zones": int(len(regions.zone_ids)),
        "n_days_train": study.panels["demand"].n_days,
        "n_days_heldout": n_heldout,
        "coverage_robust": cov.get("demand", {}).get("robust"),
        "coverage_dr": cov.get("demand", {}).get("dr"),
        "coverage": cov,
        "robust_radius": ec.robust_radius,
        "nominal_coverage_robust": 1 - ec.epsilon,
        "nominal_confidence_dr": 1 - ec.delta,
        "dimension": est.dim,
        "circuity": study.circuity,
        "trips_in_panels": {q: p.total() for q, p in panels.items()},
        "trips_outside_panels": {q: p.outside for q, p in panels.items()},
        "config": {**ec.to_dict(), "train": list(train), "heldout": heldout,
                   "regions": config.evaluation.regions, "trips": [str(t) for t in trips], **zone_files(zones),
                   "max_trip_minutes": args.max_trip_minutes, "reject_negative_fare": not args.keep_negative_fares},
    }
    summary["seconds"] = time.perf_counter() - t0
    return EstimateRun(summary, report, est, cov, config)


def write_outputs(result: EstimateRun, folder: Path, json_path: Path | None) -> None:
    """Bundle + reports into ``folder``; summary JSON to ``json_path``.  Every file is written to a
    staging folder first and moved into ``folder`` when all are complete (:func:`drbalance.io.atomic_folder`)."""
    with atomic_folder(folder) as out:
        _write_bundle(result, out)
    write_json(json_path, result.summary)


def _write_bundle(result: EstimateRun, out: Path) -> None:
    result.estimates.save(out)
    result.estimates.regions.members().to_csv(out / "regions.csv", index=False)
    result.report.summary().to_csv(out / "rejects.csv", index=False)
    result.report.rejected.to_parquet(out / "rejected_rows.parquet", index=False)
    table = result.estimates.set_table()
    if len(table):
        table.to_parquet(out / "sets.parquet", index=False)
    write_json(out / "config.json", result.summary["config"])
    if result.config is not None:
        result.config.to_toml(out / "config.toml")
    write_json(out / "summary.json", result.summary)


def print_report(result: EstimateRun, console=None) -> None:
    """Rich tables: the reject report and the estimate summary with coverage."""
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
    check_outputs(files={"--json": args.json}, folders={"--out": args.out})
    n_cells = 2 * 2 * (1440 // config_from_args(args).slot_minutes) if args.heldout is not None else 0
    with Progress(transient=True) as bar:
        task = bar.add_task("fitting sets and measuring coverage", total=n_cells or None)
        result = run_estimate(args.trips, args, progress=lambda: bar.advance(task))
    write_outputs(result, args.out, args.json)
    print_report(result)
    if note := centroids_note(result.summary["config"]):
        print(note)
    print(f"wrote {args.out}/ (estimates.npz, regions.csv, rejects.csv, rejected_rows.parquet, sets.parquet, "
          f"config.json, config.toml, summary.json) in {result.summary['seconds']:.1f} s")
    return 0
