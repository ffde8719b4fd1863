"""The DHCP server's asyncio transport: sockets around `corral.protocols.dhcp`.

All decisions are made by the sans-io `decide`; this module binds sockets,
parses and builds, sends each reply where the `Reply` says, and keeps every
slow thing off the event loop, which also serves TFTP and HTTP:

- reservations and networks are in-memory snapshots in `DhcpContext`, which
  `corral serve` replaces from the database in the background
  (`corral.services.dhcp_store.DhcpFeed`); a client the snapshot does not
  know waits for one fresh reload (shared, in a thread) before it is
  answered, so a node added a moment ago is never taken for a stranger;
- lease changes and discovery records are written by one `BackgroundWriter`
  thread, in order. Lease changes of packets that arrive while a write is
  queued join that write (`LeaseBatch`: one transaction for many packets,
  a group commit), so a boot storm costs a commit per batch, not per ACK.
  A reply whose packet changed a lease (an ACK that binds it) is sent only
  once the change is committed, so a `kill -9` never loses a lease a client
  was told about. With SQLite (WAL, synchronous=NORMAL) a
  commit survives the process dying; an OS crash or power loss can lose the
  last commits, whose clients then renew into a NAK and start over.

Listening: a socket bound to one address never sees a broadcast DISCOVER.
So the DHCP socket is always bound to 0.0.0.0 and, when given, to the
interface (SO_BINDTODEVICE); with a listen address, datagrams unicast to
another address are dropped (IP_PKTINFO tells where each was sent).

Errors split in two. From the peer, only `MalformedPacket` is expected
(counted, logged at a limited rate). A reply we cannot build (a bug, or an
inventory value no packet can carry) is logged and dropped: one packet
never stops the server. Sending is where the kernel can refuse: unicast to
a client's new address needs a neighbour (ARP) entry, and with a full
neighbour table the kernel answers ENOBUFS; then the reply goes out as a
broadcast instead (see the shared netboot-lab notes).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import fcntl
import logging
import queue
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from ipaddress import IPv4Address

from corral.boot.firmware import select_boot
from corral.protocols.dhcp import (
    PROXY_PORT,
    BootSelector,
    Destination,
    DhcpContext,
    Discovered,
    Lease,
    LeaseChange,
    LeaseConflict,
    LeaseStore,
    LeaseTable,
    MalformedPacket,
    MemoryLeaseStore,
    Message,
    MessageType,
    NetworkConfig,
    NoReply,
    RelayCheck,
    Reply,
    ReservationLookup,
    ServerIdentity,
    build,
    decide,
    parse,
)

log = logging.getLogger("corral.services.dhcp")

SIOCSARP = 0x8955
ATF_COM = 0x02
ARPHRD_ETHER = 1
IP_PKTINFO = 8  # <linux/in.h>; the socket module does not export it
PKTINFO = struct.Struct("=i4s4s")  # struct in_pktinfo: ifindex, spec_dst, addr
RECV_SIZE = 4096  # DHCP messages are at most a few hundred bytes; larger is garbage
RECV_BUFFER = 4 << 20  # bytes of socket buffer: about 10,000 DHCP messages
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
RECV_BATCH = 64  # datagrams read per wake-up before the loop serves others
LOG_INTERVAL = 10.0  # seconds between two warnings of one kind
EXPIRE_INTERVAL = 60.0
ALARM_EVERY = 60.0  # seconds between two alarm events for one node
WAIT_LIMIT = 1024  # packets of unknown clients waiting for a reservation refresh
REFRESH_GAP = 0.1  # seconds: at most ten refreshes a second, however many unknown clients
ASKS_FOR_ADDRESS = (MessageType.DISCOVER, MessageType.REQUEST, MessageType.INFORM)
WRITE_QUEUE_LIMIT = 10_000  # writes waiting for the database before new ones are refused
ANY = IPv4Address("0.0.0.0")
BROADCAST = IPv4Address("255.255.255.255")
Address = tuple[str, int]


class WriterBusy(RuntimeError):
    """The database is so far behind that new writes are refused (replies dropped)."""


class BackgroundWriter:
    """One thread running the DHCP server's database writes in submission order.

    `submit` never blocks the caller: it queues the job and returns a future.
    The queue is bounded (`WRITE_QUEUE_LIMIT`): when the database falls that
    far behind, new jobs fail at once with `WriterBusy`, so memory stays
    bounded and a lease that could not be written is simply never ACKed.
    """

    def __init__(self, limit: int = WRITE_QUEUE_LIMIT, name: str = "dhcp-writer") -> None:
        self._jobs: queue.Queue[tuple[Callable[[], None], concurrent.futures.Future[None]] | None]
        self._jobs = queue.Queue(maxsize=limit)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._thread.start()
            self._started = True

    def submit(self, job: Callable[[], None]) -> concurrent.futures.Future[None]:
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        try:
            self._jobs.put_nowait((job, future))
        except queue.Full:
            future.set_exception(WriterBusy(f"{self._jobs.maxsize} writes are already waiting"))
        return future

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the queued writes, then end the thread (waits up to `timeout`)."""
        if not self._started:
            return
        self._jobs.put(None)
        self._thread.join(timeout)
        self._started = False

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                job()
            except BaseException as exc:  # reported to whoever waits for it
                future.set_exception(exc)
            else:
                future.set_result(None)


