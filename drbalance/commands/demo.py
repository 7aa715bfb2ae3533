"""``drbalance demo``: the main job on the bundled NYC green-taxi data (Jan–Mar 2021).

1. Estimation: ingests the three bundled months, prints the reject report, trains on
   January–February, holds out March, and prints the coverage of the robust and DR uncertainty sets
   with both robust radii (chi-square and conformal).
2. Evaluation: replays five March weekdays with a fleet sized so that the training weekdays average 15
   trips per EV (``--fleet auto``: 179 EVs) under the policies ``noop, greedy, nominal, saa, dr`` (model v2,
   each optimiser at the weights ``drbalance tune`` chose on the training period: the bundled
   ``tuned.json``) on identical requests, fleet draws and chargers, and prints the comparison table
   (change vs ``nominal`` with paired bootstrap intervals over days).
3. Report: writes ``OUT/report.html`` (``drbalance report OUT``: headline, table, day profiles, map)
   and prints its path.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from drbalance import datasets
from drbalance.commands.common import check_outputs, with_options
from drbalance.commands.estimate import (add_estimate_options, config_from_args, print_report, run_estimate,
                                         write_outputs)
from drbalance.commands.evaluate import (fleet_values, print_comparison, run_evaluation, tuned_weights,
                                         write_evaluation)
from drbalance.report import write_report

DEMO_DAYS = "2021-03-02,2021-03-03,2021-03-04,2021-03-09,2021-03-10"
#: where the demo writes its results unless --out says otherwise (relative to the working folder)
DEFAULT_OUT = "drbalance-demo"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the pipeline and the policy evaluation on the bundled NYC data",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_estimate_options(p, train_required=False)
    p.set_defaults(train="2021-01-01:2021-02-28", heldout="2021-03-01:2021-03-31", regions=20)
    p.add_argument("--days", default=DEMO_DAYS, help="evaluation days (comma-separated)")
    p.add_argument("--fleet", default="auto",
                   help="EVs in the replay, or auto (default: 15 trips per EV per training weekday)")
    p.add_argument("--policies", default="noop,greedy,nominal,saa,dr")
    p.add_argument("--tuned", type=Path, default=None,
                   help="tuned.json of `drbalance tune` (default: the bundled one, tuned on Jan-Feb 2021)")
    p.add_argument("--hours", type=float, default=24.0, help="replay the first H hours of each day")
    p.add_argument("--skip-evaluation", action="store_true", help="only run the estimation part")
    p.add_argument("--out", type=Path, default=Path(DEFAULT_OUT),
                   help=f"results folder: estimates/ and evaluation/ (default ./{DEFAULT_OUT}/)")
    p.add_argument("--json", type=Path, default=None, help="write the estimate summary JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console()
    out = args.out
    check_outputs(files={"--json": args.json}, folders={"--out": out})
    trips = datasets.nyc_green_trip_files()
    args.zones = args.zones or datasets.nyc_zone_lookup()
    base = config_from_args(args)           # the resolved study settings (defaults, --config, options)
    # the evaluation's settings, checked now (before the estimation's minutes of work)
    extra = fleet_values(args)
    tuned = args.tuned or datasets.nyc_tuned_weights()
    if tuned is not None:
        extra["evaluation.weights"] = tuned_weights(tuned)
    cfg = with_options(base, args, {"days": "evaluation.days", "policies": "evaluation.policies",
                                    "hours": "evaluation.hours"}, extra)
    args.robust_radius = base.estimate.robust_radius
    console.print(f"[bold]drbalance demo[/]: {len(trips)} bundled NYC green-taxi months, train {args.train}, "
                  f"held out {args.heldout}, {base.slot_minutes}-min slots, horizon {base.horizon}, "
                  f"{base.evaluation.regions or 'all'} regions")
    results = {}
    methods = [args.robust_radius] + [m for m in ("chi2", "conformal") if m != args.robust_radius]
    with Progress(console=console, transient=True) as bar:
        for method in methods:
            a = copy.copy(args)
            a.robust_radius = method
            task = bar.add_task(f"estimating ({method} robust radius)", total=2 * 2 * (1440 // base.slot_minutes))
            results[method] = run_estimate(trips, a, progress=lambda: bar.advance(task))
    main = results[methods[0]]
    print_report(main, console)
    t = Table(title="Robust-set coverage on held-out days by radius method (nominal "
                    f"{main.summary['nominal_coverage_robust']:.2f})")
    t.add_column("radius")
    for q in main.coverage:
        t.add_column(q)
    for m, r in results.items():
        t.add_row(m, *[f"{r.coverage[q]['robust']:.3f}" for q in main.coverage])
    console.print(t)
    write_outputs(main, out / "estimates", args.json)
    total = sum(r.summary["seconds"] for r in results.values())
    if not args.skip_evaluation:
        fleet = "auto-sized" if cfg.evaluation.fleet_sizing == "auto" else f"{cfg.sim.fleet_size}"
        console.print(f"[bold]Evaluation[/]: {len(cfg.evaluation.days)} held-out day(s), {fleet} EVs, "
                      f"policies {', '.join(cfg.evaluation.policies)}")
        ev, table = run_evaluation(trips, args.zones, cfg, console=console, centroids=args.centroids)
        print_comparison(ev, table, console)
        write_evaluation(ev, table, out / "evaluation", None)   # evaluation.json: inside evaluation/ only
        total += ev.seconds
    parts = "estimates/" + ("" if args.skip_evaluation else ", evaluation/ (evaluation.json, config.toml, ...)")
    console.print(f"results in {out.resolve()}/ ({parts}); total {total:.1f} s")
    if not args.skip_evaluation:
        console.print(f"report: {write_report(out).resolve()} (open it in a browser; it works offline)")
    return 0
