"""Scenario sweeps of the EV-fleet simulator on Dask (issue 7): resumable runs of a grid's scenarios.

The grid format, the checks of its values and the scenario keys live in :mod:`drbalance.sweep_grid`
(re-exported here).  A finished scenario is written atomically (temporary file + ``os.replace``) to
``OUT/scenarios/<key>.json`` by the client as soon as its result arrives, so an interrupted sweep
resumes without recomputation (Ctrl-C closes the Dask cluster without its shutdown log; the worker
processes ignore SIGINT, so only this process is interrupted).  At the end the scenarios of the grid
are combined into ``OUT/sweep.parquet`` (parameters + metrics, no timings: identical seeds give
identical tables) and ``OUT/sweep.png``.  Trips, regions and forecasts are loaded once per worker
process (cached).
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from data_pipeline.estimates import EstimateConfig
from data_pipeline.readers import read_nyc_zones, read_tlc_trips
from drbalance import datasets
from drbalance.errors import ConfigError, DataError
from drbalance.io import atomic_path, write_text_atomic
from drbalance.policies import make_policy
from drbalance.sim import PlugSiting, Simulator
from drbalance.sim.chargers import MI_KM
from drbalance.sim.siting import site_xyz
from drbalance.study import DayReplay
from drbalance.sweep_grid import (BASE_DEFAULTS, BASE_RULES, BUILTIN_MIXES, check_scenario, expand, grid_to_toml,
                                  load_grid, parse_grid, scenario_key, sim_config)

__all__ = ["BASE_DEFAULTS", "BASE_RULES", "BUILTIN_MIXES", "METRICS", "build_simulator", "check_scenario", "combine",
           "dask_client", "expand", "grid_to_toml", "load_grid", "parse_grid", "plot_sweep", "read_done", "run_scenario", "run_sweep", "run_tasks",
           "scenario_key", "scenario_path", "sim_config", "write_atomic"]

#: summary keys copied into the sweep table (scalars)
METRICS = ("requests", "served", "unserved", "served_rate", "wait_mean_min", "response_time_mean_min",
           "empty_vmt_pct", "charging_vmt_pct", "evmt_share", "trips_per_vehicle", "trips_per_vehicle_day",
           "charging_trips", "charging_vehicles", "charging_trips_per_charging_vehicle",
           "charging_trips_per_charging_vehicle_day", "charger_hours_total", "charger_hours_per_charging_vehicle",
           "charging_sessions", "charge_queue_mean_min", "charge_queue_p90_min", "energy_charged_kwh",
           "exits_early", "triggered_idle", "triggered_opportunistic", "triggered_self_dispatch", "stranded",
           "queued_at_end", "balancing_km", "empty_km", "total_km", "u_m_mean", "u_c_mean", "plugs",
           "battery_kwh_mean", "final_soc_mean")


# ------------------------------------------------------------------------------------------ data
@functools.lru_cache(maxsize=4)
def _context(day: str, train_days: int, trips: tuple | None, zones_path: str | None, n_regions: int | None,
             regions_seed: int, circuity: float) -> DayReplay:
    """The day's :class:`drbalance.study.DayReplay` (trips, zones, regions): built once per worker process."""
    d = pd.Timestamp(day).normalize()
    t0 = str((d - pd.Timedelta(days=int(train_days))).date())
    if trips is None:
        months = sorted({p.strftime("%Y-%m") for p in pd.date_range(t0, d, freq="D")})
        files = datasets.nyc_green_trip_files(tuple(months))
    else:
        files = [Path(p) for p in trips]
    zpath = Path(zones_path) if zones_path else (datasets.nyc_zone_lookup() if trips is None
                                                  else files[0].with_name("taxi_zone_lookup.csv"))
    zones = read_nyc_zones(zpath)
    frame = read_tlc_trips(files, zones, period=(t0, str(d.date()))).frame
    train = (t0, str((d - pd.Timedelta(days=1)).date()))
    return DayReplay.from_trips(frame, zones, d, train, regions=int(n_regions or 0), seed=int(regions_seed),
                                circuity=float(circuity))


