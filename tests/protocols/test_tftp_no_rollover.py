"""Files for clients that cannot roll the block number over (the Raspberry Pi bootloader)."""

from __future__ import annotations

from corral.protocols.tftp import (
    BytesSource,
    Error,
    NoRollover,
    OAck,
    Opcode,
    ReadSession,
    Request,
    build,
    parse,
)
from corral.testing.tftp import ack

BIG = 65535 * 1024  # 65,535 blocks of 1024 bytes: one more block (the empty last) is too many


class Sized:
    """A file source of a given size that is never read (no 64 MB in memory)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.closed = False

    def read(self, offset: int, n: int) -> bytes:
        return b"\0" * max(0, min(n, self.size - offset))

    def close(self) -> None:
        self.closed = True


def test_file_over_65535_blocks_is_refused_with_the_reason() -> None:
    source = Sized(BIG)
    s = ReadSession(Request(Opcode.RRQ, "k", "octet", {"blksize": "1024"}), NoRollover(source), 0)
    (datagram,) = s.datagrams_to_send(0)
    error = parse(datagram)
    assert isinstance(error, Error)
    assert "65535" in error.message and "1024" in error.message
    assert s.failed and source.closed


def test_same_file_at_a_larger_block_size_is_served() -> None:
    s = ReadSession(
        Request(Opcode.RRQ, "k", "octet", {"blksize": "1468"}), NoRollover(Sized(BIG)), 0
    )
    assert isinstance(parse(s.datagrams_to_send(0)[0]), OAck)
    assert not s.failed


def test_other_clients_still_roll_over() -> None:
    s = ReadSession(Request(Opcode.RRQ, "k", "octet", {"blksize": "1024"}), Sized(BIG), 0)
    assert isinstance(parse(s.datagrams_to_send(0)[0]), OAck)


def test_probe_abandoned_after_the_oack_is_marked_abandoned_not_a_failure_cause() -> None:
    request = Request(Opcode.RRQ, "start4.elf", "octet", {"tsize": "0", "blksize": "1024"})
    s = ReadSession(request, NoRollover(BytesSource(b"x" * 5000)), 0)
    oack = parse(s.datagrams_to_send(0)[0])
    assert oack == OAck({"tsize": "5000", "blksize": "1024"})
    s.receive_datagram(build(Error(0, "abandoned")), 0.1)
    assert s.finished and s.abandoned


def test_error_after_data_was_acknowledged_is_not_a_probe() -> None:
    s = ReadSession(Request(Opcode.RRQ, "f", "octet", {}), BytesSource(b"x" * 2000), 0)
    s.datagrams_to_send(0)
    s.receive_datagram(ack(1), 0.1)
    s.receive_datagram(build(Error(0, "disk full")), 0.2)
    assert s.failed and not s.abandoned
