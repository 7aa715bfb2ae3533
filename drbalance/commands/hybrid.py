"""``drbalance hybrid``: reproduce the hybrid-supply tables, run the AIMD split, plot QoS contours.

Actions:
  table4   car sharing, Problem 1 (min-cost M, T, Q) for N in 1000..50000, θ in {98, 99} %
  table8   charge points, the same
  table5   car sharing, Problem 2 (Q* for 2a max and 2b equalise) by enumeration
  aimd     the distributed AIMD split against the enumerated Q* (Table 5 scenarios)
  compare  operator alone (pure B2C) against the hybrid design, car sharing and charge points
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from drbalance.commands.common import check_outputs, write_json
from drbalance.errors import ConfigError
from drbalance.io import atomic_path
from drbalance.planning import hybrid_supply as hs
from drbalance.planning.aimd import AIMDConfig, enumerated_target, run_aimd
from drbalance.validation import check_int

ACTIONS = ("table4", "table5", "table8", "aimd", "compare")
COSTS = ("step", "linear", "exp")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "hybrid",
        help="hybrid supply for surges: QoS dimensioning (Tables 4, 5, 8) and AIMD reserve sharing",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("--json", metavar="PATH", help="write the rows as a JSON list (plus PATH's .config.json)")
    p.add_argument("--plot", metavar="DIR", help="write PNG figures (QoS contours; AIMD trajectories) to DIR")
    p.add_argument(
        "--cost",
        choices=COSTS,
        default="step",
        help="cost model optimised in Problem 1: real step discount (default), linear, fitted a(1-e^-bM)",
    )
    p.add_argument("--problem", choices=("max", "eq", "both"), default="both", help="aimd: 2a, 2b or both")
    p.add_argument("--N", type=int, action="append", help="aimd: only these Table 5 populations (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="aimd: seed of the random back-off draws")
    p.add_argument("--events", type=int, default=None, help="aimd: capacity events (default: scaled to N)")
    p.set_defaults(func=run)


def _cost_model(use_case, name: str):
    if name == "step":
        return use_case.cost
    if name == "linear":
        return use_case.cost.linear()
    return use_case.cost.fitted_exponential()


def _print_table(title: str, rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    table = Table(title=title)
    for _, header, _ in columns:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*[("-" if row.get(k) is None else format(row[k], fmt)) for k, _, fmt in columns])
    console = Console()
    if not console.is_terminal:  # piped/captured output: do not squeeze columns to 80 characters
        console = Console(width=160)
    console.print(table)


def _problem1_rows(use_case, cost_name: str) -> list[dict]:
    return [s.as_row() for s in hs.problem1_table(use_case, cost=_cost_model(use_case, cost_name))]


def run(args: argparse.Namespace) -> int:
    json_path = None if args.json is None else Path(args.json)
    cfg_json = None if json_path is None else json_path.with_suffix(".config.json")
    check_outputs(files={"--json": json_path, "--json (its .config.json)": cfg_json}, folders={"--plot": args.plot})
    if args.plot and args.action not in ("table4", "table8", "aimd"):
        raise ConfigError(f"--plot: hybrid {args.action} draws no figure (table4, table8 and aimd do); drop --plot")
    if args.action == "aimd":
        _aimd_options(args)
    config = {"command": "hybrid", "action": args.action, "cost": args.cost}
    if args.action in ("table4", "table8"):
        uc = hs.CAR_SHARING if args.action == "table4" else hs.CHARGE_POINTS
        rows = _problem1_rows(uc, args.cost)
        cols = [
            ("N", "N", "d"),
            ("qos", "QoS (%)", ".0f"),
            ("M", "M*", "d"),
            ("T", "T*", "d"),
            ("Q", "Q*", "d"),
            ("cost_million", uc.cost_label, ".2f"),
            ("cost_per_consumer", "£/consumer/yr", ".2f"),
        ]
        label = "Table 4" if args.action == "table4" else "Table 8"
        _print_table(f"{label}: {uc.name}, minimum-cost design ({args.cost} cost)", rows, cols)
        config.update(use_case=uc.name, probs=vars(uc.probs), populations=hs.PAPER_POPULATIONS, thetas=hs.PAPER_THETAS)
        if args.plot:
            _plot_contours(Path(args.plot), uc, rows)
    elif args.action == "table5":
        rows = [r for sol in hs.problem2_table() for r in sol.rows()]
        cols = [
            ("N", "N", "d"),
            ("M", "M", "d"),
            ("T", "T", "d"),
            ("problem", "problem", "s"),
            ("Q", "Q*", "d"),
            ("q_over_m", "Q*/M (%)", ".2f"),
            ("qos_s", "QoS_s (%)", ".2f"),
            ("qos_b", "QoS_b (%)", ".2f"),
            ("average", "average (%)", ".2f"),
        ]
        _print_table("Table 5: car sharing, best split of M (enumeration)", rows, cols)
        config.update(scenarios=hs.TABLE5_SCENARIOS, probs=vars(hs.CAR_SHARING.probs))
    elif args.action == "aimd":
        rows, results = _run_aimd(args)
        cols = [
            ("N", "N", "d"),
            ("problem", "problem", "s"),
            ("Q_enumerated", "Q* enum", "d"),
            ("Q_aimd", "Q̂ AIMD", "d"),
            ("xbar_b", "x̄_b", ".2f"),
            ("events", "events", "d"),
            ("events_to_converge", "events to ±1", "d"),
            ("steps_to_converge", "steps to ±1", "d"),
            ("seconds", "s", ".1f"),
        ]
        _print_table("AIMD reserve sharing vs enumeration (car sharing, Table 5 scenarios)", rows, cols)
        config.update(seed=args.seed, events=args.events, problem=args.problem, N=args.N)
        if args.plot:
            _plot_aimd(Path(args.plot), results)
    else:  # compare
        rows = []
        for uc in (hs.CAR_SHARING, hs.CHARGE_POINTS):
            cm = _cost_model(uc, args.cost)
            for n in hs.PAPER_POPULATIONS:
                row = hs.operator_only(n, 0.98, uc.probs, cm).as_row()
                rows.append({"use_case": uc.name, **row})
        cols = [
            ("use_case", "use case", "s"),
            ("N", "N", "d"),
            ("M_nonsurge", "M non-surge", "d"),
            ("qos_s_nonsurge_design", "its surge QoS (%)", ".3g"),
            ("M_operator_only", "M operator alone", "d"),
            ("cost_operator_only_million", "operator alone (M£)", ".2f"),
            ("cost_hybrid_million", "hybrid (M£)", ".2f"),
            ("cost_ownership_million", "ownership (M£)", ".2f"),
            ("saving_percent", "hybrid saving (%)", ".1f"),
        ]
        _print_table("Operator alone vs hybrid supply, QoS 98 %", rows, cols)
    if args.json:
        write_json(args.json, rows)  # a JSON list of rows
        cfg_path = Path(args.json).with_suffix(".config.json")
        write_json(cfg_path, config)
    return 0


def _aimd_options(args) -> list:
    """The Table 5 scenarios ``--N`` selects; checks ``--seed`` and ``--events`` before any work."""
    check_int("--seed", args.seed, low=0)
    check_int("--events", args.events, low=1, allow_none=True)
    AIMDConfig(seed=args.seed, events=args.events)
    known = [s[0] for s in hs.TABLE5_SCENARIOS]
    unknown = [n for n in args.N or () if n not in known]
    if unknown:
        raise ConfigError(f"--N {unknown[0]} is not a Table 5 population; choose among {known}")
    return [s for s in hs.TABLE5_SCENARIOS if not args.N or s[0] in args.N]


def _run_aimd(args) -> tuple[list[dict], list]:
    scenarios = _aimd_options(args)
    problems = ("max", "eq") if args.problem == "both" else (args.problem,)
    rows, results = [], []
    for problem in problems:
        for n, m, t in scenarios:
            target = enumerated_target(problem, n, m, t, hs.CAR_SHARING.probs)
            t0 = time.perf_counter()
            res = run_aimd(problem, n, m, t, hs.CAR_SHARING.probs, AIMDConfig(seed=args.seed, events=args.events))
            secs = time.perf_counter() - t0
            results.append((res, target))
            rows.append(
                {
                    "N": n,
                    "M": m,
                    "T": t,
                    "problem": problem,
                    "Q_enumerated": target,
                    "Q_aimd": res.q_hat,
                    "xbar_s": res.xbar_s,
                    "xbar_b": res.xbar_b,
                    "within_one": abs(res.q_hat - target) <= 1,
                    "events": res.events,
                    "steps": res.steps,
                    "events_to_converge": res.events_to_converge(target),
                    "steps_to_converge": res.steps_to_converge(target),
                    "gamma": res.gamma,
                    "forgetting": res.forgetting,
                    "seed": args.seed,
                    "seconds": secs,
                }
            )
    return rows, results


def _plot_contours(out: Path, uc, rows: list[dict]) -> None:
    """QoS_s over (M, T) at the N=1000 / 98 % design's Q, with the normal-approximation contours."""
    import matplotlib  # lazy (b): heavy (~0.8 s with pyplot), only with --plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy (b): as above

    out.mkdir(parents=True, exist_ok=True)
    row = rows[0]
    n, q = row["N"], row["Q"]
    Ms = np.arange(max(row["M"] - 3 * max(row["M"] // 4, 5), 0), row["M"] + 3 * max(row["M"] // 4, 5) + 1)
    Ts = np.arange(max(row["T"] - 2 * max(row["T"] // 4, 5), 0), row["T"] + 2 * max(row["T"] // 4, 5) + 1)
    Z = hs.qos_surge(Ms[None, :], Ts[:, None], q, n, uc.probs.p_s)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    pcm = ax.pcolormesh(Ms, Ts, Z, cmap="RdYlGn", vmin=0, vmax=1, shading="auto")
    fig.colorbar(pcm, ax=ax, label="QoS_s")
    for th in (0.5, 0.9, 0.98, 0.99):
        ax.contour(Ms, Ts, Z, levels=[th], colors="k", linewidths=0.8)
        ax.plot(Ms, hs.normal_contour_T(Ms, th, n, uc.probs.p_s, q), "b--", lw=0.8)
    ax.plot([row["M"]], [row["T"]], "k*", ms=10, label=f"optimum M={row['M']}, T={row['T']}")
    ax.set_ylim(Ts[0], Ts[-1])
    ax.set(xlabel="M (shared items)", ylabel="T (prosumers)", title=f"{uc.name}: surge QoS, N={n}, Q={q}")
    ax.legend(loc="lower left", fontsize=8, title="black: exact, blue dashed: normal approx.", title_fontsize=7)
    fig.tight_layout()
    with atomic_path(out / f"qos_contours_{uc.name.replace(' ', '_')}.png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def _plot_aimd(out: Path, results) -> None:
    """Per run: states and averages (top), consensus quantities (bottom) against time steps."""
    import matplotlib  # lazy (b): heavy (~0.8 s with pyplot), only with --plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy (b): as above

    out.mkdir(parents=True, exist_ok=True)
    for res, target in results:
        tr = res.trajectory
        fig, (a1, a2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
        a1.plot(tr["step"], tr["x_b"], lw=0.4, alpha=0.5, label="x_b (prosumer reserve)")
        a1.plot(tr["step"], tr["xbar_b"], lw=1.2, label="x̄_b")
        a1.axhline(target, color="k", ls="--", lw=0.8, label=f"enumerated Q* = {target}")
        a1.set_ylim(0, max(3 * target, 10))
        a1.set_ylabel("items")
        a1.legend(fontsize=8)
        what = "marginal QoS f'(x̄)" if res.problem == "max" else "QoS f(x̄)"
        a2.plot(tr["step"], tr["signal_s"], label="consumers")
        a2.plot(tr["step"], tr["signal_b"], label="prosumers")
        if res.problem == "eq":
            a2.set_ylim(0.9, 1.0)
        else:
            a2.set_yscale("log")
        a2.set(xlabel="time step", ylabel=what)
        a2.legend(fontsize=8)
        a1.set_title(f"AIMD {res.problem}: N={res.N}, M={res.M}, T={res.T}, Q̂={res.q_hat}")
        fig.tight_layout()
        with atomic_path(out / f"aimd_{res.problem}_N{res.N}.png") as tmp:
            fig.savefig(tmp, dpi=110)
        plt.close(fig)
