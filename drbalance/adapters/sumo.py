"""SUMO adapter: the balancer repositions idle taxis of a SUMO microsimulation through TraCI.

Pieces (docs/sumo.md has the walk-through):

* :func:`edge_regions` -- partition a SUMO network's edges into a ``k x k`` block grid over the edge
  midpoints and build the :class:`data_pipeline.regions.RegionMap` of those regions (one "zone" per
  edge; distances are shortest driving paths between the regions' anchor edges, in km).
* :class:`DemandModel` -- a seeded synthetic demand of ride requests per region (Poisson, rates in
  requests per hour with an hour-of-day profile).  The same generator feeds SUMO (persons asking for a
  taxi) and the training :class:`data_pipeline.panels.Panel` s of the controller's estimates.
* :class:`SumoFleet` -- runs ``sumo`` headless (TraCI over a socket, port picked by ``traci``) with
  SUMO's taxi device (``--device.taxi.dispatch-algorithm traci``).  Every slot it builds a
  :class:`drbalance.state.FleetState` from the idle taxis (``getTaxiFleet(0)``), asks any drbalance
  policy ``plan(state, t)`` (e.g. :class:`drbalance.controller.Controller`), turns the answer's vacant
  moves into ``changeTarget`` of chosen idle taxis, and in between dispatches requests to the nearest
  idle taxi (``dispatchTaxi``).  Planned and executed moves, repositioning trips and per-slot
  timings are recorded.

Units: positions and lengths in metres (SUMO), region distances in km, times in seconds of
simulated time unless stated; wall-clock timings in seconds.

Uses ``traci`` (socket), not ``libsumo``: the ``libsumo`` wheel bundles an Arrow library that conflicts
with the ``pyarrow`` the data pipeline imports.
"""

from __future__ import annotations

import importlib.resources
import itertools
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data_pipeline.panels import Panel, check_slot_minutes, day_types
from data_pipeline.regions import RegionMap
from drbalance.errors import ConfigError, DataError
from drbalance.policies import Moves, as_moves, policy_name
from drbalance.state import FleetState

#: Folder of the bundled scenario (``grid.net.xml``, ``taxi.add.xml``, ``grid.sumocfg``).
DATA = importlib.resources.files("drbalance.adapters") / "sumo_data"


#: Duration (s) of the stop a repositioned taxi waits at on its target edge; marked as SUMO's own
#: ``idling`` stop, so the taxi device keeps it as the idle stop and ``dispatchTaxi`` may end it.
IDLE_STOP_S = 1e6


class SumoUnavailableError(RuntimeError):
    """The ``sumo`` binary (or the ``traci``/``sumolib`` packages) cannot be found or started."""


def data_path(name: str = "grid.net.xml") -> Path:
    """Path of a bundled scenario file (``grid.net.xml``, ``taxi.add.xml``, ``grid.sumocfg``)."""
    p = Path(str(DATA / name))
    if not p.is_file():
        raise DataError(f"bundled SUMO file {name!r} is missing from {DATA}; reinstall drbalance with its "
                        "package data (drbalance.adapters: sumo_data/*)")
    return p


def sumo_binary(name: str = "sumo") -> str:
    """Path of a SUMO tool (``sumo``, ``netgenerate``, ...): the ``eclipse-sumo`` wheel first, then
    ``$SUMO_HOME/bin``, then ``PATH``.  Raises :class:`SumoUnavailableError` naming what was tried."""
    tried = []
    try:
        import sumo  # the eclipse-sumo wheel

        tried.append(os.path.join(sumo.SUMO_HOME, "bin"))
    except ImportError:
        pass
    if os.environ.get("SUMO_HOME"):
        tried.append(os.path.join(os.environ["SUMO_HOME"], "bin"))
    for d in tried:
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    p = shutil.which(name)
    if p:
        return p
    raise SumoUnavailableError(f"SUMO binary {name!r} not found (looked in {tried or 'no SUMO_HOME'} and PATH); "
                               "pip install eclipse-sumo traci")


# ------------------------------------------------------------------------------------ regions

