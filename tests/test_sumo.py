"""SUMO adapter: headless TraCI runs where a policy repositions idle taxis (drbalance.adapters.sumo).

Skipped only when the SUMO binary or the traci/sumolib packages are missing on the machine.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("traci", reason="SUMO integration needs the traci package (pip install eclipse-sumo traci)")
pytest.importorskip("sumolib", reason="SUMO integration needs sumolib (pip install eclipse-sumo traci)")

from data_pipeline.estimates import EstimateConfig, Estimates  # noqa: E402
from drbalance.adapters.sumo import (DemandModel, SumoConfig, SumoFleet, SumoUnavailableError,  # noqa: E402
                                     edge_regions, sumo_binary)
from drbalance.controller import Controller, ControllerConfig  # noqa: E402
from drbalance.policies import Moves  # noqa: E402
from drbalance.problem import BalancingConfig  # noqa: E402


@pytest.fixture(scope="module")
def edges():
    try:
        sumo_binary("sumo")
    except SumoUnavailableError as exc:
        pytest.skip(f"SUMO is not installed on this machine: {exc}")
    return edge_regions(k=3)


def _started(sim: SumoFleet) -> SumoFleet:
    try:
        return sim.start()
    except SumoUnavailableError as exc:
        pytest.skip(f"SUMO cannot be started on this machine: {exc}")


def test_edge_regions_partition(edges):
    rm = edges.regions
    assert rm.n == 9 and len(edges.edge_ids) == 120  # 6x6 grid: 60 two-way street segments
    assert np.bincount(edges.edge_region, minlength=9).min() > 0
    assert (np.diag(rm.distance_km) == 0).all() and np.allclose(rm.distance_km, rm.distance_km.T)
    # adjacent blocks are ~1/3 km apart, opposite corners >= the Manhattan distance between centroids
    manhattan = np.abs(edges.centroid_xy[:, None] - edges.centroid_xy[None]).sum(-1) / 1000
    off = ~np.eye(9, dtype=bool)
    assert (rm.distance_km[off] >= 0.5 * manhattan[off]).all() and rm.distance_km.max() < 2.0
    assert rm.distance_km[0, 8] > rm.distance_km[0, 1]
    # every edge lies in the block of its midpoint
    for e in edges.edges_of(4):
        x, y = edges.xy_of(e)
        assert 1000 / 3 <= x <= 2000 / 3 and 1000 / 3 <= y <= 2000 / 3
        i = edges.position_of(e)
        assert edges.edge_ids[i] == e and edges.length_of(e) == edges.edge_length[i] and edges.region_of_edge(e) == 4
    assert edges.position_of(":A0_0") == -1 and edges.region_of_edge(":A0_0") == -1  # junction-internal edge


class SendK:
    """Sends ``k`` vacant taxis from region ``a`` to ``b`` in the first slot only."""

    name = "send_k"

    def __init__(self, a: int, b: int, k: int) -> None:
        self.a, self.b, self.k, self.calls = a, b, k, []

    def plan(self, state, t):
        self.calls.append((state.vacant.copy(), t))
        if len(self.calls) > 1:
            return Moves.empty()
        return Moves([self.a], [self.b], [self.k], ["vacant"])


def test_policy_moves_idle_taxis_into_target_region(edges):
    A, B, K, n_taxis = 0, 8, 3, 6
    dest = np.zeros((9, 9))
    dest[:, A] = 1.0  # rides stay in region A, so the nearest idle taxi is never one sent to B
    demand = DemandModel(edges, rate_per_hour=np.r_[40.0, np.zeros(8)], destination=dest)
    cfg = SumoConfig(n_taxis=n_taxis, taxi_regions=[A] * n_taxis, seed=3, slot_seconds=300)
    sim = _started(SumoFleet(edges, demand, cfg))
    try:
        pol = SendK(A, B, K)
        res = sim.run(pol, 2)
        pos = sim.positions().set_index("taxi")
    finally:
        sim.close()
    first_state = pol.calls[0][0]
    assert first_state[A] == n_taxis and first_state.sum() == n_taxis
    mv = res.moves
    assert len(mv) == 1 and mv.planned.iloc[0] == K and mv.executed.iloc[0] == K
    sent = list(mv.taxis.iloc[0])
    assert len(set(sent)) == K
    # every sent taxi reached its target edge in B within the slot, and TraCI places it in B now
    rep = res.repositions.set_index("taxi")
    assert rep.loc[sent, "arrived_s"].notna().all()
    assert (rep.loc[sent, "arrived_s"] - rep.loc[sent, "issued_s"] < 300).all()
    assert (pos.loc[sent, "region"] == B).all()
    assert all(edges.region_of_edge(e) == B for e in rep.loc[sent, "target_edge"])
    # the taxis that were not sent serve A's rides: none is in B, the idle ones wait in A
    others = pos.drop(index=sent)
    assert (others.region != B).all()
    assert (others[others.idle].region == A).all() and others.idle.any()
    # the second slot's state counts the moved taxis in B (idle there) -- unless busy
    assert pol.calls[1][0][B] == K
    s = res.summary
    assert s["requests"] >= 3 and s["served"] >= 1
    assert s["served"] + s["unserved"] + s["waiting"] == s["requests"]
    assert s["taxis"] == n_taxis and (res.slots.taxis == n_taxis).all()


def test_controller_plans_on_sumo_regions(edges):
    rate = np.array([2.0, 2.0, 4.0, 2.0, 6.0, 10.0, 4.0, 10.0, 30.0])  # requests/hour, busy north-east
    demand = DemandModel(edges, rate_per_hour=rate)
    panels = demand.panels("2026-01-05", 3, slot_minutes=5, seed=100)
    est = Estimates.fit(panels, edges.regions, EstimateConfig(slot_minutes=5, horizon=2, n_bootstrap=20))
    bal = BalancingConfig(mode="nominal", horizon=2, slot_minutes=5, reach_km=2.0, low_battery_reach_km=1.0,
                          supply_floor=0.1)
    ctl = Controller(est, bal, ControllerConfig())
    n_taxis = 12
    cfg = SumoConfig(n_taxis=n_taxis, taxi_regions=[0] * 6 + [1] * 6, seed=7, start="2026-01-08 08:00")
    sim = _started(SumoFleet(edges, demand, cfg))
    try:
        res = sim.run(ctl, 2)
        pos = sim.positions()
    finally:
        sim.close()
    steps = ctl.steps()
    assert len(steps) == 2 and (steps.status == "solved").all()
    mv = res.moves[res.moves.kind == "vacant"]
    assert mv.planned.sum() > 0  # all taxis start in the quiet south-west: the controller spreads them
    assert (mv.executed == mv.planned).all()
    assert (mv.destination != mv.origin).all()
    rep = res.repositions
    assert len(rep) == mv.executed.sum() and rep.arrived_s.notna().any()
    # conservation: no taxi created or lost, every slot and at the end
    assert (res.slots.taxis == n_taxis).all()
    assert sorted(pos.taxi) == sorted(f"taxi{i}" for i in range(n_taxis))
    assert res.slots.vacant.iloc[0] == n_taxis
    assert (res.slots.plan_s > 0).all() and (res.slots.sim_s > 0).all()
