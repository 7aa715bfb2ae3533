"""``drbalance simulate``: replay one day of trip records against a synthetic EV fleet under a policy.

CLI contract (relied on by other tools; add options, never rename)::

    drbalance simulate TRIPS... [--zones CSV] --day YYYY-MM-DD --fleet N --policy greedy --seed 0 --json PATH
                       [--regions K] [--out DIR] [--train A:B] [--policy {noop,greedy,oracle_counts}]
                       [--config FILE.toml]   (a StudyConfig; options given override it)
                       [--centroids CSV]

JSON keys: ``requests``, ``served``, ``unserved`` (``served + unserved == requests``), ``u_m_mean``,
``u_c_mean``, ``balancing_km``, ``stranded``, ``seconds`` (whole command, reading included), plus the
simulator's summary (``sim_seconds`` is the run alone) and the resolved configuration under ``config``.

The greedy policy's forecasts are fitted on the training period, which must end before ``--day``
(default: the 28 days before it, trimmed of leading days that have under 5 % of the median day's
trips, e.g. before the first file starts).  Chargers are sited proportionally to the training
period's pick-ups (``--plugs-total``, default one plug per ten EVs) unless ``--plugs CSV`` gives
plugs per zone.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from data_pipeline.readers import read_tlc_trips
from drbalance.commands.common import (add_centroids_option, centroids_note, check_outputs, parse_period,
                                       read_zones, require_accepted, with_options, write_json, zone_files)
from drbalance.errors import ConfigError, DataError
from drbalance.io import atomic_folder
from drbalance.policies import make_policy
from drbalance.report import write_report
from drbalance.report_data import region_slot_frame, write_map_data
from drbalance.sim import PlugSiting, Simulator
from drbalance.study import DayReplay
from drbalance.study_config import StudyConfig
from drbalance.validation import check_date, check_int

POLICIES = ("noop", "greedy", "oracle_counts")
D = StudyConfig()

#: ``--option`` -> dotted :class:`StudyConfig` key (flags given override ``--config``'s values).
OPTION_KEYS = {
    "fleet": "sim.fleet_size", "seed": "seed", "regions": "evaluation.regions", "slot_minutes": "slot_minutes",
    "hours": "evaluation.hours", "patience": "sim.patience_minutes", "radius_km": "sim.match_radius_km",
    "speed_kmh": "sim.speed_kmh", "battery_kwh": "sim.battery_kwh", "kwh_per_km": "sim.consumption_kwh_per_km",
    "charge_kw": "sim.charging.power_kw", "low_soc": "sim.charging.low_soc", "target_soc": "sim.charging.target_soc",
    "circuity": "evaluation.circuity",
}


def config_from_args(args: argparse.Namespace, train: tuple[str, str]) -> StudyConfig:
    """The resolved :class:`StudyConfig` of a simulate run (``--config``, then the options given)."""
    if args.config is None and args.fleet is None:
        raise ConfigError("--fleet N is required (or --config FILE.toml that sets sim.fleet_size)")
    values = {"evaluation.train": list(train), "evaluation.days": [], "evaluation.policies": [args.policy]
              if args.policy in ("noop", "greedy") else ["noop"]}
    base = StudyConfig.from_toml(args.config) if args.config is not None else StudyConfig()
    return with_options(base, args, OPTION_KEYS, values)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="replay a day of trips against a simulated EV fleet under a policy",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trips", nargs="+", type=Path, help="trip files (NYC TLC green/yellow/FHV parquet or CSV)")
    p.add_argument("--zones", type=Path, default=None,
                   help="TLC taxi_zone_lookup.csv (default: the one beside the first trip file)")
    add_centroids_option(p)
    p.add_argument("--config", type=Path, default=None,
                   help="study configuration TOML ([sim], slot_minutes, seed, evaluation.regions/circuity/train); "
                        "options given here override it")
    p.add_argument("--day", required=True, help="day to simulate, YYYY-MM-DD")
    p.add_argument("--fleet", type=int, default=None, help="number of EVs (required unless --config sets sim.fleet_size)")
    p.add_argument("--policy", default="greedy", choices=POLICIES)
    p.add_argument("--seed", type=int, default=None, help="seed of the fleet draw and the k-means coarsening (default 0)")
    p.add_argument("--json", type=Path, default=None, help="write the summary JSON here")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for slots/events parquet, plots, config.toml and summary")
    p.add_argument("--regions", type=int, default=None,
                   help=f"coarsen zones into K demand-weighted regions, 0 = one per zone (default {D.evaluation.regions})")
    p.add_argument("--train", default=None, help="training period START:END before --day (default: 28 days before)")
    p.add_argument("--slot-minutes", type=int, default=None, help=f"decision slot length (default {D.slot_minutes})")
    p.add_argument("--hours", type=float, default=None, help="simulate only the first H hours of the day (default 24)")
    p.add_argument("--plugs-total", type=int, default=None, help="plugs to site in proportion to training demand "
                   "(default: evaluation.plugs_per_vehicle per EV)")
    p.add_argument("--plugs", type=Path, default=None, help="CSV with columns zone,plugs (summed per region)")
    p.add_argument("--patience", type=int, default=None,
                   help=f"minutes a request waits before it is unserved (default {D.sim.patience_minutes})")
    p.add_argument("--radius-km", type=float, default=None,
                   help=f"matching radius to neighbouring regions (default {D.sim.match_radius_km:g} km)")
    p.add_argument("--speed-kmh", type=float, default=None, help=f"empty driving speed (default {D.sim.speed_kmh:g} km/h)")
    p.add_argument("--battery-kwh", type=float, default=None, help=f"default {D.sim.battery_kwh:g}")
    p.add_argument("--kwh-per-km", type=float, default=None, help=f"default {D.sim.consumption_kwh_per_km:g}")
    p.add_argument("--charge-kw", type=float, default=None, help=f"default {D.sim.charging.power_kw:g}")
    p.add_argument("--low-soc", type=float, default=None, help="low-battery threshold (share of capacity, default 0.2)")
    p.add_argument("--target-soc", type=float, default=None, help="EVs unplug at this share of capacity (default 0.8)")
    p.add_argument("--report", action="store_true", help="also write OUT/report.html (needs --out; drbalance report)")
    p.add_argument("--circuity", default=None,
                   help="road/straight-line distance factor, or 'auto' to estimate it from metered trips (default)")
    p.set_defaults(func=run)


def _default_train(day: pd.Timestamp) -> tuple[str, str]:
    return str((day - pd.Timedelta(days=28)).date()), str((day - pd.Timedelta(days=1)).date())


def _trim_sparse_start(train: tuple[str, str], trips: pd.DataFrame) -> tuple[str, str] | None:
    """Drop leading training days with < 5 % of the median day's trips (days before the data start)."""
    days = pd.date_range(train[0], train[1], freq="D")
    counts = trips["pickup_time"].dt.normalize().value_counts().reindex(days, fill_value=0)
    if counts.sum() == 0:
        return None
    ok = counts.to_numpy() >= 0.05 * np.median(counts[counts > 0].to_numpy())
    first = int(np.argmax(ok))
    return str(days[first].date()), train[1]


