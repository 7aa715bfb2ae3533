"""``drbalance battery``: size personal batteries plus a shared range-extender pool (chance constraints).

Runs Algorithm 1 of Alexeenko & Charisopoulos on Gaussian (App. B), ACN-Data or tabulated daily
needs and writes the capacities with and without sharing, the reduction and the reliabilities as
JSON; optionally the Fig. 3-style sweep of the reduction against N and α.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from drbalance.commands.common import check_outputs, naming_options, write_json
from drbalance.errors import ConfigError, DataError
from drbalance.io import atomic_path
from drbalance.planning import battery_sharing as bs
from drbalance.validation import check_int, check_number

#: where ACN-Data sessions come from (named in the error when --source acn has no --acn-path)
ACN_DOWNLOAD = "https://ev.caltech.edu/dataset"
DEFAULT_SWEEP_N = "5,25,45,65,85,105,125,145,165,185"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "battery",
        help="shared battery capacity planning (personal batteries + shared pool, chance constraints)",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--source", choices=("gaussian", "acn", "table"), default="gaussian", help="daily-need data")
    p.add_argument("--drivers", type=int, default=25, help="number of drivers N")
    p.add_argument("--alpha", type=float, default=0.85, help="target reliability per driver")
    p.add_argument("--trials", type=int, default=20, help="trials T of Algorithm 1")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    p.add_argument("--json", type=Path, default=None, help="write the result record here")
    p.add_argument("--out", type=Path, default=None, help="folder for the resolved config (battery_config.json)")
    p.add_argument("--delta", type=float, default=0.01, help="1 - confidence of the scenario and App. C bounds")
    p.add_argument("--eval-epsilon", type=float, default=0.02, help="App. C accuracy of empirical reliabilities")
    p.add_argument("--scenario-bound", choices=("campi-garatti", "explicit"), default="campi-garatti")
    p.add_argument(
        "--method",
        choices=("pool", "lp"),
        default="pool",
        help="pool: optimal vertex x=0 of LP (6) (closed form); lp: solve LP (6) with cvxpy (solver's point)",
    )
    p.add_argument("--solver", choices=("CLARABEL", "HIGHS"), default="CLARABEL", help="LP solver for --method lp")
    g = p.add_argument_group("gaussian source (App. B)")
    g.add_argument("--mean-kwh", type=float, default=12.0)
    g.add_argument("--std-kwh", type=float, default=4.0)
    d = p.add_argument_group("acn / table sources")
    d.add_argument("--acn-path", type=Path, default=None,
                   help=f"ACN-Data sessions JSON (.json or .json.gz); required with --source acn (download: {ACN_DOWNLOAD})")
    d.add_argument("--table-path", type=Path, default=None, help="csv/parquet with driver, day, kwh or miles")
    d.add_argument("--miles-per-kwh", type=float, default=3.0, help="conversion for a 'miles' column")
    d.add_argument("--min-days", type=int, default=10, help="drivers with fewer days are reported and not sampled")
    d.add_argument("--bin-width-kwh", type=float, default=2.0, help="histogram bin width of a driver's daily needs")
    f = p.add_argument_group("Fig. 3 sweep")
    f.add_argument("--plot", type=Path, default=None, help="write the reduction-vs-N plot (PNG) here")
    f.add_argument("--sweep-drivers", default=DEFAULT_SWEEP_N, help="comma-separated N values of the sweep")
    f.add_argument("--sweep-alphas", default="0.75,0.85,0.95", help="comma-separated α values of the sweep")
    f.add_argument("--sweep-csv", type=Path, default=None, help="write the per-trial sweep table here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise ConfigError(f"{option} expects comma-separated numbers; got {text!r}") from exc


@contextmanager
def _progress(enabled: bool, total: int, label: str):
    """Yield a callback ``done(k)``; shows a transient rich bar when enabled."""
    if not enabled:
        yield lambda k: None
        return
    with Progress(TextColumn(label), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda k: bar.update(task, completed=k)


def _needs(args):
    if args.source == "acn":
        if args.acn_path is None:
            raise ConfigError(
                f"--source acn needs --acn-path FILE, the ACN-Data sessions JSON (.json or .json.gz) "
                f"downloaded from {ACN_DOWNLOAD} (README: 'Datasets: where to get them')"
            )
        if not Path(args.acn_path).is_file():
            raise DataError(
                f"ACN sessions file {args.acn_path} does not exist; pass --acn-path to the ACN-Data sessions JSON "
                f"(download from {ACN_DOWNLOAD})"
            )
        return bs.read_acn_sessions(args.acn_path, min_days=args.min_days)
    if args.source == "table":
        if args.table_path is None:
            raise ConfigError("--source table needs --table-path FILE (csv/parquet with driver, day, kwh or miles)")
        return bs.read_needs_table(args.table_path, miles_per_kwh=args.miles_per_kwh, min_days=args.min_days)
    return None


#: figure formats ``--plot`` accepts (matplotlib chooses the format by the suffix)
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff", ".webp")


def _check_options(args) -> tuple[list[int], list[float]] | None:
    """Every option and output path checked before any data is read; returns the Fig. 3 sweep's
    ``(N values, alphas)`` when ``--plot`` or ``--sweep-csv`` asks for the sweep."""
    check_outputs(files={"--json": args.json, "--plot": args.plot, "--sweep-csv": args.sweep_csv},
                  folders={"--out": args.out})
    if args.plot is not None and Path(args.plot).suffix.lower() not in PLOT_SUFFIXES:
        raise ConfigError(f"--plot {args.plot}: the file name must end in one of {', '.join(PLOT_SUFFIXES)} "
                          "(the figure format)")
    check_int("--drivers", args.drivers, low=1)
    check_number("--miles-per-kwh", args.miles_per_kwh, low=0, low_open=True)
    check_int("--min-days", args.min_days, low=1)
    check_number("--bin-width-kwh", args.bin_width_kwh, low=0, low_open=True)
    if args.source == "gaussian":
        check_number("--mean-kwh", args.mean_kwh)
        check_number("--std-kwh", args.std_kwh, low=0, low_open=True)
        bs.GaussianNeeds(args.drivers, args.mean_kwh, args.std_kwh)  # and the model's own rule
    if args.plot is None and args.sweep_csv is None:
        return None
    n_values = _floats(args.sweep_drivers, "--sweep-drivers")
    alphas = _floats(args.sweep_alphas, "--sweep-alphas")
    for option, values in (("--sweep-drivers", n_values), ("--sweep-alphas", alphas)):
        if not values:
            raise ConfigError(f"{option} is empty; give comma-separated values")
    n_values = [check_int("--sweep-drivers", v, low=1) for v in n_values]
    for a in alphas:
        check_number("--sweep-alphas", a, low=0, high=1, low_open=True, high_open=True)
    return n_values, alphas


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    sweep_values = _check_options(args)
    with naming_options({f: f for f in ("alpha", "trials", "delta", "eval_epsilon", "seed")}):
        config = bs.PlanningConfig(
            alpha=args.alpha,
            trials=args.trials,
            delta=args.delta,
            eval_epsilon=args.eval_epsilon,
            scenario_bound=args.scenario_bound,
            method=args.method,
            solver=args.solver,
            seed=args.seed,
        )
    needs = _needs(args)
    if needs is None:
        model = bs.GaussianNeeds(args.drivers, args.mean_kwh, args.std_kwh)

        def factory(n, rng):
            return bs.GaussianNeeds(n, args.mean_kwh, args.std_kwh)

    else:
        model = bs.EmpiricalNeeds.from_daily_needs(
            needs, args.drivers, rng=np.random.SeedSequence([args.seed, 1]), bin_width_kwh=args.bin_width_kwh
        )

        def factory(n, rng):
            return bs.EmpiricalNeeds.from_daily_needs(needs, n, rng=rng, bin_width_kwh=args.bin_width_kwh)

    resolved = {"command": "battery", **{k: v for k, v in vars(args).items() if k != "func"}, "config": config.to_dict()}

    with _progress(not args.no_progress, config.trials, "Algorithm 1 trials") as done:
        result = bs.plan_shared_capacity(model, config, progress=done)
    record = result.summary()
    record["source"] = args.source
    if needs is None:
        cf = bs.gaussian_closed_form(args.drivers, args.mean_kwh, args.std_kwh, args.alpha)
        record["closed_form"] = vars(cf)
    else:
        record["data"] = needs.report()
        record["drivers_sampled"] = list(model.drivers)
        record["drivers_bootstrapped"] = args.drivers > len(needs.eligible_drivers)

    if sweep_values is not None:
        n_values, alphas = sweep_values
        with _progress(not args.no_progress, len(n_values) * config.trials, "Fig. 3 sweep") as done:
            sweep = bs.reduction_sweep(factory, n_values, alphas, config, progress=done)
        stats = bs.summarise_sweep(sweep)
        record["sweep"] = stats.to_dict(orient="records")
        if args.sweep_csv is not None:
            with atomic_path(args.sweep_csv) as tmp:
                sweep.to_csv(tmp, index=False)
        if args.plot is not None:
            with atomic_path(args.plot) as tmp:
                title = f"Reduction through sharing ({args.source}, {config.trials} trials)"
                bs.plot_reduction(sweep, tmp, title=title)
            record["plot"] = str(args.plot)

    record["seconds"] = time.perf_counter() - start
    record["seconds_algorithm1"] = result.seconds
    if args.out is not None:
        write_json(Path(args.out) / "battery_config.json", resolved)
    write_json(args.json, record)
    print(
        f"N={args.drivers} α={args.alpha}: non-shared {record['capacity_nonshared_kwh']:.1f} kWh, "
        f"shared {record['capacity_shared_kwh']:.1f} kWh (pool {record['pool_kwh']:.1f}), "
        f"reduction {100 * record['reduction']:.1f} %, reliability {record['reliability_shared']:.3f} "
        f"({record['seconds']:.1f} s)"
    )
    return 0
