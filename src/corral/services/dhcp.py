"""The DHCP server's asyncio transport: sockets around `corral.protocols.dhcp`.

All decisions are made by the sans-io `decide`; this module only binds
sockets, parses and builds, sends each reply where the `Reply` says, hands
lease changes to a `LeaseStore` and discovered clients to a callback. The
only error it catches from the peer is `MalformedPacket` (counted, logged at
a limited rate). Sending is where the kernel can refuse: unicast to a
client's new address needs a neighbour (ARP) entry, and with a full
neighbour table the kernel answers ENOBUFS; then the reply goes out as a
broadcast instead (see the shared netboot-lab notes).

Run standalone (until the store and CLI wire it in)::

    python -m corral.services.dhcp CONFIG.json

with the JSON keys of `ServerConfig` (see `load_config`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from corral.boot.firmware import select_boot
from corral.protocols.dhcp import (
    PROXY_PORT,
    BootSelector,
    Destination,
    DhcpContext,
    Discovered,
    Lease,
    LeaseState,
    LeaseStore,
    LeaseTable,
    MalformedPacket,
    MemoryLeaseStore,
    Message,
    NetworkConfig,
    Pool,
    Reply,
    Reservation,
    ReservationLookup,
    ServerIdentity,
    StaticReservations,
    build,
    decide,
    parse,
)

log = logging.getLogger("corral.services.dhcp")

SIOCSARP = 0x8955
ATF_COM = 0x02
ARPHRD_ETHER = 1
MALFORMED_LOG_INTERVAL = 10.0
EXPIRE_INTERVAL = 60.0
Address = tuple[str, int]


# ---------------------------------------------------------------- lease files


def _lease_to_json(lease: Lease) -> dict[str, Any]:
    return {
        "mac": lease.mac,
        "ip": str(lease.ip),
        "expires": lease.expires,
        "state": lease.state.value,
        "hostname": lease.hostname,
    }


def _lease_from_json(item: dict[str, Any]) -> Lease:
    return Lease(
        mac=str(item["mac"]),
        ip=IPv4Address(item["ip"]),
        expires=float(item["expires"]),
        state=LeaseState(item.get("state", "bound")),
        hostname=item.get("hostname"),
    )


class JsonLeaseStore:
    """Leases in one JSON file, rewritten atomically (temp file, fsync, rename).

    A crash or kill -9 leaves either the old or the new file, never half of
    one. Every change rewrites the file: fine for a few thousand leases.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._leases = {lease.mac: lease for lease in self._read()}

    def _read(self) -> list[Lease]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        try:
            return [_lease_from_json(item) for item in json.loads(text)["leases"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.path}: not a corral lease file: {exc}") from exc

    def load(self) -> list[Lease]:
        return list(self._leases.values())

    def save(self, lease: Lease) -> None:
        self._leases[lease.mac] = lease
        self._write()

    def delete(self, mac: str) -> None:
        if self._leases.pop(mac, None) is not None:
            self._write()

    def _write(self) -> None:
        data = json.dumps({"leases": [_lease_to_json(v) for v in self._leases.values()]}, indent=1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with tmp.open("w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# ---------------------------------------------------------------- the server


@dataclass
class DhcpCounters:
    received: int = 0
    replied: int = 0
    malformed: int = 0
    ignored: int = 0
    send_errors: int = 0
    broadcast_fallbacks: int = 0


def open_udp_socket(host: str, port: int, interface: str | None) -> socket.socket:
    """A non-blocking UDP socket that may broadcast, bound to `interface` if given."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if interface:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def set_arp_entry(sock: socket.socket, interface: str, ip: IPv4Address, mac: bytes) -> None:
    """Insert a (temporary, complete) neighbour entry so unicast to `ip` can go out."""
    proto = struct.pack("=H2s4s8x", socket.AF_INET, b"\0\0", ip.packed)
    hw = struct.pack("=H6s8x", ARPHRD_ETHER, mac[:6])
    req = proto + hw + struct.pack("=i16s16s", ATF_COM, b"", interface.encode()[:15])
    fcntl.ioctl(sock.fileno(), SIOCSARP, req)


def _same(endpoint: _Endpoint) -> _Endpoint:
    return endpoint


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, server: DhcpServer, sock: socket.socket, port: int) -> None:
        self.server = server
        self.sock = sock
        self.port = port

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.server.handle(data, addr, self.sock, self.port)

    def error_received(self, exc: Exception) -> None:
        log.warning("dhcp socket error: %s", exc)


@dataclass
class DhcpServer:
    """DHCP (or ProxyDHCP) on UDP port 67, plus 4011 in proxy mode.

    `reservations` is asked on every packet; `store` receives every lease
    change; `on_discovered` is called with each unknown client that got an
    answer. Sockets are bound in `start()`; `port=0` picks a free port.
    """

    server: ServerIdentity
    networks: Sequence[NetworkConfig]
    reservations: ReservationLookup
    store: LeaseStore = field(default_factory=MemoryLeaseStore)
    on_discovered: Callable[[Discovered], None] | None = None
    boot: BootSelector | None = select_boot
    proxy: bool = False
    host: str = "0.0.0.0"
    port: int = 67
    proxy_port: int = PROXY_PORT
    interface: str | None = None
    client_port: int = 68
    relay_port: int = 67
    unicast_to_yiaddr: bool = True
    clock: Callable[[], float] = time.time
    on_packet: Callable[[bytes], None] | None = None
    counters: DhcpCounters = field(default_factory=DhcpCounters)

    def __post_init__(self) -> None:
        self._transports: list[asyncio.DatagramTransport] = []
        self._sockets: dict[int, socket.socket] = {}
        self._malformed_since_log = 0
        self._malformed_logged_at = -MALFORMED_LOG_INTERVAL
        self._expired_at = 0.0
        self.ctx = DhcpContext(
            server=self.server,
            networks=tuple(self.networks),
            reservations=self.reservations,
            leases=LeaseTable(self.store.load()),
            boot=self.boot,
            proxy=self.proxy,
            unicast_to_yiaddr=self.unicast_to_yiaddr and self.interface is not None,
            client_port=self.client_port,
            relay_port=self.relay_port,
        )

    @property
    def bound_ports(self) -> list[int]:
        """The ports actually bound (67, or a free port when asked for 0)."""
        return [int(s.getsockname()[1]) for s in self._sockets.values()]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        wanted = [(self.port, 67)] + ([(self.proxy_port, PROXY_PORT)] if self.proxy else [])
        for port, role in wanted:
            sock = open_udp_socket(self.host, port, self.interface)
            self._sockets[role] = sock
            endpoint = _Endpoint(self, sock, role)
            transport, _ = await loop.create_datagram_endpoint(partial(_same, endpoint), sock=sock)
            self._transports.append(transport)
        log.info(
            "dhcp listening on %s ports %s (proxy=%s)", self.host, self.bound_ports, self.proxy
        )

    def close(self) -> None:
        for transport in self._transports:
            transport.close()
        self._transports.clear()
        self._sockets.clear()

    async def stop(self) -> None:
        """`close()` for `corral serve`, which stops every service the same way."""
        self.close()

    # ------------------------------------------------------------ per packet

    def handle(self, data: bytes, addr: Address, sock: socket.socket, port: int) -> None:
        """One datagram in: parse, decide, persist, send."""
        self.counters.received += 1
        if self.on_packet is not None:
            self.on_packet(data)
        now = self.clock()
        try:
            msg = parse(data)
        except MalformedPacket as exc:
            self._malformed(addr, exc, now)
            return
        reply = decide(msg, self.ctx, now, port=port)
        self._persist(now)
        if reply is None:
            self.counters.ignored += 1
            return
        if reply.discovered is not None and self.on_discovered is not None:
            self.on_discovered(reply.discovered)
        self._send(reply, addr, sock)

    def _malformed(self, addr: Address, exc: MalformedPacket, now: float) -> None:
        self.counters.malformed += 1
        self._malformed_since_log += 1
        if now - self._malformed_logged_at >= MALFORMED_LOG_INTERVAL:
            log.warning(
                "dropped %d malformed datagram(s); latest from %s:%d: %s",
                self._malformed_since_log,
                *addr,
                exc,
            )
            self._malformed_since_log = 0
            self._malformed_logged_at = now

    def _persist(self, now: float) -> None:
        if now - self._expired_at >= EXPIRE_INTERVAL:
            self.ctx.leases.expire(now)
            self._expired_at = now
        for change in self.ctx.leases.drain():
            if change.lease is None:
                self.store.delete(change.mac)
            else:
                self.store.save(change.lease)

    def _target(self, reply: Reply, source: Address) -> Address:
        if reply.destination is Destination.SOURCE or reply.address is None:
            return source
        return (str(reply.address), reply.port or self.client_port)

    def _broadcast(self) -> Address:
        return ("255.255.255.255", self.client_port)

    def _send(self, reply: Reply, source: Address, sock: socket.socket) -> None:
        data = build(reply.message)
        target = self._target(reply, source)
        if reply.destination is Destination.YIADDR and not self._arp(reply.message):
            target = self._broadcast()
        try:
            sock.sendto(data, target)
        except OSError as exc:
            if reply.destination is not Destination.YIADDR or exc.errno != errno.ENOBUFS:
                self.counters.send_errors += 1
                log.warning("dhcp reply to %s:%d failed: %s", *target, exc)
                return
            log.warning("unicast to %s: %s; sending as broadcast", target[0], exc)
            self.counters.broadcast_fallbacks += 1
            if not self._sendto(sock, data, self._broadcast()):
                return
        self.counters.replied += 1

    def _sendto(self, sock: socket.socket, data: bytes, target: Address) -> bool:
        try:
            sock.sendto(data, target)
        except OSError as exc:
            self.counters.send_errors += 1
            log.warning("dhcp reply to %s:%d failed: %s", *target, exc)
            return False
        return True

    def _arp(self, msg: Message) -> bool:
        """Make unicast to yiaddr possible; False means broadcast instead."""
        if self.interface is None:
            return False
        sock = self._sockets.get(67)
        if sock is None:
            return False
        try:
            set_arp_entry(sock, self.interface, msg.yiaddr, msg.chaddr)
        except OSError as exc:
            log.warning("no neighbour entry for %s (%s); sending as broadcast", msg.yiaddr, exc)
            self.counters.broadcast_fallbacks += 1
            return False
        return True


# ---------------------------------------------------------------- standalone runner


@dataclass(frozen=True)
class ServerConfig:
    """The standalone runner's settings (one JSON object with these keys)."""

    server_ip: IPv4Address
    networks: tuple[NetworkConfig, ...]
    reservations: tuple[Reservation, ...] = ()
    http_port: int = 80
    tftp_ip: IPv4Address | None = None
    interface: str | None = None
    host: str = "0.0.0.0"
    port: int = 67
    proxy: bool = False
    proxy_port: int = PROXY_PORT
    unicast_to_yiaddr: bool = True
    lease_file: Path | None = None
    discovered_file: Path | None = None
    capture_dir: Path | None = None
    ready_file: Path | None = None


def _check_keys(item: dict[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(item) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _network(item: dict[str, Any]) -> NetworkConfig:
    keys = ("name", "cidr", "gateway", "dns", "domain", "mtu", "lease_time", "range")
    _check_keys(item, keys, f"network {item.get('name')!r}")
    rng = item.get("range")
    return NetworkConfig(
        name=str(item["name"]),
        cidr=IPv4Network(item["cidr"]),
        gateway=IPv4Address(item["gateway"]) if item.get("gateway") else None,
        dns=tuple(IPv4Address(d) for d in item.get("dns", ())),
        domain=item.get("domain"),
        mtu=item.get("mtu"),
        lease_time=int(item.get("lease_time", 3600)),
        dynamic_range=Pool(IPv4Address(rng[0]), IPv4Address(rng[1])) if rng else None,
    )


def _reservation(item: dict[str, Any]) -> Reservation:
    _check_keys(item, ("mac", "ip", "hostname", "network"), f"reservation {item.get('mac')!r}")
    return Reservation(
        mac=str(item["mac"]).lower(),
        ip=IPv4Address(item["ip"]),
        hostname=item.get("hostname"),
        network=item.get("network"),
    )


def load_config(data: dict[str, Any]) -> ServerConfig:
    """Settings from parsed JSON; unknown keys and bad values name the key."""
    _check_keys(data, ServerConfig.__dataclass_fields__, "config")
    paths = ("lease_file", "discovered_file", "capture_dir", "ready_file")
    simple = ("http_port", "interface", "host", "port", "proxy", "proxy_port", "unicast_to_yiaddr")
    kwargs: dict[str, Any] = {key: data[key] for key in simple if key in data}
    kwargs.update({key: Path(data[key]) for key in paths if data.get(key)})
    try:
        return ServerConfig(
            server_ip=IPv4Address(data["server_ip"]),
            tftp_ip=IPv4Address(data["tftp_ip"]) if data.get("tftp_ip") else None,
            networks=tuple(_network(n) for n in data.get("networks", ())),
            reservations=tuple(_reservation(r) for r in data.get("reservations", ())),
            **kwargs,
        )
    except KeyError as exc:
        raise ValueError(f"config: missing key {exc}") from exc


def _discovered_json(record: Discovered) -> dict[str, Any]:
    out = asdict(record)
    for key in ("circuit_id", "remote_id"):
        value = out[key]
        out[key] = value.decode("utf-8", "backslashreplace") if value is not None else None
    out["user_class"] = [c.decode("utf-8", "backslashreplace") for c in record.user_class]
    out["giaddr"] = str(record.giaddr) if record.giaddr else None
    out["client_arch"] = list(record.client_arch)
    return out


def _recorder(path: Path) -> Callable[[Discovered], None]:
    def record(rec: Discovered) -> None:
        with path.open("a") as f:
            f.write(json.dumps(_discovered_json(rec)) + "\n")

    return record


def _capturer(directory: Path) -> Callable[[bytes], None]:
    directory.mkdir(parents=True, exist_ok=True)

    def capture(data: bytes) -> None:
        (directory / f"{time.time_ns()}.bin").write_bytes(data)

    return capture


def server_from_config(cfg: ServerConfig) -> DhcpServer:
    store: LeaseStore = JsonLeaseStore(cfg.lease_file) if cfg.lease_file else MemoryLeaseStore()
    on_discovered = _recorder(cfg.discovered_file) if cfg.discovered_file else None
    on_packet = _capturer(cfg.capture_dir) if cfg.capture_dir else None
    return DhcpServer(
        server=ServerIdentity(cfg.server_ip, cfg.http_port, cfg.tftp_ip),
        networks=cfg.networks,
        reservations=StaticReservations(cfg.reservations),
        store=store,
        on_discovered=on_discovered,
        proxy=cfg.proxy,
        host=cfg.host,
        port=cfg.port,
        proxy_port=cfg.proxy_port,
        interface=cfg.interface,
        unicast_to_yiaddr=cfg.unicast_to_yiaddr,
        on_packet=on_packet,
    )


async def serve(cfg: ServerConfig) -> None:
    """Run until SIGTERM or SIGINT."""
    server = server_from_config(cfg)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if cfg.ready_file is not None:
        cfg.ready_file.write_text(json.dumps({"ports": server.bound_ports}))
    try:
        await stop.wait()
    finally:
        server.close()
        log.info("dhcp stopped: %s", server.counters)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m corral.services.dhcp CONFIG.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = load_config(json.loads(Path(args[0]).read_text()))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
