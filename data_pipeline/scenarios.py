"""Peers' benchmark instances as drbalance objects.

* RL4AMOD macroscopic scenarios (``scenario_<city>.json[.gz]``): per-minute OD demand means, trip
  travel times and prices, hourly rebalancing times, fleet size per hour, region adjacency.
* Electric-AMoD NYC graphs (``NY_<n>/NYC_<n>.json[.gz]`` + ``.npy`` matrices): per-15-min-step OD
  demand, rebalancing times in steps, fleet size, charge levels, chargers per region, energy prices.

Both load into a :class:`Scenario`; :meth:`Scenario.sample_trips` draws seeded Poisson days of
trips in the canonical trips layout of :mod:`data_pipeline.readers`, so that panels, estimates,
the simulator and the controller run on them unchanged ("history" days to fit sets on, fresh days
to evaluate on).  A malformed or truncated file raises :class:`DataError` naming the missing key.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data_pipeline.regions import RegionMap
from data_pipeline.units import KM_PER_MILE
from drbalance.errors import ConfigError, DataError


@dataclass
class Scenario:
    """One benchmark instance.

    Attributes
    ----------
    name : scenario name (file stem).
    kind : ``"amod"`` (RL4AMOD macroscopic) or ``"eamod"`` (electric AMoD graph).
    n_regions : regions ``0..n-1``.
    demand : frame with one row per (start minute, origin, destination): ``minute`` (minute of day
        the row starts), ``span_min`` (minutes it covers: 1 for RL4AMOD, 15 for eAMoD), ``origin``,
        ``destination``, ``mean`` (expected requests over the span), ``travel_time_min``, ``price``.
    reb_time_min : (H, n, n) rebalancing times in minutes for the hours ``reb_hours`` (H,).
    fleet_by_hour : Series hour of day -> vehicles.
    adjacency : (n, n) bool or None.
    chargers : (n,) plugs per region or None (RL4AMOD has no charging data).
    energy : dict of the eAMoD energy model (``charge_levels``, ``levels_per_charge_step``,
        ``levels_per_trip`` (n, n), ``energy_prices`` per step, ``operational_cost_per_step``) or None.
    params : calibration parameters (RL4AMOD ``demand_ratio``, ``beta``, ``json_hr``...), may be empty.
    """

    name: str
    kind: str
    n_regions: int
    demand: pd.DataFrame
    reb_time_min: np.ndarray
    reb_hours: np.ndarray
    fleet_by_hour: pd.Series
    adjacency: np.ndarray | None = None
    chargers: np.ndarray | None = None
    energy: dict | None = None
    params: dict = field(default_factory=dict)

    @property
    def window(self) -> tuple[int, int]:
        """(first minute, end minute) of day covered by the demand rows."""
        d = self.demand
        return int(d["minute"].min()), int((d["minute"] + d["span_min"]).max())

    def reb_time_at(self, minute: int) -> np.ndarray:
        """(n, n) rebalancing minutes in force at ``minute`` of the day (nearest earlier hour)."""
        hour = minute // 60
        idx = np.searchsorted(self.reb_hours, hour, side="right") - 1
        return self.reb_time_min[max(idx, 0)]

    def region_map(self, speed_kmh: float = 20.0) -> RegionMap:
        """Regions with ``W_ij`` = first-hour rebalancing minutes x ``speed_kmh`` / 60 (km).

        The instances give times, not coordinates: centroids are NaN (coarsening is unavailable)
        and the distance is a documented conversion of the scenario's own rebalancing times.
        """
        if not speed_kmh > 0:
            raise ConfigError(f"speed_kmh must be positive, got {speed_kmh}")
        n = self.n_regions
        dist = self.reb_time_min[0] * speed_kmh / 60.0
        dist = dist.copy()
        np.fill_diagonal(dist, 0.0)
        return RegionMap(np.arange(n), np.array([f"{self.name} r{i}" for i in range(n)], dtype=object),
                         np.full(n, np.nan), np.full(n, np.nan), dist, np.arange(n), np.arange(n))

    def expected_daily_od(self, scale: float = 1.0) -> np.ndarray:
        """(n, n) expected requests per day (one demand window) for each OD pair."""
        d = self.demand
        out = np.zeros((self.n_regions, self.n_regions))
        np.add.at(out, (d["origin"].to_numpy(), d["destination"].to_numpy()), d["mean"].to_numpy() * scale)
        return out

    def sample_trips(self, n_days: int, seed: int, first_day: str = "2030-01-07", scale: float = 1.0,
                     speed_kmh: float = 20.0) -> pd.DataFrame:
        """Seeded Poisson days of trips in the canonical trips layout.

        Each demand row contributes ``Poisson(scale * mean)`` requests per day, with pick-up times
        uniform within the row's span and drop-off after the row's travel time; ``distance_km`` is
        the region distance of :meth:`region_map`.  Days are consecutive from ``first_day``.
        ``scale`` is the demand multiplier (RL4AMOD's ``demand_ratio`` lives in ``params``).
        """
        if n_days < 1:
            raise ConfigError(f"n_days must be >= 1, got {n_days}")
        if not scale > 0:
            raise ConfigError(f"scale must be positive, got {scale}")
        rng = np.random.default_rng(seed)
        d = self.demand
        lam = d["mean"].to_numpy() * scale
        counts = rng.poisson(lam, size=(n_days, len(d)))  # (days, rows)
        day_idx, row_idx = np.nonzero(counts)
        reps = counts[day_idx, row_idx]
        day_idx, row_idx = np.repeat(day_idx, reps), np.repeat(row_idx, reps)
        offset = rng.uniform(0.0, 1.0, size=len(row_idx)) * d["span_min"].to_numpy()[row_idx]
        minute = d["minute"].to_numpy()[row_idx] + offset
        base = np.datetime64(pd.Timestamp(first_day).normalize().to_datetime64(), "ns")
        pickup = base + (day_idx * 86_400e9 + minute * 60e9).astype("timedelta64[ns]")
        tt = d["travel_time_min"].to_numpy()[row_idx]
        dropoff = pickup + (tt * 60e9).astype("timedelta64[ns]")
        o, dst = d["origin"].to_numpy()[row_idx], d["destination"].to_numpy()[row_idx]
        dist = self.region_map(speed_kmh).distance_km[o, dst]
        order = np.argsort(pickup, kind="stable")
        return pd.DataFrame({"pickup_time": pickup[order], "dropoff_time": dropoff[order],
                             "pickup_zone": o[order], "dropoff_zone": dst[order], "distance_km": dist[order],
                             "duration_min": tt[order], "price": d["price"].to_numpy()[row_idx][order]})


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"scenario file {path} not found")
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
    except (EOFError, gzip.BadGzipFile, OSError, zlib.error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: truncated or not valid JSON ({type(exc).__name__}: {exc}); "
                        "re-copy the scenario file") from exc
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object at the top level, got {type(data).__name__}")
    return data


def _need(data: dict, key: str, path: Path):
    if key not in data:
        raise DataError(f"{path}: missing key {key!r} (have {sorted(data)}); the scenario file is incomplete")
    return data[key]


def _number(data: dict, key: str, path: Path, whole: bool = False, low: float = 0.0) -> float:
    """A finite number >= ``low`` under ``key`` (a whole number when ``whole``); else :class:`DataError`."""
    v = _need(data, key, path)
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v >= low
    if not ok or (whole and v != int(v)):
        raise DataError(f"{path}: {key} must be a {'whole ' if whole else ''}number >= {low:g}, got {v!r}; "
                        "the scenario file is corrupt")
    return int(v) if whole else float(v)


def _numbers(data: dict, key: str, path: Path) -> np.ndarray:
    """A list of finite numbers under ``key``; else :class:`DataError`."""
    v = _need(data, key, path)
    try:
        arr = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        arr = np.array([np.nan])
    if arr.ndim != 1 or not np.isfinite(arr).all() or any(isinstance(x, bool) for x in v):
        raise DataError(f"{path}: {key} must be a list of finite numbers; the scenario file is corrupt")
    return arr


def _records(data: dict, key: str, fields: list[str], path: Path) -> pd.DataFrame:
    rows = _need(data, key, path)
    if not isinstance(rows, list) or not rows:
        raise DataError(f"{path}: key {key!r} must be a non-empty list of records")
    frame = pd.DataFrame.from_records([r if isinstance(r, dict) else {} for r in rows])
    for f in fields:
        if f not in frame:
            raise DataError(f"{path}: records under {key!r} lack key {f!r}")
        if frame[f].isna().any():
            raise DataError(f"{path}: {int(frame[f].isna().sum())} records under {key!r} lack key {f!r}")
        # every field of these records is a count, time, price or region id: a finite number >= 0
        col = frame[f]
        try:
            values = pd.to_numeric(col, errors="coerce").to_numpy(float)
        except (TypeError, ValueError):
            values = np.full(len(col), np.nan)
        bad = ~np.isfinite(values) | (values < 0) | np.array([isinstance(x, bool) for x in col])
        if bad.any():
            i = int(np.argmax(bad))
            value = col.iloc[i].item() if isinstance(col.iloc[i], np.generic) else col.iloc[i]
            raise DataError(f"{path}: {key}[{i}].{f} = {value!r} is not a finite number >= 0 "
                            f"({int(bad.sum())} such record(s)); the scenario file is corrupt")
        frame[f] = pd.to_numeric(col)
    return frame


def _check_regions(frame: pd.DataFrame, cols: list[str], n: int, key: str, path: Path) -> None:
    for c in cols:
        v = frame[c].to_numpy()
        if (v < 0).any() or (v >= n).any() or not np.all(np.mod(v, 1) == 0):
            raise DataError(f"{path}: {key}.{c} holds region ids outside 0..{n - 1}")


def _reb_cube(reb: pd.DataFrame, stamp_to_hour, n: int, to_minutes: float, path: Path):
    reb = reb.assign(hour=stamp_to_hour(reb["time_stamp"].to_numpy()))
    hours = np.unique(reb["hour"].to_numpy())
    cube = np.full((len(hours), n, n), np.nan)
    h = np.searchsorted(hours, reb["hour"].to_numpy())
    cube[h, reb["origin"].to_numpy(int), reb["destination"].to_numpy(int)] = reb["reb_time"].to_numpy(float) * to_minutes
    for k in range(len(hours)):  # a missing diagonal entry means staying, which takes no time
        np.fill_diagonal(cube[k], np.where(np.isnan(np.diag(cube[k])), 0.0, np.diag(cube[k])))
    if np.isnan(cube).any():
        missing = int(np.isnan(cube).sum())
        raise DataError(f"{path}: rebTime lacks {missing} (hour, origin, destination) entries; every pair is needed")
    if (cube < 0).any():
        raise DataError(f"{path}: negative rebalancing times in rebTime")
    return cube, hours


def read_amod_scenario(path: str | Path, params_path: str | Path | None = None) -> Scenario:
    """Read an RL4AMOD macroscopic scenario (``scenario_<city>.json[.gz]``).

    ``params_path`` defaults to ``calibrated_parameters.json`` beside the file (used when present).
    """
    path = Path(path)
    data = _load_json(path)
    nlat, nlon = _number(data, "nlat", path, whole=True, low=1), _number(data, "nlon", path, whole=True, low=1)
    n = nlat * nlon
    dem = _records(data, "demand", ["time_stamp", "origin", "destination", "demand", "travel_time", "price"], path)
    _check_regions(dem, ["origin", "destination"], n, "demand", path)
    if not dem["demand"].sum() > 0:
        raise DataError(f"{path}: every demand record is 0; the scenario has no demand to replay")
    acc = _records(data, "totalAcc", ["hour", "acc"], path)
    reb = _records(data, "rebTime", ["time_stamp", "origin", "destination", "reb_time"], path)
    _check_regions(reb, ["origin", "destination"], n, "rebTime", path)
    cube, hours = _reb_cube(reb, lambda s: s.astype(int), n, 1.0, path)
    adj = None
    if "topology_graph" in data:
        topo = _records(data, "topology_graph", ["i", "j"], path)
        _check_regions(topo, ["i", "j"], n, "topology_graph", path)
        adj = np.zeros((n, n), bool)
        adj[topo["i"].to_numpy(int), topo["j"].to_numpy(int)] = True
    name = path.name.split(".")[0].removeprefix("scenario_")
    params = {}
    pp = Path(params_path) if params_path else path.with_name("calibrated_parameters.json")
    if pp.is_file():
        try:
            params = json.loads(pp.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{pp}: not valid JSON ({exc}); re-copy calibrated_parameters.json") from None
        params = params.get(name, {}) if isinstance(params, dict) else {}
        if not isinstance(params, dict):
            raise DataError(f"{pp}: the entry {name!r} must be an object of parameters")
    demand = pd.DataFrame({"minute": dem["time_stamp"].to_numpy(int), "span_min": 1,
                           "origin": dem["origin"].to_numpy(int), "destination": dem["destination"].to_numpy(int),
                           "mean": dem["demand"].to_numpy(float), "travel_time_min": dem["travel_time"].to_numpy(float),
                           "price": dem["price"].to_numpy(float)})
    fleet = pd.Series(acc["acc"].to_numpy(int), index=pd.Index(acc["hour"].to_numpy(int), name="hour"), name="vehicles")
    return Scenario(name, "amod", n, demand, cube, hours, fleet, adj, None, None, params)


def read_eamod_scenario(folder: str | Path, start_hour: int = 0) -> Scenario:
    """Read an electric-AMoD NYC graph folder (``NY_<n>``: ``NYC_<n>.json[.gz]`` + ``.npy`` matrices).

    Steps are 15 minutes (``timeGranularity`` h); the files do not say when the 48-step episode
    starts, so step 0 is put at ``start_hour`` (default midnight; override to shift).  Travel times
    come from ``duration_matrix.npy`` (seconds, per hour of day), distances from
    ``distance_matrix.npy`` (miles).
    """
    folder = Path(folder)
    cands = sorted(folder.glob("NYC_*.json*"))
    if not cands:
        raise DataError(f"{folder}: no NYC_<n>.json[.gz] file")
    path = cands[0]
    data = _load_json(path)
    n = _number(data, "spatialNodes", path, whole=True, low=1)
    step_h = _number(data, "timeGranularity", path)
    if not step_h > 0:
        raise DataError(f"{path}: timeGranularity must be > 0 hours, got {step_h}")
    step_min = step_h * 60
    dem = _records(data, "demand", ["time_stamp", "origin", "destination", "demand", "price"], path)
    _check_regions(dem, ["origin", "destination"], n, "demand", path)
    if not dem["demand"].sum() > 0:
        raise DataError(f"{path}: every demand record is 0; the scenario has no demand to replay")
    acc = _records(data, "totalAcc", ["hour", "acc"], path)
    reb = _records(data, "rebTime", ["time_stamp", "origin", "destination", "reb_time"], path)
    _check_regions(reb, ["origin", "destination"], n, "rebTime", path)
    # one matrix per hour of day; the steps within an hour are assumed to share it (the last one wins)
    cube, hours = _reb_cube(reb, lambda s: ((start_hour * 60 + s * step_min) // 60).astype(int), n, step_min, path)
    mats = {}
    for name in ("duration_matrix", "distance_matrix", "energy_distance"):
        f = folder / f"{name}.npy"
        if not f.is_file():
            raise DataError(f"{folder}: missing {name}.npy")
        try:
            mats[name] = np.load(f, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"{f}: not a readable .npy matrix ({exc}); re-copy the scenario folder") from None
        if not np.issubdtype(mats[name].dtype, np.number) or not np.isfinite(mats[name]).all():
            raise DataError(f"{f}: must hold finite numbers only")
    if mats["duration_matrix"].ndim != 3 or mats["duration_matrix"].shape[:2] != (n, n) \
            or mats["energy_distance"].shape != (n, n) or mats["distance_matrix"].shape[:2] != (n, n):
        raise DataError(f"{folder}: matrix shapes {mats['duration_matrix'].shape} / {mats['energy_distance'].shape} "
                        f"do not match {n} regions")
    minute = np.rint(start_hour * 60 + dem["time_stamp"].to_numpy(int) * step_min).astype(np.int64)
    hour = (minute // 60) % mats["duration_matrix"].shape[2]
    o, d = dem["origin"].to_numpy(int), dem["destination"].to_numpy(int)
    travel = mats["duration_matrix"][o, d, hour] / 60.0
    demand = pd.DataFrame({"minute": minute, "span_min": int(step_min), "origin": o, "destination": d,
                           "mean": dem["demand"].to_numpy(float), "travel_time_min": travel,
                           "price": dem["price"].to_numpy(float)})
    fleet = pd.Series(acc["acc"].to_numpy(int), index=pd.Index(acc["hour"].to_numpy(int), name="hour"), name="vehicles")
    chargers = _numbers(data, "carsPerStationCapacity", path)
    if chargers.shape != (n,):
        raise DataError(f"{path}: carsPerStationCapacity has {chargers.shape} entries for {n} regions")
    energy = {"charge_levels": _number(data, "chargelevels", path, whole=True, low=1),
              "levels_per_charge_step": _number(data, "chargeLevelsPerChargeStep", path, whole=True, low=1),
              "levels_per_trip": mats["energy_distance"],
              "energy_prices": _numbers(data, "energy_prices", path),
              "operational_cost_per_step": float(data.get("operationalCostPerTimestep", np.nan)),
              "distance_km": mats["distance_matrix"] * KM_PER_MILE}
    return Scenario(folder.name, "eamod", n, demand, cube, hours, fleet, None, chargers, energy,
                    {"step_minutes": step_min, "start_hour": start_hour})


def read_scenario(path: str | Path) -> Scenario:
    """Either kind, by path: a ``scenario_*.json[.gz]`` file or an eAMoD ``NY_<n>`` folder."""
    path = Path(path)
    return read_eamod_scenario(path) if path.is_dir() else read_amod_scenario(path)