def read_plugs_table(path: Path) -> pd.DataFrame:
    """The ``--plugs`` CSV: columns ``zone`` (TLC LocationID) and ``plugs`` (a number >= 0 per row);
    any other content raises :class:`DataError` naming the file, the row and the fix."""
    if not Path(path).is_file():
        raise DataError(f"--plugs {path} not found; pass a CSV file with columns zone,plugs")
    try:
        table = pd.read_csv(path)
    except Exception as exc:  # pandas raises several types (EmptyDataError, ParserError, UnicodeDecodeError)
        raise DataError(f"--plugs {path}: not a readable CSV file ({type(exc).__name__}: {exc}); "
                        "expected columns zone,plugs") from None
    if not {"zone", "plugs"} <= set(table.columns):
        raise DataError(f"{path}: needs columns zone,plugs; found {list(table.columns)}")
    if table.empty:
        raise DataError(f"--plugs {path} has no rows; list zone,plugs per charger zone")
    for col in ("zone", "plugs"):
        values = pd.to_numeric(table[col], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(values) | (values < 0) | ((values != np.round(values)) if col == "zone" else False)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"--plugs {path}: row {i + 1} has {col} {table[col].iloc[i]!r}; "
                            f"{col} must be {'a zone number (LocationID)' if col == 'zone' else 'a number >= 0'}")
        table[col] = values.astype(np.int64) if col == "zone" else values
    return table


def simulate_day(args: argparse.Namespace) -> tuple[dict, object]:
    """Library entry behind the CLI; returns (summary dict, SimResult)."""
    return _simulate(args)[:2]


