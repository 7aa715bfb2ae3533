"""Scenario sweeps of the EV-fleet simulator on Dask (issue 7): grid files, scenario hashing, resumable runs.

A *grid* (TOML, read with :mod:`tomllib`) has three tables::

    [base]            # settings shared by every scenario (see BASE_DEFAULTS for every key)
    day = "2021-03-02"
    hours = 4
    fleet = 60
    seed = 7

    [fleet_mixes]     # named mixes: [[share, range_mi], ...] (efficiency base.mi_per_kwh)
    SR = [[1.0, 100]]
    MR = [[0.5, 100], [0.5, 250]]

    [grid]            # dimensions: the sweep is their Cartesian product, in file order
    fleet_mix = ["SR", "MR"]
    power_kw = [50, 11]

Any key of ``[base]`` may be a grid dimension.  Each scenario's parameters are the base updated with
one combination; the scenario key is a SHA-256 of their canonical JSON (named mixes resolved, so the
key changes when a mix's definition does) and its seed is derived from the key, i.e. from the grid
seed and the parameters (``seed_mode = "common"`` gives every scenario the grid seed instead: common
random numbers, the same initial fleet positions and SoC draw in every scenario).

A finished scenario is written atomically (temporary file + ``os.replace``) to
``OUT/scenarios/<key>.json`` by the client as soon as its result arrives, so an interrupted sweep
resumes without recomputation.  At the end the scenarios of the grid are combined into
``OUT/sweep.parquet`` (parameters + metrics, no timings: identical seeds give identical tables) and
``OUT/sweep.png``.  Trips, regions and forecasts are loaded once per worker process (cached).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w

from data_pipeline.estimates import EstimateConfig
from data_pipeline.readers import read_nyc_zones, read_tlc_trips
from drbalance import datasets
from drbalance.errors import ConfigError, DataError
from drbalance.io import write_text_atomic
from drbalance.policies import make_policy
from drbalance.sim import ChargingConfig, PlugSiting, SimConfig, Simulator
from drbalance.sim.chargers import MI_KM, fleet_mix_from_ranges, kwh_per_km
from drbalance.sim.siting import site_xyz
from drbalance.study import DayReplay
from drbalance.study_config import tomllib  # tomllib, or tomli on Python 3.10

#: every base setting and its default (units in the names; ranges in miles as in the seed paper)
BASE_DEFAULTS: dict = {
    "day": "2021-03-02",          # simulated day (bundled NYC green taxi 2021-01..03 unless trips is given)
    "start_hour": 0.0,            # the window starts at this hour of the day
    "hours": 24.0,                # and lasts H hours (start_hour + hours <= 24)
    "train_days": 7,              # days before `day` used for siting weights and greedy forecasts
    "trips": None,                # list of trip files; None: the bundled NYC green-taxi months
    "zones": None,                # taxi_zone_lookup.csv; None: the bundled one
    "regions": 20,                # k-means regions (None: one per taxi zone)
    "regions_seed": 0,            # seed of the coarsening (shared by all scenarios)
    "circuity": 1.33,             # road / straight-line distance factor
    "fleet": 100,
    "seed": 0,                    # grid seed
    "seed_mode": "per_scenario",  # or "common"
    "policy": "noop",             # noop | greedy | oracle_counts
    "slot_minutes": 15,
    "plugs_total": None,          # None: ceil(plugs_per_vehicle * fleet)
    "plugs_per_vehicle": 0.1,
    "patience_minutes": 10,
    "match_radius_km": 3.0,
    "speed_kmh": 20.0,
    "mi_per_kwh": 3.33,           # efficiency (paper); consumption = 1 / (3.33 * 1.609) kWh/km
    "fleet_mix": "SR",            # a name of [fleet_mixes] (built in: SR, LR, MR)
    "power_kw": 50.0,
    "low_soc": 0.20,
    "min_range_mi": 0.0,          # paper: 30 mi
    "target_soc": 0.80,
    "idle_minutes": None,         # paper: 15 or 60 (0 or None: off; TOML has no null, so write 0)
    "opportunistic_soc": None,    # paper: 0.60 (0 or None: off)
    "opportunistic_km": 3.0,
    "priority": "charging",       # or "service" (exit charging early)
    "exit_min_soc": None,
    "self_dispatch": True,        # low-battery EVs drive to a charger at once (paper) instead of at the next slot
    "unconstrained_reference": True,  # also run a no-range-limit fleet for demand_change_pct
    "siting_xyz": [],             # [x plugs, y mi, z min] (paper: [5, 15, 15]): grow the chargers by the x/y/z
                                  # rule before the scenario's run and report stations/plugs; []: off
    "siting_max_rounds": 10,
}

BUILTIN_MIXES = {"SR": [[1.0, 100.0]], "LR": [[1.0, 250.0]], "MR": [[0.5, 100.0], [0.5, 250.0]]}

#: summary keys copied into the sweep table (scalars)
METRICS = ("requests", "served", "unserved", "served_rate", "wait_mean_min", "response_time_mean_min",
           "empty_vmt_pct", "charging_vmt_pct", "evmt_share", "trips_per_vehicle", "trips_per_vehicle_day",
           "charging_trips", "charging_vehicles", "charging_trips_per_charging_vehicle",
           "charging_trips_per_charging_vehicle_day", "charger_hours_total", "charger_hours_per_charging_vehicle",
           "charging_sessions", "charge_queue_mean_min", "charge_queue_p90_min", "energy_charged_kwh",
           "exits_early", "triggered_idle", "triggered_opportunistic", "triggered_self_dispatch", "stranded",
           "queued_at_end", "balancing_km", "empty_km", "total_km", "u_m_mean", "u_c_mean", "plugs",
           "battery_kwh_mean", "final_soc_mean")


# ------------------------------------------------------------------------------------------ grid
def load_grid(path) -> dict:
    """Read a grid TOML file; returns ``{"base", "fleet_mixes", "grid"}`` with defaults filled in."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"grid file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_grid(raw, str(path))


