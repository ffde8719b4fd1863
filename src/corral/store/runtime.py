"""Runtime records the servers write: discovered machines (leases, states and
events live beside them as their services land).

Writes are upserts, so a machine seen again only moves its `last_seen`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from corral.store import schema


def upsert(
    conn: Connection, table: sa.Table, values: dict[str, Any], keep: tuple[str, ...] = ()
) -> None:
    """Insert `values`, or update the row with the same primary key (except `keep`)."""
    from sqlalchemy.dialects import postgresql, sqlite  # only writers need them (start-up time)

    dialect = conn.dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table).values(**values)
    keys = [c.name for c in table.primary_key.columns]
    update = {k: stmt.excluded[k] for k in values if k not in keys and k not in keep}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update))


def record_discovered(conn: Connection, mac: str, data: dict[str, Any], now: float) -> None:
    upsert(
        conn,
        schema.discovered,
        {"mac": mac, "first_seen": now, "last_seen": now, "data": data},
        keep=("first_seen",),
    )


def list_discovered(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(schema.discovered).order_by(schema.discovered.c.first_seen))
    return [
        {"mac": r.mac, "first_seen": r.first_seen, "last_seen": r.last_seen, **r.data} for r in rows
    ]


def forget_discovered(conn: Connection, mac: str) -> bool:
    result = conn.execute(sa.delete(schema.discovered).where(schema.discovered.c.mac == mac))
    return bool(result.rowcount)
