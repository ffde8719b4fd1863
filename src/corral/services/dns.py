"""The cluster's DNS server: asyncio glue around `corral.clusterdns`.

Why a server of our own: node names and addresses live in the inventory, and an
admin who adds a node expects its name to resolve at once, on every server, with
nothing to regenerate (dnsmasq would need a hosts file rewritten and a SIGHUP).
The zone is rebuilt when the inventory generation changes (one small query every
`refresh` seconds), so a change is answered within about a second.

Hot path: an answer from our zone is cached as wire bytes keyed by the query less
its ID, so a repeated question costs a dict lookup and one `sendto`. The UDP
socket is read by a reader callback that drains up to `DRAIN` datagrams per
wake-up with plain `recvfrom`/`sendto` (asyncio's datagram transport reads one
per event-loop turn, which was most of the cost per query under dnsperf). Names
outside our zones are forwarded to the upstream resolvers; a bounded number of
forwards are in flight at once, the rest are refused (SERVFAIL) rather than queued.
Malformed datagrams are counted and dropped: no input can stop the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode

from corral.clusterdns.answer import answer
from corral.clusterdns.zone import Zone, build_zone
from corral.inventory.index import Inventory
from corral.store.db import Store
from corral.store.inventory import generation, load_inventory

log = logging.getLogger(__name__)
Address = tuple[str, int]
MAX_QUERY = 4096  # bytes: a question plus EDNS fits in far less
MAX_CACHE = 20_000  # cached answers before the cache is emptied
MAX_FORWARDS = 256  # forwarded queries in flight at once
UDP_PAYLOAD = 512  # without EDNS (RFC 1035)
TCP_IDLE = 10.0  # seconds a TCP client may stay silent
DRAIN = 64  # datagrams read per wake-up of the UDP reader


@dataclass
class DnsCounters:
    """What the server has seen since `start()`; read them, don't write them."""

    queries: int = 0
    answered: int = 0
    cached: int = 0
    forwarded: int = 0
    forward_failed: int = 0
    malformed: int = 0
    refused: int = 0


@dataclass
class ZoneSource:
    """Where zones come from: the inventory generation, and a loader for a new zone."""

    generation: Callable[[], int]
    load: Callable[[], tuple[int, Inventory]]
    build: Callable[[Inventory, int], Zone]


