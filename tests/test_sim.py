"""Tests of the EV fleet log-replay simulator (issue 3): conservation, log recomputation, determinism,
validation of policy moves, metrics by hand, CLI contract.  Fast tests use a few hours of the bundled
NYC green-taxi data on coarsened regions with small fleets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_pipeline.estimates import EstimateConfig, Estimates
from data_pipeline.panels import trip_panels
from data_pipeline.readers import read_tlc_trips
from data_pipeline.regions import RegionMap
from drbalance import datasets
from drbalance.errors import ConfigError, DataError
from drbalance.metrics import charging_fairness, mobility_fairness, recompute_from_events
from drbalance.policies import (EstimatesForecast, GreedyPolicy, Moves, NoopPolicy, Policy, as_moves, make_policy)
from drbalance.sim import ChargingConfig, PlugSiting, Requests, SimConfig, Simulator
from drbalance.sim.chargers import largest_remainder
from drbalance.sim.fleet import group_rank

DAY = "2021-03-02"


@pytest.fixture(scope="module")
def zones():
    return datasets.load_nyc_zones()


@pytest.fixture(scope="module")
def march(zones):
    """Accepted trips 2021-02-23 .. 2021-03-02 of the bundled files (training week + the simulated day)."""
    files = datasets.nyc_green_trip_files(("2021-02", "2021-03"))
    return read_tlc_trips(files, zones, period=("2021-02-23", DAY)).frame


@pytest.fixture(scope="module")
def regions(zones, march):
    full = RegionMap.from_zones(zones, 1.33)
    r = full.region_of(march["pickup_zone"].to_numpy())
    return full.coarsen(20, np.bincount(r[r >= 0], minlength=full.n).astype(float), random_state=0)


def small_sim(march, regions, zones, *, fleet=60, hours=6, soc=0.7, low=0.2, plugs_total=6, seed=0, **kw):
    cfg = SimConfig(fleet_size=fleet, seed=seed, initial_soc_mean=soc, charging=ChargingConfig(low_soc=low), **kw)
    return Simulator.from_trips(march, regions, DAY, cfg, siting=PlugSiting(total=plugs_total), zones=zones,
                                minutes=int(hours * 60))


def check_against_log(sim, res):
    """Conservation + every summary metric recomputed from the event log alone."""
    s = res.summary
    N = sim.config.fleet_size
    rc = recompute_from_events(res.events, sim.regions.n, N, sim.plugs, sim.config.slot_minutes, sim.n_slots,
                               s["end_minute"], sim.config.patience_minutes)
    # every request ends served or unserved, exactly once
    assert s["served"] + s["unserved"] == s["requests"] == len(sim.requests)
    ev = res.events
    per_req = ev[ev["event_name"].isin(["pickup", "expire"])].groupby("request").size()
    assert len(per_req) == len(sim.requests) and (per_req == 1).all()
    assert set(res.requests["outcome"]) <= {"served", "unserved"}
    # vehicles never created or lost: N in some status at every minute, and at the end
    assert rc["vehicles_per_minute"] == (N, N)
    assert s["vehicles_end"] == N == len(res.final_status)
    assert res.slots.filter(regex="^mean_").sum(axis=1).to_numpy() == pytest.approx(N)
    # energy never negative along any vehicle's history; final energies agree with the log
    assert rc["energy_min"] >= -1e-9
    np.testing.assert_allclose(rc["final_energy"], res.final_energy, atol=1e-9)
    assert (res.final_energy >= 0).all() and (res.final_energy <= sim.config.battery_kwh + 1e-9).all()
    for key, value in rc["summary"].items():
        assert value == pytest.approx(s[key], nan_ok=True, rel=1e-9, abs=1e-9), key
    for col in rc["slots"].columns:
        np.testing.assert_allclose(rc["slots"][col].to_numpy(float), res.slots[col].to_numpy(float),
                                   atol=1e-9, err_msg=col)
    return rc


@pytest.mark.parametrize("policy", ["noop", "oracle_counts"])
def test_conservation_and_log_recompute_with_charging_queues(march, regions, zones, policy):
    # low initial SoC, high threshold and few plugs: EVs go low, queue, charge, unplug during the window
    sim = small_sim(march, regions, zones, fleet=60, hours=8, soc=0.32, low=0.3, plugs_total=4)
    res = sim.run(make_policy(policy, sim))
    rc = check_against_log(sim, res)
    s = res.summary
    assert s["charging_sessions"] > 0 and s["energy_charged_kwh"] > 0
    assert s["charge_queue_mean_min"] > 0, "few plugs must make EVs queue"
    assert s["balancing_km_charge"] > 0
    assert s["served"] > 0 and s["unserved"] > 0
    # the per-region E never exceeds the plugs
    assert (rc["E"] <= sim.plugs[None, :] + 1e-9).all()
    # idle time and eVMT are consistent
    assert 0 < s["evmt_share"] < 1
    assert s["idle_vehicle_minutes"] == pytest.approx(res.slots["idle_vehicle_minutes"].sum())


def test_greedy_with_estimates_conserves_and_moves(march, regions, zones):
    sim = small_sim(march, regions, zones, fleet=80, hours=6)
    train = march[march["pickup_time"] < pd.Timestamp(DAY)]
    panels = trip_panels(train, regions, "2021-02-23", "2021-03-01", 15)
    est = Estimates.fit(panels, regions, EstimateConfig(slot_minutes=15))
    res = sim.run(make_policy("greedy", sim, est))
    check_against_log(sim, res)
    assert res.summary["balancing_km_vacant"] > 0
    assert res.summary["policy"] == "greedy"


def test_same_seed_same_hash_other_seed_differs(march, regions, zones):
    a = small_sim(march, regions, zones, seed=3)
    b = small_sim(march, regions, zones, seed=3)
    c = small_sim(march, regions, zones, seed=4)
    ha = a.run(make_policy("oracle_counts", a)).frame_hash()
    assert ha == b.run(make_policy("oracle_counts", b)).frame_hash()
    assert ha == a.run(make_policy("oracle_counts", a)).frame_hash()  # a simulator can be rerun
    assert ha != c.run(make_policy("oracle_counts", c)).frame_hash()


def test_initial_fleet_follows_early_demand_and_soc(march, regions, zones):
    sim = small_sim(march, regions, zones, fleet=4000, hours=2)
    res = sim.run(NoopPolicy(regions.distance_km, sim.low_battery_reach_km))
    s = res.summary
    assert s["initial_soc_mean"] == pytest.approx(0.70, abs=0.005)
    assert s["initial_soc_sd"] == pytest.approx(0.05, abs=0.005)
    init = res.events[res.events["event_name"] == "init"]
    share = np.bincount(init["region"], minlength=regions.n) / 4000
    early = np.bincount(sim.requests.origin[sim.requests.arrival < 60], minlength=regions.n)
    np.testing.assert_allclose(share, early / early.sum(), atol=0.03)
    assert (share[early == 0] == 0).all()


def test_unreachable_plugs_strand_vehicles_without_negative_energy(march, regions, zones):
    # every plug in one region; EVs start with 3 % SoC (9 km of range at 60 kWh, 0.2 kWh/km)
    plugs = np.zeros(regions.n, np.int64)
    j = int(np.argmax(regions.distance_km.sum(axis=1)))
    plugs[j] = 3
    req = Requests.from_trips(march, regions, DAY, 240, zones=zones)
    cfg = SimConfig(fleet_size=50, initial_soc_mean=0.03, initial_soc_sd=0.0)
    sim = Simulator(req, regions, plugs, cfg)
    res = sim.run(make_policy("noop", sim))
    rc = check_against_log(sim, res)
    init = res.events[res.events["event_name"] == "init"]
    reach = init["kwh"].to_numpy() / 0.2
    expected = int((regions.distance_km[init["region"].to_numpy(), j] > reach + 1e-9).sum())
    assert expected > 0
    assert res.summary["stranded"] == expected
    assert rc["energy_min"] >= 0


class FixedMoves:
    """Test policy: given moves at the first boundary, nothing afterwards."""

    name = "fixed"

    def __init__(self, moves):
        self._moves = moves
        self.calls = 0

    def plan(self, state, t):
        self.calls += 1
        self.state = state if self.calls == 1 else getattr(self, "state", None)
        return self._moves if self.calls == 1 else Moves.empty()


def test_moves_pick_highest_soc_and_cost_km(march, regions, zones):
    sim = small_sim(march, regions, zones, fleet=200, hours=1)
    probe = sim.run(FixedMoves(Moves.empty()))
    init = probe.events[probe.events["event_name"] == "init"]
    counts = np.bincount(init["region"], minlength=regions.n)
    a = int(np.argmax(counts))
    b = int(np.argsort(regions.distance_km[a])[1])
    k = 3
    pol = FixedMoves(Moves([a, a], [b, a], [k, counts[a] - k], ["vacant", "vacant"]))
    res = sim.run(pol)
    assert isinstance(pol, Policy)
    assert pol.state.vacant[a] == counts[a] and pol.state.vacant.sum() == 200
    mv = res.events[res.events["event_name"] == "move"]
    assert len(mv) == k and (mv["origin"] == a).all() and (mv["region"] == b).all()
    assert mv["km"].sum() == pytest.approx(k * regions.distance_km[a, b])
    assert res.summary["balancing_km_vacant"] == pytest.approx(k * regions.distance_km[a, b])
    e0 = init.set_index("vehicle")["kwh"]
    in_a = e0[init.set_index("vehicle")["region"] == a]
    assert set(mv["vehicle"]) == set(in_a.sort_values(ascending=False).index[:k])
    check_against_log(sim, res)


def test_overdrawn_moves_raise_naming_policy_and_region(march, regions, zones):
    sim = small_sim(march, regions, zones, fleet=30, hours=1)
    bad = FixedMoves(Moves([0], [1], [31], ["vacant"]))
    with pytest.raises(ConfigError, match=r"policy 'fixed'.*moves 31 vacant EVs out of region 0.*only \d+"):
        sim.run(bad)
    with pytest.raises(ConfigError, match="low-battery"):
        sim.run(FixedMoves(Moves([0], [0], [1], ["charge"])))
    noplug = int(np.flatnonzero(sim.plugs == 0)[0])
    with pytest.raises(ConfigError, match="no plug"):
        sim.run(FixedMoves(Moves([0], [noplug], [1], ["charge"])))
    with pytest.raises(ConfigError, match="not a region position"):
        sim.run(FixedMoves(Moves([0], [regions.n], [1], ["vacant"])))
    with pytest.raises(DataError):
        Moves([0], [1], [-1], ["vacant"])
    with pytest.raises(DataError):
        Moves([0], [1], [1.5], ["vacant"])
    with pytest.raises(DataError):
        Moves([0], [1], [1], ["teleport"])


def test_plan_like_answers_are_accepted():
    from drbalance.state import Plan

    plan = Plan("nominal", np.array([[0, 0], [0, 1]]), np.array([[1, 1]]), np.zeros((1, 2)), np.zeros((1, 1)),
                np.array([2, 1]), np.array([1]), np.zeros((1, 2)), np.zeros((1, 2)), 0.0, {}, "x", "ok", 0, 0)
    mv = as_moves(plan, "p")
    assert mv.total("vacant") == 1 and mv.total("charge") == 1   # Plan.moves() omits the vacant stay 0 -> 0
    assert list(mv.kind) == ["vacant", "charge"]

    class WithMethod:
        def moves(self):
            return Moves([1], [2], [3], ["vacant"])

    assert as_moves(WithMethod()).total("vacant") == 3
    with pytest.raises(ConfigError, match="policy 'p'"):
        as_moves(42, "p")


def test_mobility_and_charging_fairness_by_hand():
    D = np.array([[4.0, 2.0, 3.0, 0.0]])
    V = np.array([[2.0, 2.0, 0.0, 1.0]])
    out = mobility_fairness(D, V)
    ref = 9.0 / 5.0
    assert out["u_m"][0] == pytest.approx(-(abs(2 - ref) + abs(1 - ref) + abs(0 - ref)))
    assert out["zero_supply_regions"][0] == 1 and out["zero_supply_requests"][0] == 3
    assert out["u_m_all"][0] == pytest.approx(-(abs(2 - ref) + abs(1 - ref) + abs(3 - ref) + abs(0 - ref)))
    assert np.isnan(mobility_fairness(np.ones((1, 2)), np.zeros((1, 2)))["u_m"][0])
    assert mobility_fairness(np.array([[2.0, 4.0]]), np.array([[1.0, 2.0]]))["u_m"][0] == 0.0
    E = np.array([[1.0, 0.0, 5.0]])
    C = np.array([2.0, 2.0, 0.0])  # region without plugs is left out of u_c
    assert charging_fairness(E, C)[0] == pytest.approx(-(abs(0.5 - 0.25) + abs(0 - 0.25)))


def test_requests_impute_zero_and_absurd_distances(march, regions, zones):
    req = Requests.from_trips(march, regions, DAY, 1440, zones=zones)
    day = march[(march["pickup_time"] >= DAY) & (march["pickup_time"] < pd.Timestamp(DAY) + pd.Timedelta(days=1))]
    assert len(req) + req.outside_regions == len(day)
    assert (np.diff(req.arrival) >= 0).all()
    assert (req.km > 0).all() and np.isfinite(req.km).all()
    zero = (day["distance_km"] == 0).sum()
    assert req.imputed.sum() >= zero > 0
    kept = ~req.imputed
    assert (req.km[kept] <= 100 * np.maximum(req.duration[kept], 1) / 60 + 1.0).all()


def test_estimates_forecast_refuses_lookahead(march, regions):
    train = march[march["pickup_time"] < pd.Timestamp(DAY)]
    panels = trip_panels(train, regions, "2021-02-23", "2021-03-01", 15)
    fc = EstimatesForecast(Estimates.fit(panels, regions, EstimateConfig(slot_minutes=15)))
    r, s = fc(pd.Timestamp(DAY) + pd.Timedelta(hours=8))
    assert r.shape == (regions.n,) and s.shape == (regions.n,) and r.sum() > 0
    with pytest.raises(ConfigError, match="strictly before"):
        fc(pd.Timestamp("2021-03-01 08:00"))


def test_greedy_sends_vacant_evs_into_forecast_deficits():
    W = np.array([[0.0, 2.0, 50.0], [2.0, 0.0, 50.0], [50.0, 50.0, 0.0]])
    from drbalance.state import FleetState

    state = FleetState(np.array([5, 0, 0]), np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([0, 0, 0]))
    pol = GreedyPolicy(W, lambda t: (np.array([1.0, 2.0, 3.0]), None), reach_km=5.0, low_reach_km=60.0)
    mv = pol.plan(state, pd.Timestamp(DAY))
    vac = mv.to_frame().query("kind == 'vacant'")
    # region 1 (reachable, demand 2) gets 2 EVs; region 0 keeps >= its own demand; region 2 is out of reach
    assert vac[["origin", "destination", "count"]].values.tolist() == [[0, 1, 2]]
    ch = mv.to_frame().query("kind == 'charge'")
    assert ch[["origin", "destination", "count"]].values.tolist() == [[2, 1, 1]]


def test_helpers():
    assert largest_remainder(np.array([1.0, 1.0, 1.0]), 4).tolist() == [2, 1, 1]
    assert largest_remainder(np.array([0.0, 3.0, 1.0]), 8).tolist() == [0, 6, 2]
    assert group_rank(np.array([0, 0, 1, 3, 3, 3])).tolist() == [0, 1, 0, 0, 1, 2]
    with pytest.raises(ConfigError):
        ChargingConfig(low_soc=0.5, target_soc=0.4)
    with pytest.raises(ConfigError):
        SimConfig(slot_minutes=7)


def test_cli_contract(tmp_path):
    from drbalance.cli import main

    files = [str(p) for p in datasets.nyc_green_trip_files(("2021-02", "2021-03"))]
    out = tmp_path / "out"
    js = tmp_path / "s.json"
    rc = main(["simulate", *files, "--zones", str(datasets.nyc_zone_lookup()), "--day", DAY, "--fleet", "80",
               "--policy", "greedy", "--seed", "0", "--json", str(js), "--regions", "15", "--hours", "4",
               "--train", "2021-02-16:2021-03-01", "--out", str(out)])
    assert rc == 0
    s = json.loads(js.read_text())
    for key in ("requests", "served", "unserved", "u_m_mean", "u_c_mean", "balancing_km", "stranded", "seconds"):
        assert key in s
    assert s["served"] + s["unserved"] == s["requests"] > 0
    assert s["n_regions"] == 15 and s["config"]["train"] == ["2021-02-16", "2021-03-01"]
    for name in ("slots.parquet", "events.parquet", "requests.parquet", "region_slots.parquet", "config.json",
                 "fairness.png", "served_rate.png", "fleet_state.png"):
        assert (out / name).is_file(), name
    slots = pd.read_parquet(out / "slots.parquet")
    assert len(slots) == 16 and slots["requests"].sum() == s["requests"]
    # look-ahead is refused
    assert main(["simulate", *files, "--day", DAY, "--fleet", "10", "--policy", "greedy",
                 "--train", "2021-02-20:2021-03-02", "--json", str(js)]) == 1


@pytest.mark.slow
def test_full_day_thousand_evs_greedy_under_20_seconds(shared_data):
    import time

    from drbalance.commands.simulate import simulate_day

    from drbalance.cli import build_parser

    folder = shared_data / "nyc_tlc_green_2021q1"
    args = build_parser().parse_args(["simulate", str(folder / "green_tripdata_2021-02.parquet"),
                                      str(folder / "green_tripdata_2021-03.parquet"), "--day", DAY, "--fleet", "1000",
                                      "--policy", "greedy", "--regions", "0"])
    t0 = time.perf_counter()
    summary, res = simulate_day(args)
    assert time.perf_counter() - t0 <= 20.0
    assert summary["served"] + summary["unserved"] == summary["requests"] > 2000


class RandomMoves:
    """Valid random moves of every kind (vacant and charge, any distance): stresses conservation,
    energy refusals, redirections and queues."""

    name = "random"

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def plan(self, state, t):
        n = state.n
        o, d, c, k = [], [], [], []
        plug_regions = np.flatnonzero(state.plugs > 0)
        for i in range(n):
            v = int(state.vacant[i])
            if v:
                take = int(self.rng.integers(0, v + 1))
                o.append(i), d.append(int(self.rng.integers(n))), c.append(take), k.append("vacant")
            low = int(state.low_battery[i])
            if low:
                o.append(i), d.append(int(self.rng.choice(plug_regions))), c.append(low), k.append("charge")
        return Moves(o, d, c, k) if o else Moves.empty()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), fleet=st.integers(5, 60), soc=st.floats(0.05, 0.6),
       plugs_total=st.integers(1, 8))
def test_property_random_policies_conserve_everything(march, regions, zones, seed, fleet, soc, plugs_total):
    sim = small_sim(march, regions, zones, fleet=fleet, hours=3, soc=soc, low=0.25, plugs_total=plugs_total,
                    seed=seed)
    res = sim.run(RandomMoves(seed))
    check_against_log(sim, res)


def test_vacant_move_beyond_range_is_refused_and_logged(march, regions, zones):
    # 1 kWh/km and 27 % of 60 kWh: about 16 km of range, so long moves must be refused, never half-driven
    sim = small_sim(march, regions, zones, fleet=100, hours=1, soc=0.27, low=0.25, consumption_kwh_per_km=1.0)
    probe = sim.run(FixedMoves(Moves.empty()))
    init = probe.events[probe.events["event_name"] == "init"]
    a = int(np.bincount(init["region"], minlength=regions.n).argmax())
    b = int(np.argmax(regions.distance_km[a]))
    idle_a = init[(init["region"] == a) & (init["status"] == 0)]
    pol = FixedMoves(Moves([a], [b], [len(idle_a)], ["vacant"]))
    res = sim.run(pol)
    need = 1.0 * (regions.distance_km[a, b] + sim.plug_km[b])
    expected = int((idle_a["kwh"] < need).sum())
    assert expected > 0
    assert res.summary["moves_refused_energy"] == expected
    refused = res.events[res.events["event_name"] == "refused"]
    assert set(refused["vehicle"]) == set(idle_a.loc[idle_a["kwh"] < need, "vehicle"])
    assert (refused["target"] == b).all() and (refused["region"] == a).all()
    check_against_log(sim, res)
