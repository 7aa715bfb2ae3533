#!/usr/bin/env python
"""``drbalance evaluate --workers 2`` vs ``--workers 0``: identical results, and the speed-up.

Run from the repository root (bundled NYC green-taxi data)::

    .venv/bin/python benchmarks/bench_eval_workers.py --json /tmp/bew/bench.json
    .venv/bin/python benchmarks/bench_eval_workers.py --days 2021-03-02,2021-03-03,2021-03-04 --hours 24 \
        --seeds 0,1,2 --json /tmp/bew/full.json

It reads the trips once, then runs :func:`drbalance.evaluation.evaluate` on the same configuration
with ``workers = 0`` (in this process) and ``workers = W`` (a Dask ``LocalCluster`` of W processes,
one thread each), alternating the order over ``--repeats`` rounds, and reports per run the wall time,
the cluster start-up, the summed replay time and the load average before and after.  The identity
check compares the evaluation JSON (:func:`drbalance.evaluation.summary_json`) and the runs and
slots frames with every timing column removed; any difference is printed and makes the exit code 1.
A benchmark, not a test: on a shared machine the timings are noisy (the load averages say how busy
it was).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd

from data_pipeline.readers import read_tlc_trips
from drbalance import datasets
from drbalance.evaluation import compare, evaluate, summary_json
from drbalance.study_config import StudyConfig

#: columns and JSON keys that are timings (allowed to differ)
TIMING_COLUMNS = ("replay_s", "step_s_median", "solver_s_median", "seconds", "plan_seconds", "vehicle_minutes_per_second")
TIMING_KEYS = ("step_s_median", "solver_s_median", "replay_s_mean")


def without_timings(ev) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """The evaluation's JSON, runs and slots with timings (and the worker count) removed."""
    js = summary_json(ev, compare(ev))
    js.pop("seconds", None)
    js.pop("workers", None)
    for p in js["policies"].values():
        for k in TIMING_KEYS:
            p.pop(k, None)
        for k in ("ci95", "change_vs_nominal_pct"):
            for t in TIMING_KEYS:
                p.get(k, {}).pop(t, None)
    runs = ev.runs.drop(columns=[c for c in TIMING_COLUMNS if c in ev.runs])
    return json.loads(json.dumps(js, sort_keys=True, default=str)), runs, ev.slots


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", default="2021-02-01:2021-02-28")
    ap.add_argument("--days", default="2021-03-02,2021-03-03")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--policies", default="noop,greedy,nominal,demand_robust,dr")
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--regions", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    train = args.train.split(":")
    days = [d.strip() for d in args.days.split(",")]
    cfg = StudyConfig().with_values({
        "evaluation.train": train, "evaluation.days": days, "evaluation.policies": args.policies.split(","),
        "evaluation.seeds": [int(s) for s in args.seeds.split(",")], "evaluation.hours": args.hours,
        "evaluation.regions": args.regions, "evaluation.fleet_sizing": "auto"})
    zones = datasets.load_nyc_zones()
    months = sorted({d[:7] for d in (*train, *days)})
    months = [str(p) for p in pd.period_range(months[0], months[-1], freq="M")]
    trips = read_tlc_trips(datasets.nyc_green_trip_files(tuple(months)), zones, period=(train[0], max(days))).frame

    rows, results = [], {}
    for r in range(args.repeats):
        order = (0, args.workers) if r % 2 == 0 else (args.workers, 0)
        for w in order:
            load0 = os.getloadavg()
            t0 = time.perf_counter()
            ev = evaluate(trips, zones, cfg.with_values({"evaluation.workers": w}))
            wall = time.perf_counter() - t0
            dask = ev.extra["dask"]
            rows.append({"round": r, "workers": w, "wall_s": wall, "startup_s": dask["startup_seconds"],
                         "tasks_s": dask["tasks_seconds"], "replay_s_sum": float(ev.runs["replay_s"].sum()),
                         "replays": len(ev.runs), "fleet": int(ev.config.sim.fleet_size),
                         "load_before": load0[0], "load_after": os.getloadavg()[0]})
            results.setdefault(w, without_timings(ev))
            print(json.dumps(rows[-1]))

    (ja, ra, sa), (jb, rb, sb) = results[0], results[args.workers]
    problems = []
    if ja != jb:
        problems.append("evaluation JSON differs")
    try:
        pd.testing.assert_frame_equal(ra, rb)
    except AssertionError as exc:
        problems.append(f"runs differ: {exc}")
    try:
        pd.testing.assert_frame_equal(sa, sb)
    except AssertionError as exc:
        problems.append(f"slots differ: {exc}")
    t = pd.DataFrame(rows)
    best = t.groupby("workers")["wall_s"].min()
    summary = {"identical": not problems, "problems": problems, "runs": rows,
               "wall_s_best": {int(k): float(v) for k, v in best.items()},
               "speedup_best": float(best[0] / best[args.workers]),
               "speedup_tasks": float(t[t.workers == 0]["tasks_s"].min() / t[t.workers == args.workers]["tasks_s"].min()),
               "cpus": os.cpu_count(), "config": {"days": days, "seeds": args.seeds, "hours": args.hours,
                                                  "policies": args.policies, "regions": args.regions}}
    print(f"identical: {summary['identical']}; wall {summary['wall_s_best']} s; speed-up {summary['speedup_best']:.2f}x "
          f"(replays only: {summary['speedup_tasks']:.2f}x) on {os.cpu_count()} CPUs")
    for p in problems:
        print(p)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
