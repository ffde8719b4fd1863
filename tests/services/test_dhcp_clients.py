"""Real DHCP clients (busybox udhcpc, ISC dhclient, ISC dhcrelay) against `corral serve`.

Each test builds namespaces with the `topo` fixture: a server namespace holding
a bridge 10.77.0.1/24 where `corral serve` runs on a real database, and client
namespaces attached to it. Every process started here is stopped by PID.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.actions import LocalActions
from corral.app import Corral
from corral.config import Settings
from corral.discovery import Switch
from corral.lab.netns import Topology, ns_argv
from tests.conftest import need_tool
from tests.helpers.clients import bridge_lab, run_dhclient, run_udhcpc, stop, try_udhcpc
from tests.helpers.serve import CORRAL, corral_serve

pytestmark = [pytest.mark.netns, pytest.mark.slow]

KNOWN_MAC = "52:54:00:12:34:56"
UNKNOWN_MAC = "52:54:00:ab:cd:ef"
SERVE = ("--interface", "br0", "--no-tftp", "--no-seeder")


def make_inventory() -> LocalActions:
    """The inventory the server answers from, made as `corral network/node add` would."""
    actions = LocalActions(Corral(Settings.from_env()))
    actions.add_network(
        {
            "name": "prov",
            "cidr": "10.77.0.0/24",
            "gateway": "10.77.0.1",
            "dns_servers": ["10.77.0.1"],
            "domain": "lab.example",
            "mtu": 1500,
            "lease_time": 600,
            "dynamic_range": "10.77.0.100-10.77.0.150",
        }
    )
    actions.add_profile({"name": "compute", "networks": ["prov"]})
    actions.add_nodes(["node01"], {"profiles": ["compute"]}, mac=KNOWN_MAC, ip="10.77.0.11")
    return actions


def discovered(actions: LocalActions) -> dict[str, dict[str, Any]]:
    return {d["mac"]: d for d in actions.discovered()}


def counters(corral_home: Path) -> dict[str, int]:
    """The DHCP counters `corral serve` logged when it last stopped."""
    log = (corral_home.parent / "serve.log").read_text()
    stats = log[log.rindex("dhcp stopped: DhcpCounters(") :].split("(", 1)[1].split(")", 1)[0]
    return {key: int(value) for key, value in (kv.split("=") for kv in stats.split(", "))}


def test_udhcpc_known_mac_gets_reservation(
    topo: Topology, corral_home: Path, tmp_path: Path
) -> None:
    need_tool("udhcpc")
    actions = make_inventory()
    srv, [cli] = bridge_lab(topo, KNOWN_MAC)
    with corral_serve(srv, corral_home, *SERVE):
        env = run_udhcpc(cli, tmp_path, "known")
    assert env["ip"] == "10.77.0.11"
    assert env["hostname"] == "node01"
    assert env["router"].split() == ["10.77.0.1"]
    assert env["subnet"] == "255.255.255.0"
    assert env["domain"] == "lab.example"
    assert env["serverid"] == "10.77.0.1"
    assert env["mtu"] == "1500"
    assert env["lease"] == "600"
    assert discovered(actions) == {}
    # udhcpc does not set the broadcast flag: the OFFER went unicast via a neighbour entry.
    assert counters(corral_home)["broadcast_fallbacks"] == 0


def test_dhclient_known_mac_gets_reservation(
    topo: Topology, corral_home: Path, tmp_path: Path
) -> None:
    need_tool("dhclient")
    make_inventory()
    srv, [cli] = bridge_lab(topo, KNOWN_MAC)
    with corral_serve(srv, corral_home, *SERVE):
        env = run_dhclient(cli, tmp_path)
    assert env["new_ip_address"] == "10.77.0.11"
    assert env["new_host_name"] == "node01"
    assert env["new_routers"] == "10.77.0.1"
    assert env["new_dhcp_server_identifier"] == "10.77.0.1"


def test_unknown_mac_gets_dynamic_address_and_is_discovered(
    topo: Topology, corral_home: Path, tmp_path: Path
) -> None:
    need_tool("udhcpc")
    actions = make_inventory()
    srv, [cli] = bridge_lab(topo, UNKNOWN_MAC)
    with corral_serve(srv, corral_home, *SERVE):
        env = run_udhcpc(cli, tmp_path, "unknown")
    assert env["ip"] == "10.77.0.100"
    assert "hostname" not in env
    records = discovered(actions)
    assert set(records) == {UNKNOWN_MAC}
    assert records[UNKNOWN_MAC]["vendor_class"].startswith("udhcp")


@contextlib.contextmanager
def relayed_client(topo: Topology, corral_home: Path, tmp_path: Path) -> Iterator[str]:
    """A client namespace (UNKNOWN_MAC) behind dhcrelay -a on its own subnet 10.88.0.0/24:
    the relay sits on the server's br0 and tags requests with circuit-id br1; corral serves
    while the block runs."""
    srv, _ = bridge_lab(topo)
    relay = topo.namespace("rly")
    topo.attach(relay, srv, "br0", address="10.77.0.2/24")
    topo.bridge(relay, "br1", "10.88.0.1/24")
    cli = topo.namespace("rc")
    topo.attach(cli, relay, "br1", mac=UNKNOWN_MAC)
    topo.route(srv, "10.88.0.0/24", "10.77.0.2")
    argv = ["dhcrelay", "-d", "-4", "-a", "--no-pid", "-iu", "eth0", "-id", "br1", "10.77.0.1"]
    with (
        corral_serve(srv, corral_home, *SERVE),
        (tmp_path / "dhcrelay.log").open("wb") as relay_log,
    ):
        proc = subprocess.Popen(ns_argv(relay, argv), stdout=relay_log, stderr=subprocess.STDOUT)
        try:
            yield cli
        finally:
            stop(proc, sig_kill=True)


def test_relayed_request_through_dhcrelay(
    topo: Topology, corral_home: Path, tmp_path: Path
) -> None:
    need_tool("udhcpc", "dhcrelay")
    actions = make_inventory()
    actions.add_network(
        {"name": "remote", "cidr": "10.88.0.0/24", "gateway": "10.88.0.1", "lease_time": 600,
         "dynamic_range": "10.88.0.50-10.88.0.60"}
    )  # fmt: skip
    with relayed_client(topo, corral_home, tmp_path) as cli:
        env = run_udhcpc(cli, tmp_path, "relayed")  # retries until dhcrelay listens
    assert env["ip"] == "10.88.0.50"
    assert env["router"].split() == ["10.88.0.1"]
    record = discovered(actions).get(UNKNOWN_MAC)
    assert record is not None, "no discovery record"
    assert record["giaddr"] == "10.88.0.1"
    assert record["circuit_id"] == "br1"  # dhcrelay -a: circuit-id = its interface name


def test_a_known_mac_relayed_from_a_port_that_is_not_its_own_gets_no_address(
    topo: Topology, corral_home: Path, tmp_path: Path
) -> None:
    """Option 82 binding: dhcrelay -a tags requests with the port they came in on (br1);
    the switch map has the node on br2, so its reserved address is refused, with an
    alarm event, until the map says br1 is the node's port."""
    need_tool("udhcpc", "dhcrelay")
    actions = make_inventory()
    actions.add_network({"name": "remote", "cidr": "10.88.0.0/24", "gateway": "10.88.0.1"})
    actions.add_profile({"name": "far", "networks": ["remote"]})
    actions.add_nodes(["far01"], {"profiles": ["far"]}, mac=UNKNOWN_MAC, ip="10.88.0.21")
    actions.add_switch(Switch(name="sw1", address="10.77.0.2"))
    actions.map_switch("sw1", "br2", "far01")
    with relayed_client(topo, corral_home, tmp_path) as cli:
        refused, output = try_udhcpc(cli, tmp_path, "wrong-port")
        actions.map_switch("sw1", "br1", "far01")  # the node was re-cabled, and the map says so
        granted = run_udhcpc(cli, tmp_path, "own-port")
    assert refused is None, (refused, output)
    alarms = [e for e in actions.events(0, 1000) if e["kind"] == "alarm"]
    assert [(e["node"], e["data"]["source"]) for e in alarms] == [("far01", "dhcp")], alarms
    assert "circuit-id br1" in alarms[0]["data"]["reason"]
    assert "sw1 port br2" in alarms[0]["data"]["reason"]
    assert granted["ip"] == "10.88.0.21"


