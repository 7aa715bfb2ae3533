"""The SUMO process and its TraCI connection.

Uses ``traci`` (socket), not ``libsumo``: the ``libsumo`` wheel bundles an Arrow library that conflicts
with the ``pyarrow`` the data pipeline imports.  ``traci.start`` picks a free port and every session
has its own connection label, so several simulations may run side by side.
"""

from __future__ import annotations

from pathlib import Path

from drbalance.adapters.sumo.config import SumoConfig
from drbalance.adapters.sumo.resources import SumoUnavailableError, data_path, import_traci, sumo_binary


def sumo_command(net_file: str | Path, config: SumoConfig) -> list[str]:
    """The headless ``sumo`` command line: the network, the bundled taxi type (``taxi.add.xml``),
    ``--seed``, the step length, SUMO's taxi device left to TraCI dispatch with idling stops, quiet
    logs, no teleports (taxis are never removed), then ``config.extra_args``."""
    return [sumo_binary("sumo"), "-n", str(net_file), "-a", str(data_path("taxi.add.xml")),
            "--seed", str(int(config.seed)), "--step-length", str(config.step_length),
            "--device.taxi.dispatch-algorithm", "traci", "--device.taxi.idle-algorithm", "stop",
            "--no-step-log", "true", "--no-warnings", "true", "--duration-log.disable", "true",
            "--time-to-teleport", "-1", *map(str, config.extra_args)]


class TraciSession:
    """One ``sumo`` process under a TraCI connection label.

    ``conn`` is the ``traci`` connection while the session is open, None otherwise.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.conn = None

    def open(self, net_file: str | Path, config: SumoConfig):
        """Start ``sumo`` (see :func:`sumo_command`) and return the connection; raises
        :class:`SumoUnavailableError` when ``traci`` or the binary is missing or SUMO does not start."""
        traci = import_traci()
        cmd = sumo_command(net_file, config)
        try:
            traci.start(cmd, label=self.label, numRetries=20)
        except Exception as exc:  # FatalTraCIError, OSError: binary cannot run
            raise SumoUnavailableError(f"could not start SUMO ({cmd[0]}): {exc}") from exc
        self.conn = traci.getConnection(self.label)
        return self.conn

    def close(self) -> None:
        """Stop SUMO (idempotent)."""
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    @property
    def time_s(self) -> float:
        """Current simulated time (s)."""
        return float(self.conn.simulation.getTime())
