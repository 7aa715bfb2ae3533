"""Real example data shipped inside the package (see each folder's SOURCE.md for origin and terms).

Only what the demo and the quick tests need is bundled; larger data sets stay in the workspace's
``../shared/data`` for benchmarks and slow tests.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from data_pipeline.readers import read_nyc_zones
from data_pipeline.readers.zones import bundled_tlc_centroids
from drbalance.errors import DataError

NYC_GREEN_MONTHS = ("2021-01", "2021-02", "2021-03")


def nyc_green_folder() -> Path:
    """Folder holding the bundled NYC TLC green-taxi files (Jan–Mar 2021) and zone tables."""
    return Path(str(resources.files("drbalance.datasets") / "nyc_green_2021q1"))


def nyc_green_trip_files(months: tuple[str, ...] = NYC_GREEN_MONTHS) -> list[Path]:
    """Paths of the bundled green-taxi parquet months (``YYYY-MM`` strings among Jan–Mar 2021)."""
    folder = nyc_green_folder()
    out = []
    for m in months:
        p = folder / f"green_tripdata_{m}.parquet"
        if not p.is_file():
            raise DataError(f"no bundled NYC green-taxi month {m!r}; bundled: {', '.join(NYC_GREEN_MONTHS)}")
        out.append(p)
    return out


def nyc_zone_lookup() -> Path:
    """Path of the bundled TLC ``taxi_zone_lookup.csv`` (centroids file lies beside it)."""
    return nyc_green_folder() / "taxi_zone_lookup.csv"


def nyc_tuned_weights() -> Path | None:
    """Path of the bundled ``tuned.json``: the model-v2 weights ``drbalance tune`` chose per optimiser on the
    bundled Jan–Feb 2021 data (validation on its last two weeks; see docs/tuning.md), or None if absent."""
    p = nyc_green_folder() / "tuned.json"
    return p if p.is_file() else None


def nyc_zone_centroids() -> Path:
    """Path of the bundled TLC zone centroids (``taxi_zone_centroids_DERIVED.csv``, beside the lookup);
    :func:`data_pipeline.readers.read_nyc_zones` falls back to it for a lookup without its own."""
    return bundled_tlc_centroids()


def load_nyc_zones():
    """Canonical zone frame of the TLC zones (see :func:`data_pipeline.readers.read_nyc_zones`)."""
    return read_nyc_zones(nyc_zone_lookup())
