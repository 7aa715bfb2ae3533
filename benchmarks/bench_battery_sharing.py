"""Benchmark: full Algorithm 1 for N = 185 drivers, T = 20 trials (goal <= 60 s), plus LP timings.

    .venv/bin/python benchmarks/bench_battery_sharing.py [--drivers 185] [--trials 20] [--alpha 0.85]

Prints, all measured in this run:
* Algorithm 1 with the default ``method="pool"`` on Gaussian (App. B) and ACN needs, with its
  breakdown (sampling, search + quantiles, fresh-sample check);
* one raw Clarabel solve of the full LP (6) with ``M_sc`` scenarios (no constraint generation), and
  the ratio "Algorithm 1 total / one raw LP solve";
* one trial of Algorithm 2 with ``method="lp"`` (constraint-generated cvxpy LP) for Clarabel and
  HiGHS: total seconds, seconds inside the solver and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from drbalance.planning import battery_sharing as bs

ACN = Path(__file__).resolve().parents[2] / "shared" / "data" / "ev_charging_acn_caltech_2021" / "acndata_sessions.json.gz"


def full_lp_seconds(scenarios: np.ndarray) -> tuple[float, float, float]:
    """Solve LP (6) over all scenarios in one cvxpy problem; (wall s, solver s, objective kWh)."""
    import cvxpy as cp

    m, n = scenarios.shape
    x, s = cp.Variable(n, nonneg=True), cp.Variable(nonneg=True)
    u = cp.Variable((m, n), nonneg=True)
    prob = cp.Problem(cp.Minimize(s + cp.sum(x)), [u >= scenarios - cp.reshape(x, (1, n), order="C"), cp.sum(u, axis=1) <= s])
    t0 = time.perf_counter()
    prob.solve(solver="CLARABEL")
    return time.perf_counter() - t0, float(prob.solver_stats.solve_time), float(prob.value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--drivers", type=int, default=185)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--alpha", type=float, default=0.85)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-lp", action="store_true", help="skip the LP timings")
    args = ap.parse_args(argv)
    cfg = bs.PlanningConfig(alpha=args.alpha, trials=args.trials, seed=args.seed)
    n = args.drivers

    models = {"gaussian": bs.GaussianNeeds(n)}
    if ACN.is_file():
        needs = bs.read_acn_sessions(ACN)
        models["acn"] = bs.EmpiricalNeeds.from_daily_needs(needs, n, rng=args.seed)
    else:
        print(f"(ACN data {ACN} absent: Gaussian only)")

    totals = {}
    for name, model in models.items():
        res = bs.plan_shared_capacity(model, cfg)
        totals[name] = res.seconds
        t = {k: round(v, 2) for k, v in res.timings.items()}
        print(
            f"Algorithm 1 [{name}] N={n} T={args.trials} alpha={args.alpha}: {res.seconds:.2f} s "
            f"(goal <= 60 s: {'met' if res.seconds <= 60 else 'NOT met'}); breakdown {t}; "
            f"reduction {100 * res.reduction:.1f} %, reliability {res.reliability_shared:.3f}, "
            f"M_sc={res.scenario_bound}, M_eval={res.n_eval}"
        )

    if not args.skip_lp:
        m_sc = bs.scenario_count(n, args.alpha, cfg.delta)
        scenarios = models["gaussian"].sample(np.random.default_rng(args.seed), m_sc)
        wall, solver, value = full_lp_seconds(scenarios)
        print(
            f"raw LP (6), Clarabel, {m_sc} scenarios x {n} drivers in one problem: {wall:.2f} s wall, "
            f"{solver:.2f} s in solver; optimum {value:.2f} vs closed form {bs.scenario_optimum(scenarios):.2f} kWh"
        )
        print(f"ratio Algorithm 1 [gaussian] total / one raw LP solve: {totals['gaussian'] / solver:.2f}")
        for solver_name in ("CLARABEL", "HIGHS"):
            one = bs.PlanningConfig(alpha=args.alpha, trials=1, seed=args.seed, method="lp", solver=solver_name)
            res = bs.plan_shared_capacity(models["gaussian"], one)
            search = res.timings.get("search", 0.0)
            print(
                f"Algorithm 2 with method=lp [{solver_name}], one trial: {res.seconds:.2f} s total, "
                f"search {search:.2f} s, {res.lp_solves} LP solves, {res.solver_seconds:.2f} s in solver "
                f"(search / solver = {search / max(res.solver_seconds, 1e-9):.2f}); "
                f"reduction {100 * res.reduction:.1f} %, personal {res.shared.personal_kwh.sum():.0f} kWh"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
