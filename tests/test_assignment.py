"""The one vehicle-assignment rule (drbalance.assignment), shared by the simulator and embedding."""

import numpy as np
import pytest

from drbalance.assignment import assign, group_rank
from drbalance.errors import DataError


def test_vacant_longest_move_takes_the_fullest_vehicle():
    # three moves out of region 0 (2, 5, 1 km) and one out of region 1; candidates in regions 0, 0, 0, 1
    origin = np.array([0, 0, 0, 1])
    km = np.array([2.0, 5.0, 1.0, 3.0])
    region = np.array([0, 1, 0, 0])
    charge = np.array([0.5, 0.9, 0.8, 0.6])      # region 0 holds positions 0 (0.5), 2 (0.8), 3 (0.6)
    order, chosen = assign("vacant", origin, km, region, charge)
    assert order.tolist() == [1, 0, 2, 3]          # region 0 longest first, then region 1
    assert chosen.tolist() == [2, 3, 0, 1]          # fullest first in region 0; the only one in region 1


def test_charge_nearest_move_takes_the_emptiest_vehicle_and_ties_keep_order():
    origin = np.array([2, 2, 2])
    km = np.array([4.0, 1.0, 1.0])
    region = np.array([2, 2, 2, 2])
    charge = np.array([0.15, 0.05, 0.10, 0.05])
    order, chosen = assign("charge", origin, km, region, charge)
    assert order.tolist() == [1, 2, 0]              # nearest first, ties by row
    assert chosen.tolist() == [1, 3, 2]             # emptiest first, ties by candidate order


def test_shortfall_is_an_error_naming_the_region():
    with pytest.raises(DataError, match="region 1 but only 1 spare EVs are there"):
        assign("vacant", np.array([1, 1]), np.ones(2), np.array([1, 0]), np.ones(2), what="spare EVs")
    with pytest.raises(DataError, match="kind"):
        assign("park", np.array([0]), np.ones(1), np.array([0]), np.ones(1))


def test_group_rank():
    assert group_rank(np.array([0, 0, 1, 3, 3, 3])).tolist() == [0, 1, 0, 0, 1, 2]
    assert group_rank(np.array([], int)).tolist() == []
