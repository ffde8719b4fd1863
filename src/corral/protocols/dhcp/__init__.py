"""DHCPv4, sans-io: the packet codec, the lease table and the server policy.

    parse(bytes) -> Message          build(Message) -> bytes
    decide(Message, DhcpContext, now) -> Reply | NoReply | None

`parse` raises only `MalformedPacket` (a `ValueError`). Nothing here opens a
socket, reads a clock or touches a disk; `corral.services.dhcp` is the
asyncio transport around it.
"""

from corral.protocols.dhcp.leases import (
    Lease,
    LeaseChange,
    LeaseConflict,
    LeaseState,
    LeaseStore,
    LeaseTable,
    MemoryLeaseStore,
    Pool,
)
from corral.protocols.dhcp.message import (
    BOOTREPLY,
    BOOTREQUEST,
    FLAG_BROADCAST,
    Message,
    build,
    parse,
)
from corral.protocols.dhcp.options import (
    OPTION_CODECS,
    ClientId,
    ClientNdi,
    Codec,
    MalformedPacket,
    MessageType,
    Opt,
    OptionValue,
    RelayAgentInfo,
    UserClass,
)
from corral.protocols.dhcp.policy import (
    PROXY_PORT,
    BootChoice,
    BootSelector,
    Decision,
    Destination,
    DhcpContext,
    Discovered,
    NetworkConfig,
    NoReply,
    RelayCheck,
    Reply,
    Reservation,
    ReservationLookup,
    ServerIdentity,
    StaticReservations,
    decide,
    is_pxe_client,
)

__all__ = [
    "BOOTREPLY",
    "BOOTREQUEST",
    "FLAG_BROADCAST",
    "OPTION_CODECS",
    "PROXY_PORT",
    "BootChoice",
    "BootSelector",
    "ClientId",
    "ClientNdi",
    "Codec",
    "Decision",
    "Destination",
    "DhcpContext",
    "Discovered",
    "Lease",
    "LeaseChange",
    "LeaseConflict",
    "LeaseState",
    "LeaseStore",
    "LeaseTable",
    "MalformedPacket",
    "MemoryLeaseStore",
    "Message",
    "MessageType",
    "NetworkConfig",
    "NoReply",
    "Opt",
    "OptionValue",
    "Pool",
    "RelayAgentInfo",
    "RelayCheck",
    "Reply",
    "Reservation",
    "ReservationLookup",
    "ServerIdentity",
    "StaticReservations",
    "UserClass",
    "build",
    "decide",
    "is_pxe_client",
    "parse",
]