def test_address_without_interface_serves_dhcp_on_the_interface_holding_it(
    topo: Topology, corral_home: Path, tmp_path: Path
) -> None:
    """`--address` alone: DHCP listens on br0 (which holds it) and sees broadcasts."""
    need_tool("udhcpc")
    make_inventory()
    srv, [cli] = bridge_lab(topo, KNOWN_MAC)
    with corral_serve(srv, corral_home, "--address", "10.77.0.1", "--no-tftp", "--no-seeder"):
        env = run_udhcpc(cli, tmp_path, "address")
    assert (env["ip"], env["serverid"]) == ("10.77.0.11", "10.77.0.1")


def test_address_on_another_interface_is_refused_with_one_line(
    topo: Topology, corral_home: Path
) -> None:
    make_inventory()
    srv, _ = bridge_lab(topo)
    argv = [*CORRAL, "serve", "--address", "10.77.0.1", "--interface", "lo", "--no-tftp"]
    env = {**os.environ, "CORRAL_HOME": str(corral_home)}
    out = subprocess.run(
        ns_argv(srv, argv), capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "error: --address 10.77.0.1 is on br0, not on --interface lo"
    ]


GARBAGE_SENDER = """
import random, socket, sys, time
rng = random.Random(int(sys.argv[2]))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
    s.sendto(rng.randbytes(rng.randrange(0, 300)), (sys.argv[1], 67))
    if i % 50 == 0:
        time.sleep(0.002)
"""


