"""TFTP codec: round trips, real-world oddities, and arbitrary bytes raise only MalformedPacket."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.protocols.tftp import (
    Ack,
    Data,
    Error,
    ErrorCode,
    MalformedPacket,
    OAck,
    Opcode,
    Packet,
    Request,
    TftpError,
    build,
    parse,
)

text = st.text(st.characters(blacklist_characters="\0", blacklist_categories=["Cs"]), min_size=1)
option_names = text.map(str.lower).filter(lambda s: s.lower() == s)
options = st.dictionaries(option_names, text, max_size=5)
block = st.integers(0, 0xFFFF)

packets: st.SearchStrategy[Packet] = st.one_of(
    st.builds(
        Request, st.sampled_from([Opcode.RRQ, Opcode.WRQ]), text, text.map(str.lower), options
    ),
    st.builds(Data, block, st.binary(max_size=1500)),
    st.builds(Ack, block),
    st.builds(Error, block, st.text(st.characters(blacklist_characters="\0", codec="utf-8"))),
    st.builds(OAck, options),
)


@given(packets)
def test_parse_inverts_build(packet: Packet) -> None:
    assert parse(build(packet)) == packet


@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedPacket):
        parse(data)


@given(packets, st.data())
def test_truncated_packets_raise_only_malformed(packet: Packet, data: st.DataObject) -> None:
    raw = build(packet)
    cut = data.draw(st.integers(0, len(raw)))
    with contextlib.suppress(MalformedPacket):
        parse(raw[:cut])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"\x00\x01pxelinux.0\x00octet\x00",
            Request(Opcode.RRQ, "pxelinux.0", "octet", {}),
        ),
        (  # iPXE-style request with options, mode in capitals
            b"\x00\x01undionly.kpxe\x00OCTET\x00blksize\x001432\x00tsize\x000\x00",
            Request(Opcode.RRQ, "undionly.kpxe", "octet", {"blksize": "1432", "tsize": "0"}),
        ),
        (  # NUL padding after the last field, seen from some PXE ROMs
            b"\x00\x01a\x00octet\x00\x00\x00\x00",
            Request(Opcode.RRQ, "a", "octet", {}),
        ),
        (  # option names are case-insensitive; the first occurrence wins
            b"\x00\x01a\x00octet\x00BLKSIZE\x00100\x00blksize\x00200\x00",
            Request(Opcode.RRQ, "a", "octet", {"blksize": "100"}),
        ),
        (b"\x00\x03\x00\x01hello", Data(1, b"hello")),
        (b"\x00\x04\xff\xff", Ack(65535)),
        (b"\x00\x05\x00\x01nope\x00", Error(1, "nope")),
        (b"\x00\x05\x00\x08", Error(8, "")),  # message without its NUL
        (b"\x00\x06blksize\x001468\x00", OAck({"blksize": "1468"})),
    ],
)
def test_parse_known_packets(raw: bytes, expected: Packet) -> None:
    assert parse(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00",
        b"\x00\x07",  # unknown opcode
        b"\x00\x00abc",
        b"\x00\x01file\x00",  # no mode
        b"\x00\x01\x00octet\x00",  # empty filename
        b"\x00\x01file\x00octet",  # not NUL-terminated
        b"\x00\x01file\x00octet\x00blksize\x00",  # option without a value
        b"\x00\x03\x00",
        b"\x00\x04\x00",
        b"\x00\x05\x00",
        b"\x00\x06blksize\x00",
    ],
)
def test_malformed_packets(raw: bytes) -> None:
    with pytest.raises(MalformedPacket):
        parse(raw)


def test_error_packet_from_refusal() -> None:
    error = TftpError(ErrorCode.ACCESS_VIOLATION, "no")
    assert parse(error.packet()) == Error(2, "no")
