"""CPU per DORA of corral's DHCP server, in-process: no root, no netns, no perfdhcp.

Usage: .venv/bin/python bench/dhcp_cost.py [--clients 1000] [--window 64]

Why: perfdhcp against `corral serve` measures the machine as much as corral when
the 2 cores are shared; process CPU per DORA is steadier. A real `DhcpServer`
(SQLite lease store in a temporary directory, the reservation refresh that
unknown clients wait for, as under `corral serve`) listens on 127.0.0.1; one
relay socket (giaddr 127.0.0.60, so replies are unicast back to it) runs
`--clients` new clients through DISCOVER-OFFER-REQUEST-ACK with at most
`--window` in flight. Prints wall leases/s and process CPU per DORA (server and
this small client together; the client is a few percent of it). Compare two
versions of the code with PYTHONPATH=<other checkout>/src.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
import time
from ipaddress import IPv4Address, IPv4Network

from corral.protocols.dhcp import (
    Message,
    MessageType,
    NetworkConfig,
    Opt,
    OptionValue,
    Pool,
    ServerIdentity,
    build,
    parse,
)
from corral.services.dhcp import DhcpServer
from corral.services.dhcp_store import DbLeaseStore, DhcpFeed, reservation_rows, reservations_from
from corral.store.db import open_store
from corral.store.inventory import read_inventory

SERVER = IPv4Address("127.0.0.1")
RELAY = IPv4Address("127.0.0.60")
NET = NetworkConfig(
    "loop",
    IPv4Network("127.0.0.0/8"),
    gateway=SERVER,
    lease_time=3600,
    dynamic_range=Pool(IPv4Address("127.1.0.0"), IPv4Address("127.1.255.255")),
)


def packet(i: int, kind: MessageType, want: IPv4Address | None = None) -> bytes:
    mac = bytes([0x52, 0x54, 0, (i >> 16) & 255, (i >> 8) & 255, i & 255])
    options: dict[int, OptionValue] = {Opt.MESSAGE_TYPE: kind}
    if want is not None:
        options.update({Opt.REQUESTED_IP: want, Opt.SERVER_ID: SERVER})
    return build(Message(xid=i, giaddr=RELAY, chaddr=mac, options=options))


async def storm(clients: int, window: int) -> None:
    store = open_store(f"sqlite:///{tempfile.mkdtemp(prefix='corral-dhcp-cost-')}/corral.db")
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay.bind((str(RELAY), 0))
    relay.setblocking(False)
    port = relay.getsockname()[1]
    rows = reservation_rows(store)
    server = DhcpServer(
        server=ServerIdentity(SERVER),
        networks=[NET],
        reservations=reservations_from(rows),
        store=DbLeaseStore(store),
        host=str(SERVER),
        interface="lo",
        port=0,
        client_port=port,
        relay_port=port,
    )
    feed = DhcpFeed(server, store, read=lambda: read_inventory(store), rows=rows)
    server.refresh = feed.refresh_reservations
    await server.start()
    loop = asyncio.get_running_loop()
    target = (str(SERVER), server.bound_ports[0])
    cpu, wall = time.process_time(), time.perf_counter()
    sent = acked = 0
    try:
        while acked < clients:
            while sent < clients and sent - acked < window:
                relay.sendto(packet(sent, MessageType.DISCOVER), target)
                sent += 1
            reply = parse(await asyncio.wait_for(loop.sock_recv(relay, 2048), 30))
            if reply.message_type == MessageType.OFFER:
                relay.sendto(packet(reply.xid, MessageType.REQUEST, reply.yiaddr), target)
            elif reply.message_type == MessageType.ACK:
                acked += 1
    finally:
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await server.stop()
        relay.close()
    print(
        f"{clients} DORA, {window} in flight: {clients / wall:.0f} leases/s (wall {wall:.2f} s), "
        f"CPU {cpu:.2f} s = {cpu / clients * 1e3:.2f} ms per DORA"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--window", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(storm(args.clients, args.window))


if __name__ == "__main__":
    main()
