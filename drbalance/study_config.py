"""One typed configuration tree for a study: :class:`StudyConfig`, loadable from and dumpable to TOML.

A study (``drbalance evaluate``, ``simulate``, ``estimate``, the Gymnasium environment, ...) needs
estimates, a balancing problem, a controller, a simulator and the evaluation protocol.  Their settings
live in their own classes, each field declared once with its default and validated on construction:

* :class:`data_pipeline.estimates.EstimateConfig`  (``[estimate]``)
* :class:`drbalance.config.BalancingConfig`        (``[balancing]``)
* :class:`drbalance.config.ControllerConfig`       (``[controller]``)
* :class:`drbalance.sim.SimConfig`                 (``[sim]``, with ``[sim.charging]``)
* :class:`EvaluationSettings`                      (``[evaluation]``)

:class:`StudyConfig` composes them and owns the three values they share -- ``slot_minutes``,
``horizon`` and ``seed`` -- which are written once, at the top of the TOML file, and pushed into
the parts.  TOML keys that are not fields raise :class:`ConfigError` naming the key.

Python 3.11+ reads TOML with :mod:`tomllib`; Python 3.10 with the ``tomli`` package (a dependency
there).  Writing uses ``tomli_w``.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tomli_w

from data_pipeline.estimates import EstimateConfig
from drbalance.config import BalancingConfig, ControllerConfig
from drbalance.errors import ConfigError
from drbalance.io import write_text_atomic
from drbalance.sim.config import ChargingConfig, SimConfig
from drbalance.validation import (check_choice, check_date, check_int, check_number, check_period,
                                  check_slot_minutes, check_horizon)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: Policies a study can compare.
POLICIES = ("noop", "greedy", "nominal", "saa", "demand_robust", "dr", "oracle")
#: the policies compared by default (``oracle`` reads the replayed day's realised requests: opt in)
DEFAULT_POLICIES = ("noop", "greedy", "nominal", "saa", "demand_robust", "dr")
OPTIMISERS = ("nominal", "saa", "demand_robust", "dr")
#: balancing fields an optimiser may override per policy in ``[evaluation.weights.<policy>]``
WEIGHT_FIELDS = ("lost_request_km", "charge_queue_km", "beta1", "beta2")


@dataclass(frozen=True)
class EvaluationSettings:
    """What an evaluation replays and how the city is prepared (the ``[evaluation]`` table).

    Attributes
    ----------
    train : ``(start, end)`` ISO dates, both inclusive: the days the estimates are fitted on.
    days : ISO dates replayed (held out: each strictly after ``train``'s end); empty (the default)
        for studies that replay nothing (``estimate``); :func:`drbalance.evaluation.evaluate` needs some.
    policies : policies compared on identical requests, fleet draws and chargers.
    regions : coarsen the located zones into this many demand-weighted k-means regions (0 = keep every
        zone).
    hours : length of each replay from midnight (hours, a whole number of slots, at most 24).
    circuity : road distance / straight-line distance between zone centroids, a number >= 1, or
        ``"auto"`` (estimated from the training trips' metered distances).
    plugs_per_vehicle : chargers sited per EV in proportion to training pick-ups (NYC has no charger data).
    fleet_sizing : ``"fixed"`` (replay ``sim.fleet_size`` EVs) or ``"auto"`` (the fleet with which the
        training weekdays average ``trips_per_ev`` trips per EV per day; ``drbalance evaluate``'s default).
    trips_per_ev : target trips per EV per day of ``fleet_sizing = "auto"`` (> 0; default 15).
    seeds : fleet-draw seeds (``SimConfig.seed``); every (day, seed) pair replays every policy on
        identical requests, fleet draw and chargers.  Empty (the default): the study's ``seed`` only.
    baseline : the policy the others are compared with, pair by pair (must be among ``policies``);
        None (the default): ``nominal`` when compared, else the first policy.
    estimates : ``"fixed"`` (fitted once on ``train``) or ``"rolling:N"`` (refitted for every replayed
        day on the N >= 2 calendar days strictly before it).
    workers : Dask worker processes (one thread each) for the (day, seed, policy) replays; 0 (the
        default) replays in this process.  Results are identical apart from timings.
    scheduler : address of an existing Dask scheduler (e.g. ``tcp://10.0.0.5:8786``; ``workers`` is then
        ignored), or None.
    weights : per-optimiser weights overriding ``[balancing]`` for that policy only, e.g.
        ``{"dr": {"lost_request_km": 40.0}, "nominal": {"lost_request_km": 10.0}}`` (TOML
        ``[evaluation.weights.dr]``): each mode at the weights ``drbalance tune`` chose for it on the training
        period (``drbalance evaluate --tuned tuned.json``).  Keys: :data:`WEIGHT_FIELDS`.
    """

    train: tuple[str, str] = ("2021-01-01", "2021-02-28")
    days: tuple[str, ...] = ()
    policies: tuple[str, ...] = DEFAULT_POLICIES
    regions: int = 20
    hours: float = 24.0
    circuity: float | str = "auto"
    plugs_per_vehicle: float = 0.1
    fleet_sizing: str = "fixed"
    trips_per_ev: float = 15.0
    seeds: tuple[int, ...] = ()
    baseline: str | None = None
    estimates: str = "fixed"
    workers: int = 0
    scheduler: str | None = None
    weights: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 - frozen dataclass
        set_("train", check_period("evaluation.train", self.train))
        days = (self.days,) if isinstance(self.days, str) else tuple(self.days)
        set_("days", tuple(check_date("evaluation.days", d) for d in days))
        early = [d for d in self.days if d <= self.train[1]]
        if early:
            raise ConfigError(f"evaluation.days {early} are not after the training period ending {self.train[1]} "
                              "(no look-ahead: evaluate on held-out days only)")
        pol = (self.policies,) if isinstance(self.policies, str) else tuple(self.policies)
        unknown = [p for p in pol if p not in POLICIES]
        if unknown or not pol:
            raise ConfigError(f"evaluation.policies: unknown {unknown}; choose from {', '.join(POLICIES)}")
        if len(set(pol)) != len(pol):
            raise ConfigError(f"evaluation.policies repeat: {pol}")
        set_("policies", pol)
        check_int("evaluation.regions", self.regions, low=0)
        check_number("evaluation.hours", self.hours, low=0, high=24, low_open=True)
        if isinstance(self.circuity, str):
            check_choice("evaluation.circuity", self.circuity, ("auto",))
        else:
            check_number("evaluation.circuity", self.circuity, low=1)
        check_number("evaluation.plugs_per_vehicle", self.plugs_per_vehicle, low=0, low_open=True)
        check_choice("evaluation.fleet_sizing", self.fleet_sizing, ("fixed", "auto"))
        check_number("evaluation.trips_per_ev", self.trips_per_ev, low=0, low_open=True)
        seeds = (self.seeds,) if not isinstance(self.seeds, (tuple, list)) else tuple(self.seeds)
        set_("seeds", tuple(check_int("evaluation.seeds", s, low=0) for s in seeds))
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"evaluation.seeds repeat: {self.seeds}; give each seed once")
        if self.baseline is not None and self.baseline not in pol:
            raise ConfigError(f"evaluation.baseline {self.baseline!r} is not among the compared policies "
                              f"{', '.join(pol)}; add it to the policies or choose one of them")
        rolling_days(self.estimates)
        check_int("evaluation.workers", self.workers, low=0)
        if self.scheduler is not None and (not isinstance(self.scheduler, str) or not self.scheduler.strip()
                                           or any(c.isspace() for c in self.scheduler)):
            raise ConfigError(f"evaluation.scheduler must be a Dask scheduler address such as "
                              f"tcp://host:8786, got {self.scheduler!r}")
        if not isinstance(self.weights, dict):
            raise ConfigError(f"evaluation.weights must be a table policy -> {{field: value}}, got {self.weights!r}")
        clean = {}
        for name, table in self.weights.items():
            if name not in OPTIMISERS or not isinstance(table, dict):
                raise ConfigError(f"evaluation.weights: {name!r} must be an optimiser ({', '.join(OPTIMISERS)}) "
                                  "with a table of weights")
            bad = sorted(set(table) - set(WEIGHT_FIELDS))
            if bad:
                raise ConfigError(f"evaluation.weights.{name}: unknown {bad}; known: {', '.join(WEIGHT_FIELDS)}")
            clean[name] = {k: check_number(f"evaluation.weights.{name}.{k}", v, low=0) for k, v in table.items()}
        set_("weights", clean)

    def __hash__(self) -> int:   # ``weights`` is a dict (a TOML table): hash its items
        return hash(tuple((f.name, _freeze(getattr(self, f.name))) for f in dataclasses.fields(self)))

    @property
    def minutes(self) -> int:
        """Replay length in whole minutes."""
        return int(round(self.hours * 60))

    @property
    def baseline_policy(self) -> str:
        """The resolved baseline: ``baseline``, else ``nominal`` when compared, else the first policy."""
        if self.baseline is not None:
            return self.baseline
        return "nominal" if "nominal" in self.policies else self.policies[0]

    @property
    def rolling_days(self) -> int | None:
        """N of ``estimates = "rolling:N"`` (None for ``"fixed"``)."""
        return rolling_days(self.estimates)


def rolling_days(value) -> int | None:
    """Parse an ``evaluation.estimates`` value: ``"fixed"`` -> None, ``"rolling:N"`` -> N (a whole number
    >= 2); anything else raises :class:`ConfigError` naming the field and the accepted forms."""
    if value == "fixed":
        return None
    head, _, n = str(value).partition(":") if isinstance(value, str) else ("", "", "")
    if head == "rolling" and n.isdigit() and int(n) >= 2:
        return int(n)
    raise ConfigError(f"evaluation.estimates must be 'fixed' or 'rolling:N' with N >= 2 whole days "
                      f"(e.g. rolling:28), got {value!r}")


#: The values every part shares, owned by :class:`StudyConfig`: (study field, part, part field).
SHARED = (("slot_minutes", "estimate", "slot_minutes"), ("slot_minutes", "balancing", "slot_minutes"),
          ("slot_minutes", "sim", "slot_minutes"), ("horizon", "estimate", "horizon"),
          ("horizon", "balancing", "horizon"), ("seed", "estimate", "random_state"), ("seed", "sim", "seed"))
PARTS = {"estimate": EstimateConfig, "balancing": BalancingConfig, "controller": ControllerConfig,
         "sim": SimConfig, "evaluation": EvaluationSettings}


@dataclass(frozen=True)
class StudyConfig:
    """Every setting of a study, each declared once (see the module docstring).

    Attributes
    ----------
    slot_minutes : decision slot length in minutes (5..60 dividing a day; default 15), shared by the
        estimates, the balancing problem and the simulator.
    horizon : look-ahead ``K`` in slots (default 4), shared by the estimates and the balancing problem.
    seed : seed of every random draw (region coarsening, bootstrap radii, fleet draw; default 0).
    estimate, balancing, controller, sim, evaluation : the parts.  A shared value set inside a part
        must equal the study's (or be left at the part's default, which the study then replaces).
    """

    slot_minutes: int = 15
    horizon: int = 4
    seed: int = 0
    estimate: EstimateConfig = field(default_factory=EstimateConfig)
    balancing: BalancingConfig = field(default_factory=BalancingConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)

    def __post_init__(self) -> None:
        check_slot_minutes(self.slot_minutes)
        check_horizon(self.horizon, self.slot_minutes)
        check_int("seed", self.seed, low=0)
        for name, cls in PARTS.items():
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(f"{name} must be a {cls.__name__}, got {type(getattr(self, name)).__name__}")
        updates: dict[str, dict] = {}
        for mine, part, theirs in SHARED:
            obj = getattr(self, part)
            have, want = getattr(obj, theirs), getattr(self, mine)
            default = _default(type(obj), theirs)
            if have != want and have != default:
                raise ConfigError(f"{part}.{theirs} = {have!r} conflicts with the study's {mine} = {want!r}; "
                                  f"set {mine} once, on StudyConfig (top of the TOML file)")
            if have != want:
                updates.setdefault(part, {})[theirs] = want
        for part, changes in updates.items():
            object.__setattr__(self, part, dataclasses.replace(getattr(self, part), **changes))
        hours = self.evaluation.hours
        if abs(hours * 60 - round(hours * 60)) > 1e-9 or round(hours * 60) % self.slot_minutes:
            raise ConfigError(f"evaluation.hours = {hours:g} is not a whole number of {self.slot_minutes}-min slots; "
                              f"use a multiple of {self.slot_minutes / 60:g} h")

    # ------------------------------------------------------------------ conveniences
    def replace(self, **changes) -> "StudyConfig":
        """A copy with top-level fields or whole parts replaced (validated again)."""
        return dataclasses.replace(self, **changes)

    def with_values(self, values: dict) -> "StudyConfig":
        """A copy with dotted keys set, e.g. ``{"balancing.beta1": 2.0, "seed": 1}`` (unknown keys raise)."""
        tree = self.to_dict()
        for key, value in values.items():
            node, parts = tree, key.split(".")
            for p in parts[:-1]:
                if not isinstance(node.get(p), dict):
                    raise ConfigError(f"unknown configuration section {p!r} in {key!r}")
                node = node[p]
            node[parts[-1]] = value
        return StudyConfig.from_dict(tree)

    # ------------------------------------------------------------------ dict / TOML
    def to_dict(self) -> dict:
        """Nested plain dict (None values kept); shared values only at the top level."""
        out = {"slot_minutes": self.slot_minutes, "horizon": self.horizon, "seed": self.seed}
        owned = {(part, theirs) for _, part, theirs in SHARED}
        for name in PARTS:
            out[name] = {k: v for k, v in _to_plain(getattr(self, name)).items() if (name, k) not in owned}
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "StudyConfig":
        """Build from a nested dict as :meth:`to_dict` returns (missing keys take their defaults)."""
        if not isinstance(data, dict):
            raise ConfigError(f"a study configuration must be a table, got {type(data).__name__}")
        top = {k: v for k, v in data.items() if k not in PARTS}
        unknown = sorted(set(top) - {"slot_minutes", "horizon", "seed"})
        if unknown:
            raise ConfigError(f"unknown top-level configuration key(s) {unknown}; known: slot_minutes, horizon, "
                              f"seed and the tables {', '.join(PARTS)}")
        owned = {(part, theirs): mine for mine, part, theirs in SHARED}
        parts = {}
        for name, klass in PARTS.items():
            section = data.get(name, {})
            if not isinstance(section, dict):
                raise ConfigError(f"[{name}] must be a table, got {section!r}")
            clash = [k for k in section if (name, k) in owned]
            if clash:
                raise ConfigError(f"[{name}] sets {clash[0]!r}; set {owned[(name, clash[0])]} once at the top level")
            parts[name] = _from_plain(klass, section, name)
        return cls(**top, **parts)

    def to_toml(self, path: str | Path | None = None) -> str:
        """The configuration as TOML text (every field, None values left out); written to ``path`` if given."""
        text = _HEADER + tomli_w.dumps(drop_none(self.to_dict()))
        if path is not None:
            write_text_atomic(path, text)
        return text

    @classmethod
    def from_toml(cls, path_or_text: str | Path) -> "StudyConfig":
        """Load a TOML file (a path) or TOML text (a string holding a newline or ``=``)."""
        text = str(path_or_text)
        if isinstance(path_or_text, Path) or ("\n" not in text and "=" not in text):
            p = Path(path_or_text)
            if not p.is_file():
                raise ConfigError(f"configuration file {p} not found")
            try:
                text = p.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"configuration file {p}: cannot read it as TOML text ({exc})") from None
            where = str(p)
        else:
            where = "TOML text"
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: not valid TOML ({exc})") from None
        return cls.from_dict(data)


_HEADER = "# drbalance study configuration (StudyConfig); every field, see examples/study.toml for comments\n"


def _default(cls, name: str):
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def _freeze(value):
    """A hashable stand-in for a configuration value (dicts and lists become sorted tuples)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _to_plain(obj) -> dict:
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            v = _to_plain(v)
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, tuple):
            v = [list(x) if isinstance(x, tuple) else x for x in v]
        elif isinstance(v, np.generic):
            v = v.item()
        out[f.name] = v
    return out


def drop_none(d: dict) -> dict:
    """``d`` without None values, recursively (TOML has no null)."""
    return {k: (drop_none(v) if isinstance(v, dict) else v) for k, v in d.items() if v is not None}


def _from_plain(cls, data: dict, where: str):
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"[{where}] has unknown key(s) {unknown}; known: {', '.join(known)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for k, v in data.items():
        t = hints.get(k)
        if dataclasses.is_dataclass(t) and isinstance(v, dict):
            v = _from_plain(t, v, f"{where}.{k}")
        elif isinstance(v, list):
            v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        kwargs[k] = v
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(f"{where}.") or msg.startswith("evaluation.")
                          else f"[{where}] {msg}") from None
    except TypeError as exc:
        raise ConfigError(f"[{where}] {exc}") from None


__all__ = ["EvaluationSettings", "OPTIMISERS", "POLICIES", "StudyConfig", "ChargingConfig"]
