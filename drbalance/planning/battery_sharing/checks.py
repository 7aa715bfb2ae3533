"""Argument checks shared by the battery-sharing modules."""

from __future__ import annotations

import numpy as np

from drbalance.errors import ConfigError, DataError


def check_int(name: str, value: object, minimum: int) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an integer (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; got {value!r}")


def check_samples(samples: np.ndarray) -> np.ndarray:
    """``samples`` as a finite float array of shape ``(n_samples, n_drivers)``, both ``>= 1``."""
    arr = np.asarray(samples, dtype=float)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise DataError(f"need samples of shape (n_samples, n_drivers) with both >= 1; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataError(f"samples contain {int((~np.isfinite(arr)).sum())} NaN/inf value(s); drop or impute them")
    return arr
