"""SUMO adapter: the balancer repositions idle taxis of a SUMO microsimulation through TraCI.

Pieces (``docs/sumo.md`` has the walk-through), one module each:

* :mod:`~drbalance.adapters.sumo.resources` -- the bundled scenario (:data:`DATA`, :func:`data_path`),
  the ``sumo`` binaries (:func:`sumo_binary`) and the optional ``traci``/``sumolib`` packages
  (:class:`SumoUnavailableError` when missing).
* :mod:`~drbalance.adapters.sumo.network` -- :func:`edge_regions` partitions a SUMO network's edges
  into a ``k x k`` block grid over the edge midpoints and builds the
  :class:`data_pipeline.regions.RegionMap` of those regions (one "zone" per edge; distances are
  shortest driving paths between the regions' anchor edges, in km).
* :mod:`~drbalance.adapters.sumo.demand` -- :class:`DemandModel`, a seeded synthetic demand of ride
  requests per region (Poisson, rates in requests per hour with an hour-of-day profile).  The same
  generator feeds SUMO (persons asking for a taxi) and the training panels of the controller.
* :mod:`~drbalance.adapters.sumo.config` / :mod:`~drbalance.adapters.sumo.result` -- :class:`SumoConfig`
  (how SUMO is run) and :class:`SumoResult` (the move, repositioning and slot logs).
* :mod:`~drbalance.adapters.sumo.session` -- the ``sumo`` process and its TraCI connection.
* :mod:`~drbalance.adapters.sumo.taxis` -- the taxis' positions and repositioning trips, and the
  :class:`drbalance.state.FleetState` counted from the idle ones.
* :mod:`~drbalance.adapters.sumo.moves` -- a plan's vacant moves as ``changeTarget`` orders to chosen
  idle taxis (:data:`IDLE_STOP_S`).
* :mod:`~drbalance.adapters.sumo.rides` -- ride requests as SUMO persons and our nearest-idle-taxi
  dispatch (``dispatchTaxi``).
* :mod:`~drbalance.adapters.sumo.fleet` -- :class:`SumoFleet` runs ``sumo`` headless with SUMO's taxi
  device (``--device.taxi.dispatch-algorithm traci``) and, every slot, asks any drbalance policy
  ``plan(state, t)`` (e.g. :class:`drbalance.controller.Controller`) and applies its moves.

Units: positions and lengths in metres (SUMO), region distances in km, times in seconds of
simulated time unless stated; wall-clock timings in seconds.

Uses ``traci`` (socket), not ``libsumo``: the ``libsumo`` wheel bundles an Arrow library that conflicts
with the ``pyarrow`` the data pipeline imports.
"""

from drbalance.adapters.sumo.config import SumoConfig
from drbalance.adapters.sumo.demand import DemandModel
from drbalance.adapters.sumo.fleet import SumoFleet
from drbalance.adapters.sumo.moves import IDLE_STOP_S
from drbalance.adapters.sumo.network import EdgeRegions, edge_regions
from drbalance.adapters.sumo.resources import DATA, SumoUnavailableError, data_path, sumo_binary
from drbalance.adapters.sumo.result import SumoResult

__all__ = ["DATA", "IDLE_STOP_S", "DemandModel", "EdgeRegions", "SumoConfig", "SumoFleet", "SumoResult",
           "SumoUnavailableError", "data_path", "edge_regions", "sumo_binary"]
