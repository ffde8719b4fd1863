"""Loading and saving the inventory: whole records in, only changes out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from corral.inventory.index import Inventory
from corral.inventory.models import ClusterSettings, Network, Node, Profile, Record
from corral.store import schema

SECRETS = {"secrets": True}
_TABLES: dict[str, tuple[sa.Table, type[Record]]] = {
    "networks": (schema.networks, Network),
    "profiles": (schema.profiles, Profile),
    "nodes": (schema.nodes, Node),
}


def spec_of(record: Record) -> dict[str, Any]:
    """The stored form: JSON, defaults left out, secrets kept."""
    return record.model_dump(mode="json", exclude_defaults=True, context=SECRETS)


def load_inventory(conn: Connection) -> Inventory:
    inv = Inventory()
    row = conn.execute(
        sa.select(schema.settings.c.value).where(schema.settings.c.key == "cluster")
    ).scalar()
    if row is not None:
        inv.settings = ClusterSettings.model_validate(row)
    for kind, (table, model) in _TABLES.items():
        records = getattr(inv, kind)
        for name, spec in conn.execute(sa.select(table.c.name, table.c.spec)):
            records[name] = model.model_validate(spec)
    return inv


def save_inventory(conn: Connection, before: Inventory, after: Inventory) -> None:
    """Write the differences between two inventories (deletes first, then upserts)."""
    if before.settings != after.settings:
        conn.execute(sa.delete(schema.settings).where(schema.settings.c.key == "cluster"))
        conn.execute(
            sa.insert(schema.settings).values(key="cluster", value=spec_of(after.settings))
        )
    for kind, (table, _model) in reversed(list(_TABLES.items())):
        _save_kind(conn, table, getattr(before, kind), getattr(after, kind), kind == "nodes")


def _save_kind(
    conn: Connection,
    table: sa.Table,
    old: Mapping[str, Record],
    new: Mapping[str, Record],
    is_nodes: bool,
) -> None:
    gone = [name for name in old if name not in new]
    changed = [name for name, rec in new.items() if old.get(name) != rec]
    stale = gone + [n for n in changed if n in old]
    for chunk in _chunks(stale):
        if is_nodes:
            conn.execute(sa.delete(schema.interfaces).where(schema.interfaces.c.node.in_(chunk)))
        conn.execute(sa.delete(table).where(table.c.name.in_(chunk)))
    if not changed:
        return
    conn.execute(sa.insert(table), [{"name": n, "spec": spec_of(new[n])} for n in changed])
    if is_nodes:
        rows = [row for n in changed for row in _interface_rows(n, new[n])]
        if rows:
            conn.execute(sa.insert(schema.interfaces), rows)


def _interface_rows(name: str, node: Record) -> list[dict[str, Any]]:
    assert isinstance(node, Node)
    return [
        {"node": name, "network": i.network, "mac": i.mac, "ip": i.ip and str(i.ip)}
        for i in node.interfaces
    ]


def _chunks(names: list[str], size: int = 500) -> list[list[str]]:
    return [names[i : i + size] for i in range(0, len(names), size)]


def node_name_by_mac(conn: Connection, mac: str) -> str | None:
    """The node whose interface has `mac` (one indexed lookup)."""
    return conn.execute(
        sa.select(schema.interfaces.c.node).where(schema.interfaces.c.mac == mac)
    ).scalar()


def load_node_view(conn: Connection, name: str) -> Inventory | None:
    """Just enough inventory to resolve one node: it, its profiles, all networks.

    Boot requests use this instead of loading every node, so a boot storm on a
    large cluster costs a few rows per request.
    """
    spec = conn.execute(sa.select(schema.nodes.c.spec).where(schema.nodes.c.name == name)).scalar()
    if spec is None:
        return None
    node = Node.model_validate(spec)
    inv = Inventory(nodes={name: node})
    rows = conn.execute(
        sa.select(schema.profiles.c.name, schema.profiles.c.spec).where(
            schema.profiles.c.name.in_(node.profiles)
        )
    )
    inv.profiles = {n: Profile.model_validate(s) for n, s in rows}
    rows = conn.execute(sa.select(schema.networks.c.name, schema.networks.c.spec))
    inv.networks = {n: Network.model_validate(s) for n, s in rows}
    return inv
