"""Adapters embedding the drbalance controller in other simulators (SUMO, Gymnasium)."""