class LeaseBatch:
    """Lease changes of several packets, written in one transaction on the writer thread.

    The loop adds to the open batch until the writer takes it; after that a
    new batch starts. Every packet of a batch waits for the same future; a
    `LeaseConflict` fails only the packets whose leases it names.
    """

    def __init__(self, changes: list[LeaseChange]) -> None:
        self._changes = list(changes)
        self._taken = False
        self._lock = threading.Lock()
        self.future: concurrent.futures.Future[None] | None = None

    def join(self, changes: list[LeaseChange]) -> concurrent.futures.Future[None] | None:
        """Add to this batch and return its future; None once the writer has taken it
        (or it failed at once: the writer was busy): then start a new batch."""
        with self._lock:
            if self._taken or self.future is None or self.future.done():
                return None
            self._changes += changes
            return self.future

    def write(self, store: LeaseStore) -> None:
        with self._lock:
            self._taken = True
            changes = self._changes
        store.apply(changes)


def conflicts_with(exc: BaseException | None, changes: Sequence[LeaseChange]) -> bool:
    """Whether the failure `exc` of a batch write concerns these changes."""
    if exc is None:
        return False
    if not isinstance(exc, LeaseConflict):
        return True  # the transaction failed: nothing of the batch is durable
    lost = {(lease.mac, lease.ip) for lease in exc.lost}
    return any(c.lease is not None and (c.mac, c.lease.ip) in lost for c in changes)


class RateLimitedLog:
    """A warning at most every `interval` seconds, with the count of those held back."""

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        self.interval = interval
        self._at = -interval
        self._held = 0

    def warn(self, now: float, fmt: str, *args: object) -> None:
        self._held += 1
        if now - self._at < self.interval:
            return
        log.warning(fmt + " (%d like this since the last report)", *args, self._held)
        self._held = 0
        self._at = now


@dataclass
class DhcpCounters:
    received: int = 0
    replied: int = 0
    malformed: int = 0
    ignored: int = 0
    not_for_us: int = 0
    unanswered: int = 0
    errors: int = 0
    write_errors: int = 0
    send_errors: int = 0
    broadcast_fallbacks: int = 0
    lease_conflicts: int = 0  # another server bound the address first


