"""Gymnasium environment over the log-replay simulator: ``drbalance/Balancing-v0``.

Importing this module registers ``drbalance/Balancing-v0`` (idempotent), so
``gymnasium.make("drbalance/Balancing-v0")`` works with no arguments on the bundled NYC data.

One step is one decision slot of :class:`drbalance.sim.Simulator` (15 min by default).

Observation
    ``Box(0, high, shape=(4, n), float32)``; rows, per region ``i`` (bounds: ``N`` EVs for rows 0-1,
    :data:`DEMAND_CAP` for row 2, the largest plug count for row 3):

    0. vacant EVs above the low-battery threshold ``V_i``;
    1. low-battery vacant EVs ``L_i``;
    2. forecast requests of the coming slot (the estimates' point forecast, trained on days strictly
       before the replayed day: no look-ahead);
    3. free plugs ``max(p_i - o_i, 0)`` (``o_i`` = plugs occupied, queued for, or being driven to).

Action
    ``Box(0, 1, shape=(n,), float32)``: a *target distribution* of the vacant EVs over regions.  It is
    normalised inside (an all-zero action means "keep the current distribution": no vacant move);
    the target counts ``T = round(share * ΣV)`` (largest remainder) are reached by a transport-like
    rule: surplus regions (``V_i > T_i``) give to deficit regions (``V_j < T_j``), all donor/receiver
    pairs within ``reach_km`` taken nearest first (ties: lower donor, then lower receiver index), each
    moving ``min(surplus, deficit)``.  Deficits no donor can reach stay unfilled.  Low-battery EVs are
    not controlled by the agent: each goes to the nearest free plug (:func:`drbalance.policies.charge_moves`).

Reward (per slot ``k``, after the slot has been simulated)
    ``w_m * u_m + w_c * u_c - w_km * km``, where ``u_m`` is the slot's mobility fairness (by default
    ``u_m_all``, which counts regions left without vacant EVs, so that emptying regions cannot pay;
    ``mobility="u_m"`` takes the paper's ``u_m``), ``u_c`` the charging fairness and ``km`` the
    balancing km (vacant + charging moves) of the slot.  An undefined fairness value (no vacant EV
    anywhere) counts as ``-n``.  ``info`` reports every term.

How stepping works
    The environment drives a :class:`drbalance.sim.SimRun` (``Simulator.start()``), the simulator's
    public stepping interface: ``reset`` starts a run and reads the first decision state, ``step``
    passes the slot's moves to :meth:`SimRun.step`, which simulates up to the next decision.  One
    thread, no hand-off: an episode is deterministic given the seed.

Reference agents
    :func:`run_policy_episode` plays any :class:`drbalance.policies.Policy` (``greedy``, the ``dr``
    :class:`drbalance.controller.Controller`, ...) through the environment, passing its moves directly
    with :meth:`BalancingEnv.step_moves` (bypassing the action conversion) and returns the total reward
    -- the numbers an RL agent's return is compared with.  :func:`reference_policy` builds them.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import gymnasium
import numpy as np
import pandas as pd
from gymnasium import spaces

from data_pipeline.estimates import EstimateConfig
from data_pipeline.readers import read_tlc_trips
from drbalance import datasets, metrics
from drbalance.config import MODES
from drbalance.errors import ConfigError, DataError
from drbalance.policies import EstimatesForecast, Moves, as_moves, charge_moves, make_policy
from drbalance.rounding import largest_remainder
from drbalance.sim.config import SimConfig
from drbalance.study import Study
from drbalance.study_config import EvaluationSettings, StudyConfig

ENV_ID = "drbalance/Balancing-v0"
#: Upper bound of the forecast-demand row of the observation (requests per slot and region; clipped).
DEMAND_CAP = 1.0e4


@functools.lru_cache(maxsize=4)
def bundled_study(config: StudyConfig) -> Study:
    """The :class:`drbalance.study.Study` of ``config`` on the bundled NYC green-taxi data (cached:
    environments with equal settings share it)."""
    ev = config.evaluation
    months = sorted({p.strftime("%Y-%m") for p in pd.date_range(ev.train[0], max(ev.days), freq="D")})
    zones = datasets.load_nyc_zones()
    ing = read_tlc_trips(datasets.nyc_green_trip_files(tuple(months)), zones, period=(ev.train[0], max(ev.days)))
    return Study.from_trips(ing.frame, zones, config)


def target_moves(state, target, distance_km: np.ndarray, reach_km: float) -> Moves:
    """Integer vacant moves taking ``state.vacant`` towards the target distribution ``target``.

    ``target`` (n,) non-negative weights (normalised here; all zeros = no move).  Target counts are the
    largest-remainder rounding of ``share * ΣV``; surplus is sent to deficits over the pairs within
    ``reach_km`` (km), nearest pair first, each carrying ``min(surplus, deficit)`` EVs.
    """
    V = np.asarray(state.vacant, np.int64)
    n = len(V)
    a = np.asarray(target, float).reshape(-1)
    if a.shape != (n,):
        raise DataError(f"target distribution has shape {a.shape}, expected ({n},)")
    if not np.isfinite(a).all():
        raise DataError("target distribution holds NaN or infinite values")
    a = np.maximum(a, 0.0)
    total = int(V.sum())
    if a.sum() <= 0 or total == 0:
        return Moves.empty()
    T = largest_remainder(a, total)
    surplus = np.maximum(V - T, 0)
    deficit = np.maximum(T - V, 0)
    W = np.asarray(distance_km, float)
    i, j = np.nonzero((surplus[:, None] > 0) & (deficit[None, :] > 0) & (W <= reach_km))
    if not len(i):
        return Moves.empty()
    order = np.lexsort((j, i, W[i, j]))
    o_l, d_l, c_l = [], [], []
    for a_, b_ in zip(i[order], j[order]):
        c = min(surplus[a_], deficit[b_])
        if c > 0:
            surplus[a_] -= c
            deficit[b_] -= c
            o_l.append(a_)
            d_l.append(b_)
            c_l.append(c)
    return Moves(o_l, d_l, c_l, np.full(len(c_l), "vacant", object))


class BalancingEnv(gymnasium.Env):
    """Rebalancing an electric MoD fleet, one decision slot per step (see the module docstring).

    The observation returned with ``terminated=True`` repeats the last decision state (no decision
    follows it).  The study behind it (regions, estimates, chargers) is :attr:`study`.

    Parameters
    ----------
    regions : coarsened regions ``n`` of the bundled NYC green-taxi zones (demand-weighted k-means).
    fleet : EVs ``N``.
    day : replayed day (``YYYY-MM-DD``, bundled data: Jan-Mar 2021), after ``train``.
    hours : length of the replayed window from midnight + ``start_hour`` (h); a whole number of slots.
    start_hour : window start (h after midnight); the requests before it are not replayed.
    train : ``(first, last)`` training days of the estimates (forecasts, reference controller).
    slot_minutes, horizon : decision slot (min) and the estimates' window ``K`` (slots).
    w_m, w_c, w_km : reward weights of mobility fairness, charging fairness and balancing km (per km).
    mobility : ``"u_m_all"`` (default) or ``"u_m"``.
    reach_km : vacant-EV reach (km) of the target-distribution rule and of the reference agents
        (default 10 km, the study default `balancing.reach_km`; coarsened regions lie further
        apart than one slot of driving); None: one slot at ``speed_kmh``.
    speed_kmh, plugs_per_vehicle : simulator settings (empty-driving speed; plugs sited per EV).
    seed : default seed (fleet draw, region coarsening, estimates' bootstrap).
    """

    metadata = {"render_modes": []}

    def __init__(self, regions: int = 10, fleet: int = 200, day: str = "2021-03-02", hours: float = 3.0,
                 start_hour: float = 6.0, train: tuple[str, str] = ("2021-02-01", "2021-02-28"),
                 slot_minutes: int = 15, horizon: int = 3, w_m: float = 1.0, w_c: float = 1.0, w_km: float = 0.01,
                 mobility: str = "u_m_all", reach_km: float = 10.0, speed_kmh: float = 20.0,
                 plugs_per_vehicle: float = 0.1, seed: int = 0, n_bootstrap: int = 50) -> None:
        if mobility not in ("u_m_all", "u_m"):
            raise ConfigError(f"mobility must be 'u_m_all' or 'u_m', got {mobility!r}")
        for name, val in (("w_m", w_m), ("w_c", w_c), ("w_km", w_km)):
            if not (np.isfinite(val) and val >= 0):
                raise ConfigError(f"reward weight {name} must be a finite number >= 0, got {val}")
        minutes = int(round(hours * 60))
        start_min = int(round(start_hour * 60))
        if minutes <= 0 or minutes % slot_minutes or start_min % slot_minutes or start_min + minutes > 1440:
            raise ConfigError(f"hours={hours} from start_hour={start_hour} must be a positive whole number of "
                              f"{slot_minutes}-min slots inside the day")
        config = StudyConfig(
            slot_minutes=slot_minutes, horizon=horizon, seed=seed,
            estimate=EstimateConfig(n_bootstrap=n_bootstrap),
            sim=SimConfig(fleet_size=fleet, speed_kmh=speed_kmh),
            evaluation=EvaluationSettings(train=(str(train[0]), str(train[1])), days=(str(day),),
                                          regions=regions or 0, plugs_per_vehicle=plugs_per_vehicle))
        self.study = bundled_study(config)
        self.zones, self.regions, self.estimates = self.study.zones, self.study.regions, self.study.estimates
        self.sim_config = self.study.config.sim
        self.sim = self.study.simulator(day, start_minute=start_min, minutes=minutes)
        self.n = self.regions.n
        self.weights = {"w_m": float(w_m), "w_c": float(w_c), "w_km": float(w_km)}
        self.mobility = mobility
        self.reach_km = speed_kmh * slot_minutes / 60.0 if reach_km is None else float(reach_km)
        self.forecast = EstimatesForecast(self.estimates)
        self._demand = self.sim.requests.counts(slot_minutes, self.n, "origin")
        self.seed = int(seed)
        high = np.empty((4, self.n), np.float32)
        high[:2] = fleet
        high[2] = DEMAND_CAP
        high[3] = float(self.sim.plugs.max())
        self.observation_space = spaces.Box(np.zeros_like(high), high, dtype=np.float32)
        self.action_space = spaces.Box(0.0, 1.0, shape=(self.n,), dtype=np.float32)
        self._run = None
        self.state = None
        self.t = None
        self.slot = 0
        self.result = None

    # ----------------------------------------------------------------------------- episode control
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start a new episode; ``seed`` reseeds the fleet draw (initial positions and SoC).

        Without a seed the fleet seed is drawn from the environment's generator (first reset: ``seed``
        of the constructor).  Returns ``(observation, info)``.
        """
        super().reset(seed=self.seed if (seed is None and self._np_random is None) else seed)
        fleet_seed = int(self.np_random.integers(0, 2**31 - 1))
        self.sim.config = dataclasses.replace(self.sim_config, seed=fleet_seed)
        self._run = self.sim.start()
        self.result = None
        self.slot = 0
        if self._run.done:
            raise ConfigError("the replayed window holds no decision slot")
        self.state, self.t = self._run.state(), self._run.t
        return self._observation(), {"t": str(self.t), "slot": 0, "fleet_seed": fleet_seed}

    def close(self) -> None:
        self._run = None

    # ----------------------------------------------------------------------------- steps
    def _observation(self) -> np.ndarray:
        s = self.state
        r, _ = self.forecast(self.t)
        free = np.maximum(s.plugs - s.occupied, 0.0)
        return np.stack([s.vacant, s.low_battery, np.clip(r, 0.0, DEMAND_CAP), free]).astype(np.float32)

    def action_to_moves(self, action) -> Moves:
        """The integer moves an action stands for in the current state (target rule + charging rule)."""
        a = np.asarray(action, float).reshape(-1)
        if a.shape != (self.n,):
            raise DataError(f"action has shape {a.shape}, expected ({self.n},): a target share per region")
        vacant = target_moves(self.state, np.clip(a, 0.0, None), self.regions.distance_km, self.reach_km)
        return Moves.concat([charge_moves(self.state, self.regions.distance_km, self.sim.low_battery_reach_km),
                             vacant])

    def step(self, action):
        """Apply a target distribution for one slot; returns ``(obs, reward, terminated, truncated, info)``."""
        if self.state is None:
            raise ConfigError("call reset() before step()")
        return self.step_moves(self.action_to_moves(action))

    def step_moves(self, moves) -> tuple:
        """Apply integer moves (a :class:`Moves`, :class:`drbalance.state.Plan` or what ``as_moves`` takes)
        directly for one slot, bypassing the action conversion (reference agents use this)."""
        if self._run is None or self.state is None:
            raise ConfigError("the episode is over or not started; call reset()")
        moves = as_moves(moves, "agent")
        k = self.slot
        try:
            done = self._run.step(moves)
        except Exception:
            self._run, self.state = None, None   # the run cannot go on after a refused decision
            raise
        info = self._slot_info(k)
        info["moves"] = int(moves.count[moves.origin != moves.destination].sum())
        reward = info["reward"]
        if not done:
            self.state, self.t, self.slot = self._run.state(), self._run.t, k + 1
            return self._observation(), reward, False, False, info
        self.result = self._run.result()
        obs = self._observation()
        self.state = None
        info["summary"] = self.result.summary
        return obs, reward, True, False, info

    def _slot_info(self, k: int) -> dict:
        """Reward terms of slot ``k`` from the run's own counters (complete once the slot is simulated)."""
        rec, slot = self._run.slot_record(k), self.sim_config.slot_minutes
        fair = metrics.mobility_fairness(self._demand[k:k + 1], rec["vacant_after"][None, :])
        u_c = float(metrics.charging_fairness(rec["charging_minutes"][None, :] / slot, self.sim.plugs)[0])
        u_m = float(fair[self.mobility][0])
        km = rec["km_move"] + rec["km_charge_move"]
        wm, wc, wk = self.weights["w_m"], self.weights["w_c"], self.weights["w_km"]
        u_m_r = u_m if np.isfinite(u_m) else -float(self.n)
        u_c_r = u_c if np.isfinite(u_c) else -float(self.n)
        reward = wm * u_m_r + wc * u_c_r - wk * km
        return {"slot": k, "t": str(self.t), "u_m": u_m, "u_c": u_c, "km": km, "reward": float(reward),
                "requests": int(self._demand[k].sum())}


# ----------------------------------------------------------------------------------- reference agents

def reference_policy(env, name: str = "greedy"):
    """A reference agent for ``env`` (a :class:`BalancingEnv`, wrapped or not).

    ``name``: ``noop``, ``greedy`` (demand/supply greedy on the env's estimates) or an optimiser mode
    ``nominal``, ``demand_robust``, ``dr`` (a :class:`drbalance.controller.Controller` with the greedy
    fallback, horizon of the env's estimates).
    """
    e = env.unwrapped
    if name in ("noop", "greedy"):
        return make_policy(name, e.sim, e.estimates, reach_km=e.reach_km)
    if name in MODES:
        low = min(e.study.config.balancing.low_battery_reach_km, e.reach_km)
        bal = dataclasses.replace(e.study.config.balancing, mode=name, reach_km=e.reach_km, low_battery_reach_km=low)
        return e.study.controller(balancing=bal, fallback=make_policy("greedy", e.sim, e.estimates), name=name)
    raise ConfigError(f"unknown reference agent {name!r}; choose noop, greedy, nominal, demand_robust or dr")


@dataclass
class Episode:
    """Outcome of :func:`run_policy_episode`: ``total_reward``, per-slot ``rewards`` (frame of the step
    infos) and the simulator's ``result`` (:class:`drbalance.sim.SimResult`)."""

    total_reward: float
    rewards: pd.DataFrame
    result: object


def run_policy_episode(env, policy, seed: int | None = None) -> Episode:
    """Play one episode with a :class:`drbalance.policies.Policy` (its moves go straight to
    :meth:`BalancingEnv.step_moves`); returns an :class:`Episode` (``total_reward`` is the sum of the
    per-slot rewards, comparable with an RL agent's undiscounted return on the same seed)."""
    e = env.unwrapped
    e.reset(seed=seed)
    infos, done = [], False
    while not done:
        _, _, done, _, info = e.step_moves(policy.plan(e.state, e.t))
        infos.append({k: v for k, v in info.items() if k != "summary"})
    frame = pd.DataFrame(infos)
    return Episode(float(frame["reward"].sum()), frame, e.result)


def register() -> None:
    """Register ``drbalance/Balancing-v0`` with Gymnasium (idempotent)."""
    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="drbalance.adapters.gym:BalancingEnv")


register()

__all__ = ["ENV_ID", "BalancingEnv", "Episode", "reference_policy", "register", "run_policy_episode", "target_moves"]
