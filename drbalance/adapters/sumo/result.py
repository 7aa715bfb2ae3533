"""What a SUMO run records: the move, repositioning and slot logs, and :class:`SumoResult`."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

#: Columns of :attr:`SumoResult.moves` (and of what :meth:`SumoFleet.apply` returns).
MOVE_COLUMNS = ["slot", "t", "origin", "destination", "kind", "planned", "executed", "taxis", "reason"]
#: Columns of :attr:`SumoResult.repositions`.
REPOSITION_COLUMNS = ["taxi", "slot", "origin", "destination", "target_edge", "issued_s", "arrived_s", "route_m"]
#: Columns of :attr:`SumoResult.slots`.
SLOT_COLUMNS = ["slot", "t", "vacant", "taxis", "requests", "served", "unserved", "state_s", "plan_s", "apply_s",
                "sim_s"]


@dataclass
class SumoResult:
    """What :meth:`SumoFleet.run` returns.

    Attributes
    ----------
    moves : one row per planned move that leaves its region: ``slot``, ``t``, ``origin``,
        ``destination``, ``kind``, ``planned`` (vehicles), ``executed`` (taxis sent), ``taxis`` (their
        ids), ``reason`` (why fewer were executed, else empty).
    repositions : one row per repositioned taxi: ``taxi``, ``slot``, ``origin``, ``destination``,
        ``target_edge``, ``issued_s``, ``arrived_s`` (NaN if not arrived), ``route_m`` (planned route, m).
    slots : one row per slot: ``slot``, ``t``, ``vacant`` (idle taxis), ``taxis`` (in the network),
        ``requests``, ``served``, ``unserved`` (cumulative), ``state_s``, ``plan_s``, ``apply_s``,
        ``sim_s`` (wall-clock seconds spent reading the state, in the policy, issuing the moves,
        and simulating the slot).
    summary : totals (``requests``, ``served``, ``unserved``, ``waiting``, ``planned``, ``executed``,
        ``arrived``, ``taxis``) at the end.
    """

    moves: pd.DataFrame
    repositions: pd.DataFrame
    slots: pd.DataFrame
    summary: dict

    @classmethod
    def from_logs(cls, moves: list[dict], repositions: list[dict], slots: list[dict], *, requests: int,
                  served: int, unserved: int, waiting: int, taxis: int) -> "SumoResult":
        """Frames of the log rows (one dict per row, keys as the column lists above) and the summary;
        ``requests``/``served``/``unserved`` are cumulative counts, ``waiting`` the persons still in the
        network, ``taxis`` the taxis in the network."""
        mv = pd.DataFrame(moves, columns=MOVE_COLUMNS)
        rep = pd.DataFrame(repositions, columns=REPOSITION_COLUMNS)
        sl = pd.DataFrame(slots, columns=SLOT_COLUMNS)
        summary = dict(requests=requests, served=served, unserved=unserved, waiting=waiting,
                       planned=int(mv.planned.sum()), executed=int(mv.executed.sum()),
                       arrived=int(rep.arrived_s.notna().sum()), taxis=taxis)
        return cls(mv, rep, sl, summary)
