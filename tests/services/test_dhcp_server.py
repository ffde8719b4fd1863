"""The DHCP transport on loopback: garbage, counters, durable ACKs, send fallbacks.

The server is the real `DhcpServer` on a loopback socket; its lease stores are
`MemoryLeaseStore` (shipped) or named test stores that block or fail.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import socket
import threading
import time
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from corral.protocols.dhcp import (
    Discovered,
    Lease,
    LeaseChange,
    LeaseConflict,
    LeaseState,
    MalformedPacket,
    MemoryLeaseStore,
    Message,
    MessageType,
    NetworkConfig,
    Opt,
    Pool,
    Reservation,
    ServerIdentity,
    StaticReservations,
    build,
    parse,
)
from corral.services.dhcp import DhcpServer
from corral.services.dhcp_store import DbLeaseStore
from corral.store.db import Store

IP = IPv4Address
LOOP_NET = NetworkConfig(
    "loop",
    IPv4Network("127.0.0.0/8"),
    gateway=IP("127.0.0.1"),
    lease_time=300,
    dynamic_range=Pool(IP("127.0.0.100"), IP("127.0.0.120")),
)
KNOWN = "52:54:00:00:00:05"


def _server(client_port: int, **kw: object) -> DhcpServer:
    return DhcpServer(
        server=ServerIdentity(IP("127.0.0.1")),
        networks=[LOOP_NET],
        reservations=StaticReservations([Reservation(KNOWN, IP("127.0.0.5"), "loopnode")]),
        host="127.0.0.1",
        interface="lo",
        port=0,
        client_port=client_port,
        **kw,  # type: ignore[arg-type]
    )


def _garbage(rng: random.Random, valid: bytes) -> bytes:
    """Bytes that do not parse: random, truncated or corrupted packets."""
    while True:
        data = _mangle(rng, valid)
        try:
            parse(data)
        except MalformedPacket:
            return data


def _mangle(rng: random.Random, valid: bytes) -> bytes:
    kind = rng.randrange(3)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 600))
    if kind == 1:
        return valid[: rng.randrange(len(valid))]
    flipped = bytearray(valid)
    for _ in range(rng.randrange(1, 8)):
        flipped[rng.randrange(240, len(flipped))] = rng.randrange(256)
    return bytes(flipped)


def _renew(mac: str, ciaddr: str) -> bytes:
    msg = Message(
        xid=0x5151,
        ciaddr=IP(ciaddr),
        chaddr=bytes.fromhex(mac.replace(":", "")),
        options={Opt.MESSAGE_TYPE: MessageType.REQUEST, Opt.HOSTNAME: "x"},
    )
    return build(msg)


def _select(mac: str, ip: str, relay: str) -> bytes:
    """A REQUEST in SELECTING state (this server's offer of `ip` taken), through `relay`."""
    msg = Message(
        xid=0x5152,
        giaddr=IP(relay),
        chaddr=bytes.fromhex(mac.replace(":", "")),
        options={
            Opt.MESSAGE_TYPE: MessageType.REQUEST,
            Opt.SERVER_ID: IP("127.0.0.1"),
            Opt.REQUESTED_IP: IP(ip),
        },
    )
    return build(msg)


def _client(address: str) -> socket.socket:
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind((address, 0))
    client.setblocking(False)
    return client


async def _reply(client: socket.socket, timeout: float = 5.0) -> Message:
    loop = asyncio.get_running_loop()
    data = await asyncio.wait_for(loop.sock_recv(client, 2048), timeout)
    return parse(data)


def test_live_server_survives_10000_garbage_datagrams() -> None:
    async def run() -> None:
        client = _client("127.0.0.5")  # replies go to ciaddr
        server = _server(client.getsockname()[1])
        await server.start()
        try:
            target = ("127.0.0.1", server.bound_ports[0])
            rng = random.Random(1234)
            valid = _renew(KNOWN, "127.0.0.5")
            for _ in range(10_000):
                client.sendto(_garbage(rng, valid), target)
                await asyncio.sleep(0)
            client.sendto(_renew(KNOWN, "127.0.0.5"), target)
            reply = await _reply(client)
            assert reply.xid == 0x5151
            assert reply.message_type == MessageType.ACK
            assert reply.options[Opt.HOSTNAME] == "loopnode"
            assert server.counters.malformed >= 9_000  # loopback may drop a few
            assert server.counters.replied >= 1
        finally:
            await server.stop()
            client.close()

    asyncio.run(run())


def test_with_a_listen_address_unicast_to_another_address_is_dropped() -> None:
    """IP_PKTINFO: the socket is on 0.0.0.0 (for broadcasts) but serves 127.0.0.1 only."""

    async def run() -> None:
        client = _client("127.0.0.5")
        server = _server(client.getsockname()[1])
        await server.start()
        try:
            port = server.bound_ports[0]
            client.sendto(_renew(KNOWN, "127.0.0.5"), ("127.0.0.2", port))
            client.sendto(_renew(KNOWN, "127.0.0.5"), ("127.0.0.1", port))
            reply = await _reply(client)
            assert reply.message_type == MessageType.ACK
            assert server.counters.not_for_us == 1 and server.counters.received == 1
        finally:
            await server.stop()
            client.close()

    asyncio.run(run())


def test_leases_and_discoveries_go_to_store_and_callback() -> None:
    seen: list[Discovered] = []
    store = MemoryLeaseStore()

    async def run() -> None:
        client = _client("127.0.0.101")
        server = _server(client.getsockname()[1], store=store, on_discovered=seen.append)
        await server.start()
        try:
            target = ("127.0.0.1", server.bound_ports[0])
            client.sendto(_renew("52:54:00:aa:bb:cc", "127.0.0.101"), target)
            reply = await _reply(client)
            assert reply.message_type == MessageType.ACK
        finally:
            await server.stop()
            client.close()

    asyncio.run(run())
    [lease] = store.load()
    assert (lease.mac, lease.ip) == ("52:54:00:aa:bb:cc", IP("127.0.0.101"))
    assert [d.mac for d in seen] == ["52:54:00:aa:bb:cc"]


class HeldLeaseStore(MemoryLeaseStore):
    """A test store whose writes wait until the test lets them through (a slow disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = threading.Event()
        self.release = threading.Event()

    def apply(self, changes: Sequence[LeaseChange]) -> None:
        self.writing.set()
        assert self.release.wait(10), "the test never released the write"
        super().apply(changes)


class FailingLeaseStore(MemoryLeaseStore):
    """A test store whose every write fails (a full disk, a lost database)."""

    def apply(self, changes: Sequence[LeaseChange]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_an_ack_is_sent_only_after_its_lease_is_written() -> None:
    store = HeldLeaseStore()

    async def run() -> None:
        client = _client("127.0.0.102")
        server = _server(client.getsockname()[1], store=store)
        await server.start()
        try:
            target = ("127.0.0.1", server.bound_ports[0])
            client.sendto(_renew("52:54:00:aa:bb:cd", "127.0.0.102"), target)
            assert await asyncio.to_thread(store.writing.wait, 5)
            await asyncio.sleep(0)  # let the loop run anything it would send
            with pytest.raises(BlockingIOError):
                client.recv(2048)  # the lease is not durable yet: no ACK
            assert store.load() == []
            store.release.set()
            reply = await _reply(client)
            assert reply.message_type == MessageType.ACK
            assert [lease.ip for lease in store.load()] == [IP("127.0.0.102")]
        finally:
            store.release.set()
            await server.stop()
            client.close()

    asyncio.run(run())


def test_a_lease_that_cannot_be_written_is_never_acknowledged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def run() -> None:
        client = _client("127.0.0.103")
        server = _server(client.getsockname()[1], store=FailingLeaseStore())
        await server.start()
        try:
            target = ("127.0.0.1", server.bound_ports[0])
            client.sendto(_renew("52:54:00:aa:bb:ce", "127.0.0.103"), target)
            with pytest.raises(TimeoutError):
                await _reply(client, timeout=1.0)
            assert server.counters.write_errors == 1 and server.counters.replied == 0
        finally:
            await server.stop()
            client.close()

    with caplog.at_level(logging.WARNING, "corral.services.dhcp"):
        asyncio.run(run())
    assert "No space left on device" in caplog.text


def test_a_reply_that_cannot_be_built_is_logged_and_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A lease time no 32-bit option holds (from a database older than the bound)."""

    async def run() -> None:
        client = _client("127.0.0.5")
        server = _server(client.getsockname()[1])
        server.update(networks=(NetworkConfig("loop", LOOP_NET.cidr, lease_time=99999999999),))
        await server.start()
        try:
            target = ("127.0.0.1", server.bound_ports[0])
            client.sendto(_renew(KNOWN, "127.0.0.5"), target)
            with pytest.raises(TimeoutError):
                await _reply(client, timeout=1.0)
            assert server.counters.errors == 1
            server.update(networks=(LOOP_NET,))
            client.sendto(_renew(KNOWN, "127.0.0.5"), target)
            assert (await _reply(client)).message_type == MessageType.ACK
        finally:
            await server.stop()
            client.close()

    with caplog.at_level(logging.WARNING, "corral.services.dhcp"):
        asyncio.run(run())
    assert f"could not answer {KNOWN}" in caplog.text


class FakeENOBUFSSocket:
    """A socket whose unicasts fail as with a full neighbour table (can't be provoked safely)."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def sendto(self, data: bytes, target: tuple[str, int]) -> int:
        if target[0] != "255.255.255.255":
            raise OSError(errno.ENOBUFS, "No buffer space available")
        self.sent.append((data, target))
        return len(data)


def test_enobufs_on_unicast_falls_back_to_broadcast() -> None:
    server = _server(68)
    server._arp = lambda msg: True  # type: ignore[method-assign]
    sock = FakeENOBUFSSocket()
    discover = Message(
        xid=7,
        chaddr=bytes.fromhex("525400aabbcd"),
        options={Opt.MESSAGE_TYPE: MessageType.DISCOVER},
    )
    server.handle(build(discover), ("0.0.0.0", 68), sock, 67)  # type: ignore[arg-type]
    [(data, target)] = sock.sent
    assert target == ("255.255.255.255", 68)
    assert parse(data).message_type == MessageType.OFFER
    assert server.counters.broadcast_fallbacks == 1 and server.counters.replied == 1


def test_proxy_mode_answers_port_4011_to_the_source() -> None:
    async def run() -> None:
        client = _client("127.0.0.1")
        server = _server(68, proxy=True, proxy_port=0)
        await server.start()
        try:
            dhcp_port, proxy_port = server.bound_ports
            assert dhcp_port != proxy_port
            req = Message(
                xid=0x4011,
                ciaddr=IP("127.0.0.1"),
                chaddr=bytes.fromhex("525400aabbce"),
                options={
                    Opt.MESSAGE_TYPE: MessageType.REQUEST,
                    Opt.VENDOR_CLASS: "PXEClient:Arch:00007:UNDI:003016",
                    Opt.CLIENT_ARCH: (7,),
                },
            )
            client.sendto(build(req), ("127.0.0.1", proxy_port))
            reply = await _reply(client)
            assert reply.message_type == MessageType.ACK
            assert reply.file == "ipxe.efi" and reply.yiaddr == IP(0)
        finally:
            await server.stop()
            client.close()

    asyncio.run(run())


def test_an_address_another_server_bound_first_is_not_acked_then_nakked(
    tmp_path: Path,
) -> None:
    """Two servers on one database: this one learns of the other's lease from the conflict."""
    store = Store(f"sqlite:///{tmp_path / 'corral.db'}")
    store.migrate()
    mac, other_mac, ip = "52:54:00:aa:bb:cf", "52:54:00:aa:bb:d0", "127.0.0.104"

    async def run() -> None:
        relay = _client("127.0.0.60")  # replies to a relayed request go to the relay
        port = relay.getsockname()[1]
        server = _server(port, relay_port=port, store=DbLeaseStore(store))
        # the other server binds the address after this one loaded its leases
        other = Lease(other_mac, IP(ip), time.time() + 300, LeaseState.BOUND)
        DbLeaseStore(Store(store.url)).apply([LeaseChange(other_mac, other)])
        await server.start()
        try:
            target = ("127.0.0.1", server.bound_ports[0])
            relay.sendto(_select(mac, ip, "127.0.0.60"), target)
            with pytest.raises(TimeoutError):
                await _reply(relay, timeout=1.0)
            assert server.counters.lease_conflicts == 1 and server.counters.replied == 0
            relay.sendto(_select(mac, ip, "127.0.0.60"), target)  # the client's retry
            assert (await _reply(relay)).message_type == MessageType.NAK
            assert [(x.mac, str(x.ip)) for x in DbLeaseStore(store).load()] == [(other_mac, ip)]
        finally:
            await server.stop()
            relay.close()

    asyncio.run(run())


class CountingHeldStore(HeldLeaseStore):
    """A held test store that records each batch it was asked to write."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def apply(self, changes: Sequence[LeaseChange]) -> None:
        self.batches.append([c.mac for c in changes])
        super().apply(changes)


def test_requests_that_arrive_during_a_write_share_the_next_commit() -> None:
    """Group commit: a boot storm costs a transaction per batch, and every client is ACKed."""
    store = CountingHeldStore()
    macs = [f"52:54:00:aa:bc:{i:02x}" for i in range(5)]
    addresses = [f"127.0.0.{110 + i}" for i in range(5)]

    async def run() -> None:
        first = _client(addresses[0])  # replies go to each client's address, one port
        port = first.getsockname()[1]
        clients = [first] + [_client_on(a, port) for a in addresses[1:]]
        server = _server(port, store=store)
        await server.start()
        try:
            target = ("127.0.0.1", server.bound_ports[0])
            clients[0].sendto(_renew(macs[0], addresses[0]), target)
            assert await asyncio.to_thread(store.writing.wait, 5)  # the writer is busy
            for client, mac, address in zip(clients[1:], macs[1:], addresses[1:], strict=True):
                client.sendto(_renew(mac, address), target)
            deadline = time.monotonic() + 10
            while server.counters.received < 5 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            store.release.set()
            replies = [await _reply(client) for client in clients]
            assert [r.message_type for r in replies] == [MessageType.ACK] * 5
        finally:
            store.release.set()
            await server.stop()
            for client in clients:
                client.close()

    asyncio.run(run())
    assert store.batches == [macs[:1], macs[1:]]
    assert {lease.mac for lease in store.load()} == set(macs)


def _client_on(address: str, port: int) -> socket.socket:
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind((address, port))
    client.setblocking(False)
    return client


class ConflictingStore(MemoryLeaseStore):
    """A test store where another server already bound one MAC's address (as DbLeaseStore
    reports it: the rest of the batch is written, then LeaseConflict names the lost lease)."""

    def __init__(self, loser: str) -> None:
        super().__init__()
        self.loser = loser
        self.held = threading.Event()
        self.release = threading.Event()

    def apply(self, changes: Sequence[LeaseChange]) -> None:
        self.held.set()
        assert self.release.wait(10), "the test never released the write"
        lost = [c.lease for c in changes if c.mac == self.loser and c.lease is not None]
        super().apply([c for c in changes if c.mac != self.loser])
        if lost:
            raise LeaseConflict(lost)


def test_a_conflict_in_a_shared_commit_fails_only_the_client_it_names() -> None:
    winner, loser = "52:54:00:aa:bd:01", "52:54:00:aa:bd:02"
    store = ConflictingStore(loser)

    async def run() -> None:
        first = _client("127.0.0.114")
        port = first.getsockname()[1]
        second = _client_on("127.0.0.115", port)
        third = _client_on("127.0.0.116", port)
        server = _server(port, store=store)
        await server.start()
        try:
            target = ("127.0.0.1", server.bound_ports[0])
            first.sendto(_renew("52:54:00:aa:bd:00", "127.0.0.114"), target)
            assert await asyncio.to_thread(store.held.wait, 5)
            second.sendto(_renew(winner, "127.0.0.115"), target)
            third.sendto(_renew(loser, "127.0.0.116"), target)
            deadline = time.monotonic() + 10
            while server.counters.received < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            store.release.set()
            assert (await _reply(first)).message_type == MessageType.ACK
            assert (await _reply(second)).message_type == MessageType.ACK
            with pytest.raises(TimeoutError):
                await _reply(third, timeout=1.0)
            assert server.counters.lease_conflicts == 1
        finally:
            store.release.set()
            await server.stop()
            for c in (first, second, third):
                c.close()

    asyncio.run(run())
