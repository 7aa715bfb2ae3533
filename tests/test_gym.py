"""Gymnasium environment drbalance/Balancing-v0: env checker, stepping, reward, reference agents."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium", reason="the Gymnasium adapter needs `pip install gymnasium`")
import drbalance.adapters.gym as G  # noqa: E402
from drbalance.errors import ConfigError  # noqa: E402
from drbalance.policies import Moves  # noqa: E402
from drbalance.state import FleetState  # noqa: E402


@pytest.fixture(scope="module")
def env():
    e = gymnasium.make(G.ENV_ID)    # no arguments: the bundled NYC data
    yield e
    e.close()


def test_registered_idempotently_and_passes_env_checker(env):
    from gymnasium.utils.env_checker import check_env

    G.register()
    G.register()
    assert G.ENV_ID in gymnasium.registry
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no checker warning either (bounded spaces, float32, ...)
        warnings.filterwarnings("ignore", message=".*symmetric and normalized Box action space.*")
        check_env(env.unwrapped, skip_render_check=True)


def test_episode_shapes_determinism_and_termination(env):
    u = env.unwrapped
    obs, info = env.reset(seed=3)
    assert obs.shape == (4, u.n) and obs.dtype == np.float32 and env.observation_space.contains(obs)
    assert obs[0].sum() + obs[1].sum() <= u.sim_config.fleet_size
    np.testing.assert_array_equal(obs[3], np.maximum(u.sim.plugs - u.state.occupied, 0))
    infos, steps, done = [], 0, False
    rng = np.random.default_rng(0)
    while not done:
        obs, r, done, trunc, info = env.step(rng.random(u.n).astype(np.float32))
        assert np.isfinite(r) and not trunc
        infos.append(info)
        steps += 1
    assert steps == u.sim.n_slots == 12          # 3 hours of 15-min slots
    assert info["summary"]["served"] + info["summary"]["unserved"] == info["summary"]["requests"]
    with pytest.raises(ConfigError, match="reset"):
        env.step(np.ones(u.n, np.float32))
    # per-slot reward terms equal the simulator's own per-slot metrics
    slots = u.result.slots
    km = (slots.km_vacant_moves + slots.km_charge_moves).to_numpy()
    assert km.sum() > 0
    np.testing.assert_allclose([i["km"] for i in infos], km)
    np.testing.assert_allclose([i["u_c"] for i in infos], slots.u_c.to_numpy())
    np.testing.assert_allclose([i["u_m"] for i in infos], slots.u_m_all.to_numpy())
    w = u.weights
    np.testing.assert_allclose([i["reward"] for i in infos],
                               w["w_m"] * slots.u_m_all + w["w_c"] * slots.u_c - w["w_km"] * km)
    # same seed, same actions -> same episode; another seed -> another fleet
    obs_a, _ = env.reset(seed=3)
    obs_b, _ = env.reset(seed=4)
    obs_c, _ = env.reset(seed=3)
    np.testing.assert_array_equal(obs_a, obs_c)
    assert not np.array_equal(obs_a, obs_b)


def test_target_distribution_rule():
    W = np.array([[0.0, 1.0, 4.0], [1.0, 0.0, 2.0], [4.0, 2.0, 0.0]])
    s = FleetState([6, 0, 0], [0, 0, 0], [1, 1, 1], [0, 0, 0])
    m = G.target_moves(s, [1, 1, 1], W, reach_km=5.0)
    got = {(int(o), int(d)): int(c) for o, d, c in zip(m.origin, m.destination, m.count)}
    assert got == {(0, 1): 2, (0, 2): 2}
    # out of reach: region 2 is not served, nothing is trimmed from elsewhere
    m = G.target_moves(s, [1, 1, 1], W, reach_km=1.5)
    assert {(int(o), int(d)): int(c) for o, d, c in zip(m.origin, m.destination, m.count)} == {(0, 1): 2}
    # nearest donors first: region 1 gets its EV from region 0 (1 km), not from region 2 (2 km)
    s = FleetState([2, 0, 2], [0, 0, 0], [1, 1, 1], [0, 0, 0])
    m = G.target_moves(s, [1, 2, 1], W, reach_km=5.0)
    assert {(int(o), int(d)): int(c) for o, d, c in zip(m.origin, m.destination, m.count)} == {(0, 1): 1, (2, 1): 1}
    assert len(G.target_moves(s, [0, 0, 0], W, 5.0)) == 0       # all-zero action: no move
    assert len(G.target_moves(s, [1, 0, 1], W, 5.0)) == 0       # already there


def test_reward_weights(env):
    u = env.unwrapped
    e2 = G.BalancingEnv(w_m=0.0, w_c=0.0, w_km=1.0)
    try:
        _, info = e2.reset(seed=1)
        _, r, *_ , info = e2.step(np.r_[1.0, np.zeros(u.n - 1)].astype(np.float32))   # all towards region 0
        assert info["km"] > 0 and r == pytest.approx(-info["km"])
    finally:
        e2.close()
    with pytest.raises(ConfigError):
        G.BalancingEnv(w_km=-1.0)
    with pytest.raises(ConfigError):
        G.BalancingEnv(hours=0.1)


def test_reference_agents_run_through_the_env(env):
    eps = {name: G.run_policy_episode(env, G.reference_policy(env, name), seed=1) for name in ("noop", "greedy", "dr")}
    for name, ep in eps.items():
        assert np.isfinite(ep.total_reward), name
        assert len(ep.rewards) == 12
        assert ep.total_reward == pytest.approx(ep.rewards.reward.sum())
        s = ep.result.summary
        assert s["served"] + s["unserved"] == s["requests"]
    assert eps["noop"].rewards.km.sum() == pytest.approx(eps["noop"].result.summary["balancing_km"])
    # the optimiser actually rebalances through the env, and the run equals a plain simulator run
    assert eps["dr"].rewards.km.sum() > 0
    u = env.unwrapped
    ref = u.sim.run(G.reference_policy(env, "greedy"))   # same fleet seed as the last reset (seed=1 draw)
    assert ref.summary["served"] == eps["greedy"].result.summary["served"]


def test_bad_moves_surface_in_the_caller_and_end_the_episode(env):
    u = env.unwrapped
    env.reset(seed=2)
    too_many = int(u.state.vacant[0]) + 1
    with pytest.raises(ConfigError, match="moves are never trimmed|only"):
        u.step_moves(Moves([0], [1], [too_many], ["vacant"]))
    with pytest.raises(ConfigError, match="reset"):
        u.step_moves(Moves.empty())
    obs, _ = env.reset(seed=2)          # a fresh episode runs normally afterwards
    assert env.observation_space.contains(obs)
    env.close()
    assert u._run is None  # close() drops the run (no thread to stop any more)
