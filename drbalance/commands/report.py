"""``drbalance report``: one self-contained HTML page of a results folder (opens offline).

CLI contract (relied on by other tools; add options, never rename)::

    drbalance report RUN_DIR [--out FILE.html]

RUN_DIR is the ``--out`` folder of ``evaluate``, ``evaluate-scenario``, ``simulate``, ``sweep`` or
``demo``.  The page holds the headline (one sentence per policy against ``nominal``), the comparison
table with units, better directions and paired intervals, the day profiles, the city map (unserved
requests and vacant EVs per region with a slider over the day and a policy switch, when the folder
has ``region_slots.parquet`` and ``regions.csv``), the Pareto plot of a sweep and the resolved
``config.toml``.  Default output: ``RUN_DIR/report.html``.  See docs/report.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from drbalance.commands.common import check_outputs
from drbalance.errors import ConfigError
from drbalance.report import default_output, write_report
from drbalance.report_data import resolve_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report of a results folder",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="results folder (the --out of another command)")
    p.add_argument("--out", type=Path, default=None, help="HTML file to write (default RUN_DIR/report.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    resolve_folder(args.run_dir)     # a missing folder is named before the output check
    out = args.out if args.out is not None else default_output(args.run_dir)
    if "\0" in str(out):   # check_outputs probes the folder only, and the OS refuses this name later
        raise ConfigError(f"--out {str(out)!r}: a file name cannot hold a NUL byte; pass a plain path")
    check_outputs(files={"--out": out})
    t0 = time.perf_counter()
    path = write_report(args.run_dir, out)
    print(f"report: {path} ({path.stat().st_size / 1024:,.0f} kB, {time.perf_counter() - t0:.1f} s)")
    return 0
