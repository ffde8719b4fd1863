"""A TFTP worker process: runs the transfers the listener hands it, on another core.

Why: over half of a transfer's cost is the send/receive syscalls, and one
event loop keeps them on one core (in.tftpd forks a process per transfer).
The listener (`corral.services.tftp`) keeps the port, the limits and the
root; a worker gets each accepted request with its file already opened
(`tftp_handoff`), opens the transfer's ephemeral socket and runs the sans-io
session there, exactly as the listener would in-process.

A worker never outlives the server: it asks the kernel for SIGKILL when its
parent dies (PR_SET_PDEATHSIG) and exits on EOF of its control socket.

Run as ``python -m corral.services.tftp_worker FD PARENT_PID HOST CONFIG_JSON``.
"""

from __future__ import annotations

import array
import asyncio
import ctypes
import json
import logging
import os
import signal
import socket
import sys
from collections import deque

from corral.protocols.tftp import (
    BytesSource,
    FileSource,
    MalformedPacket,
    NoRollover,
    OpenFileSource,
    ReadSession,
    Request,
    SessionConfig,
    parse,
)
from corral.services.tftp import Address, TftpCounters, Transfer
from corral.services.tftp_handoff import MAX_MESSAGE, Ended, Handoff, Report

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
REPORT_EVERY = 0.5  # seconds between counter reports while transfers run
ENDED_PER_REPORT = 16  # with errors cut to MAX_ERROR, a report stays far under MAX_MESSAGE
MAX_ERROR = 200  # a peer's ERROR text is the peer's to choose


class Worker:
    """The worker's side of its control socket and the transfers it runs."""

    def __init__(self, sock: socket.socket, host: str, config: SessionConfig) -> None:
        self.sock = sock
        self.host = host
        self.config = config
        self.counters = TftpCounters()
        self._reported = TftpCounters()
        self._ended: list[Ended] = []
        self._outbox: deque[bytes] = deque()
        self._flush_soon = False
        self._transfers: set[Transfer] = set()
        self._eof: asyncio.Future[None] | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._eof = loop.create_future()
        self.sock.setblocking(False)
        loop.add_reader(self.sock.fileno(), self._on_control)
        self._outbox.append(Report().encode())  # hello: the listener waits for it
        self._drain()
        ticker = loop.create_task(self._tick())
        try:
            await self._eof
        finally:
            ticker.cancel()
            loop.remove_reader(self.sock.fileno())
            for transfer in list(self._transfers):
                transfer.close(failed=True)

    # -- from the listener -------------------------------------------------

    def _on_control(self) -> None:
        fds = array.array("i")
        while True:
            try:
                data, ancdata, flags, _ = self.sock.recvmsg(
                    MAX_MESSAGE, socket.CMSG_SPACE(4 * fds.itemsize)
                )
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._stop()
                return
            passed = [fd for level, kind, raw in ancdata for fd in _fds(level, kind, raw)]
            handoff = Handoff.decode(data)
            if flags & socket.MSG_CTRUNC or (handoff.inline is None and not passed):
                # the file's descriptor did not arrive (this process is out of them): an
                # empty file served as the kernel would be worse than a failed transfer
                for fd in passed:
                    os.close(fd)
                self._end(Ended(handoff.tid, failed=True, error="bad handoff: no file"))
                continue
            self._start(handoff, passed[0] if passed else None)
            for extra in passed[1:]:
                os.close(extra)

    def _stop(self) -> None:
        if self._eof is not None and not self._eof.done():
            self._eof.set_result(None)

    def _start(self, handoff: Handoff, fd: int | None) -> None:
        loop = asyncio.get_running_loop()
        try:
            request = parse(handoff.request)
            if not isinstance(request, Request):
                raise MalformedPacket("not a request")
            source: FileSource = (
                OpenFileSource(fd) if fd is not None else BytesSource(handoff.inline or b"")
            )
        except (MalformedPacket, OSError) as exc:
            if fd is not None:
                os.close(fd)
            self._end(Ended(handoff.tid, failed=True, error=f"bad handoff: {exc}"))
            return
        if not handoff.rollover:
            source = NoRollover(source)
        session = ReadSession(request, source, loop.time(), self.config)
        transfer = Transfer(self, session, handoff.peer, handoff.tid.to_bytes(8, "big"))
        self._transfers.add(transfer)
        try:
            transfer.open(self.host)
        except OSError as exc:
            session.error = f"cannot open the transfer's socket: {exc}"
            transfer.close(failed=True)

    # -- TransferOwner -------------------------------------------------------

    def _malformed(self, addr: Address, exc: MalformedPacket) -> None:
        self.counters.malformed += 1

    def _transfer_closed(self, transfer: Transfer, failed: bool) -> None:
        self._transfers.discard(transfer)
        session = transfer.session
        tid = int.from_bytes(transfer.key, "big")
        error = None if session.error is None else session.error[:MAX_ERROR]
        self._end(Ended(tid, failed, session.abandoned, error, session.retransmits))

    # -- to the listener ---------------------------------------------------

    def _end(self, ended: Ended) -> None:
        self._ended.append(ended)
        if not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        now, last = self.counters, self._reported
        report = Report(
            now.datagrams_sent - last.datagrams_sent,
            now.bytes_sent - last.bytes_sent,
            now.malformed - last.malformed,
            self._ended[:ENDED_PER_REPORT],
        )
        if not report:
            return
        self._reported = TftpCounters(
            datagrams_sent=now.datagrams_sent, bytes_sent=now.bytes_sent, malformed=now.malformed
        )
        self._ended = self._ended[ENDED_PER_REPORT:]
        self._outbox.append(report.encode())
        if self._ended:  # the rest in further reports, each under MAX_MESSAGE
            self._flush()
        else:
            self._drain()

    def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._outbox:
            try:
                self.sock.send(self._outbox[0])
            except (BlockingIOError, InterruptedError):
                loop.add_writer(self.sock.fileno(), self._drain)
                return
            except OSError:
                self._stop()  # the listener is gone
                return
            self._outbox.popleft()
        loop.remove_writer(self.sock.fileno())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(REPORT_EVERY)
            self._flush()


def _fds(level: int, kind: int, raw: bytes) -> list[int]:
    if level != socket.SOL_SOCKET or kind != socket.SCM_RIGHTS:
        return []
    fds = array.array("i")
    fds.frombytes(raw[: len(raw) - len(raw) % fds.itemsize])
    return list(fds)


def die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when the server dies, even by SIGKILL (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: EOF on the control socket still ends the worker
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        sys.exit(0)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    fd, parent_pid, host, config = int(args[0]), int(args[1]), args[2], json.loads(args[3])
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops us
    logging.basicConfig(level=logging.WARNING, format="tftp worker %(process)d: %(message)s")
    sock = socket.socket(fileno=fd)
    asyncio.run(Worker(sock, host, SessionConfig(**config)).run())


if __name__ == "__main__":
    main()
