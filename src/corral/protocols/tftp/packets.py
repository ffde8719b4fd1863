"""TFTP packet codec (RFC 1350, options per RFC 2347): bytes in, dataclasses out.

Why a module of its own: every byte a peer sends passes through `parse`, so it
is the one place that must turn any input whatsoever into either a packet or a
`MalformedPacket`. Nothing else may escape it; the server loop relies on that.

Exceptions::

    ValueError
     └─ MalformedPacket   the peer sent bytes that are not a TFTP packet
    Exception
     └─ TftpError         we refuse a request; carries the ERROR packet to send
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

_HEADER = struct.Struct("!HH")
MAX_BLOCK = 0xFFFF


class MalformedPacket(ValueError):
    """The peer's datagram is not a well-formed TFTP packet."""


class Opcode(IntEnum):
    RRQ = 1
    WRQ = 2
    DATA = 3
    ACK = 4
    ERROR = 5
    OACK = 6


class ErrorCode(IntEnum):
    NOT_DEFINED = 0
    FILE_NOT_FOUND = 1
    ACCESS_VIOLATION = 2
    DISK_FULL = 3
    ILLEGAL_OPERATION = 4
    UNKNOWN_TID = 5
    FILE_EXISTS = 6
    NO_SUCH_USER = 7
    OPTION_REFUSED = 8


@dataclass(frozen=True)
class Request:
    """RRQ or WRQ. `mode` and option names are lower-cased by `parse`."""

    opcode: Opcode
    filename: str
    mode: str = "octet"
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Data:
    block: int
    payload: bytes


@dataclass(frozen=True)
class Ack:
    block: int


@dataclass(frozen=True)
class Error:
    code: int
    message: str


@dataclass(frozen=True)
class OAck:
    options: dict[str, str]


Packet = Request | Data | Ack | Error | OAck


class TftpError(Exception):
    """A refusal we answer with an ERROR packet (not found, access violation...)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    def packet(self) -> bytes:
        return build(Error(int(self.code), self.message))


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _encode(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogateescape")
    if b"\0" in raw:
        raise ValueError("TFTP strings cannot contain NUL")
    return raw


def _strings(body: bytes) -> list[str]:
    if not body.endswith(b"\0"):
        raise MalformedPacket("string field not NUL-terminated")
    return [_decode(f) for f in body[:-1].split(b"\0")]


def _pairs(fields: list[str]) -> dict[str, str]:
    """Option name/value pairs; trailing NUL padding (some ROMs add it) is dropped."""
    while fields and fields[-1] == "" and (len(fields) % 2 or fields[-2] == ""):
        fields = fields[:-1]
    if len(fields) % 2:
        raise MalformedPacket("option without a value")
    options: dict[str, str] = {}
    for name, value in zip(fields[::2], fields[1::2], strict=True):
        if not name:
            raise MalformedPacket("empty option name")
        options.setdefault(name.lower(), value)
    return options


def _parse_request(opcode: Opcode, body: bytes) -> Request:
    fields = _strings(body)
    if len(fields) < 2 or not fields[0] or not fields[1]:
        raise MalformedPacket("request without filename or mode")
    return Request(opcode, fields[0], fields[1].lower(), _pairs(fields[2:]))


def _parse_error(body: bytes) -> Error:
    if len(body) < 2:
        raise MalformedPacket("ERROR without code")
    message = body[2:].split(b"\0", 1)[0]
    return Error(int.from_bytes(body[:2], "big"), message.decode("utf-8", "replace"))


def parse(data: bytes) -> Packet:
    """Decode one datagram. Raises only `MalformedPacket`."""
    if len(data) < 2:
        raise MalformedPacket("datagram shorter than an opcode")
    code = int.from_bytes(data[:2], "big")
    body = data[2:]
    if code in (Opcode.RRQ, Opcode.WRQ):
        return _parse_request(Opcode(code), body)
    if code == Opcode.DATA:
        if len(body) < 2:
            raise MalformedPacket("DATA without block number")
        return Data(int.from_bytes(body[:2], "big"), bytes(body[2:]))
    if code == Opcode.ACK:
        if len(body) < 2:
            raise MalformedPacket("ACK without block number")
        return Ack(int.from_bytes(body[:2], "big"))
    if code == Opcode.ERROR:
        return _parse_error(body)
    if code == Opcode.OACK:
        return OAck(_pairs(_strings(body)) if body else {})
    raise MalformedPacket(f"unknown opcode {code}")


def _join(strings: list[str]) -> bytes:
    return b"".join(_encode(s) + b"\0" for s in strings)


def build_data(block: int, payload: bytes) -> bytes:
    """The hot path: one DATA packet, block number taken modulo 2**16."""
    return _HEADER.pack(Opcode.DATA, block & MAX_BLOCK) + payload


def build(packet: Packet) -> bytes:
    """Encode a packet. Raises ValueError for values no packet can carry (our bug)."""
    match packet:
        case Request(opcode, filename, mode, options):
            items = [s for kv in options.items() for s in kv]
            return opcode.to_bytes(2, "big") + _join([filename, mode, *items])
        case Data(block, payload):
            return _HEADER.pack(Opcode.DATA, block) + payload
        case Ack(block):
            return _HEADER.pack(Opcode.ACK, block)
        case Error(code, message):
            return _HEADER.pack(Opcode.ERROR, code) + _join([message])
        case OAck(options):
            items = [s for kv in options.items() for s in kv]
            return Opcode.OACK.to_bytes(2, "big") + _join(items)
    raise TypeError(f"not a TFTP packet: {packet!r}")
