"""Which addresses of a pool may be free, lowest first, without scanning the pool.

Why: a DISCOVER used to walk the pool from its first address until it met a
free one, so the Nth new client of a boot storm paid for the N-1 before it
(quadratic: 1,000 clients cost about 2 s of CPU in the scan alone). Here a
pool keeps a cursor below which every address has been handed out at least
once, and a heap of the addresses below the cursor that came back (released,
expired, declined and over, skipped as reserved). Taking the lowest candidate
is O(log n); the lease table checks each candidate before it offers it, so a
stale one costs one check and is dropped, never handed out twice.

`Expiries` is the table's clock-side index: a heap of (time, address) so the
addresses of leases and declines that ran out come back to their pool when
an offer asks, without a sweep of every lease.
"""

from __future__ import annotations

import heapq
from ipaddress import IPv4Address


class FreeAddresses:
    """Candidates for one inclusive range [start, end], as integers, lowest first.

    Invariant: every address of the range that is free is either at or past
    the cursor, in the heap, or parked (skipped for a reason the table will
    undo later: `unpark`).
    """

    def __init__(self, start: IPv4Address, end: IPv4Address) -> None:
        self.start = int(start)
        self.end = int(end)
        self._next = self.start  # addresses >= _next were never handed out by `take`
        self._heap: list[int] = []
        self._queued: set[int] = set()
        self._parked: set[int] = set()

    def give_back(self, n: int) -> None:
        """`n` may be free again (idempotent; ignored outside the range or past the cursor)."""
        if self.start <= n < self._next and n not in self._queued:
            heapq.heappush(self._heap, n)
            self._queued.add(n)

    def take(self) -> int | None:
        """The lowest candidate, removed; None when the range has none left."""
        if self._heap:  # everything in the heap is below the cursor
            n = heapq.heappop(self._heap)
            self._queued.discard(n)
            return n
        if self._next <= self.end:
            self._next += 1
            return self._next - 1
        return None

    def park(self, n: int) -> None:
        """Keep `n` out of the candidates until `unpark` (e.g. reserved for another client)."""
        self._parked.add(n)

    def unpark(self) -> None:
        """Make every parked address a candidate again (a reservation may have gone)."""
        parked, self._parked = self._parked, set()
        for n in parked:
            self.give_back(n)

    def rewind(self) -> None:
        """Start again from the first address: every address becomes a candidate."""
        self._next = self.start
        self._heap.clear()
        self._queued.clear()
        self._parked.clear()


class Expiries:
    """(time, address) pairs, soonest first; `due(now)` pops those that ran out.

    Entries are never removed early: a lease renewed or moved leaves its old
    entry behind, and the caller checks each popped address against the table.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, when: float, ip: IPv4Address) -> None:
        heapq.heappush(self._heap, (when, int(ip)))

    def due(self, now: float) -> list[int]:
        out = []
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[1])
        return out
