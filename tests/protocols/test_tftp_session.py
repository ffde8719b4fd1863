"""ReadSession: negotiation, retransmission, Sorcerer's Apprentice, rollover, lossy channels."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from corral.protocols.tftp import (
    Ack,
    BytesSource,
    Data,
    Error,
    MalformedPacket,
    NetasciiSource,
    OAck,
    Opcode,
    ReadSession,
    Request,
    SessionConfig,
    build,
    parse,
)
from corral.protocols.tftp.files import NETASCII_CHUNK, to_netascii
from corral.testing.tftp import FakeTftpClient, ack, simulate_transfer


def rrq(**options: str) -> Request:
    return Request(Opcode.RRQ, "f", "octet", dict(options))


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
    [
        {"blksize": "4"},
        {"blksize": "big"},
        {"timeout": "0"},
        {"timeout": "256"},
        {"timeout": "255"},  # RFC 2349 allows it; it held a dead transfer for 25 minutes
        {"timeout": "11"},
        {"x": "1"},
    ],
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
# (the model client, the channel and the driver loop are shipped in corral.testing.tftp)


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
    server, client = simulate_transfer(data, blksize, windowsize, seed, loss, dup, reorder)
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
    server, client = simulate_transfer(data, 8, windowsize, seed, loss, dup, reorder)
    assert server.done
    assert bytes(client.received) == data


def test_no_duplicate_sends_over_a_duplicating_lossless_channel() -> None:
    """Every duplicated ACK reaches the server; no DATA block goes out twice."""
    data = bytes(range(256)) * 40
    server = ReadSession(rrq(), BytesSource(data), 0.0)
    client = FakeTftpClient(512, 1, negotiated=False)
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


def test_client_timeout_is_accepted_up_to_the_configured_bound() -> None:
    s = session(b"x", timeout="10")
    assert parse(s.datagrams_to_send(0)[0]) == OAck({"timeout": "10"})
    s = session(b"x", SessionConfig(max_timeout=255), timeout="255")
    assert parse(s.datagrams_to_send(0)[0]) == OAck({"timeout": "255"})


class ShrinkingSource(BytesSource):
    """A file truncated while it is served: reads past `cut` come back short."""

    cut: int | None = None

    def read(self, offset: int, n: int) -> bytes:
        data = super().read(offset, n)
        return data if self.cut is None else data[: max(self.cut - offset, 0)]


def test_a_file_that_shrinks_mid_transfer_fails_the_transfer_with_an_error() -> None:
    source = ShrinkingSource(b"x" * 5000)
    s = ReadSession(rrq(), source, 0.0)
    assert [parse(d) for d in s.datagrams_to_send(0)] == [Data(1, b"x" * 512)]
    source.cut = 700
    s.receive_datagram(ack(1), 0.1)
    sent = [parse(d) for d in s.datagrams_to_send(0.1)]
    assert len(sent) == 1 and isinstance(sent[0], Error)
    assert "changed" in sent[0].message
    assert s.failed and s.get_timer() is None


class ChunkReader(BytesSource):
    """Records the largest single read, to show nothing reads the whole file at once."""

    largest = 0

    def read(self, offset: int, n: int) -> bytes:
        self.largest = max(self.largest, n)
        return super().read(offset, n)


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=3 * NETASCII_CHUNK).map(
        lambda b: b.replace(b"a", b"\r").replace(b"b", b"\n")
    ),
    reads=st.lists(
        st.tuples(st.integers(0, 4 * NETASCII_CHUNK), st.integers(0, 2000)), max_size=20
    ),
)
def test_netascii_is_converted_on_the_fly_in_chunks(
    data: bytes, reads: list[tuple[int, int]]
) -> None:
    raw = ChunkReader(data)
    converted = to_netascii(data)
    source = NetasciiSource(raw)
    assert source.size == len(converted)
    for offset, n in reads:
        assert source.read(offset, n) == converted[offset : offset + n]
    assert raw.largest <= NETASCII_CHUNK


def test_netascii_transfer_through_the_session_matches_the_conversion() -> None:
    data = b"one\ntwo\r\nthree\r" * 2000
    s = session(data, mode="netascii", blksize="1024")
    got = bytearray()
    packets = [parse(d) for d in s.datagrams_to_send(0)]
    s.receive_datagram(build(Ack(0)), 0)
    while not s.finished:
        for packet in (parse(d) for d in s.datagrams_to_send(0)):
            assert isinstance(packet, Data)
            got += packet.payload
            s.receive_datagram(ack(packet.block), 0)
    assert packets and s.done and bytes(got) == to_netascii(data)
