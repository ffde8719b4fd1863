"""A `kill -9` of `corral serve` in the middle of a four-node boot (issue 10's crash test).

What is acknowledged is in the database (leases are committed before their ACK,
states as they are reported), so a server that is killed and started again
answers every node as before. The nodes that lost their server mid-boot carry
on against the new one: the initramfs retries its reports, and a swarm download
that stalls with the seeder gone re-announces, then falls back to HTTP for the
same signed artifact. Every lease granted before the kill is still there, and
every node boots with the address it had.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from corral.actions import LocalActions
from corral.lab.image import BOOTED_MARKER
from corral.lab.lab import Lab, LabState, pid_alive
from corral.power.run import Action, run_power, targets_for
from corral.store import schema
from tests.e2e.conftest import LabFactory, serial
from tests.helpers.clients import wait_for_text

pytestmark = [pytest.mark.netns, pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(1800)]


def leases(lab: Lab) -> dict[str, str]:
    with lab.corral.store.transaction() as conn:
        rows = conn.execute(sa.select(schema.leases.c.mac, schema.leases.c.ip)).all()
    return {mac: ip for mac, ip in rows}


def kill_server(state: LabState) -> None:
    os.kill(state.serve_pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while pid_alive(state.serve_pid):
        assert time.monotonic() < deadline, "corral serve outlived kill -9"
        time.sleep(0.1)


def diagnosis(the_lab: Lab, state: LabState, states: dict[str, str]) -> str:
    """What to read when nodes did not boot: their states, consoles and the server's log."""
    tails = [f"--- {vm.name} ---\n{serial(state, vm.name)[-1500:]}" for vm in state.vms]
    serve_log = (the_lab.dir / "serve.log").read_text(errors="replace")[-3000:]
    return f"states {states}\n" + "\n".join(tails) + f"\n--- serve.log ---\n{serve_log}"


def test_a_kill_9_of_serve_mid_download_loses_no_lease_and_every_node_boots(
    lab: LabFactory,
) -> None:
    the_lab, state = lab(nodes=4)
    actions = LocalActions(the_lab.corral)
    names = [vm.name for vm in state.vms]
    asyncio.run(run_power(targets_for(actions.inventory(), names), Action.ON))
    # kill it once nodes hold leases and one is fetching its image: the boot storm is under way
    deadline = time.monotonic() + 900
    while True:
        states = {r["node"]: r["state"] for r in actions.status(names)}
        granted = leases(the_lab)
        if len(granted) >= 2 and "downloading" in states.values():
            break
        assert time.monotonic() < deadline, diagnosis(the_lab, state, states)
        time.sleep(0.2)
    kill_server(state)
    state.serve_pid = the_lab.start_server(state.netns)
    state.save(the_lab.state_file)
    # the new server knows every lease the old one granted: nothing was lost with it
    restored = leases(the_lab)
    assert {m: restored.get(m) for m in granted} == granted, (granted, restored)
    # every node boots: those that lost the server mid-boot carried on against the new one
    deadline = time.monotonic() + 900
    while True:
        states = {r["node"]: r["state"] for r in actions.status(names)}
        if all(s == "booted" for s in states.values()):
            break
        assert time.monotonic() < deadline, diagnosis(the_lab, state, states)
        time.sleep(2)
    # with the address it was leased before the kill, and the lease table still agrees
    after = leases(the_lab)
    for mac, ip in granted.items():
        assert after.get(mac) == ip, (mac, ip, after)
    for vm in state.vms:
        marker = f"{BOOTED_MARKER} hostname={vm.name} "
        assert wait_for_text(Path(vm.serial_log), marker, 120), serial(state, vm.name)[-2000:]
        (address,) = re.findall(rf"{re.escape(marker)}address=([0-9.]+)/", serial(state, vm.name))
        assert after[vm.mac] == address, (vm.name, after, address)
        if vm.mac in granted:
            assert granted[vm.mac] == address, (vm.name, granted, address)
