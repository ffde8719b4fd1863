"""Small helpers of the VM tests: poll a condition with a deadline, power a lab node, the
states a node reported since a moment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from corral.actions import LocalActions
from corral.lab.lab import Lab
from corral.power.run import Action, run_power, targets_for


def wait_for(what: str, check: Callable[[], Any], timeout: float = 240, every: float = 1) -> Any:
    """Poll `check` until it returns something true; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what}")


def power(the_lab: Lab, name: str, action: Action) -> None:
    (result,) = asyncio.run(run_power(targets_for(the_lab.actions.inventory(), [name]), action))
    assert result.ok, result.error


def states_since(actions: LocalActions, node: str, since: float) -> list[str]:
    """The states `node` reported after `since` (epoch seconds), oldest first."""
    return [
        e["data"]["state"]
        for e in actions.events(0, 100000)
        if e["node"] == node and e["kind"] == "state" and e["time"] > since
    ]
