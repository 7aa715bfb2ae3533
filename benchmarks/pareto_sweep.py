#!/usr/bin/env python
"""Pareto sweep: balancing km against served rate, per policy, over one weight of its objective.

Run from the repository root (bundled NYC green-taxi data)::

    .venv/bin/python benchmarks/pareto_sweep.py --weight balancing.lost_request_km --values 5,10,20,40 \
        --policies nominal,dr --days 2021-03-02,2021-03-03 --seeds 0,1 --out out/pareto

For every value of ``--weight`` (any dotted :class:`drbalance.study_config.StudyConfig` key, e.g.
``balancing.lost_request_km`` of the shortfall objective, ``balancing.beta1`` of the ratio one,
``controller.radius_scale``) it runs :func:`drbalance.evaluation.evaluate` with the optimiser
policies plus ``noop`` (the zero-km reference) on the same (day, seed) pairs (same requests, fleet
draw and chargers; ``--fleet auto`` sizing), and writes ``OUT/pareto.csv`` (one row per policy and
value: pooled served rate, balancing km per day, mean wait, u_m_common, and the paired change vs
``noop`` with its 95 % interval) and ``OUT/pareto.png`` (km per day on x, served rate on y, one line
per policy through its weights; the non-dominated points circled).  ``--workers W`` replays on Dask.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from data_pipeline.readers import read_tlc_trips
from drbalance import datasets
from drbalance.evaluation import compare, evaluate, summary_json
from drbalance.study_config import StudyConfig


def pareto_front(km: np.ndarray, served: np.ndarray) -> np.ndarray:
    """Mask of the non-dominated points (fewer km and more served is better): ``(n,)`` bool."""
    km, served = np.asarray(km, float), np.asarray(served, float)
    keep = np.ones(len(km), bool)
    for i in range(len(km)):
        dominated = (km <= km[i]) & (served >= served[i]) & ((km < km[i]) | (served > served[i]))
        keep[i] = not dominated.any()
    return keep


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weight", default="balancing.lost_request_km", help="dotted StudyConfig key swept")
    ap.add_argument("--values", default="5,10,20,40")
    ap.add_argument("--policies", default="nominal,demand_robust,dr")
    ap.add_argument("--train", default="2021-01-01:2021-02-28")
    ap.add_argument("--days", default="2021-03-02,2021-03-03")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--regions", type=int, default=20)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("out/pareto"))
    args = ap.parse_args()

    train, days = args.train.split(":"), args.days.split(",")
    policies = ["noop"] + [p for p in args.policies.split(",") if p != "noop"]
    base = StudyConfig().with_values({
        "evaluation.train": train, "evaluation.days": days, "evaluation.policies": policies,
        "evaluation.seeds": [int(s) for s in args.seeds.split(",")], "evaluation.hours": args.hours,
        "evaluation.regions": args.regions, "evaluation.fleet_sizing": "auto", "evaluation.baseline": "noop",
        "evaluation.workers": args.workers})
    zones = datasets.load_nyc_zones()
    months = [str(p) for p in pd.period_range(train[0][:7], max(days)[:7], freq="M")]
    trips = read_tlc_trips(datasets.nyc_green_trip_files(tuple(months)), zones, period=(train[0], max(days))).frame
    rows = []
    for value in [float(v) for v in args.values.split(",")]:
        t0 = time.perf_counter()
        ev = evaluate(trips, zones, base.with_values({args.weight: value}))
        js = summary_json(ev, compare(ev))
        for name, p in js["policies"].items():
            if name == "noop" and rows:
                continue   # the reference does not depend on the weight
            pr = js["paired"].get(name, {}).get("served_rate_pp", {})
            rows.append({"policy": name, "weight": args.weight, "value": value, "fleet": js["fleet"],
                         "served_rate": p["served_rate"], "balancing_km": p["balancing_km"],
                         "wait_min_mean": p["wait_min_mean"], "u_m_common_mean": p["u_m_common_mean"],
                         "served_pp_vs_noop": pr.get("mean"),
                         "served_pp_ci_low": (pr.get("ci95") or [None, None])[0],
                         "served_pp_ci_high": (pr.get("ci95") or [None, None])[1]})
        print(f"{args.weight} = {value:g}: {time.perf_counter() - t0:.0f} s")
    table = pd.DataFrame(rows)
    table["pareto"] = pareto_front(table["balancing_km"], table["served_rate"])
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "pareto.csv", index=False)
    from matplotlib.figure import Figure  # lazy (b): plotting only

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for name, g in table.groupby("policy", sort=False):
        g = g.sort_values("value")
        ax.plot(g["balancing_km"], 100 * g["served_rate"], marker="o", label=name)
        for _, r in g.iterrows():
            ax.annotate(f"{r['value']:g}", (r["balancing_km"], 100 * r["served_rate"]), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))
    front = table[table["pareto"]]
    ax.scatter(front["balancing_km"], 100 * front["served_rate"], s=120, facecolors="none", edgecolors="k",
               label="non-dominated")
    ax.set_xlabel("balancing km per day (lower is better)")
    ax.set_ylabel("served rate, % (higher is better)")
    ax.set_title(f"Pareto over {args.weight}: {len(days)} day(s) x {len(args.seeds.split(','))} seed(s), "
                 f"{int(table['fleet'].iloc[0])} EVs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "pareto.png", dpi=110)
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
