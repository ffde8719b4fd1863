"""The boot queue's reading of a node's state row: booted, failed, or not yet."""

from __future__ import annotations

from corral.lab.queue import finished_state
from corral.states import State


def test_a_node_past_booted_since_power_on_counts_as_booted() -> None:
    assert finished_state({"state": State.READY.value, "since": 5.0}, 1.0) == "booted"
    assert finished_state({"state": "booted", "since": 5.0}, 1.0) == "booted"


def test_failed_counts_and_a_state_from_before_power_on_does_not() -> None:
    assert finished_state({"state": "failed", "since": 5.0}, 1.0) == "failed"
    assert finished_state({"state": "ready", "since": 0.5}, 1.0) is None
    assert finished_state({"state": "unpacking", "since": 5.0}, 1.0) is None
