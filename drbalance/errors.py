"""Every exception drbalance raises on purpose.

Each message says what was wrong and how to fix it.  All derive from :class:`DrbalanceError`
so that callers can catch the whole family in one clause.
"""

from __future__ import annotations


class DrbalanceError(Exception):
    """Base class of all errors raised deliberately by drbalance and data_pipeline."""


class DataError(DrbalanceError, ValueError):
    """Input data are malformed: missing/unknown column, unreadable file, too few days, degenerate panel."""


class ConfigError(DrbalanceError, ValueError):
    """A configuration value is out of range or inconsistent with another one."""


class InfeasibleError(DrbalanceError):
    """The optimisation problem has no feasible point (e.g. more low-battery EVs than reachable plugs)."""


class UnboundedError(DrbalanceError):
    """The optimisation problem is unbounded (a modelling error: report it with the instance)."""


class SolverError(DrbalanceError):
    """The conic solver failed, stalled or returned an inaccurate solution."""


class LicenceError(SolverError):
    """A commercial solver (MOSEK) was requested but no valid licence was found."""