@dataclass
class EdgeRegions:
    """Regions made of SUMO edges.

    Attributes
    ----------
    regions : :class:`RegionMap` with one zone per edge (``zone_ids`` = edge ids); ``lat``/``lon`` are
        NaN (the bundled grid has no geo-reference), the centroids in metres are ``centroid_xy``.
    edge_ids : (e,) str ids of the network's normal (non-internal) edges that taxis may use.
    edge_region : (e,) int region position of each edge.
    edge_xy : (e, 2) edge midpoints in network coordinates (m).
    edge_length : (e,) edge lengths (m).
    centroid_xy : (n, 2) mean midpoint of each region's edges (m).
    anchor_edge : (n,) str, the edge of each region whose midpoint is nearest the centroid (distances
        are measured between anchor edges).
    net_file : the network file.
    k : blocks per side.
    """

    regions: RegionMap
    edge_ids: np.ndarray
    edge_region: np.ndarray
    edge_xy: np.ndarray
    edge_length: np.ndarray
    centroid_xy: np.ndarray
    anchor_edge: np.ndarray
    net_file: Path
    k: int
    _pos: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pos = {e: i for i, e in enumerate(self.edge_ids)}

    @property
    def n(self) -> int:
        return self.regions.n

    def region_of_edge(self, edge: str) -> int:
        """Region position of an edge id; -1 for internal (junction) or unknown edges."""
        i = self._pos.get(edge)
        return -1 if i is None else int(self.edge_region[i])

    def edges_of(self, region: int) -> np.ndarray:
        """Edge ids of a region, nearest to its centroid first (ties by id)."""
        idx = np.flatnonzero(self.edge_region == region)
        d = np.hypot(*(self.edge_xy[idx] - self.centroid_xy[region]).T)
        return self.edge_ids[idx[np.lexsort((self.edge_ids[idx], d))]]


def edge_regions(net_file: str | Path | None = None, k: int = 3, vclass: str = "taxi") -> EdgeRegions:
    """Partition a network's edges into a ``k x k`` block grid over edge midpoints.

    Parameters
    ----------
    net_file : SUMO ``.net.xml`` (default: the bundled 6 x 6 grid with 200 m edges, 1 km x 1 km).
    k : blocks per side (``k**2`` regions); a block without an edge is an error.
    vclass : only edges allowing this vehicle class count.

    The block of an edge is ``floor(k (x - x_min) / (x_max - x_min))`` (clipped to ``k - 1``) on each
    axis of its midpoint.  ``distance_km[i, j]`` is the shortest driving path (``sumolib`` Dijkstra on
    edge lengths) from the middle of region ``i``'s anchor edge to the middle of region ``j``'s,
    symmetrised as ``(d_ij + d_ji) / 2``, in km.
    """
    try:
        import sumolib
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise SumoUnavailableError("sumolib is not installed; pip install eclipse-sumo traci") from exc
    if int(k) != k or k < 1:
        raise ConfigError(f"k (blocks per side) must be a positive integer, got {k}")
    k = int(k)
    net_file = Path(net_file) if net_file is not None else data_path("grid.net.xml")
    net = sumolib.net.readNet(str(net_file))
    edges = [e for e in net.getEdges(withInternal=False) if e.allows(vclass)]
    if not edges:
        raise DataError(f"{net_file} has no edge allowing vehicle class {vclass!r}")
    ids = np.array([e.getID() for e in edges], dtype=object)
    xy = np.array([_midpoint(e.getShape()) for e in edges])
    length = np.array([e.getLength() for e in edges])
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    block = np.clip(np.floor(k * (xy - lo) / span).astype(int), 0, k - 1)
    region = block[:, 1] * k + block[:, 0]  # row-major from the south-west corner
    n = k * k
    counts = np.bincount(region, minlength=n)
    if (counts == 0).any():
        raise DataError(f"blocks {np.flatnonzero(counts == 0).tolist()} of the {k}x{k} grid hold no edge; use a "
                        "smaller k for this network")
    centroid = np.array([xy[region == r].mean(axis=0) for r in range(n)])
    anchor = np.empty(n, dtype=object)
    for r in range(n):
        idx = np.flatnonzero(region == r)
        d = np.hypot(*(xy[idx] - centroid[r]).T)
        anchor[r] = ids[idx[np.lexsort((ids[idx], d))[0]]]
    dist = np.zeros((n, n))
    for i, j in itertools.permutations(range(n), 2):
        ei, ej = net.getEdge(anchor[i]), net.getEdge(anchor[j])
        path, cost = net.getShortestPath(ei, ej, vClass=vclass)
        if path is None:
            raise DataError(f"no driving path from region {i} ({anchor[i]}) to region {j} ({anchor[j]})")
        dist[i, j] = (cost - ei.getLength() / 2 - ej.getLength() / 2) / 1000.0
    dist = (dist + dist.T) / 2
    names = np.array([f"r{r // k}_{r % k}" for r in range(n)], dtype=object)
    rm = RegionMap(np.arange(n), names, np.full(n, np.nan), np.full(n, np.nan), dist, ids, region)
    return EdgeRegions(rm, ids, region, xy, length, centroid, anchor, net_file, k)


