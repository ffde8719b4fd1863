"""Real DHCP clients (busybox udhcpc, ISC dhclient, ISC dhcrelay) against corral's server.

Each test builds namespaces with the `topo` fixture: a server namespace holding
a bridge 10.77.0.1/24 where `python -m corral.services.dhcp` runs, and client
namespaces attached to it. Every process started here is killed in `finally`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from corral.lab.netns import Topology, ns_argv
from tests.conftest import need_tool
from tests.helpers.clients import (
    bridge_lab,
    run_dhclient,
    run_udhcpc,
    stop,
    wait_for,
)

pytestmark = [pytest.mark.netns, pytest.mark.slow]

KNOWN_MAC = "52:54:00:12:34:56"
UNKNOWN_MAC = "52:54:00:ab:cd:ef"
OTHER_MAC = "52:54:00:ab:cd:f0"


def _config(tmp: Path, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "server_ip": "10.77.0.1",
        "http_port": 8080,
        "interface": "br0",
        "networks": [
            {
                "name": "prov",
                "cidr": "10.77.0.0/24",
                "gateway": "10.77.0.1",
                "dns": ["10.77.0.1"],
                "domain": "lab.example",
                "mtu": 1500,
                "lease_time": 600,
                "range": ["10.77.0.100", "10.77.0.150"],
            }
        ],
        "reservations": [
            {"mac": KNOWN_MAC, "ip": "10.77.0.11", "hostname": "node01", "network": "prov"}
        ],
        "discovered_file": str(tmp / "discovered.jsonl"),
        "ready_file": str(tmp / "ready.json"),
    }
    cfg.update(extra)
    return cfg


@contextmanager
def dhcp_server(ns: str, tmp: Path, cfg: dict[str, Any]) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m corral.services.dhcp` inside `ns`, stopped on exit."""
    ready = Path(cfg["ready_file"])
    ready.unlink(missing_ok=True)
    conf = tmp / "dhcp.json"
    conf.write_text(json.dumps(cfg))
    log = (tmp / "server.log").open("ab")
    argv = ns_argv(ns, [sys.executable, "-m", "corral.services.dhcp", str(conf)])
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait_for(ready, 15, proc):
            pytest.fail(f"dhcp server did not start:\n{(tmp / 'server.log').read_text()}")
        yield proc
    finally:
        stop(proc)
        log.close()


def _discovered(tmp: Path) -> list[dict[str, Any]]:
    path = tmp / "discovered.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_udhcpc_known_mac_gets_reservation(topo: Topology, tmp_path: Path) -> None:
    need_tool("udhcpc")
    srv, [cli] = bridge_lab(topo, KNOWN_MAC)
    with dhcp_server(srv, tmp_path, _config(tmp_path)):
        env = run_udhcpc(cli, tmp_path, "known")
    assert env["ip"] == "10.77.0.11"
    assert env["hostname"] == "node01"
    assert env["router"].split() == ["10.77.0.1"]
    assert env["subnet"] == "255.255.255.0"
    assert env["domain"] == "lab.example"
    assert env["serverid"] == "10.77.0.1"
    assert env["mtu"] == "1500"
    assert _discovered(tmp_path) == []
    # udhcpc does not set the broadcast flag: the OFFER went unicast via a neighbour entry.
    assert "broadcast_fallbacks=0" in (tmp_path / "server.log").read_text()


def test_dhclient_known_mac_gets_reservation(topo: Topology, tmp_path: Path) -> None:
    need_tool("dhclient")
    srv, [cli] = bridge_lab(topo, KNOWN_MAC)
    with dhcp_server(srv, tmp_path, _config(tmp_path)):
        env = run_dhclient(cli, tmp_path)
    assert env["new_ip_address"] == "10.77.0.11"
    assert env["new_host_name"] == "node01"
    assert env["new_routers"] == "10.77.0.1"
    assert env["new_dhcp_server_identifier"] == "10.77.0.1"


def test_unknown_mac_gets_dynamic_address_and_is_discovered(topo: Topology, tmp_path: Path) -> None:
    need_tool("udhcpc")
    srv, [cli] = bridge_lab(topo, UNKNOWN_MAC)
    with dhcp_server(srv, tmp_path, _config(tmp_path)):
        env = run_udhcpc(cli, tmp_path, "unknown")
    assert env["ip"] == "10.77.0.100"
    assert "hostname" not in env
    records = _discovered(tmp_path)
    assert records and {r["mac"] for r in records} == {UNKNOWN_MAC}
    assert records[0]["vendor_class"].startswith("udhcp")


