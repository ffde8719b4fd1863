"""The DHCP codec: round trips, RFC 3396 long options, overload, hostile input."""

from __future__ import annotations

import contextlib
import struct
import uuid
from ipaddress import IPv4Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.protocols.dhcp import (
    OPTION_CODECS,
    ClientId,
    ClientNdi,
    MalformedPacket,
    Message,
    MessageType,
    Opt,
    OptionValue,
    RelayAgentInfo,
    UserClass,
    build,
    parse,
)
from corral.protocols.dhcp.message import MAGIC_COOKIE
from corral.protocols.dhcp.options import _rfc3004_classes

ips = st.integers(0, 2**32 - 1).map(IPv4Address)
u8 = st.integers(0, 255)
short_bytes = st.binary(max_size=255)

plain_user_class = st.binary(min_size=1, max_size=40).filter(lambda b: _rfc3004_classes(b) is None)
user_classes = st.one_of(
    st.lists(st.binary(min_size=1, max_size=255), max_size=3).map(lambda cs: UserClass(tuple(cs))),
    plain_user_class.map(lambda b: UserClass((b,), plain=True)),
)

VALUES: dict[str, st.SearchStrategy[OptionValue]] = {
    "ip": ips,
    "ip_list": st.lists(ips, max_size=70).map(tuple),
    "u8": u8,
    "u16": st.integers(0, 2**16 - 1),
    "u32": st.integers(0, 2**32 - 1),
    "string": st.text(max_size=300),
    "bytes": st.binary(max_size=600),
    "message_type": u8,
    "u8_list": st.lists(u8, max_size=300).map(tuple),
    "u16_list": st.lists(st.integers(0, 2**16 - 1), max_size=140).map(tuple),
    "client_id": st.builds(ClientId, u8, st.binary(min_size=1, max_size=300)),
    "user_class": user_classes,
    "relay_agent_info": st.lists(st.tuples(u8, short_bytes), max_size=4).map(
        lambda subs: RelayAgentInfo(tuple(subs))
    ),
    "client_ndi": st.builds(ClientNdi, u8, u8, u8),
    "uuid": st.uuids(),
}

SETTABLE = sorted(set(OPTION_CODECS) - {Opt.OVERLOAD})


@st.composite
def option_maps(draw: st.DrawFn) -> dict[int, OptionValue]:
    codes = draw(st.lists(st.sampled_from(SETTABLE), max_size=8, unique=True))
    unknown = draw(
        st.lists(
            st.integers(1, 254).filter(lambda c: c not in OPTION_CODECS), max_size=3, unique=True
        )
    )
    options: dict[int, OptionValue] = {}
    for code in codes:
        options[code] = draw(VALUES[OPTION_CODECS[code].kind])
    for code in unknown:
        options[code] = draw(st.binary(max_size=400))
    return options


latin1_text = st.text(st.characters(min_codepoint=1, max_codepoint=255))

messages = st.builds(
    Message,
    op=u8,
    htype=u8,
    hlen=st.integers(0, 16),
    hops=u8,
    xid=st.integers(0, 2**32 - 1),
    secs=st.integers(0, 2**16 - 1),
    flags=st.integers(0, 2**16 - 1),
    ciaddr=ips,
    yiaddr=ips,
    siaddr=ips,
    giaddr=ips,
    chaddr=st.binary(max_size=16),
    sname=latin1_text.filter(lambda s: len(s) <= 64),
    file=latin1_text.filter(lambda s: len(s) <= 128),
    options=option_maps(),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_parse_inverts_build(msg: Message) -> None:
    data = build(msg)
    assert len(data) >= 300
    assert parse(data) == msg


@settings(max_examples=1000)
@given(st.binary(max_size=700))
def test_arbitrary_bytes_raise_only_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedPacket):
        parse(data)


@settings(max_examples=1000)
@given(st.binary(max_size=400))
def test_arbitrary_options_raise_only_malformed(tail: bytes) -> None:
    header = bytes(236) + MAGIC_COOKIE
    with contextlib.suppress(MalformedPacket):
        parse(header + tail)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(messages, st.data())
def test_truncations_and_flips_raise_only_malformed(msg: Message, data: st.DataObject) -> None:
    packet = build(msg)
    cut = data.draw(st.integers(0, len(packet)))
    flip_at = data.draw(st.integers(0, len(packet) - 1))
    flip = bytearray(packet)
    flip[flip_at] ^= data.draw(st.integers(1, 255))
    for candidate in (packet[:cut], bytes(flip)):
        with contextlib.suppress(MalformedPacket):
            parse(candidate)


def test_malformed_is_a_value_error() -> None:
    assert issubclass(MalformedPacket, ValueError)
    with pytest.raises(MalformedPacket):
        parse(b"\x01" * 100)


