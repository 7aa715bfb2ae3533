"""``drbalance tune``: choose model v2's weights (λ, charging weight) on the training period only.

CLI contract (add options, never rename)::

    drbalance tune TRIPS... [--zones CSV] --train A:B [--validation-weeks 2] [--modes nominal,saa,dr]
                   [--lost-request-km 5,10,20,40] [--charge-queue-km 2] [--lost-request-value-km 20]
                   [--fleet N|auto] [--seeds 0] [--workers W] --out DIR --json PATH
    drbalance tune TRIPS... --config FILE.toml [any option above overrides the file]

The validation days are the weekdays of the last ``--validation-weeks`` weeks of ``--train``; the
estimates, regions, chargers and the ``auto`` fleet are fitted on the training days strictly before the
first of them (no look-ahead).  Every mode x λ (``--lost-request-km``) x charging weight
(``--charge-queue-km``, default: the configured one) is replayed on every validation day x seed and
scored by its realised cost ``balancing km + V x unserved requests`` per day, ``V`` =
``--lost-request-value-km`` (the operator's value of a lost request in km of empty driving; the model's
λ is a knob of an approximate model and need not equal it).  Per mode the λ with the lowest mean cost
wins (ties: the smaller λ).  Writes ``OUT/sweep.csv`` (one row per mode x λ x charging weight x day x
seed: served, unserved, balancing_km, cost, ...), ``OUT/means.csv``, ``OUT/tuned.json`` (``{"value_km",
"validation_days", "chosen": {mode: {"lost_request_km", "charge_queue_km", "cost", "served_rate",
"balancing_km"}}, "seconds", ...}``; also to ``--json PATH``), ``OUT/config.toml`` (the study with every
tuned mode's weights in ``[evaluation.weights.<mode>]`` and ``[balancing]`` at the ``dr`` choice, or the
first mode's without ``dr``: ``drbalance evaluate --config OUT/config.toml --days ...`` replays each
optimiser at its own tuned weights) and ``OUT/validation.toml`` (the validation replays' configuration).
See docs/tuning.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.progress import Progress

from data_pipeline.readers import read_tlc_trips
from drbalance.commands.common import (add_centroids_option, add_replay_options, centroids_note, check_outputs, read_zones,
                                       require_accepted, with_options, write_json, zone_files)
from drbalance.commands.evaluate import OPTION_KEYS as EVALUATE_KEYS
from drbalance.commands.evaluate import fleet_values
from drbalance.errors import ConfigError
from drbalance.io import atomic_folder
from drbalance.study_config import StudyConfig
from drbalance.tuning import (TuneSettings, mean_table, run_sweep, tuned_config, tuned_json,
                              validation_config)

#: the study options ``tune`` shares with ``evaluate`` (``--option`` -> dotted :class:`StudyConfig` key)
OPTION_KEYS = {k: v for k, v in EVALUATE_KEYS.items()
               if k in ("seed", "regions", "slot_minutes", "horizon", "hours", "reach_km", "later_reach_km",
                        "low_battery_reach_km", "timing_share", "radius_scale", "robust_radius", "bootstrap",
                        "plugs_per_vehicle", "step_budget", "train", "trips_per_ev", "estimates", "workers",
                        "scheduler")}


def register(sub: argparse._SubParsersAction) -> None:
    d = StudyConfig()
    s = TuneSettings()
    p = sub.add_parser("tune", help="choose the shortfall model's weights by validation replays of the training period",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trips", nargs="+", type=Path, help="trip files (NYC TLC parquet/CSV) covering --train")
    p.add_argument("--config", type=Path, default=None,
                   help="study configuration TOML; options given here override its values")
    p.add_argument("--zones", type=Path, default=None, help="TLC taxi_zone_lookup.csv (default: beside the trips)")
    add_centroids_option(p)
    p.add_argument("--train", default=None, help="training period START:END (inclusive); required unless --config sets it")
    p.add_argument("--validation-weeks", default=None,
                   help=f"validate on the weekdays of the last W weeks of --train (default {s.validation_weeks})")
    p.add_argument("--modes", default=None, help=f"comma-separated modes to tune (default {','.join(s.modes)})")
    p.add_argument("--lost-request-km", default=None,
                   help="comma-separated lambda grid, km of empty driving per lost request "
                        f"(default {','.join(f'{x:g}' for x in s.lost_request_km)})")
    p.add_argument("--charge-queue-km", default=None,
                   help="comma-separated charging-weight grid, km per EV-slot waiting for a plug "
                        f"(default: the configured value, {d.balancing.charge_queue_km:g})")
    p.add_argument("--lost-request-value-km", default=None,
                   help=f"the operator's value of one lost request in km (realised cost; default {s.value_km:g})")
    p.add_argument("--fleet", default=None,
                   help="number of EVs, or 'auto' (trips per EV per weekday of the fit period; default auto, "
                        "or the --config file's setting)")
    p.add_argument("--trips-per-ev", type=float, default=None,
                   help=f"target trips per EV per day of --fleet auto (default {d.evaluation.trips_per_ev:g})")
    p.add_argument("--seeds", default=None, help="comma-separated fleet-draw seeds (default: --seed only)")
    add_replay_options(p, d)
    p.add_argument("--timing-share", type=float, default=None,
                   help="theta in [0, 1] (default: estimated from the training trips)")
    p.add_argument("--radius-scale", type=float, default=None, help="multiply every set radius")
    p.add_argument("--robust-radius", default=None, choices=["chi2", "conformal"])
    p.add_argument("--bootstrap", type=int, default=None, help="bootstrap resamples of the DR radius")
    p.add_argument("--plugs-per-vehicle", type=float, default=None)
    p.add_argument("--step-budget", type=float, default=None, help="per-step solve budget (s) before fallback")
    p.add_argument("--estimates", default=None,
                   help="'fixed' (fitted before the first validation day, default) or 'rolling:N'")
    p.add_argument("--workers", type=int, default=None, help="Dask worker processes (default 0: in this process)")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    p.add_argument("--out", type=Path, default=None, help="folder for sweep.csv, tuned.json and the config files")
    p.add_argument("--json", type=Path, default=None, help="write tuned.json here too")
    p.set_defaults(func=run)


def _numbers(text: str, option: str) -> tuple[float, ...]:
    """Comma-separated numbers of ``option`` (checked further by :class:`TuneSettings`)."""
    parts = [x.strip() for x in str(text).split(",")]
    if not any(parts) or not all(parts):
        raise ConfigError(f"{option} must be comma-separated numbers in km (e.g. 5,10,20,40), got {text!r}")
    try:
        return tuple(float(x) for x in parts)
    except ValueError:
        raise ConfigError(f"{option} must be comma-separated numbers in km (e.g. 5,10,20,40), got {text!r}") from None


def settings_from_args(args: argparse.Namespace) -> TuneSettings:
    """The :class:`TuneSettings` of the options (defaults for those not given); errors name the option."""
    values: dict = {}
    if args.modes is not None:
        values["modes"] = tuple(x.strip() for x in str(args.modes).split(","))
    if args.lost_request_km is not None:
        values["lost_request_km"] = _numbers(args.lost_request_km, "--lost-request-km")
    if args.charge_queue_km is not None:
        values["charge_queue_km"] = _numbers(args.charge_queue_km, "--charge-queue-km")
    if args.lost_request_value_km is not None:
        values["value_km"] = _numbers(args.lost_request_value_km, "--lost-request-value-km")
        if len(values["value_km"]) != 1:
            raise ConfigError(f"--lost-request-value-km must be one number in km, got {args.lost_request_value_km!r}")
        values["value_km"] = values["value_km"][0]
    if args.validation_weeks is not None:
        text = str(args.validation_weeks).strip()
        if not text.isdigit():
            raise ConfigError(f"--validation-weeks must be a whole number of weeks >= 1, got {args.validation_weeks!r}")
        values["validation_weeks"] = int(text)
    option = {"modes": "--modes", "lost_request_km": "--lost-request-km", "charge_queue_km": "--charge-queue-km",
              "value_km": "--lost-request-value-km", "validation_weeks": "--validation-weeks"}
    try:
        return TuneSettings(**values)
    except ConfigError as exc:
        field = str(exc).split(" ", 1)[0].rstrip(":")
        raise ConfigError(f"{exc} (from {option[field]})" if field in option else str(exc)) from None


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    """The resolved :class:`StudyConfig`: ``--config`` file (or the defaults), then the options given."""
    base = StudyConfig.from_toml(args.config) if args.config is not None else None
    if base is None and args.train is None:
        raise ConfigError("--train is required (or --config FILE.toml that sets evaluation.train)")
    return with_options(base or StudyConfig(), args, OPTION_KEYS, fleet_values(args, base is None))


def format_table(payload: dict) -> str:
    """The sweep's mean table as text: one line per mode x λ x charging weight, ``*`` on the choices."""
    head = (f"{'mode':<14}{'lambda km':>10}{'charge km':>10}{'cost km/day':>13}{'served':>9}"
            f"{'km/day':>10}{'unserved/day':>14}{'runs':>6}")
    lines = [head, "-" * len(head)]
    chosen = payload["chosen"]
    for r in payload["means"]:
        c = chosen.get(r["mode"], {})
        mark = " *" if (c.get("lost_request_km"), c.get("charge_queue_km")) == (r["lost_request_km"],
                                                                               r["charge_queue_km"]) else ""
        served = "-" if r["served_rate"] is None or r["served_rate"] != r["served_rate"] else f"{100 * r['served_rate']:.2f}%"
        lines.append(f"{r['mode']:<14}{r['lost_request_km']:>10g}{r['charge_queue_km']:>10g}{r['cost']:>13.1f}"
                     f"{served:>9}{r['balancing_km']:>10.1f}{r['unserved']:>14.1f}{r['runs']:>6d}{mark}")
    lines.append(f"cost = balancing km + {payload['value_km']:g} km x unserved requests, per replayed day; "
                 "* = chosen (lowest mean cost; ties: the smaller lambda)")
    return "\n".join(lines)