def test_relayed_request_through_dhcrelay(topo: Topology, tmp_path: Path) -> None:
    need_tool("udhcpc", "dhcrelay")
    srv, _ = bridge_lab(topo)
    relay = topo.namespace("rly")
    topo.attach(relay, srv, "br0", address="10.77.0.2/24")
    topo.bridge(relay, "br1", "10.88.0.1/24")
    cli = topo.namespace("rc")
    topo.attach(cli, relay, "br1", mac=UNKNOWN_MAC)
    topo.route(srv, "10.88.0.0/24", "10.77.0.2")
    remote = {
        "name": "remote",
        "cidr": "10.88.0.0/24",
        "gateway": "10.88.0.1",
        "lease_time": 600,
        "range": ["10.88.0.50", "10.88.0.60"],
    }
    cfg = _config(tmp_path)
    cfg["networks"].append(remote)
    relay_log = (tmp_path / "dhcrelay.log").open("wb")
    argv = ["dhcrelay", "-d", "-4", "-a", "--no-pid", "-iu", "eth0", "-id", "br1", "10.77.0.1"]
    with dhcp_server(srv, tmp_path, cfg):
        proc = subprocess.Popen(ns_argv(relay, argv), stdout=relay_log, stderr=subprocess.STDOUT)
        try:
            time.sleep(1.0)  # dhcrelay opens its sockets
            env = run_udhcpc(cli, tmp_path, "relayed")
        finally:
            stop(proc)
            relay_log.close()
    assert env["ip"] == "10.88.0.50"
    assert env["router"].split() == ["10.88.0.1"]
    records = _discovered(tmp_path)
    assert records, "no discovery record"
    assert records[0]["giaddr"] == "10.88.0.1"
    assert records[0]["circuit_id"] == "br1"  # dhcrelay -a: circuit-id = its interface name


def test_lease_file_survives_kill_9(topo: Topology, tmp_path: Path) -> None:
    need_tool("udhcpc")
    srv, [a, b] = bridge_lab(topo, UNKNOWN_MAC, OTHER_MAC)
    cfg = _config(tmp_path, lease_file=str(tmp_path / "leases.json"))
    with dhcp_server(srv, tmp_path, cfg) as proc:
        first = run_udhcpc(a, tmp_path, "a1")
        stop(proc, sig_kill=True)
    assert first["ip"] == "10.77.0.100"
    leases = json.loads((tmp_path / "leases.json").read_text())["leases"]
    assert [(x["mac"], x["ip"]) for x in leases] == [(UNKNOWN_MAC, "10.77.0.100")]
    with dhcp_server(srv, tmp_path, cfg):
        other = run_udhcpc(b, tmp_path, "b")  # .100 is taken: B must get the next one
        again = run_udhcpc(a, tmp_path, "a2")
    assert other["ip"] == "10.77.0.101"
    assert again["ip"] == "10.77.0.100"


GARBAGE_SENDER = """
import random, socket, sys, time
rng = random.Random(int(sys.argv[2]))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
    s.sendto(rng.randbytes(rng.randrange(0, 300)), (sys.argv[1], 67))
    if i % 200 == 0:
        time.sleep(0.002)
"""


def test_server_answers_after_10000_garbage_datagrams(topo: Topology, tmp_path: Path) -> None:
    need_tool("udhcpc")
    srv, [cli] = bridge_lab(topo, KNOWN_MAC)
    with dhcp_server(srv, tmp_path, _config(tmp_path)) as proc:
        subprocess.run(
            ["ip", "-n", cli, "addr", "add", "10.77.0.250/24", "dev", "eth0"], check=True
        )
        sender = [sys.executable, "-c", GARBAGE_SENDER, "10.77.0.1", "7", "10000"]
        subprocess.run(ns_argv(cli, sender), check=True, timeout=60)
        subprocess.run(["ip", "-n", cli, "addr", "flush", "dev", "eth0"], check=True)
        env = run_udhcpc(cli, tmp_path, "after-garbage")
        assert proc.poll() is None
    assert env["ip"] == "10.77.0.11"
    log = (tmp_path / "server.log").read_text()
    assert "malformed datagram" in log
    stats = log[log.rindex("dhcp stopped") :]
    malformed = int(stats.split("malformed=")[1].split(",")[0])
    assert malformed >= 9000
