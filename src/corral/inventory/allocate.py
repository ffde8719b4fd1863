"""Address allocation: free addresses of a network, handed out in order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address

from corral.inventory.errors import InventoryError
from corral.inventory.models import Network, Node


def taken_on(network: str, nodes: Iterable[Node]) -> set[IPv4Address]:
    """Addresses that nodes already hold on `network`."""
    return {i.ip for n in nodes for i in n.interfaces if i.network == network and i.ip is not None}


def free_addresses(network: Network, taken: set[IPv4Address]) -> Iterator[IPv4Address]:
    """Host addresses not taken, not the gateway and not in the dynamic range."""
    dyn = network.dynamic_range
    for ip in network.cidr.hosts():
        if ip in taken or ip == network.gateway or (dyn is not None and ip in dyn):
            continue
        yield ip


def allocate(network: Network, taken: set[IPv4Address], count: int) -> list[IPv4Address]:
    """The first `count` free addresses, or an error saying how many are left."""
    out: list[IPv4Address] = []
    for ip in free_addresses(network, taken):
        out.append(ip)
        if len(out) == count:
            return out
    raise InventoryError(
        f"network {network.name} ({network.cidr}) has {len(out)} free addresses, "
        f"{count} needed: widen its CIDR, shrink its dynamic range or delete unused nodes"
    )