def parse_grid(raw: dict, where: str = "grid") -> dict:
    extra = set(raw) - {"base", "fleet_mixes", "grid"}
    if extra:
        raise ConfigError(f"{where}: unknown table(s) {sorted(extra)}; use [base], [fleet_mixes], [grid]")
    base = dict(BASE_DEFAULTS)
    for k, v in raw.get("base", {}).items():
        if k not in BASE_DEFAULTS:
            raise ConfigError(f"{where}: unknown [base] key {k!r}; known: {', '.join(BASE_DEFAULTS)}")
        base[k] = v
    mixes = {k: [list(map(float, pair)) for pair in v] for k, v in BUILTIN_MIXES.items()}
    for k, v in raw.get("fleet_mixes", {}).items():
        if not isinstance(v, list) or not v or not all(isinstance(p, list) and len(p) == 2 for p in v):
            raise ConfigError(f"{where}: fleet mix {k!r} must be a list of [share, range_mi] pairs")
        mixes[k] = [[float(a), float(b)] for a, b in v]
    grid = {}
    for k, v in raw.get("grid", {}).items():
        if k not in BASE_DEFAULTS:
            raise ConfigError(f"{where}: unknown [grid] dimension {k!r}; any [base] key may be a dimension")
        if not isinstance(v, list) or not v:
            raise ConfigError(f"{where}: grid dimension {k!r} must be a non-empty list")
        grid[k] = v
    if base["seed_mode"] not in ("per_scenario", "common"):
        raise ConfigError(f"{where}: seed_mode must be 'per_scenario' or 'common'")
    for name in [base["fleet_mix"], *grid.get("fleet_mix", [])]:
        if name not in mixes:
            raise ConfigError(f"{where}: fleet mix {name!r} is not defined; known: {', '.join(mixes)}")
    return {"base": base, "fleet_mixes": mixes, "grid": grid}


