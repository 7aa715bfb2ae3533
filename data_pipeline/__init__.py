"""data_pipeline: from raw trip and charging records to panels, forecasts and uncertainty sets.

    records -> readers (validated frame + RejectReport) -> RegionMap -> Panels -> Estimates
"""

from data_pipeline.estimates import EstimateConfig, Estimates
from data_pipeline.panels import Panel, charging_panels, day_types, trip_panels
from data_pipeline.readers import (
    TripColumns,
    read_acn_sessions,
    read_melbourne_charging,
    read_nyc_zones,
    read_shenzhen_zones,
    read_tlc_trips,
    read_trips,
    read_zone_table,
)
from data_pipeline.regions import RegionMap, estimate_circuity
from data_pipeline.uncertainty import EllipsoidEstimator, UncertaintySet, coverage
from data_pipeline.validate import RejectReport

__all__ = [
    "EllipsoidEstimator", "EstimateConfig", "Estimates", "Panel", "RegionMap", "RejectReport", "TripColumns",
    "UncertaintySet", "charging_panels", "coverage", "day_types", "estimate_circuity", "read_acn_sessions",
    "read_melbourne_charging", "read_nyc_zones", "read_shenzhen_zones", "read_tlc_trips", "read_trips",
    "read_zone_table", "trip_panels",
]
