"""ReadSession: negotiation, retransmission, Sorcerer's Apprentice, rollover, lossy channels."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from corral.protocols.tftp import (
    Ack,
    BytesSource,
    Data,
    Error,
    MalformedPacket,
    OAck,
    Opcode,
    ReadSession,
    Request,
    SessionConfig,
    build,
    parse,
)


def rrq(**options: str) -> Request:
    return Request(Opcode.RRQ, "f", "octet", dict(options))


def ack(n: int) -> bytes:
    return build(Ack(n & 0xFFFF))


def session(
    data: bytes, config: SessionConfig | None = None, mode: str = "octet", **options: str
) -> ReadSession:
    request = Request(Opcode.RRQ, "f", mode, dict(options))
    return ReadSession(request, BytesSource(data), 0.0, config)


def test_plain_request_sends_512_byte_blocks() -> None:
    s = session(bytes(range(256)) * 3)
    assert [parse(d) for d in s.datagrams_to_send(0.0)] == [Data(1, (bytes(range(256)) * 2))]
    s.receive_datagram(ack(1), 0.1)
    assert [parse(d) for d in s.datagrams_to_send(0.1)] == [Data(2, bytes(range(256)))]
    s.receive_datagram(ack(2), 0.2)
    assert s.done and s.datagrams_to_send(0.2) == [] and s.get_timer() is None


def test_exact_multiple_of_blksize_ends_with_empty_block() -> None:
    s = session(b"x" * 1024)
    s.datagrams_to_send(0)
    s.receive_datagram(ack(1), 0)
    s.datagrams_to_send(0)
    s.receive_datagram(ack(2), 0)
    assert [parse(d) for d in s.datagrams_to_send(0)] == [Data(3, b"")]
    s.receive_datagram(ack(3), 0)
    assert s.done


def test_options_are_negotiated_and_clamped() -> None:
    s = session(
        b"x" * 5000,
        blksize="65464",
        tsize="0",
        timeout="3",
        windowsize="1000",
        multicast="",
    )
    (oack,) = s.datagrams_to_send(0)
    assert parse(oack) == OAck(
        {"blksize": "1468", "tsize": "5000", "timeout": "3", "windowsize": "64"}
    )
    assert (s.blksize, s.timeout, s.windowsize) == (1468, 3.0, 64)
    assert s.get_timer() == 3.0


@pytest.mark.parametrize(
    "options",
    [{"blksize": "4"}, {"blksize": "big"}, {"timeout": "0"}, {"timeout": "256"}, {"x": "1"}],
)
def test_unacceptable_options_are_dropped(options: dict[str, str]) -> None:
    s = ReadSession(Request(Opcode.RRQ, "f", "octet", options), BytesSource(b"abc"), 0.0)
    assert [parse(d) for d in s.datagrams_to_send(0)] == [Data(1, b"abc")]


def test_configured_max_blksize_may_be_raised() -> None:
    s = session(b"x" * 10000, SessionConfig(max_blksize=8192), blksize="9000")
    assert parse(s.datagrams_to_send(0)[0]) == OAck({"blksize": "8192"})


def test_oack_waits_for_ack_zero_then_sends_data() -> None:
    s = session(b"x" * 600, blksize="8", tsize="0")
    assert isinstance(parse(s.datagrams_to_send(0)[0]), OAck)
    s.receive_datagram(ack(1), 0.1)  # not ACK 0: ignored
    assert s.datagrams_to_send(0.1) == []
    s.handle_timer(1.0)  # OACK lost: resent
    assert isinstance(parse(s.datagrams_to_send(1.0)[0]), OAck)
    s.receive_datagram(ack(0), 1.1)
    assert [parse(d) for d in s.datagrams_to_send(1.1)] == [Data(1, b"x" * 8)]
    s.receive_datagram(ack(0), 1.2)  # duplicate ACK 0
    assert s.datagrams_to_send(1.2) == []


def test_duplicate_ack_sends_nothing() -> None:
    s = session(b"x" * 2000)
    s.datagrams_to_send(0)
    s.receive_datagram(ack(1), 0.1)
    assert len(s.datagrams_to_send(0.1)) == 1
    for _ in range(3):
        s.receive_datagram(ack(1), 0.2)
        assert s.datagrams_to_send(0.2) == []


def test_timeout_retransmits_then_fails_after_retry_limit() -> None:
    s = session(b"x" * 2000, SessionConfig(timeout=1.0, max_retries=2))
    first = s.datagrams_to_send(0)
    s.handle_timer(0.5)  # too early: nothing happens
    assert s.datagrams_to_send(0.5) == []
    for now in (1.0, 2.0):
        s.handle_timer(now)
        assert s.datagrams_to_send(now) == first
    s.handle_timer(3.0)
    assert s.failed and s.error == "timed out" and s.get_timer() is None


def test_peer_error_ends_the_session() -> None:
    s = session(b"x", blksize="1024")
    s.datagrams_to_send(0)
    s.receive_datagram(build(Error(8, "no options please")), 0.1)
    assert s.failed and s.datagrams_to_send(0.1) == []


def test_malformed_datagram_raises_and_changes_nothing() -> None:
    s = session(b"x" * 2000)
    s.datagrams_to_send(0)
    with pytest.raises(MalformedPacket):
        s.receive_datagram(b"\x00\x04\x00", 0.1)
    s.receive_datagram(ack(1), 0.2)
    assert parse(s.datagrams_to_send(0.2)[0]) == Data(2, b"x" * 512)


@pytest.mark.parametrize("mode", ["mail", "binary"])
def test_unsupported_mode_is_refused(mode: str) -> None:
    s = session(b"x", mode=mode)
    (error,) = s.datagrams_to_send(0)
    assert parse(error) == Error(4, f"mode {mode!r}")
    assert s.failed


def test_netascii_converts_line_ends() -> None:
    s = session(b"a\nb\rc", mode="netascii", tsize="0")
    assert parse(s.datagrams_to_send(0)[0]) == OAck({"tsize": "7"})
    s.receive_datagram(ack(0), 0)
    assert parse(s.datagrams_to_send(0)[0]) == Data(1, b"a\r\nb\r\0c")


def test_write_request_is_refused() -> None:
    s = ReadSession(Request(Opcode.WRQ, "f"), BytesSource(b""), 0.0)
    assert parse(s.datagrams_to_send(0)[0]) == Error(4, "not a read request")


def test_window_is_sent_whole_and_a_mid_window_ack_resends_from_there() -> None:
    s = session(bytes(100), blksize="10", windowsize="4")
    s.datagrams_to_send(0)
    s.receive_datagram(ack(0), 0)
    assert [parse(d).block for d in s.datagrams_to_send(0)] == [1, 2, 3, 4]  # type: ignore[union-attr]
    s.receive_datagram(ack(2), 0.1)  # 3 was lost
    assert [parse(d).block for d in s.datagrams_to_send(0.1)] == [3, 4, 5, 6]  # type: ignore[union-attr]
    s.receive_datagram(ack(2), 0.2)  # duplicate: nothing
    assert s.datagrams_to_send(0.2) == []


def test_rollover_sends_block_zero_with_the_right_bytes() -> None:
    """Past block 65535 the wire number wraps to 0; the bytes must not restart."""
    data = random.Random(1).randbytes(8 * 65537 + 3)
    s = session(data, blksize="8")
    s.datagrams_to_send(0)
    s.receive_datagram(ack(0), 0)
    got = bytearray()
    wire: list[int] = []
    while not s.done:
        (d,) = s.datagrams_to_send(0)
        packet = parse(d)
        assert isinstance(packet, Data)
        got += packet.payload
        wire.append(packet.block)
        s.receive_datagram(ack(packet.block), 0)
    assert bytes(got) == data
    assert wire[65534:65538] == [65535, 0, 1, 2]


# -- property: any loss, duplication and reordering still delivers exactly the file --


class FakeClient:
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
        assert isinstance(packet, Data)
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


def transfer(
    data: bytes,
    blksize: int,
    windowsize: int,
    seed: int,
    loss: float,
    dup: float,
    reorder: float,
) -> tuple[ReadSession, FakeClient]:
    config = SessionConfig(max_blksize=blksize, max_windowsize=windowsize, max_retries=10_000)
    request = rrq(blksize=str(blksize), windowsize=str(windowsize))
    server = ReadSession(request, BytesSource(data), 0.0, config)
    client = FakeClient(blksize, windowsize, negotiated=True)
    net = LossyChannel(random.Random(seed), loss, dup, reorder)
    now = 0.0
    net.send(server.datagrams_to_send(now), False, now)
    for _ in range(40 * (len(data) // blksize + 10)):
        if server.finished:
            break
        timer = server.get_timer()
        assert timer is not None
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


channel = {
    "seed": st.integers(0, 2**32),
    "loss": st.floats(0, 0.25),
    "dup": st.floats(0, 0.25),
    "reorder": st.floats(0, 0.25),
}


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=3000),
    blksize=st.integers(8, 300),
    windowsize=st.integers(1, 8),
    **channel,
)
def test_lossy_channel_delivers_exactly_the_file(
    data: bytes,
    blksize: int,
    windowsize: int,
    seed: int,
    loss: float,
    dup: float,
    reorder: float,
) -> None:
    server, client = transfer(data, blksize, windowsize, seed, loss, dup, reorder)
    assert server.done
    assert bytes(client.received) == data


@pytest.mark.slow
@settings(
    max_examples=3,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    extra=st.integers(-16, 200),
    windowsize=st.sampled_from([1, 2, 8]),
    seed=channel["seed"],
    loss=st.floats(0, 0.1),
    dup=st.floats(0, 0.1),
    reorder=st.floats(0, 0.1),
)
def test_lossy_channel_past_block_rollover(
    extra: int, windowsize: int, seed: int, loss: float, dup: float, reorder: float
) -> None:
    """8-byte blocks: a 512 KiB file crosses block 65535 (the wire number wraps)."""
    data = random.Random(seed).randbytes(8 * 65535 + extra)
    server, client = transfer(data, 8, windowsize, seed, loss, dup, reorder)
    assert server.done
    assert bytes(client.received) == data


def test_no_duplicate_sends_over_a_duplicating_lossless_channel() -> None:
    """Every duplicated ACK reaches the server; no DATA block goes out twice."""
    data = bytes(range(256)) * 40
    server = ReadSession(rrq(), BytesSource(data), 0.0)
    client = FakeClient(512, 1, negotiated=False)
    sent: list[bytes] = server.datagrams_to_send(0)
    pending = list(sent)
    while pending:
        replies = [a for d in pending for a in client.receive(d, 0)]
        pending = []
        for a in replies * 2:  # every ACK arrives twice
            server.receive_datagram(a, 0)
            pending += server.datagrams_to_send(0)
        sent += pending
    assert server.done and bytes(client.received) == data
    assert len(sent) == len(set(sent)) == len(data) // 512 + 1
