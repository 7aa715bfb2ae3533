"""Where the SUMO pieces are: the bundled scenario files, the ``sumo`` binaries, and the optional
``traci`` / ``sumolib`` packages (imported only when needed, with an install hint when missing).

The bundled scenario stays in ``drbalance/adapters/sumo_data/`` (package data of
``drbalance.adapters``, see ``pyproject.toml``).
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
from pathlib import Path

from drbalance.errors import DataError

#: Folder of the bundled scenario (``grid.net.xml``, ``taxi.add.xml``, ``grid.sumocfg``).
DATA = importlib.resources.files("drbalance.adapters") / "sumo_data"


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
        import sumo  # lazy (a): the eclipse-sumo wheel, optional dependency (drbalance[sumo])

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


def import_traci():
    """The ``traci`` module (optional dependency); :class:`SumoUnavailableError` when it is missing."""
    try:
        import traci  # lazy (a): optional dependency (drbalance[sumo])
    except ImportError as exc:
        raise SumoUnavailableError("the traci package is not installed; pip install traci") from exc
    return traci


def import_sumolib():
    """The ``sumolib`` module (optional dependency); :class:`SumoUnavailableError` when it is missing."""
    try:
        import sumolib  # lazy (a): optional dependency (drbalance[sumo])
    except ImportError as exc:  # pragma: no cover - comes with eclipse-sumo / traci
        raise SumoUnavailableError("sumolib is not installed; pip install eclipse-sumo traci") from exc
    return sumolib