@dataclass
class DnsServer:
    source: ZoneSource
    host: str = "0.0.0.0"
    port: int = 53
    upstreams: list[str] = field(default_factory=list)  # "IP" or "IP:PORT"
    refresh: float = 0.5
    forward_timeout: float = 2.0
    counters: DnsCounters = field(default_factory=DnsCounters)
    zone: Zone = field(default_factory=Zone)

    def __post_init__(self) -> None:
        self._cache: dict[bytes, bytes] = {}
        self._udp: socket.socket | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._generation = -1
        self._forwarding = 0

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.reload()
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self._udp = sock
        self.port = sock.getsockname()[1]
        loop.add_reader(sock.fileno(), self._drain)
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port)
        self._spawn(self._refresh_loop())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._udp is not None:
            asyncio.get_running_loop().remove_reader(self._udp.fileno())
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the zone ------------------------------------------------------------------------

    async def reload(self) -> None:
        """Rebuild the zone if the inventory changed since the last build."""
        current = await asyncio.to_thread(self.source.generation)
        if current == self._generation:
            return
        generation, inv = await asyncio.to_thread(self.source.load)
        self.zone = await asyncio.to_thread(self.source.build, inv, generation)
        self._generation = generation
        self._cache.clear()
        log.info("dns zone at generation %d: %d names", generation, len(self.zone.addresses))

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh)
            try:
                await self.reload()
            except Exception:  # a busy database must not stop DNS
                log.exception("could not refresh the dns zone")

    # --- queries -------------------------------------------------------------------------

    def _drain(self) -> None:
        """Answer the datagrams waiting on the UDP socket (at most DRAIN per wake-up)."""
        sock = self._udp
        if sock is None:
            return
        for _ in range(DRAIN):
            try:
                data, addr = sock.recvfrom(MAX_QUERY + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error from an earlier reply
                log.debug("dns socket error: %s", exc)
                continue
            self.respond(data, UDP_PAYLOAD, partial(_send_udp, sock, addr))

    def respond(self, data: bytes, max_size: int, send: Callable[[bytes], None]) -> None:
        """Answer one query (wire bytes) through `send`, now or after forwarding."""
        self.counters.queries += 1
        if not 12 <= len(data) <= MAX_QUERY:
            self.counters.malformed += 1
            return
        key = data[2:] if max_size == UDP_PAYLOAD else b"tcp" + data[2:]
        hit = self._cache.get(key)
        if hit is not None:
            self.counters.cached += 1
            send(data[:2] + hit)
            return
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            self.counters.malformed += 1
            return
        if query.flags & dns.flags.QR:
            self.counters.malformed += 1
            return
        reply = answer(self.zone, query)
        if reply is None:
            self._forward(query, max_size, send)
            return
        wire = _to_wire(reply, _payload(query, max_size))
        self.counters.answered += 1
        if len(self._cache) >= MAX_CACHE:
            self._cache.clear()
        self._cache[key] = wire[2:]
        send(wire)

    def _forward(
        self, query: dns.message.Message, max_size: int, send: Callable[[bytes], None]
    ) -> None:
        if not self.upstreams or self._forwarding >= MAX_FORWARDS:
            self.counters.refused += 1
            code = dns.rcode.REFUSED if not self.upstreams else dns.rcode.SERVFAIL
            send(_error(query, code))
            return
        self._forwarding += 1
        self._spawn(self._forward_one(query, max_size, send))

    async def _forward_one(
        self, query: dns.message.Message, max_size: int, send: Callable[[bytes], None]
    ) -> None:
        try:
            for upstream in self.upstreams:
                host, _, port = upstream.partition(":")
                try:
                    reply = await dns.asyncquery.udp(
                        query, host, timeout=self.forward_timeout, port=int(port or 53)
                    )
                except (dns.exception.DNSException, OSError) as exc:
                    log.debug("dns upstream %s: %s", upstream, exc)
                    continue
                self.counters.forwarded += 1
                send(_to_wire(reply, _payload(query, max_size)))
                return
            self.counters.forward_failed += 1
            send(_error(query, dns.rcode.SERVFAIL))
        finally:
            self._forwarding -= 1

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def send(wire: bytes) -> None:
            writer.write(struct.pack("!H", len(wire)) + wire)

        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE)
                (length,) = struct.unpack("!H", head)
                data = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE)
                self.respond(data, 65535, send)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def store_zone_source(store: Store) -> ZoneSource:
    """Zones from corral's database: a generation check, and a full load when it moved."""

    def current() -> int:
        with store.reading() as conn:
            return generation(conn)

    def load() -> tuple[int, Inventory]:
        with store.reading() as conn:
            return generation(conn), load_inventory(conn)

    return ZoneSource(current, load, build_zone)


def resolv_conf_upstreams(path: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The `nameserver` lines of resolv.conf: where names outside the cluster go."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    found = [
        line.split()[1] for line in lines if line.startswith("nameserver") and len(line.split()) > 1
    ]
    return [ip for ip in found if ":" not in ip]  # IPv4 only: the server binds IPv4


def _send_udp(sock: socket.socket, addr: Address, wire: bytes) -> None:
    """One reply; dropped (the client retries) if the socket buffer is full."""
    try:
        sock.sendto(wire, addr)
    except OSError as exc:
        log.debug("dns reply to %s not sent: %s", addr, exc)


def _payload(query: dns.message.Message, max_size: int) -> int:
    """How large a reply may be: the transport's limit, raised by the client's EDNS."""
    if max_size > UDP_PAYLOAD:
        return max_size
    return max(UDP_PAYLOAD, min(query.payload, 4096)) if query.edns >= 0 else UDP_PAYLOAD


def _to_wire(reply: dns.message.Message, max_size: int) -> bytes:
    """The reply's wire form; truncated (TC, no records) when it does not fit."""
    try:
        return reply.to_wire(max_size=max_size)
    except dns.exception.TooBig:
        reply.answer.clear()
        reply.authority.clear()
        reply.additional.clear()
        reply.flags |= dns.flags.TC
        return reply.to_wire(max_size=max_size)


def _error(query: dns.message.Message, rcode: dns.rcode.Rcode) -> bytes:
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    return reply.to_wire()
