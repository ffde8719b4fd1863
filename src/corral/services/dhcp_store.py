"""The DHCP server's view of the database: reservations, networks, leases, discovery.

The DHCP transport never reads the database while it answers: it answers
from snapshots (`reservations_from`, `network_configs`) that a `DhcpFeed`
reloads in a thread and swaps in. Reservations are reloaded every half
second, and before a client that no reservation names is answered (one
shared reload, at most ten a second), so a node added with the CLI is
answered as that node from its first packet; known clients cost no query.
Lease changes and discovery records are written by the transport's writer
thread (`DbLeaseStore.apply`, `discovery_recorder`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from corral.boot.rpi import parse_client_guid
from corral.discovery import Switch, port_contradiction
from corral.discovery.switches import load_switches
from corral.inventory.index import Inventory
from corral.protocols.dhcp.leases import Lease, LeaseChange, LeaseConflict, LeaseState, Pool
from corral.protocols.dhcp.options import RelayAgentInfo
from corral.protocols.dhcp.policy import (
    Discovered,
    NetworkConfig,
    NoReply,
    RelayCheck,
    Reservation,
    StaticReservations,
)
from corral.services.dhcp import DhcpServer
from corral.store import schema
from corral.store.credentials import alarm
from corral.store.db import Store
from corral.store.runtime import record_discovered

log = logging.getLogger("corral.dhcp")
RESERVATIONS_EVERY = 0.5  # seconds: how soon a node added with the CLI is answered
NETWORKS_EVERY = 2.0  # seconds: network changes are rarer and cost a whole read

ReservationRows = list[tuple[str, str, str, str]]


def reservation_rows(store: Store) -> ReservationRows:
    """(node, network, mac, ip) of every interface with both a MAC and an address."""
    t = schema.interfaces
    query = sa.select(t.c.node, t.c.network, t.c.mac, t.c.ip).where(
        t.c.mac.is_not(None), t.c.ip.is_not(None)
    )
    with store.reading() as conn:
        return [(r.node, r.network, r.mac, r.ip) for r in conn.execute(query.order_by(t.c.mac))]


def reservations_from(rows: ReservationRows) -> StaticReservations:
    """The in-memory snapshot DHCP answers from."""
    return StaticReservations(
        Reservation(mac=mac, ip=IPv4Address(ip), hostname=node, network=network)
        for node, network, mac, ip in rows
    )


def switch_map(store: Store) -> dict[str, Switch]:
    """The switch map (which node is cabled to which port), for `relay_check_for`."""
    with store.reading() as conn:
        return load_switches(conn)


def relay_check_for(switches: dict[str, Switch]) -> RelayCheck | None:
    """The policy's option 82 check against this switch map; None when no port is mapped."""
    if not any(sw.ports for sw in switches.values()):
        return None

    def check(res: Reservation, relay: RelayAgentInfo) -> str | None:
        if res.hostname is None:
            return None
        return port_contradiction(switches, res.hostname, relay.circuit_id, relay.remote_id)

    return check


def alarm_recorder(store: Store) -> Callable[[NoReply, float], None]:
    """Writes DHCP's refusals of likely impostors as `alarm` events (on its writer thread)."""

    def record(why: NoReply, now: float) -> None:
        with store.transaction() as conn:
            alarm(conn, why.alarm, now, why.reason, source="dhcp")

    return record


class DhcpFeed:
    """Keeps a running `DhcpServer`'s reservations and networks in step with the database.

    Every read runs in a thread; the loop only swaps the finished snapshot
    in. Reservations are compared as rows first, so an unchanged table
    costs one query and no rebuild.
    """

    def __init__(
        self,
        server: DhcpServer,
        store: Store,
        read: Callable[[], Inventory],
        rows: ReservationRows | None = None,
        *,
        every: float = RESERVATIONS_EVERY,
        networks_every: float = NETWORKS_EVERY,
    ) -> None:
        self.server = server
        self.store = store
        self.read = read
        self.every = every
        self.networks_every = networks_every
        self._rows = rows
        self._switches: dict[str, Switch] | None = None
        self._lock = asyncio.Lock()  # one read at a time: an older one never lands last

    async def run(self) -> None:
        """Refresh until cancelled; a busy or broken database is logged, not fatal."""
        loop = asyncio.get_running_loop()
        networks_at = loop.time()
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.refresh_reservations()
                if loop.time() - networks_at >= self.networks_every:
                    networks_at = loop.time()
                    await self.refresh_networks()
            except Exception:
                log.exception("could not refresh DHCP's view of the inventory")

    async def refresh_reservations(self) -> None:
        async with self._lock:
            rows = await asyncio.to_thread(reservation_rows, self.store)
            if rows != self._rows:
                self.server.update(reservations=await asyncio.to_thread(reservations_from, rows))
                self._rows = rows

    async def refresh_networks(self) -> None:
        """Networks, and the switch map that option 82 is checked against."""
        configs = tuple(network_configs(await asyncio.to_thread(self.read)))
        if configs != self.server.ctx.networks:
            self.server.update(networks=configs)
            log.info("dhcp networks updated")
        switches = await asyncio.to_thread(switch_map, self.store)
        if switches != self._switches:
            self.server.update(relay_check=relay_check_for(switches))
            self._switches = switches


