"""Which names the cluster has: A and PTR records built from the inventory.

Names, for a cluster domain D (the cluster's `domain`, else `<cluster name>.internal`):

- `<node>.D`             the node's primary address (first network with an address)
- `<node>-<network>.D`   its address on each network
- `<node>.<net domain>`  its address on a network that sets its own `domain`
- `<node>-bmc.D`         its BMC, when the power address is an IPv4 address
- `<alias>.D`            each of the node's `aliases` (CNAME to `<node>.D`)

Every address has one PTR: the most specific of those names. The zone is a plain
value: the DNS server swaps in a new one when the inventory generation changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

import dns.name
import dns.reversename
import dns.rrset

from corral.inventory.index import Inventory
from corral.inventory.models import Node

Name = dns.name.Name


def cluster_domain(inv: Inventory) -> str:
    """The domain the cluster's names live under."""
    return inv.settings.domain or f"{inv.settings.name}.internal"


@dataclass
class Zone:
    """Everything the server answers with authority; built by `build_zone`."""

    origins: frozenset[Name] = frozenset()  # forward domains we are authoritative for
    networks: tuple[IPv4Network, ...] = ()  # reverse lookups inside these are ours
    addresses: dict[Name, list[IPv4Address]] = field(default_factory=dict)
    aliases: dict[Name, Name] = field(default_factory=dict)
    pointers: dict[Name, Name] = field(default_factory=dict)
    serial: int = 0
    rrsets: dict[tuple[Name, int], dns.rrset.RRset] = field(default_factory=dict)  # memo

    def origin_of(self, qname: Name) -> Name | None:
        """The zone apex `qname` falls under, if it is one of ours."""
        return next((o for o in self.origins if qname.is_subdomain(o)), None)

    def owns_reverse(self, qname: Name) -> bool:
        try:
            address = dns.reversename.to_address(qname)
        except (dns.exception.SyntaxError, ValueError):
            return False
        try:
            ip = IPv4Address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)


def _fqdn(label: str, domain: str) -> Name:
    return dns.name.from_text(f"{label}.{domain}")


def _bmc_address(text: str | None) -> IPv4Address | None:
    if not text:
        return None
    host = text.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    try:
        return IPv4Address(host)
    except ValueError:
        return None


class _Builder:
    def __init__(self, inv: Inventory, serial: int) -> None:
        self.inv = inv
        self.domain = cluster_domain(inv)
        self.zone = Zone(serial=serial)
        self.origins = {dns.name.from_text(self.domain)}

    def add(self, name: Name, ip: IPv4Address, pointer: bool) -> None:
        found = self.zone.addresses.setdefault(name, [])
        if ip not in found:
            found.append(ip)
        if pointer:
            self.zone.pointers[dns.reversename.from_address(str(ip))] = name

    def node(self, node: Node) -> None:
        settings = self.inv.effective(node.name).settings
        order = {net: i for i, net in enumerate(settings.networks)}
        with_ip = sorted(
            (i for i in node.interfaces if i.ip), key=lambda i: order.get(i.network, 99)
        )
        for index, iface in enumerate(with_ip):
            assert iface.ip is not None
            net = self.inv.networks.get(iface.network)
            own_domain = net.domain if net and net.domain else None
            if own_domain:
                self.origins.add(dns.name.from_text(own_domain))
                self.add(_fqdn(node.name, own_domain), iface.ip, pointer=True)
            per_net = _fqdn(f"{node.name}-{iface.network}", self.domain)
            self.add(per_net, iface.ip, pointer=not own_domain and index > 0)
            if index == 0:
                self.add(_fqdn(node.name, self.domain), iface.ip, pointer=not own_domain)
        bmc = _bmc_address(settings.power.address)
        if bmc is not None:
            self.add(_fqdn(f"{node.name}-bmc", self.domain), bmc, pointer=True)
        target = _fqdn(node.name, self.domain)
        for alias in node.aliases:
            self.zone.aliases[_fqdn(alias, self.domain)] = target

    def build(self) -> Zone:
        for name in sorted(self.inv.nodes):
            self.node(self.inv.nodes[name])
        self.zone.origins = frozenset(self.origins)
        self.zone.networks = tuple(n.cidr for n in self.inv.networks.values())
        return self.zone


def build_zone(inv: Inventory, serial: int = 0) -> Zone:
    """The cluster's names; `serial` (the inventory generation) goes into the SOA."""
    return _Builder(inv, serial).build()
