"""``drbalance bench-solve``: time re-solves of the balancing problem on a seeded city.

CLI contract (relied on by other tools; add options, never rename)::

    drbalance bench-solve --regions N --horizon K --mode {nominal,saa,demand_robust,dr} --steps S --json PATH
                          [--objective shortfall|ratio] [--supply state|forecast] [--returns exact|lagged]
                          [--city synthetic|nyc] [--seed 0] [--solver clarabel|scs|mosek|auto]
                          [--later-reach-km KM] [--rank R] [--reach-km KM] [--tol T] [--scs-eps E]
                          [--accept-inaccurate] [--days D] [--no-progress]

The default is the controller's configuration: model v2 (``--objective shortfall``) with the state's known
arrivals and the trip-mobility returns (``--supply state``; ``forecast`` drops both).  Builds the city (not
timed), solves once (``first_step_s``: includes assembling the conic data and
the solver's setup), then re-solves ``S`` times with a perturbed fleet state and forecast window
(``step_s_*``: the whole :meth:`BalancingProblem.solve` call -- data update, solve, extraction,
objective terms, rounding; ``solver_s_*``: inside the solver only).  BLAS is limited to one thread
(threadpoolctl): the products here are small and the machine is shared.

JSON keys: ``n_regions``, ``n_pairs``, ``horizon``, ``mode``, ``first_step_s``, ``step_s_median``,
``solver_s_median``, ``overhead_ratio`` (= step_s_median / solver_s_median), ``objective`` (first
step), plus spreads, sizes and iterations; the resolved configuration goes to ``PATH`` with suffix
``.config.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from threadpoolctl import threadpool_limits

from drbalance.commands.common import check_outputs, naming_options, write_json
from drbalance.config import BalancingConfig
from drbalance.errors import ConfigError
from drbalance.io import write_text_atomic
from drbalance.problem import BalancingProblem
from drbalance.synthetic import nyc_city, synthetic_city
from drbalance.validation import check_horizon, check_int, check_number


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench-solve", help="time re-solves of the balancing problem on a seeded city",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--regions", type=int, default=None, help="regions of the synthetic city (nyc: 260 zones)")
    p.add_argument("--horizon", type=int, default=4, help="slots K (default 4)")
    p.add_argument("--mode", choices=["nominal", "saa", "demand_robust", "dr"], default="dr")
    p.add_argument("--objective", choices=["shortfall", "ratio"], default="shortfall",
                   help="model v2 (default) or the paper's ratio model")
    p.add_argument("--supply", choices=["state", "forecast"], default="state",
                   help="shortfall: known arrivals in the state + trip-mobility returns (default), or the forecast")
    p.add_argument("--returns", choices=["exact", "lagged"], default="exact",
                   help="shortfall: hires' returns coupled to the shortfall (exact, default) or taken as data")
    p.add_argument("--steps", type=int, default=10, help="timed re-solves after the first (default 10)")
    p.add_argument("--json", type=Path, default=None, help="write the summary JSON here")
    p.add_argument("--city", choices=["synthetic", "nyc"], default="synthetic")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--solver", default="clarabel", choices=["clarabel", "scs", "mosek", "auto"])
    p.add_argument("--reach-km", type=float, default=4.5, help="vacant-EV reach (default 4.5 km)")
    p.add_argument("--later-reach-km", type=float, default=None,
                   help="reach of slots 2..K (default: same as --reach-km; 2.0 is the fast setting)")
    p.add_argument("--rank", type=int, default=None, help="truncate the sets' covariance factor to this rank")
    p.add_argument("--tol", type=float, default=1e-7, help="Clarabel tolerance (default 1e-7)")
    p.add_argument("--scs-eps", type=float, default=1e-6, help="SCS tolerance with --solver scs (default 1e-6)")
    p.add_argument("--accept-inaccurate", action="store_true", help="accept 'almost solved' results (counted)")
    p.add_argument("--days", type=int, default=30, help="synthetic history days behind the sets (default 30)")
    p.add_argument("--no-progress", action="store_true", help="never show the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg_json = None if args.json is None else args.json.with_suffix(".config.json")
    check_outputs(files={"--json": args.json, "--json (its .config.json)": cfg_json})
    summary = bench(args)
    Console().print(f"bench-solve {summary['city']} n={summary['n_regions']} K={summary['horizon']} "
                    f"{summary['mode']}: first {summary['first_step_s']:.3f} s, step median "
                    f"{summary['step_s_median']:.3f} s (solver {summary['solver_s_median']:.3f} s, overhead "
                    f"{summary['overhead_ratio']:.3f}), {summary['n_variables']} variables, objective "
                    f"{summary['objective']:.6g}")
    return 0


def bench(args: argparse.Namespace) -> dict:
    """Library entry behind the CLI: build the city, solve ``1 + steps`` times, summarise."""
    config = _config(args)   # every option checked before the city is built
    t0 = time.perf_counter()
    if args.city == "nyc":
        city = nyc_city(horizon=args.horizon, seed=args.seed, rank=args.rank)
        if args.regions is not None and args.regions != city.n:
            raise ConfigError(f"--city nyc has {city.n} located taxi zones; omit --regions or pass {city.n}")
    else:
        if args.regions is None:
            raise ConfigError("--regions N is required for the synthetic city")
        city = synthetic_city(args.regions, horizon=args.horizon, seed=args.seed, rank=args.rank, n_days=args.days)
    setup_s = time.perf_counter() - t0
    known = args.objective == "shortfall" and args.supply == "state"
    problem = BalancingProblem(city.regions, config, returns=city.trip_returns if known else None)
    rng = np.random.default_rng(args.seed)
    steps, solver_s, iters, objectives, statuses = [], [], [], [], []
    progress = None
    task = None
    with threadpool_limits(limits=1, user_api="blas"):
        state, fc = city.draw(rng, 0, incoming=known)
        first = problem.solve(state, fc)
        t_loop = time.perf_counter()
        try:
            for s in range(1, args.steps + 1):
                state, fc = city.draw(rng, s, incoming=known)
                plan = problem.solve(state, fc)
                steps.append(plan.total_seconds)
                solver_s.append(plan.solve_seconds)
                iters.append(plan.diagnostics["iterations"])
                objectives.append(plan.objective)
                statuses.append(plan.status)
                if progress is None and not args.no_progress and time.perf_counter() - t_loop > 1.0:
                    progress = Progress(TextColumn("re-solving"), BarColumn(),
                                        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                                        transient=True)
                    progress.start()
                    task = progress.add_task("solve", total=args.steps, completed=s)
                elif progress is not None:
                    progress.update(task, completed=s)
        finally:
            if progress is not None:
                progress.stop()
    steps_a, solver_a = np.array(steps), np.array(solver_s)
    d = first.diagnostics
    summary = {
        "city": args.city, "objective": args.objective, "supply": args.supply if args.objective == "shortfall" else None,
        "returns": getattr(args, "returns", "exact") if args.objective == "shortfall" else None,
        "seed": args.seed, "n_regions": city.n, "n_pairs": int(len(first.pairs_x)),
        "n_pairs_low_battery": int(len(first.pairs_y)), "horizon": args.horizon, "mode": args.mode,
        "solver": first.solver, "first_step_s": first.total_seconds, "first_solver_s": first.solve_seconds,
        "steps": args.steps, "step_s_median": float(np.median(steps_a)), "step_s_min": float(steps_a.min()),
        "step_s_max": float(steps_a.max()), "solver_s_median": float(np.median(solver_a)),
        "overhead_ratio": float(np.median(steps_a) / np.median(solver_a)),
        "iterations_median": float(np.median(iters)), "objective": first.objective,
        "objective_median": float(np.median(objectives)), "n_variables": int(d["n_variables"]),
        "n_constraints": int(d["n_constraints"]), "rank": d.get("rank"), "later_reach_km": args.later_reach_km,
        "reach_km": args.reach_km, "tol": args.tol, "scs_eps": args.scs_eps,
        "n_inaccurate": sum(s != "optimal" for s in statuses), "setup_s": setup_s, "python": platform.python_version(),
        "step_s_all": steps, "solver_s_all": solver_s,
    }
    if args.json is not None:
        write_json(args.json, summary)
        cfg = dataclasses.asdict(config)
        cfg.update({"city": args.city, "regions": city.n, "steps": args.steps, "seed": args.seed, "rank": args.rank})
        write_text_atomic(Path(args.json).with_suffix(".config.json"), json.dumps(cfg, indent=2, default=str) + "\n")
    return summary


def _config(args: argparse.Namespace) -> BalancingConfig:
    """Check every option (errors name the option) and return the problem's :class:`BalancingConfig`."""
    check_int("--steps", args.steps, low=1)
    check_int("--seed", args.seed, low=0)
    check_int("--days", args.days, low=2)
    check_int("--rank", args.rank, low=0, allow_none=True)
    check_horizon(args.horizon, BalancingConfig().slot_minutes, "--horizon")
    check_number("--reach-km", args.reach_km, low=0)
    if args.city == "synthetic":
        if args.regions is None:
            raise ConfigError("--regions N is required for the synthetic city")
        check_int("--regions", args.regions, low=2)
    # the benchmark city is the per-zone prototype: chargers within 3 km, MATH.md's supply floor and
    # queue allowance of 0 (every re-solve must be feasible without them)
    with naming_options({"tol": "tol", "scs_eps": "scs_eps", "later_reach_km": "later_reach_km",
                         "reach_km": "reach_km"}):
        return BalancingConfig(objective=args.objective, returns=getattr(args, "returns", "exact"), mode=args.mode,
                               horizon=args.horizon, reach_km=args.reach_km,
                               later_reach_km=args.later_reach_km, low_battery_reach_km=min(3.0, args.reach_km),
                               supply_floor=0.0, queue_allowance=0.0, solver=args.solver, tol=args.tol,
                               scs_eps=args.scs_eps, accept_inaccurate=args.accept_inaccurate)