def open_udp_socket(port: int, interface: str | None) -> socket.socket:
    """A non-blocking UDP socket on 0.0.0.0:`port` that may broadcast.

    Bound to `interface` if given, and reporting each datagram's destination
    address (IP_PKTINFO) so a listen address can be enforced.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        _large_receive_buffer(sock)
        if interface:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        sock.bind(("0.0.0.0", port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _large_receive_buffer(sock: socket.socket) -> None:
    """Room for a burst (a rack powering on at once) while the loop serves others.

    SO_RCVBUFFORCE passes the kernel's rmem_max cap but needs CAP_NET_ADMIN;
    without it, SO_RCVBUF gets what the cap allows.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECV_BUFFER)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)


def destination_of(ancdata: list[tuple[int, int, bytes]]) -> IPv4Address | None:
    """The address a datagram was sent to, from its IP_PKTINFO control message."""
    for level, kind, data in ancdata:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= PKTINFO.size:
            return IPv4Address(PKTINFO.unpack_from(data)[2])
    return None


def set_arp_entry(sock: socket.socket, interface: str, ip: IPv4Address, mac: bytes) -> None:
    """Insert a (temporary, complete) neighbour entry so unicast to `ip` can go out."""
    proto = struct.pack("=H2s4s8x", socket.AF_INET, b"\0\0", ip.packed)
    hw = struct.pack("=H6s8x", ARPHRD_ETHER, mac[:6])
    req = proto + hw + struct.pack("=i16s16s", ATF_COM, b"", interface.encode()[:15])
    fcntl.ioctl(sock.fileno(), SIOCSARP, req)


