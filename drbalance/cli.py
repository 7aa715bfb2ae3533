"""The ``drbalance`` command line: a thin layer over the library.

Each sub-command lives in its own module under :mod:`drbalance.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the parsed
arguments and returning an exit code.  Every command that writes results also writes its resolved
configuration next to them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import drbalance
from drbalance.errors import DrbalanceError

#: Sub-command modules, in the order ``drbalance --help`` lists them.
COMMAND_MODULES = (
    "drbalance.commands.demo",
    "drbalance.commands.estimate",
    "drbalance.commands.hybrid",
    "drbalance.commands.battery",
    "drbalance.commands.bench_solve",
    "drbalance.commands.simulate",
    "drbalance.commands.evaluate",
    "drbalance.commands.evaluate_scenario",
    "drbalance.commands.sweep",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drbalance",
        description="Distributionally robust balancing of electric mobility-on-demand fleets.",
    )
    parser.add_argument("--version", action="version", version=f"drbalance {drbalance.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DrbalanceError as exc:  # a deliberate, explained failure: no traceback
        print(f"drbalance {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
