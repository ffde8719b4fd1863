"""DHCP option codecs, registered by option code.

Each known code maps to a small codec that turns the option's (already
RFC 3396-concatenated) payload into a typed Python value and back. Unknown
codes are carried as raw `bytes`. A payload that a codec cannot decode raises
`MalformedPacket`: the peer broke the protocol. A value that a codec cannot
encode raises `ValueError`: we did.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address
from typing import TypeVar

_T = TypeVar("_T")


class MalformedPacket(ValueError):
    """The peer sent bytes that are not a valid DHCP message."""


class MessageType(IntEnum):
    """Option 53 values (RFC 2132 9.6)."""

    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8


class Opt(IntEnum):
    """Option codes corral knows by name."""

    PAD = 0
    SUBNET_MASK = 1
    ROUTER = 3
    DNS = 6
    HOSTNAME = 12
    DOMAIN = 15
    MTU = 26
    BROADCAST = 28
    NTP = 42
    VENDOR_SPECIFIC = 43
    REQUESTED_IP = 50
    LEASE_TIME = 51
    OVERLOAD = 52
    MESSAGE_TYPE = 53
    SERVER_ID = 54
    PARAM_REQUEST = 55
    MESSAGE = 56
    MAX_MESSAGE_SIZE = 57
    RENEWAL_TIME = 58
    REBINDING_TIME = 59
    VENDOR_CLASS = 60
    CLIENT_ID = 61
    TFTP_SERVER = 66
    BOOTFILE = 67
    USER_CLASS = 77
    RELAY_AGENT_INFO = 82
    CLIENT_ARCH = 93
    CLIENT_NDI = 94
    CLIENT_UUID = 97
    IPXE_ENCAP = 175
    END = 255


@dataclass(frozen=True)
class ClientId:
    """Option 61: a hardware type (0 = opaque) and an identifier."""

    type: int
    data: bytes


@dataclass(frozen=True)
class ClientNdi:
    """Option 94: network interface identifier (type, major, minor)."""

    type: int
    major: int
    minor: int


@dataclass(frozen=True)
class UserClass:
    """Option 77: RFC 3004 length-prefixed classes, or one unprefixed blob.

    iPXE sends the plain form (the bytes ``iPXE``); `plain` records which form
    was on the wire so that building gives the same bytes back.
    """

    classes: tuple[bytes, ...]
    plain: bool = False

    def has(self, name: bytes) -> bool:
        return name in self.classes


@dataclass(frozen=True)
class RelayAgentInfo:
    """Option 82 (RFC 3046): sub-options in wire order."""

    suboptions: tuple[tuple[int, bytes], ...]

    def get(self, code: int) -> bytes | None:
        for sub, data in self.suboptions:
            if sub == code:
                return data
        return None

    @property
    def circuit_id(self) -> bytes | None:
        return self.get(1)

    @property
    def remote_id(self) -> bytes | None:
        return self.get(2)


OptionValue = (
    IPv4Address
    | tuple[IPv4Address, ...]
    | int
    | str
    | bytes
    | tuple[int, ...]
    | ClientId
    | ClientNdi
    | UserClass
    | RelayAgentInfo
    | uuid.UUID
)


@dataclass(frozen=True)
class Codec:
    """How one option's payload maps to a value; `kind` names the value type."""

    kind: str
    decode: Callable[[bytes], OptionValue]
    encode: Callable[[OptionValue], bytes]


def _want(value: object, typ: type[_T]) -> _T:
    if not isinstance(value, typ):
        raise ValueError(f"expected {typ.__name__}, got {type(value).__name__}")
    return value


def _dec_ip(data: bytes) -> IPv4Address:
    if len(data) != 4:
        raise MalformedPacket(f"IP option of length {len(data)}")
    return IPv4Address(data)


def _dec_ips(data: bytes) -> tuple[IPv4Address, ...]:
    if len(data) % 4:
        raise MalformedPacket(f"IP list option of length {len(data)}")
    return tuple(IPv4Address(data[i : i + 4]) for i in range(0, len(data), 4))


