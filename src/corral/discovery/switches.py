"""Switches and their port maps, kept in the store's `switches` table (name, spec JSON).

A map says which node is cabled to which port: `corral switch map sw1 1-48
n[001-048]`. Ports are written as numbers or ranges (`1-48`) or as names with
hostlist ranges (`Gi1/0/[1-48]`, `swp[1-48]`); they must pair one to one with
the nodes.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import Field, SecretStr, SerializationInfo, ValidationError, field_serializer
from sqlalchemy.engine import Connection

from corral.inventory.errors import Conflict, InventoryError, NotFound
from corral.inventory.hostlists import expand
from corral.inventory.models import Record
from corral.inventory.ops import describe
from corral.inventory.types import Name
from corral.store import schema

NUMERIC_RANGE = re.compile(r"^(\d+)-(\d+)$")


class Switch(Record):
    """An access switch that nodes are cabled to."""

    name: Name = Field(description="Switch name (also matched against option 82 remote-id)")
    address: str = Field(description="Management address for SNMP")
    snmp_community: SecretStr = Field(SecretStr("public"), description="SNMPv2c community")
    snmp_port: Annotated[int, Field(ge=1, le=65535)] = Field(161, description="SNMP UDP port")
    agent_ids: list[str] = Field(
        default_factory=list, description="Other option 82 remote-ids of this switch (e.g. its MAC)"
    )
    ports: dict[str, str] = Field(default_factory=dict, description="Port -> node name")

    @field_serializer("snmp_community", when_used="json")
    def _hide(self, value: SecretStr, info: SerializationInfo) -> str:
        context = info.context or {}
        return value.get_secret_value() if context.get("secrets") else "***"


def build_switch(data: dict[str, Any]) -> Switch:
    try:
        return Switch.model_validate(data)
    except ValidationError as exc:
        raise describe(exc, f"switch {data.get('name')}") from None


def expand_ports(text: str) -> list[str]:
    """`1-48` -> ['1', ..., '48']; `Gi1/0/[1-4]` -> ['Gi1/0/1', ...]; `swp1,swp3` as is."""
    m = NUMERIC_RANGE.match(text.strip())
    if m:
        first, last = int(m.group(1)), int(m.group(2))
        if first > last:
            raise InventoryError(f"port range {text!r} runs backwards")
        return [str(p) for p in range(first, last + 1)]
    return expand(text)


def map_ports(switch: Switch, ports: str, nodes: str) -> Switch:
    """`switch` with `ports` mapped one to one onto `nodes` (hostlists)."""
    port_list, node_list = expand_ports(ports), expand(nodes)
    if len(port_list) != len(node_list):
        raise InventoryError(
            f"{len(port_list)} port(s) but {len(node_list)} node(s): they pair one to one"
        )
    mapped = {**switch.ports, **dict(zip(port_list, node_list, strict=True))}
    return switch.model_copy(update={"ports": mapped})


# store ----------------------------------------------------------------------------


def _spec(switch: Switch) -> dict[str, Any]:
    return switch.model_dump(mode="json", exclude_defaults=True, context={"secrets": True})


def load_switches(conn: Connection) -> dict[str, Switch]:
    rows = conn.execute(sa.select(schema.switches.c.name, schema.switches.c.spec))
    return {name: Switch.model_validate({**spec, "name": name}) for name, spec in rows}


def get_switch(conn: Connection, name: str) -> Switch:
    switch = load_switches(conn).get(name)
    if switch is None:
        raise NotFound(f"switch {name!r} does not exist (see 'corral switch list')")
    return switch


def add_switch(conn: Connection, switch: Switch) -> Switch:
    if switch.name in load_switches(conn):
        raise Conflict(f"switch {switch.name} already exists")
    conn.execute(sa.insert(schema.switches).values(name=switch.name, spec=_spec(switch)))
    return switch


def save_switch(conn: Connection, switch: Switch) -> Switch:
    table = schema.switches
    conn.execute(sa.update(table).where(table.c.name == switch.name).values(spec=_spec(switch)))
    return switch


def delete_switch(conn: Connection, name: str) -> None:
    get_switch(conn, name)
    conn.execute(sa.delete(schema.switches).where(schema.switches.c.name == name))
