"""Plumbing every reader shares: the :class:`Ingested` result and file/column parsing helpers."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from data_pipeline.validate import RejectReport
from drbalance.errors import DataError


class Ingested(NamedTuple):
    """A validated frame and the accounting of the rows it came from."""

    frame: pd.DataFrame
    report: RejectReport


def pick_file(folder: Path, stem: str) -> Path:
    """``folder/stem.csv``, ``stem.csv.gz`` or ``stem.parquet``, whichever exists first."""
    for name in (f"{stem}.csv", f"{stem}.csv.gz", f"{stem}.parquet"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: no {stem}.csv, {stem}.csv.gz or {stem}.parquet file")


def table_columns(path: Path) -> list[str]:
    """Column names of a parquet or CSV file without reading its rows."""
    if not path.is_file():
        raise DataError(f"trip file {path} not found")
    if path.suffix == ".parquet":
        try:
            return list(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise DataError(f"{path}: not a readable parquet file ({exc})") from exc
    try:
        return list(pd.read_csv(path, nrows=0).columns)
    except Exception as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from exc


def read_table(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a parquet or CSV (optionally .gz) file; unreadable files raise :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file {path} not found")
    try:
        if path.suffix == ".parquet":
            if columns is not None:
                present = set(pq.read_schema(path).names)
                columns = [c for c in columns if c in present]
            return pq.read_table(path, columns=columns).to_pandas()
        return pd.read_csv(path, usecols=lambda c: columns is None or c in columns, low_memory=False)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc


def to_datetime(values: pd.Series) -> np.ndarray:
    """Naive ``datetime64[ns]`` values; unparseable cells become NaT, zone-aware input is refused."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        if getattr(values.dt, "tz", None) is not None:
            raise DataError("trip timestamps carry a time zone; convert them to naive local time first")
        return values.to_numpy(dtype="datetime64[ns]")
    with np.errstate(invalid="ignore"):  # cells such as "inf" become NaT (numpy warns on that cast)
        return pd.to_datetime(values, errors="coerce", format="mixed").to_numpy(dtype="datetime64[ns]")


def to_float(values: pd.Series) -> np.ndarray:
    """Numbers as floats; unparseable cells become NaN (then rejected as ``non_finite_distance``)."""
    out = pd.to_numeric(values, errors="coerce")
    return out.to_numpy(dtype=float, na_value=np.nan)
