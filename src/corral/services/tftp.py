"""The TFTP server: asyncio glue around `corral.protocols.tftp`.

Why this is thin: everything that can be wrong about TFTP is decided in the
sans-io session and resolver. This module only owns sockets and timers: one
listening socket for requests, one connected ephemeral socket per transfer
(the server's TID, RFC 1350), and one timer handle per transfer. A peer can
only ever raise `MalformedPacket` here; it is counted, logged (rate-limited)
and dropped, so no input can stop the server.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import cast

from corral.protocols.tftp import (
    ErrorCode,
    MalformedPacket,
    Opcode,
    ReadSession,
    Request,
    SessionConfig,
    TftpError,
    TftpRoot,
    parse,
)

log = logging.getLogger(__name__)
Address = tuple[str, int]


@dataclass
class TftpCounters:
    """What the server has seen since `start()`; read them, don't write them."""

    requests: int = 0
    refused: int = 0
    malformed: int = 0
    stray: int = 0
    busy: int = 0
    duplicate_requests: int = 0
    transfers_started: int = 0
    transfers_done: int = 0
    transfers_failed: int = 0
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


class _Transfer(asyncio.DatagramProtocol):
    """One read transfer: a connected UDP socket, a session and its timer."""

    def __init__(self, server: TftpServer, session: ReadSession, peer: Address, key: bytes):
        self.server = server
        self.session = session
        self.peer = peer
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at: float | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.pump()

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            self.session.receive_datagram(data, self.loop.time())
        except MalformedPacket as exc:
            self.server._malformed(addr, exc)
            return
        self.pump()

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):  # ICMP port unreachable: peer gone
            self.close(failed=True)

    def on_timer(self) -> None:
        self.timer = self.timer_at = None
        self.session.handle_timer(self.loop.time())
        self.pump()

    def pump(self) -> None:
        if self.transport is None:
            return
        counters = self.server.counters
        for datagram in self.session.datagrams_to_send(self.loop.time()):
            self.transport.sendto(datagram)
            counters.datagrams_sent += 1
            counters.bytes_sent += len(datagram)
        if self.session.finished:
            self.close(failed=self.session.failed)
        else:
            self.schedule()

    def schedule(self) -> None:
        when = self.session.get_timer()
        if when == self.timer_at:
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
        if self.transport is not None:
            self.transport.close()
            self.transport = None
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
        max_transfers: int = 1024,
    ) -> None:
        self.root = root
        self.host = host
        self.port = port
        self.config = config or SessionConfig()
        self.max_transfers = max_transfers
        self.counters = TftpCounters()
        self._listener: asyncio.DatagramTransport | None = None
        self._transfers: dict[tuple[Address, bytes], _Transfer] = {}
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> Address:
        """The bound (host, port); valid after `start()`."""
        if self._listener is None:
            raise RuntimeError("TftpServer not started")
        host, port = self._listener.get_extra_info("sockname")[:2]
        return host, port

    @property
    def active_transfers(self) -> int:
        return len(self._transfers) + len(self._pending)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self._listener, _ = await loop.create_datagram_endpoint(lambda: _Listener(self), sock=sock)
        log.info("tftp serving %s on %s:%d", self.root.root, *self.address)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        for transfer in list(self._transfers.values()):
            transfer.close(failed=True)

    # -- requests on the listening socket --------------------------------

    def _on_request(self, data: bytes, addr: Address) -> None:
        try:
            packet = parse(data)
        except MalformedPacket as exc:
            self._malformed(addr, exc)
            return
        if not isinstance(packet, Request):
            self.counters.stray += 1
            return
        self.counters.requests += 1
        if (addr, data) in self._transfers:
            self.counters.duplicate_requests += 1  # client resent its RRQ; session retries
            return
        if self.active_transfers >= self.max_transfers:
            self.counters.busy += 1  # dropped: the client will retry its request
            return
        try:
            session = self._open_session(packet, addr)
        except TftpError as exc:
            self._refuse(addr, exc)
            return
        task = asyncio.get_running_loop().create_task(self._spawn(session, addr, data))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _open_session(self, request: Request, addr: Address) -> ReadSession:
        if request.opcode == Opcode.WRQ:
            raise TftpError(ErrorCode.ACCESS_VIOLATION, "write requests are not accepted")
        source = self.root.open(request.filename, addr)
        log.debug("tftp %s:%d RRQ %r %s", *addr, request.filename, request.options)
        loop = asyncio.get_running_loop()
        return ReadSession(request, source, loop.time(), self.config)

    def _refuse(self, addr: Address, error: TftpError) -> None:
        self.counters.refused += 1
        log.info("tftp %s:%d refused: %s", *addr, error)
        if self._listener is not None:
            self._listener.sendto(error.packet(), addr)

    async def _spawn(self, session: ReadSession, peer: Address, key: bytes) -> None:
        loop = asyncio.get_running_loop()
        transfer = _Transfer(self, session, peer, key)
        try:
            await loop.create_datagram_endpoint(
                lambda: transfer, local_addr=(self.host, 0), remote_addr=peer
            )
        except BaseException:
            session.close()
            raise
        self.counters.transfers_started += 1
        if not session.finished:
            self._transfers[(peer, key)] = transfer

    def _transfer_closed(self, transfer: _Transfer, failed: bool) -> None:
        self._transfers.pop((transfer.peer, transfer.key), None)
        self.counters.retransmits += transfer.session.retransmits
        if failed:
            self.counters.transfers_failed += 1
            log.info("tftp %s:%d failed: %s", *transfer.peer, transfer.session.error)
        else:
            self.counters.transfers_done += 1

    def _malformed(self, addr: Address, exc: MalformedPacket) -> None:
        self.counters.malformed += 1
        count = self.counters.malformed
        if count <= 10 or count % 1000 == 0:
            log.warning("tftp malformed datagram #%d from %s:%d: %s", count, *addr, exc)
