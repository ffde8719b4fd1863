"""The lease table: who holds which address until when, in memory and pure.

The table never touches a disk or a clock: every call takes `now`, and every
change worth keeping (a lease bound, a lease gone) is queued as a
`LeaseChange` that the transport drains after each packet and hands to a
`LeaseStore`. Offers are held briefly and not persisted; declined addresses
are kept out of use for `decline_hold` seconds (in memory only).

Invariant (property-tested): at any `now`, no two clients hold the same
address, and no dynamic allocation ever returns an address for which
`is_reserved` is true.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address
from typing import Protocol


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
    """Where bound leases survive a restart (the database, a JSON file...)."""

    def load(self) -> list[Lease]: ...

    def save(self, lease: Lease) -> None: ...

    def delete(self, mac: str) -> None: ...


class MemoryLeaseStore:
    """A `LeaseStore` that forgets everything on exit (tests, ProxyDHCP)."""

    def __init__(self, leases: Iterable[Lease] = ()) -> None:
        self.leases: dict[str, Lease] = {lease.mac: lease for lease in leases}

    def load(self) -> list[Lease]:
        return list(self.leases.values())

    def save(self, lease: Lease) -> None:
        self.leases[lease.mac] = lease

    def delete(self, mac: str) -> None:
        self.leases.pop(mac, None)


@dataclass(frozen=True)
class Pool:
    """An inclusive range of dynamic addresses."""

    start: IPv4Address
    end: IPv4Address

    def __contains__(self, ip: object) -> bool:
        return isinstance(ip, IPv4Address) and self.start <= ip <= self.end

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
        then the first free address of the pool in order.
        """
        current = self._by_mac.get(mac)
        for ip in (current.ip if current else None, requested):
            if ip is not None and self._usable(mac, ip, pool, now, is_reserved):
                return self.hold(mac, ip, now)
        for ip in pool.addresses():
            if self._usable(mac, ip, pool, now, is_reserved):
                return self.hold(mac, ip, now)
        return None

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

    def expire(self, now: float) -> list[Lease]:
        """Reclaim every expired lease and forget old declines."""
        gone = [lease for lease in self._by_mac.values() if not lease.active(now)]
        for lease in gone:
            self._drop(lease)
        self._declined = {ip: t for ip, t in self._declined.items() if t > now}
        return gone

    # ------------------------------------------------------------ internals

    def _usable(
        self, mac: str, ip: IPv4Address, pool: Pool, now: float, is_reserved: IsReserved
    ) -> bool:
        # the table first: `is_reserved` may ask a database (once per address scanned)
        return ip in pool and self.free_for(mac, ip, now) and not is_reserved(ip)

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
        self._by_mac[lease.mac] = lease
        self._by_ip[lease.ip] = lease

    def _drop(self, lease: Lease) -> None:
        if self._by_mac.get(lease.mac) is lease:
            del self._by_mac[lease.mac]
        if self._by_ip.get(lease.ip) is lease:
            del self._by_ip[lease.ip]
        if lease.state is LeaseState.BOUND:
            self._changes.append(LeaseChange(lease.mac, None))
