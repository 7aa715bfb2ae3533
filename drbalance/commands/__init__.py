"""Sub-commands of the ``drbalance`` CLI, one module each (see :mod:`drbalance.cli`)."""
