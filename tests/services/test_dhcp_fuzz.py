"""DHCP fuzzing at a size CI affords: 0 crashes, bounded memory.

Two layers: hypothesis drives the sans-io policy with sequences of hostile
datagrams (anything that parses must be decided and its reply built without
an exception), and seeded datagrams go through the real socket of a live
`corral serve` on loopback, with its real database. `bench/fuzz_dhcp.py`
does the second at full size (10^6 datagrams) against a `corral serve`
process.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.actions import LocalActions
from corral.app import Corral
from corral.boot.firmware import select_boot
from corral.config import Settings
from corral.protocols.dhcp import (
    DhcpContext,
    LeaseTable,
    MalformedPacket,
    NetworkConfig,
    Pool,
    Reply,
    Reservation,
    ServerIdentity,
    StaticReservations,
    build,
    decide,
    parse,
)
from corral.protocols.dhcp.fuzz import DatagramMaker
from corral.services.serve import CorralServer, ServeOptions
from corral.testing.dhcp import renewal_answered
from tests.helpers.loop import run_in_thread

IP = IPv4Address
NET = IPv4Network("10.77.0.0/24")
SERVER = IP("10.77.0.1")
FUZZ_MACS = [bytes([0x52, 0x54, 0, 0xF0, 0, i]) for i in range(64)]


def _ctx() -> DhcpContext:
    reserved = [
        Reservation(":".join(f"{b:02x}" for b in mac), IP(f"10.77.0.{10 + i}"), f"n{i}", "prov")
        for i, mac in enumerate(FUZZ_MACS[:8])
    ]
    prov = NetworkConfig(
        "prov",
        NET,
        gateway=SERVER,
        dns=(SERVER,),
        domain="lab.example",
        mtu=1500,
        lease_time=600,
        dynamic_range=Pool(IP("10.77.0.100"), IP("10.77.0.120")),
    )
    return DhcpContext(
        server=ServerIdentity(SERVER, 9480),
        networks=(prov,),
        reservations=StaticReservations(reserved),
        leases=LeaseTable(),
        boot=select_boot,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.lists(st.binary(max_size=600), max_size=5))
def test_every_datagram_that_parses_is_decided_and_its_reply_built(
    seed: int, raw: list[bytes]
) -> None:
    make = DatagramMaker(random.Random(seed), SERVER, NET, FUZZ_MACS)
    ctx = _ctx()
    now = 1000.0
    for data in [*(make() for _ in range(40)), *raw]:
        now += 7.0
        try:
            msg = parse(data)
        except MalformedPacket:
            continue
        for port in (67, 4011):
            decision = decide(msg, ctx, now, port=port)
            if isinstance(decision, Reply):
                parse(build(decision.message))
        ctx.leases.drain()
        holders = [lease.ip for lease in ctx.leases.leases() if lease.active(now)]
        assert len(holders) == len(set(holders)), "one address held twice"


# ---------------------------------------------------------------- the live server

DATAGRAMS = 20_000
KNOWN_MAC = "52:54:00:83:00:05"
KNOWN_IP = "127.83.0.5"


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.fixture
def served(corral_home: Path) -> Iterator[CorralServer]:
    admin = LocalActions(Corral(Settings.from_env()))
    admin.add_network(
        {"name": "loop", "cidr": "127.0.0.0/8", "dynamic_range": "127.83.0.100-127.83.0.120"}
    )
    admin.add_profile({"name": "compute", "networks": ["loop"]})
    admin.add_nodes(["n05"], {"profiles": ["compute"]}, mac=KNOWN_MAC, ip=KNOWN_IP)
    options = ServeOptions(
        address="127.0.0.1", http_port=0, dhcp_port=0, tftp=False, seeder=False, bt_port=0
    )
    yield from run_in_thread(CorralServer(Corral(Settings.from_env()), options))


def _send(sock: socket.socket, target: tuple[str, int], make: DatagramMaker, count: int) -> None:
    for i in range(count):
        sock.sendto(make(), target)
        if i % 100 == 99:
            time.sleep(0.001)  # pacing, not synchronisation: stay under the socket buffer


def test_live_serve_takes_20000_fuzzed_datagrams_without_a_crash_or_growth(
    served: CorralServer,
) -> None:
    dhcp = served.dhcp
    assert dhcp is not None and dhcp._loop is not None
    loop_errors: list[dict[str, Any]] = []
    dhcp._loop.call_soon_threadsafe(dhcp._loop.set_exception_handler, _record(loop_errors))
    target = ("127.0.0.1", dhcp.bound_ports[0])
    make = DatagramMaker(random.Random(20_000), IP("127.0.0.1"), IPv4Network("127.83.0.0/24"))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        _send(sender, target, make, 2_000)  # warm up: caches, lease table, first records
        assert renewal_answered(target, KNOWN_MAC, KNOWN_IP)
        before = _rss_kib()
        _send(sender, target, make, DATAGRAMS)
        assert renewal_answered(target, KNOWN_MAC, KNOWN_IP), "the server stopped answering"
        after = _rss_kib()
    finally:
        sender.close()
    assert loop_errors == []
    assert dhcp.counters.errors == 0
    assert dhcp.counters.received > DATAGRAMS // 4  # a loaded machine drops some, not most
    assert dhcp.counters.malformed > 0 and dhcp.counters.replied > 0
    assert after - before < 40 * 1024, f"RSS grew {after - before} KiB"


def _record(into: list[dict[str, Any]]) -> Any:
    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        into.append(context)

    return handler
