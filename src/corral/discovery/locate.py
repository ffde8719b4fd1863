"""Naming an unknown machine by the switch port it is cabled to, and adopting it.

`node_for` is the pure decision: option 82 first (remote-id picks the switch,
circuit-id the port), else the MAC tables read from the switches. `locate`
reads those tables over SNMP only when option 82 did not decide. For the DHCP
server, `adopt_by_port` is the one call: it names the machine, records its
MAC on that node's primary interface, and returns the node name (None when
no switch map knows the machine), so the node boots as itself on the same
power cycle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from corral.discovery.option82 import interface_of, match_port, remote_ids
from corral.discovery.snmp import FdbEntry, SnmpError, find_mac
from corral.discovery.switches import Switch, load_switches
from corral.inventory.index import Inventory
from corral.inventory.models import Node
from corral.inventory.types import check_mac
from corral.store.db import Home
from corral.store.inventory import adopt, read_inventory

log = logging.getLogger(__name__)
Lookup = Callable[[Switch, str], Awaitable[FdbEntry | None]]


@dataclass(frozen=True)
class Sighting:
    """A machine seen by the DHCP server: its MAC and the relay's option 82, if any."""

    mac: str
    circuit_id: bytes | str | None = None
    remote_id: bytes | str | None = None


@dataclass(frozen=True)
class PortMatch:
    node: str
    switch: str
    port: str
    source: str  # "option82" or "snmp"


def node_for(
    seen: Sighting,
    switches: Mapping[str, Switch],
    fdb: Mapping[str, Sequence[str]] | None = None,
) -> PortMatch | None:
    """The node `seen` should be, from option 82, else from `fdb` (switch -> port names
    where its MAC was learned). None when nothing matches or the match is ambiguous."""
    if seen.circuit_id:
        found = _by_option82(seen, switches)
        if found is not None:
            return found
    matches = [
        PortMatch(sw.ports[key], sw.name, key, "snmp")
        for name, ports in (fdb or {}).items()
        if (sw := switches.get(name)) is not None
        for key in [_first_match(sw.ports, ports)]
        if key is not None
    ]
    return matches[0] if len(matches) == 1 else None


def _by_option82(seen: Sighting, switches: Mapping[str, Switch]) -> PortMatch | None:
    assert seen.circuit_id
    candidates = list(switches.values())
    if seen.remote_id:
        ids = remote_ids(seen.remote_id)
        candidates = [sw for sw in candidates if ids & _switch_ids(sw)]
    found = [
        PortMatch(sw.ports[key], sw.name, key, "option82")
        for sw in candidates
        if (key := match_port(sw.ports, seen.circuit_id)) is not None
    ]
    return found[0] if len(found) == 1 else None


def port_contradiction(
    switches: Mapping[str, Switch],
    node: str,
    circuit_id: bytes | str | None,
    remote_id: bytes | str | None = None,
) -> str | None:
    """Why a request relayed with this option 82 is not from `node`'s port, or None.

    The switch map is the record of where `node` is cabled. A contradiction is a
    circuit-id that does not name the node's port on the switch the remote-id names
    (or, without a remote-id, on any of the node's switches). Nothing is concluded
    (None) without a circuit-id, for a node on no mapped port, or for a remote-id that
    names no switch of the map: corral cannot tell where that request came from.
    """
    bound = {
        (sw.name, port) for sw in switches.values() for port, n in sw.ports.items() if n == node
    }
    if not circuit_id or not bound:
        return None
    if remote_id:
        ids = remote_ids(remote_id)
        candidates = [sw for sw in switches.values() if ids & _switch_ids(sw)]
        if not candidates:
            return None
    else:
        candidates = [switches[name] for name in sorted({name for name, _ in bound})]
    if any((sw.name, match_port(sw.ports, circuit_id)) in bound for sw in candidates):
        return None
    came = f"circuit-id {interface_of(circuit_id) or repr(circuit_id)}"
    if remote_id:
        came += f" on {'/'.join(sw.name for sw in candidates)}"
    mapped = ", ".join(f"{sw} port {port}" for sw, port in sorted(bound))
    return f"option 82 says {came}, and the switch map has {node} on {mapped}"


def _switch_ids(switch: Switch) -> set[str]:
    ids = {switch.name.lower(), switch.address.lower()}
    for agent in switch.agent_ids:
        ids |= remote_ids(agent)
    return ids


def _first_match(ports: Mapping[str, str], names: Sequence[str]) -> str | None:
    for name in names:
        key = match_port(ports, name)
        if key is not None:
            return key
    return None


async def locate(
    seen: Sighting, switches: Mapping[str, Switch], lookup: Lookup = find_mac
) -> PortMatch | None:
    """`node_for`, reading the switches' MAC tables (concurrently) if option 82 did not decide."""
    found = node_for(seen, switches)
    if found is not None:
        return found
    mapped = [sw for sw in switches.values() if sw.ports]
    entries = await asyncio.gather(*(_lookup(lookup, sw, seen.mac) for sw in mapped))
    fdb = {sw.name: e.names() for sw, e in zip(mapped, entries, strict=True) if e is not None}
    return node_for(seen, switches, fdb)


async def _lookup(lookup: Lookup, switch: Switch, mac: str) -> FdbEntry | None:
    try:
        return await lookup(switch, mac)
    except (SnmpError, OSError) as exc:
        log.warning("switch %s: MAC table not readable: %s", switch.name, exc)
        return None


@dataclass(frozen=True)
class Adoption:
    node: str
    mac: str
    match: PortMatch
    previous_mac: str | None


async def adopt_by_port(
    home: Home,
    mac: str,
    circuit_id: bytes | str | None = None,
    remote_id: bytes | str | None = None,
    lookup: Lookup = find_mac,
) -> Adoption | None:
    """Name an unknown MAC by its switch port and record it on that node's primary
    interface (one transaction). None when no map knows the port or the node does
    not exist; a node that had another MAC (a replaced board) gets the new one.

    :raises InventoryError: the MAC belongs to another node, or the node has no network.
    """
    seen = Sighting(check_mac(mac), circuit_id, remote_id)
    switches = await asyncio.to_thread(_switches, home)
    found = await locate(seen, switches, lookup)
    if found is None:
        return None
    inv = await asyncio.to_thread(read_inventory, home.store)
    if found.node not in inv.nodes:
        log.warning(
            "port %s/%s maps to %s, which does not exist", found.switch, found.port, found.node
        )
        return None
    previous = _primary_mac(inv, inv.nodes[found.node])
    if previous != seen.mac:
        await asyncio.to_thread(_adopt, home, seen.mac, found.node)
    return Adoption(found.node, seen.mac, found, previous)


def _switches(home: Home) -> dict[str, Switch]:
    with home.store.reading() as conn:
        return load_switches(conn)


def _adopt(home: Home, mac: str, node: str) -> None:
    with home.store.transaction() as conn:
        adopt(conn, mac, node)


def _primary_mac(inv: Inventory, node: Node) -> str | None:
    net = inv.primary_network(node)
    iface = node.interface_on(net.name) if net else None
    return iface.mac if iface else None
