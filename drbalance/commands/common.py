"""Helpers shared by the CLI sub-commands: JSON output, and option values turned into config values."""

from __future__ import annotations

from drbalance.errors import ConfigError
from drbalance.io import jsonable, write_json  # noqa: F401 - re-exported: the commands write through these

__all__ = ["jsonable", "option_values", "parse_circuity", "parse_period", "write_json"]
from drbalance.validation import check_period


def parse_period(text: str, option: str) -> tuple[str, str]:
    """Parse ``"YYYY-MM-DD:YYYY-MM-DD"`` (both ends inclusive) into two ISO date strings; errors name
    ``option`` (the one rule: :func:`drbalance.validation.check_period`)."""
    return check_period(option, text)


def parse_circuity(text: str) -> float | str:
    """``--circuity`` value: ``"auto"`` (estimated from metered trips) or a number (checked >= 1 by the
    configuration)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--circuity must be a number >= 1 or 'auto', got {text!r}") from None


def option_values(args, keys: dict[str, str]) -> dict:
    """The dotted :class:`drbalance.study_config.StudyConfig` values of the options given on the command
    line (``keys``: option attribute -> dotted key; an option left at None was not given and is left
    out, so a ``--config`` file's value or the default stays).  ``--train`` is parsed as a period,
    ``--days`` and ``--policies`` split on commas, ``--circuity`` as a number or ``auto``."""
    values = {}
    for option, key in keys.items():
        v = getattr(args, option, None)
        if v is None:
            continue
        if option == "train":
            v = list(parse_period(v, "--train"))
        elif option in ("days", "policies"):
            v = [x.strip() for x in v.split(",") if x.strip()]
        elif option == "circuity":
            v = parse_circuity(v)
        values[key] = v
    return values