def _enc_ips(value: OptionValue) -> bytes:
    return b"".join(_want(ip, IPv4Address).packed for ip in _want(value, tuple))


def _uint(fmt: str) -> Codec:
    size = struct.calcsize(fmt)

    def dec(data: bytes) -> int:
        if len(data) != size:
            raise MalformedPacket(f"integer option of length {len(data)}, want {size}")
        return int(struct.unpack(fmt, data)[0])

    def enc(value: OptionValue) -> bytes:
        try:
            return struct.pack(fmt, _want(value, int))
        except struct.error as exc:
            raise ValueError(str(exc)) from exc

    return Codec(f"u{size * 8}", dec, enc)


def _dec_str(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _enc_str(value: OptionValue) -> bytes:
    return _want(value, str).encode("utf-8", "surrogateescape")


def _dec_bytes(data: bytes) -> bytes:
    return bytes(data)


def _enc_bytes(value: OptionValue) -> bytes:
    return _want(value, bytes)


def _dec_message_type(data: bytes) -> int:
    if len(data) != 1:
        raise MalformedPacket(f"message type of length {len(data)}")
    try:
        return MessageType(data[0])
    except ValueError:
        return data[0]


def _dec_client_id(data: bytes) -> ClientId:
    if len(data) < 2:
        raise MalformedPacket("client identifier shorter than 2 bytes")
    return ClientId(data[0], bytes(data[1:]))


def _enc_client_id(value: OptionValue) -> bytes:
    cid = _want(value, ClientId)
    if len(cid.data) < 1:
        raise ValueError("client identifier needs at least one byte of data")
    return bytes([cid.type]) + cid.data


def _dec_u8_list(data: bytes) -> tuple[int, ...]:
    return tuple(data)


def _enc_u8_list(value: OptionValue) -> bytes:
    return bytes(_want(v, int) for v in _want(value, tuple))


def _dec_u16_list(data: bytes) -> tuple[int, ...]:
    if len(data) % 2:
        raise MalformedPacket(f"16-bit list of odd length {len(data)}")
    return tuple(struct.unpack(f"!{len(data) // 2}H", data))


def _enc_u16_list(value: OptionValue) -> bytes:
    items = [_want(v, int) for v in _want(value, tuple)]
    try:
        return struct.pack(f"!{len(items)}H", *items)
    except struct.error as exc:
        raise ValueError(str(exc)) from exc


def _split_tlv(data: bytes) -> tuple[tuple[int, bytes], ...]:
    """Code/length/value items; raises MalformedPacket when one overruns."""
    items: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise MalformedPacket("truncated sub-option header")
        code, size = data[i], data[i + 1]
        if i + 2 + size > len(data):
            raise MalformedPacket("sub-option overruns its option")
        items.append((code, bytes(data[i + 2 : i + 2 + size])))
        i += 2 + size
    return tuple(items)


def encode_tlv(items: tuple[tuple[int, bytes], ...]) -> bytes:
    """Sub-options as code/length/value (each value at most 255 bytes)."""
    out = bytearray()
    for code, data in items:
        if not 0 <= code <= 255 or len(data) > 255:
            raise ValueError(f"sub-option {code} does not fit in one TLV")
        out += bytes([code, len(data)]) + data
    return bytes(out)


def _dec_relay(data: bytes) -> RelayAgentInfo:
    return RelayAgentInfo(_split_tlv(data))


def _enc_relay(value: OptionValue) -> bytes:
    return encode_tlv(_want(value, RelayAgentInfo).suboptions)


def _rfc3004_classes(data: bytes) -> tuple[bytes, ...] | None:
    classes: list[bytes] = []
    i = 0
    while i < len(data):
        size = data[i]
        if size == 0 or i + 1 + size > len(data):
            return None
        classes.append(bytes(data[i + 1 : i + 1 + size]))
        i += 1 + size
    return tuple(classes)


def _dec_user_class(data: bytes) -> UserClass:
    classes = _rfc3004_classes(data)
    if classes is not None:
        return UserClass(classes)
    return UserClass((bytes(data),), plain=True)


def _enc_user_class(value: OptionValue) -> bytes:
    uc = _want(value, UserClass)
    if uc.plain:
        if len(uc.classes) != 1:
            raise ValueError("a plain user class holds exactly one class")
        return uc.classes[0]
    out = bytearray()
    for item in uc.classes:
        if not 1 <= len(item) <= 255:
            raise ValueError("an RFC 3004 user class is 1-255 bytes")
        out += bytes([len(item)]) + item
    return bytes(out)


def _dec_ndi(data: bytes) -> ClientNdi:
    if len(data) != 3:
        raise MalformedPacket(f"client NDI of length {len(data)}")
    return ClientNdi(data[0], data[1], data[2])


def _enc_ndi(value: OptionValue) -> bytes:
    ndi = _want(value, ClientNdi)
    return bytes([ndi.type, ndi.major, ndi.minor])


def _dec_uuid(data: bytes) -> uuid.UUID:
    if len(data) != 17 or data[0] != 0:
        raise MalformedPacket("client UUID must be type 0 and 16 bytes")
    return uuid.UUID(bytes=bytes(data[1:]))


def _enc_uuid(value: OptionValue) -> bytes:
    return b"\x00" + _want(value, uuid.UUID).bytes


IP = Codec("ip", _dec_ip, lambda v: _want(v, IPv4Address).packed)
IP_LIST = Codec("ip_list", _dec_ips, _enc_ips)
U8 = _uint("!B")
U16 = _uint("!H")
U32 = _uint("!I")
STRING = Codec("string", _dec_str, _enc_str)
BYTES = Codec("bytes", _dec_bytes, _enc_bytes)

OPTION_CODECS: dict[int, Codec] = {
    Opt.SUBNET_MASK: IP,
    Opt.ROUTER: IP_LIST,
    Opt.DNS: IP_LIST,
    Opt.HOSTNAME: STRING,
    Opt.DOMAIN: STRING,
    Opt.MTU: U16,
    Opt.BROADCAST: IP,
    Opt.NTP: IP_LIST,
    Opt.VENDOR_SPECIFIC: BYTES,
    Opt.REQUESTED_IP: IP,
    Opt.LEASE_TIME: U32,
    Opt.OVERLOAD: U8,
    Opt.MESSAGE_TYPE: Codec("message_type", _dec_message_type, U8.encode),
    Opt.SERVER_ID: IP,
    Opt.PARAM_REQUEST: Codec("u8_list", _dec_u8_list, _enc_u8_list),
    Opt.MESSAGE: STRING,
    Opt.MAX_MESSAGE_SIZE: U16,
    Opt.RENEWAL_TIME: U32,
    Opt.REBINDING_TIME: U32,
    Opt.VENDOR_CLASS: STRING,
    Opt.CLIENT_ID: Codec("client_id", _dec_client_id, _enc_client_id),
    Opt.TFTP_SERVER: STRING,
    Opt.BOOTFILE: STRING,
    Opt.USER_CLASS: Codec("user_class", _dec_user_class, _enc_user_class),
    Opt.RELAY_AGENT_INFO: Codec("relay_agent_info", _dec_relay, _enc_relay),
    Opt.CLIENT_ARCH: Codec("u16_list", _dec_u16_list, _enc_u16_list),
    Opt.CLIENT_NDI: Codec("client_ndi", _dec_ndi, _enc_ndi),
    Opt.CLIENT_UUID: Codec("uuid", _dec_uuid, _enc_uuid),
    Opt.IPXE_ENCAP: BYTES,
}


def codec_for(code: int) -> Codec:
    """The codec registered for `code`; raw bytes for unknown codes."""
    return OPTION_CODECS.get(code, BYTES)


def decode_option(code: int, data: bytes) -> OptionValue:
    return codec_for(code).decode(data)


def encode_option(code: int, value: OptionValue) -> bytes:
    return codec_for(code).encode(value)
