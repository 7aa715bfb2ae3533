"""Unit conversions shared by the readers, the scenario loaders, the simulator and the benchmarks.

One definition per constant: import it from here rather than writing the number again.
"""

from __future__ import annotations

#: Kilometres per statute (international) mile, exact by definition (1 mi = 1609.344 m).
KM_PER_MILE = 1.609344

__all__ = ["KM_PER_MILE"]
