#!/usr/bin/env python
"""City-scale replay benchmark (issue 19): a synthetic 491-region city, 10,000 EVs, ~300,000 requests a day,
replayed with the default controller (``Study.policy(config.balancing.mode)``, DR by default).

The city: 491 zones on a jittered 1.5 km grid (the geometry of :func:`drbalance.synthetic.synthetic_city`),
demand from four Gaussian hotspots times a two-peak daily profile, scaled to ``--requests`` trips a day,
with a lognormal day factor; destinations drawn by a gravity model (attractiveness x exp(-km / 4)),
road km = great circle x 1.3 x lognormal(0, 0.1), duration = km / 20 km/h x lognormal(0, 0.2) + 2 min.
``--train-days`` days of history (the estimates' training period) and the replayed day; every draw
from ``numpy.random.default_rng(seed)``.  Each zone is a region (``evaluation.regions = 0``).

Timed (``time.perf_counter``): trip generation (not part of the replay), ``Study.from_trips`` (regions,
panels, forecasts and uncertainty sets: the *forecasting* set-up), building the simulator, and the
replay, split by timing wrappers on the policy instance into *forecasting* (the controller's
``forecasts``: window forecasts and uncertainty sets per decision), *solving* (``problem.solve``: data
update, conic solve, rounding, including solves that end over the step budget and fall back), *controller
other* (the rest of ``plan``: fallbacks, charge moves) and *simulation* (replay time minus plan time).

    .venv/bin/python benchmarks/bench_city.py --hours 1 --json out/city1h.json      # measure a window
    .venv/bin/python benchmarks/bench_city.py --json out/city24h.json               # the full day
    .venv/bin/python benchmarks/bench_city.py --minutes 30 --profile                 # + cProfile top 25

Goal: the full day in <= 10 minutes (replay); a window's time is extrapolated per decision slot.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from data_pipeline.regions import haversine_km  # noqa: E402
from drbalance.study import Study  # noqa: E402
from drbalance.study_config import StudyConfig  # noqa: E402
from drbalance.synthetic import LAT0, LON0  # noqa: E402

FIRST_DAY = pd.Timestamp("2024-03-04")   # a Monday


def city_zones(n: int, seed: int, spacing_km: float = 1.5) -> tuple[pd.DataFrame, np.ndarray]:
    """Zone table (index 0..n-1: name, lat, lon) on a jittered grid and (n, 2) planar km coordinates."""
    rng = np.random.default_rng([seed, 1])
    g = int(np.ceil(np.sqrt(n)))
    a, b = np.divmod(np.arange(n), g)
    xy = np.stack([b, a], axis=1).astype(float) * spacing_km
    xy += rng.uniform(-0.3, 0.3, size=(n, 2)) * spacing_km
    lat = LAT0 + xy[:, 1] / 111.0
    lon = LON0 + xy[:, 0] / (111.0 * np.cos(np.radians(LAT0)))
    zones = pd.DataFrame({"name": [f"z{i}" for i in range(n)], "lat": lat, "lon": lon},
                         index=pd.Index(np.arange(n), name="zone"))
    return zones, xy


def city_trips(zones: pd.DataFrame, xy: np.ndarray, n_days: int, per_day: int, seed: int,
               slot_minutes: int = 15) -> pd.DataFrame:
    """Canonical trips frame (see data_pipeline.readers) of ``n_days`` days from ``FIRST_DAY``."""
    rng = np.random.default_rng([seed, 2])
    n = len(zones)
    span = xy.max(axis=0) - xy.min(axis=0) + 1.5
    centres = xy.min(axis=0) + rng.random((4, 2)) * span
    d2 = ((xy[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    bumps = np.exp(-0.5 * d2 / (0.25 * span.mean()) ** 2)
    origin_w = 0.3 + bumps @ rng.uniform(1.0, 3.0, 4)
    attract = 0.3 + bumps @ rng.uniform(1.0, 3.0, 4)
    n_slots = 1440 // slot_minutes
    h = (np.arange(n_slots) * slot_minutes / 60.0) % 24
    prof = 0.35 + np.exp(-0.5 * ((h - 8.5) / 1.5) ** 2) + 0.9 * np.exp(-0.5 * ((h - 18.0) / 2.0) ** 2)
    lam = prof[:, None] * origin_w[None, :]
    lam *= per_day / lam.sum()
    km = haversine_km(zones["lat"].to_numpy()[:, None], zones["lon"].to_numpy()[:, None],
                      zones["lat"].to_numpy()[None, :], zones["lon"].to_numpy()[None, :])
    od = attract[None, :] * np.exp(-km / 4.0)
    cum = np.cumsum(od / od.sum(1, keepdims=True), axis=1)
    parts = []
    for d in range(n_days):
        counts = rng.poisson(lam * rng.lognormal(0, 0.1))              # (slots, n)
        slot, origin = np.nonzero(counts)
        rep = counts[slot, origin]
        slot, origin = np.repeat(slot, rep), np.repeat(origin, rep)
        m = len(slot)
        dest = (cum[origin] < rng.random((m, 1))).sum(1).clip(0, n - 1)
        road = np.maximum(km[origin, dest], 0.3) * 1.3 * rng.lognormal(0, 0.1, m)
        dur = road / 20.0 * 60.0 * rng.lognormal(0, 0.2, m) + 2.0
        t0 = (FIRST_DAY + pd.Timedelta(days=d)).to_datetime64().astype("datetime64[s]")
        pu = t0 + (slot * slot_minutes * 60 + rng.integers(0, slot_minutes * 60, m)).astype("timedelta64[s]")
        do = pu + (dur * 60).astype(np.int64).astype("timedelta64[s]")
        parts.append(pd.DataFrame({"pickup_time": pu.astype("datetime64[ns]"), "dropoff_time": do.astype("datetime64[ns]"),
                                   "pickup_zone": origin, "dropoff_zone": dest, "distance_km": road,
                                   "duration_min": (do - pu).astype(np.int64) / 60.0}))
    out = pd.concat(parts, ignore_index=True).sort_values("pickup_time", kind="stable", ignore_index=True)
    out["source"] = pd.Categorical.from_codes(np.zeros(len(out), np.int8), ["synthetic"])
    out["row"] = np.arange(len(out), dtype=np.int64)
    return out


class TimedPolicy:
    """Delegates to ``policy`` and adds up wall time of its ``plan`` calls and, when the policy is a
    controller, of its ``forecasts`` (window forecasts and sets) and ``problem.solve`` (model update,
    conic solve, rounding) calls, timed on the instance (benchmark-only wrappers, nothing changed)."""

    def __init__(self, policy):
        self._policy = policy
        self.plan_seconds = self.forecast_seconds = self.solve_seconds = 0.0
        self.steps = 0
        if hasattr(policy, "forecasts"):
            policy.forecasts = self._timed(policy.forecasts, "forecast_seconds")
        problem = getattr(policy, "problem", None)
        if problem is not None and hasattr(problem, "solve"):
            problem.solve = self._timed(problem.solve, "solve_seconds")

    def _timed(self, fn, attr):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                setattr(self, attr, getattr(self, attr) + time.perf_counter() - t0)
        return wrapper

    def plan(self, state, t):
        t0 = time.perf_counter()
        out = self._policy.plan(state, t)
        self.plan_seconds += time.perf_counter() - t0
        self.steps += 1
        return out

    def fallbacks(self) -> int:
        """Decisions the controller answered with its fallback (e.g. a solve over the step budget)."""
        f = getattr(self._policy, "fallbacks", 0)
        return int(f() if callable(f) else f)

    def __getattr__(self, name):
        return getattr(self._policy, name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--regions", type=int, default=491)
    ap.add_argument("--fleet", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=300_000, help="expected trips per day")
    ap.add_argument("--train-days", type=int, default=14)
    ap.add_argument("--hours", type=float, default=None, help="replay this many hours from midnight")
    ap.add_argument("--minutes", type=int, default=None, help="replay this many minutes (overrides --hours)")
    ap.add_argument("--start-minute", type=int, default=0, help="start of the replayed window (minute of day)")
    ap.add_argument("--policy", default=None, help="policy (default: the configured balancing mode)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", action="store_true", help="cProfile the replay (top 25 by cumulative time)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a StudyConfig value, e.g. balancing.reach_km=4.5 (repeatable; JSON values)")
    args = ap.parse_args(argv)
    minutes = args.minutes if args.minutes is not None else int(round(60 * (args.hours if args.hours else 24)))

    load0 = os.getloadavg()
    t = time.perf_counter()
    zones, xy = city_zones(args.regions, args.seed)
    trips = city_trips(zones, xy, args.train_days + 1, args.requests, args.seed)
    t_gen = time.perf_counter() - t
    day = FIRST_DAY + pd.Timedelta(days=args.train_days)
    train = (str(FIRST_DAY.date()), str((day - pd.Timedelta(days=1)).date()))
    config = StudyConfig().with_values({"evaluation.train": list(train), "evaluation.regions": 0,
                                        "evaluation.circuity": 1.3, "sim.fleet_size": args.fleet, "seed": args.seed})
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            value = json.loads(value)
        except ValueError:
            pass
        overrides[key.strip()] = value
    config = config.with_values(overrides)   # all at once: fields checked against each other
    policy_name = args.policy or config.balancing.mode
    print(f"city: {args.regions} zones, {len(trips):,} trips over {args.train_days + 1} days "
          f"({int((trips['pickup_time'] >= day).sum()):,} on the replayed day {day.date()}), generated in {t_gen:.1f} s")

    t = time.perf_counter()
    study = Study.from_trips(trips, zones, config)
    t_study = time.perf_counter() - t
    t = time.perf_counter()
    sim = study.simulator(day, start_minute=args.start_minute, minutes=minutes)
    policy = TimedPolicy(study.policy(policy_name, sim))
    t_sim_build = time.perf_counter() - t
    pr = cProfile.Profile() if args.profile else None
    t = time.perf_counter()
    if pr:
        pr.enable()
    result = sim.run(policy)
    if pr:
        pr.disable()
    t_run = time.perf_counter() - t
    n_req = int(len(result.requests)) if hasattr(result, "requests") else None
    served = float((result.requests["outcome"] == "served").mean()) if n_req else None
    slots = max(1, minutes // config.slot_minutes)
    per_slot = t_run / slots
    summary = {
        "regions": args.regions, "fleet": args.fleet, "minutes": minutes, "start_minute": args.start_minute,
        "policy": policy_name, "mode": config.balancing.mode, "requests_replayed": n_req, "served_rate": served,
        "trips_generated": int(len(trips)), "generate_seconds": t_gen, "study_seconds": t_study,
        "simulator_build_seconds": t_sim_build, "replay_seconds": t_run, "plan_seconds": policy.plan_seconds,
        "forecast_seconds": policy.forecast_seconds, "solve_seconds": policy.solve_seconds,
        "controller_other_seconds": policy.plan_seconds - policy.solve_seconds - policy.forecast_seconds,
        "fallbacks": policy.fallbacks(),
        "simulation_seconds": t_run - policy.plan_seconds, "steps": policy.steps, "replay_seconds_per_slot": per_slot,
        "full_day_replay_estimate_s": per_slot * (1440 // config.slot_minutes),
        "load_start": list(load0), "load_end": list(os.getloadavg()), "overrides": list(args.set),
    }
    print(f"replay {minutes} min ({policy.steps} decisions, {policy.fallbacks()} fallbacks): {t_run:.1f} s = solve "
          f"{policy.solve_seconds:.1f} + forecasts {policy.forecast_seconds:.1f} + controller other "
          f"{policy.plan_seconds - policy.solve_seconds - policy.forecast_seconds:.1f} + simulation "
          f"{t_run - policy.plan_seconds:.1f}; study (forecast fit) {t_study:.1f} s, simulator {t_sim_build:.1f} s; "
          f"requests {n_req}, served {served}")
    print(f"per slot {per_slot:.2f} s -> full day about {summary['full_day_replay_estimate_s'] / 60:.1f} min "
          f"(+ {t_study + t_sim_build:.0f} s set-up); load {load0[0]:.1f} -> {os.getloadavg()[0]:.1f}")
    if pr:
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(25)
        print(s.getvalue())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