@functools.lru_cache(maxsize=4)
def _estimates(ctx_key: tuple, slot_minutes: int, seed: int):
    try:
        return _context(*ctx_key).estimates(EstimateConfig(slot_minutes=slot_minutes, random_state=seed))
    except DataError as exc:
        raise DataError(f"policy greedy: {exc} (raise train_days)") from None


def build_simulator(params: dict, seed: int, unconstrained: bool = False, plugs=None):
    """Simulator and policy of one scenario (data from the per-process cache); ``plugs`` overrides the
    demand-proportional siting."""

    p = params
    trips = tuple(str(t) for t in p["trips"]) if p["trips"] else None
    ctx_key = (str(p["day"]), int(p["train_days"]), trips, p["zones"], p["regions"], int(p["regions_seed"]),
               float(p["circuity"]))
    ctx = _context(*ctx_key)
    minutes = int(round(float(p["hours"]) * 60))
    cfg = sim_config(p, seed, unconstrained)
    total = p["plugs_total"]
    total = int(total) if total is not None else int(math.ceil(float(p["plugs_per_vehicle"]) * int(p["fleet"])))
    if not (0 <= float(p["start_hour"]) and float(p["start_hour"]) + float(p["hours"]) <= 24 and minutes > 0):
        raise ConfigError(f"start_hour {p['start_hour']} + hours {p['hours']} must lie within the day")
    start = ctx.day + pd.Timedelta(minutes=int(round(float(p["start_hour"]) * 60)))
    sim = Simulator.from_trips(ctx.day_trips, ctx.regions, start, cfg, siting=PlugSiting(total=total),
                               siting_weights=ctx.weights, zones=ctx.zones, minutes=minutes, plugs=plugs)
    est = _estimates(ctx_key, int(p["slot_minutes"]), int(p["regions_seed"])) if p["policy"] == "greedy" else None
    return sim, make_policy(p["policy"], sim, est)


def _policy_for(p: dict, sim):
    """A fresh policy of scenario ``p`` for ``sim`` (forecasts from the per-process cache)."""

    trips = tuple(str(t) for t in p["trips"]) if p["trips"] else None
    ctx_key = (str(p["day"]), int(p["train_days"]), trips, p["zones"], p["regions"], int(p["regions_seed"]),
               float(p["circuity"]))
    est = _estimates(ctx_key, int(p["slot_minutes"]), int(p["regions_seed"])) if p["policy"] == "greedy" else None
    return make_policy(p["policy"], sim, est)


@functools.lru_cache(maxsize=16)
def _unconstrained_served(params_json: str, seed: int) -> tuple[int, float]:
    """Served requests and seconds of the no-range-limit reference (cached per worker; the key holds
    only what the reference depends on)."""
    params = {**BASE_DEFAULTS, "fleet_mix_def": BUILTIN_MIXES["SR"], **json.loads(params_json)}  # no battery setting matters here
    t0 = time.perf_counter()
    sim, policy = build_simulator(params, seed, unconstrained=True)
    res = sim.run(policy)
    return int(res.summary["served"]), time.perf_counter() - t0


_REFERENCE_KEYS = ("day", "start_hour", "hours", "train_days", "trips", "zones", "regions", "regions_seed", "circuity", "fleet",
                   "policy", "slot_minutes", "plugs_total", "plugs_per_vehicle", "patience_minutes",
                   "match_radius_km", "speed_kmh")   # no battery or charging setting matters without a range limit


