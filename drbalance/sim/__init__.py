"""Electric-fleet log-replay simulator (issue 3): replay trip records as requests against a synthetic
EV fleet with chargers and queues, call a :class:`drbalance.policies.Policy` at every slot boundary,
and measure the paper's fairness metrics (:mod:`drbalance.metrics`).

Public objects: :class:`Simulator`, :class:`SimConfig`, :class:`SimResult`, :class:`Requests`,
:class:`ChargingConfig`, :class:`PlugSiting`.  See ``docs/simulator.md``.
"""

from drbalance.sim.chargers import ChargingConfig, PlugSiting
from drbalance.sim.config import SimConfig
from drbalance.sim.replay import SimRun, Simulator
from drbalance.sim.requests import Requests
from drbalance.sim.result import SimResult

__all__ = ["ChargingConfig", "PlugSiting", "Requests", "SimConfig", "SimResult", "SimRun", "Simulator"]
