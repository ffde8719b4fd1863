"""What the TFTP listener and its worker processes say to each other.

Why a module of its own: both sides (`tftp_pool` in the server, `tftp_worker`
in the child) must agree on it, and it is the one place that decides which
files can cross a process boundary. A regular file crosses as its descriptor
(SCM_RIGHTS), a rendered file (a few kB of grub.cfg or config.txt) as its
bytes; anything else stays with the listener, which runs it in-process.

Messages are single SOCK_SEQPACKET records: a JSON header, then (for a
rendered file) a NUL and the bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from corral.protocols.tftp import BytesSource, FileSource, NoRollover, OpenFileSource

Address = tuple[str, int]
MAX_INLINE = 64 * 1024  # a rendered file larger than this is served in-process
MAX_MESSAGE = MAX_INLINE + 4096


@dataclass(frozen=True)
class Handoff:
    """One accepted request: the worker opens the transfer's socket and runs it."""

    tid: int
    peer: Address
    request: bytes  # the RRQ datagram as received; the worker parses it again
    rollover: bool = True  # False: the client cannot count past block 65535
    inline: bytes | None = None  # the file's bytes, when no descriptor is passed

    def encode(self) -> bytes:
        header = {
            "tid": self.tid,
            "peer": list(self.peer),
            "request": self.request.hex(),
            "rollover": self.rollover,
            "inline": self.inline is not None,
        }
        body = json.dumps(header).encode()
        return body if self.inline is None else body + b"\0" + self.inline

    @classmethod
    def decode(cls, data: bytes) -> Handoff:
        body, _, inline = data.partition(b"\0")
        h = json.loads(body)
        return cls(
            int(h["tid"]),
            (str(h["peer"][0]), int(h["peer"][1])),
            bytes.fromhex(h["request"]),
            bool(h["rollover"]),
            inline if h["inline"] else None,
        )


@dataclass
class Report:
    """From a worker: counters since its last report, and the transfers that ended."""

    datagrams_sent: int = 0
    bytes_sent: int = 0
    malformed: int = 0
    ended: list[Ended] = field(default_factory=list)

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def decode(cls, data: bytes) -> Report:
        r = json.loads(data)
        ended = [Ended(**e) for e in r.pop("ended")]
        return cls(**r, ended=ended)

    def __bool__(self) -> bool:
        return bool(self.datagrams_sent or self.malformed or self.ended)


@dataclass(frozen=True)
class Ended:
    tid: int
    failed: bool
    abandoned: bool = False
    error: str | None = None
    retransmits: int = 0


def passable(source: FileSource) -> tuple[int | None, bytes | None, bool] | None:
    """(descriptor, inline bytes, rollover) to hand `source` over, or None: keep it here."""
    rollover = True
    if isinstance(source, NoRollover):
        source, rollover = source.inner, False
    if isinstance(source, OpenFileSource) and source.fileno() >= 0:
        return source.fileno(), None, rollover
    if isinstance(source, BytesSource) and len(source.data) <= MAX_INLINE:
        return None, source.data, rollover
    return None
