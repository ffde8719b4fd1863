"""Loading and saving the inventory: whole records in, only changes out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from corral.inventory import ops
from corral.inventory.bulk import gc_paused
from corral.inventory.index import Inventory
from corral.inventory.models import ClusterSettings, Network, Node, Profile, Record
from corral.inventory.types import check_mac_or_error
from corral.store import schema
from corral.store.db import Store, secrets_of
from corral.store.nodelist import with_password
from corral.store.runtime import forget_discovered
from corral.store.secretbox import SecretBox

T = TypeVar("T")

SECRETS = {"secrets": True}
_TABLES: dict[str, tuple[sa.Table, type[Record]]] = {
    "networks": (schema.networks, Network),
    "profiles": (schema.profiles, Profile),
    "nodes": (schema.nodes, Node),
}


def spec_of(record: Record, box: SecretBox | None = None) -> dict[str, Any]:
    """The stored form: JSON, defaults left out, secrets kept (sealed by `box`)."""
    spec = record.model_dump(mode="json", exclude_defaults=True, context=SECRETS)
    return spec if box is None else with_password(spec, box.seal)


def load_inventory(conn: Connection) -> Inventory:
    inv = Inventory()
    row = conn.execute(
        sa.select(schema.settings.c.value).where(schema.settings.c.key == "cluster")
    ).scalar()
    if row is not None:
        inv.settings = ClusterSettings.model_validate(row)
    box = secrets_of(conn)
    for kind, (table, model) in _TABLES.items():
        records = getattr(inv, kind)
        for name, spec in conn.execute(sa.select(table.c.name, table.c.spec)):
            records[name] = model.model_validate(
                spec if box is None else with_password(spec, box.open)
            )
    return inv


def read_inventory(store: Store) -> Inventory:
    """The whole inventory, in one read-only transaction (no write lock)."""
    with store.reading() as conn, gc_paused():
        return load_inventory(conn)


def change_inventory(conn: Connection, action: Callable[[Inventory], T]) -> T:
    """Run `action` on the inventory and save what it changed (in the caller's transaction)."""
    with gc_paused():
        before = load_inventory(conn)
        after = before.copy()
        result = action(after)
        save_inventory(conn, before, after)
        return result


def adopt(conn: Connection, mac: str, name: str, profiles: list[str] | None = None) -> Node:
    """Make a discovered machine node `name` (create it, or give it the MAC), and
    drop it from the discovered list: the one adoption that the CLI, the REST API
    and switch-port discovery all run."""
    mac = check_mac_or_error(mac)
    node = change_inventory(conn, lambda inv: ops.adopt(inv, mac, name, profiles))
    forget_discovered(conn, mac)
    return node


def save_inventory(conn: Connection, before: Inventory, after: Inventory) -> None:
    """Write the differences between two inventories (deletes first, then upserts).

    Any difference also bumps the inventory generation, so that services holding a
    snapshot (DNS, DHCP) notice a change with one small query instead of a reload.
    """
    changed = before.settings != after.settings
    if changed:
        _put_setting(conn, "cluster", spec_of(after.settings))
    box = secrets_of(conn)
    for kind, (table, _model) in reversed(list(_TABLES.items())):
        old, new = getattr(before, kind), getattr(after, kind)
        changed = _save_kind(conn, table, old, new, kind == "nodes", box) or changed
    if changed:
        _put_setting(conn, GENERATION, generation(conn) + 1)


GENERATION = "generation"


def generation(conn: Connection) -> int:
    """A number that grows whenever the inventory changes (0 for a new store)."""
    value = conn.execute(
        sa.select(schema.settings.c.value).where(schema.settings.c.key == GENERATION)
    ).scalar()
    return int(value) if isinstance(value, int) else 0


def _put_setting(conn: Connection, key: str, value: Any) -> None:
    conn.execute(sa.delete(schema.settings).where(schema.settings.c.key == key))
    conn.execute(sa.insert(schema.settings).values(key=key, value=value))


def _save_kind(
    conn: Connection,
    table: sa.Table,
    old: Mapping[str, Record],
    new: Mapping[str, Record],
    is_nodes: bool,
    box: SecretBox | None,
) -> bool:
    """Write one kind's differences; True when there were any."""
    gone = [name for name in old if name not in new]
    changed = [name for name, rec in new.items() if old.get(name) != rec]
    stale = gone + [n for n in changed if n in old]
    for chunk in _chunks(stale):
        if is_nodes:
            conn.execute(sa.delete(schema.interfaces).where(schema.interfaces.c.node.in_(chunk)))
        conn.execute(sa.delete(table).where(table.c.name.in_(chunk)))
    if is_nodes:  # a node deleted (or re-created later) keeps no credential or boot token
        for chunk in _chunks(gone):
            for secrets in (schema.node_credentials, schema.boot_tokens):
                conn.execute(sa.delete(secrets).where(secrets.c.node.in_(chunk)))
    if not changed:
        return bool(gone)
    conn.execute(sa.insert(table), [{"name": n, "spec": spec_of(new[n], box)} for n in changed])
    if is_nodes:
        rows = [row for n in changed for row in _interface_rows(n, new[n])]
        if rows:
            conn.execute(sa.insert(schema.interfaces), rows)
    return True


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


def node_name_by_ip(conn: Connection, ip: str) -> str | None:
    """The node with an interface reserved at `ip` (the first, if several networks share it)."""
    t = schema.interfaces
    return conn.execute(sa.select(t.c.node).where(t.c.ip == ip).limit(1)).scalar()


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


def seal_stored_secrets(conn: Connection, box: SecretBox) -> int:
    """Seal every BMC password still stored in clear text; how many rows changed."""
    changed = 0
    for table in (schema.profiles, schema.nodes):
        for name, spec in conn.execute(sa.select(table.c.name, table.c.spec)).all():
            sealed = with_password(spec, box.seal)
            if sealed != spec:
                conn.execute(sa.update(table).where(table.c.name == name).values(spec=sealed))
                changed += 1
    return changed


def unassigned_nodes(conn: Connection, limit: int) -> list[str]:
    """Nodes with an interface but no MAC: candidates for an unknown machine (first `limit`)."""
    t = schema.interfaces
    query = sa.select(t.c.node).where(t.c.mac.is_(None)).order_by(t.c.node).limit(limit)
    return list(dict.fromkeys(conn.execute(query).scalars()))


def is_unassigned(conn: Connection, name: str) -> bool:
    """Whether node `name` exists and has an interface without a MAC (it may be adopted)."""
    t = schema.interfaces
    query = sa.select(t.c.node).where(t.c.node == name, t.c.mac.is_(None)).limit(1)
    return conn.execute(query).first() is not None
