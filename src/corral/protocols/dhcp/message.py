"""The DHCPv4 message: `parse(bytes) -> Message` and `build(Message) -> bytes`.

Sans-io (RFC 2131 section 2, RFC 2132, RFC 3396): no sockets, no clock.
`parse` raises only `MalformedPacket`, whatever the input; a server loop may
catch that one exception and carry on. Repeated instances of one option are
concatenated (RFC 3396) on parse, and long values are split on build. Options
carried in an overloaded ``sname``/``file`` (option 52) are merged into
`Message.options` on parse; `build` never overloads.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from corral.protocols.dhcp.options import (
    ClientNdi,
    MalformedPacket,
    Opt,
    OptionValue,
    RelayAgentInfo,
    UserClass,
    decode_option,
    encode_option,
)

MAGIC_COOKIE = b"\x63\x82\x53\x63"
BOOTREQUEST = 1
BOOTREPLY = 2
FLAG_BROADCAST = 0x8000
BOOTP_MIN_SIZE = 300
_HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
_FIXED_SIZE = _HEADER.size + len(MAGIC_COOKIE)  # 240
ZERO = IPv4Address(0)


def _pad(data: bytes, size: int, what: str) -> bytes:
    if len(data) > size:
        raise ValueError(f"{what} is longer than {size} bytes")
    return data.ljust(size, b"\x00")


def _field_text(value: str, size: int, what: str) -> bytes:
    raw = value.encode("latin-1")
    if b"\x00" in raw or len(raw) > size:
        raise ValueError(f"{what} must be at most {size} bytes with no NUL")
    return raw


@dataclass(frozen=True)
class Message:
    """One DHCP message. `chaddr` is kept padded to its 16 wire bytes."""

    op: int = BOOTREQUEST
    htype: int = 1
    hlen: int = 6
    hops: int = 0
    xid: int = 0
    secs: int = 0
    flags: int = 0
    ciaddr: IPv4Address = ZERO
    yiaddr: IPv4Address = ZERO
    siaddr: IPv4Address = ZERO
    giaddr: IPv4Address = ZERO
    chaddr: bytes = b""
    sname: str = ""
    file: str = ""
    options: Mapping[int, OptionValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "chaddr", _pad(self.chaddr, 16, "chaddr"))
        object.__setattr__(self, "options", dict(self.options))
        if self.hlen > 16:
            raise ValueError("hlen is at most 16")
        _field_text(self.sname, 64, "sname")
        _field_text(self.file, 128, "file")

    # Typed views of the options a server looks at.

    @property
    def mac(self) -> str:
        """The hardware address in canonical lower-case colon form."""
        return ":".join(f"{b:02x}" for b in self.chaddr[: self.hlen])

    @property
    def message_type(self) -> int | None:
        value = self.options.get(Opt.MESSAGE_TYPE)
        return value if isinstance(value, int) else None

    @property
    def broadcast(self) -> bool:
        return bool(self.flags & FLAG_BROADCAST)

    def ip_option(self, code: int) -> IPv4Address | None:
        value = self.options.get(code)
        return value if isinstance(value, IPv4Address) else None

    def str_option(self, code: int) -> str | None:
        value = self.options.get(code)
        return value if isinstance(value, str) else None

    @property
    def requested_ip(self) -> IPv4Address | None:
        return self.ip_option(Opt.REQUESTED_IP)

    @property
    def server_id(self) -> IPv4Address | None:
        return self.ip_option(Opt.SERVER_ID)

    @property
    def vendor_class(self) -> str | None:
        return self.str_option(Opt.VENDOR_CLASS)

    @property
    def hostname(self) -> str | None:
        return self.str_option(Opt.HOSTNAME)

    @property
    def user_class(self) -> UserClass | None:
        value = self.options.get(Opt.USER_CLASS)
        return value if isinstance(value, UserClass) else None

    @property
    def relay_info(self) -> RelayAgentInfo | None:
        value = self.options.get(Opt.RELAY_AGENT_INFO)
        return value if isinstance(value, RelayAgentInfo) else None

    @property
    def client_arch(self) -> tuple[int, ...]:
        value = self.options.get(Opt.CLIENT_ARCH)
        if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
            return tuple(int(v) for v in value if isinstance(v, int))
        return ()

    @property
    def client_ndi(self) -> ClientNdi | None:
        value = self.options.get(Opt.CLIENT_NDI)
        return value if isinstance(value, ClientNdi) else None


# ---------------------------------------------------------------- parsing


def _scan_options(area: bytes, chunks: dict[int, list[bytes]]) -> None:
    """Append each option's payload in `area` to `chunks[code]` (wire order)."""
    i = 0
    while i < len(area):
        code = area[i]
        if code == Opt.END:
            return
        if code == Opt.PAD:
            i += 1
            continue
        if i + 2 > len(area):
            raise MalformedPacket(f"option {code} has no length byte")
        size = area[i + 1]
        if i + 2 + size > len(area):
            raise MalformedPacket(f"option {code} overruns the packet")
        chunks.setdefault(code, []).append(area[i + 2 : i + 2 + size])
        i += 2 + size


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1")


