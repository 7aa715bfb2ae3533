"""Sweep grids (issue 7): the grid TOML, the rule of every value, scenario expansion and keys.

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

Any key of ``[base]`` may be a grid dimension; at least one dimension is required (one dimension
with one value runs a single scenario).  Every value is checked when the grid is read
(:data:`BASE_RULES`; a string where a number belongs, NaN, a negative fleet... raise
:class:`ConfigError` naming the key), and every scenario when the grid is expanded
(:func:`check_scenario`), so a bad grid fails before any scenario runs.  Each scenario's parameters
are the base updated with one combination; the scenario key is a SHA-256 of their canonical JSON
(named mixes resolved, so the key changes when a mix's definition does) and its seed is derived from
the key, i.e. from the grid seed and the parameters (``seed_mode = "common"`` gives every scenario
the grid seed instead: common random numbers, the same initial fleet positions and SoC draw in
every scenario).  Running the scenarios: :mod:`drbalance.distributed`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w

from drbalance import datasets
from drbalance.errors import ConfigError, DataError
from drbalance.sim import ChargingConfig, SimConfig
from drbalance.sim.chargers import MI_KM, fleet_mix_from_ranges, kwh_per_km
from drbalance.study_config import tomllib  # tomllib, or tomli on Python 3.10
from drbalance.validation import (check_bool, check_choice, check_date, check_int, check_number,
                                  check_slot_minutes)

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

def load_grid(path) -> dict:
    """Read a grid TOML file; returns ``{"base", "fleet_mixes", "grid"}`` with defaults filled in."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"grid file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"grid file {path}: cannot read it as TOML text ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_grid(raw, str(path))


