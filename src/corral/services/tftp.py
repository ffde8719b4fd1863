"""The TFTP server: asyncio glue around `corral.protocols.tftp`.

Why this is thin: everything that can be wrong about TFTP is decided in the
sans-io session and resolver. This module only owns sockets and timers: one
listening socket for requests, one connected ephemeral socket per transfer
(the server's TID, RFC 1350), and one timer handle per transfer. A peer can
only ever raise `MalformedPacket` here; it is counted, logged (rate-limited)
and dropped, so no input can stop the server.

What one host can hold is bounded: at most `max_per_client` transfers per
source address and `max_transfers` in all (each is a socket and an open
file); a request over either limit is dropped and the client retries. Request
datagrams over MAX_REQUEST bytes are malformed (a real RRQ is under 200).

With `workers` > 0 the transfers run in that many worker processes
(`tftp_pool`, `tftp_worker`), so their send/receive syscalls use every core;
this listener still parses requests, applies the limits and opens the file
under the root, then hands the opened file over. A file that cannot cross a
process boundary (`tftp_handoff.passable`), or a moment with no live worker,
runs the transfer here as before.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from corral.protocols.tftp import (
    ErrorCode,
    FileSource,
    MalformedPacket,
    Opcode,
    ReadSession,
    Request,
    SessionConfig,
    TftpError,
    TftpRoot,
    parse,
)
from corral.services.tftp_handoff import Handoff, Report, passable
from corral.services.tftp_pool import WorkerPool

log = logging.getLogger(__name__)
Address = tuple[str, int]
MAX_REQUEST = 1024
MAX_PEER_DATAGRAM = 2048  # on a transfer's socket; longer datagrams arrive truncated


@dataclass
class TftpCounters:
    """What the server has seen since `start()`; read them, don't write them."""

    requests: int = 0
    refused: int = 0
    malformed: int = 0
    stray: int = 0
    busy: int = 0  # dropped: max_transfers in progress
    client_busy: int = 0  # dropped: that client already has max_per_client transfers
    duplicate_requests: int = 0
    transfers_started: int = 0
    transfers_done: int = 0
    transfers_failed: int = 0
    transfers_abandoned: int = 0  # size probes: the peer stopped after the OACK or block 1
    datagrams_sent: int = 0
    bytes_sent: int = 0
    retransmits: int = 0


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, server: TftpServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.server._on_request(data, addr[:2])

    def error_received(self, exc: Exception) -> None:
        log.debug("tftp listener socket error: %s", exc)


class TransferOwner(Protocol):
    """Who runs transfers: the server in-process, or a worker process (`tftp_worker`)."""

    counters: TftpCounters

    def _malformed(self, addr: Address, exc: MalformedPacket) -> None: ...

    def _transfer_closed(self, transfer: Transfer, failed: bool) -> None: ...


