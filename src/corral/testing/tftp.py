"""A model TFTP reader and a lossy channel, for testing TFTP servers without a network.

`corral.protocols.tftp.ReadSession` is sans-io (datagrams and `now` in,
datagrams out), so a whole transfer can run in memory: `simulate_transfer`
drives a session against `FakeTftpClient` over a `LossyChannel` that loses,
duplicates and reorders datagrams, on simulated time. corral's property tests
use it to show that any such channel still delivers exactly the file, past
block 65,535. It is a model of RFC 1350/7440 clients, not one: against a real
socket, test with tftp-hpa or atftp.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from corral.protocols.tftp import (
    Ack,
    BytesSource,
    Data,
    OAck,
    Opcode,
    ReadSession,
    Request,
    SessionConfig,
    build,
    parse,
)


def ack(block: int) -> bytes:
    """An ACK datagram for `block` (its 16-bit wire number)."""
    return build(Ack(block & 0xFFFF))


class FakeTftpClient:
    """A model TFTP reader (RFC 1350 + RFC 7440 receiver), only for simulated channels.

    ACKs each full window and the last block. In lockstep (window 1) it re-ACKs
    every duplicate, as RFC 1350 clients do, which is what provokes Sorcerer's
    Apprentice in a careless server. With a window it ACKs the last in-order
    block once per gap (RFC 7440). It re-ACKs on its own timeout and lingers
    after the last block.
    """

    def __init__(self, blksize: int, windowsize: int, negotiated: bool) -> None:
        self.blksize = blksize
        self.windowsize = windowsize
        self.expected = 1
        self.in_window = 0
        self.gap_acked = 0
        self.started = not negotiated
        self.complete = False
        self.received = bytearray()
        self.timer = 3.0

    def receive(self, datagram: bytes, now: float) -> list[bytes]:
        packet = parse(datagram)
        if isinstance(packet, OAck):
            self.started = True
            return [ack(0)] if self.expected == 1 else []
        if not isinstance(packet, Data):
            raise AssertionError(f"a read client got {packet!r}")
        if packet.block != self.expected & 0xFFFF or self.complete:
            return self._out_of_order()
        self.received += packet.payload
        self.timer = now + 3.0  # only progress holds off the client's own re-ACK
        self.expected += 1
        self.in_window += 1
        if len(packet.payload) < self.blksize:
            self.complete = True
        if self.complete or self.in_window == self.windowsize:
            self.in_window = 0
            return [ack(self.expected - 1)]
        return []

    def _out_of_order(self) -> list[bytes]:
        if self.windowsize > 1 and (self.gap_acked == self.expected and not self.complete):
            return []
        self.gap_acked = self.expected
        self.in_window = 0
        return [ack(self.expected - 1)]

    def on_timer(self, now: float) -> list[bytes]:
        self.timer = now + 3.0
        return [ack(self.expected - 1)] if self.started else []


@dataclass(order=True)
class InFlight:
    """A datagram on the simulated wire, delivered at `at` (ties in sending order)."""

    at: float
    seq: int
    to_server: bool = field(compare=False)
    datagram: bytes = field(compare=False)


class LossyChannel:
    """Loses, duplicates and delays (hence reorders) a fraction of the datagrams."""

    def __init__(self, rng: random.Random, loss: float, dup: float, reorder: float) -> None:
        self.rng, self.loss, self.dup, self.reorder = rng, loss, dup, reorder
        self.queue: list[InFlight] = []
        self.seq = 0

    def send(self, datagrams: list[bytes], to_server: bool, now: float) -> None:
        for d in datagrams:
            if self.rng.random() < self.loss:
                continue
            for _ in range(2 if self.rng.random() < self.dup else 1):
                self.seq += 1
                late = self.rng.random() < self.reorder
                at = now + 0.001 + (self.rng.uniform(0, 0.05) if late else 0)
                heapq.heappush(self.queue, InFlight(at, self.seq, to_server, d))


def simulate_transfer(
    data: bytes,
    blksize: int,
    windowsize: int,
    seed: int,
    loss: float,
    dup: float,
    reorder: float,
) -> tuple[ReadSession, FakeTftpClient]:
    """Serve `data` to a FakeTftpClient over a LossyChannel until the session ends.

    Returns the server session and the client: compare `client.received` with
    `data`. Bounded: gives up after 40 events per block, so a livelock returns
    (with the session unfinished) instead of hanging.
    """
    config = SessionConfig(max_blksize=blksize, max_windowsize=windowsize, max_retries=10_000)
    request = Request(
        Opcode.RRQ, "f", "octet", {"blksize": str(blksize), "windowsize": str(windowsize)}
    )
    server = ReadSession(request, BytesSource(data), 0.0, config)
    client = FakeTftpClient(blksize, windowsize, negotiated=True)
    net = LossyChannel(random.Random(seed), loss, dup, reorder)  # noqa: S311 (a simulation)
    now = 0.0
    net.send(server.datagrams_to_send(now), False, now)
    for _ in range(40 * (len(data) // blksize + 10)):
        timer = server.get_timer()
        if server.finished or timer is None:
            break
        now = min(timer, client.timer, net.queue[0].at if net.queue else timer)
        if net.queue and net.queue[0].at == now:
            item = heapq.heappop(net.queue)
            if item.to_server:
                server.receive_datagram(item.datagram, now)
            else:
                net.send(client.receive(item.datagram, now), True, now)
        elif timer == now:
            server.handle_timer(now)
        else:
            net.send(client.on_timer(now), True, now)
        net.send(server.datagrams_to_send(now), False, now)
    return server, client
