"""Charging-strategy rules of the simulator (issue 7, MATH.md section 5): each rule triggers exactly when
its condition holds, on a tiny hand-built world (3 regions, a few EVs, SoC drawn with sd 0)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_pipeline.regions import RegionMap
from drbalance.errors import ConfigError
from drbalance.policies import Moves, NoopPolicy
from drbalance.sim import ChargingConfig, Requests, SimConfig, Simulator
from drbalance.sim.chargers import MI_KM, fleet_capacities, fleet_mix_from_ranges, kwh_per_km
from drbalance.sim.log import EVENT_CODES

START = pd.Timestamp("2021-03-02 00:00")
W = np.array([[0.0, 2.0, 5.0], [2.0, 0.0, 4.0], [5.0, 4.0, 0.0]])


class Idle:
    """A policy that never moves anything (so only the strategy rules send EVs to charge)."""

    name = "idle"

    def plan(self, state, t):
        return Moves.empty()


def world():
    return RegionMap(region_ids=np.arange(3), names=np.array(["a", "b", "c"]), lat=np.zeros(3), lon=np.zeros(3),
                     distance_km=W, zone_ids=np.arange(3), zone_region=np.arange(3))


def requests(arrivals=(), origin=0, dest=0, km=1.0, duration=5, minutes=120):
    a = np.asarray(arrivals, np.int64)
    m = len(a)
    if m == 0:   # one far-away request at the end keeps every EV in region 0 (initial-position weights)
        a = np.array([minutes - 1])
        m = 1
    return Requests(start=START, minutes=minutes, arrival=a,
                    pickup_time=(START + pd.to_timedelta(a, unit="min")).to_numpy(),
                    origin=np.full(m, origin, np.int64), destination=np.full(m, dest, np.int64),
                    km=np.full(m, float(km)), duration=np.full(m, duration, np.int64), imputed=np.zeros(m, bool),
                    row=np.arange(m))


def run(charging, plugs=(1, 0, 0), fleet=1, soc=0.5, req=None, policy=None, **kw):
    cfg = SimConfig(fleet_size=fleet, seed=0, battery_kwh=30.0, consumption_kwh_per_km=0.2, initial_soc_mean=soc,
                    initial_soc_sd=0.0, patience_minutes=kw.pop("patience", 3), charging=charging, **kw)
    sim = Simulator(req if req is not None else requests(), world(), np.asarray(plugs), cfg)
    return sim, sim.run(policy or Idle())


def events(res, name):
    ev = res.events
    return ev[ev["event"] == EVENT_CODES[name]]


# ---------------------------------------------------------------------------------- min SoC / min range
@pytest.mark.parametrize("min_range_km,low", [(0.0, False), (44.0, False), (45.0, True), (60.0, True)])
def test_min_absolute_range_marks_low_exactly_at_threshold(min_range_km, low):
    # 0.3 * 30 kWh = 9 kWh = 45 km at 0.2 kWh/km; low_soc 0.2 -> 6 kWh alone would not make it low
    _, res = run(ChargingConfig(low_soc=0.2, min_range_km=min_range_km), soc=0.3)
    init = events(res, "init")
    assert (init["status"].to_numpy()[0] == 1) == low      # 1 = low_battery


@pytest.mark.parametrize("soc,low", [(0.2, True), (0.21, False)])
def test_min_soc_threshold(soc, low):
    _, res = run(ChargingConfig(low_soc=0.2), soc=soc)
    assert (events(res, "init")["status"].to_numpy()[0] == 1) == low


# ---------------------------------------------------------------------------------- self-dispatch
def test_self_dispatch_sends_low_evs_at_once_and_only_when_on():
    _, off = run(ChargingConfig(low_soc=0.2), soc=0.15, plugs=(0, 1, 0))
    assert len(events(off, "charge_move")) == 0 and off.summary["charging_trips"] == 0
    _, on = run(ChargingConfig(low_soc=0.2, self_dispatch=True), soc=0.15, plugs=(0, 1, 0))
    cm = events(on, "charge_move")
    assert cm["minute"].tolist() == [0] and cm["target"].tolist() == [1]
    assert on.summary["triggered_self_dispatch"] == 1 and on.summary["charging_trips"] == 1


# ---------------------------------------------------------------------------------- idle-time trigger
def test_idle_trigger_fires_at_exactly_idle_minutes():
    _, res = run(ChargingConfig(idle_minutes=20), soc=0.5, plugs=(0, 1, 0))
    cm = events(res, "charge_move")
    assert cm["minute"].tolist()[0] == 20            # idle since minute 0: not at 19, at 20
    assert res.summary["triggered_idle"] >= 1


def test_idle_trigger_needs_soc_below_target():
    _, res = run(ChargingConfig(idle_minutes=20, target_soc=0.8), soc=0.85, plugs=(0, 1, 0))
    assert len(events(res, "charge_move")) == 0 and res.summary["triggered_idle"] == 0


def test_idle_trigger_off_by_default():
    _, res = run(ChargingConfig(), soc=0.5, plugs=(0, 1, 0))
    assert len(events(res, "charge_move")) == 0


# ---------------------------------------------------------------------------------- opportunistic
def test_opportunistic_fires_when_free_plug_within_reach_and_soc_below():
    _, res = run(ChargingConfig(opportunistic_soc=0.6, opportunistic_km=3.0), soc=0.5, plugs=(0, 1, 0))
    cm = events(res, "charge_move")
    assert cm["minute"].tolist()[:1] == [0] and cm["target"].tolist()[:1] == [1]   # region b at 2 km
    assert res.summary["triggered_opportunistic"] >= 1


@pytest.mark.parametrize("soc,plugs,km", [(0.65, (0, 1, 0), 3.0),   # SoC not below 60 %
                                          (0.5, (0, 0, 1), 3.0),    # the only plug is 5 km away
                                          (0.5, (0, 1, 0), 1.9)])   # reach shorter than 2 km
def test_opportunistic_does_not_fire_otherwise(soc, plugs, km):
    _, res = run(ChargingConfig(opportunistic_soc=0.6, opportunistic_km=km), soc=soc, plugs=plugs)
    assert len(events(res, "charge_move")) == 0


def test_opportunistic_takes_only_free_plugs():
    # 3 EVs below 60 %, one plug within reach: exactly one goes at minute 0 (the others would queue)
    _, res = run(ChargingConfig(opportunistic_soc=0.6, opportunistic_km=3.0), fleet=3, soc=0.5, plugs=(0, 1, 0))
    cm = events(res, "charge_move")
    assert (cm["minute"] == 0).sum() == 1


# ---------------------------------------------------------------------------------- exit early (service priority)
def _plugged_then_request(priority, exit_min_soc=None):
    # 1 EV at 50 % in region a (plug there): opportunistic rule sends it at minute 0, it queues at 1 and
    # plugs at 1; 15 -> 24 kWh at 50 kW takes 11 min.  A request in region a arrives at minute 5 (patience 3).
    ch = ChargingConfig(opportunistic_soc=0.6, opportunistic_km=3.0, priority=priority, exit_min_soc=exit_min_soc)
    return run(ch, soc=0.5, plugs=(1, 0, 0), req=requests([5], origin=0, dest=1, km=2.0))


def test_charging_priority_keeps_the_ev_plugged():
    _, res = _plugged_then_request("charging")
    assert res.summary["served"] == 0 and res.summary["exits_early"] == 0


def test_service_priority_exits_early_with_linear_charge():
    _, res = _plugged_then_request("service")
    assert res.summary["served"] == 1 and res.summary["exits_early"] == 1
    unplug = events(res, "unplug")
    first = unplug.iloc[0]
    assert first["minute"] == 5 and first["phase"] == 2
    assert first["kwh"] == pytest.approx(50.0 * 4 / 60.0)     # plugged minutes 1..5 -> 4 min at 50 kW


def test_service_priority_respects_exit_min_soc():
    # at minute 5..8 the EV holds 18.3..20.8 kWh = 61..69 % < 70 %: it stays plugged, the request expires
    _, res = _plugged_then_request("service", exit_min_soc=0.7)
    assert res.summary["served"] == 0 and res.summary["exits_early"] == 0


# ---------------------------------------------------------------------------------- mixed fleets, units
def test_fleet_mix_capacities_and_units():
    mix = fleet_mix_from_ranges([(0.5, 100), (0.5, 250)], 3.33)
    assert mix[0][1] == pytest.approx(30.03, abs=0.01) and mix[1][1] == pytest.approx(75.08, abs=0.01)
    cap = fleet_capacities(mix, 5)
    assert len(cap) == 5 and sorted(np.unique(cap).round(2)) == [30.03, 75.08]
    assert kwh_per_km(3.33) == pytest.approx(1 / (3.33 * MI_KM))
    _, res = run(ChargingConfig(), fleet=4, soc=0.7, fleet_mix=((0.5, 30.0), (0.5, 75.0)))
    assert np.allclose(res.initial_energy, [21.0, 21.0, 52.5, 52.5])
    assert res.summary["battery_kwh_mean"] == pytest.approx(52.5)


def test_unconstrained_fleet_draws_no_energy():
    req = requests([5, 6, 7], origin=0, dest=2, km=5.0)
    _, res = run(ChargingConfig(), fleet=2, soc=0.7, req=req, unconstrained=True, policy=NoopPolicy(W, 10.0))
    assert res.summary["served"] >= 1
    assert np.allclose(res.final_energy, res.initial_energy) and res.summary["charging_trips"] == 0


def test_strategy_config_validation():
    for bad in (dict(idle_minutes=0), dict(opportunistic_soc=1.5), dict(priority="x"), dict(min_range_km=-1),
                dict(exit_min_soc=2.0)):
        with pytest.raises(ConfigError):
            ChargingConfig(**bad)
    with pytest.raises(ConfigError):
        SimConfig(fleet_mix=((0.5, -1.0),))


# ---------------------------------------------------------------------------------- x/y/z siting
def test_xyz_siting_adds_stations_where_queues_are_long_then_stops():
    from drbalance.sim.siting import queue_waits, site_xyz

    # 3 EVs at 50 %, one plug in region a, idle trigger after 1 min at 11 kW: the 2nd and 3rd queue long
    cfg = SimConfig(fleet_size=3, seed=0, battery_kwh=30.0, consumption_kwh_per_km=0.2, initial_soc_mean=0.5,
                    initial_soc_sd=0.0, charging=ChargingConfig(idle_minutes=1, power_kw=11.0))
    sim = Simulator(requests(), world(), np.array([1, 0, 0]), cfg)
    res = sim.run(Idle())
    qw = queue_waits(res.events, res.summary["end_minute"])
    assert (qw["region"] == 0).all() and qw["wait"].max() > 15
    rep = site_xyz(sim, lambda s: Idle(), x=2, y_km=100.0, z_min=15.0)
    assert rep.stable and rep.stations_added >= 1 and rep.plugs[0] >= 3 and rep.plugs[1:].sum() == 0
    assert rep.history[-1]["long_queues"] == 0 and rep.history[0]["flagged_regions"] == [0]
    # y rule: the only plug is 5 km away (region c) and y = 4 km -> a station where the EVs started (a)
    sim2 = Simulator(requests(), world(), np.array([0, 0, 1]), SimConfig(
        fleet_size=1, seed=0, battery_kwh=30.0, initial_soc_mean=0.15, initial_soc_sd=0.0,
        charging=ChargingConfig(self_dispatch=True)))
    rep2 = site_xyz(sim2, lambda s: Idle(), x=5, y_km=4.0, z_min=60.0)
    assert rep2.history[0]["flagged_regions"] == [0] and rep2.plugs.tolist() == [5, 0, 1] and rep2.stable


# ---------------------------------------------------------------------------------- all rules on real data
def test_all_rules_on_nyc_conserve_and_match_the_event_log():
    """Every rule switched on, a mixed fleet, Level-2 plugs, 8 h of the bundled NYC day: vehicles and
    requests are conserved and every summary metric is recomputed from the event log alone."""
    from data_pipeline.readers import read_tlc_trips
    from drbalance import datasets
    from drbalance.policies import make_policy
    from drbalance.sim import PlugSiting
    from test_sim import DAY, check_against_log

    zones = datasets.load_nyc_zones()
    trips = read_tlc_trips(datasets.nyc_green_trip_files(("2021-03",)), zones, period=(DAY, DAY)).frame
    full = RegionMap.from_zones(zones, 1.33)
    r = full.region_of(trips["pickup_zone"].to_numpy())
    regions = full.coarsen(20, np.bincount(r[r >= 0], minlength=full.n).astype(float), random_state=0)
    ch = ChargingConfig(low_soc=0.3, min_range_km=20, idle_minutes=20, opportunistic_soc=0.6, priority="service",
                        self_dispatch=True, power_kw=11)
    cfg = SimConfig(fleet_size=60, seed=0, initial_soc_mean=0.45, charging=ch, fleet_mix=((0.5, 30.0), (0.5, 60.0)))
    sim = Simulator.from_trips(trips, regions, DAY, cfg, siting=PlugSiting(total=4), zones=zones, minutes=480)
    res = sim.run(make_policy("noop", sim))
    s = res.summary
    assert min(s["exits_early"], s["triggered_idle"], s["triggered_opportunistic"], s["triggered_self_dispatch"]) > 0
    check_against_log(sim, res)
    assert s["charging_trips"] == len(events(res, "charge_move"))
    assert 0 < s["charging_vmt_pct"] < s["empty_vmt_pct"] < 100
