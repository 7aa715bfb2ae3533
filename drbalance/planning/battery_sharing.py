"""Shared battery capacity planning with chance constraints (Alexeenko & Charisopoulos).

``N`` drivers have random daily energy needs ``ξ_i`` (kWh).  Each driver owns a personal battery
``x_i`` (kWh) and the fleet shares one range-extender pool ``s`` (kWh).  This module sizes them:

* **P-NS** (no sharing): ``x_i`` is driver ``i``'s ``α``-quantile, estimated empirically
  (:func:`solve_nonshared`), with the sample-size confidence of the paper's App. C.
* **P-SI** (sharing, inner approximation): ``min Σ x_i + s`` s.t. ``P(Σ_i (ξ_i - x_i)^+ <= s) >= α``,
  approximated by the scenario program (6), an LP (:class:`ScenarioLP`), with the scenario count
  from scenario theory (:func:`scenario_count`).
* **Algorithms 1 and 2**: binary search on the number of scenarios until the empirical reliability
  on ``M_eval`` fresh samples is just above ``α`` (:func:`binary_search`), repeated over ``T``
  seeded trials, keeping the trial with the smallest reliability above ``α``
  (:func:`plan_shared_capacity`).
* **Allocation rules** proportional, first-come-first-served and utilitarian, and a vectorised
  per-driver reliability evaluator (:func:`driver_reliability`) to check Theorem III.1: a P-SI
  solution meets every driver's need with probability ``>= α`` under each of them.
* **Data**: daily needs per driver from a table (:func:`read_needs_table`), from the ACN charging
  sessions (:func:`read_acn_sessions`), or the independent-Gaussian case of App. B
  (:class:`GaussianNeeds`, closed form in :func:`gaussian_closed_form`).

A structural fact drives the design (see ``docs/battery_sharing.md``): with ``x >= 0`` the LP (6)
has the optimal value ``max_j Σ_i (ξ_ij)^+`` (every feasible point has
``s + Σ x_i >= Σ_i (ξ_ij - x_i)^+ + x_i >= Σ_i (ξ_ij)^+``, and ``x = 0, s = max_j Σ_i (ξ_ij)^+``
attains it), so its optimal face is large and which point a solver returns is arbitrary.  The
default ``method="pool"`` returns the optimal vertex ``x = 0`` (the one with the highest P-SI
reliability for the optimal total, hence the least conservative); ``method="lp"`` solves (6) with
cvxpy and returns the solver's point, as the paper did.
"""

from __future__ import annotations

import gzip
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np
import pandas as pd

from drbalance.errors import ConfigError, DataError, SolverError

RULES = ("proportional", "fcfs", "utilitarian")
METHODS = ("pool", "lp")
SCENARIO_BOUNDS = ("campi-garatti", "explicit")
#: Miles per kWh the paper assumes to turn daily mileage into energy (ref. [24] there).
MILES_PER_KWH = 3.0
ACN_TIME_FORMAT = "%a, %d %b %Y %H:%M:%S GMT"

ProgressFn = Callable[[int], None]


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlanningConfig:
    """Everything Algorithm 1 needs besides the need model; validated on construction.

    alpha: target reliability in (0, 1) (same for every driver).
    trials: ``T``, independent trials of Algorithm 2.
    delta: confidence parameter: the scenario count makes a scenario solution P-SI-feasible with
        probability ``>= 1 - delta``; App. C's sample count bounds every driver's reliability
        estimate within ``eval_epsilon`` with probability ``>= 1 - delta``.
    eval_epsilon: App. C accuracy ``ε`` of the empirical reliabilities.
    scenario_bound: ``"campi-garatti"`` (exact binomial tail, smallest valid count) or
        ``"explicit"`` (``(2/(1-α)) (ln(1/δ) + N + 1)``, MATH.md §3).
    method: ``"pool"`` (optimal vertex ``x = 0`` of LP (6), closed form) or ``"lp"`` (cvxpy LP).
    solver: cvxpy solver for ``method="lp"``: ``"CLARABEL"`` or ``"HIGHS"``.
    seed: seed of the ``numpy`` Generator; every random draw derives from it.
    """

    alpha: float = 0.85
    trials: int = 20
    delta: float = 0.01
    eval_epsilon: float = 0.02
    scenario_bound: str = "campi-garatti"
    method: str = "pool"
    solver: str = "CLARABEL"
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < float(self.alpha) < 1.0:
            raise ConfigError(f"alpha must lie strictly between 0 and 1 (a reliability); got {self.alpha}")
        if int(self.trials) != self.trials or self.trials < 1:
            raise ConfigError(f"trials must be a positive integer; got {self.trials}")
        if not 0.0 < float(self.delta) < 1.0:
            raise ConfigError(f"delta must lie strictly between 0 and 1 (1 - confidence); got {self.delta}")
        if not 0.0 < float(self.eval_epsilon) < 1.0:
            raise ConfigError(f"eval_epsilon must lie strictly between 0 and 1; got {self.eval_epsilon}")
        if self.scenario_bound not in SCENARIO_BOUNDS:
            raise ConfigError(f"scenario_bound must be one of {SCENARIO_BOUNDS}; got {self.scenario_bound!r}")
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}; got {self.method!r}")
        if self.solver.upper() not in ("CLARABEL", "HIGHS"):
            raise ConfigError(f"solver must be CLARABEL or HIGHS; got {self.solver!r}")
        if int(self.seed) != self.seed or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer; got {self.seed}")

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# sample-size bounds
# ---------------------------------------------------------------------------------------------
def scenario_count(n_drivers: int, alpha: float, delta: float, bound: str = "campi-garatti") -> int:
    """Number of scenarios ``M_sc`` making the solution of (6) feasible for P-SI w.p. ``>= 1 - δ``.

    The program has ``d = N + 1`` decision variables and violation level ``ε = 1 - α``.
    ``"campi-garatti"``: smallest ``m`` with ``Σ_{i<d} C(m,i) ε^i (1-ε)^{m-i} <= δ`` (Campi & Garatti
    2008, exact for fully-supported problems); ``"explicit"``: ``ceil((2/ε)(ln(1/δ) + d))``.
    """
    _check_int("n_drivers", n_drivers, 1)
    if not 0.0 < alpha < 1.0 or not 0.0 < delta < 1.0:
        raise ConfigError(f"alpha and delta must lie in (0, 1); got alpha={alpha}, delta={delta}")
    d, eps = n_drivers + 1, 1.0 - alpha
    if bound == "explicit":
        return int(math.ceil((2.0 / eps) * (math.log(1.0 / delta) + d)))
    if bound != "campi-garatti":
        raise ConfigError(f"bound must be one of {SCENARIO_BOUNDS}; got {bound!r}")
    from scipy.stats import binom

    lo, hi = d - 1, max(d, int(math.ceil(d / eps)))
    while binom.cdf(d - 1, hi, eps) > delta:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:  # binom.cdf(d-1, m, eps) decreases in m
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if binom.cdf(d - 1, mid, eps) <= delta else (mid, hi)
    return hi


