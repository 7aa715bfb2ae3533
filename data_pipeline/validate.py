"""Schema checks and the :class:`RejectReport` that accounts for every input row.

Every row a reader sees is either accepted or rejected with exactly one named reason (the first
reason that applies, in the documented priority order), so ``accepted + rejected == read`` always
holds.  Rejected rows are kept (file, row number, reason) so that a user can look at them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from drbalance.errors import DataError

#: Reject reasons for trip records, in priority order (a row gets the first one that applies).
TRIP_REJECT_REASONS: dict[str, str] = {
    "missing_timestamp": "pick-up or drop-off time is missing or unparseable",
    "outside_period": "pick-up time outside the requested period",
    "missing_zone": "pick-up or drop-off zone is missing",
    "unknown_zone": "zone id is not in the zone lookup",
    "zone_without_location": "zone is in the lookup but has no centroid (e.g. TLC 264 'Unknown', 265 'Outside of NYC')",
    "dropoff_not_after_pickup": "drop-off time is at or before the pick-up time",
    "duration_too_long": "trip lasts longer than the configured maximum (default 6 h)",
    "non_finite_distance": "trip distance is NaN or infinite",
    "negative_distance": "trip distance is negative",
    "negative_fare": "negative fare: a reversal/refund record, not a new trip",
    "duplicate": "same pick-up/drop-off times, zones and distance as an earlier accepted row",
}

#: Reject reasons for charging sessions, in priority order.
SESSION_REJECT_REASONS: dict[str, str] = {
    "missing_timestamp": "connection or disconnection time is missing or unparseable",
    "outside_period": "connection time outside the requested period",
    "missing_station": "station id is missing",
    "disconnect_not_after_connect": "disconnection at or before connection",
    "non_finite_energy": "kWhDelivered is NaN, infinite or missing",
    "negative_energy": "kWhDelivered is negative",
    "duplicate": "same session id as an earlier accepted session",
}


@dataclass
class RejectReport:
    """Accounting of one ingest: how many rows were read, accepted and rejected, and why.

    Attributes
    ----------
    rows_read : int
        Rows found in the input files.
    rows_accepted : int
        Rows that passed every check.
    rejected : pandas.DataFrame
        One row per rejected input row: ``source`` (file name), ``row`` (0-based row number in that
        file) and ``reason`` (a key of the reader's reason table).
    reasons : dict[str, str]
        The reason table used (key -> explanation), in priority order.
    """

    rows_read: int
    rows_accepted: int
    rejected: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({"source": pd.Series(dtype=str), "row": pd.Series(dtype="int64"),
                                              "reason": pd.Series(dtype=str)})
    )
    reasons: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.check()

    @property
    def rows_rejected(self) -> int:
        return int(len(self.rejected))

    @property
    def by_reason(self) -> dict[str, int]:
        """Rejected-row counts per reason, in priority order, including reasons with zero rows."""
        counts = self.rejected["reason"].value_counts()
        keys = list(self.reasons) + [k for k in counts.index if k not in self.reasons]
        return {k: int(counts.get(k, 0)) for k in keys}

    def check(self) -> None:
        """Raise :class:`DataError` unless ``accepted + rejected == read`` (an internal invariant)."""
        if self.rows_accepted + self.rows_rejected != self.rows_read:
            raise DataError(
                f"reject report does not balance: {self.rows_accepted} accepted + {self.rows_rejected} "
                f"rejected != {self.rows_read} read; this is a bug in drbalance, please report it"
            )

    def __add__(self, other: "RejectReport") -> "RejectReport":
        return RejectReport(
            rows_read=self.rows_read + other.rows_read,
            rows_accepted=self.rows_accepted + other.rows_accepted,
            rejected=pd.concat([self.rejected, other.rejected], ignore_index=True),
            reasons={**self.reasons, **other.reasons},
        )

    def summary(self) -> pd.DataFrame:
        """Table of reasons with counts and explanations (zero-count reasons included)."""
        rows = [(k, n, self.reasons.get(k, "")) for k, n in self.by_reason.items()]
        return pd.DataFrame(rows, columns=["reason", "rows", "meaning"])

    def to_dict(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_rejected": self.rows_rejected,
            "rejected_by_reason": self.by_reason,
        }


def require_columns(frame_columns: Iterable[str], required: Sequence[str], source: str, hint: str = "") -> None:
    """Raise :class:`DataError` naming the first missing column and the file it was expected in."""
    present = set(frame_columns)
    missing = [c for c in required if c not in present]
    if missing:
        raise DataError(
            f"{source}: missing required column(s) {missing}; found {sorted(present)}"
            + (f". {hint}" if hint else "")
        )


def classify(conditions: Sequence[tuple[str, np.ndarray]], n_rows: int) -> np.ndarray:
    """Return, per row, the index+1 of the first true condition (0 = accepted).

    ``conditions`` are ``(reason, bool mask of shape (n_rows,))`` in priority order.
    """
    code = np.zeros(n_rows, dtype=np.int16)
    # Assign in reverse priority so that the highest-priority reason wins.
    for k in range(len(conditions) - 1, -1, -1):
        mask = np.asarray(conditions[k][1], dtype=bool)
        if mask.shape != (n_rows,):
            raise ValueError(f"condition {conditions[k][0]!r} has shape {mask.shape}, expected ({n_rows},)")
        code[mask] = k + 1
    return code


def rejected_frame(source: str, code: np.ndarray, reasons: Sequence[str]) -> pd.DataFrame:
    """Rejected-rows frame (source, row, reason) from a code array produced by :func:`classify`."""
    rows = np.flatnonzero(code)
    labels = np.asarray(reasons, dtype=object)[code[rows] - 1] if len(rows) else np.array([], dtype=object)
    return pd.DataFrame({"source": np.full(len(rows), source, dtype=object), "row": rows.astype("int64"),
                         "reason": labels})
