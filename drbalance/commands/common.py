"""Helpers shared by the CLI sub-commands: JSON output, and option values turned into config values."""

from __future__ import annotations

from drbalance.errors import ConfigError
from drbalance.io import jsonable, write_json  # noqa: F401 - re-exported: the commands write through these

__all__ = ["jsonable", "parse_circuity", "parse_period", "write_json"]
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
