"""``drbalance demo``: the main job on the bundled NYC green-taxi data (Jan–Mar 2021).

Until the controller exists, the demo runs the estimation pipeline: it ingests the three bundled
months, prints the reject report, trains on January–February, holds out March, and prints the
coverage of the robust and DR uncertainty sets with both robust radii (chi-square and conformal).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from drbalance.commands.estimate import add_estimate_options

    p = sub.add_parser("demo", help="run the pipeline on the bundled NYC data and print the reports",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_estimate_options(p, train_required=False)
    p.set_defaults(train="2021-01-01:2021-02-28", heldout="2021-03-01:2021-03-31", regions=20)
    p.add_argument("--out", type=Path, default=None, help="keep the outputs here (default: a temporary folder)")
    p.add_argument("--json", type=Path, default=None, help="write the summary JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from drbalance import datasets
    from drbalance.commands.estimate import print_report, run_estimate, write_outputs

    console = Console()
    trips = datasets.nyc_green_trip_files()
    args.zones = args.zones or datasets.nyc_zone_lookup()
    console.print(f"[bold]drbalance demo[/]: {len(trips)} bundled NYC green-taxi months, train {args.train}, "
                  f"held out {args.heldout}, {args.slot_minutes}-min slots, horizon {args.horizon}, "
                  f"{args.regions or 'all'} regions")
    results = {}
    methods = [args.robust_radius] + [m for m in ("chi2", "conformal") if m != args.robust_radius]
    with Progress(console=console, transient=True) as bar:
        for method in methods:
            a = copy.copy(args)
            a.robust_radius = method
            task = bar.add_task(f"estimating ({method} robust radius)", total=2 * 2 * (1440 // args.slot_minutes))
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
    out = args.out or Path(tempfile.mkdtemp(prefix="drbalance-demo-"))
    write_outputs(main, out, args.json)
    console.print(f"outputs in {out}/ ; total {sum(r.summary['seconds'] for r in results.values()):.1f} s")
    return 0
