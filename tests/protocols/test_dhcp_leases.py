"""The lease table under random operation sequences: no address twice, no reserved one."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.protocols.dhcp import Lease, LeaseState, LeaseTable, MemoryLeaseStore, Pool

POOL = Pool(IPv4Address("10.0.0.10"), IPv4Address("10.0.0.17"))
RESERVED = {IPv4Address("10.0.0.12"), IPv4Address("10.0.0.15")}
MACS = [f"52:54:00:00:00:{i:02x}" for i in range(12)]

ops = st.lists(
    st.tuples(
        st.sampled_from(["offer", "bind", "release", "decline", "expire", "tick"]),
        st.sampled_from(MACS),
        st.integers(0, 9).map(lambda n: IPv4Address(int(POOL.start) + n - 1)),
        st.integers(0, 120),
    ),
    max_size=80,
)


def _check(table: LeaseTable, now: float) -> None:
    holders: dict[IPv4Address, str] = {}
    for lease in table.leases():
        if not lease.active(now):
            continue
        assert lease.ip not in holders, f"{lease.ip} held by {holders[lease.ip]} and {lease.mac}"
        assert lease.ip not in RESERVED
        holders[lease.ip] = lease.mac


@settings(max_examples=500)
@given(ops)
def test_never_one_address_twice_nor_a_reserved_one(
    sequence: list[tuple[str, str, IPv4Address, int]],
) -> None:
    table = LeaseTable(offer_hold=30, decline_hold=50)
    store = MemoryLeaseStore()
    now = 1000.0
    for op, mac, ip, n in sequence:
        if op == "offer":
            got = table.offer(mac, POOL, now, RESERVED.__contains__, requested=ip)
            if got is not None:
                assert got in POOL and got not in RESERVED
        elif op == "bind":
            got = table.offer(mac, POOL, now, RESERVED.__contains__)
            if got is not None:
                table.bind(mac, got, now, duration=n + 1)
        elif op == "release":
            table.release(mac)
        elif op == "decline":
            lease = table.lookup(mac)
            if lease is not None:
                table.decline(mac, lease.ip, now)
                assert (
                    table.offer("52:54:00:ff:ff:ff", POOL, now, RESERVED.__contains__) != lease.ip
                )
        elif op == "expire":
            table.expire(now)
        now += n if op == "tick" else 1
        _check(table, now)
        for change in table.drain():
            if change.lease is None:
                store.delete(change.mac)
            else:
                store.save(change.lease)
    # The store holds exactly the bound leases the table holds.
    bound = {lease.mac: lease for lease in table.leases() if lease.state is LeaseState.BOUND}
    assert {lease.mac: lease for lease in store.load()} == bound


def test_allocates_in_order_skipping_reserved_and_used() -> None:
    table = LeaseTable()
    got = [table.offer(mac, POOL, 0.0, RESERVED.__contains__) for mac in MACS[:7]]
    assert [str(ip) for ip in got] == [
        "10.0.0.10",
        "10.0.0.11",
        "10.0.0.13",
        "10.0.0.14",
        "10.0.0.16",
        "10.0.0.17",
        "None",
    ]


def test_offer_expires_and_address_is_reclaimed() -> None:
    table = LeaseTable(offer_hold=10)
    assert table.offer(MACS[0], POOL, 0.0, lambda ip: False) == POOL.start
    assert table.offer(MACS[1], POOL, 5.0, lambda ip: False) != POOL.start
    assert table.offer(MACS[2], POOL, 11.0, lambda ip: False) == POOL.start


def test_client_keeps_its_address() -> None:
    table = LeaseTable([Lease(MACS[3], IPv4Address("10.0.0.14"), 100.0)])
    assert table.offer(MACS[3], POOL, 50.0, lambda ip: False) == IPv4Address("10.0.0.14")
    # Even after expiry, as long as nobody else took it.
    assert table.offer(MACS[3], POOL, 500.0, lambda ip: False) == IPv4Address("10.0.0.14")


def test_decline_keeps_address_out_for_a_while() -> None:
    table = LeaseTable(decline_hold=100)
    ip = table.offer(MACS[0], POOL, 0.0, lambda ip: False)
    assert ip == POOL.start
    table.decline(MACS[0], ip, 1.0)
    assert table.offer(MACS[1], POOL, 2.0, lambda ip: False) != POOL.start
    table.release(MACS[1])
    assert table.offer(MACS[2], POOL, 102.0, lambda ip: False) == POOL.start


def test_bind_and_release_are_reported_for_the_store() -> None:
    table = LeaseTable()
    ip = table.offer(MACS[0], POOL, 0.0, lambda ip: False)
    assert ip is not None
    assert table.drain() == []  # offers are not persisted
    lease = table.bind(MACS[0], ip, 0.0, 60)
    table.release(MACS[0], ip)
    changes = table.drain()
    assert [(c.mac, c.lease) for c in changes] == [(MACS[0], lease), (MACS[0], None)]