def eval_sample_count(n_drivers: int, epsilon: float, delta: float) -> int:
    """App. C: ``M_eval = ceil(4 ln(2N/δ) / ε²)`` samples estimate all ``N`` drivers' reliabilities
    within ``ε`` simultaneously with probability ``>= 1 - δ``."""
    _check_int("n_drivers", n_drivers, 1)
    if not 0.0 < epsilon < 1.0 or not 0.0 < delta < 1.0:
        raise ConfigError(f"epsilon and delta must lie in (0, 1); got epsilon={epsilon}, delta={delta}")
    return int(math.ceil(4.0 * math.log(2.0 * n_drivers / delta) / epsilon**2))


def reliability_epsilon(n_samples: int, n_drivers: int, delta: float) -> float:
    """Inverse of :func:`eval_sample_count`: ``ε = sqrt(4 ln(2N/δ) / m)`` (App. C, eq. 9)."""
    _check_int("n_samples", n_samples, 1)
    return float(math.sqrt(4.0 * math.log(2.0 * n_drivers / delta) / n_samples))


# ---------------------------------------------------------------------------------------------
# daily-need data
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DailyNeeds:
    """Daily energy needs per driver, one row per (driver, day).

    table: columns ``driver`` (str), ``day`` (datetime64, local calendar day), ``kwh`` (float >= 0).
    min_days: drivers with fewer days than this are not eligible for sampling; they stay in
        ``table`` and are listed in ``short_drivers`` (driver -> number of days).
    notes: what the reader did besides the rows (e.g. sessions without a driver id), one line each.
    """

    table: pd.DataFrame
    min_days: int
    source: str
    short_drivers: pd.Series
    notes: tuple[str, ...] = ()

    @property
    def days_per_driver(self) -> pd.Series:
        return self.table.groupby("driver", sort=True).size()

    @property
    def eligible_drivers(self) -> list[str]:
        counts = self.days_per_driver
        return counts.index[counts >= self.min_days].tolist()

    def report(self) -> dict:
        """Counts for a run record: drivers in the table, eligible, and those with too few days."""
        counts = self.days_per_driver
        return {
            "source": self.source,
            "drivers": int(counts.size),
            "driver_days": int(len(self.table)),
            "min_days": int(self.min_days),
            "eligible_drivers": len(self.eligible_drivers),
            "drivers_with_too_few_days": int(self.short_drivers.size),
            "notes": list(self.notes),
        }


def _finish_needs(table: pd.DataFrame, min_days: int, source: str, notes: Sequence[str]) -> DailyNeeds:
    _check_int("min_days", min_days, 1)
    table = (
        table.groupby(["driver", "day"], sort=True, as_index=False)["kwh"].sum().reset_index(drop=True)
    )
    counts = table.groupby("driver", sort=True).size()
    short = counts[counts < min_days].rename("days")
    needs = DailyNeeds(table=table, min_days=int(min_days), source=source, short_drivers=short, notes=tuple(notes))
    if not needs.eligible_drivers:
        raise DataError(
            f"{source}: no driver has at least min_days={min_days} days of data (most: "
            f"{int(counts.max()) if counts.size else 0}); lower min_days"
        )
    return needs


