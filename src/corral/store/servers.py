"""The servers of one cluster: every `corral serve` on the database, with a heartbeat.

Several servers share one database (PostgreSQL). Each registers its URLs at
start and renews its `seen` time every few seconds; a server whose heartbeat
is older than `LIVE_FOR` is taken for dead (a `kill -9` removes no row). From
this table a server tells nodes where else to go (boot URLs, trackers) and
finds a peer to fetch an artifact it lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from corral.store import schema
from corral.store.runtime import upsert

HEARTBEAT = 5.0  # seconds between a server's heartbeats
LIVE_FOR = 20.0  # a server not seen for this long is taken for dead


@dataclass(frozen=True)
class ServerRecord:
    """Where nodes reach one server: plain HTTP (firmware, artifacts), the API, its seeder."""

    url: str
    api_url: str
    address: str
    bt_port: int | None = None


def register(conn: Connection, server: ServerRecord, now: float) -> None:
    """Say this server runs (again): a restart keeps its row and renews it."""
    row = {
        "url": server.url,
        "api_url": server.api_url,
        "address": server.address,
        "bt_port": server.bt_port,
        "started": now,
        "seen": now,
    }
    upsert(conn, schema.servers, row)


def heartbeat(conn: Connection, server: ServerRecord, now: float) -> None:
    """Renew the `seen` time (registering again if someone pruned the row)."""
    t = schema.servers
    done = conn.execute(sa.update(t).where(t.c.url == server.url).values(seen=now)).rowcount
    if not done:
        register(conn, server, now)


def unregister(conn: Connection, url: str) -> None:
    """A clean stop: this server no longer answers."""
    conn.execute(sa.delete(schema.servers).where(schema.servers.c.url == url))


def live_servers(conn: Connection, now: float, live_for: float = LIVE_FOR) -> list[ServerRecord]:
    """The servers seen within `live_for` seconds, by URL (one order for every server)."""
    t = schema.servers
    rows = conn.execute(sa.select(t).where(t.c.seen >= now - live_for).order_by(t.c.url))
    return [ServerRecord(r.url, r.api_url, r.address, r.bt_port) for r in rows]
