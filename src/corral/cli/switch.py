"""`corral switch add|list|show|map|delete`: switches and which node is on which port.

With a map, an unknown machine that boots is named by its port (DHCP option
82 from the relay, else the switch's MAC table over SNMP) and adopted.
"""

from __future__ import annotations

from typing import Any

import click

from corral.cli.context import CliContext
from corral.cli.output import emit, output_option, success
from corral.discovery import switches as sw
from corral.inventory.errors import NotFound
from corral.inventory.hostlists import compress


@click.group()
def switch() -> None:
    """Switches: port maps for naming nodes by where they are cabled."""


@switch.command("add")
@click.argument("name")
@click.option("--address", required=True, help="Management address (SNMP)")
@click.option("--snmp-community", default="public", show_default=True, help="SNMPv2c community")
@click.option("--snmp-port", type=click.IntRange(1, 65535), default=161, show_default=True)
@click.option("--agent-id", multiple=True, help="Option 82 remote-id of this switch (repeatable)")
@click.pass_obj
def add(
    ctx: CliContext,
    /,
    name: str,
    address: str,
    snmp_community: str,
    snmp_port: int,
    agent_id: tuple[str, ...],
) -> None:
    """Add switch NAME."""
    data = {"name": name, "address": address, "snmp_community": snmp_community}
    record = sw.build_switch({**data, "snmp_port": snmp_port, "agent_ids": list(agent_id)})
    added = ctx.actions.add_switch(record)
    success(f"switch {added.name} added")


@switch.command("map")
@click.argument("name")
@click.argument("ports")
@click.argument("nodes")
@click.pass_obj
def map_(ctx: CliContext, /, name: str, ports: str, nodes: str) -> None:
    """Map PORTS of switch NAME to NODES, one to one (e.g. 1-48 n[001-048])."""
    ctx.actions.map_switch(name, ports, nodes)
    success(f"switch {name}: {len(sw.expand_ports(ports))} port(s) mapped")


@switch.command("list")
@output_option
@click.pass_obj
def list_(ctx: CliContext, /, output: str) -> None:
    """List switches."""
    records = ctx.actions.switches()
    data = [s.model_dump(mode="json", exclude_defaults=True) for s in records]

    def rows() -> list[tuple[Any, ...]]:
        return [
            (s.name, s.address, s.snmp_port, len(s.ports), _nodes(s.ports.values()))
            for s in records
        ]

    emit(data, output, ("NAME", "ADDRESS", "SNMP PORT", "PORTS", "NODES"), rows)


@switch.command("show")
@click.argument("name")
@output_option
@click.pass_obj
def show(ctx: CliContext, /, name: str, output: str) -> None:
    """Show switch NAME and its port map."""
    record = next((s for s in ctx.actions.switches() if s.name == name), None)
    if record is None:
        raise NotFound(f"switch {name!r} does not exist (see 'corral switch list')")
    data = record.model_dump(mode="json", exclude_defaults=True)

    def rows() -> list[tuple[Any, ...]]:
        head: list[tuple[Any, ...]] = [
            ("address", record.address),
            ("snmp", f"port {record.snmp_port}, community ***"),
            ("agent ids", ", ".join(record.agent_ids)),
        ]
        return head + [(f"port {p}", n) for p, n in _port_order(record.ports)]

    emit(data, output, ("FIELD", "VALUE"), rows, title=f"switch {name}")


@switch.command("delete")
@click.argument("name")
@click.pass_obj
def delete(ctx: CliContext, /, name: str) -> None:
    """Delete switch NAME."""
    ctx.actions.delete_switch(name)
    success(f"switch {name} deleted")


def _nodes(names: Any) -> str:
    names = list(names)
    return compress(names) if names else ""


def _port_order(ports: dict[str, str]) -> list[tuple[str, str]]:
    return sorted(ports.items(), key=lambda kv: (not kv[0].isdigit(), kv[0].zfill(8)))


COMMANDS = [switch]
