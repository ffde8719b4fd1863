"""corral's DNS server, asked by the real `dig`, forwarding to a real dnsmasq."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.app import Corral
from corral.config import Settings
from corral.inventory import ops
from corral.services.dns import DnsServer, store_zone_source
from corral.services.serve import CorralServer, ServeError, ServeOptions
from tests.conftest import need_tool
from tests.helpers.loop import run_in_thread


def dig(port: int, *args: str) -> str:
    argv = ["dig", "@127.0.0.1", "-p", str(port), "+short", "+time=2", "+tries=1", *args]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=20).stdout


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def corral(corral_home: Path) -> Corral:
    corral = Corral(Settings.from_env())

    def inventory(inv: ops.Inventory) -> None:
        ops.add_network(inv, {"name": "prov", "cidr": "10.7.0.0/24"})
        ops.add_nodes(inv, ["n1"], {"networks": ["prov"]}, ip="10.7.0.11")

    corral.change(inventory)
    return corral


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[int]:
    """A real dnsmasq on loopback knowing one outside name: the site's resolver."""
    need_tool("dnsmasq")
    port = free_udp_port()
    argv = [
        "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces",
        "--listen-address=127.0.0.1", f"--port={port}", "--address=/outside.test/192.0.2.55",
        f"--pid-file={tmp_path / 'dnsmasq.pid'}", "--user=root",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while "192.0.2.55" not in dig_quiet(port, "outside.test"):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "dnsmasq did not answer"
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def dig_quiet(port: int, name: str) -> str:
    try:
        return dig(port, name)
    except subprocess.CalledProcessError:
        return ""


@pytest.fixture
def dns_server(corral: Corral, upstream: int) -> Iterator[DnsServer]:
    need_tool("dig")
    upstreams = [f"127.0.0.1:{upstream}"]
    server = DnsServer(store_zone_source(corral.store), "127.0.0.1", 0, upstreams, refresh=0.2)
    yield from run_in_thread(server)


def test_dig_resolves_a_node_and_its_address_back(dns_server: DnsServer) -> None:
    assert dig(dns_server.port, "n1.corral.internal").split() == ["10.7.0.11"]
    assert dig(dns_server.port, "-x", "10.7.0.11").split() == ["n1.corral.internal."]


def test_an_answer_over_tcp_is_the_same(dns_server: DnsServer) -> None:
    assert dig(dns_server.port, "+tcp", "n1.corral.internal").split() == ["10.7.0.11"]


def test_a_node_added_with_the_cli_path_resolves_within_a_second(
    dns_server: DnsServer, corral: Corral
) -> None:
    assert dig(dns_server.port, "n2.corral.internal") == ""
    corral.change(lambda inv: ops.add_nodes(inv, ["n2"], {"networks": ["prov"]}, ip="10.7.0.12"))
    changed = time.monotonic()
    while dig(dns_server.port, "n2.corral.internal").split() != ["10.7.0.12"]:
        assert time.monotonic() - changed < 1.5, "the new node did not resolve within a second"


def test_names_outside_the_cluster_are_forwarded_to_the_upstream(dns_server: DnsServer) -> None:
    assert dig(dns_server.port, "outside.test").split() == ["192.0.2.55"]
    assert dns_server.counters.forwarded >= 1


def test_garbage_datagrams_are_dropped_and_the_server_keeps_answering(
    dns_server: DnsServer,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for junk in (b"", b"\x00" * 11, b"\xff" * 12, b"\x12\x34" + b"\x01" * 600, b"x" * 5000):
            s.sendto(junk, ("127.0.0.1", dns_server.port))
    assert dig(dns_server.port, "n1.corral.internal").split() == ["10.7.0.11"]
    assert dns_server.counters.malformed >= 3


def test_serve_says_what_to_do_when_the_dns_port_is_taken(corral: Corral) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        options = ServeOptions(
            address="127.0.0.1", http_port=0, dhcp=False, tftp=False, seeder=False,
            dns=True, dns_port=port,
        )  # fmt: skip
        with pytest.raises(ServeError, match="--dns-port or --no-dns"):
            next(run_in_thread(CorralServer(corral, options)))
