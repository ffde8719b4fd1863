"""Whole-inventory checks: references resolve, addresses fit, nothing is taken twice.

Run after every change and before anything is written, so an invalid inventory
never reaches the store. Messages name the record, the field and the value.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address

from corral.inventory.errors import Conflict, NotFound
from corral.inventory.index import Inventory
from corral.inventory.models import Interface, Network, Node, NodeSettings


def validate(inv: Inventory, changed: Iterable[str] = ()) -> None:
    """Raise the first problem found in `inv` (an InventoryError subclass).

    Nodes named in `changed` are checked last, so a conflict is reported
    against the node the user just changed, not the one that had the value.
    """
    for profile in inv.profiles.values():
        for net in profile.networks:
            if net not in inv.networks:
                raise NotFound(f"profile {profile.name}: network {net!r} does not exist")
    macs: dict[str, str] = {}
    ips: dict[IPv4Address, str] = {}
    last = [n for n in changed if n in inv.nodes]
    first = set(last)
    for node in [
        *(n for k, n in inv.nodes.items() if k not in first),
        *(inv.nodes[k] for k in last),
    ]:
        _check_node(inv, node, macs, ips)


def _check_node(
    inv: Inventory, node: Node, macs: dict[str, str], ips: dict[IPv4Address, str]
) -> None:
    for name in node.profiles:
        if name not in inv.profiles:
            raise NotFound(f"node {node.name}: profile {name!r} does not exist")
    for net in node.networks:
        if net not in inv.networks:
            raise NotFound(f"node {node.name}: network {net!r} does not exist")
    layers = [inv.profiles[p] for p in node.profiles]
    _check_stateful(f"node {node.name}", [*layers, node])
    seen_networks: set[str] = set()
    for i, iface in enumerate(node.interfaces):
        where = f"node {node.name}: interfaces[{i}]"
        if iface.network in seen_networks:
            raise Conflict(f"{where}: a second interface on network {iface.network!r}")
        seen_networks.add(iface.network)
        network = inv.networks.get(iface.network)
        if network is None:
            raise NotFound(f"{where}.network {iface.network!r} does not exist")
        _check_address(where, iface, network)
        if iface.mac is not None:
            owner = macs.setdefault(iface.mac, node.name)
            if owner != node.name:
                raise Conflict(f"{where}.mac {iface.mac} is already used by node {owner}")
        if iface.ip is not None:
            owner = ips.setdefault(iface.ip, node.name)
            if owner != node.name:
                raise Conflict(f"{where}.ip {iface.ip} is already used by node {owner}")


def _check_address(where: str, iface: Interface, network: Network) -> None:
    ip = iface.ip
    if ip is None:
        return
    if ip not in network.cidr:
        raise Conflict(f"{where}.ip {ip} is outside network {network.name} ({network.cidr})")
    if network.cidr.prefixlen < 31 and ip in (
        network.cidr.network_address,
        network.cidr.broadcast_address,
    ):
        raise Conflict(f"{where}.ip {ip} is the network or broadcast address of {network.cidr}")
    if ip == network.gateway:
        raise Conflict(f"{where}.ip {ip} is the gateway of network {network.name}")
    if network.dynamic_range is not None and ip in network.dynamic_range:
        raise Conflict(
            f"{where}.ip {ip} is inside the dynamic range {network.dynamic_range} "
            f"of network {network.name}"
        )


def _check_stateful(where: str, layers: list[NodeSettings]) -> None:
    """A stateful record (after its profiles) needs a disk layout to install to."""
    boot = next((x.boot for x in reversed(layers) if x.boot is not None), None)
    disk = next((x.disk for x in reversed(layers) if x.disk is not None), None)
    if boot == "stateful" and disk is None:
        raise Conflict(
            f"{where}: boot is stateful but no disk layout is set: add `disk:` with a device "
            "and partitions (one mounted at /) to it or to one of its profiles"
        )