def _simulate(args: argparse.Namespace) -> tuple[dict, object, object]:
    """:func:`simulate_day` and the run's :class:`~data_pipeline.regions.RegionMap` (for the map data)."""
    t0 = time.perf_counter()
    day = pd.Timestamp(check_date("--day", args.day))
    explicit_train = args.train is not None
    if explicit_train:
        train = parse_period(args.train, "--train")
    elif args.config is not None:   # a configuration file's training period counts as explicit
        train, explicit_train = StudyConfig.from_toml(args.config).evaluation.train, True
    else:
        train = _default_train(day)
    if pd.Timestamp(train[1]) >= day:
        raise ConfigError(f"--train {train[0]}:{train[1]} must end before --day {day.date()} (no look-ahead)")
    study_cfg = config_from_args(args, train)
    ev = study_cfg.evaluation
    if (ev.hours * 60) % study_cfg.slot_minutes:
        raise ConfigError(f"--hours must be a whole number of {study_cfg.slot_minutes}-min slots, got {ev.hours:g}")
    minutes = ev.minutes
    config = study_cfg.sim
    check_int("--plugs-total", args.plugs_total, low=1, allow_none=True)
    siting = PlugSiting(total=args.plugs_total, per_vehicle=ev.plugs_per_vehicle)
    plug_table = read_plugs_table(args.plugs) if args.plugs is not None else None
    zones = read_zones(args.trips, args.zones, getattr(args, "centroids", None))
    ing = read_tlc_trips(args.trips, zones, period=(train[0], str(day.date())))
    require_accepted(ing.report, (train[0], str(day.date())))
    frame = ing.frame
    if not explicit_train:
        before = frame[frame["pickup_time"] < day]
        train = _trim_sparse_start(train, before) or train
        study_cfg = study_cfg.with_values({"evaluation.train": list(train)})  # config.toml re-runs it as is
    ev = study_cfg.evaluation
    replay = DayReplay.from_trips(frame, zones, day, train, regions=ev.regions, seed=study_cfg.seed,
                                  circuity=ev.circuity, rejects=ing.report.by_reason)
    regions, circuity = replay.regions, replay.circuity
    weights_source = "training_days" if replay.weights is not None else "simulated_day"
    estimates = None
    if args.policy == "greedy":
        try:
            estimates = replay.estimates(study_cfg.estimate)
        except DataError as exc:
            raise DataError(f"policy greedy: {exc}; pass --train A:B inside the files' period") from None
    plugs = None
    if plug_table is not None:
        table = plug_table
        pos = regions.region_of(table["zone"].to_numpy())
        if (pos < 0).any():
            raise DataError(f"{args.plugs}: zones {table['zone'][pos < 0].tolist()[:5]} are in no region")
        plugs = np.bincount(pos, weights=table["plugs"].to_numpy(float), minlength=regions.n)
        weights_source = "plugs_csv"
    sim = Simulator.from_trips(replay.day_trips, regions, day, config, plugs=plugs, siting=siting,
                               siting_weights=replay.weights, zones=zones, minutes=minutes)
    policy = make_policy(args.policy, sim, estimates)
    result = sim.run(policy)
    resolved = {**result.config, "trips": [str(t) for t in args.trips], **zone_files(zones), "day": str(day.date()),
                "train": list(train), "regions_requested": ev.regions, "circuity": circuity,
                "plugs_source": weights_source, "plugs_total": int(sim.plugs.sum()), "hours": ev.hours}
    result.config = resolved
    summary = {**result.summary, "sim_seconds": result.summary["seconds"], "day": str(day.date()),
               "n_regions": regions.n, "train": list(train), "rows_read": ing.report.rows_read,
               "rows_accepted": ing.report.rows_accepted, "config": resolved, "study_config": study_cfg.to_dict()}
    summary["seconds"] = time.perf_counter() - t0
    return summary, result, regions


def run(args: argparse.Namespace) -> int:
    check_outputs(files={"--json": args.json}, folders={"--out": args.out})
    if args.report and args.out is None:
        raise ConfigError("--report writes OUT/report.html: pass --out DIR as well")
    summary, result, regions = _simulate(args)
    if args.out is not None:
        with atomic_folder(args.out) as out:   # every file appears only once all are complete
            result.to_parquet(out)
            write_map_data(out, region_slot_frame(result, day=summary["day"]), regions)   # for the report's map
            result.plot(out)
            write_json(out / "config.json", summary["config"])
            StudyConfig.from_dict(summary["study_config"]).to_toml(out / "config.toml")
            write_json(out / "summary.json", summary)
    write_json(args.json, summary)
    t = Table(title=f"simulate {summary['day']}: {summary['vehicles']} EVs, {summary['n_regions']} regions, "
                    f"policy {summary['policy']}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for key in ("requests", "served", "unserved", "served_rate", "u_m_mean", "u_m_all_mean", "u_c_mean",
                "zero_supply_region_slots", "balancing_km", "balancing_km_vacant", "balancing_km_charge",
                "evmt_share", "wait_mean_min", "wait_p90_min", "charging_sessions", "charge_queue_mean_min",
                "idle_minutes_per_vehicle", "stranded", "sim_seconds", "seconds"):
        v = summary[key]
        t.add_row(key, f"{v:,.3f}" if isinstance(v, float) else f"{v:,}")
    Console().print(t)
    if note := centroids_note(summary["config"]):
        print(note)
    if args.out is not None:
        print(f"wrote {args.out}/ (slots, region_slots, events, requests parquet; regions.csv; fairness.png, "
              "served_rate.png, fleet_state.png; config.json, config.toml, summary.json)")
    if args.report:
        print(f"report: {write_report(args.out)}")
    return 0
