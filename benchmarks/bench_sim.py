"""Benchmark of the EV fleet simulator: one full day of NYC green-taxi trips, 1,000 EVs, greedy policy.

Measures (``time.perf_counter``):

* ``end to end``: what ``drbalance simulate TRIPS --day D --fleet 1000 --policy greedy`` does --
  read and validate the trip files (the 28 training days + the day), estimate circuity, build the
  260-zone RegionMap, fit the greedy policy's Estimates on the training days, site plugs, build the
  requests, run the day; best / median of ``--repeats`` runs after a warm-up;
* ``run``: ``Simulator.run(policy)`` alone for each policy (noop, greedy, oracle_counts) on the same
  simulator, best / median of ``--repeats``; vehicle-minutes per second = ``N * end_minute / run time``.

Goal (issue 3): end to end <= 20 s.  The script exits non-zero if the best end-to-end time misses it.

    .venv/bin/python benchmarks/bench_sim.py                     # 2021-03-02, 1000 EVs, 3 repeats
    .venv/bin/python benchmarks/bench_sim.py --day 2021-03-09 --fleet 2000 --repeats 5
    .venv/bin/python benchmarks/bench_sim.py --profile           # + cProfile of one greedy run
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def data_folder() -> Path:
    shared = ROOT.parent / "shared" / "data" / "nyc_tlc_green_2021q1"
    if shared.is_dir():
        return shared
    from drbalance import datasets

    return datasets.nyc_green_folder()


def cli_args(folder: Path, day: str, fleet: int, policy: str) -> argparse.Namespace:
    """The parsed ``drbalance simulate`` command line of the benchmark (all 260 zones: ``--regions 0``)."""
    from drbalance.cli import build_parser

    files = [str(f) for f in sorted(folder.glob("green_tripdata_2021-0*.parquet"))]
    return build_parser().parse_args(["simulate", *files, "--day", day, "--fleet", str(fleet), "--policy", policy,
                                      "--seed", "0", "--regions", "0"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--day", default="2021-03-02")
    ap.add_argument("--fleet", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()

    import numpy as np

    from drbalance.commands.simulate import simulate_day
    from drbalance.policies import make_policy

    folder = data_folder()
    print(f"data: {folder}; day {a.day}; fleet {a.fleet}; Python {platform.python_version()}, numpy {np.__version__}; "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    args = cli_args(folder, a.day, a.fleet, "greedy")
    simulate_day(args)  # warm-up (imports, file cache)
    e2e = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        summary, result = simulate_day(args)
        e2e.append(time.perf_counter() - t0)
    print(f"\nend to end (read + estimates + simulate, greedy): best {min(e2e):.3f} s, "
          f"median {statistics.median(e2e):.3f} s over {a.repeats}  [goal <= 20 s]")
    print(f"  {summary['requests']} requests, {summary['n_regions']} regions, {summary['plugs']} plugs, "
          f"end minute {summary['end_minute']}")

    # the same simulator for every policy: rebuild it once through the library entry
    from data_pipeline.estimates import EstimateConfig, Estimates
    from data_pipeline.panels import trip_panels
    from data_pipeline.readers import read_nyc_zones, read_tlc_trips
    from data_pipeline.regions import RegionMap
    from drbalance.sim import PlugSiting, SimConfig, Simulator

    zones = read_nyc_zones(folder / "taxi_zone_lookup.csv")
    train = summary["train"]
    frame = read_tlc_trips(args.trips, zones, period=(train[0], a.day)).frame
    regions = RegionMap.from_zones(zones, summary["config"]["circuity"])
    is_day = frame["pickup_time"] >= a.day
    tr = frame[~is_day]
    rr = regions.region_of(tr["pickup_zone"].to_numpy())
    sim = Simulator.from_trips(frame[is_day], regions, a.day, SimConfig(fleet_size=a.fleet), siting=PlugSiting(),
                               siting_weights=np.bincount(rr[rr >= 0], minlength=regions.n), zones=zones)
    est = Estimates.fit(trip_panels(tr, regions, train[0], train[1], 15), regions, EstimateConfig(slot_minutes=15))
    print(f"\n| policy | run best (s) | run median (s) | vehicle-min/s (best) | requests | served | unserved | "
          f"u_m_mean | u_m_all_mean | u_c_mean | zero-supply region-slots | balancing km (vacant / charge) | "
          f"eVMT share | wait mean (min) | charging sessions | stranded |")
    print("|---" * 16 + "|")
    for name in ("noop", "greedy", "oracle_counts"):
        times = []
        for _ in range(a.repeats):
            pol = make_policy(name, sim, est)
            t0 = time.perf_counter()
            res = sim.run(pol)
            times.append(time.perf_counter() - t0)
        s = res.summary
        vm = a.fleet * s["end_minute"] / min(times)
        print(f"| {name} | {min(times):.3f} | {statistics.median(times):.3f} | {vm / 1e6:.2f} M | {s['requests']} | "
              f"{s['served']} | {s['unserved']} | {s['u_m_mean']:.2f} | {s['u_m_all_mean']:.2f} | {s['u_c_mean']:.3f} | "
              f"{s['zero_supply_region_slots']} | {s['balancing_km_vacant']:.0f} / {s['balancing_km_charge']:.0f} | "
              f"{s['evmt_share']:.3f} | {s['wait_mean_min']:.2f} | {s['charging_sessions']} | {s['stranded']} |")
    if a.profile:
        import cProfile
        import pstats

        pr = cProfile.Profile()
        pr.enable()
        sim.run(make_policy("greedy", sim, est))
        pr.disable()
        pstats.Stats(pr).sort_stats("cumulative").print_stats(15)
    return 0 if min(e2e) <= 20.0 else 1


if __name__ == "__main__":
    sys.exit(main())