def network_configs(inv: Inventory) -> list[NetworkConfig]:
    """The inventory's networks as the DHCP policy sees them."""
    out = []
    for net in inv.networks.values():
        dyn = net.dynamic_range
        out.append(
            NetworkConfig(
                name=net.name,
                cidr=net.cidr,
                gateway=net.gateway,
                dns=tuple(net.dns_servers),
                ntp=tuple(net.ntp_servers),
                domain=net.domain,
                mtu=net.mtu,
                lease_time=net.lease_time,
                dynamic_range=Pool(dyn.start, dyn.end) if dyn else None,
            )
        )
    return out


class DbLeaseStore:
    """`LeaseStore` on the leases table: each batch of changes is one committed write.

    Several servers may share the table. Transactions are serialised (SQLite's
    BEGIN IMMEDIATE, PostgreSQL's advisory lock, see `corral.store.db`), and a
    lease is written only if no other MAC holds an unexpired lease on its
    address; otherwise `LeaseConflict` is raised after the rest is committed,
    and the address's `unique` constraint catches anything that slips by.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def load(self) -> list[Lease]:
        with self.store.reading() as conn:
            rows = conn.execute(sa.select(schema.leases)).all()
        return [
            Lease(
                mac=r.mac,
                ip=IPv4Address(r.ip),
                expires=r.expires,
                state=LeaseState(r.data.get("state", "bound")),
                hostname=r.data.get("hostname"),
            )
            for r in rows
        ]

    def apply(self, changes: Sequence[LeaseChange]) -> None:
        lost: list[Lease] = []
        try:
            with self.store.transaction() as conn:
                now = time.time()
                for change in changes:
                    if change.lease is None:
                        conn.execute(_DROP_MAC, {"mac": change.mac})
                    elif not _save(conn, change.lease, now):
                        lost.append(change.lease)
        except sa.exc.IntegrityError:  # the unique address, if serialisation was bypassed
            raise LeaseConflict([c.lease for c in changes if c.lease is not None]) from None
        if lost:
            raise LeaseConflict(lost)


_L = schema.leases
# Built once, executed with parameters: building a statement per lease (values inlined)
# cost more CPU than SQLite's own work, about 2 ms of the writer thread per ACK.
_HELD_BY_OTHER = sa.select(_L.c.mac).where(
    _L.c.ip == sa.bindparam("ip"),
    _L.c.mac != sa.bindparam("mac"),
    _L.c.expires > sa.bindparam("now"),
)
_DROP_OTHERS = sa.delete(_L).where(_L.c.ip == sa.bindparam("ip"), _L.c.mac != sa.bindparam("mac"))
_DROP_MAC = sa.delete(_L).where(_L.c.mac == sa.bindparam("mac"))
_UPSERTS: dict[str, Any] = {}


def _upsert_lease(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (mac) DO UPDATE, for `dialect`, built once."""
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        module: Any = postgresql if dialect == "postgresql" else sqlite
        insert = module.insert(_L)
        kept = {k: insert.excluded[k] for k in ("ip", "expires", "data")}
        stmt = _UPSERTS[dialect] = insert.on_conflict_do_update(index_elements=["mac"], set_=kept)
    return stmt


def _save(conn: sa.Connection, lease: Lease, now: float) -> bool:
    """Write `lease`; False when another MAC holds its address (unexpired) in the table."""
    key = {"ip": str(lease.ip), "mac": lease.mac}
    if conn.execute(_HELD_BY_OTHER, {**key, "now": now}).first() is not None:
        return False
    # an address moves between MACs only after its old lease is gone (expired)
    conn.execute(_DROP_OTHERS, key)
    data = {"state": lease.state.value, "hostname": lease.hostname}
    conn.execute(_upsert_lease(conn.dialect.name), {**key, "expires": lease.expires, "data": data})
    return True


def discovered_record(d: Discovered) -> dict[str, Any]:
    """What `corral node discovered` shows for a machine DHCP saw.

    A Raspberry Pi's option 97 names its serial: the record suggests
    `rpi-<serial>` and the `corral node set --rpi-serial` value.
    """
    board = parse_client_guid(d.client_uuid) if d.client_uuid else None
    pi = {} if board is None else {"rpi_serial": board.serial, "suggested_name": board.name}
    if board is not None and board.revision is not None:
        pi["rpi_revision"] = f"{board.revision:#08x}"
    return {
        **pi,
        "source": "dhcp",
        "client_arch": list(d.client_arch),
        "vendor_class": d.vendor_class,
        "user_class": [u.decode(errors="replace") for u in d.user_class],
        "circuit_id": d.circuit_id.decode(errors="replace") if d.circuit_id else None,
        "remote_id": d.remote_id.decode(errors="replace") if d.remote_id else None,
        "giaddr": str(d.giaddr) if d.giaddr else None,
        "hostname": d.hostname,
    }


def discovery_recorder(store: Store) -> Callable[[Discovered], None]:
    """Record a machine DHCP saw (run it on the DHCP writer thread, not the loop)."""

    def record(d: Discovered) -> None:
        with store.transaction() as conn:
            record_discovered(conn, d.mac, discovered_record(d), d.seen)

    return record


def list_leases(store: Store) -> list[dict[str, Any]]:
    with store.reading() as conn:
        rows = conn.execute(sa.select(schema.leases).order_by(schema.leases.c.ip)).all()
    return [
        {"mac": r.mac, "ip": r.ip, "network": r.network, "expires": r.expires, **r.data}
        for r in rows
    ]
