"""TFTP, sans-io: packet codec, read sessions, and filename resolution.

`parse`/`build` turn datagrams into packets and back; `ReadSession` is one
transfer driven by datagrams and a clock; `TftpRoot` decides what a filename
means. The asyncio server around them is `corral.services.tftp`.
"""

from corral.protocols.tftp.files import (
    BytesSource,
    FileSource,
    NetasciiSource,
    NoRollover,
    OpenFileSource,
)
from corral.protocols.tftp.packets import (
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
from corral.protocols.tftp.root import FileProvider, TftpRoot, normalize
from corral.protocols.tftp.session import ReadSession, SessionConfig, SessionState

__all__ = [
    "Ack",
    "BytesSource",
    "Data",
    "Error",
    "ErrorCode",
    "FileProvider",
    "FileSource",
    "MalformedPacket",
    "NetasciiSource",
    "NoRollover",
    "OAck",
    "Opcode",
    "OpenFileSource",
    "Packet",
    "ReadSession",
    "Request",
    "SessionConfig",
    "SessionState",
    "TftpError",
    "TftpRoot",
    "build",
    "normalize",
    "parse",
]
