"""One TFTP read transfer as a pure state machine (aioquic style).

Why: the transfer logic (option negotiation, windows, retransmission, block
number rollover) is where TFTP servers go wrong, so it lives here with no
socket and no clock, and is driven by tests through simulated lossy channels.

The driver loop is::

    s = ReadSession(request, source, now)
    send(s.datagrams_to_send(now))
    on datagram: s.receive_datagram(data, now); send(s.datagrams_to_send(now))
    at s.get_timer(): s.handle_timer(now); send(s.datagrams_to_send(now))
    stop when s.finished

States (`SessionState`)::

    NEGOTIATING --ACK 0--> SENDING --ACK of last block--> DONE
         |                    |
         +--- retries exhausted / peer ERROR / refusal ---> FAILED

Blocks are counted internally with unbounded integers; only the wire carries
them modulo 2**16 (rollover to 0 after 65535). An ACK is mapped back to the
one unacknowledged block in flight with the same low 16 bits, so a wrapped
ACK can never be mistaken for the file's first block. An ACK for a block that
is already acknowledged (a duplicate) is ignored: only timers retransmit,
which is what prevents the Sorcerer's Apprentice syndrome.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from corral.protocols.tftp.files import FileSource, netascii_source
from corral.protocols.tftp.packets import (
    MAX_BLOCK,
    Ack,
    ErrorCode,
    OAck,
    Opcode,
    Request,
    TftpError,
    build,
    build_data,
    parse,
)
from corral.protocols.tftp.packets import Error as ErrorPacket

DEFAULT_BLKSIZE = 512
MIN_BLKSIZE = 8
MAX_BLKSIZE = 65464
MAX_WINDOWSIZE = 65535


@dataclass(frozen=True)
class SessionConfig:
    """Server-side limits. `max_blksize` 1468 fits a 1500-byte Ethernet MTU.

    `max_timeout` bounds the client's `timeout` option (RFC 2349 allows 255 s):
    a transfer nobody answers is dropped after at most max_timeout x (retries + 1).
    """

    max_blksize: int = 1468
    max_windowsize: int = 64
    timeout: float = 1.0
    max_timeout: int = 10
    max_retries: int = 5

    def __post_init__(self) -> None:
        if not MIN_BLKSIZE <= self.max_blksize <= MAX_BLKSIZE:
            raise ValueError(f"max_blksize must be in {MIN_BLKSIZE}..{MAX_BLKSIZE}")
        if not 1 <= self.max_windowsize <= MAX_WINDOWSIZE:
            raise ValueError(f"max_windowsize must be in 1..{MAX_WINDOWSIZE}")
        if self.timeout <= 0 or self.max_retries < 0:
            raise ValueError("timeout must be positive and max_retries not negative")
        if not 1 <= self.max_timeout <= 255:
            raise ValueError("max_timeout must be in 1..255")


class SessionState(Enum):
    NEGOTIATING = "negotiating"
    SENDING = "sending"
    DONE = "done"
    FAILED = "failed"


def _option_int(value: str) -> int | None:
    value = value.strip()
    if value.isascii() and value.isdigit() and len(value) <= 10:
        return int(value)
    return None


class ReadSession:
    """Serve one RRQ from `source` to one peer. Owns `source` and closes it."""

    def __init__(
        self,
        request: Request,
        source: FileSource,
        now: float,
        config: SessionConfig | None = None,
    ) -> None:
        self.config = config or SessionConfig()
        self.started = now
        self.blksize = DEFAULT_BLKSIZE
        self.windowsize = 1
        self.timeout = self.config.timeout
        self.retransmits = 0
        self.abandoned = False  # the peer stopped after the OACK or first block: a probe
        self.error: str | None = None
        self.state = SessionState.SENDING
        self._source = source
        self._outbox: list[bytes] = []
        self._oack = b""
        self._oack_due = False
        self._acked = 0
        self._highest_sent = 0
        self._next = 1
        self._deadline: float | None = None
        self._retries = 0
        self._total = 1
        self._size = 0
        self._open(request)

    # -- setup -----------------------------------------------------------

    def _open(self, request: Request) -> None:
        if request.opcode != Opcode.RRQ:
            self._refuse(TftpError(ErrorCode.ILLEGAL_OPERATION, "not a read request"))
            return
        if request.mode not in ("octet", "netascii"):
            self._refuse(TftpError(ErrorCode.ILLEGAL_OPERATION, f"mode {request.mode!r}"))
            return
        if request.mode == "netascii":
            try:
                self._source = netascii_source(self._source)
            except ValueError as exc:
                self._refuse(TftpError(ErrorCode.ILLEGAL_OPERATION, str(exc)))
                return
        accepted = self._negotiate(request.options)
        self._size = self._source.size  # fixed at open by every source (what tsize said)
        self._total = self._size // self.blksize + 1
        if self._total > MAX_BLOCK and not getattr(self._source, "rollover", True):
            size, blocks = self._source.size, self._total
            self._refuse(
                TftpError(
                    ErrorCode.NOT_DEFINED,
                    f"file of {size} bytes needs {blocks} blocks of {self.blksize} bytes; "
                    f"this client cannot count past {MAX_BLOCK} blocks",
                )
            )
            return
        if accepted:
            self._oack = build(OAck(accepted))
            self._oack_due = True
            self.state = SessionState.NEGOTIATING

    def _negotiate(self, options: dict[str, str]) -> dict[str, str]:
        """Accept what we support (RFC 2348, 2349, 7440); silently drop the rest."""
        accepted: dict[str, str] = {}
        for name, raw in options.items():
            value = _option_int(raw)
            if value is None:
                continue
            if name == "blksize" and value >= MIN_BLKSIZE:
                self.blksize = min(value, self.config.max_blksize)
                accepted[name] = str(self.blksize)
            elif name == "tsize":
                accepted[name] = str(self._source.size)
            elif name == "timeout" and 1 <= value <= self.config.max_timeout:
                self.timeout = float(value)
                accepted[name] = str(value)
            elif name == "windowsize" and value >= 1:
                self.windowsize = min(value, self.config.max_windowsize)
                accepted[name] = str(self.windowsize)
        return accepted

    # -- public driver interface ----------------------------------------

    @property
    def done(self) -> bool:
        return self.state is SessionState.DONE

    @property
    def failed(self) -> bool:
        return self.state is SessionState.FAILED

    @property
    def finished(self) -> bool:
        return self.state in (SessionState.DONE, SessionState.FAILED)

    @property
    def size(self) -> int:
        """Bytes the peer will receive (after any netascii conversion)."""
        return self._source.size

    def receive_datagram(self, data: bytes, now: float) -> None:
        """Feed one datagram from the peer. Raises `MalformedPacket` (state unchanged)."""
        if len(data) == 4 and data[0] == 0 and data[1] == Opcode.ACK:  # every block's ACK
            self._on_ack(data[2] << 8 | data[3])
            return
        packet = parse(data)
        if isinstance(packet, Ack):
            self._on_ack(packet.block)
        elif isinstance(packet, ErrorPacket):
            self.abandoned = self._acked == 0
            self._finish(SessionState.FAILED, f"peer error {packet.code}: {packet.message}")

    def datagrams_to_send(self, now: float) -> list[bytes]:
        if self.state is SessionState.SENDING and not self._outbox:
            window = self._window(now)  # the path of every block: no list copies
            if self._outbox:  # the window ended in a refusal
                window, self._outbox = window + self._outbox, []
            return window
        out: list[bytes] = []
        if self.state is SessionState.NEGOTIATING and self._oack_due:
            out.append(self._oack)
            self._oack_due = False
            self._deadline = now + self.timeout
        elif self.state is SessionState.SENDING:
            out.extend(self._window(now))
        out, self._outbox = out + self._outbox, []
        return out

    def get_timer(self) -> float | None:
        return None if self.finished else self._deadline

    def handle_timer(self, now: float) -> None:
        if self._deadline is None or now < self._deadline or self.finished:
            return
        self._deadline = None
        self._retries += 1
        if self._retries > self.config.max_retries:
            self._finish(SessionState.FAILED, "timed out")
            return
        self.retransmits += 1
        if self.state is SessionState.NEGOTIATING:
            self._oack_due = True
        else:
            self._next = self._acked + 1

    def close(self) -> None:
        """Release the file; idempotent. Call when abandoning an unfinished session."""
        self._source.close()

    # -- internals -------------------------------------------------------

    def _window(self, now: float) -> list[bytes]:
        end = min(self._acked + self.windowsize, self._total)
        if self._next > end:
            return []
        blocks: list[bytes] = []
        for k in range(self._next, end + 1):
            block = self._block(k)
            if block is None:
                self._refuse(TftpError(ErrorCode.NOT_DEFINED, "file changed while being sent"))
                return blocks
            blocks.append(block)
        self._highest_sent = max(self._highest_sent, end)
        self._next = end + 1
        self._deadline = now + self.timeout
        return blocks

    def _block(self, k: int) -> bytes | None:
        """DATA block k, or None if the file no longer holds the bytes it had at open."""
        blksize = self.blksize
        offset = (k - 1) * blksize
        payload = self._source.read(offset, blksize)
        left = self._size - offset
        if len(payload) != (blksize if blksize < left else left):
            return None
        return build_data(k, payload)

    def _on_ack(self, block: int) -> None:
        if self.state is SessionState.NEGOTIATING:
            if block == 0:
                self.state = SessionState.SENDING
                self._retries = 0
            return
        if self.state is not SessionState.SENDING:
            return
        k = self._acked + ((block - self._acked) & MAX_BLOCK)
        if k == self._acked or k > self._highest_sent:
            return  # duplicate or stale ACK: never answered (Sorcerer's Apprentice)
        self._acked = k
        self._retries = 0
        if k == self._total:
            self._finish(SessionState.DONE, None)
        else:
            self._next = k + 1  # a mid-window ACK means loss: resend from there

    def _refuse(self, error: TftpError) -> None:
        self._outbox.append(error.packet())
        self._finish(SessionState.FAILED, str(error))

    def _finish(self, state: SessionState, error: str | None) -> None:
        self.state = state
        self.error = error
        self._deadline = None
        self._source.close()
