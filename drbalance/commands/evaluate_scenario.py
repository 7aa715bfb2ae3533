"""``drbalance evaluate-scenario``: run the dispatch policies on a peers' benchmark instance.

CLI contract (relied on by other tools; add options, never rename)::

    drbalance evaluate-scenario SCENARIO_FILE --days N --policies noop,greedy,nominal,demand_robust,dr
                                --seed S --json PATH
    drbalance evaluate-scenario SCENARIO_FILE --config DIR/config.toml [options override it]

SCENARIO_FILE is an RL4AMOD ``scenario_<city>.json[.gz]`` or an electric-AMoD ``NY_<n>`` folder.
Samples ``--history-days`` seeded Poisson days to fit forecasts and uncertainty sets, then replays N
fresh sampled days (another seed stream) of the scenario's demand window under each policy with
identical requests, fleet draw and chargers, and writes to PATH ``{"policies": {name:
{balancing_km, u_m_mean, u_c_mean, served, unserved, step_s_median, fallbacks, served_rate,
rebalancing_cost, ...}}}`` (``rebalancing_cost``: the scenario's rebalancing minutes x its cost per
minute, mean per day; see docs/scenarios.md).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from rich.console import Console
from rich.table import Table

from data_pipeline.scenarios import read_scenario
from drbalance.commands.common import (MODEL_V2_KEYS, add_model_v2_options, check_outputs, naming_options,
                                       option_values, with_options, write_json)
from drbalance.errors import ConfigError
from drbalance.io import atomic_folder
from drbalance.report import write_report
from drbalance.scenario_eval import ScenarioEvalConfig, evaluate_scenario, scenario_compare, scenario_policies_json
from drbalance.validation import check_number


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate-scenario", help="replay sampled days of a benchmark scenario under several policies",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", type=Path, help="RL4AMOD scenario_<city>.json[.gz] or eAMoD NY_<n> folder")
    p.add_argument("--config", type=Path, default=None,
                   help="scenario evaluation TOML (a results folder's config.toml, or a study TOML such as "
                        "examples/study.toml); options given here override it")
    p.add_argument("--days", type=int, default=None, help="fresh sampled days to replay (required unless --config)")
    p.add_argument("--policies", default=None, help="comma-separated (default noop,greedy,nominal,demand_robust,dr)")
    p.add_argument("--seed", type=int, default=None, help="seed of every draw (default 0)")
    p.add_argument("--json", type=Path, default=None, help="write the policies JSON here")
    p.add_argument("--out", type=Path, default=None, help="folder for the comparison table, runs, slots, config")
    p.add_argument("--report", action="store_true", help="also write OUT/report.html (needs --out; drbalance report)")
    p.add_argument("--history-days", type=int, default=None, help="sampled days the estimates are fitted on (28)")
    p.add_argument("--slot-minutes", type=int, default=None, help="default 15")
    p.add_argument("--horizon", type=int, default=None, help="default 4")
    p.add_argument("--fleet", type=int, default=None, help="EVs (default: the scenario's fleet at the window start)")
    p.add_argument("--scale", type=float, default=None,
                   help="demand multiplier (default: RL4AMOD calibrated demand_ratio; eAMoD 1)")
    p.add_argument("--window-minutes", type=int, default=None,
                   help="replay only the first M minutes of the demand window (default: all of it)")
    p.add_argument("--speed-kmh", type=float, default=None, help="converts rebalancing minutes to km (default 20)")
    p.add_argument("--reach-km", type=float, default=None,
                   help="vacant-EV reach (default: max(median distance, largest nearest-neighbour distance))")
    p.add_argument("--later-reach-km", type=float, default=None)
    p.add_argument("--low-battery-reach-km", type=float, default=None,
                   help="charger reach of low-battery EVs (default: the reach)")
    p.add_argument("--match-radius-km", type=float, default=None,
                   help="requests matched to EVs within this distance (default 0: own region only, as the peers)")
    p.add_argument("--plugs-per-vehicle", type=float, default=None, help="sited plugs where the scenario has none (0.1)")
    add_model_v2_options(p)
    p.add_argument("--beta1", type=float, default=None)
    p.add_argument("--beta2", type=float, default=None, help="charging weight (default 1 with chargers, else 0)")
    p.add_argument("--radius-scale", type=float, default=None)
    p.add_argument("--robust-radius", default=None, choices=["chi2", "conformal"])
    p.add_argument("--bootstrap", type=int, default=None)
    p.add_argument("--step-budget", type=float, default=None, help="per-step solve budget (s) before fallback (30)")
    p.set_defaults(func=run)


#: ``--option`` -> dotted :class:`StudyConfig` key of the scenario evaluation's study.
STUDY_KEYS = {
    **MODEL_V2_KEYS,
    "policies": "evaluation.policies", "seed": "seed", "slot_minutes": "slot_minutes", "horizon": "horizon",
    "fleet": "sim.fleet_size", "speed_kmh": "sim.speed_kmh", "reach_km": "balancing.reach_km",
    "later_reach_km": "balancing.later_reach_km", "low_battery_reach_km": "balancing.low_battery_reach_km",
    "match_radius_km": "sim.match_radius_km", "plugs_per_vehicle": "evaluation.plugs_per_vehicle",
    "beta1": "balancing.beta1", "beta2": "balancing.beta2", "radius_scale": "controller.radius_scale",
    "robust_radius": "estimate.robust_radius", "bootstrap": "estimate.n_bootstrap",
    "step_budget": "controller.step_budget_s",
}
#: an option given switches off the scenario-derived value it replaces
FROM_SCENARIO = {"fleet": "fleet_from_scenario", "reach_km": "reach_from_scenario",
                 "low_battery_reach_km": "low_reach_from_scenario", "beta2": "beta2_from_chargers"}


def config_from_args(args: argparse.Namespace) -> ScenarioEvalConfig:
    """The resolved :class:`ScenarioEvalConfig`: ``--config`` (or the protocol defaults), then the options."""
    if args.config is None and args.days is None:
        raise ConfigError("--days N is required (or --config FILE.toml with a [scenario] table that sets days)")
    base = ScenarioEvalConfig.from_toml(args.config) if args.config is not None else ScenarioEvalConfig()
    values = option_values(args, STUDY_KEYS)
    extra = {}
    if "balancing.low_battery_reach_km" in values and "balancing.reach_km" not in values:
        # keep low <= reach valid while the reach itself is still resolved from the scenario
        low = check_number("--low-battery-reach-km", values["balancing.low_battery_reach_km"], low=0)
        extra["balancing.reach_km"] = max(base.study.balancing.reach_km, low)
    changes = {flag: False for option, flag in FROM_SCENARIO.items() if getattr(args, option, None) is not None}
    for option, name in (("days", "days"), ("history_days", "history_days"), ("scale", "scale"),
                         ("window_minutes", "window_minutes")):
        if getattr(args, option, None) is not None:
            changes[name] = getattr(args, option)
    study = with_options(base.study, args, STUDY_KEYS, extra)
    with naming_options({name: name for name in changes}):
        return dataclasses.replace(base, study=study, **changes)


def print_table(ev, table) -> None:
    x = ev.extra
    t = Table(title=f"{x['scenario']}: {len(x['days'])} day(s), {x['fleet']} EVs, {x['n_regions']} regions, "
                    f"{x['replay_minutes']} min: mean (change vs nominal)")
    t.add_column("metric")
    names = list(dict.fromkeys(ev.runs["policy"]))
    for n in names:
        t.add_column(n, justify="right")
    idx = table.set_index(["policy", "metric"])
    for key in ("served_rate", "rebalancing_cost", "balancing_km", "u_m_mean", "u_c_mean", "step_s_median",
                "fallbacks"):
        cells = []
        for n in names:
            if (n, key) not in idx.index or not idx.loc[(n, key)]["mean"] == idx.loc[(n, key)]["mean"]:
                cells.append("–")
                continue
            r = idx.loc[(n, key)]
            ch = "" if n == "nominal" or not r["change_pct"] == r["change_pct"] else f" ({r['change_pct']:+.1f}%)"
            cells.append(f"{r['mean']:.4g}{ch}")
        t.add_row(key, *cells)
    Console().print(t)


def run(args: argparse.Namespace) -> int:
    check_outputs(files={"--json": args.json}, folders={"--out": args.out})
    if args.report and args.out is None:
        raise ConfigError("--report writes OUT/report.html: pass --out DIR as well")
    config = config_from_args(args)
    scenario = read_scenario(args.scenario)
    ev = evaluate_scenario(scenario, config)
    table = scenario_compare(ev)
    print_table(ev, table)
    payload = scenario_policies_json(ev, table)
    payload.update(scenario=str(args.scenario), seconds=ev.seconds, config=config.to_dict(), extra=ev.extra)
    if args.out is not None:
        with atomic_folder(args.out) as out:   # every file appears only once all are complete
            table.to_csv(out / "comparison.csv", index=False)
            ev.runs.to_parquet(out / "runs.parquet", index=False)
            ev.slots.to_parquet(out / "slots.parquet", index=False)
            write_json(out / "config.json", config.to_dict())
            config.to_toml(out / "config.toml")
            write_json(out / "evaluation.json", payload)
    write_json(args.json, payload)
    print(f"evaluated {len(config.policies)} policies on {config.days} day(s) of {scenario.name} "
          f"in {ev.seconds:.1f} s")
    if args.report:
        print(f"report: {write_report(args.out)}")
    return 0