def _overload(chunks: dict[int, list[bytes]]) -> int:
    parts = chunks.pop(Opt.OVERLOAD, None)
    if parts is None:
        return 0
    data = b"".join(parts)
    if len(data) != 1 or data[0] not in (1, 2, 3):
        raise MalformedPacket("option 52 must be one byte of 1, 2 or 3")
    return data[0]


def parse(data: bytes) -> Message:
    """Decode one DHCP message; raises only `MalformedPacket`."""
    if len(data) < _FIXED_SIZE:
        raise MalformedPacket(f"{len(data)} bytes is shorter than a DHCP header")
    if data[_HEADER.size : _FIXED_SIZE] != MAGIC_COOKIE:
        raise MalformedPacket("no DHCP magic cookie")
    (op, htype, hlen, hops, xid, secs, flags, ci, yi, si, gi, chaddr, sname, file) = (
        _HEADER.unpack_from(data)
    )
    if hlen > 16:
        raise MalformedPacket(f"hlen {hlen} is over 16")
    chunks: dict[int, list[bytes]] = {}
    _scan_options(data[_FIXED_SIZE:], chunks)
    overload = _overload(chunks)
    if overload & 1:
        _scan_options(file, chunks)
    if overload & 2:
        _scan_options(sname, chunks)
    options = {code: decode_option(code, b"".join(parts)) for code, parts in chunks.items()}
    return Message(
        op=op,
        htype=htype,
        hlen=hlen,
        hops=hops,
        xid=xid,
        secs=secs,
        flags=flags,
        ciaddr=IPv4Address(ci),
        yiaddr=IPv4Address(yi),
        siaddr=IPv4Address(si),
        giaddr=IPv4Address(gi),
        chaddr=chaddr,
        sname="" if overload & 2 else _text(sname),
        file="" if overload & 1 else _text(file),
        options=options,
    )


# ---------------------------------------------------------------- building


def _encode_one(code: int, value: OptionValue) -> bytes:
    """One option, split into 255-byte instances when longer (RFC 3396)."""
    payload = encode_option(code, value)
    if not payload:
        return bytes([code, 0])
    out = bytearray()
    for i in range(0, len(payload), 255):
        part = payload[i : i + 255]
        out += bytes([code, len(part)]) + part
    return bytes(out)


def _option_order(options: Mapping[int, OptionValue]) -> list[int]:
    """Message type first, relay agent information last (RFC 3046 2.1)."""
    codes = [c for c in options if c not in (Opt.MESSAGE_TYPE, Opt.RELAY_AGENT_INFO)]
    if Opt.MESSAGE_TYPE in options:
        codes.insert(0, Opt.MESSAGE_TYPE)
    if Opt.RELAY_AGENT_INFO in options:
        codes.append(Opt.RELAY_AGENT_INFO)
    return codes


def build(msg: Message) -> bytes:
    """Encode `msg`, padded to the BOOTP minimum of 300 bytes."""
    for code in msg.options:
        if code in (Opt.PAD, Opt.END, Opt.OVERLOAD) or not 0 <= code <= 255:
            raise ValueError(f"option {code} cannot be set directly")
    try:
        header = _pack_header(msg)
    except struct.error as exc:
        raise ValueError(f"header field out of range: {exc}") from exc
    body = b"".join(_encode_one(code, msg.options[code]) for code in _option_order(msg.options))
    packet = header + MAGIC_COOKIE + body + bytes([Opt.END])
    return packet.ljust(BOOTP_MIN_SIZE, b"\x00")


def _pack_header(msg: Message) -> bytes:
    return _HEADER.pack(
        msg.op,
        msg.htype,
        msg.hlen,
        msg.hops,
        msg.xid,
        msg.secs,
        msg.flags,
        msg.ciaddr.packed,
        msg.yiaddr.packed,
        msg.siaddr.packed,
        msg.giaddr.packed,
        msg.chaddr,
        _field_text(msg.sname, 64, "sname"),
        _field_text(msg.file, 128, "file"),
    )
