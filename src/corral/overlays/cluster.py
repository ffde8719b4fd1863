"""Every node's names and addresses, built once per inventory state and cached.

/etc/hosts and ssh_known_hosts list the whole cluster, so they are the only
parts of a node's context that grow with the node count. They are kept in a
small cache keyed by a fingerprint of exactly what they are made of (domain,
networks' domains, each node's profiles, networks and interfaces): rendering
one node after another, or after an unrelated change (an image, a tag), reuses
them; adding a node or an address rebuilds them once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

from corral.inventory.index import Inventory
from corral.inventory.merge import merge_list
from corral.inventory.models import Node
from corral.overlays.sshkeys import HostKeyStore


@dataclass(frozen=True)
class HostAddress:
    """One address of a node and the names it answers to there."""

    network: str
    ip: str
    primary: bool
    names: tuple[str, ...]  # primary: (fqdn, name); others: (name-network,)


@dataclass(frozen=True)
class HostView:
    """A node as its neighbours see it."""

    name: str
    fqdn: str
    ip: str | None  # the primary address, if reserved
    addresses: tuple[HostAddress, ...]


def fqdn_of(name: str, domain: str | None) -> str:
    return f"{name}.{domain}" if domain else name


def node_networks(inv: Inventory, node: Node) -> list[str]:
    """The node's effective networks, without a full profile merge."""
    out: list[str] = []
    for name in node.profiles:
        profile = inv.profiles.get(name)
        if profile is not None:
            out = merge_list(out, profile.networks)
    return merge_list(out, node.networks)


def host_view(inv: Inventory, node: Node) -> HostView:
    networks = node_networks(inv, node)
    with_ip = [i for i in node.interfaces if i.ip is not None]
    first = next((i for i in with_ip if networks and i.network == networks[0]), None)
    primary = first or (with_ip[0] if with_ip else None)
    net = inv.networks.get(primary.network) if primary else None
    fqdn = fqdn_of(node.name, inv.settings.domain or (net.domain if net else None))
    names = (fqdn, node.name) if fqdn != node.name else (node.name,)
    addresses = tuple(
        HostAddress(
            i.network,
            str(i.ip),
            i is primary,
            names if i is primary else (f"{node.name}-{i.network}",),
        )
        for i in with_ip
    )
    ip = None if primary is None else str(primary.ip)
    return HostView(name=node.name, fqdn=fqdn, ip=ip, addresses=addresses)


@dataclass
class ClusterHosts:
    """The hosts list of one inventory state, and its known_hosts on demand."""

    hosts: tuple[HostView, ...]
    keys: HostKeyStore
    _known: tuple[str, ...] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def known_hosts(self) -> tuple[str, ...]:
        """One line per node and key type; generates missing host keys once."""
        with self._lock:
            if self._known is None:
                self._known = tuple(self._lines())
            return self._known

    def _lines(self) -> list[str]:
        self.keys.ensure(h.name for h in self.hosts)
        out = []
        for host in self.hosts:
            names = ",".join(dict.fromkeys([host.name, host.fqdn, *(a.ip for a in host.addresses)]))
            out += [f"{names} {key}" for key in self.keys.public_keys(host.name)]
        return out


def fingerprint(inv: Inventory) -> Hashable:
    """Exactly the inputs of the hosts list, as one hashable value."""
    nodes = tuple(
        (
            n.name,
            tuple(n.profiles),
            tuple(n.networks),
            tuple((i.network, i.ip) for i in n.interfaces),
        )
        for n in (inv.nodes[k] for k in sorted(inv.nodes))
    )
    profiles = tuple((p.name, tuple(p.networks)) for p in inv.profiles.values())
    networks = tuple((n.name, n.domain) for n in inv.networks.values())
    return (inv.settings.domain, tuple(sorted(profiles)), tuple(sorted(networks)), nodes)


class HostsCache:
    """The last few `ClusterHosts`, by inventory fingerprint (thread-safe)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, ClusterHosts] = OrderedDict()
        self._lock = threading.Lock()
        self.builds = 0  # how many times a hosts list was built (for tests and metrics)

    def get(self, inv: Inventory, keys: HostKeyStore) -> ClusterHosts:
        key = (fingerprint(inv), keys.root)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        built = ClusterHosts(tuple(host_view(inv, inv.nodes[k]) for k in sorted(inv.nodes)), keys)
        with self._lock:
            self.builds += 1
            self._items[key] = built
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return built
