"""A known node's address is refused to a request relayed from a port the switch map
does not give it (option 82), and the refusal names the node for an alarm event."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from corral.discovery import Switch, port_contradiction
from corral.protocols.dhcp import (
    DhcpContext,
    LeaseTable,
    Message,
    MessageType,
    NetworkConfig,
    NoReply,
    Opt,
    OptionValue,
    RelayAgentInfo,
    Reply,
    Reservation,
    ServerIdentity,
    StaticReservations,
    build,
    decide,
    parse,
)
from corral.services.dhcp_store import relay_check_for

SW1 = Switch(name="sw1", address="10.1.0.250", agent_ids=["00:11:22:33:44:55"],
             ports={"12": "n012", "13": "n013"})  # fmt: skip
SW2 = Switch(name="sw2", address="10.1.0.251", ports={"Gi1/0/7": "n107"})
SWITCHES = {"sw1": SW1, "sw2": SW2}


@pytest.mark.parametrize(
    ("node", "circuit_id", "remote_id", "contradicts"),
    [
        ("n012", "12", "sw1", False),  # its own port
        ("n012", "Gi1/0/12", b"\x00\x11\x22\x33\x44\x55", False),  # sw1 by its MAC
        ("n012", "12", None, False),  # no remote-id: its port on its own switch
        ("n012", "13", "sw1", True),  # n013's port
        ("n012", "30", "sw1", True),  # a port of its switch that the map gives nobody
        ("n012", "13", None, True),
        ("n012", "Gi1/0/7", "sw2", True),  # another switch altogether
        ("n012", "12", "sw2", True),  # port 12, but of sw2
        ("n012", "12", "unknown-relay", False),  # a relay the map does not know: cannot tell
        ("n012", None, "sw1", False),  # no circuit-id: nothing to compare
        ("n999", "30", "sw1", False),  # a node on no mapped port: not bound
    ],
)
def test_option_82_contradicts_the_switch_map_only_where_the_map_can_tell(
    node: str, circuit_id: str | None, remote_id: str | bytes | None, contradicts: bool
) -> None:
    why = port_contradiction(SWITCHES, node, circuit_id, remote_id)
    assert (why is not None) is contradicts, why
    if why is not None:
        assert "sw1 port 12" in why  # says where the map has the node


IP = IPv4Address
SERVER = ServerIdentity(IP("10.77.0.1"), http_port=8080)
REMOTE = NetworkConfig("remote", IPv4Network("10.88.0.0/24"), gateway=IP("10.88.0.1"))
N012_MAC = "52:54:00:00:00:12"


def relayed(
    mtype: MessageType, circuit_id: bytes, extra: dict[int, OptionValue] | None = None
) -> Message:
    """A request for n012's MAC as sw1's relay agent forwards it from port `circuit_id`."""
    opts: dict[int, OptionValue] = {
        Opt.MESSAGE_TYPE: mtype,
        Opt.RELAY_AGENT_INFO: RelayAgentInfo(((1, circuit_id), (2, b"sw1"))),
        **(extra or {}),
    }
    chaddr = bytes.fromhex(N012_MAC.replace(":", ""))
    msg = Message(xid=0x82, chaddr=chaddr, giaddr=IP("10.88.0.1"), hops=1, options=opts)
    return parse(build(msg))


def context() -> DhcpContext:
    reservation = Reservation(N012_MAC, IP("10.88.0.12"), "n012", "remote")
    return DhcpContext(
        server=SERVER,
        networks=(REMOTE,),
        reservations=StaticReservations([reservation]),
        leases=LeaseTable(),
        relay_check=relay_check_for(SWITCHES),
    )


def test_the_node_on_its_own_port_gets_its_address() -> None:
    reply = decide(relayed(MessageType.DISCOVER, b"12"), context(), 1000.0)
    assert isinstance(reply, Reply)
    assert reply.message.yiaddr == IP("10.88.0.12")


def test_its_mac_from_another_port_gets_no_offer_and_no_ack_and_raises_an_alarm() -> None:
    c = context()
    offer = decide(relayed(MessageType.DISCOVER, b"30"), c, 1000.0)
    assert isinstance(offer, NoReply)
    assert offer.alarm == "n012"
    assert "10.88.0.12" in offer.reason and "sw1 port 12" in offer.reason
    asked = relayed(MessageType.REQUEST, b"30", {Opt.REQUESTED_IP: IP("10.88.0.12")})
    ack = decide(asked, c, 1001.0)
    assert isinstance(ack, NoReply) and ack.alarm == "n012"
    assert c.leases.lookup(N012_MAC) is None  # nothing was held or bound for it


def test_without_a_mapped_port_nothing_is_checked() -> None:
    c = context()
    unmapped = DhcpContext(
        server=c.server,
        networks=c.networks,
        reservations=c.reservations,
        leases=LeaseTable(),
        relay_check=relay_check_for({"sw1": Switch(name="sw1", address="10.1.0.250")}),
    )
    reply = decide(relayed(MessageType.DISCOVER, b"30"), unmapped, 1000.0)
    assert isinstance(reply, Reply)
