#!/usr/bin/env python
"""Radius and weight sweeps of the DR controller on NYC green taxis: Pareto of km vs unfairness.

Run from the repository root (bundled data; a few minutes on 2 cores)::

    .venv/bin/python benchmarks/eval_sweeps.py --fleet 600 --out out/sweeps

For each setting it replays the same held-out March weekdays (same requests, fleet draw and
chargers) with the ``dr`` policy, and once with ``nominal`` as the reference, and writes
``sweeps.csv`` (one row per setting: day means of balancing km, u_m, u_m_all, u_c, served rate) and
``pareto.png`` (balancing km against mobility unfairness -u_m_all and charging unfairness -u_c).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from data_pipeline.readers import read_tlc_trips
from drbalance import datasets
from drbalance.evaluation import evaluate
from drbalance.study_config import StudyConfig

DAYS = ("2021-03-02", "2021-03-03", "2021-03-04", "2021-03-09", "2021-03-10")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fleet", type=int, default=600)
    ap.add_argument("--regions", type=int, default=20)
    ap.add_argument("--days", default=",".join(DAYS))
    ap.add_argument("--out", type=Path, default=Path("out/sweeps"))
    ap.add_argument("--radius-scales", default="0,0.25,1,4,16")
    ap.add_argument("--beta1", default="0.5,1,2,4")
    ap.add_argument("--beta2", default="0.5,1,2,4")
    args = ap.parse_args()
    zones = datasets.load_nyc_zones()
    trips = read_tlc_trips(datasets.nyc_green_trip_files(), zones, period=("2021-01-01", "2021-03-31")).frame
    base = StudyConfig().with_values({"evaluation.train": ["2021-01-01", "2021-02-28"],
                                      "evaluation.days": args.days.split(","), "sim.fleet_size": args.fleet,
                                      "evaluation.policies": ["dr"], "evaluation.regions": args.regions})
    nominal = {"evaluation.policies": ["nominal"]}
    settings = [("nominal", nominal)]
    settings += [(f"dr gamma x{g}", {"controller.radius_scale": float(g)}) for g in args.radius_scales.split(",")]
    settings += [(f"dr beta1={b}", {"balancing.beta1": float(b)}) for b in args.beta1.split(",") if float(b) != 1.0]
    # the same weights without robustness, so that weight effects are not credited to robustness
    settings += [(f"nominal beta1={b}", {**nominal, "balancing.beta1": float(b)})
                 for b in args.beta1.split(",") if float(b) != 1.0]
    settings += [(f"dr beta2={b}", {"balancing.beta2": float(b)}) for b in args.beta2.split(",") if float(b) != 1.0]
    rows = []
    t0 = time.perf_counter()
    for label, change in settings:
        cfg = base.with_values(change)
        ev = evaluate(trips, zones, cfg)
        r = ev.runs
        rows.append({"setting": label, **{k.split(".")[-1]: v for k, v in change.items() if k != "evaluation.policies"},
                     "balancing_km": r.balancing_km.mean(), "u_m": r.u_m_mean.mean(), "u_m_all": r.u_m_all_mean.mean(),
                     "u_c": r.u_c_mean.mean(), "served_rate": r.served.sum() / r.requests.sum(),
                     "fallbacks": int(r.fallbacks.sum()), "step_s_median": r.step_s_median.median()})
        print(f"{label:18s} km {rows[-1]['balancing_km']:8.0f}  u_m {rows[-1]['u_m']:7.3f}  "
              f"u_m_all {rows[-1]['u_m_all']:7.3f}  u_c {rows[-1]['u_c']:7.4f}  served {rows[-1]['served_rate']:.4f}  "
              f"fallbacks {rows[-1]['fallbacks']}", flush=True)
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "sweeps.csv", index=False)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, col, label in ((axes[0], "u_m_all", "mobility unfairness -u_m (incl. empty regions)"),
                           (axes[1], "u_c", "charging unfairness -u_c")):
        groups = (("nominal", "s", table.setting.str.startswith("nominal")),
                  ("dr gamma", "o", table.setting.str.contains("gamma")),
                  ("dr beta1", "^", table.setting.str.startswith("dr beta1")),
                  ("dr beta2", "v", table.setting.str.startswith("dr beta2")))
        for kind, marker, mask in groups:
            sel = table[mask]
            ax.scatter(sel.balancing_km, -sel[col], marker=marker, label=kind)
            for _, r in sel.iterrows():
                ax.annotate(r.setting.replace("dr ", ""), (r.balancing_km, -r[col]), fontsize=7)
        ax.set_xlabel("balancing km per day")
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle(f"DR controller sweeps, {len(base.evaluation.days)} March weekdays, {args.fleet} EVs, {args.regions} regions")
    fig.tight_layout()
    fig.savefig(args.out / "pareto.png", dpi=110)
    print(f"wrote {args.out}/sweeps.csv and pareto.png in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
