"""The lease table under random operation sequences: no address twice, no reserved one."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import HealthCheck, given, settings
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


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
        store.apply(table.drain())
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


def _first_usable(table: LeaseTable, mac: str, now: float) -> IPv4Address | None:
    """The reference answer: the old walk of the pool, address by address."""
    current = table.lookup(mac)
    candidates = ([current.ip] if current else []) + [
        IPv4Address(n) for n in range(int(POOL.start), int(POOL.end) + 1)
    ]
    for ip in candidates:
        if ip in POOL and table.free_for(mac, ip, now) and ip not in RESERVED:
            return ip
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_offers_are_the_lowest_usable_address_as_a_full_scan_would_find(
    sequence: list[tuple[str, str, IPv4Address, int]],
) -> None:
    """The free-address structure answers what walking the pool answered, at every step."""
    table = LeaseTable(offer_hold=30, decline_hold=50)
    now = 1000.0
    for op, mac, _ip, n in sequence:
        if op in ("offer", "bind"):
            expected = _first_usable(table, mac, now)
            got = table.offer(mac, POOL, now, RESERVED.__contains__)
            assert got == expected
            if got is not None and op == "bind":
                table.bind(mac, got, now, duration=n + 1)
        elif op == "release":
            table.release(mac)
        elif op == "decline":
            lease = table.lookup(mac)
            if lease is not None:
                table.decline(mac, lease.ip, now)
        elif op == "expire":
            table.expire(now)
        now += n if op == "tick" else 1


def test_a_storm_of_new_clients_gets_distinct_addresses_in_order() -> None:
    pool = Pool(IPv4Address("10.80.1.0"), IPv4Address("10.80.200.255"))
    table = LeaseTable()
    got = [
        table.offer(f"52:54:00:00:{i >> 8:02x}:{i & 255:02x}", pool, 0.0, lambda ip: False)
        for i in range(5000)
    ]
    assert got == [IPv4Address(int(pool.start) + i) for i in range(5000)]


def test_an_address_freed_below_the_others_is_offered_first() -> None:
    table = LeaseTable()
    macs = [f"52:54:00:00:01:{i:02x}" for i in range(6)]
    for mac in macs:
        ip = table.offer(mac, POOL, 0.0, lambda ip: False)
        assert ip is not None
        table.bind(mac, ip, 0.0, 100)
    table.release(macs[3])  # 10.0.0.13
    table.release(macs[1])  # 10.0.0.11
    assert table.offer("52:54:00:00:02:00", POOL, 1.0, lambda ip: False) == IPv4Address("10.0.0.11")
    assert table.offer("52:54:00:00:02:01", POOL, 1.0, lambda ip: False) == IPv4Address("10.0.0.13")
    assert table.offer("52:54:00:00:02:02", POOL, 1.0, lambda ip: False) == IPv4Address("10.0.0.16")


def test_an_address_whose_reservation_went_away_returns_to_the_pool() -> None:
    """Skipped while reserved; offered again after the next sweep, or when the pool runs dry."""
    reserved = {IPv4Address("10.0.0.10")}
    table = LeaseTable()
    assert table.offer(MACS[0], POOL, 0.0, reserved.__contains__) == IPv4Address("10.0.0.11")
    reserved.clear()
    table.expire(1.0)
    assert table.offer(MACS[1], POOL, 1.0, reserved.__contains__) == IPv4Address("10.0.0.10")
    # pool dry but for an address a reservation held back when it was met
    table = LeaseTable()
    reserved = {IPv4Address("10.0.0.17")}
    for mac in MACS[:7]:
        assert table.offer(mac, POOL, 0.0, reserved.__contains__) is not None
    assert table.offer(MACS[7], POOL, 0.0, reserved.__contains__) is None
    reserved.clear()
    assert table.offer(MACS[7], POOL, 2.0, reserved.__contains__) == IPv4Address("10.0.0.17")
