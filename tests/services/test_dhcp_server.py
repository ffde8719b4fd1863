"""The DHCP transport on loopback: garbage, counters, lease files, send fallbacks."""

from __future__ import annotations

import asyncio
import errno
import json
import random
import socket
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from corral.protocols.dhcp import (
    Discovered,
    Lease,
    MalformedPacket,
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
from corral.services.dhcp import DhcpServer, JsonLeaseStore, load_config

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


def _client(address: str) -> socket.socket:
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind((address, 0))
    client.setblocking(False)
    return client


async def _reply(client: socket.socket) -> Message:
    loop = asyncio.get_running_loop()
    data = await asyncio.wait_for(loop.sock_recv(client, 2048), 5)
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
            server.close()
            client.close()

    asyncio.run(run())


def test_leases_and_discoveries_go_to_store_and_callback(tmp_path: Path) -> None:
    seen: list[Discovered] = []

    async def run() -> None:
        client = _client("127.0.0.101")
        store = JsonLeaseStore(tmp_path / "leases.json")
        server = _server(client.getsockname()[1], store=store, on_discovered=seen.append)
        await server.start()
        try:
            target = ("127.0.0.1", server.bound_ports[0])
            client.sendto(_renew("52:54:00:aa:bb:cc", "127.0.0.101"), target)
            reply = await _reply(client)
            assert reply.message_type == MessageType.ACK
        finally:
            server.close()
            client.close()

    asyncio.run(run())
    [lease] = JsonLeaseStore(tmp_path / "leases.json").load()
    assert (lease.mac, lease.ip) == ("52:54:00:aa:bb:cc", IP("127.0.0.101"))
    assert [d.mac for d in seen] == ["52:54:00:aa:bb:cc"]


def test_json_lease_store_round_trip_and_atomic_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "leases.json"
    store = JsonLeaseStore(path)
    store.save(Lease("52:54:00:00:00:01", IP("10.0.0.1"), 123.5, hostname="n1"))
    store.save(Lease("52:54:00:00:00:02", IP("10.0.0.2"), 124.0))
    store.delete("52:54:00:00:00:02")
    assert JsonLeaseStore(path).load() == [
        Lease("52:54:00:00:00:01", IP("10.0.0.1"), 123.5, hostname="n1")
    ]
    assert [p.name for p in path.parent.iterdir()] == ["leases.json"]
    path.write_text("{not json")
    with pytest.raises(ValueError, match="lease file"):
        JsonLeaseStore(path)


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
    server = _server(68, interface="lo")
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


def test_config_rejects_unknown_keys_by_name() -> None:
    with pytest.raises(ValueError, match="colour"):
        load_config({"server_ip": "10.0.0.1", "colour": "blue"})
    with pytest.raises(ValueError, match="gatway"):
        load_config(
            {
                "server_ip": "10.0.0.1",
                "networks": [{"name": "n", "cidr": "10.0.0.0/24", "gatway": 1}],
            }
        )
    cfg = load_config(json.loads(json.dumps({"server_ip": "10.0.0.1", "networks": []})))
    assert cfg.server_ip == IP("10.0.0.1")


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
            server.close()
            client.close()

    asyncio.run(run())
