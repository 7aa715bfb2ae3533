"""Value objects of drbalance.state: frozen, read-only arrays, validation that cannot be undone, one move table."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import numpy as np
import pytest

from drbalance.errors import DataError
from drbalance.policies import Moves as MovesFromPolicies
from drbalance.policies import as_moves
from drbalance.state import KINDS, FleetState, Forecasts, Moves, Plan, readonly

READ_ONLY = "assignment destination is read-only"


def _state():
    return FleetState(np.array([3, 0, 2]), np.array([1, 0, 0]), np.array([0, 2, 1]), np.array([0, 1, 0]))


def _forecasts():
    return Forecasts(np.ones((2, 3)), np.full((2, 3), 0.5), charging=np.ones((2, 3)), occupied=np.zeros((2, 3)))


def _plan():
    # vacant pairs: stay 0->0 (2 EVs), 0->1 (1), stay 1->1 (0), 2->1 (0); low-battery pairs: 0->0 own region (1), 0->1 (0)
    return Plan("nominal", np.array([[0, 0], [0, 1], [1, 1], [2, 1]]), np.array([[0, 0], [0, 1]]),
                np.zeros((2, 4)), np.zeros((2, 2)), np.array([2, 1, 0, 0]), np.array([1, 0]), np.zeros((2, 3)),
                np.zeros((2, 3)), 1.5, {"idle_km": 2.0}, "clarabel", "optimal", 0.01, 0.02, {"iterations": 7})


def _moves():
    return Moves([0, 0, 1, 2, 1], [0, 1, 1, 2, 2], [3, 2, 0, 1, 4], ["vacant", "vacant", "vacant", "charge", "charge"])


OBJECTS = {
    "FleetState": (_state, ["vacant", "low_battery", "plugs", "occupied"]),
    "Forecasts": (_forecasts, ["demand", "supply", "charging", "occupied"]),
    "Plan": (_plan, ["pairs_x", "pairs_y", "X", "Y", "moves_x", "moves_y", "supply_after", "free_plugs"]),
    "Moves": (_moves, ["origin", "destination", "count", "kind"]),
}


@pytest.mark.parametrize("name", OBJECTS)
def test_attributes_cannot_be_reassigned(name):
    make, arrays = OBJECTS[name]
    obj = make()
    for field in dataclasses.fields(obj):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field.name, getattr(obj, field.name))
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.extra = 1


@pytest.mark.parametrize("name", OBJECTS)
def test_arrays_refuse_writes(name):
    make, arrays = OBJECTS[name]
    obj = make()
    for attr in arrays:
        a = getattr(obj, attr)
        assert isinstance(a, np.ndarray) and not a.flags.writeable, attr
        with pytest.raises(ValueError, match=READ_ONLY):
            a[...] = a.flat[0]
        with pytest.raises(ValueError, match="read-only"):
            a += a.flat[0]
        scratch = a.copy()  # the way to get a scratch array
        scratch[...] = scratch.flat[0]


def test_plan_mappings_are_read_only_and_plans_pickle():
    plan = _plan()
    with pytest.raises(TypeError):
        plan.terms["idle_km"] = -1.0
    with pytest.raises(TypeError):
        plan.diagnostics["iterations"] = 0
    assert dict(plan.terms) == {"idle_km": 2.0} and plan.diagnostics["iterations"] == 7
    for back in (pickle.loads(pickle.dumps(plan)), copy.deepcopy(plan)):
        assert dict(back.terms) == dict(plan.terms) and back.objective == plan.objective
        np.testing.assert_array_equal(back.moves_x, plan.moves_x)
        assert not back.X.flags.writeable
        with pytest.raises(TypeError):
            back.terms["idle_km"] = 0.0


def test_callers_arrays_stay_writable_and_later_writes_do_not_leak_in():
    V = np.array([3.0, 0.0, 2.0])
    d = np.ones((2, 3))
    state = FleetState(V, np.zeros(3), np.ones(3), np.zeros(3))
    fc = Forecasts(d, d)
    assert V.flags.writeable and d.flags.writeable
    V[0] = -5.0  # the caller changes its own array afterwards ...
    d[0, 0] = np.nan
    assert state.vacant[0] == 3 and fc.demand[0, 0] == 1.0  # ... the validated objects are unaffected
    assert not np.shares_memory(fc.demand, d) and not np.shares_memory(fc.demand, fc.supply)


def test_validation_cannot_be_undone():
    state = _state()
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.vacant = np.array([-1, 0, 0])
    with pytest.raises(ValueError, match=READ_ONLY):
        state.vacant[0] = -1
    with pytest.raises(ValueError, match=READ_ONLY):
        state.vacant.reshape(1, -1)[0, 0] = -1  # views of a read-only array are read-only too
    with pytest.raises(DataError, match="negative"):
        dataclasses.replace(state, vacant=np.array([-1, 0, 0]))  # replace validates again
    fc = _forecasts()
    with pytest.raises(ValueError, match=READ_ONLY):
        fc.charging[0, 0] = -1
    with pytest.raises(DataError, match="negative"):
        dataclasses.replace(fc, charging=-np.ones((2, 3)))
    with pytest.raises(DataError, match="shape"):
        dataclasses.replace(fc, supply=np.ones((3, 3)))
    m = _moves()
    with pytest.raises(ValueError, match=READ_ONLY):
        m.count[0] = -1
    with pytest.raises(ValueError, match=READ_ONLY):
        m.kind[0] = "teleport"
    with pytest.raises(DataError, match="unknown move kind"):
        dataclasses.replace(m, kind=["teleport"] * 5)
    with pytest.raises(DataError, match="pairs of pairs_x"):
        dataclasses.replace(_plan(), moves_x=np.array([1, 2]))
    # np.setflags(write=True) is refused on arrays that do not own their memory (validated copies of views)
    with pytest.raises(ValueError):
        state.vacant.reshape(-1).setflags(write=True)


def test_replace_shares_already_frozen_arrays():
    fc = _forecasts()
    again = dataclasses.replace(fc, demand_mean_set=None)
    assert again.demand is fc.demand  # read-only arrays that own their memory are shared, not copied
    a = np.arange(3.0)
    r = readonly(a)
    assert r is not a and a.flags.writeable and not r.flags.writeable
    assert readonly(r) is r


# ------------------------------------------------------------------------------------------ one move table
def test_moves_is_one_class_and_kinds():
    assert MovesFromPolicies is Moves and KINDS == ("vacant", "charge")


def test_moves_to_frame_is_the_move_table():
    f = _moves().to_frame()
    assert list(f.columns) == ["origin", "destination", "count", "kind"]
    assert [str(t) for t in f.dtypes[:3]] == ["int64", "int64", "int64"]
    assert f.to_dict("records") == [
        {"origin": 0, "destination": 1, "count": 2, "kind": "vacant"},
        {"origin": 1, "destination": 2, "count": 4, "kind": "charge"},
        {"origin": 2, "destination": 2, "count": 1, "kind": "charge"},   # own-region charging is an order
    ]
    stays = _moves().to_frame(include_stays=True)
    assert stays.to_dict("records")[0] == {"origin": 0, "destination": 0, "count": 3, "kind": "vacant"}
    assert len(stays) == 4   # the zero-count row is never listed
    # repeated moves are summed, vacant rows first
    m = Moves([1, 0, 1], [0, 2, 0], [1, 1, 2], ["charge", "vacant", "charge"])
    assert m.to_frame().values.tolist() == [[0, 2, 1, "vacant"], [1, 0, 3, "charge"]]
    assert len(Moves.empty().to_frame()) == 0 and list(Moves.empty().to_frame().columns) == list(f.columns)


def test_plan_moves_keeps_own_region_charging_and_omits_vacant_stays():
    plan = _plan()
    m = plan.moves()
    assert isinstance(m, Moves)
    assert list(zip(m.origin, m.destination, m.count, m.kind)) == [(0, 1, 1, "vacant"), (0, 0, 1, "charge")]
    assert plan.moves(include_stays=True).total("vacant") == 3
    assert as_moves(plan).to_frame().equals(m.to_frame())
    assert m.to_frame().to_dict("records") == [{"origin": 0, "destination": 1, "count": 1, "kind": "vacant"},
                                               {"origin": 0, "destination": 0, "count": 1, "kind": "charge"}]
    assert not hasattr(plan, "first_slot_moves")
