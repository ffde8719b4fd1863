"""Several servers on one database never bind one address to two clients.

Each `DbLeaseStore` here has its own `Store` (its own engine and connections),
as two `corral serve` processes would; on PostgreSQL the race runs threads
that all try to bind the same address at once.
"""

from __future__ import annotations

import threading
import time
from ipaddress import IPv4Address

import pytest
import sqlalchemy as sa

from corral.app import Corral
from corral.protocols.dhcp import Lease, LeaseChange, LeaseConflict, LeaseState
from corral.services.dhcp_store import DbLeaseStore
from corral.store import schema
from corral.store.db import Store

IP = IPv4Address("10.77.0.100")


def bind(mac: str, ip: IPv4Address = IP, expires: float | None = None) -> list[LeaseChange]:
    lease = Lease(mac, ip, expires or time.time() + 600, LeaseState.BOUND)
    return [LeaseChange(mac, lease)]


def rows(store: Store) -> list[tuple[str, str]]:
    with store.transaction() as conn:
        return [(r.mac, r.ip) for r in conn.execute(sa.select(schema.leases))]


def test_a_second_server_cannot_take_a_bound_address(app: Corral) -> None:
    app.store.migrate()
    first, second = DbLeaseStore(Store(app.store.url)), DbLeaseStore(Store(app.store.url))
    first.apply(bind("52:54:00:00:00:01"))
    with pytest.raises(LeaseConflict) as raised:
        second.apply(bind("52:54:00:00:00:02"))
    assert [lease.mac for lease in raised.value.lost] == ["52:54:00:00:00:02"]
    assert rows(app.store) == [("52:54:00:00:00:01", str(IP))]
    # the rest of a batch is still written: only the conflicting lease is refused
    other = IPv4Address("10.77.0.101")
    with pytest.raises(LeaseConflict):
        second.apply(bind("52:54:00:00:00:03", other) + bind("52:54:00:00:00:02"))
    assert sorted(rows(app.store)) == [
        ("52:54:00:00:00:01", str(IP)),
        ("52:54:00:00:00:03", str(other)),
    ]


def test_an_expired_lease_on_another_server_gives_way(app: Corral) -> None:
    app.store.migrate()
    first, second = DbLeaseStore(Store(app.store.url)), DbLeaseStore(Store(app.store.url))
    first.apply(bind("52:54:00:00:00:01", expires=time.time() - 1))
    second.apply(bind("52:54:00:00:00:02"))
    assert rows(app.store) == [("52:54:00:00:00:02", str(IP))]


@pytest.mark.postgres
def test_racing_servers_on_postgresql_bind_an_address_once(postgres_url: str) -> None:
    Store(postgres_url).migrate()
    stores = [DbLeaseStore(Store(postgres_url)) for _ in range(8)]
    start = threading.Barrier(len(stores))
    won: list[str] = []
    lost: list[str] = []

    def server(i: int) -> None:
        mac = f"52:54:00:00:01:{i:02x}"
        start.wait()
        try:
            stores[i].apply(bind(mac))
            won.append(mac)
        except LeaseConflict:
            lost.append(mac)

    threads = [threading.Thread(target=server, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(won) == 1 and len(lost) == len(stores) - 1
    assert rows(stores[0].store) == [(won[0], str(IP))]
