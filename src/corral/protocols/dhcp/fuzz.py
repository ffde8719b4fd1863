"""Hostile DHCP datagrams, seeded: for the CI fuzz test and `bench/fuzz_dhcp.py`.

Random bytes alone almost never pass the magic cookie, so they test only
the first check of the parser. Most of what this makes is therefore a real
header and cookie followed by options that real clients send (message type,
requested address, server id, client id, vendor and user classes, relay
information, PXE architecture...) with sane, odd and wrong lengths and
values, from a small set of MACs so that offers, leases, declines and
releases meet each other. The rest is truncated or bit-flipped valid
packets and plain random bytes. Pure: the caller passes a `random.Random`.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network

from corral.protocols.dhcp.message import _HEADER, BOOTREQUEST, MAGIC_COOKIE

_VENDORS = (
    b"PXEClient:Arch:00000:UNDI:002001",
    b"PXEClient:Arch:00007:UNDI:003016",
    b"PXEClient:Arch:00011:UNDI:003000",
    b"HTTPClient:Arch:00016",
    b"PXEClient",
    b"udhcp 1.36.1",
    b"",
)
_OPTION_CODES = (1, 3, 6, 12, 15, 43, 50, 51, 52, 53, 54, 55, 57, 60, 61, 77, 82, 93, 94, 97, 175)


class DatagramMaker:
    """Makes fuzz datagrams for a server at `server` serving `network`."""

    def __init__(
        self,
        rng: random.Random,
        server: IPv4Address,
        network: IPv4Network,
        macs: Sequence[bytes] = (),
    ) -> None:
        self.rng = rng
        self.server = server
        self.network = network
        self.macs = list(macs) or [bytes([0x52, 0x54, 0, 0xF0, 0, i]) for i in range(64)]

    def __call__(self) -> bytes:
        roll = self.rng.random()
        if roll < 0.70:
            return self.message()
        if roll < 0.85:
            return self._mangled(self.message())
        return self.rng.randbytes(self.rng.randrange(0, 700))

    # ------------------------------------------------------------ pieces

    def _address(self) -> bytes:
        rng = self.rng
        pick = rng.randrange(5)
        if pick == 0:
            return b"\0\0\0\0"
        if pick == 1:
            return self.server.packed
        if pick == 2:
            return rng.randbytes(4)
        return IPv4Address(int(self.network.network_address) + rng.randrange(256)).packed

    def _mac(self) -> bytes:
        if self.rng.random() < 0.8:
            return self.rng.choice(self.macs)
        return self.rng.randbytes(6)

    def _value(self, code: int) -> bytes:
        rng = self.rng
        if rng.random() < 0.1:  # a wrong length or garbage for this option
            return rng.randbytes(rng.randrange(0, 40))
        if code == 53:
            return bytes([rng.choice((1, 3, 3, 4, 7, 8, rng.randrange(256)))])
        if code in (50, 54, 1):
            return self.server.packed if code == 54 and rng.random() < 0.7 else self._address()
        if code in (3, 6):
            return b"".join(self._address() for _ in range(rng.randrange(0, 4)))
        if code == 60:
            return rng.choice(_VENDORS)
        if code == 61:
            return b"\x01" + self._mac()
        if code == 77:
            return rng.choice((b"iPXE", b"\x04iPXE", b"\x05iPXE", rng.randbytes(8)))
        if code == 82:
            circuit = rng.randbytes(rng.randrange(0, 12))
            return bytes([1, len(circuit)]) + circuit + bytes([2, 2]) + rng.randbytes(2)
        if code == 93:
            return struct.pack("!H", rng.choice((0, 6, 7, 9, 10, 11, 16, 41, 0xFFFF)))
        if code == 94:
            return bytes([1, 2, rng.randrange(256)])
        if code == 97:
            return b"\0" + rng.randbytes(16)
        if code in (51, 57):
            return struct.pack("!I" if code == 51 else "!H", rng.randrange(2**16))
        if code == 52:
            return bytes([rng.randrange(5)])
        return rng.randbytes(rng.randrange(0, 64))

    def message(self) -> bytes:
        """A header and cookie that parse, then options real and odd."""
        rng = self.rng
        mac = self._mac()
        header = _HEADER.pack(
            BOOTREQUEST if rng.random() < 0.95 else rng.randrange(256),
            1 if rng.random() < 0.95 else rng.randrange(256),
            6 if rng.random() < 0.95 else rng.randrange(17),
            rng.randrange(3),
            rng.getrandbits(32),
            rng.randrange(4),
            rng.choice((0, 0x8000)),
            self._address() if rng.random() < 0.3 else b"\0\0\0\0",  # ciaddr
            b"\0\0\0\0",
            b"\0\0\0\0",
            self._address() if rng.random() < 0.2 else b"\0\0\0\0",  # giaddr
            mac.ljust(16, b"\0"),
            b"",
            b"",
        )
        options = bytearray([53, 1, rng.choice((1, 3, 3, 4, 7, 8))])
        for _ in range(rng.randrange(0, 8)):
            code = rng.choice(_OPTION_CODES)
            value = self._value(code)[:255]
            options += bytes([code, len(value)]) + value
        if rng.random() < 0.9:
            options.append(255)
        return header + MAGIC_COOKIE + bytes(options)

    def _mangled(self, data: bytes) -> bytes:
        rng = self.rng
        if rng.random() < 0.5:
            return data[: rng.randrange(len(data))]
        flipped = bytearray(data)
        for _ in range(rng.randrange(1, 8)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        return bytes(flipped)