def read_needs_table(
    source: str | Path | pd.DataFrame,
    *,
    miles_per_kwh: float = MILES_PER_KWH,
    min_days: int = 10,
) -> DailyNeeds:
    """Read daily needs from a table with columns ``driver``, ``day`` and ``kwh`` or ``miles``.

    source: a DataFrame or a ``.csv`` / ``.parquet`` file.  Rows with the same (driver, day) are
        summed (a trip table works as is).  ``miles`` are turned into kWh with ``miles_per_kwh``
        (default 3 mi/kWh, as in the paper).
    Raises DataError naming the missing column, unparsable days, or negative / missing needs.
    """
    if not miles_per_kwh > 0:
        raise ConfigError(f"miles_per_kwh must be positive; got {miles_per_kwh}")
    name = "table"
    if not isinstance(source, pd.DataFrame):
        path = Path(source)
        name = str(path)
        if not path.is_file():
            raise DataError(f"needs table {path} does not exist; pass a .csv or .parquet file")
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
        elif path.suffix.lower() in (".csv", ".gz"):
            frame = pd.read_csv(path)
        else:
            raise DataError(f"needs table {path}: unknown format {path.suffix!r}; use .csv or .parquet")
    else:
        frame = source
    missing = [c for c in ("driver", "day") if c not in frame.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {missing}; expected driver, day and kwh or miles")
    has_kwh, has_miles = "kwh" in frame.columns, "miles" in frame.columns
    if has_kwh == has_miles:
        raise DataError(
            f"{name}: need exactly one of the columns 'kwh' or 'miles' (found columns {list(frame.columns)})"
        )
    raw = pd.to_numeric(frame["kwh" if has_kwh else "miles"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(raw) | (raw < 0)
    if bad.any():
        raise DataError(
            f"{name}: {int(bad.sum())} row(s) with a missing, non-numeric or negative "
            f"{'kwh' if has_kwh else 'miles'} value (first at row {int(np.flatnonzero(bad)[0])}); fix or drop them"
        )
    try:
        day = pd.to_datetime(frame["day"]).dt.normalize()
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name}: cannot parse column 'day' as dates ({exc}); use YYYY-MM-DD") from exc
    if frame["driver"].isna().any():
        raise DataError(f"{name}: {int(frame['driver'].isna().sum())} row(s) without a driver id; fix or drop them")
    kwh = raw if has_kwh else raw / miles_per_kwh
    table = pd.DataFrame({"driver": frame["driver"].astype(str).to_numpy(), "day": day.to_numpy(), "kwh": kwh})
    notes = [] if has_kwh else [f"miles converted at {miles_per_kwh} mi/kWh"]
    return _finish_needs(table, min_days, name, notes)


def read_acn_sessions(path: str | Path, *, min_days: int = 10) -> DailyNeeds:
    """Daily energy per driver from ACN-Data charging sessions (JSON list, optionally gzip-compressed).

    Each session's ``kWhDelivered`` is assigned to its ``userID`` and to the local calendar day
    (``timezone`` field, default America/Los_Angeles) of its ``connectionTime`` (RFC-1123, GMT);
    a driver's daily need is the day's sum.  Days without a session are absent (not zero), so the
    distribution is that of energy on charging days.  Sessions without ``userID`` are counted in
    ``notes`` and left out (they belong to no driver).  The API's ``{"_items": [...]}`` form works too.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"ACN sessions file {path} does not exist; pass --acn-path to the ACN-Data JSON "
            "(e.g. ../shared/data/ev_charging_acn_caltech_2021/acndata_sessions.json.gz)"
        )
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            payload = json.load(fh)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path} as (gzip-compressed) JSON: {exc}") from exc
    if isinstance(payload, dict) and "_items" in payload:
        payload = payload["_items"]
    if not isinstance(payload, list) or not payload or not all(isinstance(r, dict) for r in payload):
        raise DataError(f"{path}: expected a non-empty JSON list of session objects")
    frame = pd.DataFrame(payload)
    missing = [c for c in ("userID", "connectionTime", "kWhDelivered") if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: sessions lack field(s) {missing}; is this an ACN-Data sessions file?")
    notes = []
    no_user = frame["userID"].isna()
    if no_user.any():
        notes.append(f"{int(no_user.sum())} of {len(frame)} sessions have no userID and were left out")
    frame = frame.loc[~no_user]
    kwh = pd.to_numeric(frame["kWhDelivered"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(kwh) | (kwh < 0)
    if bad.any():
        raise DataError(f"{path}: {int(bad.sum())} session(s) with missing or negative kWhDelivered")
    stamp = pd.to_datetime(frame["connectionTime"], format=ACN_TIME_FORMAT, utc=True, errors="coerce")
    if stamp.isna().any():
        first = frame["connectionTime"][stamp.isna()].iloc[0]
        raise DataError(
            f"{path}: {int(stamp.isna().sum())} connectionTime value(s) not in RFC-1123 GMT form "
            f"(e.g. {first!r}; expected like 'Sat, 01 May 2021 20:42:47 GMT')"
        )
    zones = frame["timezone"].fillna("America/Los_Angeles") if "timezone" in frame else None
    day = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    for zone in (zones.unique() if zones is not None else ["America/Los_Angeles"]):
        rows = (zones == zone).to_numpy() if zones is not None else slice(None)
        try:
            local = stamp[rows].dt.tz_convert(zone)
        except Exception as exc:  # unknown zone name
            raise DataError(f"{path}: unknown timezone {zone!r} ({exc})") from exc
        day[rows] = local.dt.tz_localize(None).dt.normalize().astype("datetime64[ns]").to_numpy()
    table = pd.DataFrame({"driver": frame["userID"].astype(str).to_numpy(), "day": day.to_numpy(), "kwh": kwh})
    return _finish_needs(table, min_days, str(path), notes)


# ---------------------------------------------------------------------------------------------
# need models (samplers)
# ---------------------------------------------------------------------------------------------
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
        _check_int("n_drivers", self.n_drivers, 1)
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
            _check_int("n_drivers", n_drivers, 1)
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


# ---------------------------------------------------------------------------------------------
# App. B closed form
# ---------------------------------------------------------------------------------------------
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
    from scipy.stats import norm

    _check_int("n_drivers", n_drivers, 1)
    if not 0 < alpha < 1 or not std_kwh > 0:
        raise ConfigError(f"need 0 < alpha < 1 and std_kwh > 0; got alpha={alpha}, std_kwh={std_kwh}")
    n, mu, sd, z = n_drivers, float(mean_kwh), float(std_kwh), float(norm.ppf(alpha))
    ns = n * (mu + sd * z)
    sh = n * mu + sd * math.sqrt(n) * z
    pool = n * sd / math.sqrt(2 * math.pi) + z * sd * math.sqrt(n * (0.5 - 1 / (2 * math.pi)))
    return GaussianClosedForm(n, mu, sd, alpha, ns, sh, 1.0 - sh / ns, pool, n * mu + pool)


# ---------------------------------------------------------------------------------------------
# P-NS
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NonSharedSolution:
    """P-NS: ``capacity_kwh`` ``(N,)`` = each driver's empirical ``α``-quantile (definition (1)).

    epsilon: with probability ``>= 1 - delta`` every driver's true reliability at these capacities
        is within ``epsilon`` of its empirical one (``>= α``), App. C with ``n_samples``.
    """

    capacity_kwh: np.ndarray
    alpha: float
    n_samples: int
    epsilon: float
    delta: float

    @property
    def total_kwh(self) -> float:
        return float(self.capacity_kwh.sum())


def solve_nonshared(samples: np.ndarray, alpha: float, delta: float = 0.01) -> NonSharedSolution:
    """Empirical P-NS solution from ``samples`` ``(m, N)`` kWh: ``x_i = inf{x : F̂_i(x) >= α}``, floored at 0."""
    samples = _check_samples(samples)
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie in (0, 1); got {alpha}")
    m, n = samples.shape
    rank = max(1, int(math.ceil(round(alpha * m, 9))))  # F̂(x_(rank)) = rank/m >= α, rank minimal
    q = np.partition(samples, rank - 1, axis=0)[rank - 1]
    return NonSharedSolution(np.maximum(q, 0.0), float(alpha), m, reliability_epsilon(m, n, delta), float(delta))


# ---------------------------------------------------------------------------------------------
# P-SI scenario program (6)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SharedSolution:
    """A battery configuration with sharing: ``personal_kwh`` ``(N,)`` and ``pool_kwh`` (kWh).

    n_scenarios: scenarios of (6) it satisfies; method: ``"pool"`` or ``"lp"``;
    lp_solves / solver_seconds: LP solves and time inside the solver (0 for ``"pool"``).
    """

    personal_kwh: np.ndarray
    pool_kwh: float
    n_scenarios: int
    method: str
    lp_solves: int = 0
    solver_seconds: float = 0.0

    @property
    def total_kwh(self) -> float:
        return float(self.personal_kwh.sum() + self.pool_kwh)


def scenario_optimum(scenarios: np.ndarray) -> float:
    """Optimal value of (6) for ``scenarios`` ``(m, N)``: ``max_j Σ_i (ξ_ij)^+`` kWh (see module doc)."""
    scenarios = _check_samples(scenarios)
    return float(np.maximum(scenarios, 0.0).sum(axis=1).max())


def max_shortfall(personal_kwh: np.ndarray, scenarios: np.ndarray) -> float:
    """``max_j Σ_i (ξ_ij - x_i)^+`` over ``scenarios`` ``(m, N)``: the smallest feasible pool for ``x``."""
    return float(np.maximum(scenarios - personal_kwh, 0.0).sum(axis=1).max())


class ScenarioLP:
    """The scenario program (6) as a cvxpy LP, built once per ``(n_drivers, capacity)``.

        minimize  s + Σ_i x_i
        s.t.      U >= Ξ - 1 xᵀ,  U >= 0,  U 1 <= s 1,  x >= 0,  s >= 0

    ``Ξ`` is a ``(capacity, N)`` Parameter (DPP: re-solves skip canonicalisation); all scenario
    constraints are one vectorised expression.  :meth:`solve` handles any number ``m`` of scenarios
    by constraint generation: it solves over a working set of at most ``capacity`` scenarios (rows
    beyond the set are zero, hence inactive), adds the most violated of all ``m`` scenarios and
    repeats until every scenario holds; the pool is then set to the exact ``max_j Σ_i (ξ_ij - x_i)^+``.
    The capacity doubles (one rebuild) if the working set outgrows it.
    """

    def __init__(self, n_drivers: int, capacity: int = 128, solver: str = "CLARABEL", batch: int = 32) -> None:
        _check_int("n_drivers", n_drivers, 1)
        _check_int("capacity", capacity, 1)
        self.n_drivers, self.solver, self.batch = n_drivers, solver.upper(), batch
        self.solves, self.solver_seconds = 0, 0.0
        self._build(capacity)

    def _build(self, capacity: int) -> None:
        import cvxpy as cp

        n = self.n_drivers
        self.capacity = capacity
        self._xi = cp.Parameter((capacity, n), nonneg=True, name="scenarios")
        self._x = cp.Variable(n, nonneg=True, name="personal")
        self._s = cp.Variable(nonneg=True, name="pool")
        u = cp.Variable((capacity, n), nonneg=True, name="shortfall")
        constraints = [u >= self._xi - cp.reshape(self._x, (1, n), order="C"), cp.sum(u, axis=1) <= self._s]
        self._problem = cp.Problem(cp.Minimize(self._s + cp.sum(self._x)), constraints)

    def _solve_working(self, rows: np.ndarray) -> np.ndarray:
        import cvxpy as cp

        if rows.shape[0] > self.capacity:
            self._build(1 << int(math.ceil(math.log2(rows.shape[0]))))
        value = np.zeros((self.capacity, self.n_drivers))
        value[: rows.shape[0]] = rows
        self._xi.value = value
        try:
            self._problem.solve(solver=self.solver)
        except cp.error.SolverError as exc:
            raise SolverError(f"{self.solver} failed on the scenario LP ({exc}); try solver='CLARABEL'") from exc
        if self._problem.status not in ("optimal", "optimal_inaccurate") or self._x.value is None:
            raise SolverError(f"{self.solver} returned status {self._problem.status!r} on the scenario LP")
        self.solves += 1
        stats = self._problem.solver_stats
        self.solver_seconds += float(stats.solve_time or 0.0)
        return np.maximum(np.asarray(self._x.value, dtype=float), 0.0)

    def solve(self, scenarios: np.ndarray, warm: np.ndarray | None = None, max_rounds: int = 200) -> tuple[SharedSolution, np.ndarray]:
        """Solve (6) over ``scenarios`` ``(m, N)`` kWh; return the solution and the final working set
        (row indices, usable as ``warm`` for a re-solve on a superset or prefix of the scenarios)."""
        scenarios = np.maximum(_check_samples(scenarios), 0.0)  # x >= 0: negative needs act as zero
        if scenarios.shape[1] != self.n_drivers:
            raise DataError(f"scenarios have {scenarios.shape[1]} drivers; this LP was built for {self.n_drivers}")
        m = scenarios.shape[0]
        totals = scenarios.sum(axis=1)
        solves0, seconds0 = self.solves, self.solver_seconds
        if warm is not None and len(warm):
            working = np.unique(warm[warm < m])
            working = np.union1d(working, [int(totals.argmax())])
        else:
            working = np.sort(np.argsort(-totals, kind="stable")[: min(m, self.batch)])
        tol = 1e-7 * max(1.0, float(totals.max()))
        for _ in range(max_rounds):
            x = self._solve_working(scenarios[working])
            shortfall = np.maximum(scenarios - x, 0.0).sum(axis=1)
            s = float(shortfall[working].max())
            violated = np.flatnonzero(shortfall > s + tol)
            if violated.size == 0:
                break
            worst = violated[np.argsort(-shortfall[violated], kind="stable")[: self.batch]]
            working = np.union1d(working, worst)
        else:
            raise SolverError(f"constraint generation did not converge in {max_rounds} rounds ({m} scenarios)")
        solution = SharedSolution(
            personal_kwh=x,
            pool_kwh=float(shortfall.max()),
            n_scenarios=m,
            method="lp",
            lp_solves=self.solves - solves0,
            solver_seconds=self.solver_seconds - seconds0,
        )
        return solution, working


def solve_scenario_program(
    scenarios: np.ndarray, method: str = "pool", solver: str = "CLARABEL"
) -> SharedSolution:
    """Solve (6) for ``scenarios`` ``(m, N)`` kWh.  ``method="pool"``: ``x = 0``,
    ``s = max_j Σ_i (ξ_ij)^+`` (an optimal vertex); ``"lp"``: :class:`ScenarioLP` with ``solver``."""
    scenarios = _check_samples(scenarios)
    if method == "pool":
        return SharedSolution(np.zeros(scenarios.shape[1]), scenario_optimum(scenarios), scenarios.shape[0], "pool")
    if method == "lp":
        return ScenarioLP(scenarios.shape[1], solver=solver).solve(scenarios)[0]
    raise ConfigError(f"method must be one of {METHODS}; got {method!r}")


# ---------------------------------------------------------------------------------------------
# reliability under allocation rules
# ---------------------------------------------------------------------------------------------
def aggregate_reliability(personal_kwh: np.ndarray, pool_kwh: float, samples: np.ndarray) -> float:
    """Empirical ``P(Σ_i (ξ_i - x_i)^+ <= s)`` over ``samples`` ``(m, N)`` (Alg. 2, line 6)."""
    samples = _check_samples(samples)
    need = np.maximum(samples - np.asarray(personal_kwh, dtype=float), 0.0).sum(axis=1)
    return float(np.mean(need <= pool_kwh * (1 + 1e-12) + 1e-9))


def allocate(
    personal_kwh: np.ndarray,
    pool_kwh: float,
    samples: np.ndarray,
    rule: str,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Pool energy given to each driver, ``(m, N)`` kWh, under ``rule`` for each sample ``(m, N)``.

    proportional: ``s (ξ_i - x_i)^+ / Σ_j (ξ_j - x_j)^+``.
    fcfs: drivers ask in a random order (one permutation per sample, drawn from ``rng``); driver
        ``i`` gets its shortfall iff the shortfalls of everyone up to and including it fit in ``s``.
    utilitarian: as fcfs with drivers ordered by increasing shortfall (ties by index).
    """
    samples = _check_samples(samples)
    shortfall = np.maximum(samples - np.asarray(personal_kwh, dtype=float), 0.0)
    if rule == "proportional":
        total = shortfall.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, shortfall / np.where(total > 0, total, 1.0), 0.0)
        return pool_kwh * share
    if rule == "fcfs":
        if rng is None:
            raise ConfigError("rule 'fcfs' draws a random arrival order: pass rng=np.random.default_rng(seed)")
        order = np.argsort(rng.random(shortfall.shape), axis=1)
    elif rule == "utilitarian":
        order = np.argsort(shortfall, axis=1, kind="stable")
    else:
        raise ConfigError(f"rule must be one of {RULES}; got {rule!r}")
    queued = np.take_along_axis(shortfall, order, axis=1)
    served = np.cumsum(queued, axis=1) <= pool_kwh * (1 + 1e-12) + 1e-9
    out = np.empty_like(shortfall)
    np.put_along_axis(out, order, np.where(served, queued, 0.0), axis=1)
    return out


def satisfied(
    personal_kwh: np.ndarray,
    pool_kwh: float,
    samples: np.ndarray,
    rule: str,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """``(m, N)`` booleans: driver ``i``'s need met in sample ``j`` (``x_i + f_i >= ξ_i``) under ``rule``."""
    samples = _check_samples(samples)
    x = np.asarray(personal_kwh, dtype=float)
    given = allocate(x, pool_kwh, samples, rule, rng)
    shortfall = np.maximum(samples - x, 0.0)
    return given >= shortfall - 1e-9 * np.maximum(1.0, shortfall)


def driver_reliability(
    personal_kwh: np.ndarray,
    pool_kwh: float,
    samples: np.ndarray,
    rule: str,
    rng: np.random.Generator | None = None,
    chunk: int = 20_000,
) -> np.ndarray:
    """Each driver's empirical reliability ``(N,)`` under ``rule`` over ``samples`` ``(m, N)`` kWh.

    The fleet's reliability is the minimum over drivers (App. C); with ``m >= M_eval`` samples it
    is within ``reliability_epsilon(m, N, δ)`` of the truth for all drivers w.p. ``>= 1 - δ``.
    Works in row chunks to bound memory.
    """
    samples = _check_samples(samples)
    hits = np.zeros(samples.shape[1])
    for start in range(0, samples.shape[0], chunk):
        hits += satisfied(personal_kwh, pool_kwh, samples[start : start + chunk], rule, rng).sum(axis=0)
    return hits / samples.shape[0]


# ---------------------------------------------------------------------------------------------
# Algorithms 1 and 2
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchResult:
    """Algorithm 2's output: the solution at the smallest scenario count ``m`` tried whose
    empirical P-SI reliability exceeds ``α`` (or at ``M_sc`` when none does: ``meets_target`` False).

    steps: ``(m, reliability)`` pairs in the order tried.
    """

    solution: SharedSolution
    reliability: float
    meets_target: bool
    max_scenarios: int
    steps: tuple[tuple[int, float], ...]


def binary_search(
    scenarios: np.ndarray,
    evaluation: np.ndarray,
    alpha: float,
    method: str = "pool",
    program: ScenarioLP | None = None,
) -> SearchResult:
    """Algorithm 2: binary search on the number of scenarios of (6).

    scenarios: ``(M_sc, N)`` kWh, used in prefixes ``[:m]``; evaluation: ``(M_eval, N)`` kWh, fresh.
    Solves at ``M_sc`` first (the paper's ``m_hi`` is assumed feasible; we check it), then bisects
    ``(m_lo, m_hi]`` keeping ``m_hi`` the smallest count whose reliability exceeds ``α``.
    ``method="lp"`` needs ``program`` (a :class:`ScenarioLP` for ``N`` drivers; one is built if None).
    """
    scenarios, evaluation = _check_samples(scenarios), _check_samples(evaluation)
    if scenarios.shape[1] != evaluation.shape[1]:
        raise DataError(f"scenarios have {scenarios.shape[1]} drivers, evaluation samples {evaluation.shape[1]}")
    n = scenarios.shape[1]
    if method == "pool":
        running = np.maximum.accumulate(np.maximum(scenarios, 0.0).sum(axis=1))
        eval_totals = np.sort(np.maximum(evaluation, 0.0).sum(axis=1))

        def solve(m: int) -> tuple[SharedSolution, float]:
            pool = float(running[m - 1])
            rel = np.searchsorted(eval_totals, pool * (1 + 1e-12) + 1e-9, side="right") / eval_totals.size
            return SharedSolution(np.zeros(n), pool, m, "pool"), float(rel)

    elif method == "lp":
        program = program or ScenarioLP(n)
        warm: list[np.ndarray | None] = [None]

        def solve(m: int) -> tuple[SharedSolution, float]:
            sol, warm[0] = program.solve(scenarios[:m], warm=warm[0])
            return sol, aggregate_reliability(sol.personal_kwh, sol.pool_kwh, evaluation)

    else:
        raise ConfigError(f"method must be one of {METHODS}; got {method!r}")

    m_hi = scenarios.shape[0]
    best, best_rel = solve(m_hi)
    steps = [(m_hi, best_rel)]
    if best_rel <= alpha:
        return SearchResult(best, best_rel, False, m_hi, tuple(steps))
    m_lo = 1
    while m_hi - m_lo > 1:
        mid = (m_lo + m_hi + 1) // 2
        sol, rel = solve(mid)
        steps.append((mid, rel))
        if rel > alpha:
            m_hi, best, best_rel = mid, sol, rel
        else:
            m_lo = mid
    return SearchResult(best, best_rel, True, scenarios.shape[0], tuple(steps))


@dataclass(frozen=True)
class TrialResult:
    """One trial of Algorithm 1: Algorithm 2's search, the P-NS solution from the same evaluation
    samples, and the relative reduction ``1 - total_shared / total_nonshared``."""

    search: SearchResult
    nonshared: NonSharedSolution
    reduction: float


@dataclass(frozen=True)
class PlanningResult:
    """Algorithm 1's outcome and its check on fresh samples.

    shared / nonshared: configurations of the chosen trial (kWh; ``(N,)`` arrays inside).
    reduction: ``1 - shared.total / nonshared.total`` of the chosen trial.
    reliability_by_rule: rule -> ``(N,)`` per-driver reliability on ``n_check`` fresh samples.
    reliability_aggregate: P-SI event frequency on the fresh samples (a lower bound for every rule).
    reliability_nonshared: ``(N,)`` per-driver ``P̂(ξ_i <= x_i^ns)`` on the same fresh samples.
    check_epsilon: App. C accuracy of these fresh estimates at confidence ``1 - δ``.
    """

    config: PlanningConfig
    n_drivers: int
    chosen_trial: int
    trials: tuple[TrialResult, ...]
    shared: SharedSolution
    nonshared: NonSharedSolution
    reduction: float
    reliability_by_rule: dict
    reliability_aggregate: float
    reliability_nonshared: np.ndarray
    n_eval: int
    n_check: int
    check_epsilon: float
    scenario_bound: int
    seconds: float
    solver_seconds: float
    lp_solves: int = 0
    timings: dict = field(default_factory=dict)

    @property
    def reliability_shared(self) -> float:
        """Worst driver under the worst of the three rules, on fresh samples."""
        return float(min(r.min() for r in self.reliability_by_rule.values()))

    def summary(self) -> dict:
        """JSON-ready record (totals in kWh, per-driver arrays as lists)."""
        reductions = np.array([t.reduction for t in self.trials])
        return {
            "n_drivers": self.n_drivers,
            "alpha": self.config.alpha,
            "capacity_nonshared_kwh": self.nonshared.total_kwh,
            "capacity_shared_kwh": self.shared.total_kwh,
            "personal_kwh": float(self.shared.personal_kwh.sum()),
            "pool_kwh": self.shared.pool_kwh,
            "reduction": self.reduction,
            "reliability_shared": self.reliability_shared,
            "reliability_aggregate": self.reliability_aggregate,
            "reliability_by_rule": {k: float(v.min()) for k, v in self.reliability_by_rule.items()},
            "reliability_nonshared": float(self.reliability_nonshared.min()),
            "reliability_selection": self.trials[self.chosen_trial].search.reliability,
            "meets_target": self.trials[self.chosen_trial].search.meets_target,
            "chosen_trial": self.chosen_trial,
            "n_scenarios": self.shared.n_scenarios,
            "scenario_bound": self.scenario_bound,
            "n_eval": self.n_eval,
            "n_check": self.n_check,
            "check_epsilon": self.check_epsilon,
            "nonshared_epsilon": self.nonshared.epsilon,
            "reduction_by_trial": reductions,
            "reduction_median": float(np.median(reductions)),
            "reduction_quartiles": np.quantile(reductions, [0.25, 0.75]),
            "method": self.shared.method,
            "lp_solves": self.lp_solves,
            "seconds": self.seconds,
            "solver_seconds": self.solver_seconds,
            "timings": self.timings,
            "capacity_nonshared_per_driver_kwh": self.nonshared.capacity_kwh,
            "personal_per_driver_kwh": self.shared.personal_kwh,
            "config": self.config.to_dict(),
        }


def _trial_alphas(
    model: NeedModel,
    alphas: Sequence[float],
    config: PlanningConfig,
    rng: np.random.Generator,
    program: ScenarioLP | None,
    timings: dict,
) -> list[TrialResult]:
    """One trial for several ``α`` sharing its draws: ``M_sc`` for the largest ``α`` (prefixes serve
    the others) and one evaluation set of ``M_eval`` samples."""
    n = model.n_drivers
    m_sc = max(scenario_count(n, a, config.delta, config.scenario_bound) for a in alphas)
    m_eval = eval_sample_count(n, config.eval_epsilon, config.delta)
    t0 = time.perf_counter()
    scenarios = model.sample(rng, m_sc)
    evaluation = model.sample(rng, m_eval)
    t1 = time.perf_counter()
    timings["sampling"] = timings.get("sampling", 0.0) + t1 - t0
    out = []
    for a in alphas:
        m_a = scenario_count(n, a, config.delta, config.scenario_bound)
        search = binary_search(scenarios[:m_a], evaluation, a, config.method, program)
        t2 = time.perf_counter()
        nonshared = solve_nonshared(evaluation, a, config.delta)
        timings["quantiles"] = timings.get("quantiles", 0.0) + time.perf_counter() - t2
        out.append(TrialResult(search, nonshared, 1.0 - search.solution.total_kwh / nonshared.total_kwh))
    timings["search"] = timings.get("search", 0.0) + time.perf_counter() - t1
    return out


def plan_shared_capacity(
    model: NeedModel,
    config: PlanningConfig = PlanningConfig(),
    progress: ProgressFn | None = None,
) -> PlanningResult:
    """Algorithm 1: ``config.trials`` independent trials of Algorithm 2, then the check.

    Keeps the trial with the smallest selection reliability above ``α`` (ties: smaller total; if no
    trial reaches ``α``, the one with the highest reliability), and evaluates it on ``M_eval`` fresh
    samples under the three allocation rules.  Trial ``t`` uses the ``t``-th child of
    ``SeedSequence(config.seed)``, so results do not depend on the order trials run in.
    ``progress(k)`` is called after each trial with ``k`` trials done.
    """
    start = time.perf_counter()
    n = model.n_drivers
    children = np.random.SeedSequence(config.seed).spawn(config.trials + 1)
    program = ScenarioLP(n, solver=config.solver) if config.method == "lp" else None
    timings: dict = {}
    trials = []
    for t in range(config.trials):
        trials.extend(_trial_alphas(model, [config.alpha], config, np.random.default_rng(children[t]), program, timings))
        if progress is not None:
            progress(t + 1)
    key = []
    for t, trial in enumerate(trials):
        s = trial.search
        key.append((0, s.reliability, s.solution.total_kwh, t) if s.meets_target else (1, -s.reliability, s.solution.total_kwh, t))
    chosen = min(range(len(trials)), key=lambda t: key[t])
    best = trials[chosen]
    t0 = time.perf_counter()
    check_rng = np.random.default_rng(children[-1])
    m_check = eval_sample_count(n, config.eval_epsilon, config.delta)
    fresh = model.sample(check_rng, m_check)
    x, s = best.search.solution.personal_kwh, best.search.solution.pool_kwh
    by_rule = {rule: driver_reliability(x, s, fresh, rule, check_rng) for rule in RULES}
    aggregate = aggregate_reliability(x, s, fresh)
    nonshared_rel = (fresh <= best.nonshared.capacity_kwh).mean(axis=0)
    timings["check"] = time.perf_counter() - t0
    return PlanningResult(
        config=config,
        n_drivers=n,
        chosen_trial=chosen,
        trials=tuple(trials),
        shared=best.search.solution,
        nonshared=best.nonshared,
        reduction=best.reduction,
        reliability_by_rule=by_rule,
        reliability_aggregate=aggregate,
        reliability_nonshared=nonshared_rel,
        n_eval=eval_sample_count(n, config.eval_epsilon, config.delta),
        n_check=m_check,
        check_epsilon=reliability_epsilon(m_check, n, config.delta),
        scenario_bound=scenario_count(n, config.alpha, config.delta, config.scenario_bound),
        seconds=time.perf_counter() - start,
        solver_seconds=program.solver_seconds if program is not None else 0.0,
        lp_solves=program.solves if program is not None else 0,
        timings=timings,
    )


# ---------------------------------------------------------------------------------------------
# reduction against N and α (Fig. 3)
# ---------------------------------------------------------------------------------------------
def reduction_sweep(
    model_factory: Callable[[int, np.random.Generator], NeedModel],
    n_drivers: Iterable[int],
    alphas: Sequence[float] = (0.75, 0.85, 0.95),
    config: PlanningConfig = PlanningConfig(),
    progress: ProgressFn | None = None,
) -> pd.DataFrame:
    """Relative reduction for each ``N``, ``α`` and trial (Algorithm 2 per trial, as in Fig. 3).

    model_factory(N, rng) builds the need model of a trial (e.g. a fresh draw of ``N`` ACN drivers),
    so the band covers both sampling and which drivers are pooled.  For each (N, trial) the draws
    are shared across ``alphas``.  Returns one row per (n_drivers, alpha, trial) with columns
    ``reduction``, ``reliability``, ``meets_target``, ``shared_kwh``, ``nonshared_kwh``, ``n_scenarios``.
    """
    n_values = [int(v) for v in n_drivers]
    for a in alphas:
        PlanningConfig(alpha=a)  # validates
    rows = []
    done = 0
    for k, n in enumerate(n_values):
        children = np.random.SeedSequence([config.seed, k]).spawn(config.trials)
        program = ScenarioLP(n, solver=config.solver) if config.method == "lp" else None
        for t in range(config.trials):
            rng = np.random.default_rng(children[t])
            model = model_factory(n, rng)
            for a, trial in zip(alphas, _trial_alphas(model, list(alphas), config, rng, program, {})):
                rows.append(
                    {
                        "n_drivers": n,
                        "alpha": a,
                        "trial": t,
                        "reduction": trial.reduction,
                        "reliability": trial.search.reliability,
                        "meets_target": trial.search.meets_target,
                        "shared_kwh": trial.search.solution.total_kwh,
                        "nonshared_kwh": trial.nonshared.total_kwh,
                        "n_scenarios": trial.search.solution.n_scenarios,
                    }
                )
            done += 1
            if progress is not None:
                progress(done)
    return pd.DataFrame(rows)


def summarise_sweep(frame: pd.DataFrame) -> pd.DataFrame:
    """Median, quartiles and deciles of the reduction per (alpha, n_drivers)."""
    g = frame.groupby(["alpha", "n_drivers"])["reduction"]
    return pd.DataFrame(
        {
            "median": g.median(),
            "q25": g.quantile(0.25),
            "q75": g.quantile(0.75),
            "q10": g.quantile(0.10),
            "q90": g.quantile(0.90),
            "trials": g.size(),
        }
    ).reset_index()


def plot_reduction(frame: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Fig. 3-style plot: reduction (%) against N per α, median line with interquartile band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = summarise_sweep(frame)
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for a, part in stats.groupby("alpha"):
        line = ax.plot(part["n_drivers"], 100 * part["median"], "--", marker="o", ms=3, label=f"α = {a:g}")
        ax.fill_between(part["n_drivers"], 100 * part["q25"], 100 * part["q75"], color=line[0].get_color(), alpha=0.25)
        ax.fill_between(part["n_drivers"], 100 * part["q10"], 100 * part["q90"], color=line[0].get_color(), alpha=0.10)
    ax.set_xlabel("number of drivers N")
    ax.set_ylabel("reduction in total battery capacity (%)")
    ax.set_title(title or "Capacity reduction through sharing (median, IQR, IDR)")
    ax.grid(alpha=0.3)
    ax.legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; got {value!r}")


def _check_samples(samples: np.ndarray) -> np.ndarray:
    arr = np.asarray(samples, dtype=float)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise DataError(f"need samples of shape (n_samples, n_drivers) with both >= 1; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataError(f"samples contain {int((~np.isfinite(arr)).sum())} NaN/inf value(s); drop or impute them")
    return arr
