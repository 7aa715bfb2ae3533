"""Streamed trip ingest: read trip files in record batches, check them and count them into panels.

:func:`read_tlc_trips` returns every accepted trip as one pandas frame, so its memory grows with the
number of trips (about 60 bytes a trip, several times that while reading).  :func:`count_tlc_trips`
reads the same files ``batch_rows`` rows at a time (pyarrow record batches for parquet, pandas chunks
for CSV), applies the same checks (:func:`~data_pipeline.readers.trips.check_trips`, one set of
rules), and keeps only:

* per-zone counts ``(n_days, n_slots, n_zones)`` of pick-ups and of same-day drop-offs, plus the few
  drop-offs on a later day than their pick-up (a sparse table), so that the panels of any sub-period
  and any :class:`~data_pipeline.regions.RegionMap` built from the same zones are exactly those
  :func:`~data_pipeline.panels.trip_panels` gives on the in-memory frame of that sub-period;
* the :class:`RejectReport` (source, row, reason per rejected row: about 13 bytes a rejected row),
  optionally also written batch by batch to a parquet file with the rejected rows' values;
* the duplicate check's memory: a 64-bit hash of each accepted trip's key plus its pick-up time
  (16 bytes an accepted trip; a trip is a duplicate when hash *and* pick-up time match an earlier
  accepted trip, so two different trips are confused only if they share the pick-up instant and a
  64-bit hash);
* optionally (``circuity=True``) the metered / straight-line ratio of each qualifying trip and its
  pick-up day (12 bytes a trip), for ``circuity="auto"``.

Memory is therefore bounded by the period's panels plus about 16-28 bytes per accepted trip, instead
of the whole trips table (measured in ``benchmarks/bench_ingest.py --synthetic-rows``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandas.api.types import union_categoricals

from data_pipeline.panels import Panel, check_slot_minutes, day_types
from data_pipeline.readers.common import table_columns
from data_pipeline.readers.dedup import SeenKeys, key_hash
from data_pipeline.readers.trips import (REASON_NAMES, TLC_FORMATS, TripColumns, canonical_trips, check_trips,
                                         detect_tlc_format)
from data_pipeline.regions import RegionMap, haversine_km
from data_pipeline.validate import TRIP_REJECT_REASONS, RejectReport, require_columns
from drbalance.errors import ConfigError, DataError

#: Rows per record batch by default (about 100 MB of working memory per batch for TLC columns).
DEFAULT_BATCH_ROWS = 1_000_000

_NS_PER_MIN = 60 * 10**9


def iter_table_batches(path: Path, columns: Sequence[str], batch_rows: int) -> Iterator[pd.DataFrame]:
    """The ``columns`` of a parquet or CSV (optionally .gz) file, ``batch_rows`` rows at a time.

    Unreadable files raise :class:`DataError` naming the file.
    """
    path = Path(path)
    try:
        if path.suffix == ".parquet":
            pf = pq.ParquetFile(path)
            present = set(pf.schema_arrow.names)
            cols = [c for c in columns if c in present]
            for batch in pf.iter_batches(batch_size=batch_rows, columns=cols):
                yield batch.to_pandas()
        else:
            with pd.read_csv(path, usecols=lambda c: c in columns, low_memory=False, chunksize=batch_rows) as r:
                yield from r
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc


@dataclass
class TripCounts:
    """Accepted trips of a period counted per day, slot and zone, and the reject report.

    Attributes
    ----------
    zone_ids : (n_zones,) zone labels (the zone table's index); counts are per position in it.
    days : (n_days,) DatetimeIndex of the period's local midnights.
    slot_minutes : slot length in minutes.
    demand : (n_days, n_slots, n_zones) int64 pick-ups by pick-up slot and pick-up zone.
    supply_same_day : (n_days, n_slots, n_zones) int64 drop-offs by drop-off slot and zone, of trips
        picked up on the same day.
    later : frame of drop-offs on a later day than the pick-up (``pickup_day``, ``slot_abs``: drop-off
        slot counted from the period's first midnight, may lie past the period; ``zone``; ``n``).
    report : the :class:`RejectReport` (identical to :func:`read_tlc_trips`'s on the same files).
    ratio_day, ratio : pick-up day and metered/straight-line ratio of each trip usable for
        ``estimate_circuity`` (None unless counted with ``circuity=True``).
    frame : the canonical frame of the accepted trips picked up in the ``keep`` period (rows equal to
        :func:`read_tlc_trips`'s frame restricted to that period, index 0..n-1), or None without ``keep``.
    """

    zone_ids: np.ndarray
    days: pd.DatetimeIndex
    slot_minutes: int
    demand: np.ndarray
    supply_same_day: np.ndarray
    later: pd.DataFrame
    report: RejectReport
    ratio_day: np.ndarray | None = None
    ratio: np.ndarray | None = None
    frame: pd.DataFrame | None = None

    # ------------------------------------------------------------------ sub-periods
    def _day_range(self, first_day, last_day) -> tuple[int, int]:
        a = 0 if first_day is None else (pd.Timestamp(first_day).normalize() - self.days[0]).days
        b = len(self.days) - 1 if last_day is None else (pd.Timestamp(last_day).normalize() - self.days[0]).days
        if not (0 <= a <= b < len(self.days)):
            raise ConfigError(f"period {first_day}..{last_day} is not inside the counted period "
                              f"{self.days[0].date()}..{self.days[-1].date()}; count the trips over a period "
                              "that covers it")
        return a, b

    def trips_per_day(self, first_day=None, last_day=None) -> np.ndarray:
        """(n,) accepted trips picked up on each day of ``first_day..last_day`` (default: all)."""
        a, b = self._day_range(first_day, last_day)
        return self.demand[a:b + 1].sum(axis=(1, 2))

    def zone_pickups(self, first_day=None, last_day=None) -> np.ndarray:
        """(n_zones,) accepted pick-ups per zone position over ``first_day..last_day``."""
        a, b = self._day_range(first_day, last_day)
        return self.demand[a:b + 1].sum(axis=(0, 1))

    def region_pickups(self, regions: RegionMap, first_day=None, last_day=None) -> tuple[np.ndarray, int]:
        """``(n,)`` pick-ups per region and the number of pick-ups in zones outside every region."""
        z = self.zone_pickups(first_day, last_day)
        reg = regions.region_of(self.zone_ids)
        return (np.bincount(reg[reg >= 0], weights=z[reg >= 0], minlength=regions.n).astype(np.int64),
                int(z[reg < 0].sum()))

    def panels(self, regions: RegionMap, first_day=None, last_day=None, holidays: str | None = None
               ) -> dict[str, Panel]:
        """``{"demand", "supply"}`` panels of the trips picked up in ``first_day..last_day``.

        Equal, cell by cell and in ``outside``, to ``trip_panels(frame, regions, first_day, last_day,
        slot_minutes, holidays)`` where ``frame`` holds the in-memory reader's accepted trips picked up
        in that period.  Trips in zones outside every region raise :class:`DataError`, as there.
        """
        a, b = self._day_range(first_day, last_day)
        n_slots = 1440 // self.slot_minutes
        reg = regions.region_of(self.zone_ids)
        demand = self.demand[a:b + 1]
        used = demand.sum(axis=(0, 1)) + self.supply_same_day[a:b + 1].sum(axis=(0, 1))
        if (used[reg < 0] > 0).any():
            bad = list(self.zone_ids[(reg < 0) & (used > 0)][:5])
            raise DataError(f"{int(used[reg < 0].sum())} trip ends in zones outside the region map (e.g. {bad}); "
                            "count the trips with the same zone table used for the regions")
        onehot = np.zeros((len(self.zone_ids), regions.n))
        onehot[np.flatnonzero(reg >= 0), reg[reg >= 0]] = 1.0
        dem = (demand.reshape(-1, len(self.zone_ids)) @ onehot).reshape(b - a + 1, n_slots, regions.n)
        sup = self.supply_same_day[a:b + 1].reshape(-1, len(self.zone_ids)) @ onehot
        lt = self.later
        pu_day = lt["pickup_day"].to_numpy()
        slot = lt["slot_abs"].to_numpy() - a * n_slots
        inside = (pu_day >= a) & (pu_day <= b) & (slot < (b - a + 1) * n_slots)
        flat = slot[inside] * regions.n + reg[lt["zone"].to_numpy()[inside]]
        sup = sup.ravel() + np.bincount(flat, weights=lt["n"].to_numpy()[inside].astype(float),
                                        minlength=sup.size)
        sup = sup.reshape(b - a + 1, n_slots, regions.n)
        days = self.days[a:b + 1]
        types = day_types(days, holidays)
        total = float(demand.sum())
        return {
            "demand": Panel(dem, days, self.slot_minutes, regions.region_ids, "demand", types, 0),
            "supply": Panel(sup, days, self.slot_minutes, regions.region_ids, "supply", types,
                            int(round(total - sup.sum()))),
        }

    def circuity(self, zones: pd.DataFrame, first_day=None, last_day=None) -> float:
        """``estimate_circuity`` of the trips picked up in ``first_day..last_day`` (same rule and errors:
        median metered / straight-line ratio over trips >= 1 km apart; >= 100 such trips needed)."""
        if self.ratio is None:
            raise ConfigError("circuity needs the per-trip ratios; count the trips with circuity=True")
        a, b = self._day_range(first_day, last_day)
        r = self.ratio[(self.ratio_day >= a) & (self.ratio_day <= b)]
        if len(r) < 100:
            raise DataError(f"only {len(r)} trips have a metered distance between zones >= 1.0 km apart; "
                            "need >= 100 to estimate circuity; pass a fixed --circuity instead")
        ratio = float(np.median(r))
        if ratio < 1.0:
            raise DataError(f"metered trip distances are shorter than straight lines (median ratio {ratio:.3f}); "
                            "check the distance unit (km vs miles) of the trip file")
        return ratio


def count_tlc_trips(paths: str | Path | Sequence[str | Path], zones: pd.DataFrame, period: tuple[str, str], *,
                    slot_minutes: int = 15, max_trip_minutes: float = 360.0, reject_negative_fare: bool = True,
                    batch_rows: int = DEFAULT_BATCH_ROWS, rejected_path: str | Path | None = None,
                    circuity: bool = False, keep: tuple[str, str] | None = None,
                    specs: Sequence[TripColumns] | None = None) -> TripCounts:
    """Stream NYC TLC trip files (any layout :func:`read_tlc_trips` reads) into :class:`TripCounts`.

    Parameters
    ----------
    paths, zones, max_trip_minutes, reject_negative_fare : as in :func:`read_tlc_trips`.
    period : ``(first_day, last_day)`` inclusive ISO dates on the pick-up time (required: the panels'
        days).
    slot_minutes : slot length of the counts (5..60, dividing a day).
    batch_rows : rows read and checked at a time (>= 1); memory per batch grows with it.
    rejected_path : optional parquet file receiving, batch by batch, every rejected row's ``source``,
        ``row``, ``reason`` and canonical values (times, zones as text, ``distance_km``, ``fare``).
    circuity : keep the per-trip ratios :meth:`TripCounts.circuity` needs.
    keep : ``(first_day, last_day)`` inside ``period``: also keep the canonical frame of the accepted
        trips picked up then (:attr:`TripCounts.frame`, e.g. a training period for
        :meth:`drbalance.Study.from_trips`); memory grows with those trips only (~57 bytes each).
    specs : column mappings per file (default: recognised TLC layouts), as in :func:`read_trips`.
    """
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if not paths:
        raise DataError("no trip files given; pass one or more TLC parquet/CSV files")
    if not (max_trip_minutes > 0):
        raise DataError(f"max_trip_minutes must be positive, got {max_trip_minutes}")
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, (int, np.integer)) or batch_rows < 1:
        raise ConfigError(f"batch_rows must be a whole number >= 1, got {batch_rows!r}")
    s = check_slot_minutes(slot_minutes)
    if specs is None:
        specs = [TLC_FORMATS[detect_tlc_format(table_columns(p), str(p))] for p in paths]
    else:
        for p in paths:
            table_columns(p)
    days = pd.date_range(pd.Timestamp(period[0]).normalize(), pd.Timestamp(period[1]).normalize(), freq="D")
    if len(days) == 0:
        raise ConfigError(f"period end {period[1]} is before its start {period[0]}")
    acc = _Accumulator(zones, days, s, circuity)
    if keep is not None:
        ka, kb = (int((pd.Timestamp(x).normalize() - days[0]).days) for x in keep)
        if not (0 <= ka <= kb < len(days)):
            raise ConfigError(f"keep period {keep[0]}..{keep[1]} must lie inside the period {period[0]}..{period[1]}")
        acc.keep = (ka, kb)
    writer = _RejectWriter(rejected_path)
    try:
        for path, spec in zip(paths, specs):
            source = acc.add_source(path.name)
            offset = 0
            for raw in iter_table_batches(path, spec.required(), int(batch_rows)):
                require_columns(raw.columns, spec.required(), str(path))
                trips = canonical_trips(raw, spec, path.name)
                if offset:
                    trips["row"] += offset
                chk = check_trips(trips, zones, period, max_trip_minutes, reject_negative_fare)
                bad = acc.add_batch(chk, source, offset, trips)
                writer.write(trips, bad, chk.code, path.name)
                offset += len(trips)
    finally:
        writer.close()
    return acc.result()


class _Accumulator:
    """The running state of one :func:`count_tlc_trips` call."""

    def __init__(self, zones: pd.DataFrame, days: pd.DatetimeIndex, slot_minutes: int, circuity: bool):
        self.zones, self.days, self.s = zones, days, slot_minutes
        self.n_zones, self.n_slots = len(zones), 1440 // slot_minutes
        self.t0 = np.datetime64(days[0].to_datetime64(), "ns").astype(np.int64)
        self.cells = len(days) * self.n_slots * self.n_zones
        self.demand = np.zeros(self.cells, np.int64)
        self.supply = np.zeros(self.cells, np.int64)
        self.later: list[np.ndarray] = []
        self.seen = SeenKeys()
        self.sources: list[str] = []
        self.rej_src: list[np.ndarray] = []
        self.rej_row: list[np.ndarray] = []
        self.rej_code: list[np.ndarray] = []
        self.read = self.accepted = 0
        self.circuity = circuity
        self.ratios: list[tuple[np.ndarray, np.ndarray]] = []
        self.lat, self.lon = zones["lat"].to_numpy(float), zones["lon"].to_numpy(float)
        self.keep: tuple[int, int] | None = None
        self.kept: list[pd.DataFrame] = []

    def add_source(self, name: str) -> int:
        self.sources.append(name)
        return len(self.sources) - 1

    def add_batch(self, chk, source: int, offset: int, trips: pd.DataFrame) -> np.ndarray:
        """Mark duplicates, count the accepted rows, keep the rejected ones; returns rejected positions."""
        code = chk.code
        ok = np.flatnonzero(code == 0)
        if len(ok):
            d = chk.dist[ok]
            e = np.where(np.isfinite(d), d, -1.0)
            a = chk.pu_t[ok].view(np.int64)
            h = key_hash(a, chk.do_t[ok].view(np.int64), chk.pu_code[ok], chk.do_code[ok], e)
            dup = self.seen.add(h, a)
            code[ok[dup]] = len(REASON_NAMES)
            ok = ok[~dup]
        self.read += len(code)
        self.accepted += len(ok)
        bad = np.flatnonzero(code)
        self.rej_src.append(np.full(len(bad), source, np.int32))
        self.rej_row.append(bad.astype(np.int64) + offset)
        self.rej_code.append(code[bad].astype(np.int8))
        # counts (same binning as data_pipeline.panels.count_panel)
        pu = chk.pu_t[ok].view(np.int64)
        do = chk.do_t[ok].view(np.int64)
        pz, dz = chk.pu_code[ok], chk.do_code[ok]
        ps = ((pu - self.t0) // _NS_PER_MIN) // self.s
        ds = ((do - self.t0) // _NS_PER_MIN) // self.s
        _add_counts(self.demand, ps * self.n_zones + pz)
        pday, dday = ps // self.n_slots, ds // self.n_slots
        same = pday == dday
        _add_counts(self.supply, ds[same] * self.n_zones + dz[same])
        if (~same).any():
            self.later.append(np.stack([pday[~same], ds[~same], dz[~same]], axis=1))
            if sum(len(x) for x in self.later) > 4_000_000:
                self.later = [self._later_table()]
        if self.keep is not None:
            self._keep(trips, chk, ok[(pday >= self.keep[0]) & (pday <= self.keep[1])], source)
        if self.circuity:
            straight = haversine_km(self.lat[pz], self.lon[pz], self.lat[dz], self.lon[dz])
            metered = chk.dist[ok]
            good = np.isfinite(straight) & (straight >= 1.0) & np.isfinite(metered) & (metered > 0)
            self.ratios.append((pday[good].astype(np.int32), metered[good] / straight[good]))
        return bad

    def _keep(self, trips: pd.DataFrame, chk, sel: np.ndarray, source: int) -> None:
        """Canonical rows ``sel`` of the batch (as :func:`validate_trips` builds its frame)."""
        zone_ids = self.zones.index.to_numpy()
        self.kept.append(pd.DataFrame({
            "pickup_time": trips["pickup_time"].to_numpy()[sel],
            "dropoff_time": trips["dropoff_time"].to_numpy()[sel],
            "pickup_zone": zone_ids[chk.pu_code[sel]],
            "dropoff_zone": zone_ids[chk.do_code[sel]],
            "distance_km": chk.dist[sel],
            "duration_min": chk.dur_min[sel],
            "source": pd.Categorical.from_codes(np.zeros(len(sel), np.int8), [self.sources[source]]),
            "row": trips["row"].to_numpy()[sel].astype("int64"),
        }))

    def _later_table(self) -> np.ndarray:
        """(m, 4) unique ``pickup_day, slot_abs, zone, n`` rows of the later-day drop-offs so far."""
        rows = [x if x.shape[1] == 4 else np.column_stack([x, np.ones(len(x), np.int64)]) for x in self.later]
        allr = np.concatenate(rows) if rows else np.zeros((0, 4), np.int64)
        keys, inv = np.unique(allr[:, :3], axis=0, return_inverse=True)
        n = np.bincount(inv.ravel(), weights=allr[:, 3], minlength=len(keys)).astype(np.int64)
        return np.column_stack([keys, n])

    def result(self) -> TripCounts:
        later = self._later_table()
        src = np.concatenate(self.rej_src) if self.rej_src else np.zeros(0, np.int32)
        codes = np.concatenate(self.rej_code) if self.rej_code else np.zeros(0, np.int8)
        cats = pd.unique(np.asarray(self.sources, dtype=object))
        src_codes = pd.Index(cats).get_indexer(np.asarray(self.sources, dtype=object))[src]
        rejected = pd.DataFrame({
            "source": pd.Categorical.from_codes(src_codes, categories=cats),
            "row": np.concatenate(self.rej_row) if self.rej_row else np.zeros(0, np.int64),
            "reason": np.asarray(REASON_NAMES, dtype=object)[codes.astype(np.int64) - 1],
        })
        report = RejectReport(rows_read=self.read, rows_accepted=self.accepted, rejected=rejected,
                              reasons=dict(TRIP_REJECT_REASONS))
        shape = (len(self.days), self.n_slots, self.n_zones)
        ratio_day = ratio = None
        if self.circuity:
            ratio_day = np.concatenate([r[0] for r in self.ratios]) if self.ratios else np.zeros(0, np.int32)
            ratio = np.concatenate([r[1] for r in self.ratios]) if self.ratios else np.zeros(0)
        frame = None
        if self.keep is not None:
            parts, self.kept = self.kept, []
            if parts:
                src = union_categoricals([p["source"].array for p in parts])
                frame = pd.concat([p.drop(columns="source") for p in parts], ignore_index=True)
                frame.insert(6, "source", src)
        return TripCounts(self.zones.index.to_numpy(), self.days, self.s, self.demand.reshape(shape),
                          self.supply.reshape(shape),
                          pd.DataFrame(later, columns=["pickup_day", "slot_abs", "zone", "n"]),
                          report, ratio_day, ratio, frame)


def _add_counts(total: np.ndarray, flat: np.ndarray) -> None:
    """``total[flat] += 1`` per element, over just the span of ``flat`` (a batch covers few days)."""
    if len(flat):
        lo = int(flat.min())
        counts = np.bincount(flat - lo)
        total[lo:lo + len(counts)] += counts


def _zone_text(values: np.ndarray) -> list:
    """Zone labels as text (``300``, not ``300.0``, for ids read as floats because of gaps); None if missing."""
    out = []
    for v in values:
        if pd.isna(v):
            out.append(None)
        elif isinstance(v, (float, np.floating)) and np.isfinite(v) and float(v).is_integer():
            out.append(str(int(v)))
        else:
            out.append(str(v))
    return out


class _RejectWriter:
    """Appends each batch's rejected rows to one parquet file (nothing when ``path`` is None)."""

    SCHEMA = pa.schema([("source", pa.string()), ("row", pa.int64()), ("reason", pa.string()),
                        ("pickup_time", pa.timestamp("ns")), ("dropoff_time", pa.timestamp("ns")),
                        ("pickup_zone", pa.string()), ("dropoff_zone", pa.string()),
                        ("distance_km", pa.float64()), ("fare", pa.float64())])

    def __init__(self, path):
        self.writer = None if path is None else pq.ParquetWriter(Path(path), self.SCHEMA)

    def write(self, trips: pd.DataFrame, bad: np.ndarray, code: np.ndarray, source: str) -> None:
        if self.writer is None or len(bad) == 0:
            return
        sub = trips.iloc[bad]
        zone, dzone = _zone_text(sub["pickup_zone"].to_numpy()), _zone_text(sub["dropoff_zone"].to_numpy())
        table = pa.table({
            "source": pa.array([source] * len(bad), pa.string()),
            "row": pa.array(sub["row"].to_numpy(np.int64)),
            "reason": pa.array(np.asarray(REASON_NAMES, dtype=object)[code[bad].astype(np.int64) - 1], pa.string()),
            "pickup_time": pa.array(sub["pickup_time"].to_numpy("datetime64[ns]")),
            "dropoff_time": pa.array(sub["dropoff_time"].to_numpy("datetime64[ns]")),
            "pickup_zone": pa.array(zone, pa.string()), "dropoff_zone": pa.array(dzone, pa.string()),
            "distance_km": pa.array(sub["distance_km"].to_numpy(float)),
            "fare": pa.array(sub["fare"].to_numpy(float)),
        }, schema=self.SCHEMA)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
