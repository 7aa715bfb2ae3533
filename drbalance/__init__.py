"""drbalance: data-driven distributionally robust balancing of electric mobility-on-demand fleets.

The public API, imported lazily (``import drbalance`` stays light; each name loads its module on
first use)::

    import drbalance
    study = drbalance.Study.from_trips(trips, zones, drbalance.StudyConfig.from_toml("study.toml"))
    ev = drbalance.evaluate(trips, zones, study.config)

Value objects: :class:`FleetState`, :class:`Forecasts`, :class:`Plan`, :class:`Moves`; the problem
and its controller: :class:`BalancingConfig`, :class:`BalancingProblem`, :class:`Controller`,
:class:`ControllerConfig`, :class:`Policy`; estimates: :class:`Estimates`, :class:`EstimateConfig`,
:class:`UncertaintySet`; simulation: :class:`Simulator`, :class:`SimConfig`, :class:`SimRun`,
:class:`SimResult`; studies: :class:`Study`, :class:`StudyConfig`, :func:`evaluate`; errors.
"""

from __future__ import annotations

import importlib

from drbalance.errors import (  # noqa: F401
    ConfigError,
    DataError,
    DrbalanceError,
    InfeasibleError,
    LicenceError,
    SolverError,
    UnboundedError,
)

__version__ = "0.1.0"

#: public name -> module that defines it
_API = {
    "FleetState": "drbalance.state", "Forecasts": "drbalance.state", "Plan": "drbalance.state",
    "Moves": "drbalance.policies", "Policy": "drbalance.policies",
    "BalancingConfig": "drbalance.config", "ControllerConfig": "drbalance.config",
    "BalancingProblem": "drbalance.problem", "Controller": "drbalance.controller",
    "Simulator": "drbalance.sim", "SimConfig": "drbalance.sim", "SimRun": "drbalance.sim",
    "SimResult": "drbalance.sim",
    "Estimates": "data_pipeline.estimates", "EstimateConfig": "data_pipeline.estimates",
    "UncertaintySet": "data_pipeline.uncertainty",
    "Study": "drbalance.study", "StudyConfig": "drbalance.study_config",
    "EvaluationSettings": "drbalance.study_config", "evaluate": "drbalance.evaluation",
}

__all__ = sorted([*_API, "ConfigError", "DataError", "DrbalanceError", "InfeasibleError", "LicenceError",
                  "SolverError", "UnboundedError", "__version__"])


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'drbalance' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