def run_scenario(scenario: dict) -> dict:
    """Run one scenario (and its unconstrained reference); returns the record written to its file."""
    t0 = time.perf_counter()
    p, seed = scenario["params"], scenario["seed"]
    sim, policy = build_simulator(p, seed)
    siting = None
    if p["siting_xyz"]:

        x, y_mi, z = p["siting_xyz"]
        siting = site_xyz(sim, lambda s_: _policy_for(p, s_), x=int(x), y_km=float(y_mi) * MI_KM, z_min=float(z),
                          max_rounds=int(p["siting_max_rounds"]))
        sim, policy = build_simulator(p, seed, plugs=siting.plugs)
    res = sim.run(policy)
    s = res.summary
    row = {k: _scalar(s[k]) for k in METRICS}
    if siting is not None:
        row.update({"siting_plugs_total": int(siting.plugs.sum()), "siting_stations": siting.stations,
                    "siting_stations_added": siting.stations_added, "siting_rounds": siting.rounds,
                    "siting_stable": siting.stable})
    ref_seconds = 0.0
    if p["unconstrained_reference"]:
        ref = {k: p[k] for k in _REFERENCE_KEYS}
        served_ref, ref_seconds = _unconstrained_served(json.dumps(ref, sort_keys=True, default=str), seed)
        row["served_unconstrained"] = served_ref
        row["demand_change_pct"] = 100.0 * (s["served"] / served_ref - 1.0) if served_ref else float("nan")
    return {"key": scenario["key"], "seed": seed, "params": p, "varied": scenario["varied"], "metrics": row,
            "timing": {"seconds": time.perf_counter() - t0, "sim_seconds": s["seconds"],
                       "reference_seconds": ref_seconds, "pid": os.getpid()}}


def _scalar(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


# ------------------------------------------------------------------------------------------ files
def scenario_path(out: Path, key: str) -> Path:
    return Path(out) / "scenarios" / f"{key}.json"


def write_atomic(path: Path, record: dict) -> None:
    """Write JSON to ``path`` through a temporary file in the same folder and ``os.replace``."""
    write_text_atomic(path, json.dumps(record, sort_keys=True, default=str) + "\n")


def read_done(out: Path, key: str) -> dict | None:
    """The finished record of ``key`` or None (a missing, truncated or foreign file counts as not done)."""
    p = scenario_path(out, key)
    if not p.is_file():
        return None
    try:
        rec = json.loads(p.read_text())
    except (json.JSONDecodeError, OSError):
        return None
    return rec if rec.get("key") == key and "metrics" in rec else None


# ------------------------------------------------------------------------------------------ sweep
def run_sweep(grid: dict, out, workers: int = 1, scheduler: str | None = None, progress=None) -> dict:
    """Run every scenario of ``grid`` not already finished under ``out``; combine the table and plot.

    ``workers``: Dask ``LocalCluster(n_workers=workers, threads_per_worker=1)`` (processes); 0 runs the
    scenarios in this process one after another (no Dask; for tests and debugging).  ``scheduler``:
    address of an existing Dask scheduler (``workers`` is then ignored).
    Returns ``{"scenarios", "computed", "skipped", "seconds", ...}``.
    """
    t0 = time.perf_counter()
    out = Path(out)
    scenarios = expand(grid)   # every scenario checked before anything is written
    (out / "scenarios").mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "grid.toml", grid_to_toml(grid))
    done = {s["key"]: read_done(out, s["key"]) for s in scenarios}
    todo = [s for s in scenarios if done[s["key"]] is None]
    skipped = len(scenarios) - len(todo)
    n_workers = 0
    compute_seconds = 0.0
    startup_seconds = 0.0
    t_tasks = time.perf_counter()
    if todo:
        if scheduler is None and workers == 0:
            for s in todo:
                rec = run_scenario(s)
                write_atomic(scenario_path(out, s["key"]), rec)
                compute_seconds += rec["timing"]["seconds"]
                if progress:
                    progress(rec)
        else:
            from dask.distributed import as_completed  # (b) heavy: only with workers

            with dask_client(workers, scheduler) as client:
                n_workers = len(client.scheduler_info()["workers"])
                startup_seconds = time.perf_counter() - t_tasks
                t_tasks = time.perf_counter()
                # largest first (longer windows/fleets) so the last worker is not left with a long task
                order = sorted(todo, key=lambda s: -float(s["params"]["hours"]) * int(s["params"]["fleet"]))
                futs = [client.submit(run_scenario, s, key=f"scenario-{s['key']}", pure=False) for s in order]
                for fut in as_completed(futs):
                    rec = fut.result()
                    write_atomic(scenario_path(out, rec["key"]), rec)
                    compute_seconds += rec["timing"]["seconds"]
                    if progress:
                        progress(rec)
                tasks_wall = time.perf_counter() - t_tasks
    if not todo or (scheduler is None and workers == 0):
        tasks_wall = time.perf_counter() - t_tasks
    t_comb = time.perf_counter()
    table = combine(out, scenarios)
    table_path = out / "sweep.parquet"
    with atomic_path(table_path) as tmp:
        table.to_parquet(tmp, index=False)
    plot_path = plot_sweep(table, out / "sweep.png", list(grid["grid"]))
    return {"scenarios": len(scenarios), "computed": len(todo), "skipped": skipped,
            "seconds": time.perf_counter() - t0, "compute_seconds": compute_seconds, "workers": n_workers,
            "startup_seconds": startup_seconds, "tasks_wall_seconds": tasks_wall,
            "combine_seconds": time.perf_counter() - t_comb,
            "scheduler": scheduler or ("local" if workers else "inline"), "table": str(table_path),
            "plot": str(plot_path), "out": str(out)}


