"""Need models (samplers of the drivers' joint daily needs) and App. B's Gaussian closed form."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.stats import norm

from drbalance.errors import ConfigError
from drbalance.planning.battery_sharing.checks import check_int
from drbalance.planning.battery_sharing.daily_needs import DailyNeeds


class NeedModel(Protocol):
    """A joint distribution of ``n_drivers`` daily needs (kWh)."""

    n_drivers: int

    def sample(self, rng: np.random.Generator, n_samples: int) -> np.ndarray:
        """Return ``n_samples`` independent draws, shape ``(n_samples, n_drivers)``, kWh."""


@dataclass(frozen=True)
class GaussianNeeds:
    """App. B: ``ξ ~ N(μ 1, σ² I_N)`` (kWh); independent, identically distributed drivers.

    Defaults ``μ = 12``, ``σ = 4`` kWh put the 85 % quantile at 16 kWh (48 miles at 3 mi/kWh),
    close to the paper's "85 % of daily trips are under 50 miles".  Negative draws (probability
    ``Φ(-μ/σ)``) are kept, as in App. B; the shortfall ``(ξ - x)^+`` treats them as zero need.
    """

    n_drivers: int
    mean_kwh: float = 12.0
    std_kwh: float = 4.0

    def __post_init__(self) -> None:
        check_int("n_drivers", self.n_drivers, 1)
        if not (np.isfinite(self.mean_kwh) and self.std_kwh > 0 and np.isfinite(self.std_kwh)):
            raise ConfigError(f"Gaussian needs need a finite mean and positive std; got {self.mean_kwh}, {self.std_kwh}")

    def sample(self, rng: np.random.Generator, n_samples: int) -> np.ndarray:
        """``(n_samples, n_drivers)`` kWh."""
        out = rng.standard_normal((n_samples, self.n_drivers))
        out *= self.std_kwh
        out += self.mean_kwh
        return out


@dataclass(frozen=True)
class EmpiricalNeeds:
    """Each driver's daily need drawn from a histogram of their observed days (paper §IV-A).

    drivers: ``(N,)`` source driver ids; an id repeats when drivers were bootstrapped (``N`` larger
        than the eligible drivers), each copy drawing independently.
    values_kwh: observed daily needs of all profiles, concatenated; ``offsets`` ``(N+1,)`` delimits
        driver ``k``'s days as ``values_kwh[offsets[k]:offsets[k+1]]``.
    bin_width_kwh: histogram bin width (paper: about 2 kWh).  A draw picks one of the driver's days
        uniformly, then a uniform point in that day's bin ``[w floor(v/w), w floor(v/w) + w)``;
        ``0`` resamples the observed values themselves.
    """

    drivers: tuple[str, ...]
    values_kwh: np.ndarray
    offsets: np.ndarray
    bin_width_kwh: float = 2.0

    @property
    def n_drivers(self) -> int:
        return len(self.drivers)

    @classmethod
    def from_daily_needs(
        cls,
        needs: DailyNeeds,
        n_drivers: int | None = None,
        *,
        rng: np.random.Generator | int | None = 0,
        bin_width_kwh: float = 2.0,
    ) -> "EmpiricalNeeds":
        """Pick ``n_drivers`` eligible drivers (default: all), without replacement when there are
        enough of them, otherwise with replacement (bootstrap); the choice is seeded by ``rng``."""
        if bin_width_kwh < 0 or not np.isfinite(bin_width_kwh):
            raise ConfigError(f"bin_width_kwh must be >= 0; got {bin_width_kwh}")
        eligible = needs.eligible_drivers
        if n_drivers is None:
            chosen = np.arange(len(eligible))
        else:
            check_int("n_drivers", n_drivers, 1)
            gen = np.random.default_rng(rng)
            chosen = gen.choice(len(eligible), size=n_drivers, replace=n_drivers > len(eligible))
        by_driver = needs.table.groupby("driver", sort=True)["kwh"]
        values = {d: v.to_numpy(dtype=float) for d, v in by_driver if d in set(eligible)}
        ids = tuple(eligible[k] for k in chosen)
        arrays = [values[d] for d in ids]
        offsets = np.concatenate([[0], np.cumsum([a.size for a in arrays])]).astype(np.int64)
        return cls(drivers=ids, values_kwh=np.concatenate(arrays), offsets=offsets, bin_width_kwh=float(bin_width_kwh))

    def sample(self, rng: np.random.Generator, n_samples: int) -> np.ndarray:
        """``(n_samples, n_drivers)`` kWh; one uniform draw per entry picks the day and the point in its bin."""
        counts = np.diff(self.offsets).astype(float)
        u = rng.random((n_samples, self.n_drivers))
        u *= counts
        pick = np.floor(u)
        u -= pick  # fractional part: uniform on [0, 1), independent of the day picked
        index = pick.astype(np.int64)
        index += self.offsets[:-1]
        w = self.bin_width_kwh
        if w <= 0:
            return self.values_kwh[index]
        values = self._bin_left[index]
        u *= w
        values += u
        return values

    @property
    def _bin_left(self) -> np.ndarray:
        """Left edge of each observed value's histogram bin, kWh (cached)."""
        cached = self.__dict__.get("_bin_left_cache")
        if cached is None:
            w = self.bin_width_kwh
            cached = np.floor(self.values_kwh / w) * w if w > 0 else self.values_kwh
            object.__setattr__(self, "_bin_left_cache", cached)
        return cached


@dataclass(frozen=True)
class GaussianClosedForm:
    """Closed forms for i.i.d. ``N(μ, σ²)`` needs (kWh).

    capacity_nonshared_kwh: P-NS optimum ``N (μ + σ z_α)``.
    capacity_shared_kwh: P-SI optimum ``q_α(Σ ξ_i) = N μ + σ √N z_α`` (attained at ``x = 0``; exact
        when needs are non-negative, a lower bound by ``<= N σ φ(μ/σ)``-sized terms otherwise).
    reduction: ``1 - capacity_shared / capacity_nonshared``.
    appb_pool_kwh, appb_total_kwh: App. B's feasible point ``x_i = μ``, ``s = q_α(Σ (ζ_i)^+)``, with
        the quantile by the central limit theorem: ``N σ/√(2π) + z_α σ √(N (1/2 - 1/(2π)))``.
    """

    n_drivers: int
    mean_kwh: float
    std_kwh: float
    alpha: float
    capacity_nonshared_kwh: float
    capacity_shared_kwh: float
    reduction: float
    appb_pool_kwh: float
    appb_total_kwh: float


def gaussian_closed_form(n_drivers: int, mean_kwh: float, std_kwh: float, alpha: float) -> GaussianClosedForm:
    """See :class:`GaussianClosedForm`."""
    check_int("n_drivers", n_drivers, 1)
    if not 0 < alpha < 1 or not std_kwh > 0:
        raise ConfigError(f"need 0 < alpha < 1 and std_kwh > 0; got alpha={alpha}, std_kwh={std_kwh}")
    n, mu, sd, z = n_drivers, float(mean_kwh), float(std_kwh), float(norm.ppf(alpha))
    ns = n * (mu + sd * z)
    sh = n * mu + sd * math.sqrt(n) * z
    pool = n * sd / math.sqrt(2 * math.pi) + z * sd * math.sqrt(n * (0.5 - 1 / (2 * math.pi)))
    return GaussianClosedForm(n, mu, sd, alpha, ns, sh, 1.0 - sh / ns, pool, n * mu + pool)
