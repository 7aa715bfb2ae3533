"""Readers, one per data source: they return validated frames and a :class:`RejectReport`.

Sources (one module each)
-------------------------
* :mod:`~data_pipeline.readers.trips`: NYC TLC trip records (green, yellow, FHV, HVFHV; parquet or
  CSV), format recognised by columns: :func:`read_tlc_trips`; any city's trips table with a column
  mapping: :func:`read_trips` with :class:`TripColumns`.
* :mod:`~data_pipeline.readers.zones`: TLC taxi zones :func:`read_nyc_zones`, any zone table
  :func:`read_zone_table`.
* :mod:`~data_pipeline.readers.acn`: ACN-Data charging sessions (JSON list, optionally gzip):
  :func:`read_acn_sessions`, times in the site's local time (:data:`ACN_TIMEZONE_RULE`).
* :mod:`~data_pipeline.readers.charging`: CHARGED Melbourne hourly charging volumes per station
  (:func:`read_melbourne_charging`) and ST-EVCDP Shenzhen charging zones (:func:`read_shenzhen_zones`).
* :mod:`~data_pipeline.readers.streaming`: the same trip files read in record batches and counted
  into per-zone panels with bounded memory: :func:`count_tlc_trips` -> :class:`TripCounts`
  (``.panels(regions, first, last)``, ``.report``); duplicate memory in :mod:`~data_pipeline.readers.dedup`.
* :mod:`~data_pipeline.readers.common`: :class:`Ingested` and the file-reading helpers they share.

Canonical trips frame (one row per accepted trip)::

    pickup_time, dropoff_time : datetime64 (naive local time)
    pickup_zone, dropoff_zone : zone labels as in the zone table index
    distance_km              : float (NaN when the source has no distance column)
    duration_min             : float
    source                   : file name (categorical);  row : 0-based row number in that file
"""

from data_pipeline.readers.acn import ACN_SITE_TIMEZONE, ACN_TIME_FORMAT, ACN_TIMEZONE_RULE, read_acn_sessions
from data_pipeline.readers.charging import ChargingVolumes, ShenzhenZones, read_melbourne_charging, read_shenzhen_zones
from data_pipeline.readers.common import Ingested, pick_file, read_table, table_columns, to_datetime, to_float
from data_pipeline.readers.trips import (
    TLC_FORMATS,
    TripChecks,
    TripColumns,
    canonical_trips,
    check_trips,
    detect_tlc_format,
    read_tlc_trips,
    read_trips,
    validate_trips,
)
from data_pipeline.readers.streaming import DEFAULT_BATCH_ROWS, TripCounts, count_tlc_trips, iter_table_batches
from data_pipeline.readers.zones import read_nyc_zones, read_zone_table
from data_pipeline.units import KM_PER_MILE

__all__ = [
    "ACN_SITE_TIMEZONE", "DEFAULT_BATCH_ROWS", "TripChecks", "TripCounts", "check_trips", "count_tlc_trips",
    "iter_table_batches", "ACN_TIMEZONE_RULE", "ACN_TIME_FORMAT", "ChargingVolumes", "Ingested", "KM_PER_MILE",
    "ShenzhenZones", "TLC_FORMATS", "TripColumns", "canonical_trips", "detect_tlc_format", "pick_file",
    "read_acn_sessions", "read_melbourne_charging", "read_nyc_zones", "read_shenzhen_zones", "read_table",
    "read_tlc_trips", "read_trips", "read_zone_table", "table_columns", "to_datetime", "to_float",
    "validate_trips",
]