def _raw(options: bytes, sname: bytes = b"", file: bytes = b"") -> bytes:
    header = struct.pack("!BBBBIHH16x", 1, 1, 6, 0, 0x1234, 0, 0)
    chaddr = bytes.fromhex("525400123456").ljust(16, b"\0")
    return (
        header + chaddr + sname.ljust(64, b"\0") + file.ljust(128, b"\0") + MAGIC_COOKIE + options
    )


def test_long_option_is_split_and_concatenated() -> None:
    name = "x" * 600
    data = build(Message(options={Opt.MESSAGE_TYPE: MessageType.OFFER, Opt.BOOTFILE: name}))
    body = data[240:]
    assert body[:3] == bytes([53, 1, 2])
    assert body[3:5] == bytes([67, 255]) and body[260:262] == bytes([67, 255])
    assert body[517:519] == bytes([67, 90])
    assert parse(data).options[Opt.BOOTFILE] == name


def test_split_instances_are_joined_before_decoding() -> None:
    # Option 6 sent as two instances, each not a multiple of 4 bytes on its own.
    data = _raw(bytes([6, 6, 10, 0, 0, 1, 10, 0, 6, 2, 0, 2, 255]))
    assert parse(data).options[Opt.DNS] == (IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2"))


def test_overloaded_file_and_sname_carry_options() -> None:
    file_area = bytes([12, 4]) + b"node" + bytes([255])
    sname_area = bytes([15, 3]) + b"lab" + bytes([255])
    data = _raw(bytes([53, 1, 1, 52, 1, 3, 255]), sname=sname_area, file=file_area)
    msg = parse(data)
    assert msg.options[Opt.HOSTNAME] == "node"
    assert msg.options[Opt.DOMAIN] == "lab"
    assert Opt.OVERLOAD not in msg.options
    assert msg.sname == "" and msg.file == ""


def test_bad_overload_value_is_malformed() -> None:
    with pytest.raises(MalformedPacket):
        parse(_raw(bytes([52, 1, 7, 255])))


def test_ipxe_plain_user_class_and_rfc3004_form() -> None:
    plain = parse(_raw(bytes([77, 4]) + b"iPXE" + bytes([255])))
    assert plain.user_class == UserClass((b"iPXE",), plain=True)
    assert plain.user_class is not None and plain.user_class.has(b"iPXE")
    rfc = parse(_raw(bytes([77, 5, 4]) + b"iPXE" + bytes([255])))
    assert rfc.user_class == UserClass((b"iPXE",))


def test_relay_agent_info_suboptions() -> None:
    data = _raw(bytes([82, 9, 1, 3]) + b"sw1" + bytes([2, 2]) + b"p7" + bytes([255]))
    info = parse(data).relay_info
    assert info is not None
    assert info.circuit_id == b"sw1" and info.remote_id == b"p7"
    with pytest.raises(MalformedPacket):
        parse(_raw(bytes([82, 3, 1, 5, 0, 255])))


def test_typed_option_views() -> None:
    guid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    msg = parse(
        build(
            Message(
                chaddr=bytes.fromhex("525400abcdef"),
                options={
                    Opt.MESSAGE_TYPE: MessageType.DISCOVER,
                    Opt.CLIENT_ARCH: (7,),
                    Opt.VENDOR_CLASS: "PXEClient:Arch:00007:UNDI:003016",
                    Opt.CLIENT_UUID: guid,
                    Opt.CLIENT_NDI: ClientNdi(1, 3, 16),
                },
            )
        )
    )
    assert msg.mac == "52:54:00:ab:cd:ef"
    assert msg.message_type == MessageType.DISCOVER
    assert msg.client_arch == (7,)
    assert msg.options[Opt.CLIENT_UUID] == guid


@pytest.mark.parametrize(
    "options",
    [
        bytes([53]),  # no length byte
        bytes([53, 4, 1]),  # overruns
        bytes([54, 3, 1, 2, 3, 255]),  # IP of length 3
        bytes([51, 2, 0, 1, 255]),  # u32 of length 2
        bytes([93, 3, 0, 0, 0, 255]),  # arch list of odd length
        bytes([97, 3, 0, 1, 2, 255]),  # short UUID
        bytes([61, 1, 1, 255]),  # client id too short
        bytes([94, 2, 1, 2, 255]),  # NDI of length 2
    ],
)
def test_malformed_options(options: bytes) -> None:
    with pytest.raises(MalformedPacket):
        parse(_raw(options))


def test_missing_end_option_is_tolerated() -> None:
    assert parse(_raw(bytes([53, 1, 1]))).message_type == MessageType.DISCOVER


def test_build_rejects_what_we_cannot_encode() -> None:
    with pytest.raises(ValueError):
        build(Message(options={Opt.LEASE_TIME: -1}))
    with pytest.raises(ValueError):
        build(Message(options={Opt.OVERLOAD: 1}))
    with pytest.raises(ValueError):
        Message(sname="x" * 65)