class Transfer:
    """One read transfer: a connected UDP socket, a session and its timer.

    Why a bare socket and not an asyncio transport: a transfer is one small
    datagram in and one out per block, and asyncio's datagram transport cost
    more Python per datagram than the session itself (and received into a
    fresh 256 KiB buffer each time, which glibc mmaps and unmaps in a young
    process). The loop only watches the socket; reads and sends happen here.
    """

    def __init__(self, server: TransferOwner, session: ReadSession, peer: Address, key: bytes):
        self.server = server
        self.session = session
        self.peer = peer
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.sock: socket.socket | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at: float | None = None
        self.closed = False

    def open(self, host: str) -> None:
        """Bind an ephemeral port (the server's TID) connected to the peer, send the first
        datagram. Raises OSError if no socket can be had (the caller fails the transfer)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((host, 0))
            sock.connect(self.peer)
            self.loop.add_reader(sock.fileno(), self.on_readable)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.pump()

    def on_readable(self) -> None:
        if self.sock is None:
            return
        try:  # one datagram per wake-up: the loop calls again while more are queued
            data = self.sock.recv(MAX_PEER_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # ICMP port unreachable (ConnectionRefusedError): the peer is gone
            self.close(failed=True)
            return
        now = self.loop.time()
        try:
            self.session.receive_datagram(data, now)
        except MalformedPacket as exc:
            self.server._malformed(self.peer, exc)
            return
        self.pump(now)

    def on_timer(self) -> None:
        self.timer = self.timer_at = None
        now = self.loop.time()
        self.session.handle_timer(now)
        self.pump(now)

    def pump(self, now: float | None = None) -> None:
        sock = self.sock
        if sock is None:
            return
        counters = self.server.counters
        when = self.loop.time() if now is None else now
        for datagram in self.session.datagrams_to_send(when):
            try:
                sock.send(datagram)
            except (BlockingIOError, InterruptedError):
                continue  # a full send buffer drops it, as the network may: the timer resends
            except OSError:
                self.close(failed=True)
                return
            counters.datagrams_sent += 1
            counters.bytes_sent += len(datagram)
        if self.session.finished:
            self.close(failed=self.session.failed)
        else:
            self.schedule()

    def schedule(self) -> None:
        """Keep one timer at or before the session's deadline.

        Each ACK pushes the deadline a timeout further; re-arming the timer
        per block cost a timer object and two heap operations per datagram.
        A timer that fires before the deadline is harmless (`handle_timer`
        ignores it and the timer is set again), so a later deadline leaves
        the timer as it is; only an earlier one (or none) replaces it.
        """
        when = self.session.get_timer()
        if when == self.timer_at or (
            when is not None and self.timer_at is not None and when > self.timer_at
        ):
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = when
        self.timer = None if when is None else self.loop.call_at(when, self.on_timer)

    def close(self, failed: bool) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.timer_at = None
        if self.sock is not None:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
        self.session.close()
        self.server._transfer_closed(self, failed)


class TftpServer:
    """Serve `root` over TFTP on (host, port); port 0 picks a free port (tests)."""

    def __init__(
        self,
        root: TftpRoot,
        host: str = "0.0.0.0",
        port: int = 69,
        *,
        config: SessionConfig | None = None,
        max_transfers: int = 256,
        max_per_client: int = 8,
        workers: int = 0,
    ) -> None:
        self.root = root
        self.workers = workers
        self.host = host
        self.port = port
        self.config = config or SessionConfig()
        self.max_transfers = max_transfers
        self.max_per_client = max_per_client
        self.counters = TftpCounters()
        self._per_client: Counter[str] = Counter()
        self._listener: asyncio.DatagramTransport | None = None
        self._transfers: dict[tuple[Address, bytes], Transfer] = {}
        self._remote: dict[int, tuple[Address, bytes]] = {}  # in a worker: tid -> key
        self._remote_keys: set[tuple[Address, bytes]] = set()
        self._next_tid = 0
        self.pool: WorkerPool | None = None

    @property
    def address(self) -> Address:
        """The bound (host, port); valid after `start()`."""
        if self._listener is None:
            raise RuntimeError("TftpServer not started")
        host, port = self._listener.get_extra_info("sockname")[:2]
        return host, port

    @property
    def active_transfers(self) -> int:
        return len(self._transfers) + len(self._remote)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self._listener, _ = await loop.create_datagram_endpoint(lambda: _Listener(self), sock=sock)
        if self.workers > 0:
            self.pool = WorkerPool(
                self.workers, self.host, self.config, self._on_report, self._on_lost
            )
            await self.pool.start()
        log.info(
            "tftp serving %s on %s:%d (%d worker processes)",
            self.root.root,
            *self.address,
            self.workers,
        )

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for transfer in list(self._transfers.values()):
            transfer.close(failed=True)
        if self.pool is not None:
            await self.pool.stop()
            self.pool = None
        for tid in list(self._remote):
            self._on_lost(tid)

    # -- requests on the listening socket --------------------------------

    def _on_request(self, data: bytes, addr: Address) -> None:
        try:
            if len(data) > MAX_REQUEST:
                raise MalformedPacket(f"request of {len(data)} bytes (at most {MAX_REQUEST})")
            packet = parse(data)
        except MalformedPacket as exc:
            self._malformed(addr, exc)
            return
        if not isinstance(packet, Request):
            self.counters.stray += 1
            return
        self.counters.requests += 1
        if (addr, data) in self._transfers or (addr, data) in self._remote_keys:
            self.counters.duplicate_requests += 1  # client resent its RRQ; session retries
            return
        if self.active_transfers >= self.max_transfers:
            self.counters.busy += 1  # dropped: the client will retry its request
            return
        if self._per_client[addr[0]] >= self.max_per_client:
            self.counters.client_busy += 1
            return
        try:
            source = self._open_source(packet, addr)
        except TftpError as exc:
            self._refuse(addr, exc)
            return
        self._per_client[addr[0]] += 1
        if self.pool is not None and self._hand_off(source, addr, data):
            return
        loop = asyncio.get_running_loop()
        session = ReadSession(packet, source, loop.time(), self.config)
        transfer = Transfer(self, session, addr, data)
        self._transfers[(addr, data)] = transfer
        self.counters.transfers_started += 1
        try:
            transfer.open(self.host)
        except OSError as exc:  # out of ports or descriptors: this transfer fails, not the server
            session.error = f"cannot open the transfer's socket: {exc}"
            transfer.close(failed=True)

    def _open_source(self, request: Request, addr: Address) -> FileSource:
        if request.opcode == Opcode.WRQ:
            raise TftpError(ErrorCode.ACCESS_VIOLATION, "write requests are not accepted")
        source = self.root.open(request.filename, addr)
        log.debug("tftp %s:%d RRQ %r %s", *addr, request.filename, request.options)
        return source

    def _hand_off(self, source: FileSource, addr: Address, data: bytes) -> bool:
        """Give the transfer to a worker process; False: run it here instead."""
        assert self.pool is not None
        how = passable(source)
        if how is None:
            return False
        fd, inline, rollover = how
        self._next_tid += 1
        tid = self._next_tid
        if not self.pool.submit(Handoff(tid, addr, data, rollover, inline), fd):
            return False
        source.close()  # the worker has its own copy of the descriptor
        self._remote[tid] = (addr, data)
        self._remote_keys.add((addr, data))
        self.counters.transfers_started += 1
        return True

    def _on_report(self, report: Report) -> None:
        """A worker's counters since its last report, and the transfers it finished."""
        counters = self.counters
        counters.datagrams_sent += report.datagrams_sent
        counters.bytes_sent += report.bytes_sent
        if report.malformed:
            counters.malformed += report.malformed
            if _worth_logging(counters.malformed):
                log.warning("tftp malformed datagrams on transfers: %d", counters.malformed)
        for ended in report.ended:
            key = self._remote.pop(ended.tid, None)
            if key is None:
                continue
            self._remote_keys.discard(key)
            self._release(key[0])
            counters.retransmits += ended.retransmits
            self._count_end(key[0], ended.failed, ended.abandoned, ended.error)

    def _on_lost(self, tid: int) -> None:
        """The transfer's worker died: its client times out; count it failed, free its slot."""
        key = self._remote.pop(tid, None)
        if key is not None:
            self._remote_keys.discard(key)
            self._release(key[0])
            self._count_end(key[0], True, False, "its worker process died")

    def _refuse(self, addr: Address, error: TftpError) -> None:
        self.counters.refused += 1
        if _worth_logging(self.counters.refused):
            log.info("tftp %s:%d refused (#%d): %s", *addr, self.counters.refused, error)
        if self._listener is not None:
            self._listener.sendto(error.packet(), addr)

    def _release(self, peer: Address) -> None:
        self._per_client[peer[0]] -= 1
        if self._per_client[peer[0]] <= 0:
            del self._per_client[peer[0]]

    def _transfer_closed(self, transfer: Transfer, failed: bool) -> None:
        self._transfers.pop((transfer.peer, transfer.key), None)
        self._release(transfer.peer)
        self.counters.retransmits += transfer.session.retransmits
        session = transfer.session
        self._count_end(transfer.peer, failed, session.abandoned, session.error)

    def _count_end(self, peer: Address, failed: bool, abandoned: bool, error: str | None) -> None:
        if failed and abandoned:
            self.counters.transfers_abandoned += 1
            log.debug("tftp %s:%d abandoned after the first block (a probe)", *peer)
        elif failed:
            self.counters.transfers_failed += 1
            if _worth_logging(self.counters.transfers_failed):
                log.info(
                    "tftp %s:%d failed (#%d): %s", *peer, self.counters.transfers_failed, error
                )
        else:
            self.counters.transfers_done += 1

    def _malformed(self, addr: Address, exc: MalformedPacket) -> None:
        self.counters.malformed += 1
        count = self.counters.malformed
        if _worth_logging(count):
            log.warning("tftp malformed datagram #%d from %s:%d: %s", count, *addr, exc)


def _worth_logging(count: int) -> bool:
    """Log the first 100 of a kind, then every 1000th: a flood must not flood the log."""
    return count <= 100 or count % 1000 == 0
