"""The simulator's event log: one row per state change, appended in chronological order.

Columns (all numpy, one row per event):

* ``minute`` (int): simulation minute; ``phase`` (int): 0 completions and plugging-in, 1 the policy's
  moves at a slot boundary, 2 requests, expiries and matching -- the order of the steps within a minute;
* ``event`` (int code, names in :data:`EVENT_NAMES`); ``vehicle`` (-1 for request events); ``request``
  (-1 when none);
* ``origin``, ``region``: region positions where the activity starts and where the vehicle is / is
  heading after the event (request events: pick-up and drop-off region);
* ``target``: the destination a policy asked for (moves, ``refused``, ``redirect``; -1 otherwise) --
  a refused or redirected vehicle's ``region`` stays where it is;
* ``status``: vehicle status after the event (-1 for request events);
* ``km``: distance of the leg that starts with the event (empty for ``assign``/``move``/``charge_move``,
  occupied for ``pickup``; the trip distance for ``request``);
* ``kwh``: change of the vehicle's battery energy (``init`` carries the initial energy, legs are drawn
  when they start, ``unplug`` adds the charged energy).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from drbalance.codes import EVENT_CODES, EVENT_NAMES  # noqa: F401

COLUMNS = ("minute", "phase", "event", "vehicle", "request", "origin", "region", "target", "status", "km", "kwh")
_INT = {"minute", "phase", "event", "vehicle", "request", "origin", "region", "target", "status"}


class EventLog:
    """Append-only log built from vectorised batches (one ``add`` per group of vehicles/requests)."""

    def __init__(self) -> None:
        self._parts: list[dict[str, np.ndarray]] = []

    def add(self, minute: int, phase: int, event: str, *, vehicle=-1, request=-1, origin=-1, region=-1,
            target=-1, status=-1, km=0.0, kwh=0.0) -> None:
        """Append events; array arguments share one length, scalars broadcast to it."""
        cols = {"vehicle": vehicle, "request": request, "origin": origin, "region": region, "target": target,
                "status": status, "km": km, "kwh": kwh}
        size = max((np.size(v) for v in cols.values() if np.ndim(v) > 0), default=1)
        if size == 0:
            return
        part = {"minute": np.full(size, minute, np.int64), "phase": np.full(size, phase, np.int8),
                "event": np.full(size, EVENT_CODES[event], np.int8)}
        for k, v in cols.items():
            dtype = np.int64 if k in _INT else np.float64
            part[k] = np.broadcast_to(np.asarray(v, dtype=dtype), (size,)).copy()
        self._parts.append(part)

    def frame(self) -> pd.DataFrame:
        """The log as a frame with an ``event_name`` categorical column added."""
        if not self._parts:
            return pd.DataFrame({c: np.zeros(0, np.int64 if c in _INT else float) for c in COLUMNS})
        out = {c: np.concatenate([p[c] for p in self._parts]) for c in COLUMNS}
        df = pd.DataFrame(out)
        df["event_name"] = pd.Categorical.from_codes(df["event"].to_numpy(), list(EVENT_NAMES))
        return df