def grid_to_toml(grid: dict) -> str:
    """The resolved grid (every ``[base]`` key with its value, the mixes, the dimensions) as TOML that
    :func:`load_grid` reads back to the same scenarios.  TOML has no null: keys whose value is None are
    left out (their default is None), except ``regions``, where None (one region per zone) is written
    as 0, which the sweep reads the same way."""
    base = dict(grid["base"])
    if base.get("regions") is None:
        base["regions"] = 0
    tree = {"base": {k: v for k, v in base.items() if v is not None},
            "fleet_mixes": grid["fleet_mixes"], "grid": grid["grid"]}
    return "# drbalance sweep: the resolved grid of this results folder (drbalance sweep --grid THIS_FILE)\n" + \
        tomli_w.dumps(tree)


def scenario_key(params: dict) -> str:
    """Stable 16-hex-digit key of a scenario's parameters (canonical JSON, sorted keys)."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def expand(grid: dict) -> list[dict]:
    """The scenarios of a parsed grid, in product order: dicts with ``key``, ``seed``, ``params``."""
    base, mixes, dims = grid["base"], grid["fleet_mixes"], grid["grid"]
    names = list(dims)
    out = []
    for combo in itertools.product(*(dims[k] for k in names)):
        p = {**base, **dict(zip(names, combo))}
        p["fleet_mix_def"] = mixes[p["fleet_mix"]]
        key = scenario_key(p)
        seed = int(p["seed"]) if p["seed_mode"] == "common" else int(key[:8], 16)
        out.append({"key": key, "seed": seed, "params": p, "varied": dict(zip(names, combo))})
    if len({s["key"] for s in out}) != len(out):
        raise ConfigError("the grid lists the same scenario twice (repeated values in a dimension)")
    return out


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
    kpk = kwh_per_km(float(p["mi_per_kwh"]))
    mix = fleet_mix_from_ranges(p["fleet_mix_def"], float(p["mi_per_kwh"]))
    charging = ChargingConfig(power_kw=float(p["power_kw"]), low_soc=float(p["low_soc"]),
                              target_soc=float(p["target_soc"]), min_range_km=float(p["min_range_mi"]) * MI_KM,
                              idle_minutes=p["idle_minutes"] or None, opportunistic_soc=p["opportunistic_soc"] or None,
                              opportunistic_km=float(p["opportunistic_km"]), priority=p["priority"],
                              exit_min_soc=p["exit_min_soc"] if p["exit_min_soc"] not in (None, -1) else None, self_dispatch=bool(p["self_dispatch"]))
    cfg = SimConfig(fleet_size=int(p["fleet"]), seed=int(seed), slot_minutes=int(p["slot_minutes"]),
                    battery_kwh=float(np.mean([k for _, k in mix])), consumption_kwh_per_km=kpk,
                    patience_minutes=int(p["patience_minutes"]), match_radius_km=float(p["match_radius_km"]),
                    speed_kmh=float(p["speed_kmh"]), charging=charging, fleet_mix=mix, unconstrained=unconstrained)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


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
    (out / "scenarios").mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "grid.toml", grid_to_toml(grid))
    scenarios = expand(grid)
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
            from dask.distributed import Client, LocalCluster, as_completed  # (b) heavy: only with workers

            if scheduler is not None:
                cluster = None
                client = Client(scheduler)
            else:
                if workers < 1:
                    raise ConfigError(f"--workers must be >= 0, got {workers}")
                cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                                       dashboard_address=None)
                client = Client(cluster)
            try:
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
            finally:
                client.close()
                if cluster is not None:
                    cluster.close()
    if not todo or (scheduler is None and workers == 0):
        tasks_wall = time.perf_counter() - t_tasks
    t_comb = time.perf_counter()
    table = combine(out, scenarios)
    table_path = out / "sweep.parquet"
    table.to_parquet(table_path, index=False)
    plot_path = plot_sweep(table, out / "sweep.png", list(grid["grid"]))
    return {"scenarios": len(scenarios), "computed": len(todo), "skipped": skipped,
            "seconds": time.perf_counter() - t0, "compute_seconds": compute_seconds, "workers": n_workers,
            "startup_seconds": startup_seconds, "tasks_wall_seconds": tasks_wall,
            "combine_seconds": time.perf_counter() - t_comb,
            "scheduler": scheduler or ("local" if workers else "inline"), "table": str(table_path),
            "plot": str(plot_path), "out": str(out)}


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
    fig.savefig(path, dpi=100)
    return path
