"""Finding a node by what a board says about itself (a Raspberry Pi's serial).

The serial lives in the node's spec JSON (no column, no migration): the
lookup reads the names and specs of all nodes, which is a few hundred rows
at most on a Pi rack and happens once per file a booting board asks for.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from corral.store import schema


def node_name_by_rpi_serial(conn: Connection, serial: str) -> str | None:
    """The node whose `rpi_serial` ends in `serial` (8 lowercase hex digits)."""
    rows = conn.execute(sa.select(schema.nodes.c.name, schema.nodes.c.spec))
    for name, spec in rows:
        value = str((spec or {}).get("rpi_serial") or "").lower().removeprefix("0x")
        if value and value[-8:] == serial:
            return str(name)
    return None


def node_mac(conn: Connection, node: str, ip: str) -> str | None:
    """The MAC of `node`'s interface with address `ip`, else its first MAC."""
    t = schema.interfaces
    rows = conn.execute(sa.select(t.c.mac, t.c.ip).where(t.c.node == node)).all()
    macs = [r.mac for r in rows if r.mac and r.ip == ip] + [r.mac for r in rows if r.mac]
    return macs[0] if macs else None


def node_name_by_ip(conn: Connection, ip: str, now: float) -> str | None:
    """The node with reserved address `ip`, else the node whose MAC holds a live lease of it."""
    t = schema.interfaces
    name = conn.execute(sa.select(t.c.node).where(t.c.ip == ip)).scalar()
    if name is not None:
        return str(name)
    leases = schema.leases
    mac = conn.execute(
        sa.select(leases.c.mac).where(leases.c.ip == ip, leases.c.expires > now)
    ).scalar()
    if mac is None:
        return None
    found = conn.execute(sa.select(t.c.node).where(t.c.mac == mac)).scalar()
    return None if found is None else str(found)
