"""``drbalance sweep``: run a grid of simulator scenarios (charging strategy x fleet mix x charger power x
policy ...) in parallel on Dask; resumable.

CLI contract (relied on by other tools; add options, never rename)::

    drbalance sweep --grid GRID.toml --out DIR --workers W [--scheduler ADDR] --json PATH

JSON keys: ``scenarios`` (in the grid), ``computed`` (run now), ``skipped`` (already finished under
DIR/scenarios/, not recomputed), ``seconds`` (whole command), plus ``compute_seconds`` (sum over the
computed scenarios), ``workers``, ``scheduler``, ``table`` (DIR/sweep.parquet), ``plot`` (DIR/sweep.png).
``--workers 0`` runs the scenarios in this process without Dask.  Grid format: see
:mod:`drbalance.distributed` and ``docs/charging_strategies.md``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from drbalance.commands.common import check_outputs, write_json
from drbalance.distributed import expand, load_grid, run_sweep
from drbalance.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a scenario grid of the simulator in parallel on Dask (resumable)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", type=Path, required=True, help="grid TOML ([base], [fleet_mixes], [grid])")
    p.add_argument("--out", type=Path, required=True, help="output folder (scenarios/, sweep.parquet, sweep.png)")
    p.add_argument("--workers", type=int, default=1,
                   help="Dask LocalCluster worker processes (1 thread each); 0: run in this process")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (tcp://host:8786)")
    p.add_argument("--json", type=Path, default=None, help="write the run summary JSON here")
    p.set_defaults(func=run, interrupted=interrupted)


def interrupted(args: argparse.Namespace) -> str:
    """What an interrupted sweep leaves (the one line :func:`drbalance.cli.main` prints on Ctrl-C)."""
    return (f"finished scenarios are kept under {args.out}/scenarios; run the same command again to resume "
            "(finished scenarios are not recomputed)")


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    check_outputs(files={"--json": args.json}, folders={"--out": args.out})
    if args.workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {args.workers}")
    if args.scheduler is not None and not re.fullmatch(r"([a-z]+://)?[^\s:/]+(:\d+)?", args.scheduler):
        raise ConfigError(f"--scheduler {args.scheduler!r} is not a scheduler address; use e.g. tcp://host:8786")
    grid = load_grid(args.grid)
    n = len(expand(grid))
    count = {"i": 0}

    def progress(rec):
        count["i"] += 1
        m = rec["metrics"]
        print(f"[{count['i']}] {rec['key']} {rec['varied']} served {m['served']}/{m['requests']} "
              f"emptyVMT {m['empty_vmt_pct']:.1f}% ({rec['timing']['seconds']:.1f} s)", file=sys.stderr)

    summary = run_sweep(grid, args.out, workers=args.workers, scheduler=args.scheduler, progress=progress)
    summary["grid"] = str(args.grid)
    summary["seconds"] = time.perf_counter() - t0
    write_json(args.json, summary)
    print(f"sweep: {summary['scenarios']} scenarios ({n} in grid), {summary['computed']} computed, "
          f"{summary['skipped']} skipped, {summary['seconds']:.1f} s -> {summary['table']}, {summary['plot']}")
    return 0