def parse_grid(raw: dict, where: str = "grid") -> dict:
    """Check a grid's tables (every value against :data:`BASE_RULES`, the mixes' pairs, at least one
    dimension) and fill in the defaults; a bad value raises :class:`ConfigError` naming it."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a grid must be a table with [base], [fleet_mixes] and [grid]")
    extra = set(raw) - {"base", "fleet_mixes", "grid"}
    if extra:
        raise ConfigError(f"{where}: unknown table(s) {sorted(extra)}; use [base], [fleet_mixes], [grid]")
    for table in ("base", "fleet_mixes", "grid"):
        if not isinstance(raw.get(table, {}), dict):
            raise ConfigError(f"{where}: {table} must be a table ([{table}] with key = value lines)")
    base = dict(BASE_DEFAULTS)
    for k, v in raw.get("base", {}).items():
        if k not in BASE_DEFAULTS:
            raise ConfigError(f"{where}: unknown [base] key {k!r}; known: {', '.join(BASE_DEFAULTS)}")
        _check_value(f"{where}: [base] {k}", k, v)
        base[k] = v
    mixes = {k: [list(map(float, pair)) for pair in v] for k, v in BUILTIN_MIXES.items()}
    for k, v in raw.get("fleet_mixes", {}).items():
        if not isinstance(v, list) or not v or not all(isinstance(p, list) and len(p) == 2 for p in v):
            raise ConfigError(f"{where}: fleet mix {k!r} must be a list of [share, range_mi] pairs")
        for share, range_mi in v:
            check_number(f"{where}: fleet mix {k!r} share", share, low=0)
            check_number(f"{where}: fleet mix {k!r} range_mi", range_mi, low=0, low_open=True)
        if not sum(float(a) for a, _ in v) > 0:
            raise ConfigError(f"{where}: fleet mix {k!r} has no positive share")
        mixes[k] = [[float(a), float(b)] for a, b in v]
    grid = {}
    for k, v in raw.get("grid", {}).items():
        if k not in BASE_DEFAULTS:
            raise ConfigError(f"{where}: unknown [grid] dimension {k!r}; any [base] key may be a dimension")
        if not isinstance(v, list) or not v:
            raise ConfigError(f"{where}: grid dimension {k!r} must be a non-empty list")
        for value in v:
            _check_value(f"{where}: [grid] {k}", k, value)
        grid[k] = v
    if not grid:
        raise ConfigError(f"{where}: nothing to sweep: no [grid] dimension; add a [grid] table, e.g. "
                          "power_kw = [50, 11] (one dimension with one value runs a single scenario)")
    if base["seed_mode"] not in ("per_scenario", "common"):
        raise ConfigError(f"{where}: seed_mode must be 'per_scenario' or 'common'")
    for name in [base["fleet_mix"], *grid.get("fleet_mix", [])]:
        if name not in mixes:
            raise ConfigError(f"{where}: fleet_mix {name!r} is not defined; known: {', '.join(mixes)} "
                              "(define it in [fleet_mixes])")
    return {"base": base, "fleet_mixes": mixes, "grid": grid}


def _optional(rule):
    return lambda name, v: None if v is None else rule(name, v)


def _number(**bounds):
    return lambda name, v: check_number(name, v, **bounds)


def _whole(**bounds):
    return lambda name, v: check_int(name, v, **bounds)


def _choice(*choices):
    return lambda name, v: check_choice(name, v, choices)


def _text(name, v):
    if not isinstance(v, str) or not v:
        raise ConfigError(f"{name} must be a non-empty string, got {v!r}")
    return v


def _file(name, v):
    if not Path(_text(name, v)).is_file():
        raise DataError(f"{name}: file {v} not found")
    return v


def _files(name, v):
    if not isinstance(v, list) or not v:
        raise ConfigError(f"{name} must be a non-empty list of trip files, got {v!r}")
    return [_file(name, p) for p in v]


def _exit_soc(name, v):
    return v if v == -1 and not isinstance(v, bool) else check_number(name, v, low=0, high=1)


def _siting(name, v):
    if not isinstance(v, list) or len(v) not in (0, 3):
        raise ConfigError(f"{name} must be [] (off) or [x plugs, y mi, z min], got {v!r}")
    if v:
        check_int(f"{name} x (plugs)", v[0], low=1)
        check_number(f"{name} y (mi)", v[1], low=0, low_open=True)
        check_number(f"{name} z (min)", v[2], low=0, low_open=True)
    return v


#: the rule of every ``[base]`` key, applied to its base value and to every value of a ``[grid]``
#: dimension (a value is only checked, never converted: the scenario keys stay as they were)
BASE_RULES = {
    "day": check_date, "start_hour": _number(low=0, high=24, high_open=True),
    "hours": _number(low=0, high=24, low_open=True), "train_days": _whole(low=1), "trips": _optional(_files),
    "zones": _optional(_file), "regions": _optional(_whole(low=0)), "regions_seed": _whole(low=0),
    "circuity": _number(low=1), "fleet": _whole(low=1), "seed": _whole(low=0),
    "seed_mode": _choice("per_scenario", "common"), "policy": _choice("noop", "greedy", "oracle_counts"),
    "slot_minutes": lambda name, v: check_slot_minutes(v, name), "plugs_total": _optional(_whole(low=1)),
    "plugs_per_vehicle": _number(low=0, low_open=True), "patience_minutes": _whole(low=0),
    "match_radius_km": _number(low=0), "speed_kmh": _number(low=0, low_open=True),
    "mi_per_kwh": _number(low=0, low_open=True), "fleet_mix": _text, "power_kw": _number(low=0, low_open=True),
    "low_soc": _number(low=0, high=1, high_open=True), "min_range_mi": _number(low=0),
    "target_soc": _number(low=0, high=1, low_open=True), "idle_minutes": _optional(_whole(low=0)),
    "opportunistic_soc": _optional(_number(low=0, high=1)), "opportunistic_km": _number(low=0),
    "priority": _choice("charging", "service"), "exit_min_soc": _optional(_exit_soc),
    "self_dispatch": check_bool, "unconstrained_reference": check_bool, "siting_xyz": _siting,
    "siting_max_rounds": _whole(low=1),
}


def _check_value(name: str, key: str, value) -> None:
    BASE_RULES[key](name, value)


def check_scenario(params: dict) -> None:
    """Checks that need several values of one scenario (its window within the day, whole slots, the
    charging thresholds), by building its settings; raises :class:`ConfigError`."""
    p = params
    minutes = int(round(float(p["hours"]) * 60))
    if not (float(p["start_hour"]) + float(p["hours"]) <= 24 and minutes > 0):
        raise ConfigError(f"start_hour {p['start_hour']} + hours {p['hours']} must lie within the day")
    if minutes % int(p["slot_minutes"]):
        raise ConfigError(f"hours {p['hours']} is not a whole number of {p['slot_minutes']}-min slots")
    sim_config(p, 0)
    if p["trips"] is None:
        d = pd.Timestamp(p["day"])
        months = sorted({x.strftime("%Y-%m") for x in pd.date_range(d - pd.Timedelta(days=int(p["train_days"])), d)})
        missing = [m for m in months if m not in datasets.NYC_GREEN_MONTHS]
        if missing:
            raise DataError(f"day {p['day']} with train_days {p['train_days']} needs NYC green-taxi months "
                            f"{', '.join(missing)}, which are not bundled ({', '.join(datasets.NYC_GREEN_MONTHS)}); "
                            "pick another day or give trips = [...]")


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
        try:
            check_scenario(p)
        except (ConfigError, DataError) as exc:
            what = ", ".join(f"{k} = {v!r}" for k, v in zip(names, combo))
            raise type(exc)(f"scenario {what}: {exc}") from None
        key = scenario_key(p)
        seed = int(p["seed"]) if p["seed_mode"] == "common" else int(key[:8], 16)
        out.append({"key": key, "seed": seed, "params": p, "varied": dict(zip(names, combo))})
    if len({s["key"] for s in out}) != len(out):
        raise ConfigError("the grid lists the same scenario twice (repeated values in a dimension)")
    return out


def sim_config(p: dict, seed: int, unconstrained: bool = False) -> SimConfig:
    """The :class:`SimConfig` of scenario parameters ``p`` (validated)."""
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
    return cfg
