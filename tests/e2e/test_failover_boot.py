"""Several servers, one cluster: two `corral serve` on one PostgreSQL, one killed mid-boot.

The lab's bridge holds two servers (10.99.0.1 and 10.99.0.253), each in its own
namespace with its own CORRAL_HOME, both on one real PostgreSQL (over its Unix
socket: a file, so visible from every namespace). The image is packed on the
first; the second fetches it by digest. Four VMs power on at once and each
takes DHCP and its boot script from whichever server answers first. While a
node whose boot script one server wrote is still in its initramfs, that
server is killed with SIGKILL. Every node must still boot (iPXE, the
initramfs, the torrent's trackers and the agent's report fall back to the
other server), and no address may be lent twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from corral.actions import LocalActions
from corral.images.api import get_image
from corral.lab.lab import Lab, LabState, pid_alive
from corral.power.run import Action, run_power, targets_for
from corral.store import schema
from tests.conftest import PostgresServer
from tests.e2e.conftest import LabFactory, lab_api, serial
from tests.services.test_two_servers_netns import socket_url

pytestmark = [
    pytest.mark.netns,
    pytest.mark.vm,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.timeout(1800),
]

IN_INITRAMFS = {"pxe", "downloading"}  # the node is running on its boot script's server


@pytest.fixture
def on_postgres(
    corral_home: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> str:
    url = socket_url(postgres_server)
    monkeypatch.setenv("CORRAL_DATABASE_URL", url)
    return url


def wait(what: str, check: object, seconds: float, every: float = 0.5) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(every)


def script_writers(lab: Lab, state: LabState) -> dict[str, int]:
    """Which server (by PID) wrote each node's boot script, from the servers' logs."""
    logs = {state.serve_pid: lab.dir / "serve.log"}
    logs |= {s.pid: lab.dir / f"serve{i}.log" for i, s in enumerate(state.servers, start=2)}
    writers = {}
    for pid, log in logs.items():
        for line in log.read_text(errors="replace").splitlines():
            if "boot script for " in line and "corral: boot node" in line:
                writers[line.split("boot script for ", 1)[1].split()[0]] = pid
    return writers


def test_with_one_of_two_servers_killed_mid_boot_every_node_boots_and_no_address_is_lent_twice(
    on_postgres: str, lab: LabFactory
) -> None:
    the_lab, state = lab(nodes=4, servers=2)
    (second,) = state.servers
    actions = LocalActions(the_lab.corral)
    names = [vm.name for vm in state.vms]
    macs = {vm.mac: vm.name for vm in state.vms}
    # both servers know each other, and the second holds every file of the image
    wait(
        "the first server does not list the second",
        lambda: len(lab_api(the_lab, state, "/api/v1/servers")) == 2,
        60,
    )
    arts = get_image(the_lab.corral, "tiny").artifacts
    assert arts is not None
    home2 = Path(second.home)
    wait(
        "the second server did not fetch the image's files from the first",
        lambda: all(f.path(home2).is_file() for f in arts.files()),
        300,
    )
    asyncio.run(run_power(targets_for(actions.inventory(), names), Action.ON))
    # kill the server that wrote the boot script of a node still in its initramfs
    victim: list[int] = []

    def someone_depends_on_a_server() -> bool:
        states = {r["node"]: r["state"] for r in actions.status(names)}
        writers = script_writers(the_lab, state)
        for mac, pid in writers.items():
            if states.get(macs.get(mac, "")) in IN_INITRAMFS:
                victim.append(pid)
                return True
        return False

    wait("no node was in its initramfs", someone_depends_on_a_server, 600, every=0.2)
    os.kill(victim[0], signal.SIGKILL)
    wait("the server outlived kill -9", lambda: not pid_alive(victim[0]), 30)
    survivor = second.pid if victim[0] == state.serve_pid else state.serve_pid
    assert pid_alive(survivor)

    def all_booted() -> bool:
        return all(r["state"] == "booted" for r in actions.status(names))

    try:
        wait("not every node booted after the kill", all_booted, 900, every=1)
    except AssertionError:
        rows = actions.status(names)
        logs = {n: serial(state, n)[-1500:] for n in names}
        pytest.fail(f"{rows}\n{logs}")
    with the_lab.corral.store.transaction() as conn:
        leases = {r.mac: r.ip for r in conn.execute(sa.select(schema.leases))}
    lab_leases = {mac: ip for mac, ip in leases.items() if mac in macs}
    assert len(set(leases.values())) == len(leases), f"an address lent twice: {leases}"
    inventory = actions.inventory()
    for mac, ip in lab_leases.items():
        node = inventory.nodes[macs[mac]]
        assert ip in {str(i.ip) for i in node.interfaces}, (mac, ip, node)
    # for the record: which node fell back, and how
    fell_back = [n for n in names if "trying the next server" in serial(state, n)]
    print(f"killed pid {victim[0]}; nodes that fell back in the initramfs: {fell_back}")
