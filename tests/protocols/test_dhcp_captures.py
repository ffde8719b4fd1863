"""Real packets captured from udhcpc, dhclient and dhcrelay (-a) in the netns lab.

tests/data/dhcp/*.bin were recorded by the server's `capture_dir` setting while
tests/services/test_dhcp_clients.py-style runs took place.
"""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from corral.boot.firmware import select_boot
from corral.protocols.dhcp import (
    ClientId,
    Destination,
    DhcpContext,
    LeaseTable,
    MalformedPacket,
    MessageType,
    NetworkConfig,
    Opt,
    Pool,
    Reply,
    Reservation,
    ServerIdentity,
    StaticReservations,
    build,
    decide,
    parse,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "dhcp"
IP = IPv4Address

CAPTURES = [
    # file, mac, message type, giaddr, circuit-id
    ("udhcpc-discover.bin", "52:54:00:12:34:56", MessageType.DISCOVER, "0.0.0.0", None),
    ("udhcpc-request.bin", "52:54:00:12:34:56", MessageType.REQUEST, "0.0.0.0", None),
    ("dhclient-discover.bin", "52:54:00:12:34:56", MessageType.DISCOVER, "0.0.0.0", None),
    ("dhclient-request.bin", "52:54:00:12:34:56", MessageType.REQUEST, "0.0.0.0", None),
    ("relay-discover.bin", "52:54:00:ab:cd:ef", MessageType.DISCOVER, "10.88.0.1", b"br1"),
    ("relay-request.bin", "52:54:00:ab:cd:ef", MessageType.REQUEST, "10.88.0.1", b"br1"),
]


def _ctx() -> DhcpContext:
    return DhcpContext(
        server=ServerIdentity(IP("10.77.0.1")),
        networks=(
            NetworkConfig("prov", IPv4Network("10.77.0.0/24"), gateway=IP("10.77.0.1")),
            NetworkConfig(
                "remote",
                IPv4Network("10.88.0.0/24"),
                gateway=IP("10.88.0.1"),
                dynamic_range=Pool(IP("10.88.0.50"), IP("10.88.0.60")),
            ),
        ),
        reservations=StaticReservations(
            [Reservation("52:54:00:12:34:56", IP("10.77.0.11"), "node01", "prov")]
        ),
        leases=LeaseTable(),
        boot=select_boot,
    )


@pytest.mark.parametrize(("name", "mac", "mtype", "giaddr", "circuit"), CAPTURES)
def test_captured_packet(
    name: str, mac: str, mtype: MessageType, giaddr: str, circuit: bytes | None
) -> None:
    data = (DATA / name).read_bytes()
    msg = parse(data)
    assert msg.mac == mac
    assert msg.message_type == mtype
    assert msg.giaddr == IP(giaddr)
    assert (msg.relay_info.circuit_id if msg.relay_info else None) == circuit
    assert parse(build(msg)) == msg
    for cut in range(len(data)):  # every truncation parses or raises MalformedPacket
        with contextlib.suppress(MalformedPacket):
            parse(data[:cut])


def test_udhcpc_sends_rfc4361_style_client_id() -> None:
    msg = parse((DATA / "udhcpc-discover.bin").read_bytes())
    assert msg.options[Opt.CLIENT_ID] == ClientId(1, bytes.fromhex("525400123456"))
    assert msg.vendor_class == "udhcp 1.35.0"


def test_captured_exchanges_are_answered() -> None:
    c = _ctx()
    for prefix, ip in (
        ("udhcpc", "10.77.0.11"),
        ("dhclient", "10.77.0.11"),
        ("relay", "10.88.0.50"),
    ):
        offer = decide(parse((DATA / f"{prefix}-discover.bin").read_bytes()), c, 100.0)
        assert isinstance(offer, Reply) and offer.message.yiaddr == IP(ip)
        ack = decide(parse((DATA / f"{prefix}-request.bin").read_bytes()), c, 101.0)
        assert isinstance(ack, Reply) and ack.message.message_type == MessageType.ACK
        assert ack.message.yiaddr == IP(ip)
        if prefix == "relay":
            assert ack.destination is Destination.RELAY
            assert (
                ack.message.options[Opt.RELAY_AGENT_INFO]
                == parse((DATA / "relay-request.bin").read_bytes()).relay_info
            )
