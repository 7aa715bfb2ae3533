""":class:`SumoFleet`: a headless SUMO taxi simulation driven slot by slot by any drbalance policy.

Each slot: read the :class:`drbalance.state.FleetState` (:mod:`~drbalance.adapters.sumo.taxis`), ask
``policy.plan(state, t)``, send taxis for its moves (:mod:`~drbalance.adapters.sumo.moves`), then
simulate the slot while adding and dispatching ride requests (:mod:`~drbalance.adapters.sumo.rides`).
Planned and executed moves, repositioning trips and per-slot timings are logged
(:class:`~drbalance.adapters.sumo.result.SumoResult`).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from drbalance.adapters.sumo.config import SumoConfig
from drbalance.adapters.sumo.demand import DemandModel
from drbalance.adapters.sumo.moves import issue_moves
from drbalance.adapters.sumo.network import EdgeRegions, edge_regions
from drbalance.adapters.sumo.result import MOVE_COLUMNS, SumoResult
from drbalance.adapters.sumo.rides import Rides
from drbalance.adapters.sumo.session import TraciSession
from drbalance.adapters.sumo.taxis import TaxiBook
from drbalance.errors import ConfigError
from drbalance.policies import Moves, as_moves, policy_name
from drbalance.state import FleetState


class SumoFleet:
    """A headless SUMO taxi simulation driven slot by slot by a drbalance policy.

    Use as a context manager (``with SumoFleet(...) as sim: res = sim.run(policy, 3)``) or call
    :meth:`start` / :meth:`close`.  The SUMO process is started by ``traci.start`` on a free port
    under a unique label, so several simulations may run side by side.

    Dispatching (between slot starts, every ``dispatch_period_s``): each waiting request, oldest first,
    goes to the idle taxi nearest its pick-up edge (straight-line distance, m) that is not on a
    repositioning trip; requests unassigned after ``max_wait_s`` are withdrawn.  Repositioning taxis
    are counted in their destination region in the FleetState (they are committed there) until
    they reach their target edge.
    """

    def __init__(self, edges: EdgeRegions | None = None, demand: DemandModel | None = None,
                 config: SumoConfig | None = None) -> None:
        self.edges = edges if edges is not None else edge_regions()
        self.demand = demand
        self.config = config if config is not None else SumoConfig()
        n = self.edges.n
        self.plugs = np.zeros(n) if self.config.plugs is None else np.broadcast_to(
            np.asarray(self.config.plugs, float), (n,)).copy()
        self._session = TraciSession(f"drbalance-{id(self)}")
        self._taxis = TaxiBook(self.edges)
        self._rides = Rides(self.edges)
        self._moves_log: list[dict] = []
        self._slots_log: list[dict] = []
        self._next_dispatch = 0.0
        self._slot = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "SumoFleet":
        """Start ``sumo`` and insert the taxis (steps until all are in the network)."""
        conn = self._session.open(self.edges.net_file, self.config)
        self._taxis.insert(conn, self.config)
        self._next_dispatch = self.time_s
        return self

    def close(self) -> None:
        """Stop SUMO (idempotent)."""
        self._session.close()

    def __enter__(self) -> "SumoFleet":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def conn(self):
        """The TraCI connection while SUMO runs, else None."""
        return self._session.conn

    @property
    def requests(self) -> int:
        """Ride requests added so far."""
        return self._rides.requests

    @property
    def served(self) -> int:
        """Riders delivered so far."""
        return self._rides.served

    @property
    def unserved(self) -> int:
        """Requests withdrawn after ``max_wait_s`` so far."""
        return self._rides.unserved

    @property
    def time_s(self) -> float:
        """Current simulated time (s)."""
        return self._session.time_s

    @property
    def now(self) -> pd.Timestamp:
        """Current wall-clock time of the simulation (``config.start`` + simulated seconds)."""
        return self.config.start + pd.Timedelta(seconds=self.time_s)

    # ------------------------------------------------------------------ observing
    def positions(self) -> pd.DataFrame:
        """Every taxi now: ``taxi``, ``edge``, ``region`` (of the edge), ``x``, ``y`` (m), ``idle``
        (in ``getTaxiFleet(0)``), ``repositioning``."""
        return self._taxis.positions(self.conn)

    def idle_taxis(self) -> pd.DataFrame:
        """Idle taxis with the region they count in (the target region while repositioning)."""
        return self._taxis.idle(self.conn)

    def state(self) -> FleetState:
        """The :class:`FleetState` now: idle taxis per region (vacant); no batteries (low-battery and
        occupied zeros); ``config.plugs``."""
        return self._taxis.state(self.conn, self.plugs)

    # ------------------------------------------------------------------ acting
    def apply(self, moves, slot: int | None = None) -> pd.DataFrame:
        """Reposition idle taxis for the vacant moves of ``moves`` (a :class:`Moves`, a Plan, or any
        answer :func:`drbalance.policies.as_moves` accepts).

        For each move ``i -> j`` (``i != j``) the ``count`` idle taxis counted in ``i`` that are nearest
        region ``j``'s centroid (straight line, m) are sent with ``changeTarget`` to edges of ``j``
        (nearest its centroid first, one per taxi, cycling).  Charge moves are recorded as not
        executed (no batteries here).  Returns the rows added to the move log.
        """
        m = as_moves(moves)
        slot = self._slot if slot is None else slot
        rows = issue_moves(self.conn, self._taxis, m, slot, self.now, self.time_s)
        self._moves_log.extend(rows)
        return pd.DataFrame(rows, columns=MOVE_COLUMNS)

    # ------------------------------------------------------------------ simulating
    def advance(self, seconds: float) -> None:
        """Simulate ``seconds``: inject the requests drawn for the interval, dispatch, withdraw
        requests waiting longer than ``max_wait_s``, and track repositioning arrivals and served rides."""
        c, cfg = self.conn, self.config
        t0 = self.time_s
        end = t0 + seconds
        if self.demand is not None:
            req = self.demand.sample(t0, end, seed=[int(cfg.seed), 2, int(round(t0 * 1000))], clock_s=cfg.clock_s)
            self._rides.add(c, req, t0)
        while self.time_s < end - 1e-9:
            c.simulationStep()
            now = self.time_s
            self._rides.count_arrivals(c)
            self._taxis.mark_arrivals(c, now)
            if now + 1e-9 >= self._next_dispatch:
                self._rides.dispatch(c, now, cfg.max_wait_s, exclude=self._taxis.repositioning)
                self._next_dispatch = now + cfg.dispatch_period_s

    def run(self, policy, n_slots: int) -> SumoResult:
        """Run ``n_slots`` slots: at each slot start read the state, ask ``policy.plan(state, t)``,
        apply its moves, then simulate ``slot_seconds``."""
        if self.conn is None:
            raise ConfigError("start the simulation first (SumoFleet.start() or a with-block)")
        name = policy_name(policy)
        for _ in range(int(n_slots)):
            a = time.perf_counter()
            st = self.state()
            b = time.perf_counter()
            t = self.now
            moves = as_moves(policy.plan(st, t), name) if policy is not None else Moves.empty()
            c_ = time.perf_counter()
            self.apply(moves, self._slot)
            d = time.perf_counter()
            self.advance(self.config.slot_seconds)
            e = time.perf_counter()
            self._slots_log.append(dict(slot=self._slot, t=t, vacant=int(st.vacant.sum()),
                                        taxis=len(self.conn.vehicle.getTaxiFleet(-1)), requests=self.requests,
                                        served=self.served, unserved=self.unserved, state_s=b - a, plan_s=c_ - b,
                                        apply_s=d - c_, sim_s=e - d))
            self._slot += 1
        return self.result()

    def result(self) -> SumoResult:
        """The logs so far as a :class:`SumoResult`."""
        c = self.conn
        return SumoResult.from_logs(self._moves_log, self._taxis.reposition_log, self._slots_log,
                                    requests=self.requests, served=self.served, unserved=self.unserved,
                                    waiting=self._rides.waiting(c) if c is not None else 0,
                                    taxis=len(c.vehicle.getTaxiFleet(-1)) if c is not None else 0)
