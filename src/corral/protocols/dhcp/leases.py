"""The lease table: who holds which address until when, in memory and pure.

The table never touches a disk or a clock: every call takes `now`, and every
change worth keeping (a lease bound, a lease gone) is queued as a
`LeaseChange` that the transport drains after each packet and hands to a
`LeaseStore`. Offers are held briefly and not persisted; declined addresses
are kept out of use for `decline_hold` seconds (in memory only).

Invariant (property-tested): at any `now`, no two clients hold the same
address, and no dynamic allocation ever returns an address for which
`is_reserved` is true.

An offer does not scan its pool: each pool has a `FreeAddresses` (a cursor
and a heap of addresses that came back), and an `Expiries` heap brings back
the addresses of leases and declines that ran out. See `freelist`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address
from typing import Protocol

from corral.protocols.dhcp.freelist import Expiries, FreeAddresses

REFILL_GAP = 1.0  # seconds between two full rescans of an exhausted pool


class LeaseState(StrEnum):
    OFFERED = "offered"
    BOUND = "bound"


@dataclass(frozen=True)
class Lease:
    mac: str
    ip: IPv4Address
    expires: float
    state: LeaseState = LeaseState.BOUND
    hostname: str | None = None

    def active(self, now: float) -> bool:
        return self.expires > now


@dataclass(frozen=True)
class LeaseChange:
    """One change for the store: `lease` saved, or the lease of `mac` deleted."""

    mac: str
    lease: Lease | None  # None means delete


class LeaseStore(Protocol):
    """Where bound leases survive a restart (the database; memory in tests).

    `apply` writes a batch of changes in order and returns once they are
    durable: the server acknowledges a lease only after that.
    """

    def load(self) -> list[Lease]: ...

    def apply(self, changes: Sequence[LeaseChange]) -> None: ...


class LeaseConflict(Exception):
    """Another server bound the address first (several servers on one database).

    Raised by `LeaseStore.apply` after writing the rest of the batch; the
    server sends no ACK and reloads its leases, so the client's retry is
    answered from what the database holds (a NAK, then a fresh offer).
    """

    def __init__(self, lost: Sequence[Lease]) -> None:
        super().__init__(", ".join(f"{lease.ip} for {lease.mac}" for lease in lost))
        self.lost = list(lost)


class MemoryLeaseStore:
    """A `LeaseStore` that forgets everything on exit (tests, ProxyDHCP)."""

    def __init__(self, leases: Iterable[Lease] = ()) -> None:
        self.leases: dict[str, Lease] = {lease.mac: lease for lease in leases}

    def load(self) -> list[Lease]:
        return list(self.leases.values())

    def apply(self, changes: Sequence[LeaseChange]) -> None:
        for change in changes:
            if change.lease is None:
                self.leases.pop(change.mac, None)
            else:
                self.leases[change.mac] = change.lease


@dataclass(frozen=True)
class Pool:
    """An inclusive range of dynamic addresses."""

    start: IPv4Address
    end: IPv4Address

    def __contains__(self, ip: object) -> bool:
        # integers: IPv4Address's derived <= is several times slower, and this is per packet
        return isinstance(ip, IPv4Address) and int(self.start) <= int(ip) <= int(self.end)

    def addresses(self) -> Iterable[IPv4Address]:
        for n in range(int(self.start), int(self.end) + 1):
            yield IPv4Address(n)


IsReserved = Callable[[IPv4Address], bool]


class LeaseTable:
    """Leases by MAC, one address per client, changes queued for the store."""

    def __init__(
        self,
        leases: Iterable[Lease] = (),
        *,
        offer_hold: float = 60.0,
        decline_hold: float = 600.0,
    ) -> None:
        self.offer_hold = offer_hold
        self.decline_hold = decline_hold
        self._by_mac: dict[str, Lease] = {}
        self._by_ip: dict[IPv4Address, Lease] = {}
        self._declined: dict[IPv4Address, float] = {}
        self._changes: list[LeaseChange] = []
        self._free: dict[Pool, FreeAddresses] = {}
        self._refilled: dict[Pool, float] = {}
        self._expiries = Expiries()
        for lease in leases:
            if lease.mac not in self._by_mac and lease.ip not in self._by_ip:
                self._put(lease)

    # ------------------------------------------------------------ queries

    def lookup(self, mac: str) -> Lease | None:
        return self._by_mac.get(mac)

    def holder(self, ip: IPv4Address, now: float) -> Lease | None:
        """The client whose unexpired lease covers `ip`, if any."""
        lease = self._by_ip.get(ip)
        return lease if lease is not None and lease.active(now) else None

    def leases(self) -> list[Lease]:
        return list(self._by_mac.values())

    def free_for(self, mac: str, ip: IPv4Address, now: float) -> bool:
        """True when `mac` may hold `ip`: not declined, not held by another."""
        if self._declined.get(ip, 0.0) > now:
            return False
        holder = self.holder(ip, now)
        return holder is None or holder.mac == mac

    def drain(self) -> list[LeaseChange]:
        """The changes since the last drain, oldest first."""
        changes, self._changes = self._changes, []
        return changes

    # ------------------------------------------------------------ changes

    def offer(
        self,
        mac: str,
        pool: Pool,
        now: float,
        is_reserved: IsReserved,
        requested: IPv4Address | None = None,
    ) -> IPv4Address | None:
        """Pick and hold an address from `pool` for `mac`; None when exhausted.

        Preference: the client's current address, then the one it asks for,
        then the first free address of the pool in order. Cost: O(log n) per
        candidate, not a walk of the pool (a full rescan only when the pool
        looks exhausted, at most once per `REFILL_GAP`).
        """
        current = self._by_mac.get(mac)
        for ip in (current.ip if current else None, requested):
            if ip is not None and self._usable(mac, ip, pool, now, is_reserved):
                return self.hold(mac, ip, now)
        self._reclaim(now)
        free = self._free_list(pool)
        found = self._take_free(mac, free, pool, now, is_reserved)
        if found is None and now - self._refilled.get(pool, -REFILL_GAP) >= REFILL_GAP:
            self._refilled[pool] = now  # exhausted, or something was lost: look at every address
            free.rewind()
            found = self._take_free(mac, free, pool, now, is_reserved)
        return None if found is None else self.hold(mac, found, now)

    def hold(self, mac: str, ip: IPv4Address, now: float) -> IPv4Address:
        """Hold `ip` for `mac` as an offer; a bound lease on it stays bound."""
        current = self._by_mac.get(mac)
        if current is not None and current.state is LeaseState.BOUND:
            if current.ip == ip and current.active(now):
                return ip
            self._drop(current)
        self._take(mac, ip, now)
        self._put(Lease(mac, ip, now + self.offer_hold, LeaseState.OFFERED))
        return ip

    def bind(
        self, mac: str, ip: IPv4Address, now: float, duration: float, hostname: str | None = None
    ) -> Lease:
        """Bind `ip` to `mac` for `duration` seconds; queued for the store."""
        self._take(mac, ip, now)
        lease = Lease(mac, ip, now + duration, LeaseState.BOUND, hostname)
        self._put(lease)
        self._changes.append(LeaseChange(mac, lease))
        return lease

    def release(self, mac: str, ip: IPv4Address | None = None) -> bool:
        """Forget the lease of `mac` (only if it covers `ip`, when given)."""
        lease = self._by_mac.get(mac)
        if lease is None or (ip is not None and lease.ip != ip):
            return False
        self._drop(lease)
        return True

    def decline(self, mac: str, ip: IPv4Address, now: float) -> None:
        """The client found `ip` in use: keep it out of the pool for a while."""
        self.release(mac, ip)
        self._declined[ip] = now + self.decline_hold
        self._expiries.add(now + self.decline_hold, ip)

    def expire(self, now: float) -> list[Lease]:
        """Reclaim every expired lease, forget old declines, retry addresses set aside."""
        gone = [lease for lease in self._by_mac.values() if not lease.active(now)]
        for lease in gone:
            self._drop(lease)
        self._declined = {ip: t for ip, t in self._declined.items() if t > now}
        self._reclaim(now)
        for free in self._free.values():
            free.unpark()  # a reservation that held one back may be gone
        return gone

    # ------------------------------------------------------------ internals

    def _usable(
        self, mac: str, ip: IPv4Address, pool: Pool, now: float, is_reserved: IsReserved
    ) -> bool:
        # the table first: `is_reserved` may ask a database (once per address scanned)
        return ip in pool and self.free_for(mac, ip, now) and not is_reserved(ip)

    def _free_list(self, pool: Pool) -> FreeAddresses:
        free = self._free.get(pool)
        if free is None:
            if len(self._free) >= 64:  # pools come from network settings: only a few are live
                self._free.clear()
                self._refilled.clear()
            free = self._free[pool] = FreeAddresses(pool.start, pool.end)
        return free

    def _take_free(
        self, mac: str, free: FreeAddresses, pool: Pool, now: float, is_reserved: IsReserved
    ) -> IPv4Address | None:
        """The lowest usable candidate; the unusable ones met on the way are set aside."""
        while (n := free.take()) is not None:
            ip = IPv4Address(n)
            if self._usable(mac, ip, pool, now, is_reserved):
                return ip
            if self.free_for(mac, ip, now):
                free.park(n)  # free but reserved: retried at the next `expire`
            # held or declined: it comes back through `_freed` when that ends
        return None

    def _reclaim(self, now: float) -> None:
        """Give back the addresses whose lease or decline ran out by `now`."""
        for n in self._expiries.due(now):
            ip = IPv4Address(n)
            if self.holder(ip, now) is None and self._declined.get(ip, 0.0) <= now:
                self._freed(ip)

    def _freed(self, ip: IPv4Address) -> None:
        n = int(ip)
        for free in self._free.values():
            free.give_back(n)

    def _take(self, mac: str, ip: IPv4Address, now: float) -> None:
        """Clear the way for `mac` to hold `ip`: its old lease, an expired holder."""
        old = self._by_mac.get(mac)
        if old is not None and old.ip != ip:
            self._drop(old)
        other = self._by_ip.get(ip)
        if other is not None and other.mac != mac:
            if other.active(now):
                raise ValueError(f"{ip} is held by {other.mac}")
            self._drop(other)

    def _put(self, lease: Lease) -> None:
        old = self._by_mac.get(lease.mac)
        if old is not None and self._by_ip.get(old.ip) is old:
            del self._by_ip[old.ip]
            if old.ip != lease.ip:
                self._freed(old.ip)
        self._by_mac[lease.mac] = lease
        self._by_ip[lease.ip] = lease
        self._expiries.add(lease.expires, lease.ip)

    def _drop(self, lease: Lease) -> None:
        if self._by_mac.get(lease.mac) is lease:
            del self._by_mac[lease.mac]
        if self._by_ip.get(lease.ip) is lease:
            del self._by_ip[lease.ip]
            self._freed(lease.ip)
        if lease.state is LeaseState.BOUND:
            self._changes.append(LeaseChange(lease.mac, None))