def test_server_answers_after_10000_garbage_datagrams(
    topo: Topology, corral_home: Path, tmp_path: Path
) -> None:
    need_tool("udhcpc")
    make_inventory()
    srv, [cli] = bridge_lab(topo, KNOWN_MAC)
    with corral_serve(srv, corral_home, *SERVE) as proc:
        subprocess.run(
            ["ip", "-n", cli, "addr", "add", "10.77.0.250/24", "dev", "eth0"], check=True
        )
        sender = [sys.executable, "-c", GARBAGE_SENDER, "10.77.0.1", "7", "10000"]
        subprocess.run(ns_argv(cli, sender), check=True, timeout=60)
        subprocess.run(["ip", "-n", cli, "addr", "flush", "dev", "eth0"], check=True)
        env = run_udhcpc(cli, tmp_path, "after-garbage")
        assert proc.poll() is None
    assert env["ip"] == "10.77.0.11"
    assert "malformed datagram" in (corral_home.parent / "serve.log").read_text()
    assert counters(corral_home)["malformed"] >= 9000


def test_udhcpc_is_told_the_corral_server_for_dns_and_time_when_the_network_names_none(
    topo: Topology, corral_home: Path, tmp_path: Path
) -> None:
    """corral serve answers DNS, so a network without dns_servers gets the server (option 6);
    option 42 names the server too, or the network's own NTP servers once they are set."""
    need_tool("udhcpc")
    actions = make_inventory()
    actions.set_network("prov", {"dns_servers": []})
    srv, [cli] = bridge_lab(topo, KNOWN_MAC)
    with corral_serve(srv, corral_home, *SERVE):
        env = run_udhcpc(cli, tmp_path, "defaults")
    assert env["dns"].split() == ["10.77.0.1"]
    assert env["ntpsrv"].split() == ["10.77.0.1"]
    actions.set_network("prov", {"ntp_servers": ["10.77.0.5", "10.77.0.6"]})
    with corral_serve(srv, corral_home, *SERVE, "--no-dns"):
        env = run_udhcpc(cli, tmp_path, "configured")
    assert env["ntpsrv"].split() == ["10.77.0.5", "10.77.0.6"]
    assert "dns" not in env  # no DNS servers set, and this server does not answer DNS
