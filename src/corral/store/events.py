"""Querying and pruning the `events` table (`corral events`, `corral serve`).

Filters run in the database (node names, kinds, a start time), so a
question about one node in a million rows reads only its rows. Pruning
deletes in small batches, each its own transaction, so the table is never
locked for long while DHCP and the API write to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from corral.inventory.types import Data
from corral.store import schema
from corral.store.db import Store
from corral.store.status import event_dict

PRUNE_BATCH = 5000  # rows per delete: short transactions


@dataclass(frozen=True)
class EventQuery:
    """Which events: after id `after`, of `nodes`, of `kinds`, at or after `start` (epoch)."""

    after: int = 0
    limit: int = 1000
    nodes: Sequence[str] | None = None
    kinds: Sequence[str] | None = None
    start: float | None = None
    newest: bool = False  # the last `limit` matches (still printed oldest first)


def find_events(conn: Connection, q: EventQuery) -> list[Data]:
    """Matching events, oldest first, at most `q.limit`."""
    t = schema.events
    query = sa.select(t).where(t.c.id > q.after)
    if q.nodes is not None:
        query = query.where(t.c.node.in_(list(q.nodes)))
    if q.kinds is not None:
        query = query.where(t.c.kind.in_(list(q.kinds)))
    if q.start is not None:
        query = query.where(t.c.time >= q.start)
    order = t.c.id.desc() if q.newest else t.c.id
    rows = [event_dict(r) for r in conn.execute(query.order_by(order).limit(q.limit))]
    return rows[::-1] if q.newest else rows


@dataclass(frozen=True)
class Pruned:
    by_age: int
    by_count: int


def prune_events(
    store: Store, now: float, max_age_days: float, max_rows: int, batch: int = PRUNE_BATCH
) -> Pruned:
    """Delete events older than `max_age_days`, then all but the newest `max_rows`."""
    t = schema.events
    cutoff = now - max_age_days * 86400.0
    by_age = _delete_batches(store, sa.select(t.c.id).where(t.c.time < cutoff), batch)
    with store.transaction() as conn:
        floor = conn.execute(
            sa.select(t.c.id).order_by(t.c.id.desc()).offset(max_rows).limit(1)
        ).scalar()
    by_count = 0
    if floor is not None:  # ids grow: everything at or below the (max_rows+1)-th newest goes
        by_count = _delete_batches(store, sa.select(t.c.id).where(t.c.id <= floor), batch)
    return Pruned(by_age, by_count)


def _delete_batches(store: Store, ids: sa.Select[tuple[int]], batch: int) -> int:
    t = schema.events
    total = 0
    while True:
        with store.transaction() as conn:
            chosen = list(conn.execute(ids.order_by(t.c.id).limit(batch)).scalars())
            if chosen:
                conn.execute(sa.delete(t).where(t.c.id.in_(chosen)))
        total += len(chosen)
        if len(chosen) < batch:
            return total
