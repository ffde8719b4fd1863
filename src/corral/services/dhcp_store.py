"""The DHCP server's view of the database: reservations, networks, leases, discovery.

Reservations are asked for on every packet; they are read from a snapshot of
the interfaces table refreshed at most once a second, so a node added with the
CLI is answered within a second, and a DHCP storm costs one query a second,
not one per packet. Leases are written through as they change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any

import sqlalchemy as sa

from corral.inventory.index import Inventory
from corral.protocols.dhcp.leases import Lease, LeaseState, Pool
from corral.protocols.dhcp.policy import Discovered, NetworkConfig, Reservation
from corral.store import schema
from corral.store.db import Store
from corral.store.runtime import record_discovered, upsert

log = logging.getLogger("corral.dhcp")


class DbReservations:
    """`ReservationLookup` over the interfaces table, cached for `ttl` seconds.

    Hits come from the snapshot; misses ask the database (an indexed lookup),
    so an unknown client costs a query but a node just added is never missed.
    """

    def __init__(self, store: Store, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._loaded_at = -ttl
        self._by_mac: dict[str, Reservation] = {}
        self._by_ip: dict[IPv4Address, Reservation] = {}

    def _refresh(self) -> None:
        now = self.clock()
        if now - self._loaded_at < self.ttl:
            return
        t = schema.interfaces
        with self.store.transaction() as conn:
            rows = conn.execute(sa.select(t.c.node, t.c.network, t.c.mac, t.c.ip)).all()
        by_mac, by_ip = {}, {}
        for node, network, mac, ip in rows:
            if mac is None or ip is None:
                continue
            res = Reservation(mac=mac, ip=IPv4Address(ip), hostname=node, network=network)
            by_mac[mac] = res
            by_ip[res.ip] = res
        self._by_mac, self._by_ip, self._loaded_at = by_mac, by_ip, now

    def by_mac(self, mac: str) -> Reservation | None:
        """Cached; a miss asks the database, so a node added a moment ago is known."""
        self._refresh()
        found = self._by_mac.get(mac.lower())
        if found is None:
            found = self._lookup(schema.interfaces.c.mac == mac.lower())
        return found

    def _lookup(self, where: sa.ColumnElement[bool]) -> Reservation | None:
        t = schema.interfaces
        with self.store.transaction() as conn:
            row = conn.execute(
                sa.select(t.c.node, t.c.network, t.c.mac, t.c.ip).where(where)
            ).first()
        if row is None or row.mac is None or row.ip is None:
            return None
        res = Reservation(
            mac=row.mac, ip=IPv4Address(row.ip), hostname=row.node, network=row.network
        )
        self._by_mac[res.mac] = res
        self._by_ip[res.ip] = res
        return res

    def by_ip(self, ip: IPv4Address) -> Reservation | None:
        self._refresh()
        found = self._by_ip.get(ip)
        if found is None:
            found = self._lookup(schema.interfaces.c.ip == str(ip))
        return found


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
                domain=net.domain,
                mtu=net.mtu,
                lease_time=net.lease_time,
                dynamic_range=Pool(dyn.start, dyn.end) if dyn else None,
            )
        )
    return out


class DbLeaseStore:
    """`LeaseStore` on the leases table: each change is its own committed write."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def load(self) -> list[Lease]:
        with self.store.transaction() as conn:
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

    def save(self, lease: Lease) -> None:
        data = {"state": lease.state.value, "hostname": lease.hostname}
        with self.store.transaction() as conn:
            # an address moves between MACs only after its old lease is gone
            conn.execute(
                sa.delete(schema.leases).where(
                    schema.leases.c.ip == str(lease.ip), schema.leases.c.mac != lease.mac
                )
            )
            values = {"mac": lease.mac, "ip": str(lease.ip), "expires": lease.expires, "data": data}
            upsert(conn, schema.leases, values)

    def delete(self, mac: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(sa.delete(schema.leases).where(schema.leases.c.mac == mac))


def discovered_record(d: Discovered) -> dict[str, Any]:
    """What `corral node discovered` shows for a machine DHCP saw."""
    return {
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
    def record(d: Discovered) -> None:
        try:
            with store.transaction() as conn:
                record_discovered(conn, d.mac, discovered_record(d), d.seen)
        except sa.exc.SQLAlchemyError:
            log.exception("could not record discovered machine %s", d.mac)

    return record


def list_leases(store: Store) -> list[dict[str, Any]]:
    with store.transaction() as conn:
        rows = conn.execute(sa.select(schema.leases).order_by(schema.leases.c.ip)).all()
    return [
        {"mac": r.mac, "ip": r.ip, "network": r.network, "expires": r.expires, **r.data}
        for r in rows
    ]
