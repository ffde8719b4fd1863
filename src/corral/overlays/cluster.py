"""Every node as its neighbours see it, built once per inventory state and cached.

/etc/hosts, ssh_known_hosts, slurm.conf and MPI hostfiles list the whole
cluster, so the hosts list is the only part of a node's context that grows
with the node count. Each host carries its names and addresses, profiles,
tags and hardware facts (the agent's report, with the inventory's `facts`
winning), and the list is grouped by profile and by tag. It is kept in a
small cache keyed by a fingerprint of exactly what it is made of (domain,
networks' domains, each node's profiles, networks, interfaces, tags and facts,
and when each node's agent last reported new facts): rendering one node after
another, or after an unrelated change (an image), reuses it; adding a node,
an address or a tag rebuilds it once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from corral.inventory.facts import NodeFacts
from corral.inventory.index import Inventory
from corral.inventory.merge import merge_list
from corral.inventory.models import Node
from corral.overlays.sshkeys import HostKeyStore

# node name -> the agent's last report, as `corral.store.agent.all_facts` gives it
ReportedFacts = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class HostAddress:
    """One address of a node and the names it answers to there."""

    network: str
    ip: str
    primary: bool
    names: tuple[str, ...]  # primary: (fqdn, name); others: (name-network,)


@dataclass(frozen=True)
class FactsView:
    """A node's hardware: the inventory's `facts` where set, else the agent's report.

    `gpus` is a count (the inventory's, else the GPUs the agent found);
    `reported` is None when no agent has reported yet.
    """

    cpus: int | None
    memory_mib: int | None
    gpus: int
    cpu_model: str | None
    gpu_devices: tuple[Mapping[str, Any], ...]
    disks: tuple[Mapping[str, Any], ...]
    nics: tuple[Mapping[str, Any], ...]
    reported: float | None


@dataclass(frozen=True)
class HostView:
    """A node as its neighbours see it."""

    name: str
    fqdn: str
    ip: str | None  # the primary address, if reserved
    addresses: tuple[HostAddress, ...]
    profiles: tuple[str, ...]
    tags: Mapping[str, str]
    facts: FactsView


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


def node_dict(inv: Inventory, node: Node, name: str) -> dict[str, Any]:
    """A dict setting (tags, facts) merged along the node's profiles, without a full merge."""
    out: dict[str, Any] = {}
    for profile_name in node.profiles:
        profile = inv.profiles.get(profile_name)
        if profile is not None:
            out.update(getattr(profile, name))
    out.update(getattr(node, name))
    return out


def facts_view(set_here: Mapping[str, int], reported: Mapping[str, Any] | None) -> FactsView:
    """The inventory's facts over the agent's report (a report that no longer validates
    is ignored rather than failing every node's render)."""
    try:
        found = NodeFacts.model_validate(
            {k: v for k, v in (reported or {}).items() if k != "reported"}
        )
    except ValidationError:
        found = NodeFacts()

    def dicts(items: list[Any]) -> tuple[Mapping[str, Any], ...]:
        return tuple(i.model_dump() for i in items)

    return FactsView(
        cpus=set_here.get("cpus", found.cpus),
        memory_mib=set_here.get("memory_mib", found.memory_mib),
        gpus=set_here.get("gpus", len(found.gpus)),
        cpu_model=found.cpu_model,
        gpu_devices=dicts(found.gpus),
        disks=dicts(found.disks),
        nics=dicts(found.nics),
        reported=None if reported is None else reported.get("reported"),
    )


def effective_facts(inv: Inventory, node: Node, reported: Mapping[str, Any] | None) -> FactsView:
    """The node's facts: its inventory `facts` (merged along its profiles) over the report."""
    return facts_view(node_dict(inv, node, "facts"), reported)


def host_view(inv: Inventory, node: Node, reported: Mapping[str, Any] | None = None) -> HostView:
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
    return HostView(
        name=node.name,
        fqdn=fqdn,
        ip=ip,
        addresses=addresses,
        profiles=tuple(node.profiles),
        tags=node_dict(inv, node, "tags"),
        facts=effective_facts(inv, node, reported),
    )


def by_profile(hosts: tuple[HostView, ...]) -> dict[str, tuple[HostView, ...]]:
    """Profile name -> its nodes, in name order."""
    groups: dict[str, list[HostView]] = {}
    for host in hosts:
        for profile in host.profiles:
            groups.setdefault(profile, []).append(host)
    return {k: tuple(groups[k]) for k in sorted(groups)}


def by_tag(hosts: tuple[HostView, ...]) -> dict[str, dict[str, tuple[HostView, ...]]]:
    """Tag key -> tag value -> its nodes, in name order."""
    groups: dict[str, dict[str, list[HostView]]] = {}
    for host in hosts:
        for key, value in host.tags.items():
            groups.setdefault(key, {}).setdefault(value, []).append(host)
    return {k: {v: tuple(groups[k][v]) for v in sorted(groups[k])} for k in sorted(groups)}


@dataclass
class ClusterHosts:
    """The hosts list of one inventory state, and its known_hosts on demand."""

    hosts: tuple[HostView, ...]
    keys: HostKeyStore
    _known: tuple[str, ...] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    by_profile: dict[str, tuple[HostView, ...]] = field(init=False)
    by_tag: dict[str, dict[str, tuple[HostView, ...]]] = field(init=False)
    by_name: dict[str, HostView] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name = {h.name: h for h in self.hosts}
        self.by_profile = by_profile(self.hosts)
        self.by_tag = by_tag(self.hosts)

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


def fingerprint(inv: Inventory, reported: ReportedFacts) -> Hashable:
    """Exactly the inputs of the hosts list, as one hashable value.

    A report counts by its time: the server keeps the time of the last report
    that changed the facts, so heartbeats with the same facts keep the cache.
    """
    nodes = tuple(
        (
            n.name,
            tuple(n.profiles),
            tuple(n.networks),
            tuple((i.network, i.ip) for i in n.interfaces),
            tuple(sorted(n.tags.items())),
            tuple(sorted(n.facts.items())),
            (reported.get(n.name) or {}).get("reported"),
        )
        for n in (inv.nodes[k] for k in sorted(inv.nodes))
    )
    profiles = tuple(
        (p.name, tuple(p.networks), tuple(sorted(p.tags.items())), tuple(sorted(p.facts.items())))
        for p in inv.profiles.values()
    )
    networks = tuple((n.name, n.domain) for n in inv.networks.values())
    return (inv.settings.domain, tuple(sorted(profiles)), tuple(sorted(networks)), nodes)


class HostsCache:
    """The last few `ClusterHosts`, by inventory fingerprint (thread-safe)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, ClusterHosts] = OrderedDict()
        self._lock = threading.Lock()
        self.builds = 0  # how many times a hosts list was built (for tests and metrics)

    def get(
        self, inv: Inventory, keys: HostKeyStore, reported: ReportedFacts | None = None
    ) -> ClusterHosts:
        reported = reported or {}
        key = (fingerprint(inv, reported), keys.root)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        views = tuple(host_view(inv, inv.nodes[k], reported.get(k)) for k in sorted(inv.nodes))
        built = ClusterHosts(views, keys)
        with self._lock:
            self.builds += 1
            self._items[key] = built
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return built