def write_tuning(tuning, folder: Path | None, json_path: Path | None) -> dict:
    """``sweep.csv``, ``means.csv``, ``tuned.json``, ``config.toml`` (:func:`drbalance.tuning.tuned_config`)
    and ``validation.toml`` into ``folder`` (None: none); the payload to ``json_path`` (None: none)."""
    payload = tuned_json(tuning)
    if folder is not None:
        with atomic_folder(folder) as out:   # every file appears only once all are complete
            tuning.sweep.to_csv(out / "sweep.csv", index=False)
            mean_table(tuning.sweep).to_csv(out / "means.csv", index=False)
            tuned_config(tuning.config, tuning.chosen).to_toml(out / "config.toml")
            tuning.validation.to_toml(out / "validation.toml")
            write_json(out / "tuned.json", payload)
    write_json(json_path, payload)
    return payload


def run(args: argparse.Namespace) -> int:
    check_outputs(files={"--json": args.json}, folders={"--out": args.out})
    settings = settings_from_args(args)
    config = config_from_args(args)
    vcfg = validation_config(config, settings)     # validation days and fit period, checked before any read
    train = config.evaluation.train
    zones = read_zones(args.trips, args.zones, args.centroids)
    ing = read_tlc_trips(args.trips, zones, period=train)
    require_accepted(ing.report, train)
    cq = settings.charge_queue_km or (config.balancing.charge_queue_km,)
    n_seeds = len(config.evaluation.seeds or (config.seed,))
    print(f"tuning {', '.join(settings.modes)} on {len(vcfg.evaluation.days)} validation day(s) "
          f"{vcfg.evaluation.days[0]}..{vcfg.evaluation.days[-1]} x {n_seeds} seed(s), estimates fitted on "
          f"{vcfg.evaluation.train[0]}..{vcfg.evaluation.train[1]}; lambda "
          f"{','.join(f'{x:g}' for x in settings.lost_request_km)} km, charging weight {','.join(f'{x:g}' for x in cq)} km")
    log = not sys.stdout.isatty()     # a log file gets one line per replay, a terminal a progress bar
    with Progress(transient=True, disable=log) as bar:
        task = bar.add_task("replaying", total=None)

        def step(done, n, row):
            bar.update(task, completed=done, total=n)
            if log:
                print(f"[{done}/{n}] {row['mode']} lambda {row['lost_request_km']:g} charge {row['charge_queue_km']:g} "
                      f"{row['day']} seed {row['seed']}: served {row['served']}/{row['requests']}, "
                      f"{row['balancing_km']:.1f} km, cost {row['cost']:.1f} km ({row['replay_s']:.1f} s)", flush=True)

        tuning = run_sweep(ing.frame, zones, config, settings, rejects=ing.report.by_reason, progress=step)
    tuning.extra.update(rows_read=ing.report.rows_read, rows_accepted=ing.report.rows_accepted, **zone_files(zones))
    payload = write_tuning(tuning, args.out, args.json)
    print(format_table(payload))
    edge = [m for m, c in tuning.chosen.items() if c.get("at_grid_edge")]
    if edge:
        print(f"note: {', '.join(edge)} chose the largest lambda tried; the best may lie beyond it "
              "(extend --lost-request-km upwards)")
    if note := centroids_note(tuning.extra):
        print(note)
    chosen = ", ".join(f"{m} lambda {c['lost_request_km']:g} km" for m, c in tuning.chosen.items())
    print(f"chose {chosen} with {tuning.fleet['size']} EVs in {tuning.seconds:.1f} s"
          + (f"; sweep.csv, tuned.json and config.toml in {args.out}/" if args.out else ""))
    return 0
