"""drbalance: data-driven distributionally robust balancing of electric mobility-on-demand fleets.

The import is kept light: submodules are imported where they are used, so ``import drbalance``
does not pull in cvxpy or the data pipeline.
"""

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
