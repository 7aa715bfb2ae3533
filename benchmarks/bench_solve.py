"""Re-solve timings of the balancing core: step time against city size, modes and the speed options.

Runs the same code as ``drbalance bench-solve`` (:func:`drbalance.commands.bench_solve.bench`) for a
grid of cities and prints one markdown row per configuration.  Each configuration is run ``--repeats``
times (fresh process state is not needed: every run builds its own problem); the table shows the
median over repeats of ``step_s_median`` with the min-max over repeats, so the load of this shared
machine shows up as spread rather than bias.

    .venv/bin/python benchmarks/bench_solve.py --table scale        # 100 .. 2000 regions, K=4, dr
    .venv/bin/python benchmarks/bench_solve.py --table goals        # NYC 260 K=4 dr; 491 K=6 dr
    .venv/bin/python benchmarks/bench_solve.py --table modes        # 263 regions K=4, three modes
    .venv/bin/python benchmarks/bench_solve.py --table sweep        # NYC K=4 dr, later reach full..0 km
    .venv/bin/python benchmarks/bench_solve.py --table scale --json out.json
    .venv/bin/python benchmarks/bench_solve.py --table v2       # model v2 goals: default vs fast setting vs ratio
    .venv/bin/python benchmarks/bench_solve.py --table v2scale  # model v2, 100 .. 2000 regions, K=4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drbalance.commands.bench_solve import bench  # noqa: E402


def _args(**kw) -> argparse.Namespace:
    base = dict(regions=None, horizon=4, mode="dr", steps=5, json=None, city="synthetic", seed=0, solver="clarabel",
                reach_km=4.5, later_reach_km=None, rank=None, tol=1e-7, days=30, no_progress=True,
                scs_eps=1e-6, accept_inaccurate=False, objective="shortfall", supply="state", returns="exact")
    base.update(kw)
    return argparse.Namespace(**base)


TABLES = {
    "scale": [dict(regions=n, later_reach_km=lr, steps=s) for n, s in ((100, 5), (200, 5), (263, 5), (491, 3),
                                                                        (1000, 3), (2000, 2))
              for lr in (2.0, None)],
    "goals": [dict(city="nyc", later_reach_km=None), dict(city="nyc", later_reach_km=2.0),
              dict(city="nyc", later_reach_km=2.0, rank=8),
              dict(regions=491, horizon=6, later_reach_km=None, steps=3),
              dict(regions=491, horizon=6, later_reach_km=2.0)],
    "sweep": [dict(city="nyc", later_reach_km=lr, steps=10) for lr in (None, 3.0, 2.0, 1.0, 0.0)],
    # model v2 (the default controller configuration: known arrivals, exact returns) against its fast setting
    # (lagged returns, 2 km later reach) and the ratio model
    "v2": [dict(city="nyc"), dict(city="nyc", returns="lagged", later_reach_km=2.0),
           dict(city="nyc", objective="ratio"),
           dict(regions=491, horizon=6, steps=3), dict(regions=491, horizon=6, returns="lagged", later_reach_km=2.0),
           dict(regions=491, horizon=6, objective="ratio", later_reach_km=2.0)],
    "v2scale": [dict(regions=n, returns=r, later_reach_km=lr, steps=s) for n, s in ((100, 5), (263, 5), (491, 3),
                                                                                 (1000, 3), (2000, 2))
                for r, lr in (("exact", None), ("lagged", 2.0))],
    "modes": [dict(regions=263, mode=m, later_reach_km=lr) for m in ("nominal", "demand_robust", "dr")
              for lr in (2.0, None)],
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", choices=sorted(TABLES), default="goals")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-regions", type=int, default=None, help="skip larger synthetic cities")
    p.add_argument("--skip-full-above", type=int, default=1000,
                   help="skip the full-reach (later_reach None) runs above this many regions (they take minutes)")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    rows = []
    print(f"# load average {os.getloadavg()}, {time.strftime('%Y-%m-%d %H:%M')}")
    print("| city | n | K | objective | returns | mode | later reach km | rank | pairs | variables | iters | first s "
          "| step s median (min-max over repeats) | solver s | overhead | objective value |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for cfg in TABLES[a.table]:
        if a.max_regions and (cfg.get("regions") or 0) > a.max_regions:
            continue
        if cfg.get("later_reach_km") is None and (cfg.get("regions") or 0) > a.skip_full_above:
            continue
        runs = [bench(_args(**cfg)) for _ in range(a.repeats)]
        med = [r["step_s_median"] for r in runs]
        r0 = runs[0]
        row = dict(cfg, step_s=statistics.median(med), step_min=min(med), step_max=max(med),
                   solver_s=statistics.median(r["solver_s_median"] for r in runs),
                   overhead=statistics.median(r["overhead_ratio"] for r in runs),
                   first_s=statistics.median(r["first_step_s"] for r in runs), n=r0["n_regions"],
                   pairs=r0["n_pairs"], variables=r0["n_variables"], iters=r0["iterations_median"],
                   rank=r0["rank"], objective=r0["objective"], K=r0["horizon"], mode=r0["mode"], city=r0["city"])
        rows.append(row)
        a_ = _args(**cfg)
        ret = a_.returns if a_.objective == "shortfall" else "-"
        print(f"| {row['city']} | {row['n']} | {row['K']} | {a_.objective} | {ret} | {row['mode']} | {'full' if cfg.get('later_reach_km') is None else cfg['later_reach_km']} | "
              f"{row['rank']} | {row['pairs']} | {row['variables']} | {row['iters']:.0f} | {row['first_s']:.3f} | "
              f"{row['step_s']:.3f} ({row['step_min']:.3f}-{row['step_max']:.3f}) | {row['solver_s']:.3f} | "
              f"{row['overhead']:.3f} | {row['objective']:.6f} |", flush=True)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
