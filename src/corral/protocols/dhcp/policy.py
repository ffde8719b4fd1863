"""What the DHCP server answers: `decide(msg, ctx, now) -> Reply | NoReply | None`, pure.

No sockets and no clock: the caller passes the parsed request, a `DhcpContext`
(server identity, networks, reservation lookup, lease table, boot selector)
and the time. The lease table is the only thing that changes; its changes are
drained by the caller. Boot file selection is a pluggable `BootSelector`
(corral wires `corral.boot.firmware.select_boot`): protocols import nothing
of corral.

Message handling follows RFC 2131 4.3 (server behaviour); the reply's
destination follows RFC 2131 4.1 and is returned, not acted on. Silence
that an operator must hear about (a pool with no free address, a DECLINE
refused) comes back as a `NoReply` with its reason; plain None means the
packet was not for us.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from ipaddress import IPv4Address, IPv4Network
from typing import Protocol

from corral.protocols.dhcp.leases import LeaseState, LeaseTable, Pool
from corral.protocols.dhcp.message import (
    BOOTREPLY,
    BOOTREQUEST,
    FLAG_BROADCAST,
    ZERO,
    Message,
)
from corral.protocols.dhcp.options import (
    MessageType,
    Opt,
    OptionValue,
    RelayAgentInfo,
    encode_tlv,
)

BROADCAST_ADDR = IPv4Address("255.255.255.255")
PROXY_PORT = 4011
PXE_VENDOR_PREFIXES = ("PXEClient", "HTTPClient")


@dataclass(frozen=True)
class ServerIdentity:
    """This server as clients see it on the receiving interface."""

    ip: IPv4Address
    http_port: int = 80
    tftp_ip: IPv4Address | None = None
    dns: bool = False  # this server answers DNS: named when a network sets no DNS servers

    @property
    def tftp(self) -> IPv4Address:
        return self.tftp_ip or self.ip

    @property
    def http_base(self) -> str:
        return f"http://{self.ip}:{self.http_port}"


@dataclass(frozen=True)
class NetworkConfig:
    """One IPv4 segment: its parameters and (optionally) a dynamic range."""

    name: str
    cidr: IPv4Network
    gateway: IPv4Address | None = None
    dns: tuple[IPv4Address, ...] = ()
    ntp: tuple[IPv4Address, ...] = ()
    domain: str | None = None
    mtu: int | None = None
    lease_time: int = 3600
    dynamic_range: Pool | None = None


@dataclass(frozen=True)
class Reservation:
    """A known node: its MAC (lower-case colon form), address and name."""

    mac: str
    ip: IPv4Address
    hostname: str | None = None
    network: str | None = None


class ReservationLookup(Protocol):
    """Where known nodes come from (MACs in lower-case colon form).

    The server asks on every packet, so an implementation that reads the
    database (or a cache it invalidates) sees new nodes without a restart.
    """

    def by_mac(self, mac: str) -> Reservation | None: ...

    def by_ip(self, ip: IPv4Address) -> Reservation | None: ...


class StaticReservations:
    """A fixed set of reservations (tests, the standalone runner)."""

    def __init__(self, reservations: Iterable[Reservation] = ()) -> None:
        items = list(reservations)
        self._by_mac = {r.mac.lower(): r for r in items}
        self._by_ip = {r.ip: r for r in items}

    def by_mac(self, mac: str) -> Reservation | None:
        return self._by_mac.get(mac.lower())

    def by_ip(self, ip: IPv4Address) -> Reservation | None:
        return self._by_ip.get(ip)


@dataclass(frozen=True)
class BootChoice:
    """What a firmware should load: next server, file and extra options."""

    siaddr: IPv4Address | None = None
    file: str = ""
    options: Mapping[int, OptionValue] = field(default_factory=dict)


BootSelector = Callable[[Message, ServerIdentity], BootChoice | None]
# Why a relayed request (its option 82) cannot come from the reserved node, or None.
# Supplied by the server from its switch map (`corral.discovery.port_contradiction`).
RelayCheck = Callable[[Reservation, RelayAgentInfo], str | None]


@dataclass(frozen=True)
class DhcpContext:
    """Everything `decide` needs besides the message and the time."""

    server: ServerIdentity
    networks: tuple[NetworkConfig, ...]
    reservations: ReservationLookup
    leases: LeaseTable
    boot: BootSelector | None = None
    relay_check: RelayCheck | None = None
    proxy: bool = False
    unicast_to_yiaddr: bool = True
    client_port: int = 68
    relay_port: int = 67


class Destination(Enum):
    """Where a reply goes (RFC 2131 4.1)."""

    RELAY = "relay"  # giaddr, server port
    CIADDR = "ciaddr"  # unicast to the client's current address
    BROADCAST = "broadcast"  # 255.255.255.255, client port
    YIADDR = "yiaddr"  # unicast to the new address at chaddr (needs an ARP entry)
    SOURCE = "source"  # back to the datagram's source (ProxyDHCP port 4011)


@dataclass(frozen=True)
class Discovered:
    """An unknown client seen asking for an address: for discovery to store."""

    mac: str
    client_arch: tuple[int, ...]
    vendor_class: str | None
    user_class: tuple[bytes, ...]
    circuit_id: bytes | None
    remote_id: bytes | None
    giaddr: IPv4Address | None
    hostname: str | None
    seen: float
    client_uuid: bytes | None = None  # option 97 (a Raspberry Pi's names its serial)


@dataclass(frozen=True)
class Reply:
    """A message to send and where; `address`/`port` are None for SOURCE."""

    message: Message
    destination: Destination
    address: IPv4Address | None
    port: int | None
    discovered: Discovered | None = None


@dataclass(frozen=True)
class NoReply:
    """Silence worth reporting: `reason` for the log, `discovered` to record;
    `alarm` names the node when the silence refuses a likely impostor (an alarm event)."""

    reason: str
    discovered: Discovered | None = None
    alarm: str | None = None


Decision = Reply | NoReply | None


# ---------------------------------------------------------------- entry point


def decide(msg: Message, ctx: DhcpContext, now: float, *, port: int = 67) -> Decision:
    """The reply to `msg` (received on server `port`); `NoReply` or None to stay silent."""
    if msg.op != BOOTREQUEST or msg.htype != 1 or msg.hlen != 6:
        return None
    if ctx.proxy:
        return _proxy(msg, ctx, now, port)
    if port != 67:
        return None
    handler = _HANDLERS.get(msg.message_type or 0)
    return handler(msg, ctx, now) if handler else None


def is_pxe_client(msg: Message) -> bool:
    return (msg.vendor_class or "").startswith(PXE_VENDOR_PREFIXES)


# ---------------------------------------------------------------- choosing addresses


@dataclass(frozen=True)
class _Assignment:
    ip: IPv4Address
    network: NetworkConfig
    reservation: Reservation | None


def _segment(msg: Message, ctx: DhcpContext) -> NetworkConfig | None:
    """The client's network: by relay address, else the server's own."""
    anchor = msg.giaddr if msg.giaddr != ZERO else ctx.server.ip
    return _network_containing(ctx, anchor)


def _network_containing(ctx: DhcpContext, ip: IPv4Address) -> NetworkConfig | None:
    return next((n for n in ctx.networks if ip in n.cidr), None)


def _reserved_for_other(ctx: DhcpContext, mac: str) -> Callable[[IPv4Address], bool]:
    def check(ip: IPv4Address) -> bool:
        res = ctx.reservations.by_ip(ip)
        return res is not None and res.mac.lower() != mac

    return check


def _assign_reserved(
    msg: Message, ctx: DhcpContext, seg: NetworkConfig, res: Reservation, now: float
) -> _Assignment | None:
    if res.ip not in seg.cidr or not ctx.leases.free_for(msg.mac, res.ip, now):
        return None
    named = next((n for n in ctx.networks if n.name == res.network), None)
    network = named if named is not None and res.ip in named.cidr else seg
    return _Assignment(res.ip, network, res)


def _assign(
    msg: Message, ctx: DhcpContext, seg: NetworkConfig, now: float, want: IPv4Address | None
) -> _Assignment | None:
    """An address for a DISCOVER (held as an offer), or None."""
    res = ctx.reservations.by_mac(msg.mac)
    if res is not None:
        found = _assign_reserved(msg, ctx, seg, res, now)
        if found is not None:
            ctx.leases.hold(msg.mac, found.ip, now)
        return found
    if seg.dynamic_range is None:
        return None
    ip = ctx.leases.offer(
        msg.mac, seg.dynamic_range, now, _reserved_for_other(ctx, msg.mac), requested=want
    )
    return _Assignment(ip, seg, None) if ip is not None else None


def _confirm(
    msg: Message, ctx: DhcpContext, seg: NetworkConfig, now: float, want: IPv4Address
) -> _Assignment | None:
    """The assignment when `want` is right for this client (REQUEST), else None."""
    res = ctx.reservations.by_mac(msg.mac)
    if res is not None:
        found = _assign_reserved(msg, ctx, seg, res, now)
        return found if found is not None and found.ip == want else None
    pool = seg.dynamic_range
    if pool is None or want not in pool or _reserved_for_other(ctx, msg.mac)(want):
        return None
    return _Assignment(want, seg, None) if ctx.leases.free_for(msg.mac, want, now) else None


# ---------------------------------------------------------------- handlers


def _wrong_port(msg: Message, ctx: DhcpContext) -> NoReply | None:
    """A relayed request for a reserved node from a switch port that is not the node's.

    Its reserved address is refused: whoever asks from another port is not the
    node (or the node was moved without updating the switch map).
    """
    relay = msg.relay_info
    res = ctx.reservations.by_mac(msg.mac)
    if relay is None or res is None or ctx.relay_check is None:
        return None
    why = ctx.relay_check(res, relay)
    if why is None:
        return None
    node = res.hostname or res.mac
    return NoReply(f"{msg.mac} asks for {node}'s address {res.ip}, but {why}: refused", alarm=node)


def _discover(msg: Message, ctx: DhcpContext, now: float) -> Decision:
    seg = _segment(msg, ctx)
    if seg is None:
        return None
    refused = _wrong_port(msg, ctx)
    if refused is not None:
        return refused
    found = _assign(msg, ctx, seg, now, msg.requested_ip)
    if found is not None:
        return _lease_reply(msg, ctx, MessageType.OFFER, found, now)
    discovered = _discovered(msg, ctx, now)
    if discovered is not None and seg.dynamic_range is not None:
        return NoReply(f"network {seg.name}: no free address in {_pool_text(seg)}", discovered)
    return None


def _pool_text(seg: NetworkConfig) -> str:
    pool = seg.dynamic_range
    return f"{pool.start}-{pool.end}" if pool is not None else "no range"


def _request(msg: Message, ctx: DhcpContext, now: float) -> Reply | NoReply | None:
    sid = msg.server_id
    if sid is not None and sid != ctx.server.ip:
        _forget_offer(ctx, msg.mac)  # the client chose another server
        return None
    refused = _wrong_port(msg, ctx)
    if refused is not None:
        return refused
    want = msg.requested_ip or (msg.ciaddr if msg.ciaddr != ZERO else None)
    seg = _segment(msg, ctx)
    if want is None or seg is None:
        return None
    found = _confirm(msg, ctx, seg, now, want) if want in seg.cidr else None
    if found is None:
        known = ctx.reservations.by_mac(msg.mac) or ctx.leases.lookup(msg.mac)
        # RFC 2131 4.3.2: with no record of the client, stay silent (unless SELECTING).
        return _nak(msg, ctx) if sid is not None or known else None
    lease_time = found.network.lease_time
    hostname = found.reservation.hostname if found.reservation else None
    ctx.leases.bind(msg.mac, found.ip, now, lease_time, hostname)
    return _lease_reply(msg, ctx, MessageType.ACK, found, now)


def _forget_offer(ctx: DhcpContext, mac: str) -> None:
    lease = ctx.leases.lookup(mac)
    if lease is not None and lease.state is LeaseState.OFFERED:
        ctx.leases.release(mac)


def _ours(msg: Message, ctx: DhcpContext) -> bool:
    return msg.server_id is None or msg.server_id == ctx.server.ip


def _release(msg: Message, ctx: DhcpContext, now: float) -> None:
    if _ours(msg, ctx):
        ctx.leases.release(msg.mac, msg.ciaddr)


def _decline(msg: Message, ctx: DhcpContext, now: float) -> NoReply | None:
    """Honoured only from the client holding `ip`, and never for a reserved address.

    A DECLINE is unauthenticated: honoured from anyone, two forged packets
    naming two reserved addresses would lock both nodes out of DHCP.
    """
    ip = msg.requested_ip
    if not _ours(msg, ctx) or ip is None:
        return None
    lease = ctx.leases.lookup(msg.mac)
    if lease is None or lease.ip != ip:
        return NoReply(f"DECLINE of {ip} from {msg.mac}, which does not hold it: ignored")
    reserved = ctx.reservations.by_ip(ip)
    if reserved is not None:
        return NoReply(
            f"DECLINE of {ip} from {msg.mac}: reserved for {reserved.hostname or reserved.mac}, "
            "kept in use (another machine may be using that address)"
        )
    ctx.leases.decline(msg.mac, ip, now)
    return None


def _inform(msg: Message, ctx: DhcpContext, now: float) -> Reply | None:
    anchor = msg.giaddr if msg.giaddr != ZERO else msg.ciaddr
    network = _network_containing(ctx, anchor)
    if network is None or msg.ciaddr == ZERO:
        return None
    res = ctx.reservations.by_mac(msg.mac)
    hostname = res.hostname if res is not None and res.ip == msg.ciaddr else None
    options = _network_options(ctx, network, hostname)
    reply = _reply_message(msg, ctx, MessageType.ACK, ZERO, options)
    return _route(msg, ctx, reply, None)


_Handler = Callable[[Message, DhcpContext, float], Decision]
_HANDLERS: dict[int, _Handler] = {
    MessageType.DISCOVER: _discover,
    MessageType.REQUEST: _request,
    MessageType.RELEASE: _release,
    MessageType.DECLINE: _decline,
    MessageType.INFORM: _inform,
}


# ---------------------------------------------------------------- ProxyDHCP


def _proxy(msg: Message, ctx: DhcpContext, now: float, port: int) -> Reply | None:
    """PXE boot information only: no addresses, no lease options."""
    mtype = msg.message_type
    if not is_pxe_client(msg) or ctx.boot is None:
        return None
    if port == PROXY_PORT and mtype in (MessageType.REQUEST, MessageType.INFORM):
        answer = MessageType.ACK
    elif port != PROXY_PORT and mtype == MessageType.DISCOVER:
        answer = MessageType.OFFER
    else:
        return None
    boot = ctx.boot(msg, ctx.server)
    if boot is None:
        return None
    options: dict[int, OptionValue] = {Opt.SERVER_ID: ctx.server.ip}
    options[Opt.VENDOR_SPECIFIC] = encode_tlv(((6, b"\x08"),)) + b"\xff"
    reply = _reply_message(msg, ctx, answer, ZERO, options, boot=boot)
    discovered = _discovered(msg, ctx, now)
    if port == PROXY_PORT:
        return Reply(reply, Destination.SOURCE, None, None, discovered)
    return _route(msg, ctx, reply, discovered)


# ---------------------------------------------------------------- building replies


def _network_options(
    ctx: DhcpContext, network: NetworkConfig, hostname: str | None
) -> dict[int, OptionValue]:
    options: dict[int, OptionValue] = {
        Opt.SERVER_ID: ctx.server.ip,
        Opt.SUBNET_MASK: network.cidr.netmask,
        Opt.BROADCAST: network.cidr.broadcast_address,
    }
    if network.gateway is not None:
        options[Opt.ROUTER] = (network.gateway,)
    if network.dns:
        options[Opt.DNS] = network.dns
    elif ctx.server.dns:
        options[Opt.DNS] = (ctx.server.ip,)
    # time comes from the corral server unless the network names its own sources
    options[Opt.NTP] = network.ntp or (ctx.server.ip,)
    if network.domain:
        options[Opt.DOMAIN] = network.domain
    if network.mtu:
        options[Opt.MTU] = network.mtu
    if hostname:
        options[Opt.HOSTNAME] = hostname
    return options


def _lease_options(lease_time: int) -> dict[int, OptionValue]:
    return {
        Opt.LEASE_TIME: lease_time,
        Opt.RENEWAL_TIME: lease_time // 2,
        Opt.REBINDING_TIME: lease_time * 7 // 8,
    }


def _lease_reply(
    msg: Message, ctx: DhcpContext, mtype: MessageType, found: _Assignment, now: float
) -> Reply:
    hostname = found.reservation.hostname if found.reservation else None
    options = _network_options(ctx, found.network, hostname)
    options.update(_lease_options(found.network.lease_time))
    boot = ctx.boot(msg, ctx.server) if ctx.boot is not None else None
    reply = _reply_message(msg, ctx, mtype, found.ip, options, boot=boot)
    discovered = None if found.reservation else _discovered(msg, ctx, now)
    return _route(msg, ctx, reply, discovered)


def _reply_message(
    msg: Message,
    ctx: DhcpContext,
    mtype: MessageType,
    yiaddr: IPv4Address,
    options: dict[int, OptionValue],
    *,
    boot: BootChoice | None = None,
) -> Message:
    opts: dict[int, OptionValue] = {Opt.MESSAGE_TYPE: mtype, **options}
    if boot is not None:
        opts.update(boot.options)
    relay = msg.relay_info
    if relay is not None:
        opts[Opt.RELAY_AGENT_INFO] = relay  # RFC 3046 2.2: echo it back
    keep_ciaddr = mtype == MessageType.ACK
    return Message(
        op=BOOTREPLY,
        htype=msg.htype,
        hlen=msg.hlen,
        xid=msg.xid,
        flags=msg.flags,
        ciaddr=msg.ciaddr if keep_ciaddr else ZERO,
        yiaddr=yiaddr,
        siaddr=boot.siaddr if boot is not None and boot.siaddr is not None else ZERO,
        giaddr=msg.giaddr,
        chaddr=msg.chaddr,
        file=boot.file if boot is not None else "",
        options=opts,
    )


def _nak(msg: Message, ctx: DhcpContext) -> Reply:
    options: dict[int, OptionValue] = {Opt.SERVER_ID: ctx.server.ip, Opt.MESSAGE: "wrong address"}
    reply = _reply_message(msg, ctx, MessageType.NAK, ZERO, options)
    if msg.giaddr != ZERO:  # RFC 2131 4.3.2: the relay must broadcast a NAK
        reply = replace(reply, flags=reply.flags | FLAG_BROADCAST)
        return Reply(reply, Destination.RELAY, msg.giaddr, ctx.relay_port)
    return Reply(reply, Destination.BROADCAST, BROADCAST_ADDR, ctx.client_port)


def _route(msg: Message, ctx: DhcpContext, reply: Message, discovered: Discovered | None) -> Reply:
    """RFC 2131 4.1: relay, else ciaddr, else broadcast flag, else yiaddr."""
    if msg.giaddr != ZERO:
        return Reply(reply, Destination.RELAY, msg.giaddr, ctx.relay_port, discovered)
    if msg.ciaddr != ZERO:
        return Reply(reply, Destination.CIADDR, msg.ciaddr, ctx.client_port, discovered)
    if msg.broadcast or reply.yiaddr == ZERO or not ctx.unicast_to_yiaddr:
        return Reply(reply, Destination.BROADCAST, BROADCAST_ADDR, ctx.client_port, discovered)
    return Reply(reply, Destination.YIADDR, reply.yiaddr, ctx.client_port, discovered)


def _discovered(msg: Message, ctx: DhcpContext, now: float) -> Discovered | None:
    if ctx.reservations.by_mac(msg.mac) is not None:
        return None
    relay = msg.relay_info
    user_class = msg.user_class
    return Discovered(
        mac=msg.mac,
        client_arch=msg.client_arch,
        vendor_class=msg.vendor_class,
        user_class=user_class.classes if user_class else (),
        circuit_id=relay.circuit_id if relay else None,
        remote_id=relay.remote_id if relay else None,
        giaddr=msg.giaddr if msg.giaddr != ZERO else None,
        hostname=msg.hostname,
        seen=now,
        client_uuid=_uuid_bytes(msg),
    )


def _uuid_bytes(msg: Message) -> bytes | None:
    value = msg.options.get(Opt.CLIENT_UUID)
    return value.bytes if isinstance(value, uuid.UUID) else None
