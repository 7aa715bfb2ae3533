"""What the HTML report reads from a results folder, and the map data the commands write for it.

Writing (called by the commands beside their other results)::

    write_map_data(out, region_slot_frame(result, policy, day), regions)   # or a list of frames

puts ``region_slots.parquet`` (one row per policy, day, slot and region: ``demand``, ``unserved``,
``vacant``, ``low_battery`` EVs) and ``regions.csv`` (``zone, region, region_name, lat, lon``: which
TLC zones each region holds and the region's centroid) into the folder.

Reading: :func:`load_run` turns the folder written by ``evaluate``, ``evaluate-scenario``,
``simulate``, ``demo`` (its ``evaluation/`` sub-folder) or ``sweep`` into a :class:`RunData`; a folder
that is none of these raises :class:`~drbalance.errors.DataError` naming the files looked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from drbalance.errors import DataError
from drbalance.io import atomic_path

#: file names of the map data
REGION_SLOTS = "region_slots.parquet"
REGIONS = "regions.csv"


def region_slot_frame(result, policy: str | None = None, day: str | None = None) -> pd.DataFrame:
    """Per slot and region of one :class:`~drbalance.sim.SimResult`: its ``region_slots`` (``slot``,
    ``region``, ``demand``: requests arriving, ``vacant`` and ``low_battery``: post-dispatch EVs, plugs)
    with ``unserved`` (requests arriving there and then, never picked up), tagged with ``policy`` and ``day`` (default: the result's own)."""
    rs = result.region_slots.copy()
    slot_minutes = int(result.config.get("slot_minutes", 15))
    rs["unserved"] = unserved_by_region(result.requests, rs, slot_minutes)
    rs["policy"] = policy if policy is not None else result.summary.get("policy", "policy")
    rs["day"] = day if day is not None else str(pd.Timestamp(result.config.get("start", "1970-01-01")).date())
    return rs


def unserved_by_region(requests: pd.DataFrame, region_slots: pd.DataFrame, slot_minutes: int) -> np.ndarray:
    """Unserved requests per row of ``region_slots`` (``slot``, ``region``), counted by the request's
    arrival slot (``arrival_minute // slot_minutes``) and ``origin`` region, from a requests frame
    (``outcome`` ``served``/``unserved``)."""
    un = requests[requests["outcome"] == "unserved"]
    counts = (pd.DataFrame({"slot": un["arrival_minute"].to_numpy() // slot_minutes, "region": un["origin"].to_numpy()})
              .value_counts())
    key = pd.MultiIndex.from_arrays([region_slots["slot"].to_numpy(), region_slots["region"].to_numpy()])
    return counts.reindex(key, fill_value=0).to_numpy(np.int64)


def regions_table(regions) -> pd.DataFrame:
    """Which zones each region of a :class:`~data_pipeline.regions.RegionMap` holds, with the region's
    centroid: ``zone, region, region_name, lat, lon`` (degrees WGS84)."""
    members = regions.members()
    pos = pd.Series(np.arange(regions.n), index=regions.region_ids)
    at = pos.reindex(members["region"]).to_numpy()
    return members.assign(lat=np.asarray(regions.lat, float)[at], lon=np.asarray(regions.lon, float)[at])


def write_map_data(folder, region_slots, regions) -> list[Path]:
    """Write ``region_slots.parquet`` (a frame or a list of :func:`region_slot_frame` frames) and
    ``regions.csv`` (a RegionMap or a :func:`regions_table` frame) into ``folder``; returns the paths."""
    folder = Path(folder)
    if isinstance(region_slots, (list, tuple)):
        region_slots = pd.concat(region_slots, ignore_index=True)
    table = regions if isinstance(regions, pd.DataFrame) else regions_table(regions)
    paths = [folder / REGION_SLOTS, folder / REGIONS]
    with atomic_path(paths[0]) as tmp:
        region_slots.to_parquet(tmp, index=False)
    with atomic_path(paths[1]) as tmp:
        table.to_csv(tmp, index=False)
    return paths


@dataclass
class RunData:
    """A results folder, read: ``kind`` (``evaluate``, ``evaluate-scenario``, ``simulate``, ``sweep``),
    ``folder``, ``payload`` (``evaluation.json`` or ``summary.json``), ``comparison`` (the
    ``comparison.csv`` frame), ``runs`` (one row per policy and day), ``slots`` (per-slot frames with
    ``policy`` and ``day``), ``region_slots`` and ``regions`` (map data, None when absent), ``config_text``
    (``config.toml``), ``slot_minutes``, ``estimates`` (the demo's estimate summary) and ``sweep``
    (``sweep.parquet``)."""

    kind: str
    folder: Path
    payload: dict = field(default_factory=dict)
    comparison: pd.DataFrame | None = None
    runs: pd.DataFrame | None = None
    slots: pd.DataFrame | None = None
    region_slots: pd.DataFrame | None = None
    regions: pd.DataFrame | None = None
    config_text: str | None = None
    slot_minutes: int = 15
    estimates: dict | None = None
    sweep: pd.DataFrame | None = None

    @property
    def policies(self) -> list[str]:
        """Policy names in the order they were run."""
        for frame in (self.runs, self.slots):
            if frame is not None and "policy" in frame:
                return list(dict.fromkeys(frame["policy"]))
        return list(self.payload.get("policies", {}))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable JSON file ({exc}); re-run the command that wrote it") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(data).__name__}; re-run the command")
    return data


def _read_table(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # pyarrow/pandas raise several types for a damaged file
        raise DataError(f"{path}: not a readable table ({type(exc).__name__}); re-run the command that wrote it") \
            from None


def resolve_folder(run_dir) -> tuple[Path, Path | None]:
    """The folder holding the results in ``run_dir`` (``run_dir`` itself, or the ``evaluation/`` of a
    ``demo`` folder) and the demo's ``estimates/`` folder (None otherwise)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        what = "is a file" if run_dir.exists() else "does not exist"
        raise DataError(f"results folder {run_dir} {what}; pass the --out folder of evaluate, evaluate-scenario, "
                        "simulate, sweep or demo")
    if not (run_dir / "evaluation.json").is_file() and (run_dir / "evaluation" / "evaluation.json").is_file():
        est = run_dir / "estimates"
        return run_dir / "evaluation", est if est.is_dir() else None
    return run_dir, None


def load_run(run_dir) -> RunData:
    """Read the results folder ``run_dir`` (see the module doc); raises :class:`DataError` for a folder
    that holds none of ``evaluation.json``, ``summary.json`` (with ``policy``) or ``sweep.parquet``."""
    folder, est = resolve_folder(run_dir)
    config = folder / "config.toml"
    data = RunData(kind="", folder=folder, config_text=config.read_text() if config.is_file() else None)
    if (folder / "evaluation.json").is_file():
        data.payload = _read_json(folder / "evaluation.json")
        data.kind = "evaluate-scenario" if "scenario" in data.payload else "evaluate"
        data.comparison = _read_table(folder / "comparison.csv")
        data.runs = _read_table(folder / "runs.parquet")
        data.slots = _read_table(folder / "slots.parquet")
    elif (folder / "summary.json").is_file() and "policy" in _read_json(folder / "summary.json"):
        data.payload = _read_json(folder / "summary.json")
        data.kind = "simulate"
        slots = _read_table(folder / "slots.parquet")
        policy, day = data.payload["policy"], data.payload.get("day", "")
        if slots is not None:
            data.slots = slots.assign(policy=policy, day=day)
        data.runs = pd.DataFrame([{k: v for k, v in data.payload.items() if np.isscalar(v) or v is None}])
    elif (folder / "sweep.parquet").is_file():
        data.kind = "sweep"
    else:
        raise DataError(f"{run_dir} is not a drbalance results folder (no evaluation.json, summary.json or "
                        "sweep.parquet in it); pass the --out folder of evaluate, evaluate-scenario, simulate, "
                        "sweep or demo")
    data.sweep = _read_table(folder / "sweep.parquet")
    data.slot_minutes = _slot_minutes(data)
    data.region_slots, data.regions = _map_data(folder, data)
    if est is not None and (est / "summary.json").is_file():
        data.estimates = _read_json(est / "summary.json")
    return data


def _slot_minutes(data: RunData) -> int:
    """Slot length of the run (minutes), from its configuration, else its slots' start times, else 15."""
    cfg = data.payload.get("config") or {}
    for source in (cfg, cfg.get("study", {}) if isinstance(cfg, dict) else {}, data.payload.get("study_config") or {}):
        if isinstance(source, dict) and source.get("slot_minutes"):
            return int(source["slot_minutes"])
    if data.slots is not None and "start" in data.slots and data.slots["slot"].nunique() > 1:
        s = data.slots[data.slots["slot"] <= 1].drop_duplicates("slot").sort_values("slot")
        return int((pd.to_datetime(s["start"]).diff().dt.total_seconds() // 60).iloc[-1])
    return 15


def _map_data(folder: Path, data: RunData) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """``region_slots`` (with ``unserved``, ``policy``, ``day``) and ``regions`` of the folder, or Nones."""
    rs = _read_table(folder / REGION_SLOTS)
    regions = _read_table(folder / REGIONS)
    if rs is None:
        return None, regions
    if "unserved" not in rs:
        requests = _read_table(folder / "requests.parquet")
        if requests is None:
            return None, regions
        rs = rs.assign(unserved=unserved_by_region(requests, rs, data.slot_minutes))
    if "policy" not in rs:
        rs = rs.assign(policy=data.payload.get("policy", "policy"), day=data.payload.get("day", ""))
    return rs, regions
