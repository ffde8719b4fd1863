"""DHCP inside a live `corral serve` on loopback: what it reads, when, and on which thread.

The server is the real `CorralServer` on its own event loop in a thread, with
its real database; the test changes the inventory through `LocalActions` (what
the CLI runs) on a second connection, as an admin would while it serves.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from corral.actions import LocalActions
from corral.app import Corral
from corral.config import Settings
from corral.inventory.errors import InventoryError
from corral.protocols.dhcp import Message, MessageType, Opt, build, parse
from corral.services.serve import CorralServer, ServeOptions
from tests.helpers.loop import run_in_thread

IP = IPv4Address
NODE_MAC = "52:54:00:83:00:50"
NODE_IP = "127.83.0.50"


@dataclass
class Dhcp:
    server: CorralServer
    actions: LocalActions  # a second Corral: another process's view of the database

    @property
    def target(self) -> tuple[str, int]:
        assert self.server.dhcp is not None
        return ("127.0.0.1", self.server.dhcp.bound_ports[0])


@pytest.fixture
def dhcp(corral_home: Path) -> Iterator[Dhcp]:
    admin = LocalActions(Corral(Settings.from_env()))
    admin.add_network(
        {"name": "loop", "cidr": "127.0.0.0/8", "dynamic_range": "127.83.0.200-127.83.0.201"}
    )
    admin.add_profile({"name": "compute", "networks": ["loop"]})
    options = ServeOptions(
        address="127.0.0.1", http_port=0, dhcp_port=0, tftp=False, seeder=False, bt_port=0
    )
    server = CorralServer(Corral(Settings.from_env()), options)
    for started in run_in_thread(server):
        yield Dhcp(started, admin)


def _client(address: str, port: int = 68) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.settimeout(0.1)
    return sock


def _chaddr(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def _renew(mac: str, ciaddr: str, xid: int) -> bytes:
    options: dict[int, Any] = {Opt.MESSAGE_TYPE: MessageType.REQUEST}
    return build(Message(xid=xid, ciaddr=IP(ciaddr), chaddr=_chaddr(mac), options=options))


def _discover(mac: str) -> bytes:
    options: dict[int, Any] = {Opt.MESSAGE_TYPE: MessageType.DISCOVER}
    return build(Message(xid=0x83, chaddr=_chaddr(mac), options=options))


def _ack_within(dhcp: Dhcp, mac: str, ip: str, seconds: float) -> Message | None:
    """Renew `ip` for `mac` every 0.1 s until an ACK comes or `seconds` pass."""
    client = _client(ip)
    try:
        deadline = time.monotonic() + seconds
        xid = 1
        while time.monotonic() < deadline:
            client.sendto(_renew(mac, ip, xid), dhcp.target)
            try:
                reply = parse(client.recv(2048))
            except TimeoutError:
                xid += 1
                continue
            if reply.message_type == MessageType.ACK:
                return reply
        return None
    finally:
        client.close()


def test_a_node_added_while_serving_is_answered_as_that_node_at_once(dhcp: Dhcp) -> None:
    """Its very first packet, sent right after the add, gets its reservation."""
    dhcp.actions.add_nodes(["n50"], {"profiles": ["compute"]}, mac=NODE_MAC, ip=NODE_IP)
    added = time.monotonic()
    client = _client(NODE_IP)
    client.settimeout(2.0)
    try:
        client.sendto(_renew(NODE_MAC, NODE_IP, 0x50), dhcp.target)
        reply = parse(client.recv(2048))
    finally:
        client.close()
    took = time.monotonic() - added
    assert (reply.xid, reply.message_type) == (0x50, MessageType.ACK)
    assert reply.options[Opt.HOSTNAME] == "n50"
    assert took < 1.0, f"the new node was answered only after {took:.2f} s"


def test_dhcp_runs_no_sql_on_the_event_loop(dhcp: Dhcp) -> None:
    """Known and unknown clients, lease writes and discovery: all off the loop."""
    dhcp.actions.add_nodes(["n50"], {"profiles": ["compute"]}, mac=NODE_MAC, ip=NODE_IP)
    assert _ack_within(dhcp, NODE_MAC, NODE_IP, 5.0) is not None  # the snapshot has it
    on_loop: list[str] = []
    engine = dhcp.server.corral.store.engine

    def spy(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # a worker or writer thread: fine
        on_loop.append(f"{threading.current_thread().name}: {statement}")

    sa.event.listen(engine, "before_cursor_execute", spy)
    try:
        assert _ack_within(dhcp, NODE_MAC, NODE_IP, 5.0) is not None  # lease write
        unknown = "52:54:00:83:00:99"
        sender = _client("127.0.0.1", 0)
        try:
            sender.sendto(_discover(unknown), dhcp.target)  # discovery record
        finally:
            sender.close()
        _wait_for(lambda: unknown in {d["mac"] for d in dhcp.actions.discovered()}, 5.0)
    finally:
        sa.event.remove(engine, "before_cursor_execute", spy)
    assert on_loop == []


def _wait_for(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_pool_exhaustion_is_logged_and_the_unanswered_machines_are_discovered(
    dhcp: Dhcp, caplog: pytest.LogCaptureFixture
) -> None:
    macs = [f"52:54:00:83:01:{i:02x}" for i in range(6)]  # 6 machines, 2 addresses
    sender = _client("127.0.0.1", 0)
    with caplog.at_level(logging.WARNING, "corral.services.dhcp"):
        try:
            for mac in macs:
                sender.sendto(_discover(mac), dhcp.target)
        finally:
            sender.close()
        _wait_for(lambda: set(macs) <= {d["mac"] for d in dhcp.actions.discovered()}, 10.0)
    assert "network loop: no free address in 127.83.0.200-127.83.0.201" in caplog.text
    assert dhcp.server.dhcp is not None and dhcp.server.dhcp.counters.unanswered == 4
    # rate-limited: one warning for the four unanswered machines
    assert caplog.text.count("no free address") == 1


def test_two_forged_declines_do_not_lock_a_node_out(dhcp: Dhcp) -> None:
    """Issue 10, finding 2: DECLINEs from random MACs naming a reserved address."""
    dhcp.actions.add_nodes(["n50"], {"profiles": ["compute"]}, mac=NODE_MAC, ip=NODE_IP)
    assert _ack_within(dhcp, NODE_MAC, NODE_IP, 5.0) is not None
    server = dhcp.server.dhcp
    assert server is not None
    refused = server.counters.unanswered
    sender = _client("127.0.0.1", 0)
    try:
        for forger in ("02:13:37:00:00:01", "02:13:37:00:00:02"):
            options: dict[int, Any] = {
                Opt.MESSAGE_TYPE: MessageType.DECLINE,
                Opt.REQUESTED_IP: IP(NODE_IP),
                Opt.SERVER_ID: IP("127.0.0.1"),
            }
            sender.sendto(
                build(Message(xid=7, chaddr=_chaddr(forger), options=options)), dhcp.target
            )
    finally:
        sender.close()
    _wait_for(lambda: server.counters.unanswered == refused + 2, 5.0)  # both seen, refused
    assert _ack_within(dhcp, NODE_MAC, NODE_IP, 3.0) is not None, "the node was locked out"


def test_address_on_no_interface_is_refused_with_one_line(corral_home: Path) -> None:
    options = ServeOptions(address="127.83.9.9", http_port=0, dhcp_port=0, tftp=False, seeder=False)
    server = CorralServer(Corral(Settings.from_env()), options)

    async def run() -> None:
        try:
            await server.start()
        finally:
            await server.stop()

    with pytest.raises(InventoryError, match=r"--address 127\.83\.9\.9 is on no interface"):
        asyncio.run(run())
