"""``drbalance evaluate``: does robust dispatch beat non-robust dispatch on my logs, by how much, at what cost?

CLI contract (relied on by other tools; add options, never rename)::

    drbalance evaluate TRIPS... [--zones CSV] --train A:B --days D1,D2,... --fleet N
                       --policies noop,greedy,nominal,demand_robust,dr --seed 0 --out DIR --json PATH
    drbalance evaluate TRIPS... --config FILE.toml [any option above overrides the file] [--centroids CSV]

Trains forecasts and uncertainty sets on ``--train``, replays every day of ``--days`` with each
policy on identical requests, fleet draw and chargers, and writes: the comparison table (mean and
95 % interval over days, % change vs ``nominal``) as ``comparison.csv``, per-run and per-slot
parquet, controller steps, plots of each metric over the day per policy, the resolved configuration
(``config.toml``: re-run it with ``--config DIR/config.toml`` to reproduce the results), and to
PATH ``{"policies": {name: {balancing_km, u_m_mean, u_c_mean, served, unserved, step_s_median,
fallbacks, ...}}}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from data_pipeline.readers import read_tlc_trips
from drbalance.commands.common import (add_centroids_option, centroids_note, check_outputs, read_zones,
                                       require_accepted, with_options, write_json, zone_files)
from drbalance.errors import ConfigError
from drbalance.io import atomic_folder
from drbalance.evaluation import METRICS, compare, evaluate, plot_day_profiles, policies_json
from drbalance.study_config import StudyConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="replay held-out days under several policies and compare them",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trips", nargs="+", type=Path, help="trip files (NYC TLC parquet/CSV)")
    add_evaluate_options(p)
    p.add_argument("--out", type=Path, default=None, help="folder for tables, parquet, plots and config")
    p.add_argument("--json", type=Path, default=None, help="write the policies JSON here")
    p.set_defaults(func=run)


#: ``--option`` -> dotted :class:`StudyConfig` key (a flag given on the command line overrides the
#: ``--config`` file's value; one not given leaves it, or the default, alone).
OPTION_KEYS = {
    "fleet": "sim.fleet_size", "policies": "evaluation.policies", "seed": "seed", "regions": "evaluation.regions",
    "slot_minutes": "slot_minutes", "horizon": "horizon", "hours": "evaluation.hours",
    "reach_km": "balancing.reach_km", "later_reach_km": "balancing.later_reach_km",
    "low_battery_reach_km": "balancing.low_battery_reach_km", "supply_floor": "balancing.supply_floor",
    "queue_allowance": "balancing.queue_allowance", "beta1": "balancing.beta1", "beta2": "balancing.beta2",
    "alpha": "balancing.alpha", "radius_scale": "controller.radius_scale", "robust_radius": "estimate.robust_radius",
    "bootstrap": "estimate.n_bootstrap", "plugs_per_vehicle": "evaluation.plugs_per_vehicle",
    "step_budget": "controller.step_budget_s", "train": "evaluation.train", "days": "evaluation.days",
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
    p.add_argument("--fleet", type=int, default=None, help=f"number of EVs (default {d.sim.fleet_size})")
    p.add_argument("--policies", default=None, help=f"comma-separated (default {','.join(d.evaluation.policies)})")
    p.add_argument("--seed", type=int, default=None, help=f"seed of every draw (default {d.seed})")
    p.add_argument("--regions", type=int, default=None,
                   help=f"coarsen zones into K regions, 0 = one per zone (default {d.evaluation.regions})")
    p.add_argument("--slot-minutes", type=int, default=None, help=f"default {d.slot_minutes}")
    p.add_argument("--horizon", type=int, default=None, help=f"slots K (default {d.horizon})")
    p.add_argument("--hours", type=float, default=None, help="replay the first H hours of each day (default 24)")
    p.add_argument("--reach-km", type=float, default=None,
                   help=f"vacant-EV reach of the optimisers (default {d.balancing.reach_km:g} km)")
    p.add_argument("--later-reach-km", type=float, default=None,
                   help="reach of slots 2..K (default: same as --reach-km; 2.0 speeds up per-zone runs)")
    p.add_argument("--low-battery-reach-km", type=float, default=None,
                   help=f"charger reach of low-battery EVs (default {d.balancing.low_battery_reach_km:g} km)")
    p.add_argument("--supply-floor", type=float, default=None, help="vehicles added to each S + s denominator")
    p.add_argument("--queue-allowance", type=float, default=None, help="queued EVs allowed per charger region")
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
    config = with_options(base or StudyConfig(), args, OPTION_KEYS)
    if not config.evaluation.days:
        raise ConfigError("no evaluation day: pass --days D1,D2,... (dates after the training period), or a "
                          "--config file whose evaluation.days lists some")
    return config


def run_evaluation(trip_files: list[Path], zones_path: Path | None, config, console=None,
                   centroids: Path | None = None):
    """Read the trips (zones: :func:`drbalance.commands.common.read_zones`), run
    :func:`drbalance.evaluation.evaluate` with a progress bar, compare."""
    zones = read_zones(trip_files, zones_path, centroids)
    ev_cfg = config.evaluation
    last = max(pd.Timestamp(d) for d in ev_cfg.days)
    ing = read_tlc_trips(trip_files, zones, period=(ev_cfg.train[0], str(last.date())))
    require_accepted(ing.report, (ev_cfg.train[0], str(last.date())))
    total = len(ev_cfg.days) * len(ev_cfg.policies)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("replaying", total=total)

        def step(day, policy):
            bar.update(task, advance=1, description=f"replayed {day} {policy}")

        ev = evaluate(ing.frame, zones, config, progress=step, rejects=ing.report.by_reason)
    ev.extra.update(rows_read=ing.report.rows_read, rows_accepted=ing.report.rows_accepted, **zone_files(zones))
    return ev, compare(ev)


def print_comparison(ev, table, console=None) -> None:
    console = console or Console()
    t = Table(title=f"{len(ev.config.evaluation.days)} day(s), {ev.config.sim.fleet_size} EVs, {ev.extra.get('n_regions')} regions: "
                    "mean [95 % interval] (change vs nominal)")
    t.add_column("metric")
    names = list(dict.fromkeys(ev.runs["policy"]))
    for n in names:
        t.add_column(n, justify="right")
    idx = table.set_index(["policy", "metric"])
    for key, label, _ in METRICS:
        cells = []
        for n in names:
            if (n, key) not in idx.index:
                cells.append("")
                continue
            r = idx.loc[(n, key)]
            if not r["mean"] == r["mean"]:
                cells.append("–")
                continue
            ci = "" if r["n_days"] < 2 else f" [{r['ci_low']:.3g}, {r['ci_high']:.3g}]"
            ch = "" if not (r["change_pct"] == r["change_pct"]) or n == "nominal" else f" ({r['change_pct']:+.1f}%)"
            cells.append(f"{r['mean']:.4g}{ci}{ch}")
        t.add_row(label, *cells)
    console.print(t)


def write_evaluation(ev, table, folder: Path | None, json_path: Path | None) -> dict:
    """Tables, parquet, day profiles, the resolved configuration and ``evaluation.json`` into ``folder``
    (None: none); the policies JSON to ``json_path`` (None: none)."""
    payload = policies_json(ev, table)
    payload.update(days=list(ev.config.evaluation.days), seconds=ev.seconds, n_regions=ev.extra.get("n_regions"),
                   config=ev.config.to_dict(), extra=ev.extra)
    if folder is not None:
        with atomic_folder(folder) as out:   # every file appears only once all are complete
            table.to_csv(out / "comparison.csv", index=False)
            ev.runs.to_parquet(out / "runs.parquet", index=False)
            ev.slots.to_parquet(out / "slots.parquet", index=False)
            if len(ev.steps):
                ev.steps.assign(t=ev.steps["t"].astype(str)).to_parquet(out / "steps.parquet", index=False)
            plot_day_profiles(ev, out)
            write_json(out / "config.json", ev.config.to_dict())
            ev.config.to_toml(out / "config.toml")
            write_json(out / "evaluation.json", payload)
    write_json(json_path, payload)
    return payload


def run(args: argparse.Namespace) -> int:
    check_outputs(files={"--json": args.json}, folders={"--out": args.out})
    config = config_from_args(args)
    ev, table = run_evaluation(args.trips, args.zones, config, centroids=args.centroids)
    print_comparison(ev, table)
    if note := centroids_note(ev.extra):
        print(note)
    write_evaluation(ev, table, args.out, args.json)
    print(f"evaluated {len(config.evaluation.policies)} policies on {len(config.evaluation.days)} day(s) "
          f"in {ev.seconds:.1f} s" + (f"; results and config.toml in {args.out}/" if args.out else ""))
    return 0