def _midpoint(shape) -> tuple[float, float]:
    """Point halfway along a polyline (m)."""
    pts = np.asarray(shape, float)
    seg = np.hypot(*np.diff(pts, axis=0).T)
    half = seg.sum() / 2
    cum = np.r_[0.0, np.cumsum(seg)]
    i = min(int(np.searchsorted(cum, half, side="right")) - 1, len(seg) - 1)
    f = 0.0 if seg[i] == 0 else (half - cum[i]) / seg[i]
    p = pts[i] + f * (pts[i + 1] - pts[i])
    return float(p[0]), float(p[1])


# ------------------------------------------------------------------------------------ demand

@dataclass
class DemandModel:
    """Seeded synthetic ride requests.

    Parameters
    ----------
    edges : the :class:`EdgeRegions` requests are drawn on.
    rate_per_hour : (n,) expected requests per hour starting in each region (before the profile).
    destination : (n,) or (n, n) destination weights (rows: origin); None = uniform over regions.
    profile : (24,) multiplier of the rates per hour of the day; None = flat.
    speed_kmh : speed used only to date the drop-offs of the supply panel (km/h).
    pickup_minutes : minutes added to the ride time to date drop-offs (approach + boarding).

    Requests of a region in an interval are Poisson with mean ``rate * profile[hour] * hours``; times
    are uniform in the interval; origin and destination edges uniform among the regions' edges
    (never the same edge); positions on edges uniform in ``[1 m, length - 1 m]``.
    """

    edges: EdgeRegions
    rate_per_hour: np.ndarray
    destination: np.ndarray | None = None
    profile: np.ndarray | None = None
    speed_kmh: float = 30.0
    pickup_minutes: float = 3.0

    def __post_init__(self) -> None:
        n = self.edges.n
        self.rate_per_hour = np.broadcast_to(np.asarray(self.rate_per_hour, float), (n,)).copy()
        if not np.isfinite(self.rate_per_hour).all() or (self.rate_per_hour < 0).any():
            raise ConfigError("rate_per_hour must be finite and >= 0 (requests per hour per region)")
        w = np.ones((n, n)) if self.destination is None else np.broadcast_to(np.asarray(self.destination, float),
                                                                            (n, n)).copy()
        if (w < 0).any() or not (w.sum(axis=1) > 0).all():
            raise ConfigError("destination weights must be >= 0 with a positive sum for every origin")
        self.destination = w / w.sum(axis=1, keepdims=True)
        p = np.ones(24) if self.profile is None else np.asarray(self.profile, float)
        if p.shape != (24,) or (p < 0).any():
            raise ConfigError("profile must hold 24 non-negative hourly multipliers")
        self.profile = p

    def sample(self, start_s: float, end_s: float, seed: int, clock_s: float = 0.0) -> pd.DataFrame:
        """Requests with times in ``[start_s, end_s)`` (simulated seconds).

        ``clock_s`` is the time of day (s after midnight) of simulated second 0, for the profile.
        Returns a frame sorted by time: ``time_s``, ``origin``, ``destination`` (region positions),
        ``from_edge``, ``to_edge``, ``depart_pos`` (m).  The same ``(start_s, end_s, seed, clock_s)``
        give the same frame.
        """
        rng = np.random.default_rng(seed)
        rows = []
        a = float(start_s)
        while a < end_s:  # hour-aligned pieces so the profile applies piecewise
            hour_end = (np.floor((clock_s + a) / 3600.0) + 1) * 3600.0 - clock_s
            b = min(end_s, hour_end)
            hour = int(((clock_s + a) // 3600) % 24)
            counts = rng.poisson(self.rate_per_hour * self.profile[hour] * (b - a) / 3600.0)
            for o in np.flatnonzero(counts):
                c = int(counts[o])
                dests = rng.choice(self.edges.n, size=c, p=self.destination[o])
                times = rng.uniform(a, b, size=c)
                for tt, d in zip(times, dests):
                    fe = rng.choice(self.edges.edges_of(o))
                    te_pool = self.edges.edges_of(int(d))
                    te = rng.choice(te_pool)
                    while te == fe and len(te_pool) > 1:
                        te = rng.choice(te_pool)
                    L = self.edges.edge_length[self.edges._pos[fe]]
                    rows.append((tt, int(o), int(d), fe, te, float(rng.uniform(1.0, max(L - 1.0, 1.0)))))
            a = b
        cols = ["time_s", "origin", "destination", "from_edge", "to_edge", "depart_pos"]
        return pd.DataFrame(rows, columns=cols).sort_values("time_s", kind="stable").reset_index(drop=True)

    def panels(self, first_day: str, n_days: int, slot_minutes: int, seed: int = 0) -> dict[str, Panel]:
        """Training panels ``{"demand", "supply"}`` of ``n_days`` days from ``first_day``.

        Demand counts requests per slot of their origin region; supply counts drop-offs in the
        destination region at ``time + pickup_minutes + distance_km / speed_kmh``.  Day ``d`` uses
        seed ``seed + d`` (a simulation seeded differently sees fresh draws of the same process).
        """
        slot_minutes = check_slot_minutes(slot_minutes)
        days = pd.date_range(pd.Timestamp(first_day).normalize(), periods=int(n_days), freq="D")
        ns, n = 1440 // slot_minutes, self.edges.n
        dem = np.zeros((len(days), ns, n))
        sup = np.zeros((len(days), ns, n))
        W = self.edges.regions.distance_km
        outside = 0
        for d in range(len(days)):
            req = self.sample(0.0, 86400.0, seed + d)
            o, de = req.origin.to_numpy(), req.destination.to_numpy()
            s = (req.time_s.to_numpy() // (60 * slot_minutes)).astype(int)
            np.add.at(dem, (d, s, o), 1.0)
            drop = req.time_s.to_numpy() + 60 * self.pickup_minutes + W[o, de] / self.speed_kmh * 3600
            ds = (drop // (60 * slot_minutes)).astype(int)
            ok = ds < ns
            np.add.at(sup, (d, ds[ok], de[ok]), 1.0)
            nxt = ~ok & (d + 1 < len(days))
            if nxt.any():
                np.add.at(sup, (d + 1, ds[nxt] - ns, de[nxt]), 1.0)
            outside += int((~ok & ~nxt).sum())
        rid, dt = self.edges.regions.region_ids, day_types(days)
        return {"demand": Panel(dem, days, slot_minutes, rid, "demand", dt),
                "supply": Panel(sup, days, slot_minutes, rid, "supply", dt, outside)}


# ------------------------------------------------------------------------------------ simulation

@dataclass
class SumoConfig:
    """How :class:`SumoFleet` runs SUMO.

    Attributes
    ----------
    n_taxis : taxis inserted at simulated second 0.
    taxi_regions : (n_taxis,) region position of each taxi's start edge, or None for round-robin over
        regions; the edge inside the region and the position on it are drawn with ``seed``.
    seed : seeds SUMO (``--seed``), the demand draws and the taxi placement.
    start : wall-clock time of simulated second 0 (what policies receive as ``t``).
    slot_seconds : decision interval (s); the policy is called at every slot start.
    step_length : SUMO step (s).
    dispatch_period_s : how often waiting requests are dispatched to idle taxis (s).
    max_wait_s : a request not assigned to a taxi within this time is withdrawn (counted unserved).
    plugs : (n,) plug counts reported in the FleetState (there are no batteries in this scenario:
        ``low_battery`` and ``occupied`` are zeros); None = zeros.
    extra_args : more ``sumo`` command-line arguments.
    """

    n_taxis: int = 10
    taxi_regions: object = None
    seed: int = 0
    start: object = "2026-01-08 08:00"
    slot_seconds: float = 300.0
    step_length: float = 1.0
    dispatch_period_s: float = 5.0
    max_wait_s: float = 600.0
    plugs: object = None
    extra_args: tuple = ()

    def __post_init__(self) -> None:
        if int(self.n_taxis) != self.n_taxis or self.n_taxis < 1:
            raise ConfigError(f"n_taxis must be a positive integer, got {self.n_taxis}")
        for name in ("slot_seconds", "step_length", "dispatch_period_s", "max_wait_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive (seconds), got {getattr(self, name)}")
        self.start = pd.Timestamp(self.start)


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
        self.conn = None
        self._label = f"drbalance-{id(self)}"
        self._taxis: list[str] = []
        self._repositioning: dict[str, dict] = {}   # taxi -> open reposition record
        self._reposition_log: list[dict] = []
        self._moves_log: list[dict] = []
        self._slots_log: list[dict] = []
        self._persons: set[str] = set()
        self._withdrawn: set[str] = set()
        self.requests = self.served = self.unserved = 0
        self._next_dispatch = 0.0
        self._slot = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "SumoFleet":
        """Start ``sumo`` and insert the taxis (steps until all are in the network)."""
        try:
            import traci
        except ImportError as exc:
            raise SumoUnavailableError("the traci package is not installed; pip install traci") from exc
        cfg = self.config
        cmd = [sumo_binary("sumo"), "-n", str(self.edges.net_file), "-a", str(data_path("taxi.add.xml")),
               "--seed", str(int(cfg.seed)), "--step-length", str(cfg.step_length),
               "--device.taxi.dispatch-algorithm", "traci", "--device.taxi.idle-algorithm", "stop",
               "--no-step-log", "true", "--no-warnings", "true", "--duration-log.disable", "true",
               "--time-to-teleport", "-1", *map(str, cfg.extra_args)]
        try:
            traci.start(cmd, label=self._label, numRetries=20)
        except Exception as exc:  # FatalTraCIError, OSError: binary cannot run
            raise SumoUnavailableError(f"could not start SUMO ({cmd[0]}): {exc}") from exc
        self.conn = traci.getConnection(self._label)
        self._insert_taxis()
        return self

    def close(self) -> None:
        """Stop SUMO (idempotent)."""
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    def __enter__(self) -> "SumoFleet":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def time_s(self) -> float:
        """Current simulated time (s)."""
        return float(self.conn.simulation.getTime())

    @property
    def now(self) -> pd.Timestamp:
        """Current wall-clock time of the simulation (``config.start`` + simulated seconds)."""
        return self.config.start + pd.Timedelta(seconds=self.time_s)

    def _insert_taxis(self) -> None:
        cfg, c = self.config, self.conn
        rng = np.random.default_rng([cfg.seed, 1])
        n = self.edges.n
        regions = (np.arange(cfg.n_taxis) % n if cfg.taxi_regions is None
                   else np.asarray(cfg.taxi_regions, int).reshape(-1))
        if len(regions) != cfg.n_taxis or (regions < 0).any() or (regions >= n).any():
            raise ConfigError(f"taxi_regions must hold {cfg.n_taxis} region positions in 0..{n - 1}")
        for i, r in enumerate(regions):
            edge = rng.choice(self.edges.edges_of(int(r)))
            L = self.edges.edge_length[self.edges._pos[edge]]
            vid = f"taxi{i}"
            c.route.add(f"start_{vid}", [edge])
            c.vehicle.add(vid, f"start_{vid}", typeID="taxi", depart="now",
                          departPos=f"{rng.uniform(5.0, max(L - 5.0, 5.0)):.2f}")
            self._taxis.append(vid)
        for _ in range(int(60 / cfg.step_length)):
            c.simulationStep()
            if len(c.vehicle.getTaxiFleet(-1)) == cfg.n_taxis:
                break
        else:
            raise DataError(f"only {len(c.vehicle.getTaxiFleet(-1))} of {cfg.n_taxis} taxis could be inserted "
                            "within 60 s; use fewer taxis or a larger network")
        self._next_dispatch = self.time_s

    # ------------------------------------------------------------------ observing
    def _edge_of(self, vid: str) -> str:
        """The normal edge a vehicle is on (the route edge when it is inside a junction)."""
        road = self.conn.vehicle.getRoadID(vid)
        if road.startswith(":") or self.edges.region_of_edge(road) < 0:
            route = self.conn.vehicle.getRoute(vid)
            idx = self.conn.vehicle.getRouteIndex(vid)
            road = route[min(max(idx, 0), len(route) - 1)]
        return road

    def positions(self) -> pd.DataFrame:
        """Every taxi now: ``taxi``, ``edge``, ``region`` (of the edge), ``x``, ``y`` (m), ``idle``
        (in ``getTaxiFleet(0)``), ``repositioning``."""
        c = self.conn
        idle = set(c.vehicle.getTaxiFleet(0))
        rows = []
        for vid in c.vehicle.getTaxiFleet(-1):
            e = self._edge_of(vid)
            x, y = c.vehicle.getPosition(vid)
            rows.append((vid, e, self.edges.region_of_edge(e), x, y, vid in idle, vid in self._repositioning))
        return pd.DataFrame(rows, columns=["taxi", "edge", "region", "x", "y", "idle", "repositioning"])

    def idle_taxis(self) -> pd.DataFrame:
        """Idle taxis with the region they count in (the target region while repositioning)."""
        p = self.positions()
        p = p[p.idle].copy()
        p["count_region"] = [self._repositioning[v]["destination"] if v in self._repositioning else r
                             for v, r in zip(p.taxi, p.region)]
        return p.reset_index(drop=True)

    def state(self) -> FleetState:
        """The :class:`FleetState` now: idle taxis per region (vacant); no batteries (low-battery and
        occupied zeros); ``config.plugs``."""
        n = self.edges.n
        idle = self.idle_taxis()
        v = np.bincount(idle.count_region.to_numpy(np.int64), minlength=n)
        return FleetState(v, np.zeros(n), self.plugs, np.zeros(n))

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
        c, t_s = self.conn, self.time_s
        idle = self.idle_taxis()
        free = dict(zip(idle.taxi, idle.count_region))
        xy = dict(zip(idle.taxi, zip(idle.x, idle.y)))
        targets = {}
        rows = []
        for o, d, k, kind in zip(m.origin, m.destination, m.count, m.kind):
            if k <= 0 or o == d:
                continue
            row = dict(slot=slot, t=self.now, origin=int(o), destination=int(d), kind=str(kind), planned=int(k),
                       executed=0, taxis=(), reason="")
            if kind != "vacant":
                row["reason"] = "no batteries in the SUMO scenario: charge moves are not executed"
                rows.append(row)
                continue
            cand = [v for v, r in free.items() if r == o]
            cx, cy = self.edges.centroid_xy[d]
            cand.sort(key=lambda v: (np.hypot(xy[v][0] - cx, xy[v][1] - cy), v))
            sent = []
            pool = targets.setdefault(int(d), itertools.cycle(self.edges.edges_of(int(d))))
            for vid in cand[:k]:
                target = next(pool)
                try:
                    self._release(vid)
                    c.vehicle.changeTarget(vid, target)
                    L = self.edges.edge_length[self.edges._pos[target]]
                    c.vehicle.setStop(vid, target, pos=float(L / 2), duration=IDLE_STOP_S)
                    c.vehicle.setStopParameter(vid, 0, "actType", "idling")
                    route_m = float(c.vehicle.getDrivingDistance(vid, target, 1.0))
                except Exception as exc:  # TraCIException: no route
                    row["reason"] = f"{vid}: {exc}"
                    continue
                free.pop(vid)
                sent.append(vid)
                self._repositioning[vid] = rec = dict(taxi=vid, slot=slot, origin=int(o), destination=int(d),
                                                      target_edge=target, issued_s=t_s, arrived_s=np.nan,
                                                      route_m=route_m)
                self._reposition_log.append(rec)
            row["executed"], row["taxis"] = len(sent), tuple(sent)
            if len(sent) < k and not row["reason"]:
                row["reason"] = f"only {len(sent)} idle taxis in region {o}"
            rows.append(row)
        self._moves_log.extend(rows)
        return pd.DataFrame(rows, columns=["slot", "t", "origin", "destination", "kind", "planned", "executed",
                                           "taxis", "reason"])

    def _release(self, vid: str) -> None:
        """End an idle taxi's idling stop (``resume`` when it is stopped; remove it with
        ``replaceStop`` while it is still ahead), so that a new target makes it drive."""
        c = self.conn
        if c.vehicle.isStopped(vid):
            c.vehicle.resume(vid)
            return
        for _ in range(len(c.vehicle.getStops(vid))):
            c.vehicle.replaceStop(vid, 0, "")

    # ------------------------------------------------------------------ simulating
    def advance(self, seconds: float) -> None:
        """Simulate ``seconds``: inject the requests drawn for the interval, dispatch, withdraw
        requests waiting longer than ``max_wait_s``, and track repositioning arrivals and served rides."""
        c, cfg = self.conn, self.config
        t0 = self.time_s
        end = t0 + seconds
        if self.demand is not None:
            clock = (cfg.start - cfg.start.normalize()).total_seconds()
            req = self.demand.sample(t0, end, seed=[int(cfg.seed), 2, int(round(t0 * 1000))], clock_s=clock)
            for r in req.itertuples():
                pid = f"p{self.requests}"
                c.person.add(pid, r.from_edge, r.depart_pos, depart=max(float(r.time_s), t0))
                c.person.appendDrivingStage(pid, r.to_edge, "taxi")
                self._persons.add(pid)
                self.requests += 1
        while self.time_s < end - 1e-9:
            c.simulationStep()
            now = self.time_s
            for pid in c.simulation.getArrivedPersonIDList():
                if pid in self._persons and pid not in self._withdrawn:
                    self.served += 1
            for vid in list(self._repositioning):
                if c.vehicle.getRoadID(vid) == self._repositioning[vid]["target_edge"]:
                    self._repositioning.pop(vid)["arrived_s"] = now
            if now + 1e-9 >= self._next_dispatch:
                self._dispatch(now)
                self._next_dispatch = now + cfg.dispatch_period_s

    def _dispatch(self, now: float) -> None:
        c = self.conn
        waiting = sorted(c.person.getTaxiReservations(3), key=lambda r: (r.reservationTime, r.id))
        if not waiting:
            return
        idle = [v for v in c.vehicle.getTaxiFleet(0) if v not in self._repositioning]
        pos = {v: c.vehicle.getPosition(v) for v in idle}
        for res in waiting:
            if now - res.reservationTime > self.config.max_wait_s:
                for pid in res.persons:
                    c.person.remove(pid)
                    self._withdrawn.add(pid)
                    self.unserved += 1
                continue
            if not pos:
                continue
            px, py = self.edges.edge_xy[self.edges._pos[res.fromEdge]] if res.fromEdge in self.edges._pos \
                else (0.0, 0.0)
            vid = min(pos, key=lambda v: (np.hypot(pos[v][0] - px, pos[v][1] - py), v))
            try:
                c.vehicle.dispatchTaxi(vid, [res.id])
            except Exception:  # TraCIException: e.g. a stop it cannot leave; retry once after resume
                if not c.vehicle.isStopped(vid):
                    raise
                c.vehicle.resume(vid)
                c.vehicle.dispatchTaxi(vid, [res.id])
            pos.pop(vid)

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
        moves = pd.DataFrame(self._moves_log, columns=["slot", "t", "origin", "destination", "kind", "planned",
                                                       "executed", "taxis", "reason"])
        rep = pd.DataFrame(self._reposition_log, columns=["taxi", "slot", "origin", "destination", "target_edge",
                                                          "issued_s", "arrived_s", "route_m"])
        slots = pd.DataFrame(self._slots_log, columns=["slot", "t", "vacant", "taxis", "requests", "served",
                                                       "unserved", "state_s", "plan_s", "apply_s", "sim_s"])
        waiting = len(set(self.conn.person.getIDList())) if self.conn is not None else 0
        summary = dict(requests=self.requests, served=self.served, unserved=self.unserved, waiting=waiting,
                       planned=int(moves.planned.sum()), executed=int(moves.executed.sum()),
                       arrived=int(rep.arrived_s.notna().sum()),
                       taxis=len(self.conn.vehicle.getTaxiFleet(-1)) if self.conn is not None else 0)
        return SumoResult(moves, rep, slots, summary)
