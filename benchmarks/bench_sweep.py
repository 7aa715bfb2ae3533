"""Speed-up of a Dask scenario sweep with 2 workers over 1 (issue 7).

Runs the same grid (default ``examples/sweep_table4.toml``, 36 full-day NYC scenarios) with
``LocalCluster(n_workers=1)`` and ``LocalCluster(n_workers=2)`` (1 thread each), each into a fresh
folder so nothing is skipped, alternating the order over ``--repeats`` rounds.  Wall time is the whole
:func:`drbalance.distributed.run_sweep` call: cluster start-up, per-worker data loading, the scenarios,
the combined table and the plot.  Asserts that both tables are identical.  Prints the 1-minute load
average before and after every run (the machine is shared).

    .venv/bin/python benchmarks/bench_sweep.py                       # 36-scenario grid, 1 round
    .venv/bin/python benchmarks/bench_sweep.py --repeats 2 --json runs/bench_sweep.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", type=Path, default=ROOT / "examples" / "sweep_table4.toml")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    import pandas as pd

    from drbalance.distributed import expand, load_grid, run_sweep

    grid = load_grid(a.grid)
    n = len(expand(grid))
    print(f"grid {a.grid} ({n} scenarios); {os.cpu_count()} cores; load {os.getloadavg()}")
    times = {1: [], 2: []}
    tasks = {1: [], 2: []}
    runs = []
    tables = {}
    for r in range(a.repeats):
        for w in ((1, 2) if r % 2 == 0 else (2, 1)):
            with tempfile.TemporaryDirectory() as tmp:
                load0 = os.getloadavg()[0]
                t0 = time.perf_counter()
                s = run_sweep(grid, Path(tmp) / "out", workers=w)
                dt = time.perf_counter() - t0
                load1 = os.getloadavg()[0]
                assert s["computed"] == n and s["skipped"] == 0
                tables[w] = pd.read_parquet(s["table"])
            times[w].append(dt)
            runs.append({"round": r, "workers": w, "seconds": dt, "compute_seconds": s["compute_seconds"],
                         "startup_seconds": s["startup_seconds"], "tasks_wall_seconds": s["tasks_wall_seconds"],
                         "combine_seconds": s["combine_seconds"], "load_before": load0, "load_after": load1})
            tasks[w].append(s["tasks_wall_seconds"])
            print(f"round {r}: {w} worker(s): {dt:6.1f} s wall = cluster start {s['startup_seconds']:.1f} + scenarios "
                  f"{s['tasks_wall_seconds']:.1f} + table/plot {s['combine_seconds']:.1f}; "
                  f"{s['compute_seconds']:6.1f} s summed task time; load {load0:.2f} -> {load1:.2f}", flush=True)
    pd.testing.assert_frame_equal(tables[1], tables[2])
    best1, best2 = min(times[1]), min(times[2])
    out = {"grid": str(a.grid), "scenarios": n, "cores": os.cpu_count(), "runs": runs, "best_1_worker_s": best1,
           "best_2_workers_s": best2, "speedup_best": best1 / best2,
           "speedup_median": sorted(times[1])[len(times[1]) // 2] / sorted(times[2])[len(times[2]) // 2],
           "speedup_scenarios_best": min(tasks[1]) / min(tasks[2])}
    print(f"best 1 worker {best1:.1f} s, best 2 workers {best2:.1f} s: speed-up {out['speedup_best']:.2f}x whole "
          f"command, {out['speedup_scenarios_best']:.2f}x scenario phase (tables identical)")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
