"""`corral serve` with the database behind DHCP: real clients in namespaces.

The server runs as a real process in a server namespace on a bridge; the test
changes the inventory through the same database while it runs.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from corral.actions import LocalActions
from corral.app import Corral
from corral.config import Settings
from corral.lab.netns import Topology, ns_argv
from corral.services.dhcp_store import list_leases
from tests.conftest import need_tool
from tests.helpers.clients import bridge_lab, run_udhcpc, stop
from tests.helpers.serve import CORRAL, corral_serve

pytestmark = [pytest.mark.netns, pytest.mark.slow]

KNOWN = "52:54:00:12:34:01"
LATE = "52:54:00:12:34:02"
UNKNOWN = "52:54:00:ab:cd:01"


def make_inventory(corral_home: Path) -> LocalActions:
    actions = LocalActions(Corral(Settings.from_env()))
    actions.add_network(
        {
            "name": "prov",
            "cidr": "10.77.0.0/24",
            "gateway": "10.77.0.1",
            "dns_servers": ["10.77.0.1"],
            "domain": "lab.example",
            "dynamic_range": "10.77.0.200-10.77.0.210",
        }
    )
    actions.add_profile({"name": "compute", "networks": ["prov"]})
    actions.add_nodes(["n01"], {"profiles": ["compute"]}, mac=KNOWN, ip="10.77.0.11")
    return actions


def test_serve_answers_known_new_and_unknown_machines(
    topo: Topology, corral_home: Path, tmp_path: Path
) -> None:
    need_tool("udhcpc")
    actions = make_inventory(corral_home)
    srv, (known, late, unknown) = bridge_lab(topo, KNOWN, LATE, UNKNOWN)
    with corral_serve(srv, corral_home, "--interface", "br0", "--no-tftp"):
        env = run_udhcpc(known, tmp_path, "known")
        assert env["ip"] == "10.77.0.11"
        assert env["hostname"] == "n01"
        assert env["router"] == "10.77.0.1"
        assert env["domain"] == "lab.example"
        # a node added while the server runs is answered without a restart
        actions.add_nodes(["n02"], {"profiles": ["compute"]}, mac=LATE, ip="10.77.0.12")
        env = run_udhcpc(late, tmp_path, "late")
        assert (env["ip"], env["hostname"]) == ("10.77.0.12", "n02")
        # an unknown machine gets a dynamic address and is recorded as discovered
        env = run_udhcpc(unknown, tmp_path, "unknown")
        assert env["ip"] == "10.77.0.200"
    seen = {d["mac"]: d for d in actions.discovered()}
    assert UNKNOWN in seen and KNOWN not in seen
    assert seen[UNKNOWN]["source"] == "dhcp"
    leases = {lease["mac"]: lease["ip"] for lease in list_leases(actions.app.store)}
    assert leases == {KNOWN: "10.77.0.11", LATE: "10.77.0.12", UNKNOWN: "10.77.0.200"}


def test_leases_survive_kill_9_of_serve(topo: Topology, corral_home: Path, tmp_path: Path) -> None:
    need_tool("udhcpc")
    make_inventory(corral_home)
    srv, (first, second) = bridge_lab(topo, UNKNOWN, "52:54:00:ab:cd:02")
    with corral_serve(srv, corral_home, "--interface", "br0", "--no-tftp") as proc:
        assert run_udhcpc(first, tmp_path, "before")["ip"] == "10.77.0.200"
        proc.kill()  # SIGKILL: no chance to flush anything
        proc.wait(10)
    with corral_serve(srv, corral_home, "--interface", "br0", "--no-tftp"):
        # the other machine must not get the first one's address after the restart
        assert run_udhcpc(second, tmp_path, "other")["ip"] == "10.77.0.201"
        assert run_udhcpc(first, tmp_path, "after")["ip"] == "10.77.0.200"


def test_sigterm_stops_serve_cleanly(topo: Topology, corral_home: Path) -> None:
    make_inventory(corral_home)
    srv, _ = bridge_lab(topo)
    with corral_serve(srv, corral_home, "--interface", "br0") as proc:
        proc.terminate()
        assert proc.wait(15) == 0
        stop(proc)
    assert "corral stopped" in (corral_home.parent / "serve.log").read_text()


def test_admin_cli_reaches_serve_in_namespace(topo: Topology, corral_home: Path) -> None:
    make_inventory(corral_home)
    srv, _ = bridge_lab(topo)
    with corral_serve(srv, corral_home, "--interface", "br0", "--no-dhcp"):
        out = subprocess.run(
            ["ip", "netns", "exec", srv, "curl", "-sf", "http://10.77.0.1:9480/api/v1/nodes"],
            capture_output=True,
            check=False,
        )
        assert out.returncode != 0  # no token: refused


def test_unknown_machine_named_by_switch_port_through_relay(
    topo: Topology, corral_home: Path, tmp_path: Path
) -> None:
    """Option 82 from a real relay (dhcrelay -a) names the machine by its port."""
    need_tool("udhcpc", "dhcrelay")
    actions = make_inventory(corral_home)
    actions.add_network(
        {"name": "remote", "cidr": "10.88.0.0/24", "gateway": "10.88.0.1",
         "dynamic_range": "10.88.0.50-10.88.0.60"}
    )  # fmt: skip
    actions.add_profile({"name": "rack", "networks": ["remote"]})
    actions.add_nodes(["r01"], {"profiles": ["rack"]}, ip="10.88.0.11")
    env = {**os.environ, "CORRAL_HOME": str(corral_home)}
    switch = (
        ["switch", "add", "sw1", "--address", "127.0.0.1"],
        ["switch", "map", "sw1", "br1", "r01"],
    )
    for argv in switch:
        subprocess.run([*CORRAL, *argv], env=env, check=True, capture_output=True)
    srv, _ = bridge_lab(topo)
    relay = topo.namespace("rly")
    topo.attach(relay, srv, "br0", address="10.77.0.2/24")
    topo.bridge(relay, "br1", "10.88.0.1/24")
    machine = topo.namespace("m")
    topo.attach(machine, relay, "br1", mac=UNKNOWN)
    topo.route(srv, "10.88.0.0/24", "10.77.0.2")
    argv = ["dhcrelay", "-d", "-4", "-a", "--no-pid", "-iu", "eth0", "-id", "br1", "10.77.0.1"]
    with corral_serve(srv, corral_home, "--interface", "br0", "--no-tftp"):
        relay_proc = subprocess.Popen(
            ns_argv(relay, argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            time.sleep(1.0)  # dhcrelay opens its sockets
            first = run_udhcpc(machine, tmp_path, "first")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                iface = actions.inventory().nodes["r01"].interfaces[0]
                if iface.mac == UNKNOWN:
                    break
                time.sleep(0.2)
            assert iface.mac == UNKNOWN, "the machine was not named by its switch port"
            # the next exchange already answers it as r01 with r01's address
            second = run_udhcpc(machine, tmp_path, "second")
        finally:
            stop(relay_proc)
    assert first["ip"].startswith("10.88.0.")
    assert (second["ip"], second["hostname"]) == ("10.88.0.11", "r01")