@contextlib.contextmanager
def dask_client(workers: int, scheduler: str | None = None):
    """A Dask ``Client`` for the duration of the block: on an existing scheduler at address
    ``scheduler``, else on a ``LocalCluster`` of ``workers`` (>= 1) processes with one thread each
    (started with SIGINT ignored, so Ctrl-C reaches only this process).  An interrupt closes client and
    cluster without Dask's shutdown log; both are closed on leaving the block.  An unreachable
    scheduler raises :class:`ConfigError` naming the address."""
    from dask.distributed import Client, LocalCluster  # (b) heavy: only with workers

    if scheduler is not None:
        cluster = None
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler!r} ({type(exc).__name__}: {exc}); "
                              "check the address (tcp://host:8786) or use --workers W for a local cluster") from None
    else:
        if int(workers) < 1:
            raise ConfigError(f"--workers must be >= 0, got {workers}")
        with _sigint_ignored():   # the worker processes inherit it: Ctrl-C reaches this process only
            cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        client = Client(cluster)
    try:
        yield client
    except KeyboardInterrupt:   # finished work is with the caller; stop the cluster without its noise
        _close_quietly(client, cluster)
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_tasks(fn, tasks: list[tuple], *, shared=None, workers: int = 0, scheduler: str | None = None,
              progress=None) -> tuple[list, dict]:
    """``[fn(shared, *task) for task in tasks]``, in task order, either here or on Dask.

    ``workers = 0`` and no ``scheduler``: one after another in this process (no Dask).  Otherwise on
    :func:`dask_client`: ``shared`` (e.g. a :class:`drbalance.study.Study`) is sent once to every
    worker (``Client.scatter(broadcast=True)``) and the tasks are submitted in the order given (put the
    longest first).  ``fn`` must be a module-level function (pickled by reference).  ``progress(i,
    result)`` is called as each task finishes.  Returns the results and ``{"workers", "scheduler",
    "startup_seconds", "tasks_seconds"}``.
    """
    t0 = time.perf_counter()
    results: list = [None] * len(tasks)
    if scheduler is None and int(workers) == 0:
        for i, task in enumerate(tasks):
            results[i] = fn(shared, *task)
            if progress:
                progress(i, results[i])
        return results, {"workers": 0, "scheduler": "inline", "startup_seconds": 0.0,
                         "tasks_seconds": time.perf_counter() - t0}
    from dask.distributed import as_completed  # (b) heavy: only with workers

    with dask_client(workers, scheduler) as client:
        n_workers = len(client.scheduler_info()["workers"])
        handle = client.scatter(shared, broadcast=True, hash=False)
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        futures = {client.submit(fn, handle, *task, pure=False): i for i, task in enumerate(tasks)}
        for fut in as_completed(list(futures)):
            i = futures[fut]
            results[i] = fut.result()
            if progress:
                progress(i, results[i])
        seconds = time.perf_counter() - t1
    return results, {"workers": n_workers, "scheduler": scheduler or "local", "startup_seconds": startup,
                     "tasks_seconds": seconds}