@dataclass
class DhcpServer:
    """DHCP (or ProxyDHCP) on UDP port 67, plus 4011 in proxy mode.

    `reservations` and `networks` are in-memory snapshots (replace `ctx` to
    change them); `store` receives lease changes on the writer thread;
    `on_discovered` is called on the loop with each unknown client seen
    (answered or not). `host` is the listen address (0.0.0.0: any); with a
    listen address, `interface` is required. Sockets are bound in `start()`;
    `port=0` picks a free port. With `refresh` (reload the reservations), a
    client that no reservation names is answered only after a reload that
    started after its packet came (see `_wait_for_refresh`).
    """

    server: ServerIdentity
    networks: Sequence[NetworkConfig]
    reservations: ReservationLookup
    store: LeaseStore = field(default_factory=MemoryLeaseStore)
    on_discovered: Callable[[Discovered], None] | None = None
    # writes an alarm event (called on the writer thread, at most once a minute per node)
    record_alarm: Callable[[NoReply, float], None] | None = None
    relay_check: RelayCheck | None = None
    boot: BootSelector | None = select_boot
    proxy: bool = False
    host: str = "0.0.0.0"
    port: int = 67
    proxy_port: int = PROXY_PORT
    interface: str | None = None
    client_port: int = 68
    relay_port: int = 67
    unicast_to_yiaddr: bool = True
    clock: Callable[[], float] = time.time
    counters: DhcpCounters = field(default_factory=DhcpCounters)
    refresh: Callable[[], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        self.listen = IPv4Address(self.host)
        if self.listen != ANY and not self.interface:
            raise ValueError(
                f"DHCP on address {self.host} needs its interface (--interface): "
                "a socket bound to an address never sees a broadcast DISCOVER"
            )
        self.writer = BackgroundWriter()
        self._sockets: dict[int, socket.socket] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._expired_at = 0.0
        self._waiting: list[tuple[Message, Address, socket.socket, int]] = []
        self._batch: LeaseBatch | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._alarmed: dict[str, float] = {}
        self._warn = {
            kind: RateLimitedLog()
            for kind in ("malformed", "unanswered", "error", "write", "send", "arp", "socket")
        }
        self.ctx = DhcpContext(
            server=self.server,
            networks=tuple(self.networks),
            reservations=self.reservations,
            leases=LeaseTable(self.store.load()),
            boot=self.boot,
            relay_check=self.relay_check,
            proxy=self.proxy,
            unicast_to_yiaddr=self.unicast_to_yiaddr and self.interface is not None,
            client_port=self.client_port,
            relay_port=self.relay_port,
        )

    @property
    def bound_ports(self) -> list[int]:
        """The ports actually bound (67, or a free port when asked for 0)."""
        return [int(s.getsockname()[1]) for s in self._sockets.values()]

    def update(self, **changes: object) -> None:
        """Replace parts of the context (networks, reservations) between packets."""
        self.ctx = replace(self.ctx, **changes)  # type: ignore[arg-type]

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.writer.start()
        wanted = [(self.port, 67)] + ([(self.proxy_port, PROXY_PORT)] if self.proxy else [])
        for port, role in wanted:
            sock = open_udp_socket(port, self.interface)
            self._sockets[role] = sock
            self._loop.add_reader(sock.fileno(), self._readable, sock, role)
        log.info(
            "dhcp listening on %s%s ports %s (proxy=%s)",
            self.host,
            f" on {self.interface}" if self.interface else "",
            self.bound_ports,
            self.proxy,
        )

    def close(self) -> None:
        """Stop reading; queued writes still finish (see `stop`)."""
        for sock in self._sockets.values():
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()

    async def stop(self) -> None:
        """Close the sockets, finish the queued writes, log the counters."""
        self.close()
        if self._refreshing is not None:
            self._refreshing.cancel()
        await asyncio.to_thread(self.writer.stop)
        log.info("dhcp stopped: %s", self.counters)

    def in_background(self, job: Callable[[], None], what: str) -> None:
        """Run a database write on the writer thread; failures are logged, not raised."""
        self.writer.submit(job).add_done_callback(lambda f: self._write_done(f, what))

    # ------------------------------------------------------------ per packet

    def _readable(self, sock: socket.socket, role: int) -> None:
        for _ in range(RECV_BATCH):
            try:
                data, ancdata, flags, addr = sock.recvmsg(RECV_SIZE, 256)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._warn["socket"].warn(self.clock(), "dhcp socket error: %s", exc)
                return
            if self.listen != ANY and not self._for_us(destination_of(ancdata)):
                self.counters.not_for_us += 1
                continue
            if flags & socket.MSG_TRUNC:
                data = data[:0]  # over RECV_SIZE: not a DHCP message
            self.handle(data, addr, sock, role)

    def _for_us(self, dest: IPv4Address | None) -> bool:
        """Broadcasts, and unicast to the listen address (a relay's, a renewal's)."""
        if dest is None or dest in (self.listen, BROADCAST):
            return True
        return any(dest == n.cidr.broadcast_address for n in self.ctx.networks)

    def handle(self, data: bytes, addr: Address, sock: socket.socket, port: int) -> None:
        """One datagram in: parse, then answer (unknown clients: after a refresh)."""
        self.counters.received += 1
        now = self.clock()
        try:
            msg = parse(data)
        except MalformedPacket as exc:
            self.counters.malformed += 1
            self._warn["malformed"].warn(
                now, "dropped malformed datagram from %s:%d: %s", *addr, exc
            )
            return
        if self.refresh is not None and self._maybe_new(msg):
            self._wait_for_refresh(msg, addr, sock, port)
            return
        self.answer(msg, addr, sock, port)

    def _maybe_new(self, msg: Message) -> bool:
        """An unknown client asking for an address: it may be a node added a moment ago."""
        return (
            msg.message_type in ASKS_FOR_ADDRESS and self.ctx.reservations.by_mac(msg.mac) is None
        )

    def _wait_for_refresh(
        self, msg: Message, addr: Address, sock: socket.socket, port: int
    ) -> None:
        """Answer once a reservation snapshot read after this packet is in.

        So a node added just before it boots is answered as that node, never
        lent a dynamic address. The wait is one query (tens of ms), shared by
        every packet that arrived meanwhile; beyond `WAIT_LIMIT` waiting
        packets the rest are answered from the snapshot at hand.
        """
        if len(self._waiting) >= WAIT_LIMIT or self._loop is None:
            self.answer(msg, addr, sock, port)
            return
        self._waiting.append((msg, addr, sock, port))
        if self._refreshing is None:
            self._refreshing = self._loop.create_task(self._refresh_then_answer())

    async def _refresh_then_answer(self) -> None:
        assert self.refresh is not None
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                started = self.clock()
                try:
                    await self.refresh()
                except Exception as exc:  # answer from the snapshot at hand
                    self._warn["write"].warn(started, "dhcp could not read reservations: %r", exc)
                for msg, addr, sock, port in batch:
                    if sock.fileno() != -1:
                        self.answer(msg, addr, sock, port)
                await asyncio.sleep(max(0.0, started + REFRESH_GAP - self.clock()))
        finally:
            self._refreshing = None

    def answer(self, msg: Message, addr: Address, sock: socket.socket, port: int) -> None:
        """Decide, persist, send (after the write, if the packet changed a lease)."""
        now = self.clock()
        decision: Reply | NoReply | None = None
        out: bytes | None = None
        try:
            decision = decide(msg, self.ctx, now, port=port)
            if isinstance(decision, Reply):
                out = build(decision.message)
        except Exception as exc:  # ours, not the peer's: log, drop, keep serving
            self.counters.errors += 1
            self._warn["error"].warn(now, "could not answer %s: %r", msg.mac, exc)
            decision, out = None, None
        persisted = self._persist(now)
        if isinstance(decision, NoReply):
            self._unanswered(decision, now)
            return
        if decision is None or out is None:
            self.counters.ignored += 1
            return
        if decision.discovered is not None and self.on_discovered is not None:
            self.on_discovered(decision.discovered)
        reply, data = decision, out
        if persisted is None:
            self._send(reply, data, addr, sock)
        else:
            written, changes = persisted
            written.add_done_callback(
                lambda f: self._after_write(f, changes, reply, data, addr, sock)
            )

    def _unanswered(self, why: NoReply, now: float) -> None:
        self.counters.unanswered += 1
        self._warn["unanswered"].warn(now, "dhcp: %s", why.reason)
        if why.discovered is not None and self.on_discovered is not None:
            self.on_discovered(why.discovered)
        if why.alarm is not None and self.record_alarm is not None and self._alarm_due(why, now):
            self.in_background(partial(self.record_alarm, why, now), "alarm event")

    def _alarm_due(self, why: NoReply, now: float) -> bool:
        """One alarm event per node a minute: a flood of forged requests is one line a minute."""
        assert why.alarm is not None
        if now - self._alarmed.get(why.alarm, -ALARM_EVERY) < ALARM_EVERY:
            return False
        if len(self._alarmed) > 10_000:
            self._alarmed = {k: t for k, t in self._alarmed.items() if now - t < ALARM_EVERY}
        self._alarmed[why.alarm] = now
        log.warning("dhcp: %s", why.reason)
        return True

    def _persist(
        self, now: float
    ) -> tuple[concurrent.futures.Future[None], list[LeaseChange]] | None:
        """Hand this packet's lease changes to the writer (joining the queued batch if
        there is one); None when there were none."""
        if now - self._expired_at >= EXPIRE_INTERVAL:
            self.ctx.leases.expire(now)
            self._expired_at = now
        changes: list[LeaseChange] = self.ctx.leases.drain()
        if not changes:
            return None
        joined = None if self._batch is None else self._batch.join(changes)
        if joined is not None:
            return joined, changes
        batch = self._batch = LeaseBatch(changes)
        store = self.store
        written = batch.future = self.writer.submit(lambda: batch.write(store))
        written.add_done_callback(lambda f: self._write_done(f, "lease"))
        written.add_done_callback(self._after_batch)
        return written, changes

    def _after_batch(self, future: concurrent.futures.Future[None]) -> None:
        """On the writer thread: another server bound an address first: reload, once."""
        if isinstance(future.exception(), LeaseConflict):
            self._reload_leases()

    def _write_done(self, future: concurrent.futures.Future[None], what: str) -> None:
        exc = future.exception()
        if exc is not None:
            self.counters.write_errors += 1
            self._warn["write"].warn(self.clock(), "dhcp could not write a %s: %r", what, exc)

    def _after_write(
        self,
        future: concurrent.futures.Future[None],
        changes: list[LeaseChange],
        reply: Reply,
        data: bytes,
        addr: Address,
        sock: socket.socket,
    ) -> None:
        """On the writer thread: send the reply from the loop, if the write held."""
        if conflicts_with(future.exception(), changes) or self._loop is None:
            return  # not durable: not acknowledged; the client asks again
        with contextlib.suppress(RuntimeError):  # the loop closed: the server stopped
            self._loop.call_soon_threadsafe(self._send_if_open, reply, data, addr, sock)

    def _reload_leases(self) -> None:
        """On the writer thread, after a conflict: take the database's leases as they are.

        Another server bound an address this one offered; the client's retry
        is then answered from the table (a NAK, then a fresh offer).
        """
        self.counters.lease_conflicts += 1
        try:
            leases = self.store.load()
        except Exception as exc:
            self._warn["write"].warn(self.clock(), "dhcp could not reload leases: %r", exc)
            return
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._use_leases, leases)

    def _use_leases(self, leases: list[Lease]) -> None:
        old = self.ctx.leases
        table = LeaseTable(leases, offer_hold=old.offer_hold, decline_hold=old.decline_hold)
        self.update(leases=table)

    def _send_if_open(self, reply: Reply, data: bytes, addr: Address, sock: socket.socket) -> None:
        if sock.fileno() != -1:
            self._send(reply, data, addr, sock)

    def _target(self, reply: Reply, source: Address) -> Address:
        if reply.destination is Destination.SOURCE or reply.address is None:
            return source
        return (str(reply.address), reply.port or self.client_port)

    def _broadcast(self) -> Address:
        return (str(BROADCAST), self.client_port)

    def _send(self, reply: Reply, data: bytes, source: Address, sock: socket.socket) -> None:
        target = self._target(reply, source)
        if reply.destination is Destination.YIADDR and not self._arp(reply.message):
            target = self._broadcast()
        try:
            sock.sendto(data, target)
        except OSError as exc:
            if reply.destination is not Destination.YIADDR or exc.errno != errno.ENOBUFS:
                self._send_failed(target, exc)
                return
            self._warn["arp"].warn(self.clock(), "unicast to %s: %s; broadcast", target[0], exc)
            self.counters.broadcast_fallbacks += 1
            if not self._sendto(sock, data, self._broadcast()):
                return
        self.counters.replied += 1

    def _sendto(self, sock: socket.socket, data: bytes, target: Address) -> bool:
        try:
            sock.sendto(data, target)
        except OSError as exc:
            self._send_failed(target, exc)
            return False
        return True

    def _send_failed(self, target: Address, exc: OSError) -> None:
        self.counters.send_errors += 1
        self._warn["send"].warn(self.clock(), "dhcp reply to %s:%d failed: %s", *target, exc)

    def _arp(self, msg: Message) -> bool:
        """Make unicast to yiaddr possible; False means broadcast instead."""
        if self.interface is None:
            return False
        sock = self._sockets.get(67)
        if sock is None:
            return False
        try:
            set_arp_entry(sock, self.interface, msg.yiaddr, msg.chaddr)
        except OSError as exc:
            self._warn["arp"].warn(
                self.clock(), "no neighbour entry for %s (%s); broadcast", msg.yiaddr, exc
            )
            self.counters.broadcast_fallbacks += 1
            return False
        return True
