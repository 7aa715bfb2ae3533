"""``drbalance evaluate``: does robust dispatch beat non-robust dispatch on my logs, by how much, at what cost?

CLI contract (relied on by other tools; add options, never rename)::

    drbalance evaluate TRIPS... [--zones CSV] --train A:B --days D1,D2,... [--fleet N|auto] [--trips-per-ev 15]
                       [--seeds 0,1,2] [--baseline nominal] [--policies noop,greedy,nominal,demand_robust,dr]
                       [--estimates fixed|rolling:N] [--workers W] [--scheduler ADDR] --seed 0 --out DIR --json PATH
    drbalance evaluate TRIPS... --config FILE.toml [any option above overrides the file] [--centroids CSV]

Trains forecasts and uncertainty sets on ``--train`` (or, with ``--estimates rolling:N``, on the N
days before each replayed day), sizes the fleet (``--fleet auto``, the default without ``--config``:
the training weekdays average ``--trips-per-ev`` trips per EV per day), replays every (day, seed) pair
of ``--days`` x ``--seeds`` with each policy on identical requests, fleet draw and chargers (on Dask
with ``--workers``/``--scheduler``: identical results), and prints the table: every metric with its
unit and better-direction, per policy, and its change against ``--baseline`` with a 95 % paired
bootstrap interval over days.  Writes ``comparison.csv``, per-run and per-slot parquet, controller
steps, day-profile plots, the resolved configuration (``config.toml``: re-run it with ``--config
DIR/config.toml`` to reproduce the results) and to PATH ``{"fleet", "policies": {name: {served_rate,
balancing_km, wait_min_mean, wait_min_p90, fallback_share, u_m_mean, u_m_all_mean, u_m_common_mean,
u_c_mean, u_c_reliable, step_s_median, ...}}, "paired": {name: {baseline, served_rate_pp,
balancing_km_pct, wait_min, u_m_all_pct, ...}}, "seconds", ...}``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import Progress

from data_pipeline.readers import read_tlc_trips
from drbalance.report import write_report
from drbalance.report_data import write_map_data
from drbalance.commands.common import (MODEL_V2_KEYS, add_centroids_option, add_model_v2_options,
                                       add_replay_options, centroids_note, check_outputs, read_zones,
                                       require_accepted, with_options, write_json, zone_files)
from drbalance.errors import ConfigError
from drbalance.io import atomic_folder
from drbalance.evaluation import compare, evaluate, plot_day_profiles, summary_json
from drbalance.study_config import StudyConfig
from drbalance.tables import format_evaluation


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="replay held-out days under several policies and compare them",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trips", nargs="+", type=Path, help="trip files (NYC TLC parquet/CSV)")
    add_evaluate_options(p)
    p.add_argument("--out", type=Path, default=None, help="folder for tables, parquet, plots and config")
    p.add_argument("--json", type=Path, default=None, help="write the policies JSON here")
    p.add_argument("--report", action="store_true", help="also write OUT/report.html (needs --out)")
    p.set_defaults(func=run)


#: ``--option`` -> dotted :class:`StudyConfig` key (a flag given on the command line overrides the
#: ``--config`` file's value; one not given leaves it, or the default, alone).
OPTION_KEYS = {
    **MODEL_V2_KEYS,
    "policies": "evaluation.policies", "seed": "seed", "regions": "evaluation.regions",
    "slot_minutes": "slot_minutes", "horizon": "horizon", "hours": "evaluation.hours",
    "reach_km": "balancing.reach_km", "later_reach_km": "balancing.later_reach_km",
    "low_battery_reach_km": "balancing.low_battery_reach_km", "supply_floor": "balancing.supply_floor",
    "queue_allowance": "balancing.queue_allowance", "beta1": "balancing.beta1", "beta2": "balancing.beta2",
    "alpha": "balancing.alpha", "radius_scale": "controller.radius_scale", "robust_radius": "estimate.robust_radius",
    "bootstrap": "estimate.n_bootstrap", "plugs_per_vehicle": "evaluation.plugs_per_vehicle",
    "step_budget": "controller.step_budget_s", "train": "evaluation.train", "days": "evaluation.days",
    "trips_per_ev": "evaluation.trips_per_ev", "baseline": "evaluation.baseline", "estimates": "evaluation.estimates",
    "workers": "evaluation.workers", "scheduler": "evaluation.scheduler",
}


def add_evaluate_options(p: argparse.ArgumentParser, required: bool = True) -> None:
    """The study options of ``evaluate`` (and ``demo``); defaults live in :class:`StudyConfig`."""
    d = StudyConfig()
    p.add_argument("--config", type=Path, default=None,
                   help="study configuration TOML (e.g. examples/study.toml or a results folder's config.toml); "
                        "options given here override its values")
    p.add_argument("--zones", type=Path, default=None, help="TLC taxi_zone_lookup.csv (default: beside the trips)")
    add_centroids_option(p)
    p.add_argument("--train", default=None, help="training period START:END (inclusive)" +
                   ("; required unless --config sets it" if required else ""))
    p.add_argument("--days", default=None, help="comma-separated evaluation days after the training period")
    p.add_argument("--fleet", default=None,
                   help="number of EVs, or 'auto': the training weekdays average --trips-per-ev trips per EV "
                        "per day (default auto, or the --config file's setting)")
    p.add_argument("--trips-per-ev", type=float, default=None,
                   help=f"target trips per EV per day of --fleet auto (default {d.evaluation.trips_per_ev:g})")
    p.add_argument("--seeds", default=None,
                   help="comma-separated fleet-draw seeds; every (day, seed) pair replays every policy "
                        "(default: --seed only)")
    p.add_argument("--baseline", default=None,
                   help="policy the others are compared with pair by pair (default nominal, if compared)")
    p.add_argument("--estimates", default=None,
                   help="'fixed' (fitted on --train) or 'rolling:N' (refitted on the N days before each day)")
    p.add_argument("--workers", type=int, default=None,
                   help="Dask worker processes for the replays (default 0: in this process)")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (tcp://host:8786)")
    p.add_argument("--policies", default=None, help=f"comma-separated (default {','.join(d.evaluation.policies)})")
    add_replay_options(p, d)
    p.add_argument("--supply-floor", type=float, default=None, help="vehicles added to each S + s denominator")
    p.add_argument("--queue-allowance", type=float, default=None, help="queued EVs allowed per charger region")
    add_model_v2_options(p)
    p.add_argument("--tuned", type=Path, default=None,
                   help="tuned.json of `drbalance tune`: every optimiser at the weights chosen for it")
    p.add_argument("--beta1", type=float, default=None)
    p.add_argument("--beta2", type=float, default=None)
    p.add_argument("--alpha", type=float, default=None)
    p.add_argument("--radius-scale", type=float, default=None, help="multiply every set radius (sweeps)")
    p.add_argument("--robust-radius", default=None, choices=["chi2", "conformal"])
    p.add_argument("--bootstrap", type=int, default=None, help="bootstrap resamples of the DR radius")
    p.add_argument("--plugs-per-vehicle", type=float, default=None)
    p.add_argument("--step-budget", type=float, default=None, help="per-step solve budget (s) before fallback")


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    """The resolved :class:`StudyConfig`: ``--config`` file (or the defaults), then the options given."""
    base = StudyConfig.from_toml(args.config) if args.config is not None else None
    if base is None and (args.train is None or args.days is None):
        raise ConfigError("--train and --days are required (or --config FILE.toml that sets "
                          "evaluation.train and evaluation.days)")
    extra = fleet_values(args, base is None)
    if getattr(args, "tuned", None) is not None:
        extra["evaluation.weights"] = tuned_weights(args.tuned)
    config = with_options(base or StudyConfig(), args, OPTION_KEYS, extra)
    if not config.evaluation.days:
        raise ConfigError("no evaluation day: pass --days D1,D2,... (dates after the training period), or a "
                          "--config file whose evaluation.days lists some")
    return config


def tuned_weights(path: Path) -> dict:
    """Per-optimiser weights from ``drbalance tune``'s ``tuned.json`` (its ``chosen`` table); a missing or
    malformed file raises :class:`ConfigError` naming ``--tuned``."""
    try:
        chosen = json.loads(Path(path).read_text())["chosen"]
        return {mode: {k: float(v[k]) for k in ("lost_request_km", "charge_queue_km") if k in v}
                for mode, v in chosen.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"--tuned {path}: not a tuned.json written by `drbalance tune` ({type(exc).__name__}: "
                          f"{exc}); run `drbalance tune ... --out DIR` and pass DIR/tuned.json") from None


def fleet_values(args: argparse.Namespace, default_auto: bool = True) -> dict:
    """Dotted configuration values of ``--fleet`` (``auto`` or a whole number >= 1) and ``--seeds``
    (comma-separated whole numbers >= 0); without ``--fleet``, ``default_auto`` asks for ``auto``
    (no ``--config`` file).  Bad values raise :class:`ConfigError` naming the option."""
    out: dict = {}
    fleet = getattr(args, "fleet", None)
    if fleet is None:
        if default_auto:
            out["evaluation.fleet_sizing"] = "auto"
    elif str(fleet).strip() == "auto":
        out["evaluation.fleet_sizing"] = "auto"
    else:
        text = str(fleet).strip()
        if not text.isdigit() or int(text) < 1:
            raise ConfigError(f"--fleet must be a whole number of EVs >= 1 or 'auto', got {fleet!r}")
        out.update({"sim.fleet_size": int(text), "evaluation.fleet_sizing": "fixed"})
    seeds = getattr(args, "seeds", None)
    if seeds is not None:
        parts = [x.strip() for x in str(seeds).split(",") if x.strip()]
        if not parts or not all(x.isdigit() for x in parts):
            raise ConfigError(f"--seeds must be comma-separated whole numbers >= 0 (e.g. 0,1,2), got {seeds!r}")
        if len(set(map(int, parts))) != len(parts):
            raise ConfigError(f"--seeds repeats a seed: {seeds!r}; give each seed once")
        out["evaluation.seeds"] = [int(x) for x in parts]
    return out


def run_evaluation(trip_files: list[Path], zones_path: Path | None, config, console=None,
                   centroids: Path | None = None):
    """Read the trips (zones: :func:`drbalance.commands.common.read_zones`), run
    :func:`drbalance.evaluation.evaluate` with a progress bar, compare."""
    zones = read_zones(trip_files, zones_path, centroids)
    ev_cfg = config.evaluation
    last = max(pd.Timestamp(d) for d in ev_cfg.days)
    ing = read_tlc_trips(trip_files, zones, period=(ev_cfg.train[0], str(last.date())))
    require_accepted(ing.report, (ev_cfg.train[0], str(last.date())))
    total = len(ev_cfg.days) * len(ev_cfg.seeds or (config.seed,)) * len(ev_cfg.policies)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("replaying", total=total)

        def step(day, policy):
            bar.update(task, advance=1, description=f"replayed {day} {policy}")

        ev = evaluate(ing.frame, zones, config, progress=step, rejects=ing.report.by_reason)
    ev.extra.update(rows_read=ing.report.rows_read, rows_accepted=ing.report.rows_accepted, **zone_files(zones))
    return ev, compare(ev)


def print_comparison(ev, table, console=None) -> None:
    """Print the evaluation table (:func:`drbalance.tables.format_evaluation`): as wide as the terminal,
    unlimited when the output goes to a file or pipe."""
    text = format_evaluation(summary_json(ev, table), width=terminal_width())
    if console is None:
        print(text)
    else:
        console.print(text, markup=False, highlight=False, soft_wrap=True)


def terminal_width() -> int | None:
    """Columns of the terminal on stdout, or None when stdout is not a terminal (a file: wide)."""
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size((100, 24)).columns


def write_evaluation(ev, table, folder: Path | None, json_path: Path | None) -> dict:
    """Tables, parquet, day profiles, the resolved configuration and ``evaluation.json`` into ``folder``
    (None: none); the policies JSON to ``json_path`` (None: none)."""
    payload = summary_json(ev, table)
    payload.update(config=ev.config.to_dict(), extra=ev.extra)
    if folder is not None:
        with atomic_folder(folder) as out:   # every file appears only once all are complete
            table.to_csv(out / "comparison.csv", index=False)
            ev.runs.drop(columns=["wait_counts"], errors="ignore").to_parquet(out / "runs.parquet", index=False)
            ev.slots.to_parquet(out / "slots.parquet", index=False)
            if len(ev.steps):
                ev.steps.assign(t=ev.steps["t"].astype(str)).to_parquet(out / "steps.parquet", index=False)
            plot_day_profiles(ev, out)
            if ev.region_slots is not None:   # the report's map
                write_map_data(out, ev.region_slots, ev.regions)
            write_json(out / "config.json", ev.config.to_dict())
            ev.config.to_toml(out / "config.toml")
            write_json(out / "evaluation.json", payload)
    write_json(json_path, payload)
    return payload


def run(args: argparse.Namespace) -> int:
    if args.report and args.out is None:
        raise ConfigError("--report writes OUT/report.html: give --out DIR")
    check_outputs(files={"--json": args.json}, folders={"--out": args.out})
    config = config_from_args(args)
    ev, table = run_evaluation(args.trips, args.zones, config, centroids=args.centroids)
    print_comparison(ev, table)
    if note := centroids_note(ev.extra):
        print(note)
    write_evaluation(ev, table, args.out, args.json)
    n_seeds = len(config.evaluation.seeds or (config.seed,))
    print(f"evaluated {len(config.evaluation.policies)} policies on {len(config.evaluation.days)} day(s) x "
          f"{n_seeds} seed(s) with {ev.config.sim.fleet_size} EVs in {ev.seconds:.1f} s" + (f"; results and config.toml in {args.out}/" if args.out else ""))
    if args.report:
        print(f"report: {write_report(args.out)}")
    return 0