@contextlib.contextmanager
def _sigint_ignored():
    """Ignore SIGINT while the Dask worker processes start: they inherit the disposition, so a Ctrl-C
    interrupts only this process (which then closes the cluster) instead of printing a traceback from
    every worker.  Outside the main thread (no signal handling there) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


#: loggers whose shutdown messages (cancelled tasks, closed streams, worker restarts) an interrupt silences
DASK_LOGGERS = ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.worker",
                "distributed.core", "distributed.client", "distributed.comm", "distributed.batched",
                "distributed.process", "tornado", "asyncio")


def _silence_logs() -> None:
    """Silence Dask's loggers in this process (run on the client and, through ``Client.run``, on
    every worker)."""
    for name in DASK_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def _close_quietly(client, cluster) -> None:
    """Close the client and cluster with their logging silenced, here and in the workers (the tasks
    they drop report themselves cancelled): an interrupted sweep prints one line, not Dask's log."""
    _silence_logs()
    with contextlib.suppress(Exception):
        client.run(_silence_logs)
    with contextlib.suppress(Exception):
        client.close(timeout=10)
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close(timeout=10)


def combine(out: Path, scenarios: list[dict]) -> pd.DataFrame:
    """One row per scenario (grid order): ``scenario``, ``key``, ``seed``, the base and varied parameters
    (``fleet_mix`` by name, its definition as JSON) and the metrics.  No timings, so the table of a
    rerun with the same seeds is identical."""
    rows = []
    for i, s in enumerate(scenarios):
        rec = read_done(out, s["key"])
        if rec is None:
            raise DataError(f"scenario {s['key']} has no finished file under {out}/scenarios")
        p = {k: (json.dumps(v) if isinstance(v, (list, dict)) or v is None else v) for k, v in rec["params"].items()}
        rows.append({"scenario": i, "key": s["key"], "seed": rec["seed"], **p, **rec["metrics"]})
    return pd.DataFrame(rows)


def plot_sweep(table: pd.DataFrame, path: Path, dims: list[str]) -> Path:
    """Four panels over the scenarios: % empty VMT, % charging VMT, served rate, mean charger queue."""
    from matplotlib.figure import Figure  # (b) heavy: only when a sweep ends

    labels = [" ".join(f"{table[d].iloc[i]}" for d in dims) or str(i) for i in range(len(table))]
    panels = (("empty_vmt_pct", "% empty VMT"), ("charging_vmt_pct", "% charging VMT"),
              ("served_rate", "served rate"), ("charge_queue_mean_min", "mean charger queue (min)"))
    fig = Figure(figsize=(max(6, 0.35 * len(table) + 2), 2.4 * len(panels)))
    axes = fig.subplots(len(panels), 1, sharex=True)
    x = np.arange(len(table))
    for ax, (col, title) in zip(axes, panels):
        ax.bar(x, table[col].astype(float).fillna(0.0), color="tab:blue")
        ax.set_ylabel(title, fontsize=8)
    axes[-1].set_xticks(x)
    axes[-1].set_xticklabels(labels, rotation=70, ha="right", fontsize=7)
    axes[0].set_title(f"Sweep: {len(table)} scenarios ({', '.join(dims) or 'base only'})")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    return path
