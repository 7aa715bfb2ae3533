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
    "drbalance.commands.tune",
    "drbalance.commands.sweep",
    "drbalance.commands.report",
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


#: what an interrupted command leaves behind, unless its parser sets ``interrupted`` (a function of the
#: parsed arguments returning the line, e.g. ``sweep``: finished scenarios kept, re-run to resume)
INTERRUPTED = ("no partial file was written (each result appears only when complete); "
               "run the same command again to start over")


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; returns the exit code.

    Exit codes: 0 success; 2 usage error (argparse: unknown option, missing required option, bad
    type; ``SystemExit(2)`` is raised by the parser, and ``main([])`` prints the help and returns 2);
    1 data or configuration error (one line on stderr: ``drbalance <command>: <ErrorType>: <message>``);
    130 interrupted (Ctrl-C: one line saying what was kept and how to resume).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _refuse_empty_values(parser, args)
    try:
        return int(args.func(args) or 0)
    except DrbalanceError as exc:  # a deliberate, explained failure: no traceback
        print(f"drbalance {args.command}: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:  # the file system refused (disk full, permission denied...): no traceback either
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"drbalance {args.command}: {type(exc).__name__}: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        note = getattr(args, "interrupted", None)
        print(f"drbalance {args.command}: interrupted; {note(args) if note else INTERRUPTED}", file=sys.stderr)
        return 130


def _refuse_empty_values(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A usage error (exit 2) for ``--option=--``: argparse turns that value into an empty list and skips
    the option's type conversion, so it would reach the command as ``[]``."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = sub.choices[args.command]
    for action in command._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings or not isinstance(value, list):
            continue
        appended = isinstance(action, argparse._AppendAction)   # a list of values, one per use
        if (appended and [] in value) or (not appended and action.nargs is None):
            command.error(f"argument {'/'.join(action.option_strings)}: expected one argument")


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (a message quoting a file's content may hold newlines)."""
    return " ".join(str(exc).split()) if "\n" in str(exc) else str(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
